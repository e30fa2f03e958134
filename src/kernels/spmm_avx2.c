/* AVX2+FMA twins of the reference kernels in spmm_scalar.c; the only file
 * with intrinsics, compiled with -mavx2 -mfma and chosen at run time.
 *
 * Vectorise over the batch, broadcast the weight (as XNNPACK's f32-spmm):
 * a nonzero w(o,i) is one broadcast and a run of FMAs over row i of the
 * input, accumulated in registers across all nonzeros of row o, so each
 * output row is written once. Rows are 32-byte aligned (rw_alloc, bp a
 * multiple of 8), so every load and store is aligned. The summation order
 * over nonzeros is the reference's; only the FMA rounding differs. */
#include <immintrin.h>

#include "kernels/kernels.h"

/* The dense operand of a 1000-feature layer at batch 128 is 512 KB: it
 * lives in L2, and these kernels are bound by L2 bandwidth (one 32-byte load
 * per FMA). Rows are visited in random order, which the hardware prefetcher
 * cannot guess; touching the first two cache lines of a row some nonzeros
 * ahead starts its stream early. Measured on Zen 3: 8 ahead, 2 lines. */
#define PREFETCH_AHEAD 8
#define PREFETCH_LINES 2

/* The core of both SpMM directions over one output row:
 * out[0..bp) = init + sum_j val(j) * in_rows[row(j)][0..bp), j in [k0, k1).
 * `rows` gives the input row of each term; `perm` (may be NULL) maps the
 * term to its value, as in the transposed view. */
static inline void spmm_row_avx2(const float *values, const int32_t *perm, const int32_t *rows,
                                 int k0, int k1, const float *in, float init, float *out, int bp, int b)
{
    /* 64 columns at a time: 8 independent accumulators hide the FMA
     * latency, and each broadcast is reused 8 times. */
    if (b + 64 <= bp) {
        __m256 a0 = _mm256_set1_ps(init), a1 = a0, a2 = a0, a3 = a0;
        __m256 a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int k = k0; k < k1; k++) {
            if (k + PREFETCH_AHEAD < k1) {
                const char *p = (const char *)(in + (size_t)rows[k + PREFETCH_AHEAD] * bp + b);
                for (int l = 0; l < PREFETCH_LINES; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
            }
            __m256 v = _mm256_broadcast_ss(values + (perm ? perm[k] : k));
            const float *xi = in + (size_t)rows[k] * bp + b;
            a0 = _mm256_fmadd_ps(v, _mm256_load_ps(xi), a0);
            a1 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 8), a1);
            a2 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 16), a2);
            a3 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 24), a3);
            a4 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 32), a4);
            a5 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 40), a5);
            a6 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 48), a6);
            a7 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 56), a7);
        }
        float *yo = out + b;
        _mm256_store_ps(yo, a0);
        _mm256_store_ps(yo + 8, a1);
        _mm256_store_ps(yo + 16, a2);
        _mm256_store_ps(yo + 24, a3);
        _mm256_store_ps(yo + 32, a4);
        _mm256_store_ps(yo + 40, a5);
        _mm256_store_ps(yo + 48, a6);
        _mm256_store_ps(yo + 56, a7);
    }
    else if (b + 32 <= bp) {
        __m256 a0 = _mm256_set1_ps(init), a1 = a0, a2 = a0, a3 = a0;
        for (int k = k0; k < k1; k++) {
            __m256 v = _mm256_broadcast_ss(values + (perm ? perm[k] : k));
            const float *xi = in + (size_t)rows[k] * bp + b;
            a0 = _mm256_fmadd_ps(v, _mm256_load_ps(xi), a0);
            a1 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 8), a1);
            a2 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 16), a2);
            a3 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 24), a3);
        }
        float *yo = out + b;
        _mm256_store_ps(yo, a0);
        _mm256_store_ps(yo + 8, a1);
        _mm256_store_ps(yo + 16, a2);
        _mm256_store_ps(yo + 24, a3);
    }
    else {
        __m256 a0 = _mm256_set1_ps(init);
        for (int k = k0; k < k1; k++) {
            __m256 v = _mm256_broadcast_ss(values + (perm ? perm[k] : k));
            a0 = _mm256_fmadd_ps(v, _mm256_load_ps(in + (size_t)rows[k] * bp + b), a0);
        }
        _mm256_store_ps(out + b, a0);
    }
}

static inline int chunk_width(int b, int bp) { return b + 64 <= bp ? 64 : b + 32 <= bp ? 32 : 8; }

static void spmm_forward_avx2(const csr_matrix *w, const float *bias, const float *x, float *y,
                              int bp, int r0, int r1)
{
    for (int b = 0; b < bp; b += chunk_width(b, bp))
        for (int o = r0; o < r1; o++)
            spmm_row_avx2(w->values, NULL, w->indices, w->indptr[o], w->indptr[o + 1], x,
                          bias ? bias[o] : 0.0f, y + (size_t)o * bp, bp, b);
}

/* The transposed view reaches a value through t_perm, a random 4-byte read
 * that costs a whole cache line per nonzero and per batch chunk. So the
 * values of a block of columns are gathered once into a contiguous buffer,
 * and the chunks then read that. */
#define GATHER_MAX 4096

