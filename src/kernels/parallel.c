/* Threading for the sparse kernels, in one place. Each thread gets one
 * contiguous range of output rows (columns for the backward pass), chosen
 * so that the ranges carry about equal work; every output row is written by
 * exactly one thread with the same code as a single-threaded run, so the
 * results are bit-identical for any thread count, with no atomics. */
#include "kernels/kernels.h"

#include <cblas.h>
#include <omp.h>
#include <stdint.h>

/* Below this many multiply-adds (nonzeros times padded batch) a parallel
 * region costs more than it saves. */
#define PARALLEL_MIN_WORK 32768

/* Work of the first r rows: their nonzeros plus one per row, since an empty
 * row still costs a store of bp floats. Strictly increasing in r. */
static int64_t work_before(const int32_t *ptr, int r) { return (int64_t)ptr[r] + r; }

/* The first row of part t of `parts`: the smallest r with
 * work_before(r) >= total * t / parts, by binary search on ptr. */
static int split_point(const int32_t *ptr, int n, int t, int parts)
{
    int64_t target = work_before(ptr, n) * t / parts;
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (work_before(ptr, mid) < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int worth_threading(const int32_t *ptr, int n, int bp)
{
    return work_before(ptr, n) * bp >= PARALLEL_MIN_WORK && omp_get_max_threads() > 1;
}

void sparse_forward_with(const kernel_table *k, const csr_matrix *w, const float *bias,
                         const float *x, float *y, int bp)
{
    if (!worth_threading(w->indptr, w->rows, bp)) {
        k->spmm_forward(w, bias, x, y, bp, 0, w->rows);
        return;
    }
#pragma omp parallel
    {
        int t = omp_get_thread_num(), parts = omp_get_num_threads();
        int r0 = split_point(w->indptr, w->rows, t, parts);
        int r1 = split_point(w->indptr, w->rows, t + 1, parts);
        k->spmm_forward(w, bias, x, y, bp, r0, r1);
    }
}

void sparse_backward_data_with(const kernel_table *k, const csr_matrix *w, const float *dy,
                               float *dx, int bp)
{
    if (!worth_threading(w->t_indptr, w->cols, bp)) {
        k->spmm_backward_data(w, dy, dx, bp, 0, w->cols);
        return;
    }
#pragma omp parallel
    {
        int t = omp_get_thread_num(), parts = omp_get_num_threads();
        int c0 = split_point(w->t_indptr, w->cols, t, parts);
        int c1 = split_point(w->t_indptr, w->cols, t + 1, parts);
        k->spmm_backward_data(w, dy, dx, bp, c0, c1);
    }
}

void sparse_weight_grad_with(const kernel_table *k, const csr_matrix *w, const float *dy,
                             const float *x, float *dw, int bp)
{
    if (!worth_threading(w->indptr, w->rows, bp)) {
        k->sddmm_weight_grad(w, dy, x, dw, bp, 0, w->rows);
        return;
    }
#pragma omp parallel
    {
        int t = omp_get_thread_num(), parts = omp_get_num_threads();
        int r0 = split_point(w->indptr, w->rows, t, parts);
        int r1 = split_point(w->indptr, w->rows, t + 1, parts);
        k->sddmm_weight_grad(w, dy, x, dw, bp, r0, r1);
    }
}

void sparse_forward(const csr_matrix *w, const float *bias, const float *x, float *y, int bp)
{
    sparse_forward_with(kernels_active(), w, bias, x, y, bp);
}

void sparse_backward_data(const csr_matrix *w, const float *dy, float *dx, int bp)
{
    sparse_backward_data_with(kernels_active(), w, dy, dx, bp);
}

void sparse_weight_grad(const csr_matrix *w, const float *dy, const float *x, float *dw, int bp)
{
    sparse_weight_grad_with(kernels_active(), w, dy, x, dw, bp);
}

/* One knob for both thread pools: ours (OpenMP) and OpenBLAS's, which the
 * dense layers use. */
void rw_set_num_threads(int threads)
{
    if (threads < 1) threads = 1;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
}

int rw_get_num_threads(void) { return omp_get_max_threads(); }
