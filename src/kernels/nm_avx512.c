/* AVX-512 twins of nm_scalar.c (compiled with -mavx512f -mavx512vl
 * -mavx512bw -mavx512dq -mfma, chosen at run time), nm_avx2.c with
 * 16-float vectors: batch chunks of 128, 64, 32 or 16 columns, each body
 * instantiated with the chunk and the common N (1, 2, 4) as constants.
 * The last 8 columns of a batch that is not a multiple of 16 are ymm
 * registers in the forward and a masked vector in the in-memory backward
 * (there only dy's loads, once per row, are masked; not measured against
 * ymm). The weight gradient sums as nm_avx2.c's does
 * (avx512_dot.h), and so do the forward and the backward data at 128
 * columns: at batches padding to a multiple of 128 (plus 8 or not) both
 * tables give the same bytes. The single-sample forward is nm_avx2.c's. */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx512_dot.h"
#include "kernels/nm_kernels.h"

#define PREFETCH_AHEAD 8

#define FULL ((__mmask16)0xffff)
#define LOW8 ((__mmask16)0x00ff)

/* The input row of slot k of a row: its group times m plus its offset. */
#define SLOT_ROW(k, n, m, off) nm_slot_input(k, n, m, off)

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

/* The batch chunk starting at column b: 128, 64, 32 or 16 columns, or the
 * last 8 (bp is a multiple of 8); at most `widest`. */
static inline int chunk_width(int b, int bp, int widest)
{
    int left = bp - b < widest ? bp - b : widest;
    return left >= 128 ? 128 : left >= 64 ? 64 : left >= 32 ? 32 : left >= 16 ? 16 : 8;
}

/* Calls F(..., n, V, P, last) for the chunk of `width` columns with n and
 * the chunk's shape as constants: V vectors (the last under `last`) and P
 * partial sums, V·P = 8 FMA chains (4 at V = 1), as in spmm_avx512.c. */
#define CHUNK_SHAPES(F, n, width, ...)                                                             \
    do {                                                                                           \
        switch (width) {                                                                           \
        case 128: F(__VA_ARGS__, n, 8, 1, FULL); break;                                            \
        case 64: F(__VA_ARGS__, n, 4, 2, FULL); break;                                             \
        case 32: F(__VA_ARGS__, n, 2, 4, FULL); break;                                             \
        case 16: F(__VA_ARGS__, n, 1, 4, FULL); break;                                             \
        default: F(__VA_ARGS__, n, 1, 4, LOW8); break;                                             \
        }                                                                                          \
    } while (0)

#define DISPATCH_N(F, n, width, ...)                                                               \
    do {                                                                                           \
        if ((n) == 1) CHUNK_SHAPES(F, 1, width, __VA_ARGS__);                                      \
        else if ((n) == 2) CHUNK_SHAPES(F, 2, width, __VA_ARGS__);                                 \
        else if ((n) == 4) CHUNK_SHAPES(F, 4, width, __VA_ARGS__);                                 \
        else CHUNK_SHAPES(F, n, width, __VA_ARGS__);                                               \
    } while (0)

/* out[0, 16V) = init + sum over the row's slots of value * x[row(slot)][b, ...).
 * Groups are walked with a pointer stepping m input rows; G groups per
 * step give P slots (slot s of a step feeds partial sum s mod P). */
