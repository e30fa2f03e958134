/* AVX2+FMA twins of nm_scalar.c (compiled with -mavx2 -mfma, chosen at run
 * time). Same idea as the CSR kernels: vectorise over the batch and
 * broadcast the weight; the input row of a slot is g*m + offset, computed
 * from a byte instead of loaded as a 32-bit index. Every kernel is one
 * body instantiated with the batch chunk width (64, 32 or 8 columns, as the
 * CSR kernels) and the common N (1, 2, 4) as constants, so the slot loops
 * unroll and the group of a slot is a shift. */
#include <immintrin.h>
#include <string.h>

#include "kernels/avx2_dot.h"
#include "kernels/kernels.h"
#include "kernels/nm_kernels.h"

/* As in the CSR kernels: start the next input rows' streams a few slots
 * early (the rows of one output row are in order, but far apart). */
#define PREFETCH_AHEAD 8

/* The input row of slot k of a row: its group times m plus its offset. */
#define SLOT_ROW(k, n, m, off) nm_slot_input(k, n, m, off)

/* The chunk of batch columns starting at b: 64, then 32, then 8 (bp is a
 * multiple of 8). */
static inline int chunk_width(int b, int bp) { return b + 64 <= bp ? 64 : b + 32 <= bp ? 32 : 8; }

/* Partial sums per accumulator vector at chunk width 8·V: enough FMA
 * chains in flight (8 at 64 and 32 columns, 4 at 8) to cover the latency;
 * slot k feeds partial sum k mod P. */
#define PARTIALS(V) ((V) >= 8 ? 1 : (V) >= 4 ? 2 : 4)

/* Calls F(..., n, V) with n and the chunk's vector count as constants. */
#define DISPATCH_N_V(F, n, width, ...)                                                             \
    do {                                                                                           \
        int v_ = (width) / 8;                                                                      \
        if ((n) == 1) {                                                                            \
            if (v_ == 8) F(__VA_ARGS__, 1, 8); else if (v_ == 4) F(__VA_ARGS__, 1, 4);             \
            else F(__VA_ARGS__, 1, 1);                                                             \
        } else if ((n) == 2) {                                                                     \
            if (v_ == 8) F(__VA_ARGS__, 2, 8); else if (v_ == 4) F(__VA_ARGS__, 2, 4);             \
            else F(__VA_ARGS__, 2, 1);                                                             \
        } else if ((n) == 4) {                                                                     \
            if (v_ == 8) F(__VA_ARGS__, 4, 8); else if (v_ == 4) F(__VA_ARGS__, 4, 4);             \
            else F(__VA_ARGS__, 4, 1);                                                             \
        } else {                                                                                   \
            if (v_ == 8) F(__VA_ARGS__, n, 8); else if (v_ == 4) F(__VA_ARGS__, n, 4);             \
            else F(__VA_ARGS__, n, 1);                                                             \
        }                                                                                          \
    } while (0)

/* out[0, 8V) = init + sum over the row's slots of value * x[row(slot)][b, b + 8V).
 * Groups are walked with a pointer stepping m input rows, so a slot's row
 * costs one multiply by its offset; G groups per step give P slots. */
static inline __attribute__((always_inline)) void
forward_chunk(const float *v, const uint8_t *off, int groups, int m, const float *x, int bp, int b,
              float init, float *out, const int n, const int V)
{
    const int P = PARTIALS(V), G = P / n > 0 ? P / n : 1;
    size_t stride = (size_t)bp, step = (size_t)m * stride;
    __m256 acc[8];
    for (int q = 0; q < P * V; q++) acc[q] = _mm256_setzero_ps();
    for (int q = 0; q < V; q++) acc[q] = _mm256_set1_ps(init);
    const float *xg = x + b;
    int g = 0;
    for (; g + G <= groups; g += G, v += G * n, off += G * n, xg += G * step) {
        if (V >= 8 && g + PREFETCH_AHEAD < groups) {
            const char *p = (const char *)(xg + PREFETCH_AHEAD * step + off[PREFETCH_AHEAD * n] * stride);
            _mm_prefetch(p, _MM_HINT_T0);
            _mm_prefetch(p + 64, _MM_HINT_T0);
        }
        for (int s = 0; s < G * n; s++) {
            int p = s % P;
            __m256 w = _mm256_broadcast_ss(v + s);
            const float *xi = xg + (size_t)(s / n) * step + off[s] * stride;
            for (int q = 0; q < V; q++)
                acc[p * V + q] = _mm256_fmadd_ps(w, _mm256_load_ps(xi + 8 * q), acc[p * V + q]);
        }
    }
    for (; g < groups; g++, v += n, off += n, xg += step)
        for (int s = 0; s < n; s++) {
            __m256 w = _mm256_broadcast_ss(v + s);
            const float *xi = xg + off[s] * stride;
            for (int q = 0; q < V; q++) acc[q] = _mm256_fmadd_ps(w, _mm256_load_ps(xi + 8 * q), acc[q]);
        }
    for (int p = 1; p < P; p++)
        for (int q = 0; q < V; q++) acc[q] = _mm256_add_ps(acc[q], acc[p * V + q]);
    for (int q = 0; q < V; q++) _mm256_store_ps(out + 8 * q, acc[q]);
}

