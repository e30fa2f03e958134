/* AVX2+FMA twins of the reference kernels in spmm_scalar.c, compiled with
 * -mavx2 -mfma and chosen at run time (kernels/isa.h).
 *
 * Vectorise over the batch, broadcast the weight (as XNNPACK's f32-spmm):
 * a nonzero w(o,i) is one broadcast and a run of FMAs over row i of the
 * input, accumulated in registers across all nonzeros of row o, so each
 * output row is written once. Rows are 32-byte aligned (rw_alloc, bp a
 * multiple of 8), so every load and store is aligned. With 64 columns the
 * summation order over nonzeros is the reference's and only the FMA
 * rounding differs; narrower chunks keep two or four partial sums. Either
 * way a row's result depends only on the row, never on the thread. */
#include <immintrin.h>
#include <math.h>

#include "kernels/avx2_dot.h"
#include "kernels/avx2_transpose.h"
#include "kernels/spmm_common.h"

/* The dense operand of a 1000-feature layer at batch 128 is 512 KB: it
 * lives in L2, and these kernels are bound by L2 bandwidth (one 32-byte load
 * per FMA). Rows are visited in random order, which the hardware prefetcher
 * cannot guess; touching the first two cache lines of a row some nonzeros
 * ahead starts its stream early. Measured on Zen 3: 8 ahead, 2 lines. */
#ifndef PREFETCH_AHEAD
#define PREFETCH_AHEAD 8
#endif
#ifndef PREFETCH_LINES
#define PREFETCH_LINES 2
#endif

/* The epilogue on 8 lanes; gate points at the same 8 lanes of the
 * activation output (backward modes only). Same comparisons as the scalar
 * reference, so the result is exact: max(0, v) keeps a NaN, as 0 > v ? 0 : v. */
