/* Scalar reference kernels: the definition every fast twin is tested
 * against. Plain loops in the order kernels.h documents them; the compiler
 * may vectorise them, but nothing here depends on it. */
#include "kernels/kernels.h"

/* y is [rows][bp], x is [cols][bp]: y[o] = bias[o] + sum_k values[k] * x[indices[k]]. */
static void spmm_forward_scalar(const csr_matrix *w, const float *bias, const float *x, float *y,
                                int bp, int r0, int r1)
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
    }
}

/* dy is [rows][bp], dx is [cols][bp]: dx[c] = sum over column c of value * dy[row]. */
static void spmm_backward_data_scalar(const csr_matrix *w, const float *dy, float *dx, int bp,
                                      int c0, int c1)
{
    for (int c = c0; c < c1; c++) {
        float *dxc = dx + (size_t)c * bp;
        for (int b = 0; b < bp; b++) dxc[b] = 0.0f;
        for (int k = w->t_indptr[c]; k < w->t_indptr[c + 1]; k++) {
            float v = w->values[w->t_perm[k]];
            const float *dyo = dy + (size_t)w->t_rows[k] * bp;
            for (int b = 0; b < bp; b++) dxc[b] += v * dyo[b];
        }
    }
}

/* dw is [nnz], parallel to values: dw[k] = dy[o] . x[indices[k]]. */
static void sddmm_weight_grad_scalar(const csr_matrix *w, const float *dy, const float *x,
                                     float *dw, int bp, int r0, int r1)
{
    for (int o = r0; o < r1; o++) {
        const float *dyo = dy + (size_t)o * bp;
        for (int k = w->indptr[o]; k < w->indptr[o + 1]; k++) {
            const float *xi = x + (size_t)w->indices[k] * bp;
            float s = 0.0f;
            for (int b = 0; b < bp; b++) s += dyo[b] * xi[b];
            dw[k] = s;
        }
    }
}

/* Returned by kernels_scalar() in kernels.c. */
const kernel_table kernels_scalar_table = {
    .name = "scalar",
    .spmm_forward = spmm_forward_scalar,
    .spmm_backward_data = spmm_backward_data_scalar,
    .sddmm_weight_grad = sddmm_weight_grad_scalar,
};
