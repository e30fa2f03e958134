/* AVX-512 twins of the reference kernels in spmm_scalar.c, compiled with
 * -mavx512f -mavx512vl -mavx512bw -mavx512dq -mfma and chosen at run time
 * (kernels/isa.h). The same plan as spmm_avx2.c (vectorise over the batch,
 * broadcast the weight) with 16-float vectors: a chunk of 128 batch
 * columns is 8 accumulators, so at batch 128 a row reads its indices and
 * values once instead of twice, and each nonzero is 8 FMAs instead of 16.
 * The last 8 columns of a batch that is not a multiple of 16 are AVX2's
 * 8-column core. Rows are only 32-byte aligned (core/alloc.h), so loads
 * and stores are unaligned.
 *
 * At 128 columns a row's sums are the AVX2 kernel's, in the same order
 * (one chain per lane over the nonzeros), and so are the last 8 columns'
 * and the SDDMM's at any batch (avx512_dot.h): for a batch padding to a
 * multiple of 128, plus 8 or not, the two tables give the same bytes.
 * The 64-, 32- and 16-column chunks keep 2 or 4 partial sums, as AVX2's
 * narrow chunks do, though not the same ones. */
#include <immintrin.h>
#include <math.h>

#include "kernels/avx2_transpose.h"
#include "kernels/avx512_dot.h"
#include "kernels/nm_kernels.h"
#include "kernels/spmm_common.h"

/* Starting the stream of the input row some nonzeros ahead, as in
 * spmm_avx2.c. */
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD 8
#endif
#ifndef PREFETCH_LINES
#define PREFETCH_LINES 2
#endif

#define FULL ((__mmask16)0xffff)
#define LOW8 ((__mmask16)0x00ff)

/* 16 floats, or the first 8 of them under LOW8 (the others read as zero
 * and are never stored). `m` is a constant at every call site. */
static inline __attribute__((always_inline)) __m512 load16(const float *p, __mmask16 m)
{
    return m == FULL ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

static inline __attribute__((always_inline)) void store16(float *p, __m512 v, __mmask16 m)
{
    if (m == FULL)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, m, v);
}

/* The epilogue on 16 lanes (kernels.h), with the comparisons of the scalar
 * reference, so the result is exact: max(0, v) keeps a NaN, as
 * 0 > v ? 0 : v does. gate points at the same lanes of the activation
 * output (backward modes only). */
static inline __attribute__((always_inline)) __m512 epilogue16(__m512 v, int mode, __m512 slope,
                                                                const float *gate, __mmask16 m)
{
    __m512 zero = _mm512_setzero_ps();
    switch (mode) {
    case MODE_FWD_RELU:
        return _mm512_max_ps(zero, v);
    case MODE_FWD_LEAKY:
        return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, slope);
    case MODE_BWD_RELU:
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(load16(gate, m), zero, _CMP_GT_OQ), v);
    case MODE_BWD_LEAKY:
        return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(load16(gate, m), zero, _CMP_NGT_UQ), v,
                                  slope);
    }
    return v;
}

/* The batch chunk starting at column b: 128, 64, 32 or 16 columns, or the
 * last 8 (bp is a multiple of 8). */
static inline int chunk_width(int b, int bp)
{
    int left = bp - b;
    return left >= 128 ? 128 : left >= 64 ? 64 : left >= 32 ? 32 : left >= 16 ? 16 : 8;
}

/* The core of both SpMM directions over one output row and V vectors of
 * batch columns from b:
 * out[..] = epilogue(init + sum_j val(j) * in[row(j)][..]), j in [k0, k1),
 * with term j in partial sum j mod P. `rows` gives the input row of each
 * term; `perm` (may be NULL) maps the term to its value, as in the
 * transposed view. out and gate point at the row's column b. V, P, mode
 * and narrow are constants at every call site: V·P = 8 chains cover
 * the FMA latency at two FMAs a cycle (4 at V = 1, as in AVX2's
 * 8-column chunk). */