static inline __attribute__((always_inline)) __m256 epilogue8(__m256 v, int mode, __m256 slope,
                                                               const float *gate)
{
    __m256 zero = _mm256_setzero_ps();
    switch (mode) {
    case MODE_FWD_RELU:
        return _mm256_max_ps(zero, v);
    case MODE_FWD_LEAKY:
        return _mm256_blendv_ps(v, _mm256_mul_ps(v, slope), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    case MODE_BWD_RELU:
        return _mm256_and_ps(_mm256_cmp_ps(_mm256_load_ps(gate), zero, _CMP_GT_OQ), v);
    case MODE_BWD_LEAKY:
        return _mm256_blendv_ps(_mm256_mul_ps(v, slope), v,
                                _mm256_cmp_ps(_mm256_load_ps(gate), zero, _CMP_GT_OQ));
    }
    return v;
}

#define STORE_EPI(dst, v, off) _mm256_store_ps((dst) + (off), epilogue8(v, mode, slope, gate ? gate + (off) : NULL))

/* The core of both SpMM directions over one output row, batch columns
 * [b, b + width) with width 64, 32 or 8 (chunk_width):
 * out[..] = epilogue(init + sum_j val(j) * in_rows[row(j)][..]), j in [k0, k1).
 * `rows` gives the input row of each term; `perm` (may be NULL) maps the
 * term to its value, as in the transposed view. out and gate point at the
 * row's column b. */
static inline __attribute__((always_inline)) void
spmm_row_avx2(const float *values, const int32_t *perm, index_ref rows, int narrow, int k0, int k1,
              const float *in, float init, float *out, const float *gate, int bp, int b, int mode,
              __m256 slope)
{
    /* 64 columns: 8 independent accumulators hide the FMA latency, and
     * each broadcast is reused 8 times. */
    if (b + 64 <= bp) {
        __m256 a0 = _mm256_set1_ps(init), a1 = a0, a2 = a0, a3 = a0;
        __m256 a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int k = k0; k < k1; k++) {
            if (k + PREFETCH_AHEAD < k1) {
                const char *p = (const char *)(in + (size_t)IDX(rows, k + PREFETCH_AHEAD) * bp + b);
                for (int l = 0; l < PREFETCH_LINES; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
            }
            __m256 v = _mm256_broadcast_ss(values + (perm ? perm[k] : k));
            const float *xi = in + (size_t)IDX(rows, k) * bp + b;
            a0 = _mm256_fmadd_ps(v, _mm256_load_ps(xi), a0);
            a1 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 8), a1);
            a2 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 16), a2);
            a3 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 24), a3);
            a4 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 32), a4);
            a5 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 40), a5);
            a6 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 48), a6);
            a7 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 56), a7);
        }
        STORE_EPI(out, a0, 0);
        STORE_EPI(out, a1, 8);
        STORE_EPI(out, a2, 16);
        STORE_EPI(out, a3, 24);
        STORE_EPI(out, a4, 32);
        STORE_EPI(out, a5, 40);
        STORE_EPI(out, a6, 48);
        STORE_EPI(out, a7, 56);
    } else if (b + 32 <= bp) {
        /* 32 columns: two sets of 4 accumulators, for even and odd terms,
         * keep 8 FMA chains in flight. */
        __m256 a0 = _mm256_set1_ps(init), a1 = a0, a2 = a0, a3 = a0;
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        int k = k0;
        for (; k + 2 <= k1; k += 2) {
            __m256 v = _mm256_broadcast_ss(values + (perm ? perm[k] : k));
            __m256 u = _mm256_broadcast_ss(values + (perm ? perm[k + 1] : k + 1));
            const float *xi = in + (size_t)IDX(rows, k) * bp + b;
            const float *xj = in + (size_t)IDX(rows, k + 1) * bp + b;
            a0 = _mm256_fmadd_ps(v, _mm256_load_ps(xi), a0);
            a1 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 8), a1);
            a2 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 16), a2);
            a3 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 24), a3);
            c0 = _mm256_fmadd_ps(u, _mm256_load_ps(xj), c0);
            c1 = _mm256_fmadd_ps(u, _mm256_load_ps(xj + 8), c1);
            c2 = _mm256_fmadd_ps(u, _mm256_load_ps(xj + 16), c2);
            c3 = _mm256_fmadd_ps(u, _mm256_load_ps(xj + 24), c3);
        }
        if (k < k1) {
            __m256 v = _mm256_broadcast_ss(values + (perm ? perm[k] : k));
            const float *xi = in + (size_t)IDX(rows, k) * bp + b;
            a0 = _mm256_fmadd_ps(v, _mm256_load_ps(xi), a0);
            a1 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 8), a1);
            a2 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 16), a2);
            a3 = _mm256_fmadd_ps(v, _mm256_load_ps(xi + 24), a3);
        }
        STORE_EPI(out, _mm256_add_ps(a0, c0), 0);
        STORE_EPI(out, _mm256_add_ps(a1, c1), 8);
        STORE_EPI(out, _mm256_add_ps(a2, c2), 16);
        STORE_EPI(out, _mm256_add_ps(a3, c3), 24);
    } else {
        /* 8 columns: one vector per term, so four partial sums (terms
         * k mod 4) stand in for the missing accumulators. */
        __m256 a0 = _mm256_set1_ps(init), a1 = _mm256_setzero_ps(), a2 = a1, a3 = a1;
        int k = k0;
        for (; k + 4 <= k1; k += 4) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(values + (perm ? perm[k] : k)),
                                 _mm256_load_ps(in + (size_t)IDX(rows, k) * bp + b), a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(values + (perm ? perm[k + 1] : k + 1)),
                                 _mm256_load_ps(in + (size_t)IDX(rows, k + 1) * bp + b), a1);
            a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(values + (perm ? perm[k + 2] : k + 2)),
                                 _mm256_load_ps(in + (size_t)IDX(rows, k + 2) * bp + b), a2);
            a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(values + (perm ? perm[k + 3] : k + 3)),
                                 _mm256_load_ps(in + (size_t)IDX(rows, k + 3) * bp + b), a3);
        }
        for (; k < k1; k++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(values + (perm ? perm[k] : k)),
                                 _mm256_load_ps(in + (size_t)IDX(rows, k) * bp + b), a0);
        STORE_EPI(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), 0);
    }
}

static inline int chunk_width(int b, int bp) { return b + 64 <= bp ? 64 : b + 32 <= bp ? 32 : 8; }

