/* Scalar references for the N:M kernels: plain loops in the order the
 * contract states, against which the AVX2 twins are tested. */
#include <stddef.h>
#include <string.h>

#include "kernels/nm_kernels.h"

static void forward(const nm_matrix *w, const float *bias, const float *x, float *y, int bp,
                    int r0, int r1)
{
    int slots = nm_slots_per_row(w);
    for (int o = r0; o < r1; o++) {
        float *yo = y + (size_t)o * bp;
        for (int b = 0; b < bp; b++) yo[b] = bias ? bias[o] : 0.0f;
        const float *v = w->values + (size_t)o * slots;
        const uint8_t *off = w->offsets + (size_t)o * slots;
        for (int k = 0; k < slots; k++) {
            const float *xi = x + (size_t)nm_slot_input(k, w->n, w->m, off) * bp;
            for (int b = 0; b < bp; b++) yo[b] += v[k] * xi[b];
        }
    }
}

static void backward_data(const nm_matrix *w, const float *dy, float *dx, int bp, int g0, int g1)
{
    int n = w->n, m = w->m;
    memset(dx + (size_t)g0 * m * bp, 0, sizeof(float) * (size_t)(g1 - g0) * m * bp);
    for (int g = g0; g < g1; g++)
        for (int o = 0; o < w->rows; o++) {
            size_t k = ((size_t)o * w->groups + g) * n;
            for (int j = 0; j < n; j++) {
                float v = w->values[k + j];
                float *di = dx + (size_t)(g * m + w->offsets[k + j]) * bp;
                const float *d = dy + (size_t)o * bp;
                for (int b = 0; b < bp; b++) di[b] += v * d[b];
            }
        }
}

static void weight_grad(const nm_matrix *w, const float *dy, const float *x, float *dw, int bp,
                        int r0, int r1)
{
    int slots = nm_slots_per_row(w);
    for (int o = r0; o < r1; o++) {
        const float *d = dy + (size_t)o * bp;
        const uint8_t *off = w->offsets + (size_t)o * slots;
        for (int k = 0; k < slots; k++) {
            const float *xi = x + (size_t)nm_slot_input(k, w->n, w->m, off) * bp;
            float s = 0;
            for (int b = 0; b < bp; b++) s += d[b] * xi[b];
            dw[(size_t)o * slots + k] = s;
        }
    }
}

static void forward_vector(const nm_matrix *w, const float *bias, const float *x, float *y, int r0,
                           int r1)
{
    int slots = nm_slots_per_row(w);
    for (int o = r0; o < r1; o++) {
        const float *v = w->values + (size_t)o * slots;
        const uint8_t *off = w->offsets + (size_t)o * slots;
        float s = bias ? bias[o] : 0.0f;
        for (int k = 0; k < slots; k++) s += v[k] * x[nm_slot_input(k, w->n, w->m, off)];
        y[o] = s;
    }
}

/* In the kernel list as "scalar" (kernels/isa.h). */
const nm_kernel_table nm_kernels_scalar_table = {"scalar", forward, backward_data, weight_grad,
                                                 forward_vector};
