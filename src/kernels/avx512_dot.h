/* Dot products over the batch shared by the AVX-512 weight-gradient
 * kernels (CSR's SDDMM in spmm_avx512.c, N:M's in nm_avx512.c). Include
 * only from files compiled with -mavx512f -mavx512vl -mavx512bw
 * -mavx512dq -mfma. bp is a multiple of 8; loads are unaligned (rows are
 * 32-byte aligned, and a 64-byte vector may cross a cache line).
 *
 * The sums are avx2_dot.h's, bit for bit (avx512_dot_folded): both tables
 * give the same bytes. */
#ifndef RW_KERNELS_AVX512_DOT_H
#define RW_KERNELS_AVX512_DOT_H

#include <immintrin.h>

#include "kernels/avx2_dot.h"

/* folded[j] = d·x[j] over bp columns as 8 lanes, for j < N (a constant):
 * lanes 0-7 and 8-15 of a 16-lane accumulator are AVX2's even and odd
 * 8-wide steps, the last 8 columns (bp not a multiple of 16) go to the
 * even ones with one 8-wide FMA, and the two are added: avx2_dot4's
 * a0 + e0, bit for bit.
 * Blocks of 128 columns hold d in eight registers and read each x row
 * start to end, one row after the other: 1.4x faster than stepping
 * through all N rows 16 columns at a time (measured on Zen 5, 1000 x 1000
 * at density 0.05, batch 128), which interleaves N streams. Either way
 * lane l sums columns l mod 16 in increasing order. */
static inline __attribute__((always_inline)) void
avx512_dot_folded(const float *d, const float *const *x, int bp, __m256 *folded, const int N)
{
    __m512 acc[8];
    for (int j = 0; j < N; j++) acc[j] = _mm512_setzero_ps();
    int b = 0;
    for (; b + 128 <= bp; b += 128) {
        __m512 dv[8];
        for (int q = 0; q < 8; q++) dv[q] = _mm512_loadu_ps(d + b + 16 * q);
        for (int j = 0; j < N; j++)
            for (int q = 0; q < 8; q++)
                acc[j] = _mm512_fmadd_ps(dv[q], _mm512_loadu_ps(x[j] + b + 16 * q), acc[j]);
    }
    for (; b + 16 <= bp; b += 16) {
        __m512 dv = _mm512_loadu_ps(d + b);
        for (int j = 0; j < N; j++) acc[j] = _mm512_fmadd_ps(dv, _mm512_loadu_ps(x[j] + b), acc[j]);
    }
    __m256 dt = b < bp ? _mm256_loadu_ps(d + b) : _mm256_setzero_ps();
    for (int j = 0; j < N; j++) {
        __m256 even = _mm512_castps512_ps256(acc[j]);
        if (b < bp) even = _mm256_fmadd_ps(dt, _mm256_loadu_ps(x[j] + b), even);
        folded[j] = _mm256_add_ps(even, _mm512_extractf32x8_ps(acc[j], 1));
    }
}

/* [d·x0, ..., d·x7] into out[0..8). */
static inline __attribute__((always_inline)) void
avx512_dot8(const float *d, const float *const *x, int bp, float *out)
{
    __m256 f[8];
    avx512_dot_folded(d, x, bp, f, 8);
    _mm_storeu_ps(out, avx2_hsum4(f[0], f[1], f[2], f[3]));
    _mm_storeu_ps(out + 4, avx2_hsum4(f[4], f[5], f[6], f[7]));
}

/* [d·x0, ..., d·x3]. */
static inline __attribute__((always_inline)) void
avx512_dot4(const float *d, const float *const *x, int bp, float *out)
{
    __m256 f[4];
    avx512_dot_folded(d, x, bp, f, 4);
    _mm_storeu_ps(out, avx2_hsum4(f[0], f[1], f[2], f[3]));
}

/* d·x. */
static inline __attribute__((always_inline)) float avx512_dot1(const float *d, const float *x, int bp)
{
    __m256 f;
    avx512_dot_folded(d, &x, bp, &f, 1);
    return avx2_hsum1(f);
}

#endif
