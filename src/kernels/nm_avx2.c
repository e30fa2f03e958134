/* AVX2+FMA twins of nm_scalar.c (compiled with -mavx2 -mfma, chosen at run
 * time). Same idea as the CSR kernels: vectorise over the batch and
 * broadcast the weight; the input row of a slot is g*m + offset, computed
 * from a byte instead of loaded as a 32-bit index. */
#include <immintrin.h>
#include <string.h>

#include "kernels/nm_kernels.h"

/* As in the CSR kernels: start the next input rows' streams a few slots
 * early (the rows of one output row are in order, but far apart). */
#define PREFETCH_AHEAD 8

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* One output row over 64 batch columns: 8 accumulators hide the FMA
 * latency and each broadcast is reused 8 times. Always inlined with n a
 * constant for the common patterns, so the slots of a group unroll and the
 * input row is base + offset with base stepping by m per group. */
static inline __attribute__((always_inline)) void
forward_row64(const float *v, const uint8_t *off, int groups, const int n, int m, const float *x,
              int bp, int b, float init, float *yo)
{
    __m256 a0 = _mm256_set1_ps(init), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0;
    const float *xb = x + b;
    size_t stride = (size_t)bp;
    for (int g = 0; g < groups; g++, v += n, off += n, xb += (size_t)m * stride) {
        /* Start the stream of the group PREFETCH_AHEAD groups ahead. */
        if (g + PREFETCH_AHEAD < groups) {
            const char *p = (const char *)(xb + (size_t)PREFETCH_AHEAD * m * stride +
                                           (size_t)off[PREFETCH_AHEAD * n] * stride);
            _mm_prefetch(p, _MM_HINT_T0);
            _mm_prefetch(p + 64, _MM_HINT_T0);
        }
        for (int j = 0; j < n; j++) {
            __m256 s = _mm256_broadcast_ss(v + j);
            const float *xi = xb + (size_t)off[j] * stride;
            a0 = _mm256_fmadd_ps(s, _mm256_load_ps(xi), a0);
            a1 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 8), a1);
            a2 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 16), a2);
            a3 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 24), a3);
            a4 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 32), a4);
            a5 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 40), a5);
            a6 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 48), a6);
            a7 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 56), a7);
        }
    }
    float *y = yo + b;
    _mm256_store_ps(y, a0);
    _mm256_store_ps(y + 8, a1);
    _mm256_store_ps(y + 16, a2);
    _mm256_store_ps(y + 24, a3);
    _mm256_store_ps(y + 32, a4);
    _mm256_store_ps(y + 40, a5);
    _mm256_store_ps(y + 48, a6);
    _mm256_store_ps(y + 56, a7);
}

static void forward(const nm_matrix *w, const float *bias, const float *x, float *y, int bp,
                    int r0, int r1)
{
    int n = w->n, m = w->m, slots = nm_slots_per_row(w);
    /* Batch chunks outermost: one pass touches a 64-column slice of x,
     * which stays in L2 while every row of the range reads it. */
    int b = 0;
    for (; b + 64 <= bp; b += 64)
        for (int o = r0; o < r1; o++) {
            const float *v = w->values + (size_t)o * slots;
            const uint8_t *off = w->offsets + (size_t)o * slots;
            float init = bias ? bias[o] : 0.0f, *yo = y + (size_t)o * bp;
            switch (n) {
            case 1: forward_row64(v, off, w->groups, 1, m, x, bp, b, init, yo); break;
            case 2: forward_row64(v, off, w->groups, 2, m, x, bp, b, init, yo); break;
            case 4: forward_row64(v, off, w->groups, 4, m, x, bp, b, init, yo); break;
            default: forward_row64(v, off, w->groups, n, m, x, bp, b, init, yo); break;
            }
        }
    for (; b < bp; b += 8)
        for (int o = r0; o < r1; o++) {
            const float *v = w->values + (size_t)o * slots;
            const uint8_t *off = w->offsets + (size_t)o * slots;
            __m256 a = _mm256_set1_ps(bias ? bias[o] : 0.0f);
            for (int g = 0, k = 0; g < w->groups; g++)
                for (int j = 0; j < n; j++, k++)
                    a = _mm256_fmadd_ps(_mm256_broadcast_ss(v + k),
                                        _mm256_load_ps(x + (size_t)(g * m + off[k]) * bp + b), a);
            _mm256_store_ps(y + (size_t)o * bp + b, a);
        }
}

