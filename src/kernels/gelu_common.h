/* GELU in its tanh form, 0.5 z (1 + tanh(k (z + c z³))), without libm: a
 * branch-free exp (Cody-Waite reduction, Cephes' degree-6 polynomial, about
 * 1 ulp) that the compiler vectorizes at each table's width. libm's tanhf
 * took a third of a small transformer's training step. tanh(u) =
 * (1 - e) / (1 + e) with e = exp(-2|u|) is within 1e-7 of the exact value
 * in absolute terms, which is what 1 + tanh needs.
 *
 * Included by each table's file (spmm_scalar.c, spmm_avx2.c, ...) with
 * GELU_SUFFIX naming its functions. */
#include <stddef.h>
#include <stdint.h>

#define GELU_K 0.7978845608028654f
#define GELU_C 0.044715f

#define GELU_CAT2(a, b) a##_##b
#define GELU_CAT(a, b) GELU_CAT2(a, b)

/* exp(y) for y <= 0 (below -87 it gives exp(-87), about 1.6e-38); NaN for
 * NaN. */
static inline float GELU_CAT(gelu_exp_neg, GELU_SUFFIX)(float y)
{
    y = y < -87.0f ? -87.0f : y;
    /* n = round(y / ln 2) by the 1.5 · 2²³ trick: its bits hold n. */
    float t = y * 1.44269504088896341f + 12582912.0f;
    union { float f; int32_t i; } bits = {t};
    int32_t n = bits.i - 0x4B400000;
    float nf = t - 12582912.0f;
    float r = y - nf * 0.693359375f + nf * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* Unsigned: for a NaN y, n is whatever its bits say, and a signed
     * shift of it would be undefined; p is NaN then and so is the result. */
    union { uint32_t i; float f; } scale = {(uint32_t)(n + 127) << 23};
    return p * scale.f;
}

static inline float GELU_CAT(gelu_tanh, GELU_SUFFIX)(float u)
{
    float s = u < 0.0f ? -u : u;
    float e = GELU_CAT(gelu_exp_neg, GELU_SUFFIX)(-2.0f * s);
    float t = (1.0f - e) / (1.0f + e);
    return u < 0.0f ? -t : t;
}

/* a[i] = gelu(z[i]). */
static void GELU_CAT(gelu_forward, GELU_SUFFIX)(const float *z, float *a, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = z[i];
        float t = GELU_CAT(gelu_tanh, GELU_SUFFIX)(GELU_K * (x + GELU_C * x * x * x));
        a[i] = 0.5f * x * (1.0f + t);
    }
}

/* g[i] *= gelu'(z[i]). */
static void GELU_CAT(gelu_backward, GELU_SUFFIX)(const float *z, float *g, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = z[i];
        float t = GELU_CAT(gelu_tanh, GELU_SUFFIX)(GELU_K * (x + GELU_C * x * x * x));
        float dt = (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * x * x);
        g[i] *= 0.5f * (1.0f + t) + 0.5f * x * dt;
    }
}