/* The order of the loops over rows and chunks of 64 columns of the dense
 * operand (x forward, dy backward). A row doing all its chunks at once
 * reads its indices once and each input row whole (8 cache lines at batch
 * 128); doing one chunk for every row before the next keeps the chunk
 * (rows x 64 floats) in cache while the rows stream through it. Measured
 * (one thread, batch 128): the operand in L2 (1000 x 1000): rows first,
 * 5-19% faster; a chunk in L2 but not the whole (1000 x 1000 at batch
 * 256): about even, chunks first; neither in any cache (250,000 wide:
 * 64 MB per chunk): rows first, 16% faster. */
#define L2_BYTES ((size_t)512 * 1024)
#define CHUNK_CACHE_BYTES ((size_t)4 * 1024 * 1024)

static inline int rows_first(int rows, int bp)
{
    size_t whole = (size_t)rows * (size_t)bp * sizeof(float);
    size_t chunk = (size_t)rows * 64 * sizeof(float);
    return whole <= L2_BYTES || chunk > CHUNK_CACHE_BYTES;
}

/* Rows [r0, r1). */
static inline __attribute__((always_inline)) void
forward_rows(const csr_matrix *w, const float *bias, const float *x, float *y, int bp, int r0,
             int r1, int mode, int narrow, __m256 slope)
{
    index_ref idx = index_at(w->indices, w->indices16, 0);
    if (rows_first(w->cols, bp)) {
        for (int o = r0; o < r1; o++)
            for (int b = 0; b < bp; b += chunk_width(b, bp))
                spmm_row_avx2(w->values, NULL, idx, narrow, w->indptr[o], w->indptr[o + 1], x,
                              bias ? bias[o] : 0.0f, y + (size_t)o * bp + b, NULL, bp, b, mode, slope);
        return;
    }
    for (int b = 0; b < bp; b += chunk_width(b, bp))
        for (int o = r0; o < r1; o++)
            spmm_row_avx2(w->values, NULL, idx, narrow, w->indptr[o], w->indptr[o + 1], x,
                          bias ? bias[o] : 0.0f, y + (size_t)o * bp + b, NULL, bp, b, mode, slope);
}

static void spmm_forward_avx2(const csr_matrix *w, const float *bias, const float *x, float *y,
                              int bp, int r0, int r1, kernel_epilogue epi)
{
    __m256 slope = _mm256_set1_ps(epi.slope);
    DISPATCH(forward_rows, epilogue_mode(epi, 0), w->indices16 != NULL, w, bias, x, y, bp, r0, r1);
}

/* The values of a block of columns are gathered into a buffer of
 * GATHER_MAX (spmm_common.h) before the chunks read them. */
static inline __attribute__((always_inline)) void
backward_columns(const csr_matrix *w, const float *dy, float *dx, int bp, int c0, int c1,
                 const float *a, const int32_t *cmap, int mode, int narrow, __m256 slope)
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
                spmm_row_avx2(w->values, w->t_perm, rows, narrow, tp[c], tp[c + 1], dy, 0.0f,
                              dx + DX_ROW(c) + b, a ? a + DX_ROW(c) + b : NULL, bp, b,
                              mode, slope);
            c++;
            continue;
        }
        for (int k = base; k < tp[ce]; k++) vals[k - base] = w->values[w->t_perm[k]];
#define BACKWARD_COLUMN(j, b)                                                                      \
    spmm_row_avx2(vals + (tp[j] - base), NULL, index_at(w->t_rows, w->t_rows16, tp[j]), narrow, 0, \
                  tp[j + 1] - tp[j], dy, 0.0f, dx + DX_ROW(j) + (b),                         \
                  a ? a + DX_ROW(j) + (b) : NULL, bp, b, mode, slope)
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

static void spmm_backward_data_avx2(const csr_matrix *w, const float *dy, float *dx, int bp,
                                    int c0, int c1, const float *a, kernel_epilogue epi)
{
    __m256 slope = _mm256_set1_ps(epi.slope);
    int mode = a ? epilogue_mode(epi, 1) : MODE_PLAIN;
    DISPATCH(backward_columns, mode, w->t_rows16 != NULL, w, dy, dx, bp, c0, c1, a, NULL);
}

void spmm_backward_data_mapped_avx2(const csr_matrix *view, const int32_t *cols_of,
                                    const float *dy, float *dx, int bp, int q0, int q1)
{
    __m256 slope = _mm256_setzero_ps();
    DISPATCH(backward_columns, MODE_PLAIN, view->t_rows16 != NULL, view, dy, dx, bp, q0, q1, NULL,
             cols_of);
}

