/* Dot products over the batch shared by the AVX2 weight-gradient kernels
 * (CSR's SDDMM in spmm_avx2.c, N:M's in nm_avx2.c). Include only from
 * files compiled with -mavx2 -mfma. Rows are 32-byte aligned and bp is a
 * multiple of 8. */
#ifndef RW_KERNELS_AVX2_DOT_H
#define RW_KERNELS_AVX2_DOT_H

#include <immintrin.h>

/* Sum of the 8 lanes of each of a, b, c, d, as [a, b, c, d]. */
static inline __m128 avx2_hsum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 ab = _mm256_hadd_ps(a, b); /* a01 a23 b01 b23 | a45 a67 b45 b67 */
    __m256 cd = _mm256_hadd_ps(c, d);
    __m256 abcd = _mm256_hadd_ps(ab, cd); /* a0-3 b0-3 c0-3 d0-3 | a4-7 ... */
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

static inline float avx2_hsum1(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* [d·x0, d·x1, d·x2, d·x3] over bp columns: each load of d feeds four
 * FMAs, and two accumulators per product (even and odd 8-wide steps) keep
 * eight chains in flight, enough to cover the FMA latency. */
static inline __attribute__((always_inline)) __m128
avx2_dot4(const float *d, const float *x0, const float *x1, const float *x2, const float *x3,
          int bp)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m256 e0 = a0, e1 = a0, e2 = a0, e3 = a0;
    int b = 0;
    for (; b + 16 <= bp; b += 16) {
        __m256 dv = _mm256_load_ps(d + b);
        a0 = _mm256_fmadd_ps(dv, _mm256_load_ps(x0 + b), a0);
        a1 = _mm256_fmadd_ps(dv, _mm256_load_ps(x1 + b), a1);
        a2 = _mm256_fmadd_ps(dv, _mm256_load_ps(x2 + b), a2);
        a3 = _mm256_fmadd_ps(dv, _mm256_load_ps(x3 + b), a3);
        __m256 fv = _mm256_load_ps(d + b + 8);
        e0 = _mm256_fmadd_ps(fv, _mm256_load_ps(x0 + b + 8), e0);
        e1 = _mm256_fmadd_ps(fv, _mm256_load_ps(x1 + b + 8), e1);
        e2 = _mm256_fmadd_ps(fv, _mm256_load_ps(x2 + b + 8), e2);
        e3 = _mm256_fmadd_ps(fv, _mm256_load_ps(x3 + b + 8), e3);
    }
    if (b < bp) { /* at most one 8-wide step left */
        __m256 dv = _mm256_load_ps(d + b);
        a0 = _mm256_fmadd_ps(dv, _mm256_load_ps(x0 + b), a0);
        a1 = _mm256_fmadd_ps(dv, _mm256_load_ps(x1 + b), a1);
        a2 = _mm256_fmadd_ps(dv, _mm256_load_ps(x2 + b), a2);
        a3 = _mm256_fmadd_ps(dv, _mm256_load_ps(x3 + b), a3);
    }
    return avx2_hsum4(_mm256_add_ps(a0, e0), _mm256_add_ps(a1, e1), _mm256_add_ps(a2, e2),
                      _mm256_add_ps(a3, e3));
}

/* d·x over bp columns, two accumulators. */
static inline __attribute__((always_inline)) float avx2_dot1(const float *d, const float *x, int bp)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int b = 0;
    for (; b + 16 <= bp; b += 16) {
        a0 = _mm256_fmadd_ps(_mm256_load_ps(d + b), _mm256_load_ps(x + b), a0);
        a1 = _mm256_fmadd_ps(_mm256_load_ps(d + b + 8), _mm256_load_ps(x + b + 8), a1);
    }
    if (b < bp) a0 = _mm256_fmadd_ps(_mm256_load_ps(d + b), _mm256_load_ps(x + b), a0);
    return avx2_hsum1(_mm256_add_ps(a0, a1));
}

#endif