static inline __attribute__((always_inline)) void
spmm_row_avx512(const float *values, const int32_t *perm, index_ref rows, int narrow, int k0,
                int k1, const float *in, float init, float *out, const float *gate, int bp, int b,
                int mode, __m512 slope, const int V, const int P)
{
    __m512 acc[8];
    for (int q = 0; q < V * P; q++) acc[q] = _mm512_setzero_ps();
    for (int q = 0; q < V; q++) acc[q] = _mm512_set1_ps(init);
    int k = k0;
    for (; k + P <= k1; k += P) {
        if (V >= 4 && k + PREFETCH_AHEAD < k1) {
            const char *p = (const char *)(in + (size_t)IDX(rows, k + PREFETCH_AHEAD) * bp + b);
            for (int l = 0; l < PREFETCH_LINES; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
        }
        for (int p = 0; p < P; p++) {
            __m512 v = _mm512_set1_ps(values[perm ? perm[k + p] : k + p]);
            const float *xi = in + (size_t)IDX(rows, k + p) * bp + b;
            for (int q = 0; q < V; q++)
                acc[p * V + q] = _mm512_fmadd_ps(v, _mm512_loadu_ps(xi + 16 * q), acc[p * V + q]);
        }
    }
    for (; k < k1; k++) {
        __m512 v = _mm512_set1_ps(values[perm ? perm[k] : k]);
        const float *xi = in + (size_t)IDX(rows, k) * bp + b;
        for (int q = 0; q < V; q++)
            acc[q] = _mm512_fmadd_ps(v, _mm512_loadu_ps(xi + 16 * q), acc[q]);
    }
    for (int p = 1; p < P; p++)
        for (int q = 0; q < V; q++) acc[q] = _mm512_add_ps(acc[q], acc[p * V + q]);
    for (int q = 0; q < V; q++)
        _mm512_storeu_ps(out + 16 * q,
                         epilogue16(acc[q], mode, slope, gate ? gate + 16 * q : NULL, FULL));
}

/* The last 8 columns of a batch that is not a multiple of 16 (and all of
 * batch 1): spmm_avx2.c's 8-column core in ymm registers, four partial
 * sums (terms k mod 4). A masked 16-lane vector there was slower: at
 * batch 1, 0.65-0.73x the AVX2 kernel's speed, against 0.90-0.97x (Zen 5,
 * 1000 x 1000, density 0.05). */
static inline __attribute__((always_inline)) void
spmm_row8(const float *values, const int32_t *perm, index_ref rows, int narrow, int k0, int k1,
          const float *in, float init, float *out, const float *gate, int bp, int b, int mode,
          __m512 slope)
{
#define TERM(k)                                                                                    \
    _mm256_broadcast_ss(values + (perm ? perm[k] : (k))),                                          \
        _mm256_loadu_ps(in + (size_t)IDX(rows, k) * bp + b)
    __m256 a0 = _mm256_set1_ps(init), a1 = _mm256_setzero_ps(), a2 = a1, a3 = a1;
    int k = k0;
    for (; k + 4 <= k1; k += 4) {
        a0 = _mm256_fmadd_ps(TERM(k), a0);
        a1 = _mm256_fmadd_ps(TERM(k + 1), a1);
        a2 = _mm256_fmadd_ps(TERM(k + 2), a2);
        a3 = _mm256_fmadd_ps(TERM(k + 3), a3);
    }
    for (; k < k1; k++) a0 = _mm256_fmadd_ps(TERM(k), a0);
#undef TERM
    __m256 sum = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    store16(out, epilogue16(_mm512_castps256_ps512(sum), mode, slope, gate, LOW8), LOW8);
}

/* The row core over the chunk at b, its width as constants. */
#define SPMM_CHUNK(values, perm, rows, k0, k1, in, init, out, gate, b)                             \
    do {                                                                                           \
        switch (chunk_width(b, bp)) {                                                              \
        case 128:                                                                                  \
            spmm_row_avx512(values, perm, rows, narrow, k0, k1, in, init, out, gate, bp, b, mode,  \
                            slope, 8, 1);                                                          \
            break;                                                                                 \
        case 64:                                                                                   \
            spmm_row_avx512(values, perm, rows, narrow, k0, k1, in, init, out, gate, bp, b, mode,  \
                            slope, 4, 2);                                                          \
            break;                                                                                 \
        case 32:                                                                                   \
            spmm_row_avx512(values, perm, rows, narrow, k0, k1, in, init, out, gate, bp, b, mode,  \
                            slope, 2, 4);                                                          \
            break;                                                                                 \
        case 16:                                                                                   \
            spmm_row_avx512(values, perm, rows, narrow, k0, k1, in, init, out, gate, bp, b, mode,  \
                            slope, 1, 4);                                                          \
            break;                                                                                 \
        default:                                                                                   \
            spmm_row8(values, perm, rows, narrow, k0, k1, in, init, out, gate, bp, b, mode, slope);\
            break;                                                                                 \
        }                                                                                          \
    } while (0)

/* The order of the loops over rows and batch chunks, as in spmm_avx2.c:
 * rows first while the dense operand fits in L2 or a chunk of it does not
 * fit in the last-level cache either; else chunks first. */
#define L2_BYTES ((size_t)512 * 1024)
#define CHUNK_CACHE_BYTES ((size_t)4 * 1024 * 1024)

static inline int rows_first(int rows, int bp)
{
    size_t whole = (size_t)rows * (size_t)bp * sizeof(float);
    size_t chunk = (size_t)rows * 128 * sizeof(float);
    return whole <= L2_BYTES || chunk > CHUNK_CACHE_BYTES;
}

/* Rows [r0, r1). */
static inline __attribute__((always_inline)) void
forward_rows(const csr_matrix *w, const float *bias, const float *x, float *y, int bp, int r0,
             int r1, int mode, int narrow, __m512 slope)
{
    index_ref idx = index_at(w->indices, w->indices16, 0);
#define FORWARD_CHUNK(o, b)                                                                        \
    SPMM_CHUNK(w->values, NULL, idx, w->indptr[o], w->indptr[(o) + 1], x, bias ? bias[o] : 0.0f,   \
               y + (size_t)(o) * bp + (b), NULL, b)
    if (rows_first(w->cols, bp))
        for (int o = r0; o < r1; o++)
            for (int b = 0; b < bp; b += chunk_width(b, bp)) FORWARD_CHUNK(o, b);
    else
        for (int b = 0; b < bp; b += chunk_width(b, bp))
            for (int o = r0; o < r1; o++) FORWARD_CHUNK(o, b);
#undef FORWARD_CHUNK
}

static void spmm_forward_avx512(const csr_matrix *w, const float *bias, const float *x, float *y,
                                int bp, int r0, int r1, kernel_epilogue epi)
{
    __m512 slope = _mm512_set1_ps(epi.slope);
    DISPATCH(forward_rows, epilogue_mode(epi, 0), w->indices16 != NULL, w, bias, x, y, bp, r0, r1);
}

/* Columns [c0, c1) of the transposed view, with the values of a block of
 * columns gathered first (GATHER_MAX), as in spmm_avx2.c. */
static inline __attribute__((always_inline)) void
backward_columns(const csr_matrix *w, const float *dy, float *dx, int bp, int c0, int c1,
                 const float *a, const int32_t *cmap, int mode, int narrow, __m512 slope)
{
    /* View position j holds column cmap[j] (cmap NULL: column j). */
#define DX_ROW(j) ((size_t)(cmap ? cmap[j] : (j)) * bp)
    const int32_t *tp = w->t_indptr;
    float vals[GATHER_MAX];
    int c = c0, dy_rows_first = rows_first(w->rows, bp);
    while (c < c1) {
        int base = tp[c], ce = c;
        while (ce < c1 && tp[ce + 1] - base <= GATHER_MAX) ce++;
        if (ce == c) { /* a column longer than the buffer: read through t_perm */
            index_ref rows = index_at(w->t_rows, w->t_rows16, 0);
            for (int b = 0; b < bp; b += chunk_width(b, bp))
                SPMM_CHUNK(w->values, w->t_perm, rows, tp[c], tp[c + 1], dy, 0.0f,
                           dx + DX_ROW(c) + b, a ? a + DX_ROW(c) + b : NULL, b);
            c++;
            continue;
        }
        for (int k = base; k < tp[ce]; k++) vals[k - base] = w->values[w->t_perm[k]];
#define BACKWARD_COLUMN(j, b)                                                                      \
    SPMM_CHUNK(vals + (tp[j] - base), NULL, index_at(w->t_rows, w->t_rows16, tp[j]), 0,            \
               tp[(j) + 1] - tp[j], dy, 0.0f, dx + DX_ROW(j) + (b), a ? a + DX_ROW(j) + (b) : NULL, b)
        if (dy_rows_first)
            for (int j = c; j < ce; j++)
                for (int b = 0; b < bp; b += chunk_width(b, bp)) BACKWARD_COLUMN(j, b);
        else
            for (int b = 0; b < bp; b += chunk_width(b, bp))
                for (int j = c; j < ce; j++) BACKWARD_COLUMN(j, b);
#undef BACKWARD_COLUMN
        c = ce;
    }
#undef DX_ROW
}

static void spmm_backward_data_avx512(const csr_matrix *w, const float *dy, float *dx, int bp,
                                      int c0, int c1, const float *a, kernel_epilogue epi)
{
    __m512 slope = _mm512_set1_ps(epi.slope);
    int mode = a ? epilogue_mode(epi, 1) : MODE_PLAIN;
    DISPATCH(backward_columns, mode, w->t_rows16 != NULL, w, dy, dx, bp, c0, c1, a, NULL);
}

void spmm_backward_data_mapped_avx512(const csr_matrix *view, const int32_t *cols_of,
                                      const float *dy, float *dx, int bp, int q0, int q1)
{
    __m512 slope = _mm512_setzero_ps();
    DISPATCH(backward_columns, MODE_PLAIN, view->t_rows16 != NULL, view, dy, dx, bp, q0, q1, NULL,
             cols_of);
}

/* dw of one row: eight entries at a time (avx512_dot8), then four, then
 * one by one, grouped from the row's start as AVX2's (four, then one by
 * one), so that each dw[k] is the same sum; the input rows of the next
 * eight are started early. */
static inline __attribute__((always_inline)) void
sddmm_row_avx512(const float *dyo, const float *x, index_ref idx, int narrow, float *dw, int n,
                 int bp)
{
    const float *xs[8];
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        for (int j = 0; j < 8; j++) xs[j] = x + (size_t)IDX(idx, k + j) * bp;
        if (k + 16 <= n)
            for (int j = 8; j < 16; j++) {
                const char *p = (const char *)(x + (size_t)IDX(idx, k + j) * bp);
                for (int l = 0; l < PREFETCH_LINES; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
            }
        avx512_dot8(dyo, xs, bp, dw + k);
    }
    if (k + 4 <= n) {
        for (int j = 0; j < 4; j++) xs[j] = x + (size_t)IDX(idx, k + j) * bp;
        avx512_dot4(dyo, xs, bp, dw + k);
        k += 4;
    }
    for (; k < n; k++) dw[k] = avx512_dot1(dyo, x + (size_t)IDX(idx, k) * bp, bp);
}

/* Sum of one row of dy, the bias gradient: AVX2's two accumulators in the
 * two halves of one. */
static float row_sum_avx512(const float *dyo, int bp)
{
    __m512 a = _mm512_setzero_ps();
    int b = 0;
    for (; b + 16 <= bp; b += 16) a = _mm512_add_ps(a, _mm512_loadu_ps(dyo + b));
    __m256 even = _mm512_castps512_ps256(a);
    if (b < bp) even = _mm256_add_ps(even, _mm256_loadu_ps(dyo + b));
    return avx2_hsum1(_mm256_add_ps(even, _mm512_extractf32x8_ps(a, 1)));
}

static inline __attribute__((always_inline)) void
sddmm_rows(const csr_matrix *w, const float *dy, const float *x, float *dw, float *db, int bp,
           int r0, int r1, int narrow)
{
    for (int o = r0; o < r1; o++) {
        int k0 = w->indptr[o];
        const float *dyo = dy + (size_t)o * bp;
        sddmm_row_avx512(dyo, x, index_at(w->indices, w->indices16, k0), narrow, dw + k0,
                         w->indptr[o + 1] - k0, bp);
        if (db) db[o] = row_sum_avx512(dyo, bp);
    }
}

void sddmm_weight_grad_avx2(const csr_matrix *w, const float *dy, const float *x, float *dw,
                            float *db, int bp, int r0, int r1);

/* Below 32 columns the work per nonzero is mostly its reduction, which
 * 16-lane vectors do not shorten: the AVX2 kernel, the same sums, ran
 * faster (0.72-0.86x its speed at batch 1-24 with avx512_dot8; Zen 5,
 * 1000 x 1000, density 0.05). */
#define SDDMM_MIN_BP 32

static void sddmm_weight_grad_avx512(const csr_matrix *w, const float *dy, const float *x,
                                     float *dw, float *db, int bp, int r0, int r1)
{
    if (bp < SDDMM_MIN_BP)
        sddmm_weight_grad_avx2(w, dy, x, dw, db, bp, r0, r1);
    else if (w->indices16)
        sddmm_rows(w, dy, x, dw, db, bp, r0, r1, 1);
    else
        sddmm_rows(w, dy, x, dw, db, bp, r0, r1, 0);
}

/* Sixteen comparisons at once into a mask; only the (rare) hits cost
 * more: their positions are compressed into the front of a vector and
 * stored under a mask, so nothing past the last hit is written. The
 * ordered comparison is false for NaN, as the scalar >= is. 1.93x the
 * AVX2 kernel's speed over rows of 1,000 with 1% hits (Zen 5). */
static int find_at_least_avx512(const float *x, int n, float thr, int32_t *at)
{
    const __m512 t = _mm512_set1_ps(thr);
    const __m512i step = _mm512_set1_epi32(16);
    __m512i pos = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int count = 0, j = 0;
    for (; j + 16 <= n; j += 16, pos = _mm512_add_epi32(pos, step)) {
        __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)), t, _CMP_GE_OQ);
        if (hit) {
            int c = __builtin_popcount(hit);
            _mm512_mask_storeu_epi32(at + count, (__mmask16)((1u << c) - 1),
                                     _mm512_maskz_compress_epi32(hit, pos));
            count += c;
        }
    }
    for (; j < n; j++)
        if (fabsf(x[j]) >= thr) at[count++] = j;
    return count;
}

