/* The attention kernels (attn_kernels.h) for AVX2+FMA: 8 lanes, lane masks
 * as vectors of all-ones lanes. */
#include <immintrin.h>

#include "kernels/avx2_dot.h"

typedef __m256 vf;
typedef __m256i vmask;
#define VW 8
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(x) _mm256_set1_ps(x)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps(p, v)
#define V_MASK(n) _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_ANDNOT(a, b) _mm256_andnot_si256(b, a)
#define V_LOADM(p, m) _mm256_maskload_ps(p, m)
#define V_STOREM(p, m, v) _mm256_maskstore_ps(p, m, v)
#define V_SELECT(m, v, w) _mm256_blendv_ps(w, v, _mm256_castsi256_ps(m))
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_MIN(a, b) _mm256_min_ps(a, b)
#define V_HMAX(v) avx2_hmax(v)
#define V_HSUM(v) avx2_hsum1(v)
#define V_ROUND(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_LDEXP(v, n) _mm256_mul_ps(v, avx2_pow2(n))
#define ATTN_TABLE attn_kernels_avx2_table
#define ATTN_ISA "avx2"

static inline float avx2_hmax(__m256 a)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 2^n for integer-valued n in [-126, 127], built in the exponent field. */
static inline __m256 avx2_pow2(__m256 n)
{
    __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}

#include "kernels/attn_simd.h"