/* Backward data gathers, for a block of groups, every row's contribution
 * into an L1-resident accumulator of the block's inputs: each 64-column run
 * of dy[o] is loaded once and used for all slots of the block. Rows are
 * visited in increasing order, as in the reference. */
#define BACKWARD_ROWS 64 /* inputs per block: groups_per_block * m */

static void backward_data(const nm_matrix *w, const float *dy, float *dx, int bp, int g0, int g1)
{
    int n = w->n, m = w->m;
    int per_block = BACKWARD_ROWS / m > 0 ? BACKWARD_ROWS / m : 1;
    _Alignas(32) float acc[NM_MAX_M > BACKWARD_ROWS ? NM_MAX_M * 64 : BACKWARD_ROWS * 64];
    for (int gb = g0; gb < g1; gb += per_block) {
        int ge = gb + per_block < g1 ? gb + per_block : g1, inputs = (ge - gb) * m;
        for (int b = 0; b < bp;) {
            int width = bp - b >= 64 ? 64 : 8;
            memset(acc, 0, sizeof(float) * (size_t)inputs * 64);
            for (int o = 0; o < w->rows; o++) {
                const float *d = dy + (size_t)o * bp + b;
                const float *v = w->values + ((size_t)o * w->groups + gb) * n;
                const uint8_t *off = w->offsets + ((size_t)o * w->groups + gb) * n;
                if (width == 64) {
                    __m256 d0 = _mm256_load_ps(d), d1 = _mm256_load_ps(d + 8),
                           d2 = _mm256_load_ps(d + 16), d3 = _mm256_load_ps(d + 24),
                           d4 = _mm256_load_ps(d + 32), d5 = _mm256_load_ps(d + 40),
                           d6 = _mm256_load_ps(d + 48), d7 = _mm256_load_ps(d + 56);
                    for (int g = 0, k = 0; g < ge - gb; g++)
                        for (int j = 0; j < n; j++, k++) {
                            __m256 s = _mm256_broadcast_ss(v + k);
                            float *a = acc + (size_t)(g * m + off[k]) * 64;
                            _mm256_store_ps(a, _mm256_fmadd_ps(s, d0, _mm256_load_ps(a)));
                            _mm256_store_ps(a + 8, _mm256_fmadd_ps(s, d1, _mm256_load_ps(a + 8)));
                            _mm256_store_ps(a + 16, _mm256_fmadd_ps(s, d2, _mm256_load_ps(a + 16)));
                            _mm256_store_ps(a + 24, _mm256_fmadd_ps(s, d3, _mm256_load_ps(a + 24)));
                            _mm256_store_ps(a + 32, _mm256_fmadd_ps(s, d4, _mm256_load_ps(a + 32)));
                            _mm256_store_ps(a + 40, _mm256_fmadd_ps(s, d5, _mm256_load_ps(a + 40)));
                            _mm256_store_ps(a + 48, _mm256_fmadd_ps(s, d6, _mm256_load_ps(a + 48)));
                            _mm256_store_ps(a + 56, _mm256_fmadd_ps(s, d7, _mm256_load_ps(a + 56)));
                        }
                } else {
                    __m256 d0 = _mm256_load_ps(d);
                    for (int g = 0, k = 0; g < ge - gb; g++)
                        for (int j = 0; j < n; j++, k++) {
                            float *a = acc + (size_t)(g * m + off[k]) * 64;
                            _mm256_store_ps(
                                a, _mm256_fmadd_ps(_mm256_broadcast_ss(v + k), d0, _mm256_load_ps(a)));
                        }
                }
            }
            for (int i = 0; i < inputs; i++)
                memcpy(dx + (size_t)(gb * m + i) * bp + b, acc + (size_t)i * 64,
                       sizeof(float) * (size_t)width);
            b += width;
        }
    }
}

/* Four horizontal sums at once: [sum(a), sum(b), sum(c), sum(d)]. */
static inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* Dot products of dy[o] with four input rows at once: each load of dy feeds
 * four FMAs, and two accumulators per row (even and odd 8-wide steps) keep
 * eight chains in flight, enough to cover the FMA latency. */