static inline __attribute__((always_inline)) void
forward_chunk(const float *v, const uint8_t *off, int groups, int m, const float *x, int bp, int b,
              float init, float *out, const int n, const int V, const int P, const __mmask16 last)
{
    const int G = P / n > 0 ? P / n : 1;
    size_t stride = (size_t)bp, step = (size_t)m * stride;
    __m512 acc[8];
    for (int q = 0; q < P * V; q++) acc[q] = _mm512_setzero_ps();
    for (int q = 0; q < V; q++) acc[q] = _mm512_set1_ps(init);
    const float *xg = x + b;
    int g = 0;
    for (; g + G <= groups; g += G, v += G * n, off += G * n, xg += G * step) {
        if (V >= 4 && g + PREFETCH_AHEAD < groups) {
            const char *p = (const char *)(xg + PREFETCH_AHEAD * step + off[PREFETCH_AHEAD * n] * stride);
            _mm_prefetch(p, _MM_HINT_T0);
            _mm_prefetch(p + 64, _MM_HINT_T0);
        }
        for (int s = 0; s < G * n; s++) {
            int p = s % P;
            __m512 w = _mm512_set1_ps(v[s]);
            const float *xi = xg + (size_t)(s / n) * step + off[s] * stride;
            for (int q = 0; q < V; q++)
                acc[p * V + q] = _mm512_fmadd_ps(w, load16(xi + 16 * q, q == V - 1 ? last : FULL),
                                                 acc[p * V + q]);
        }
    }
    for (; g < groups; g++, v += n, off += n, xg += step)
        for (int s = 0; s < n; s++) {
            __m512 w = _mm512_set1_ps(v[s]);
            const float *xi = xg + off[s] * stride;
            for (int q = 0; q < V; q++)
                acc[q] = _mm512_fmadd_ps(w, load16(xi + 16 * q, q == V - 1 ? last : FULL), acc[q]);
        }
    for (int p = 1; p < P; p++)
        for (int q = 0; q < V; q++) acc[q] = _mm512_add_ps(acc[q], acc[p * V + q]);
    for (int q = 0; q < V; q++) store16(out + 16 * q, acc[q], q == V - 1 ? last : FULL);
}

/* The last 8 columns of a batch that is not a multiple of 16: nm_avx2.c's
 * 8-column chunk in ymm registers (faster than a masked 16-lane vector, as
 * for CSR: spmm_avx512.c), the same sums. */
