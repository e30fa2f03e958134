/* The hot loops of sparse training. Activations are feature-major with the
 * batch innermost: x[feature][bp], bp a multiple of RW_BATCH_PAD, rows
 * 32-byte aligned; padding columns hold zeros in every gradient.
 *
 * Each kernel exists as a scalar reference and AVX2+FMA and AVX-512 twins;
 * a table of them is chosen once, at first use, from the kernel list
 * (kernels/isa.h). The ISA kernels work on a range of rows
 * (or columns) so that threading lives in one place (kernels/parallel.c),
 * which splits work by nonzeros and gives each output row to exactly one
 * thread: results never depend on the thread count. */
#ifndef RW_KERNELS_H
#define RW_KERNELS_H

#include <stddef.h>

#include "core/csr.h"

/* What a kernel applies to a result before storing it, so that a layer's
 * activation (forward) or its derivative (backward) costs no extra pass:
 *   forward   out = act(acc):   RELU  0 > acc ? 0 : acc   (NaN stays NaN)
 *                               LEAKY acc < 0 ? slope * acc : acc
 *   backward  out = act'(a)·acc, from the activation's output a:
 *                               RELU  a > 0 ? acc : 0
 *                               LEAKY a > 0 ? acc : slope * acc
 * (a > 0 exactly when the pre-activation is > 0, for both.) */
typedef enum { KACT_NONE = 0, KACT_RELU, KACT_LEAKY } kernel_act;

typedef struct {
    kernel_act act;
    float slope; /* KACT_LEAKY */
} kernel_epilogue;

typedef struct {
    const char *name; /* "scalar", "avx2" or "avx512" */
    /* SpMM forward over rows [r0, r1):
     * y[o][b] = act(bias[o] + sum_k values[k] * x[indices[k]][b]), k in row o.
     * bias may be NULL (treated as zero). x is [cols][bp], y is [rows][bp]. */
    void (*spmm_forward)(const csr_matrix *w, const float *bias, const float *x, float *y,
                         int bp, int r0, int r1, kernel_epilogue epi);
    /* SpMMᵀ backward data over columns [c0, c1):
     * dx[c][b] = act'(a[c][b]) · sum_k values[t_perm[k]] * dy[t_rows[k]][b], k in column c.
     * dy is [rows][bp], dx and a are [cols][bp]; a may be NULL when epi.act
     * is KACT_NONE. dx is overwritten. */
    void (*spmm_backward_data)(const csr_matrix *w, const float *dy, float *dx, int bp, int c0,
                               int c1, const float *a, kernel_epilogue epi);
    /* SDDMM weight gradient over rows [r0, r1), only on the stored pattern:
     * dw[k] = sum_b dy[o][b] * x[indices[k]][b] (overwritten), and when db
     * is not NULL the bias gradient db[o] = sum_b dy[o][b]. */
    void (*sddmm_weight_grad)(const csr_matrix *w, const float *dy, const float *x, float *dw,
                              float *db, int bp, int r0, int r1);
    /* SpMV, one sample (x and y plain vectors, no padding) over rows [r0, r1):
     * y[o] = act(bias[o] + sum_k values[k] * x[indices[k]]). */
    void (*spmv_forward)(const csr_matrix *w, const float *bias, const float *x, float *y,
                         int r0, int r1, kernel_epilogue epi);
    /* A batch into the activation layout, features [f0, f1): for b < n,
     * a[f][b] = (x[index[b]][f] - shift) * scale (index NULL: sample b),
     * and a[f][b] = 0 for b in [n, bp). x is [samples][features]. Exact:
     * every table gives the same bytes. */
    void (*load_batch)(const float *x, int features, const int *index, int n, float shift,
                       float scale, float *a, int bp, int f0, int f1);
    /* The positions j < n with |x[j]| >= thr, in increasing order, into
     * at[]; returns how many. NaN never qualifies (RigL's growth hides
     * stored positions as NaN). */
    int (*find_at_least)(const float *x, int n, float thr, int32_t *at);
    /* GELU (tanh form) of n values, a[i] = gelu(z[i]), and its backward
     * g[i] *= gelu'(z[i]); within 1e-6 of libm's tanhf form
     * (kernels/gelu_common.h). */
    void (*gelu_forward)(const float *z, float *a, size_t n);
    void (*gelu_backward)(const float *z, float *g, size_t n);
} kernel_table;

/* The reference. The other tables are reached through the kernel list
 * (kernels/isa.h). */
const kernel_table *kernels_scalar(void);
/* The table chosen at first use: the best the CPU runs, or the one the
 * environment variable REWIRE_KERNELS names (kernel_isa_active). */
const kernel_table *kernels_active(void);

/* Threaded entry points over the active table (OpenMP, split by nonzeros),
 * each opening its own parallel region; no activation is applied. */
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

/* ---- Inside a parallel region ----------------------------------------- *
 * The team versions below share one kernel among the threads of an
 * enclosing `omp parallel` region (or run whole on the calling thread
 * outside one), as one phase of kernels/team.h: they hand out chunks of
 * rows (columns) balanced by nonzeros dynamically, call team_chunk_done
 * for each and return the number of chunks, without waiting (the caller
 * ends the phase with team_phase where the next step needs the result).
 * Any chunking gives the same bytes: each output row is computed by the
 * same code whichever thread takes it. */
int team_forward(const kernel_table *k, const csr_matrix *w, const float *bias, const float *x,
                 float *y, int bp, kernel_epilogue epi);
/* SDDMM when dw is not NULL (with the bias gradient when db is not NULL)
 * and SpMMᵀ with the activation derivative of a when dx is not NULL: both
 * read dy, so they share one round of chunks. */
int team_backward(const kernel_table *k, const csr_matrix *w, const float *dy, const float *x,
                  float *dw, float *db, float *dx, const float *a, int bp, kernel_epilogue epi);
/* team_forward into z, each chunk's rows then through GELU into a, and
 * team_backward whose dx goes through GELU's derivative at z, chunk by
 * chunk while it is in cache: the bytes of the kernel followed by a pass
 * of gelu_forward (gelu_backward) over the whole tensor, without that
 * pass's second trip through memory. */
int team_forward_gelu(const kernel_table *k, const csr_matrix *w, const float *bias,
                      const float *x, float *z, float *a, int bp);
int team_backward_gelu(const kernel_table *k, const csr_matrix *w, const float *dy,
                       const float *x, float *dw, float *db, float *dx, const float *z, int bp);
int team_spmv(const kernel_table *k, const csr_matrix *w, const float *bias, const float *x,
              float *y, kernel_epilogue epi);
/* team_spmv into z, each chunk's rows then through GELU into a: at batch
 * 1 a GELU pass of its own was one more phase (a wait for the other
 * threads) per MLP for a few microseconds of work. Same bytes. */
int team_spmv_gelu(const kernel_table *k, const csr_matrix *w, const float *bias, const float *x,
                   float *z, float *a);

/* Multiply-adds (nonzeros times padded batch) below which a parallel region
 * costs more than it saves. */
#define KERNEL_PARALLEL_MIN_WORK 32768

#endif