#define FORWARD_CHUNK(w, bias, x, y, bp, b, o, n, V)                                               \
    forward_chunk((w)->values + (size_t)(o) * slots, (w)->offsets + (size_t)(o) * slots,           \
                  (w)->groups, (w)->m, x, bp, b, (bias) ? (bias)[o] : 0.0f, (y) + (size_t)(o) * (bp) + (b), n, V)

/* The order of the loops over rows and chunks, as in the CSR forward: a row
 * doing all its chunks at once reads its slots once, which wins while x
 * fits in L2; beyond that one chunk of x for every row keeps the chunk in
 * cache. */
#define L2_BYTES ((size_t)512 * 1024)

static void forward(const nm_matrix *w, const float *bias, const float *x, float *y, int bp,
                    int r0, int r1)
{
    int slots = nm_slots_per_row(w);
    if ((size_t)w->cols * (size_t)bp * sizeof(float) <= L2_BYTES) {
        for (int o = r0; o < r1; o++)
            for (int b = 0; b < bp; b += chunk_width(b, bp))
                DISPATCH_N_V(FORWARD_CHUNK, w->n, chunk_width(b, bp), w, bias, x, y, bp, b, o);
        return;
    }
    for (int b = 0; b < bp; b += chunk_width(b, bp))
        for (int o = r0; o < r1; o++)
            DISPATCH_N_V(FORWARD_CHUNK, w->n, chunk_width(b, bp), w, bias, x, y, bp, b, o);
}

/* Backward data gathers, for a block of groups, every row's contribution
 * into an L1-resident accumulator of the block's inputs: each chunk of
 * dy[o] is loaded once and used for all slots of the block. Rows are
 * visited in increasing order, as in the reference. Every term costs a
 * store to its accumulator (CSR's backward sums in registers over its
 * transposed view instead, which N:M does not keep); a per-call
 * transposition into lists was measured 2-6x slower.
 * A block holds about BACKWARD_SLOTS slots of each row, so the loads of a
 * dy chunk are shared by enough terms, and at most BACKWARD_INPUTS inputs
 * (32 KB of accumulators at 64 columns). Measured (1,000-1,024 square, 1
 * thread, batch 32 and 128): against a fixed 64 inputs, 5-25% faster from
 * 1:4 to 1:32 and the same at 2:4; 256 inputs was slower. */
#define BACKWARD_SLOTS 32
#define BACKWARD_INPUTS 128

static inline __attribute__((always_inline)) void
backward_chunk(const nm_matrix *w, const float *dy, float *dx, int bp, int gb, int ge, int b,
               float *acc, const int n, const int V)
{
    int m = w->m, inputs = (ge - gb) * m, block_slots = (ge - gb) * n;
    memset(acc, 0, sizeof(float) * (size_t)inputs * 8 * V);
    for (int o = 0; o < w->rows; o++) {
        const float *d = dy + (size_t)o * bp + b;
        __m256 dv[8];
        for (int q = 0; q < V; q++) dv[q] = _mm256_load_ps(d + 8 * q);
        size_t first = ((size_t)o * w->groups + gb) * n;
        const float *v = w->values + first;
        const uint8_t *off = w->offsets + first;
        for (int k = 0; k < block_slots; k++) {
            __m256 s = _mm256_broadcast_ss(v + k);
            float *a = acc + (size_t)SLOT_ROW(k, n, m, off) * 8 * V;
            for (int q = 0; q < V; q++)
                _mm256_store_ps(a + 8 * q, _mm256_fmadd_ps(s, dv[q], _mm256_load_ps(a + 8 * q)));
        }
    }
    for (int i = 0; i < inputs; i++)
        memcpy(dx + (size_t)(gb * m + i) * bp + b, acc + (size_t)i * 8 * V, sizeof(float) * 8 * V);
}

