/* The attention kernels (attn_kernels.h) for AVX-512: 16 lanes, lane masks
 * in k registers (masked loads and stores cost what whole ones do). */
#include <immintrin.h>

typedef __m512 vf;
typedef __mmask16 vmask;
#define VW 16
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(x) _mm512_set1_ps(x)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_STOREU(p, v) _mm512_storeu_ps(p, v)
#define V_MASK(n) ((vmask)((n) >= 16 ? 0xffff : (n) <= 0 ? 0 : (1u << (n)) - 1))
#define V_ANDNOT(a, b) ((vmask)((a) & ~(b)))
#define V_LOADM(p, m) _mm512_maskz_loadu_ps(m, p)
#define V_STOREM(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define V_SELECT(m, v, w) _mm512_mask_blend_ps(m, w, v)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_MIN(a, b) _mm512_min_ps(a, b)
#define V_HMAX(v) _mm512_reduce_max_ps(v)
#define V_HSUM(v) _mm512_reduce_add_ps(v)
#define V_ROUND(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_LDEXP(v, n) _mm512_scalef_ps(v, n)
#define ATTN_TABLE attn_kernels_avx512_table
#define ATTN_ISA "avx512"

#include "kernels/attn_simd.h"