static void dot4(const float *d, const float *x0, const float *x1, const float *x2, const float *x3,
                 int bp, float *out)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
    int b = 0;
    for (; b + 16 <= bp; b += 16) {
        __m256 dv = _mm256_load_ps(d + b), fv = _mm256_load_ps(d + b + 8);
        a0 = _mm256_fmadd_ps(dv, _mm256_load_ps(x0 + b), a0);
        a1 = _mm256_fmadd_ps(dv, _mm256_load_ps(x1 + b), a1);
        a2 = _mm256_fmadd_ps(dv, _mm256_load_ps(x2 + b), a2);
        a3 = _mm256_fmadd_ps(dv, _mm256_load_ps(x3 + b), a3);
        e0 = _mm256_fmadd_ps(fv, _mm256_load_ps(x0 + b + 8), e0);
        e1 = _mm256_fmadd_ps(fv, _mm256_load_ps(x1 + b + 8), e1);
        e2 = _mm256_fmadd_ps(fv, _mm256_load_ps(x2 + b + 8), e2);
        e3 = _mm256_fmadd_ps(fv, _mm256_load_ps(x3 + b + 8), e3);
    }
    if (b < bp) { /* bp is a multiple of 8: at most one step left */
        __m256 dv = _mm256_load_ps(d + b);
        a0 = _mm256_fmadd_ps(dv, _mm256_load_ps(x0 + b), a0);
        a1 = _mm256_fmadd_ps(dv, _mm256_load_ps(x1 + b), a1);
        a2 = _mm256_fmadd_ps(dv, _mm256_load_ps(x2 + b), a2);
        a3 = _mm256_fmadd_ps(dv, _mm256_load_ps(x3 + b), a3);
    }
    _mm_storeu_ps(out, hsum4(_mm256_add_ps(a0, e0), _mm256_add_ps(a1, e1), _mm256_add_ps(a2, e2),
                             _mm256_add_ps(a3, e3)));
}

/* Slots are handled in blocks whose input rows are first listed in a small
 * table, so the inner loop needs no division to find them. */
#define WGRAD_BLOCK 256

static void weight_grad(const nm_matrix *w, const float *dy, const float *x, float *dw, int bp,
                        int r0, int r1)
{
    int n = w->n, m = w->m, slots = nm_slots_per_row(w);
    int32_t rows[WGRAD_BLOCK];
    for (int o = r0; o < r1; o++) {
        const float *d = dy + (size_t)o * bp;
        const uint8_t *off = w->offsets + (size_t)o * slots;
        float *out = dw + (size_t)o * slots;
        int base = 0, j = 0;
        for (int k0 = 0; k0 < slots; k0 += WGRAD_BLOCK) {
            int len = slots - k0 < WGRAD_BLOCK ? slots - k0 : WGRAD_BLOCK;
            for (int q = 0; q < len; q++) {
                rows[q] = base + off[k0 + q];
                if (++j == n) j = 0, base += m;
            }
            int q = 0;
            for (; q + 4 <= len; q += 4) {
                /* Start the next four input rows while these are summed. */
                for (int p = q + 4; p < q + 8 && p < len; p++) {
                    const char *next = (const char *)(x + (size_t)rows[p] * bp);
                    _mm_prefetch(next, _MM_HINT_T0);
                    _mm_prefetch(next + 64, _MM_HINT_T0);
                }
                dot4(d, x + (size_t)rows[q] * bp, x + (size_t)rows[q + 1] * bp,
                     x + (size_t)rows[q + 2] * bp, x + (size_t)rows[q + 3] * bp, bp,
                     out + k0 + q);
            }
            for (; q < len; q++) {
                const float *xi = x + (size_t)rows[q] * bp;
                __m256 s0 = _mm256_setzero_ps();
                for (int b = 0; b < bp; b += 8)
                    s0 = _mm256_fmadd_ps(_mm256_load_ps(d + b), _mm256_load_ps(xi + b), s0);
                out[k0 + q] = hsum(s0);
            }
        }
    }
}

const nm_kernel_table nm_kernels_avx2_table = {"avx2", forward, backward_data, weight_grad};
