#include "nn/activation.h"

#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

/* GELU (tanh form) runs in the kernel tables: kernels/gelu_common.h. */

/* Elementwise, so splitting over threads cannot change a result; small
 * buffers stay on one thread to skip the fork cost. */
#define PARALLEL_MIN 32768

/* ReLU and leaky ReLU keep a NaN (0 > NaN is false), as the kernels'
 * fused epilogues do, so a diverging layer still shows in its output. */
void activation_forward_range(rw_activation act, float slope, const float *z, float *a, size_t n)
{
    switch (act) {
    case RW_ACT_RELU:
        for (size_t i = 0; i < n; i++) a[i] = 0.0f > z[i] ? 0.0f : z[i];
        break;
    case RW_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) a[i] = z[i] < 0.0f ? slope * z[i] : z[i];
        break;
    case RW_ACT_TANH:
        for (size_t i = 0; i < n; i++) a[i] = tanhf(z[i]);
        break;
    case RW_ACT_GELU:
        kernels_active()->gelu_forward(z, a, n);
        break;
    case RW_ACT_NONE:
        if (a != z) memcpy(a, z, n * sizeof *a);
        break;
    }
}

void activation_backward_range(rw_activation act, float slope, const float *z, const float *a,
                               float *g, size_t n)
{
    switch (act) {
    case RW_ACT_RELU:
        for (size_t i = 0; i < n; i++) g[i] = z[i] > 0.0f ? g[i] : 0.0f;
        break;
    case RW_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) g[i] = z[i] > 0.0f ? g[i] : slope * g[i];
        break;
    case RW_ACT_TANH:
        for (size_t i = 0; i < n; i++) g[i] *= 1.0f - a[i] * a[i];
        break;
    case RW_ACT_GELU:
        kernels_active()->gelu_backward(z, g, n);
        break;
    case RW_ACT_NONE:
        break;
    }
}

#define CHUNK 4096

void activation_forward(rw_activation act, float slope, const float *z, float *a, size_t n)
{
    long chunks = (long)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
        activation_forward_range(act, slope, z + i0, a + i0, len);
    }
}

void activation_backward(rw_activation act, float slope, const float *z, const float *a,
                         float *g, size_t n)
{
    long chunks = (long)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
        activation_backward_range(act, slope, z + i0, a + i0, g + i0, len);
    }
}

int activation_needs_z(rw_activation act) { return act == RW_ACT_TANH || act == RW_ACT_GELU; }

static const char *const names[] = {"relu", "leaky_relu", "tanh", "gelu", "none"};

const char *activation_name(rw_activation act)
{
    return act >= RW_ACT_RELU && act <= RW_ACT_NONE ? names[act] : "unknown";
}

int activation_parse(const char *name)
{
    for (int i = 0; i <= RW_ACT_NONE; i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}