static void backward_accumulate(const nm_matrix *w, const float *dy, float *dx, int bp, int g0,
                                int g1)
{
    int per_block = BACKWARD_SLOTS / w->n < BACKWARD_INPUTS / w->m ? BACKWARD_SLOTS / w->n
                                                                    : BACKWARD_INPUTS / w->m;
    if (per_block < 1) per_block = 1;
    _Alignas(32) float acc[(NM_MAX_M > BACKWARD_INPUTS ? NM_MAX_M : BACKWARD_INPUTS) * 64];
    for (int gb = g0; gb < g1; gb += per_block) {
        int ge = gb + per_block < g1 ? gb + per_block : g1;
        for (int b = 0; b < bp; b += chunk_width(b, bp))
            DISPATCH_N_V(backward_chunk, w->n, chunk_width(b, bp), w, dy, dx, bp, gb, ge, b, acc);
    }
}

/* With a transposed view, the columns of the groups are CSR's backward
 * over that view: the same sums, in registers, in the same order. The view
 * is offset-major (core/nm.h), so the columns of the groups [g0, g1) are m
 * runs of it, one per offset. */
static void backward_data(const nm_matrix *w, const float *dy, float *dx, int bp, int g0, int g1)
{
    /* Small batches of 1:4 and 1:8 sum in memory even with a view: there
     * the view's gather of values and its per-column work cost more than
     * the stores (measured, 1 thread, 1000 and 1024 square: at batch 1 and
     * 32, 1.0-1.5x CSR's speed in memory against 0.6-0.95x over the view;
     * from batch 128, and for 1:16 and 1:32, the view is faster). */
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
    if (g0 == 0 && g1 == w->groups) { /* every position: one call */
        spmm_backward_data_mapped_avx2(&view, w->t_col, dy, dx, bp, 0, w->cols);
        return;
    }
    for (int j = 0; j < w->m; j++)
        spmm_backward_data_mapped_avx2(&view, w->t_col, dy, dx, bp, j * w->groups + g0,
                                       j * w->groups + g1);
}

/* dw of one row, four slots at a time (avx2_dot4); the next four slots'
 * input rows are prefetched only at 64 columns and more (below that it
 * measured slower: the rows are short and already cached). */