static void spmm_backward_data_avx2(const csr_matrix *w, const float *dy, float *dx, int bp,
                                    int c0, int c1)
{
    const int32_t *tp = w->t_indptr;
    float vals[GATHER_MAX];
    int c = c0;
    while (c < c1) {
        int base = tp[c], ce = c;
        while (ce < c1 && tp[ce + 1] - base <= GATHER_MAX) ce++;
        if (ce == c) { /* a column longer than the buffer: read through t_perm */
            for (int b = 0; b < bp; b += chunk_width(b, bp))
                spmm_row_avx2(w->values, w->t_perm, w->t_rows, tp[c], tp[c + 1], dy, 0.0f,
                              dx + (size_t)c * bp, bp, b);
            c++;
            continue;
        }
        for (int k = base; k < tp[ce]; k++) vals[k - base] = w->values[w->t_perm[k]];
        for (int b = 0; b < bp; b += chunk_width(b, bp))
            for (int j = c; j < ce; j++)
                spmm_row_avx2(vals + (tp[j] - base), NULL, w->t_rows + tp[j], 0, tp[j + 1] - tp[j],
                              dy, 0.0f, dx + (size_t)j * bp, bp, b);
        c = ce;
    }
}

/* Sum of the 8 lanes of each of a, b, c, d, as [a, b, c, d]. */
static inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 ab = _mm256_hadd_ps(a, b); /* a01 a23 b01 b23 | a45 a67 b45 b67 */
    __m256 cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd); /* a0-3 b0-3 c0-3 d0-3 | a4-7 ... */
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

static inline float hsum1(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Four dot products of row dyo with four input rows at once: each load of
 * dyo feeds four FMAs, and two accumulators per entry (even and odd 8-wide
 * steps) keep eight chains in flight. */
static void sddmm_row_avx2(const float *dyo, const float *x, const int32_t *idx, float *dw,
                           int n, int bp)
{
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        const float *x0 = x + (size_t)idx[k] * bp, *x1 = x + (size_t)idx[k + 1] * bp;
        const float *x2 = x + (size_t)idx[k + 2] * bp, *x3 = x + (size_t)idx[k + 3] * bp;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 e0 = a0, e1 = a0, e2 = a0, e3 = a0;
        if (k + 8 <= n)
            for (int j = 4; j < 8; j++) {
                const char *p = (const char *)(x + (size_t)idx[k + j] * bp);
                for (int l = 0; l < PREFETCH_LINES; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
            }
        int b = 0;
        for (; b + 16 <= bp; b += 16) {
            __m256 d = _mm256_load_ps(dyo + b);
            a0 = _mm256_fmadd_ps(d, _mm256_load_ps(x0 + b), a0);
            a1 = _mm256_fmadd_ps(d, _mm256_load_ps(x1 + b), a1);
            a2 = _mm256_fmadd_ps(d, _mm256_load_ps(x2 + b), a2);
            a3 = _mm256_fmadd_ps(d, _mm256_load_ps(x3 + b), a3);
            __m256 f = _mm256_load_ps(dyo + b + 8);
            e0 = _mm256_fmadd_ps(f, _mm256_load_ps(x0 + b + 8), e0);
            e1 = _mm256_fmadd_ps(f, _mm256_load_ps(x1 + b + 8), e1);
            e2 = _mm256_fmadd_ps(f, _mm256_load_ps(x2 + b + 8), e2);
            e3 = _mm256_fmadd_ps(f, _mm256_load_ps(x3 + b + 8), e3);
        }
        if (b < bp) { /* bp is a multiple of 8: at most one step left */
            __m256 d = _mm256_load_ps(dyo + b);
            a0 = _mm256_fmadd_ps(d, _mm256_load_ps(x0 + b), a0);
            a1 = _mm256_fmadd_ps(d, _mm256_load_ps(x1 + b), a1);
            a2 = _mm256_fmadd_ps(d, _mm256_load_ps(x2 + b), a2);
            a3 = _mm256_fmadd_ps(d, _mm256_load_ps(x3 + b), a3);
        }
        __m128 s = hsum4(_mm256_add_ps(a0, e0), _mm256_add_ps(a1, e1), _mm256_add_ps(a2, e2),
                         _mm256_add_ps(a3, e3));
        _mm_storeu_ps(dw + k, s);
    }
    for (; k < n; k++) {
        const float *xi = x + (size_t)idx[k] * bp;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int b = 0;
        for (; b + 16 <= bp; b += 16) {
            a0 = _mm256_fmadd_ps(_mm256_load_ps(dyo + b), _mm256_load_ps(xi + b), a0);
            a1 = _mm256_fmadd_ps(_mm256_load_ps(dyo + b + 8), _mm256_load_ps(xi + b + 8), a1);
        }
        if (b < bp) a0 = _mm256_fmadd_ps(_mm256_load_ps(dyo + b), _mm256_load_ps(xi + b), a0);
        dw[k] = hsum1(_mm256_add_ps(a0, a1));
    }
}

static void sddmm_weight_grad_avx2(const csr_matrix *w, const float *dy, const float *x,
                                   float *dw, int bp, int r0, int r1)
{
    for (int o = r0; o < r1; o++) {
        int k0 = w->indptr[o];
        sddmm_row_avx2(dy + (size_t)o * bp, x, w->indices + k0, dw + k0, w->indptr[o + 1] - k0,
                       bp);
    }
}

/* Returned by kernels_avx2() in kernels.c when the CPU has AVX2 and FMA. */
const kernel_table kernels_avx2_table = {
    .name = "avx2",
    .spmm_forward = spmm_forward_avx2,
    .spmm_backward_data = spmm_backward_data_avx2,
    .sddmm_weight_grad = sddmm_weight_grad_avx2,
};
