/* Scalar reference kernels: the definition every fast twin is tested
 * against. Plain loops in the order kernels.h documents them; the compiler
 * may vectorise them, but nothing here depends on it. */
#include <math.h>

#include "kernels/kernels.h"

/* The forward epilogue, act(v) (see kernels.h). */
static inline float epi_forward(float v, kernel_epilogue e)
{
    switch (e.act) {
    case KACT_RELU:
        return 0.0f > v ? 0.0f : v;
    case KACT_LEAKY:
        return v < 0.0f ? e.slope * v : v;
    case KACT_NONE:
        break;
    }
    return v;
}

/* The backward epilogue, act'(a)·v. */
static inline float epi_backward(float v, float a, kernel_epilogue e)
{
    switch (e.act) {
    case KACT_RELU:
        return a > 0.0f ? v : 0.0f;
    case KACT_LEAKY:
        return a > 0.0f ? v : e.slope * v;
    case KACT_NONE:
        break;
    }
    return v;
}

/* y is [rows][bp], x is [cols][bp]: y[o] = act(bias[o] + sum_k values[k] * x[indices[k]]). */
static void spmm_forward_scalar(const csr_matrix *w, const float *bias, const float *x, float *y,
                                int bp, int r0, int r1, kernel_epilogue epi)
{
    for (int o = r0; o < r1; o++) {
        float *yo = y + (size_t)o * bp;
        float b0 = bias ? bias[o] : 0.0f;
        for (int b = 0; b < bp; b++) yo[b] = b0;
        for (int k = w->indptr[o]; k < w->indptr[o + 1]; k++) {
            float v = w->values[k];
            const float *xi = x + (size_t)w->indices[k] * bp;
            for (int b = 0; b < bp; b++) yo[b] += v * xi[b];
        }
        if (epi.act != KACT_NONE)
            for (int b = 0; b < bp; b++) yo[b] = epi_forward(yo[b], epi);
    }
}

/* dy is [rows][bp], dx is [cols][bp]: dx[c] = act'(a[c]) · sum over column c
 * of value * dy[row]. */
static void spmm_backward_data_scalar(const csr_matrix *w, const float *dy, float *dx, int bp,
                                      int c0, int c1, const float *a, kernel_epilogue epi)
{
    for (int c = c0; c < c1; c++) {
        float *dxc = dx + (size_t)c * bp;
        for (int b = 0; b < bp; b++) dxc[b] = 0.0f;
        for (int k = w->t_indptr[c]; k < w->t_indptr[c + 1]; k++) {
            float v = w->values[w->t_perm[k]];
            const float *dyo = dy + (size_t)w->t_rows[k] * bp;
            for (int b = 0; b < bp; b++) dxc[b] += v * dyo[b];
        }
        if (epi.act != KACT_NONE) {
            const float *ac = a + (size_t)c * bp;
            for (int b = 0; b < bp; b++) dxc[b] = epi_backward(dxc[b], ac[b], epi);
        }
    }
}

/* dw is [nnz], parallel to values: dw[k] = dy[o] . x[indices[k]]; db[o] = sum of dy[o]. */
static void sddmm_weight_grad_scalar(const csr_matrix *w, const float *dy, const float *x,
                                     float *dw, float *db, int bp, int r0, int r1)
{
    for (int o = r0; o < r1; o++) {
        const float *dyo = dy + (size_t)o * bp;
        for (int k = w->indptr[o]; k < w->indptr[o + 1]; k++) {
            const float *xi = x + (size_t)w->indices[k] * bp;
            float s = 0.0f;
            for (int b = 0; b < bp; b++) s += dyo[b] * xi[b];
            dw[k] = s;
        }
        if (db) {
            float s = 0.0f;
            for (int b = 0; b < bp; b++) s += dyo[b];
            db[o] = s;
        }
    }
}

/* y[o] = act(bias[o] + sum_k values[k] * x[indices[k]]), one sample. */
static void spmv_forward_scalar(const csr_matrix *w, const float *bias, const float *x, float *y,
                                int r0, int r1, kernel_epilogue epi)
{
    for (int o = r0; o < r1; o++) {
        float s = bias ? bias[o] : 0.0f;
        for (int k = w->indptr[o]; k < w->indptr[o + 1]; k++) s += w->values[k] * x[w->indices[k]];
        y[o] = epi_forward(s, epi);
    }
}

static void load_batch_scalar(const float *x, int features, const int *index, int n, float shift,
                              float scale, float *a, int bp, int f0, int f1)
{
    for (int f = f0; f < f1; f++)
        for (int b = n; b < bp; b++) a[(size_t)f * bp + b] = 0.0f;
    for (int b = 0; b < n; b++) {
        const float *row = x + (size_t)(index ? index[b] : b) * features;
        for (int f = f0; f < f1; f++) a[(size_t)f * bp + b] = (row[f] - shift) * scale;
    }
}

static int find_at_least_scalar(const float *x, int n, float thr, int32_t *at)
{
    int count = 0;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) >= thr) at[count++] = j;
    return count;
}

/* In the kernel list as "scalar" (kernels/isa.h). */
#define GELU_SUFFIX scalar
#include "kernels/gelu_common.h"

const kernel_table kernels_scalar_table = {
    .name = "scalar",
    .spmm_forward = spmm_forward_scalar,
    .spmm_backward_data = spmm_backward_data_scalar,
    .sddmm_weight_grad = sddmm_weight_grad_scalar,
    .spmv_forward = spmv_forward_scalar,
    .load_batch = load_batch_scalar,
    .find_at_least = find_at_least_scalar,
    .gelu_forward = gelu_forward_scalar,
    .gelu_backward = gelu_backward_scalar,
};
