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

/* Terms [k0, k1) of one output row over the 128-column chunk at b, as
 * spmm_row_avx512 sums them at 128 columns (one chain per lane): the
 * chain starts at init (first) or goes on from the partial sums out
 * holds, and ends in the epilogue (last) or is stored as it is to go on
 * later. A float stored and loaded again is the same float, so a row
 * summed in several parts gives the bytes of the row summed at once. */
static inline __attribute__((always_inline)) void
spmm_row128_part(const float *values, index_ref rows, int narrow, int k0, int k1, const float *in,
                 float init, int first, int last, float *out, const float *gate, int bp, int b,
                 int mode, __m512 slope)
{
    __m512 acc[8];
    for (int q = 0; q < 8; q++)
        acc[q] = first ? _mm512_set1_ps(init) : _mm512_loadu_ps(out + 16 * q);
    for (int k = k0; k < k1; k++) {
        if (k + PREFETCH_AHEAD < k1) {
            const char *p = (const char *)(in + (size_t)IDX(rows, k + PREFETCH_AHEAD) * bp + b);
            for (int l = 0; l < PREFETCH_LINES; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
        }
        __m512 v = _mm512_set1_ps(values[k]);
        const float *xi = in + (size_t)IDX(rows, k) * bp + b;
        for (int q = 0; q < 8; q++) acc[q] = _mm512_fmadd_ps(v, _mm512_loadu_ps(xi + 16 * q), acc[q]);
    }
    for (int q = 0; q < 8; q++)
        _mm512_storeu_ps(out + 16 * q,
                         last ? epilogue16(acc[q], mode, slope, gate ? gate + 16 * q : NULL, FULL)
                              : acc[q]);
}

/* Chunks first with a chunk of x larger than SPMM_TILE_BYTES: the chunk's
 * input rows in tiles of that size, and for each tile the terms of a block
 * of output rows that fall in it (a run of each row: indices increase),
 * their partial sums kept in y between tiles. The tile stays in L2 while
 * the block's rows read it. Only for batches of 128·k columns, whose
 * chunks keep one chain per lane. */
#define SPMM_TILE_BYTES ((size_t)512 * 1024)
#define SPMM_ROW_BLOCK 256

static inline int forward_tiled(int cols, int bp)
{
    return bp % 128 == 0 && (size_t)cols * 128 * sizeof(float) > SPMM_TILE_BYTES &&
           !rows_first(cols, bp);
}

static inline __attribute__((always_inline)) void
forward_rows_tiled(const csr_matrix *w, const float *bias, const float *x, float *y, int bp,
                   int r0, int r1, int mode, int narrow, __m512 slope)
{
    index_ref idx = index_at(w->indices, w->indices16, 0);
    int tile = (int)(SPMM_TILE_BYTES / (128 * sizeof(float)));
    int32_t cur[SPMM_ROW_BLOCK];
    for (int ob = r0; ob < r1; ob += SPMM_ROW_BLOCK) {
        int oe = r1 - ob < SPMM_ROW_BLOCK ? r1 : ob + SPMM_ROW_BLOCK;
        for (int b = 0; b < bp; b += 128) {
            for (int o = ob; o < oe; o++) cur[o - ob] = w->indptr[o];
            for (int i1 = tile; i1 - tile < w->cols; i1 += tile)
                for (int o = ob; o < oe; o++) {
                    int k = cur[o - ob], end = w->indptr[o + 1], ke = k;
                    while (ke < end && IDX(idx, ke) < i1) ke++;
                    spmm_row128_part(w->values, idx, narrow, k, ke, x, bias ? bias[o] : 0.0f,
                                     i1 == tile, i1 >= w->cols, y + (size_t)o * bp + b, NULL, bp,
                                     b, mode, slope);
                    cur[o - ob] = ke;
                }
        }
    }
}

/* Rows [r0, r1). */
static inline __attribute__((always_inline)) void
forward_rows(const csr_matrix *w, const float *bias, const float *x, float *y, int bp, int r0,
             int r1, int mode, int narrow, __m512 slope)
{
    if (forward_tiled(w->cols, bp)) {
        forward_rows_tiled(w, bias, x, y, bp, r0, r1, mode, narrow, slope);
        return;
    }
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
 * columns gathered first (GATHER_MAX), as in spmm_avx2.c; a chunk of dy
 * too large for L2 in tiles of its rows, as forward_rows_tiled reads x. */
static inline __attribute__((always_inline)) void
backward_columns(const csr_matrix *w, const float *dy, float *dx, int bp, int c0, int c1,
                 const float *a, const int32_t *cmap, int mode, int narrow, __m512 slope)
{
    /* View position j holds column cmap[j] (cmap NULL: column j). */
#define DX_ROW(j) ((size_t)(cmap ? cmap[j] : (j)) * bp)
    const int32_t *tp = w->t_indptr;
    float vals[GATHER_MAX];
    int32_t cur[GATHER_MAX];
    int c = c0, dy_rows_first = rows_first(w->rows, bp), tiled = forward_tiled(w->rows, bp);
    int tile = (int)(SPMM_TILE_BYTES / (128 * sizeof(float)));
    index_ref trows = index_at(w->t_rows, w->t_rows16, 0);
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
        else if (tiled) /* forward_rows_tiled's loops over the view */
            for (int b = 0; b < bp; b += 128) {
                for (int j = c; j < ce; j++) cur[j - c] = tp[j];
                for (int i1 = tile; i1 - tile < w->rows; i1 += tile)
                    for (int j = c; j < ce; j++) {
                        int k = cur[j - c], end = tp[j + 1], ke = k;
                        while (ke < end && IDX(trows, ke) < i1) ke++;
                        spmm_row128_part(vals + (tp[j] - base),
                                         index_at(w->t_rows, w->t_rows16, tp[j]), narrow,
                                         k - tp[j], ke - tp[j], dy, 0.0f, i1 == tile,
                                         i1 >= w->rows, dx + DX_ROW(j) + b,
                                         a ? a + DX_ROW(j) + b : NULL, bp, b, mode, slope);
                        cur[j - c] = ke;
                    }
            }
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

/* The sum avx2_hsum4 gives a lane, for one vector. */
static inline float avx2_hsum1_as4(__m256 f) { return _mm_cvtss_f32(avx2_hsum4(f, f, f, f)); }

/* Entries [k, ke) of a row whose entries start at k0 and number n: the
 * same sums as sddmm_row_avx512 gives them. Each entry's folded vector
 * does not depend on which entries share its avx512_dot_folded call, so
 * they go eight at a time, or all that are left (eight chains cover the
 * FMA latency; one alone waits on it); its reduction does: the entries of
 * the row's complete groups of four (the first 4·⌊n/4⌋) end in
 * avx2_hsum4, the rest in avx2_hsum1. */
static inline __attribute__((always_inline)) void
sddmm_entries_avx512(const float *dyo, const float *x, index_ref idx, int narrow, float *dw,
                     int k, int ke, int k0, int n, int bp)
{
    int four = k0 + (n & ~3); /* entries before it reduce as groups of four */
    __m256 f[8];
    const float *xs[8];
    while (k < ke) {
        int g = ke - k < 8 ? ke - k : 8;
        for (int j = 0; j < g; j++) xs[j] = x + (size_t)IDX(idx, k + j) * bp;
        for (int j = 8; j < 16 && k + j < ke; j++) {
            const char *p = (const char *)(x + (size_t)IDX(idx, k + j) * bp);
            for (int l = 0; l < PREFETCH_LINES; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);
        }
        switch (g) {
#define FOLD(N)                                                                                    \
    case N:                                                                                        \
        avx512_dot_folded(dyo, xs, bp, f, N);                                                      \
        break;
            FOLD(1) FOLD(2) FOLD(3) FOLD(4) FOLD(5) FOLD(6) FOLD(7) FOLD(8)
#undef FOLD
        }
        int j = 0;
        for (; j + 4 <= g && k + j + 4 <= four; j += 4)
            _mm_storeu_ps(dw + k + j, avx2_hsum4(f[j], f[j + 1], f[j + 2], f[j + 3]));
        for (; j < g; j++) dw[k + j] = k + j < four ? avx2_hsum1_as4(f[j]) : avx2_hsum1(f[j]);
        k += g;
    }
}

/* The weight gradient when the input x is too large for the cache: input
 * rows in tiles of SDDMM_TILE_BYTES, and for each tile the entries of a
 * block of SDDMM_ROW_BLOCK output rows that fall in it (indices increase
 * within a row, so they are a run that starts where the last tile's
 * ended). Each x row is then read from L2 by every entry of the block
 * that needs it, rather than from memory entry by entry. Every entry is
 * still one whole dot product over the batch, summed as
 * sddmm_row_avx512 sums it: the same bytes, in another order. */
#define SDDMM_TILE_BYTES ((size_t)384 * 1024)
#define SDDMM_ROW_BLOCK 64

static inline __attribute__((always_inline)) void
sddmm_rows_tiled(const csr_matrix *w, const float *dy, const float *x, float *dw, float *db,
                 int bp, int r0, int r1, int narrow)
{
    int tile = (int)(SDDMM_TILE_BYTES / ((size_t)bp * sizeof(float)));
    if (tile < 8) tile = 8;
    index_ref idx = index_at(w->indices, w->indices16, 0);
    int32_t cur[SDDMM_ROW_BLOCK];
    for (int ob = r0; ob < r1; ob += SDDMM_ROW_BLOCK) {
        int oe = r1 - ob < SDDMM_ROW_BLOCK ? r1 : ob + SDDMM_ROW_BLOCK;
        for (int o = ob; o < oe; o++) {
            cur[o - ob] = w->indptr[o];
            if (db) db[o] = row_sum_avx512(dy + (size_t)o * bp, bp);
        }
        for (int i1 = tile; i1 - tile < w->cols; i1 += tile)
            for (int o = ob; o < oe; o++) {
                int k = cur[o - ob], end = w->indptr[o + 1], ke = k;
                while (ke < end && IDX(idx, ke) < i1) ke++;
                if (ke > k)
                    sddmm_entries_avx512(dy + (size_t)o * bp, x, idx, narrow, dw, k, ke,
                                         w->indptr[o], end - w->indptr[o], bp);
                cur[o - ob] = ke;
            }
    }
}

static inline __attribute__((always_inline)) void
sddmm_rows(const csr_matrix *w, const float *dy, const float *x, float *dw, float *db, int bp,
           int r0, int r1, int narrow)
{
    if ((size_t)w->cols * bp * sizeof(float) > 2 * SDDMM_TILE_BYTES) {
        sddmm_rows_tiled(w, dy, x, dw, db, bp, r0, r1, narrow);
        return;
    }
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
 * density 0.05); both are bound by the loads of x, one per term. One zmm
 * holding AVX2's two 8-lane sums side by side (the same bytes, one loop
 * exit a row, a branch-free masked tail) ran at 0.44-0.64x on a GPT's
 * maps at 90% (docs/performance.md, batch-1 generation). */
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