/* dw of one row, four entries at a time (avx2_dot4), starting the input
 * rows of the next four early. */
static inline __attribute__((always_inline)) void
sddmm_row_avx2(const float *dyo, const float *x, index_ref idx, int narrow, float *dw, int n, int bp)
{
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        const float *x0 = x + (size_t)IDX(idx, k) * bp, *x1 = x + (size_t)IDX(idx, k + 1) * bp;
        const float *x2 = x + (size_t)IDX(idx, k + 2) * bp, *x3 = x + (size_t)IDX(idx, k + 3) * bp;
        if (k + 8 <= n)
            for (int j = 4; j < 8; j++) {
                const char *p = (const char *)(x + (size_t)IDX(idx, k + j) * bp);
                for (int l = 0; l < PREFETCH_LINES; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
            }
        _mm_storeu_ps(dw + k, avx2_dot4(dyo, x0, x1, x2, x3, bp));
    }
    for (; k < n; k++) dw[k] = avx2_dot1(dyo, x + (size_t)IDX(idx, k) * bp, bp);
}

/* Sum of one row of dy, the bias gradient (two accumulators). */
static float row_sum_avx2(const float *dyo, int bp)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int b = 0;
    for (; b + 16 <= bp; b += 16) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(dyo + b));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(dyo + b + 8));
    }
    if (b < bp) a0 = _mm256_add_ps(a0, _mm256_load_ps(dyo + b));
    return avx2_hsum1(_mm256_add_ps(a0, a1));
}

static inline __attribute__((always_inline)) void
sddmm_rows(const csr_matrix *w, const float *dy, const float *x, float *dw, float *db, int bp,
           int r0, int r1, int narrow)
{
    for (int o = r0; o < r1; o++) {
        int k0 = w->indptr[o];
        const float *dyo = dy + (size_t)o * bp;
        sddmm_row_avx2(dyo, x, index_at(w->indices, w->indices16, k0), narrow, dw + k0,
                       w->indptr[o + 1] - k0, bp);
        if (db) db[o] = row_sum_avx2(dyo, bp);
    }
}

/* The AVX-512 table uses it at small batches (spmm_avx512.c). */
void sddmm_weight_grad_avx2(const csr_matrix *w, const float *dy, const float *x, float *dw,
                            float *db, int bp, int r0, int r1)
{
    if (w->indices16)
        sddmm_rows(w, dy, x, dw, db, bp, r0, r1, 1);
    else
        sddmm_rows(w, dy, x, dw, db, bp, r0, r1, 0);
}

/* Eight entries of x picked by eight column indices. Zen 3's vgatherdps is
 * slower than eight scalar loads put together (measured: 36 against 20 us
 * for 50,000 terms). */
static inline __attribute__((always_inline)) __m256 pick8(const float *x, index_ref idx, int k,
                                                          int narrow)
{
    __m128 lo = _mm_set_ps(x[IDX(idx, k + 3)], x[IDX(idx, k + 2)], x[IDX(idx, k + 1)], x[IDX(idx, k)]);
    __m128 hi = _mm_set_ps(x[IDX(idx, k + 7)], x[IDX(idx, k + 6)], x[IDX(idx, k + 5)], x[IDX(idx, k + 4)]);
    return _mm256_set_m128(hi, lo);
}

/* SpMV for a single sample: eight terms at a time into two accumulators
 * (sixteen per step), the ragged end of a row in scalar. With 16-bit
 * indices a nonzero is 6 bytes: the weights of a 1000 x 1000 layer at 5%
 * fit in one core's L2, and are read from there call after call. */
static inline __attribute__((always_inline)) void
spmv_rows(const csr_matrix *w, const float *bias, const float *x, float *y, int r0, int r1,
          kernel_epilogue epi, int narrow)
{
    const float *val = w->values;
    index_ref idx = index_at(w->indices, w->indices16, 0);
    for (int o = r0; o < r1; o++) {
        int k = w->indptr[o], k1 = w->indptr[o + 1];
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        for (; k + 16 <= k1; k += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(val + k), pick8(x, idx, k, narrow), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(val + k + 8), pick8(x, idx, k + 8, narrow), a1);
        }
        if (k + 8 <= k1) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(val + k), pick8(x, idx, k, narrow), a0);
            k += 8;
        }
        float tail = 0.0f;
        for (; k < k1; k++) tail += val[k] * x[IDX(idx, k)];
        float s = (bias ? bias[o] : 0.0f) + (avx2_hsum1(_mm256_add_ps(a0, a1)) + tail);
        if (epi.act == KACT_RELU)
            s = 0.0f > s ? 0.0f : s;
        else if (epi.act == KACT_LEAKY)
            s = s < 0.0f ? epi.slope * s : s;
        y[o] = s;
    }
}

