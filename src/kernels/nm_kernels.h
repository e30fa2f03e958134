/* Kernels over N:M weights (core/nm.h), with the same layout and contract
 * as kernels.h: activations [feature][bp], bp a multiple of 8, padding
 * columns zero in gradients; a scalar reference and AVX2+FMA and AVX-512
 * twins; threading in one place (nm_parallel.c) with each output row
 * written by one thread, so results do not depend on the thread count. */
#ifndef RW_KERNELS_NM_H
#define RW_KERNELS_NM_H

#include "core/csr.h"
#include "core/nm.h"

typedef struct {
    const char *name;
    /* Rows [r0, r1): y[o][b] = bias[o] + sum over slots of
     * value * x[g*m + offset][b]. bias may be NULL. */
    void (*forward)(const nm_matrix *w, const float *bias, const float *x, float *y, int bp,
                    int r0, int r1);
    /* Groups [g0, g1) of inputs: dx[i][b] = sum over rows o, in increasing
     * order, of w(o, i) * dy[o][b], for i in [g0*m, g1*m) (overwritten). */
    void (*backward_data)(const nm_matrix *w, const float *dy, float *dx, int bp, int g0, int g1);
    /* Rows [r0, r1): dw[k] = sum_b dy[o][b] * x[g*m + offset[k]][b] for
     * every slot k of the row (overwritten). */
    void (*weight_grad)(const nm_matrix *w, const float *dy, const float *x, float *dw, int bp,
                        int r0, int r1);
    /* One sample (x and y plain vectors), rows [r0, r1): y[o] = bias[o] +
     * sum over slots of value * x[g*m + offset]. bias may be NULL. */
    void (*forward_vector)(const nm_matrix *w, const float *bias, const float *x, float *y, int r0,
                           int r1);
} nm_kernel_table;

/* CSR's AVX2 and AVX-512 backward (spmm_avx2.c, spmm_avx512.c) over a
 * transposed view whose position q holds the entries of column cols_of[q]:
 * dx[cols_of[q]] for q in [q0, q1), with no epilogue. N:M's view is in that
 * order (core/nm.h). */
void spmm_backward_data_mapped_avx2(const csr_matrix *view, const int32_t *cols_of,
                                    const float *dy, float *dx, int bp, int q0, int q1);
void spmm_backward_data_mapped_avx512(const csr_matrix *view, const int32_t *cols_of,
                                      const float *dy, float *dx, int bp, int q0, int q1);

/* The reference; the others through the kernel list (kernels/isa.h). */
const nm_kernel_table *nm_kernels_scalar(void);
/* The N:M table of the kernel list's chosen entry (kernel_isa_active). */
const nm_kernel_table *nm_kernels_active(void);

void nm_forward_with(const nm_kernel_table *k, const nm_matrix *w, const float *bias,
                     const float *x, float *y, int bp);
void nm_backward_data_with(const nm_kernel_table *k, const nm_matrix *w, const float *dy,
                           float *dx, int bp);
void nm_weight_grad_with(const nm_kernel_table *k, const nm_matrix *w, const float *dy,
                         const float *x, float *dw, int bp);

#endif