static inline __attribute__((always_inline)) void
weight_grad_row(const float *d, const uint8_t *off, int slots, int m, const float *x, int bp,
                float *out, const int n)
{
    const int prefetch = bp >= 64;
    int k = 0;
    for (; k + 4 <= slots; k += 4) {
        const float *x0 = x + (size_t)SLOT_ROW(k, n, m, off) * bp;
        const float *x1 = x + (size_t)SLOT_ROW(k + 1, n, m, off) * bp;
        const float *x2 = x + (size_t)SLOT_ROW(k + 2, n, m, off) * bp;
        const float *x3 = x + (size_t)SLOT_ROW(k + 3, n, m, off) * bp;
        if (prefetch && k + 8 <= slots)
            for (int j = 4; j < 8; j++) {
                const char *p = (const char *)(x + (size_t)SLOT_ROW(k + j, n, m, off) * bp);
                _mm_prefetch(p, _MM_HINT_T0);
                _mm_prefetch(p + 64, _MM_HINT_T0);
            }
        _mm_storeu_ps(out + k, avx2_dot4(d, x0, x1, x2, x3, bp));
    }
    for (; k < slots; k++) out[k] = avx2_dot1(d, x + (size_t)SLOT_ROW(k, n, m, off) * bp, bp);
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

/* x at the input rows of slots 0..7 from xg, the input row of slot 0's
 * group (its first slot): eight scalar loads, which Zen 3 runs faster than
 * vgatherdps (see pick8 in spmm_avx2.c). With n and m constants each load
 * is a constant plus a byte. */
static inline __attribute__((always_inline)) __m256 pick8_slots(const float *xg, const uint8_t *off,
                                                                const int n, const int m)
{
    __m128 lo = _mm_set_ps(xg[3 / n * m + off[3]], xg[2 / n * m + off[2]], xg[1 / n * m + off[1]],
                           xg[off[0]]);
    __m128 hi = _mm_set_ps(xg[7 / n * m + off[7]], xg[6 / n * m + off[6]], xg[5 / n * m + off[5]],
                           xg[4 / n * m + off[4]]);
    return _mm256_set_m128(hi, lo);
}

/* SpMV for a single sample, as CSR's: eight slots at a time into two
 * accumulators, the end of a row in scalar. The values are contiguous and
 * each index is a byte, so a slot streams 5 bytes. Blocks of 8 slots start
 * on a group (8 is a multiple of n for n = 1, 2, 4, 8). */
static inline __attribute__((always_inline)) void
forward_vector_rows(const nm_matrix *w, const float *bias, const float *x, float *y, int r0, int r1,
                    const int n, const int m)
{
    int slots = nm_slots_per_row(w);
    for (int o = r0; o < r1; o++) {
        const float *v = w->values + (size_t)o * slots;
        const uint8_t *off = w->offsets + (size_t)o * slots;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int k = 0;
        for (; k + 16 <= slots; k += 16) {
            const float *xg = x + (size_t)(k / n) * m;
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + k), pick8_slots(xg, off + k, n, m), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(v + k + 8),
                                 pick8_slots(xg + 8 / n * m, off + k + 8, n, m), a1);
        }
        if (k + 8 <= slots) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + k),
                                 pick8_slots(x + (size_t)(k / n) * m, off + k, n, m), a0);
            k += 8;
        }
        float tail = 0.0f;
        for (; k < slots; k++) tail += v[k] * x[SLOT_ROW(k, n, m, off)];
        y[o] = (bias ? bias[o] : 0.0f) + (avx2_hsum1(_mm256_add_ps(a0, a1)) + tail);
    }
}

/* Any other pattern: the same sums with the input rows computed per slot. */
static void forward_vector_any(const nm_matrix *w, const float *bias, const float *x, float *y,
                               int r0, int r1)
{
    int n = w->n, m = w->m, slots = nm_slots_per_row(w);
    for (int o = r0; o < r1; o++) {
        const float *v = w->values + (size_t)o * slots;
        const uint8_t *off = w->offsets + (size_t)o * slots;
        __m256 a0 = _mm256_setzero_ps();
        int k = 0;
        for (; k + 8 <= slots; k += 8) {
            __m128 lo = _mm_set_ps(x[SLOT_ROW(k + 3, n, m, off)], x[SLOT_ROW(k + 2, n, m, off)],
                                   x[SLOT_ROW(k + 1, n, m, off)], x[SLOT_ROW(k, n, m, off)]);
            __m128 hi = _mm_set_ps(x[SLOT_ROW(k + 7, n, m, off)], x[SLOT_ROW(k + 6, n, m, off)],
                                   x[SLOT_ROW(k + 5, n, m, off)], x[SLOT_ROW(k + 4, n, m, off)]);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(v + k), _mm256_set_m128(hi, lo), a0);
        }
        float tail = 0.0f;
        for (; k < slots; k++) tail += v[k] * x[SLOT_ROW(k, n, m, off)];
        y[o] = (bias ? bias[o] : 0.0f) + (avx2_hsum1(a0) + tail);
    }
}

/* The AVX-512 table uses it too (nm_avx512.c). */
void nm_forward_vector_avx2(const nm_matrix *w, const float *bias, const float *x, float *y,
                            int r0, int r1)
{
#define NM_CASE(N, M)                                                                              \
    if (w->n == (N) && w->m == (M)) {                                                              \
        forward_vector_rows(w, bias, x, y, r0, r1, N, M);                                          \
        return;                                                                                    \
    }
    NM_CASE(2, 4)
    NM_CASE(1, 4)
    NM_CASE(1, 8)
    NM_CASE(2, 8)
    NM_CASE(4, 8)
    NM_CASE(1, 16)
    NM_CASE(1, 32)
#undef NM_CASE
    forward_vector_any(w, bias, x, y, r0, r1);
}

/* In the kernel list as "avx2" (kernels/isa.h). */
const nm_kernel_table nm_kernels_avx2_table = {"avx2", forward, backward_data, weight_grad,
                                               nm_forward_vector_avx2};