/* The batch transposed 16 samples x 8 features at a time: sixteen 32-byte
 * loads, two 8x8 register transposes (spmm_avx2.c's), eight 64-byte
 * stores, and the next sixteen samples' features requested meanwhile.
 * Against the AVX2 kernel's 8 x 8 (784 features of 60,000 samples, random
 * order; Zen 5, three runs on a busy machine): 1.18-1.29x at batch 32,
 * 1.15-1.47x at 128, 2.1x at 256. Same
 * arithmetic as the reference (subtract, then multiply), so the same
 * bytes; the last samples (fewer than 16) one by one. */
static void load_batch_avx512(const float *x, int features, const int *index, int n, float shift,
                              float scale, float *a, int bp, int f0, int f1)
{
    const __m512 vs = _mm512_set1_ps(shift), vm = _mm512_set1_ps(scale);
    int b = 0;
    for (; b + 16 <= n; b += 16) {
        const float *row[16];
        for (int j = 0; j < 16; j++) row[j] = x + (size_t)(index ? index[b + j] : b + j) * features;
        for (int j = 16; j < 32 && b + j < n; j++) {
            const char *p = (const char *)(x + (size_t)(index ? index[b + j] : b + j) * features);
            for (size_t l = (size_t)f0 * sizeof(float); l < (size_t)f1 * sizeof(float); l += 64)
                _mm_prefetch(p + l, _MM_HINT_T0);
        }
        int f = f0;
        for (; f + 8 <= f1; f += 8) {
            __m256 lo[8], hi[8];
            for (int j = 0; j < 8; j++) {
                lo[j] = _mm256_loadu_ps(row[j] + f);
                hi[j] = _mm256_loadu_ps(row[j + 8] + f);
            }
            transpose8(lo);
            transpose8(hi);
            for (int i = 0; i < 8; i++) {
                __m512 v = _mm512_insertf32x8(_mm512_castps256_ps512(lo[i]), hi[i], 1);
                _mm512_storeu_ps(a + (size_t)(f + i) * bp + b, _mm512_mul_ps(_mm512_sub_ps(v, vs), vm));
            }
        }
        for (; f < f1; f++)
            for (int j = 0; j < 16; j++) a[(size_t)f * bp + b + j] = (row[j][f] - shift) * scale;
    }
    for (; b < n; b++) {
        const float *rw = x + (size_t)(index ? index[b] : b) * features;
        for (int f = f0; f < f1; f++) a[(size_t)f * bp + b] = (rw[f] - shift) * scale;
    }
    for (int f = f0; f < f1; f++)
        for (int c = n; c < bp; c++) a[(size_t)f * bp + c] = 0.0f;
}

/* Kept from the AVX2 table (spmm_avx2.c), where 16-float vectors did not
 * help (see kernels_avx512_table). */
void spmv_forward_avx2(const csr_matrix *w, const float *bias, const float *x, float *y, int r0,
                       int r1, kernel_epilogue epi);

/* In the kernel list as "avx512" (kernels/isa.h). The single-sample SpMV
 * is the AVX2 one: a 16-lane vgatherdps ran it at 0.51-0.60x the AVX2
 * speed and sixteen scalar loads at 0.90-1.05x (Zen 5, 1000 x 1000,
 * density 0.05); both are bound by the loads of x, one per term. */
#define GELU_SUFFIX avx512
#include "kernels/gelu_common.h"

const kernel_table kernels_avx512_table = {
    .name = "avx512",
    .spmm_forward = spmm_forward_avx512,
    .spmm_backward_data = spmm_backward_data_avx512,
    .sddmm_weight_grad = sddmm_weight_grad_avx512,
    .spmv_forward = spmv_forward_avx2,
    .load_batch = load_batch_avx512,
    .find_at_least = find_at_least_avx512,
    .gelu_forward = gelu_forward_avx512,
    .gelu_backward = gelu_backward_avx512,
};