static inline __attribute__((always_inline)) void
forward_chunk8(const float *v, const uint8_t *off, int groups, int m, const float *x, int bp,
               int b, float init, float *out, const int n)
{
    const int P = 4, G = P / n > 0 ? P / n : 1;
    size_t stride = (size_t)bp, step = (size_t)m * stride;
    __m256 acc[4] = {_mm256_set1_ps(init), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    const float *xg = x + b;
    int g = 0;
    for (; g + G <= groups; g += G, v += G * n, off += G * n, xg += G * step)
        for (int s = 0; s < G * n; s++)
            acc[s % P] = _mm256_fmadd_ps(_mm256_broadcast_ss(v + s),
                                         _mm256_loadu_ps(xg + (size_t)(s / n) * step + off[s] * stride),
                                         acc[s % P]);
    for (; g < groups; g++, v += n, off += n, xg += step)
        for (int s = 0; s < n; s++)
            acc[0] = _mm256_fmadd_ps(_mm256_broadcast_ss(v + s), _mm256_loadu_ps(xg + off[s] * stride),
                                     acc[0]);
    for (int p = 1; p < P; p++) acc[0] = _mm256_add_ps(acc[0], acc[p]);
    _mm256_storeu_ps(out, acc[0]);
}

#define FORWARD_CHUNK(w, bias, x, y, bp, b, o, n, V, P, last)                                      \
    do {                                                                                           \
        if ((last) == FULL)                                                                        \
            forward_chunk((w)->values + (size_t)(o) * slots, (w)->offsets + (size_t)(o) * slots,   \
                          (w)->groups, (w)->m, x, bp, b, (bias) ? (bias)[o] : 0.0f,                \
                          (y) + (size_t)(o) * (bp) + (b), n, V, P, FULL);                          \
        else                                                                                       \
            forward_chunk8((w)->values + (size_t)(o) * slots, (w)->offsets + (size_t)(o) * slots,  \
                           (w)->groups, (w)->m, x, bp, b, (bias) ? (bias)[o] : 0.0f,               \
                           (y) + (size_t)(o) * (bp) + (b), n);                                     \
    } while (0)

/* Rows first while x fits in L2, else chunks first (nm_avx2.c). */
#define L2_BYTES ((size_t)512 * 1024)

static void forward(const nm_matrix *w, const float *bias, const float *x, float *y, int bp,
                    int r0, int r1)
{
    int slots = nm_slots_per_row(w);
    if ((size_t)w->cols * (size_t)bp * sizeof(float) <= L2_BYTES) {
        for (int o = r0; o < r1; o++)
            for (int b = 0; b < bp; b += chunk_width(b, bp, 128))
                DISPATCH_N(FORWARD_CHUNK, w->n, chunk_width(b, bp, 128), w, bias, x, y, bp, b, o);
        return;
    }
    for (int b = 0; b < bp; b += chunk_width(b, bp, 128))
        for (int o = r0; o < r1; o++)
            DISPATCH_N(FORWARD_CHUNK, w->n, chunk_width(b, bp, 128), w, bias, x, y, bp, b, o);
}

/* Backward data without the transposed view sums every row's contribution
 * into an L1-resident accumulator of a block of inputs, as nm_avx2.c
 * does, in chunks of at most 64 columns so that the accumulator stays the
 * 32 KB measured best there (BACKWARD_INPUTS inputs x 64 floats). */
#define BACKWARD_SLOTS 32
#define BACKWARD_INPUTS 128
#define ACC_WIDTH 64

static inline __attribute__((always_inline)) void
backward_chunk(const nm_matrix *w, const float *dy, float *dx, int bp, int gb, int ge, int b,
               float *acc, const int n, const int V, const int P, const __mmask16 last)
{
    (void)P;
    int m = w->m, inputs = (ge - gb) * m, block_slots = (ge - gb) * n;
    memset(acc, 0, sizeof(float) * (size_t)inputs * 16 * V);
    for (int o = 0; o < w->rows; o++) {
        const float *d = dy + (size_t)o * bp + b;
        __m512 dv[4];
        for (int q = 0; q < V; q++) dv[q] = load16(d + 16 * q, q == V - 1 ? last : FULL);
        size_t first = ((size_t)o * w->groups + gb) * n;
        const float *v = w->values + first;
        const uint8_t *off = w->offsets + first;
        for (int k = 0; k < block_slots; k++) {
            __m512 s = _mm512_set1_ps(v[k]);
            float *a = acc + (size_t)SLOT_ROW(k, n, m, off) * 16 * V;
            for (int q = 0; q < V; q++)
                _mm512_store_ps(a + 16 * q, _mm512_fmadd_ps(s, dv[q], _mm512_load_ps(a + 16 * q)));
        }
    }
    int width = 16 * V - (last == FULL ? 0 : 8);
    for (int i = 0; i < inputs; i++)
        memcpy(dx + (size_t)(gb * m + i) * bp + b, acc + (size_t)i * 16 * V, sizeof(float) * width);
}

static void backward_accumulate(const nm_matrix *w, const float *dy, float *dx, int bp, int g0,
                                int g1)
{
    int per_block = BACKWARD_SLOTS / w->n < BACKWARD_INPUTS / w->m ? BACKWARD_SLOTS / w->n
                                                                    : BACKWARD_INPUTS / w->m;
    if (per_block < 1) per_block = 1;
    _Alignas(64) float acc[(NM_MAX_M > BACKWARD_INPUTS ? NM_MAX_M : BACKWARD_INPUTS) * ACC_WIDTH];
    for (int gb = g0; gb < g1; gb += per_block) {
        int ge = gb + per_block < g1 ? gb + per_block : g1;
        for (int b = 0; b < bp; b += chunk_width(b, bp, ACC_WIDTH))
            DISPATCH_N(backward_chunk, w->n, chunk_width(b, bp, ACC_WIDTH), w, dy, dx, bp, gb, ge,
                       b, acc);
    }
}

/* With a transposed view, CSR's backward over it (spmm_avx512.c), as in
 * nm_avx2.c, which also says when the view is not worth it. */
static void backward_data(const nm_matrix *w, const float *dy, float *dx, int bp, int g0, int g1)
{
    if (!w->t_start || (bp <= 32 && w->m <= 8)) {
        backward_accumulate(w, dy, dx, bp, g0, g1);
        return;
    }
    csr_matrix view = {.rows = w->rows,
                       .cols = w->cols,
                       .nnz = w->rows * w->groups * w->n,
                       .values = w->values,
                       .t_indptr = w->t_start,
                       .t_rows = w->t_rows,
                       .t_perm = w->t_slot,
                       .t_rows16 = w->t_rows16};
    if (g0 == 0 && g1 == w->groups) {
        spmm_backward_data_mapped_avx512(&view, w->t_col, dy, dx, bp, 0, w->cols);
        return;
    }
    for (int j = 0; j < w->m; j++)
        spmm_backward_data_mapped_avx512(&view, w->t_col, dy, dx, bp, j * w->groups + g0,
                                         j * w->groups + g1);
}

/* dw of one row: eight slots at a time, then four, then one by one, the
 * same sums as nm_avx2.c's four-at-a-time; the next eight slots' input
 * rows are prefetched at 64 columns and more. */
static inline __attribute__((always_inline)) void
weight_grad_row(const float *d, const uint8_t *off, int slots, int m, const float *x, int bp,
                float *out, const int n)
{
    const int prefetch = bp >= 64;
    const float *xs[8];
    int k = 0;
    for (; k + 8 <= slots; k += 8) {
        for (int j = 0; j < 8; j++) xs[j] = x + (size_t)SLOT_ROW(k + j, n, m, off) * bp;
        if (prefetch && k + 16 <= slots)
            for (int j = 8; j < 16; j++) {
                const char *p = (const char *)(x + (size_t)SLOT_ROW(k + j, n, m, off) * bp);
                _mm_prefetch(p, _MM_HINT_T0);
                _mm_prefetch(p + 64, _MM_HINT_T0);
            }
        avx512_dot8(d, xs, bp, out + k);
    }
    if (k + 4 <= slots) {
        for (int j = 0; j < 4; j++) xs[j] = x + (size_t)SLOT_ROW(k + j, n, m, off) * bp;
        avx512_dot4(d, xs, bp, out + k);
        k += 4;
    }
    for (; k < slots; k++) out[k] = avx512_dot1(d, x + (size_t)SLOT_ROW(k, n, m, off) * bp, bp);
}

static void weight_grad(const nm_matrix *w, const float *dy, const float *x, float *dw, int bp,
                        int r0, int r1)
{
    int slots = nm_slots_per_row(w);
    for (int o = r0; o < r1; o++) {
        const float *d = dy + (size_t)o * bp;
        const uint8_t *off = w->offsets + (size_t)o * slots;
        float *out = dw + (size_t)o * slots;
        switch (w->n) {
        case 1: weight_grad_row(d, off, slots, w->m, x, bp, out, 1); break;
        case 2: weight_grad_row(d, off, slots, w->m, x, bp, out, 2); break;
        case 4: weight_grad_row(d, off, slots, w->m, x, bp, out, 4); break;
        default: weight_grad_row(d, off, slots, w->m, x, bp, out, w->n); break;
        }
    }
}

/* The single-sample forward is nm_avx2.c's: gathers of x were slower
 * than its scalar loads, as for CSR's SpMV (spmm_avx512.c). */
void nm_forward_vector_avx2(const nm_matrix *w, const float *bias, const float *x, float *y,
                            int r0, int r1);

/* In the kernel list as "avx512" (kernels/isa.h). */
const nm_kernel_table nm_kernels_avx512_table = {"avx512", forward, backward_data, weight_grad,
                                                 nm_forward_vector_avx2};
