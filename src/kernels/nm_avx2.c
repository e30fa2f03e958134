/* AVX2+FMA twins of nm_scalar.c (compiled with -mavx2 -mfma, chosen at run
 * time). Same idea as the CSR kernels: vectorise over the batch and
 * broadcast the weight; the input row of a slot is g*m + offset, computed
 * from a byte instead of loaded as a 32-bit index. */
#include <immintrin.h>
#include <string.h>

#include "kernels/nm_kernels.h"

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

static void forward(const nm_matrix *w, const float *bias, const float *x, float *y, int bp,
                    int r0, int r1)
{
    int n = w->n, m = w->m, slots = nm_slots_per_row(w);
    for (int o = r0; o < r1; o++) {
        const float *v = w->values + (size_t)o * slots;
        const uint8_t *off = w->offsets + (size_t)o * slots;
        float *yo = y + (size_t)o * bp;
        __m256 init = _mm256_set1_ps(bias ? bias[o] : 0.0f);
        int b = 0;
        /* 64 columns at a time: 8 accumulators hide the FMA latency. */
        for (; b + 64 <= bp; b += 64) {
            __m256 a0 = init, a1 = init, a2 = init, a3 = init, a4 = init, a5 = init, a6 = init,
                   a7 = init;
            for (int g = 0, k = 0; g < w->groups; g++)
                for (int j = 0; j < n; j++, k++) {
                    __m256 s = _mm256_broadcast_ss(v + k);
                    const float *xi = x + (size_t)(g * m + off[k]) * bp + b;
                    a0 = _mm256_fmadd_ps(s, _mm256_load_ps(xi), a0);
                    a1 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 8), a1);
                    a2 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 16), a2);
                    a3 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 24), a3);
                    a4 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 32), a4);
                    a5 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 40), a5);
                    a6 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 48), a6);
                    a7 = _mm256_fmadd_ps(s, _mm256_load_ps(xi + 56), a7);
                }
            _mm256_store_ps(yo + b, a0);
            _mm256_store_ps(yo + b + 8, a1);
            _mm256_store_ps(yo + b + 16, a2);
            _mm256_store_ps(yo + b + 24, a3);
            _mm256_store_ps(yo + b + 32, a4);
            _mm256_store_ps(yo + b + 40, a5);
            _mm256_store_ps(yo + b + 48, a6);
            _mm256_store_ps(yo + b + 56, a7);
        }
        for (; b < bp; b += 8) {
            __m256 a = init;
            for (int g = 0, k = 0; g < w->groups; g++)
                for (int j = 0; j < n; j++, k++)
                    a = _mm256_fmadd_ps(_mm256_broadcast_ss(v + k),
                                        _mm256_load_ps(x + (size_t)(g * m + off[k]) * bp + b), a);
            _mm256_store_ps(yo + b, a);
        }
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

static void weight_grad(const nm_matrix *w, const float *dy, const float *x, float *dw, int bp,
                        int r0, int r1)
{
    int n = w->n, m = w->m, slots = nm_slots_per_row(w);
    for (int o = r0; o < r1; o++) {
        const float *d = dy + (size_t)o * bp;
        const uint8_t *off = w->offsets + (size_t)o * slots;
        for (int k = 0; k < slots; k++) {
            const float *xi = x + (size_t)((k / n) * m + off[k]) * bp;
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            int b = 0;
            for (; b + 32 <= bp; b += 32) {
                s0 = _mm256_fmadd_ps(_mm256_load_ps(d + b), _mm256_load_ps(xi + b), s0);
                s1 = _mm256_fmadd_ps(_mm256_load_ps(d + b + 8), _mm256_load_ps(xi + b + 8), s1);
                s2 = _mm256_fmadd_ps(_mm256_load_ps(d + b + 16), _mm256_load_ps(xi + b + 16), s2);
                s3 = _mm256_fmadd_ps(_mm256_load_ps(d + b + 24), _mm256_load_ps(xi + b + 24), s3);
            }
            for (; b < bp; b += 8)
                s0 = _mm256_fmadd_ps(_mm256_load_ps(d + b), _mm256_load_ps(xi + b), s0);
            dw[(size_t)o * slots + k] =
                hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        }
    }
}

const nm_kernel_table nm_kernels_avx2_table = {"avx2", forward, backward_data, weight_grad};