/* The AVX-512 table uses it too (spmm_avx512.c). */
void spmv_forward_avx2(const csr_matrix *w, const float *bias, const float *x, float *y, int r0,
                       int r1, kernel_epilogue epi)
{
    if (w->indices16)
        spmv_rows(w, bias, x, y, r0, r1, epi, 1);
    else
        spmv_rows(w, bias, x, y, r0, r1, epi, 0);
}

/* The batch transposed 8 samples x 8 features at a time: eight 32-byte
 * loads, a register transpose, eight aligned 32-byte stores (the scalar
 * loop stored one float per cache line). Same arithmetic as the reference
 * (subtract, then multiply), so the same bytes. */
static void load_batch_avx2(const float *x, int features, const int *index, int n, float shift,
                            float scale, float *a, int bp, int f0, int f1)
{
    const __m256 vs = _mm256_set1_ps(shift), vm = _mm256_set1_ps(scale);
    int b = 0;
    for (; b + 8 <= n; b += 8) {
        const float *row[8];
        for (int j = 0; j < 8; j++) row[j] = x + (size_t)(index ? index[b + j] : b + j) * features;
        /* The samples are at random places in a data set far larger than
         * the caches, so the next eight rows' features are requested now,
         * while these eight are transposed. */
        for (int j = 8; j < 16 && b + j < n; j++) {
            const char *p = (const char *)(x + (size_t)(index ? index[b + j] : b + j) * features);
            for (size_t l = (size_t)f0 * sizeof(float); l < (size_t)f1 * sizeof(float); l += 64)
                _mm_prefetch(p + l, _MM_HINT_T0);
        }
        int f = f0;
        for (; f + 8 <= f1; f += 8) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(row[j] + f);
            transpose8(r);
            for (int i = 0; i < 8; i++)
                _mm256_store_ps(a + (size_t)(f + i) * bp + b,
                                _mm256_mul_ps(_mm256_sub_ps(r[i], vs), vm));
        }
        for (; f < f1; f++)
            for (int j = 0; j < 8; j++) a[(size_t)f * bp + b + j] = (row[j][f] - shift) * scale;
    }
    for (; b < n; b++) {
        const float *rw = x + (size_t)(index ? index[b] : b) * features;
        for (int f = f0; f < f1; f++) a[(size_t)f * bp + b] = (rw[f] - shift) * scale;
    }
    for (int f = f0; f < f1; f++)
        for (int c = n; c < bp; c++) a[(size_t)f * bp + c] = 0.0f;
}

/* Eight comparisons at once; only the (rare) hits cost a branch each. The
 * ordered comparison is false for NaN, as the scalar >= is. */
static int find_at_least_avx2(const float *x, int n, float thr, int32_t *at)
{
    const __m256 sign = _mm256_set1_ps(-0.0f), t = _mm256_set1_ps(thr);
    int count = 0, j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j));
        unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, t, _CMP_GE_OQ));
        while (mask) {
            at[count++] = j + __builtin_ctz(mask);
            mask &= mask - 1;
        }
    }
    for (; j < n; j++)
        if (fabsf(x[j]) >= thr) at[count++] = j;
    return count;
}

/* In the kernel list as "avx2" (kernels/isa.h). */
#define GELU_SUFFIX avx2
#include "kernels/gelu_common.h"

const kernel_table kernels_avx2_table = {
    .name = "avx2",
    .spmm_forward = spmm_forward_avx2,
    .spmm_backward_data = spmm_backward_data_avx2,
    .sddmm_weight_grad = sddmm_weight_grad_avx2,
    .spmv_forward = spmv_forward_avx2,
    .load_batch = load_batch_avx2,
    .find_at_least = find_at_least_avx2,
    .gelu_forward = gelu_forward_avx2,
    .gelu_backward = gelu_backward_avx2,
};
