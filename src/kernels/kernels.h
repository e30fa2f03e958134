/* The hot loops of sparse training. Activations are feature-major with the
 * batch innermost: x[feature][bp], bp a multiple of RW_BATCH_PAD, rows
 * 32-byte aligned; padding columns hold zeros in every gradient.
 *
 * Each kernel exists as a scalar reference and an AVX2+FMA twin; a table of
 * them is chosen once at start-up. The ISA kernels work on a range of rows
 * (or columns) so that threading lives in one place (kernels/parallel.c),
 * which splits work by nonzeros and gives each output row to exactly one
 * thread: results never depend on the thread count. */
#ifndef RW_KERNELS_H
#define RW_KERNELS_H

#include "core/csr.h"

typedef struct {
    const char *name; /* "scalar" or "avx2" */
    /* SpMM forward over rows [r0, r1):
     * y[o][b] = bias[o] + sum_k values[k] * x[indices[k]][b], k in row o.
     * bias may be NULL (treated as zero). x is [cols][bp], y is [rows][bp]. */
    void (*spmm_forward)(const csr_matrix *w, const float *bias, const float *x,
                         float *y, int bp, int r0, int r1);
    /* SpMMᵀ backward data over columns [c0, c1):
     * dx[c][b] = sum_k values[t_perm[k]] * dy[t_rows[k]][b], k in column c.
     * dy is [rows][bp], dx is [cols][bp] (overwritten). */
    void (*spmm_backward_data)(const csr_matrix *w, const float *dy, float *dx,
                               int bp, int c0, int c1);
    /* SDDMM weight gradient over rows [r0, r1), only on the stored pattern:
     * dw[k] = sum_b dy[o][b] * x[indices[k]][b] (overwritten). */
    void (*sddmm_weight_grad)(const csr_matrix *w, const float *dy, const float *x,
                              float *dw, int bp, int r0, int r1);
} kernel_table;

const kernel_table *kernels_scalar(void);
/* NULL when the CPU lacks AVX2 or FMA. */
const kernel_table *kernels_avx2(void);
/* The table chosen at first use: AVX2 if available unless the environment
 * variable REWIRE_KERNELS=scalar. */
const kernel_table *kernels_active(void);

/* Threaded entry points over the active table (OpenMP, split by nonzeros). */
void sparse_forward(const csr_matrix *w, const float *bias, const float *x, float *y, int bp);
void sparse_backward_data(const csr_matrix *w, const float *dy, float *dx, int bp);
void sparse_weight_grad(const csr_matrix *w, const float *dy, const float *x, float *dw, int bp);

/* Same, over an explicit table (tests use this to compare twins with
 * threads on). */
void sparse_forward_with(const kernel_table *k, const csr_matrix *w, const float *bias,
                         const float *x, float *y, int bp);
void sparse_backward_data_with(const kernel_table *k, const csr_matrix *w, const float *dy,
                               float *dx, int bp);
void sparse_weight_grad_with(const kernel_table *k, const csr_matrix *w, const float *dy,
                             const float *x, float *dw, int bp);

#endif
