/* Table choice and threading for the N:M kernels. Every row holds the same
 * number of slots, so equal row (or group) ranges carry equal work. */
#include <omp.h>

#include "kernels/isa.h"

const nm_kernel_table *nm_kernels_scalar(void) { return kernel_isa_at(0)->nm; }

const nm_kernel_table *nm_kernels_active(void) { return kernel_isa_active()->nm; }

/* Below this many multiply-adds a parallel region costs more than it saves. */
#define PARALLEL_MIN_WORK 32768

static int worth_threading(const nm_matrix *w, int bp)
{
    return (int64_t)w->rows * nm_slots_per_row(w) * bp >= PARALLEL_MIN_WORK &&
           omp_get_max_threads() > 1;
}

#define SPLIT(count, t, parts) ((int)((int64_t)(count) * (t) / (parts)))

void nm_forward_with(const nm_kernel_table *k, const nm_matrix *w, const float *bias,
                     const float *x, float *y, int bp)
{
    if (!worth_threading(w, bp)) {
        k->forward(w, bias, x, y, bp, 0, w->rows);
        return;
    }
#pragma omp parallel
    {
        int t = omp_get_thread_num(), p = omp_get_num_threads();
        k->forward(w, bias, x, y, bp, SPLIT(w->rows, t, p), SPLIT(w->rows, t + 1, p));
    }
}

void nm_backward_data_with(const nm_kernel_table *k, const nm_matrix *w, const float *dy,
                           float *dx, int bp)
{
    if (!worth_threading(w, bp)) {
        k->backward_data(w, dy, dx, bp, 0, w->groups);
        return;
    }
#pragma omp parallel
    {
        int t = omp_get_thread_num(), p = omp_get_num_threads();
        k->backward_data(w, dy, dx, bp, SPLIT(w->groups, t, p), SPLIT(w->groups, t + 1, p));
    }
}

void nm_weight_grad_with(const nm_kernel_table *k, const nm_matrix *w, const float *dy,
                         const float *x, float *dw, int bp)
{
    if (!worth_threading(w, bp)) {
        k->weight_grad(w, dy, x, dw, bp, 0, w->rows);
        return;
    }
#pragma omp parallel
    {
        int t = omp_get_thread_num(), p = omp_get_num_threads();
        k->weight_grad(w, dy, x, dw, bp, SPLIT(w->rows, t, p), SPLIT(w->rows, t + 1, p));
    }
}
