/* Threading for the sparse kernels, in one place. Work is cut into chunks
 * of output rows (columns for the backward pass) carrying about equal
 * work; every output row is written by exactly one thread with the same
 * code as a single-threaded run, so the results are bit-identical for any
 * thread count and any chunking, with no atomics. */
#include "kernels/kernels.h"
#include "kernels/team.h"

#include <cblas.h>
#include <omp.h>
#include <stdint.h>

static const kernel_epilogue no_epilogue = {KACT_NONE, 0.0f};

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

/* How many chunks to cut n rows into for the current team: one when alone
 * or when the work is too small to share, else a few per thread so that a
 * thread that falls behind (a busy machine) leaves its share to others. */
static int chunk_count(const int32_t *ptr, int n, int bp)
{
    int threads = omp_get_num_threads();
    if (threads == 1 || work_before(ptr, n) * bp < KERNEL_PARALLEL_MIN_WORK) return 1;
    int parts = 4 * threads;
    return parts < n ? parts : (n > 0 ? n : 1);
}

static int worth_threading(const int32_t *ptr, int n, int bp)
{
    return work_before(ptr, n) * bp >= KERNEL_PARALLEL_MIN_WORK && omp_get_max_threads() > 1;
}

int team_forward(const kernel_table *k, const csr_matrix *w, const float *bias, const float *x,
                 float *y, int bp, kernel_epilogue epi)
{
    int parts = chunk_count(w->indptr, w->rows, bp);
    TEAM_FOR(t, parts) {
        k->spmm_forward(w, bias, x, y, bp, split_point(w->indptr, w->rows, t, parts),
                        split_point(w->indptr, w->rows, t + 1, parts), epi);
        team_chunk_done();
    }
    return parts;
}

/* GELU of rows [r0, r1) of z into a, or its derivative into g, right
 * after a chunk wrote them: the kernel's gelu_* over the same floats as a
 * pass of its own would run, while they are still in cache. */
static void gelu_rows(const kernel_table *k, const float *z, float *a, int bp, int r0, int r1)
{
    if (r1 > r0) k->gelu_forward(z + (size_t)r0 * bp, a + (size_t)r0 * bp, (size_t)(r1 - r0) * bp);
}

static void gelu_grad_rows(const kernel_table *k, const float *z, float *g, int bp, int r0, int r1)
{
    if (r1 > r0) k->gelu_backward(z + (size_t)r0 * bp, g + (size_t)r0 * bp, (size_t)(r1 - r0) * bp);
}

int team_forward_gelu(const kernel_table *k, const csr_matrix *w, const float *bias,
                      const float *x, float *z, float *a, int bp)
{
    int parts = chunk_count(w->indptr, w->rows, bp);
    TEAM_FOR(t, parts) {
        int r0 = split_point(w->indptr, w->rows, t, parts);
        int r1 = split_point(w->indptr, w->rows, t + 1, parts);
        k->spmm_forward(w, bias, x, z, bp, r0, r1, no_epilogue);
        gelu_rows(k, z, a, bp, r0, r1);
        team_chunk_done();
    }
    return parts;
}

/* team_backward, and with gelu_z the GELU derivative at gelu_z applied to
 * each chunk of dx. */
static int backward_chunks(const kernel_table *k, const csr_matrix *w, const float *dy,
                           const float *x, float *dw, float *db, float *dx, const float *a, int bp,
                           kernel_epilogue epi, const float *gelu_z)
{
    int rparts = dw ? chunk_count(w->indptr, w->rows, bp) : 0;
    int cparts = dx ? chunk_count(w->t_indptr, w->cols, bp) : 0;
    /* Column chunks first: the backward data pass is the longer one. */
    TEAM_FOR(t, rparts + cparts) {
        if (t < cparts) {
            int c0 = split_point(w->t_indptr, w->cols, t, cparts);
            int c1 = split_point(w->t_indptr, w->cols, t + 1, cparts);
            k->spmm_backward_data(w, dy, dx, bp, c0, c1, a, epi);
            if (gelu_z) gelu_grad_rows(k, gelu_z, dx, bp, c0, c1);
        } else
            k->sddmm_weight_grad(w, dy, x, dw, db, bp,
                                 split_point(w->indptr, w->rows, t - cparts, rparts),
                                 split_point(w->indptr, w->rows, t - cparts + 1, rparts));
        team_chunk_done();
    }
    return rparts + cparts;
}

int team_backward(const kernel_table *k, const csr_matrix *w, const float *dy, const float *x,
                  float *dw, float *db, float *dx, const float *a, int bp, kernel_epilogue epi)
{
    return backward_chunks(k, w, dy, x, dw, db, dx, a, bp, epi, NULL);
}

int team_backward_gelu(const kernel_table *k, const csr_matrix *w, const float *dy,
                       const float *x, float *dw, float *db, float *dx, const float *z, int bp)
{
    return backward_chunks(k, w, dy, x, dw, db, dx, NULL, bp, no_epilogue, z);
}

/* One sample: a chunk per thread, and only for layers worth it. */
static int spmv_parts(const csr_matrix *w)
{
    int threads = omp_get_num_threads();
    return threads > 1 && w->nnz >= KERNEL_PARALLEL_MIN_WORK / 2 ? threads : 1;
}

int team_spmv(const kernel_table *k, const csr_matrix *w, const float *bias, const float *x,
              float *y, kernel_epilogue epi)
{
    int parts = spmv_parts(w);
    TEAM_FOR(t, parts) {
        k->spmv_forward(w, bias, x, y, split_point(w->indptr, w->rows, t, parts),
                        split_point(w->indptr, w->rows, t + 1, parts), epi);
        team_chunk_done();
    }
    return parts;
}

int team_spmv_gelu(const kernel_table *k, const csr_matrix *w, const float *bias, const float *x,
                   float *z, float *a)
{
    int parts = spmv_parts(w);
    TEAM_FOR(t, parts) {
        int r0 = split_point(w->indptr, w->rows, t, parts);
        int r1 = split_point(w->indptr, w->rows, t + 1, parts);
        k->spmv_forward(w, bias, x, z, r0, r1, no_epilogue);
        gelu_rows(k, z, a, 1, r0, r1);
        team_chunk_done();
    }
    return parts;
}

void sparse_forward_with(const kernel_table *k, const csr_matrix *w, const float *bias,
                         const float *x, float *y, int bp)
{
#pragma omp parallel if (worth_threading(w->indptr, w->rows, bp))
    team_forward(k, w, bias, x, y, bp, no_epilogue);
}

void sparse_backward_data_with(const kernel_table *k, const csr_matrix *w, const float *dy,
                               float *dx, int bp)
{
    if (!worth_threading(w->t_indptr, w->cols, bp)) {
        k->spmm_backward_data(w, dy, dx, bp, 0, w->cols, NULL, no_epilogue);
        return;
    }
#pragma omp parallel
    {
        int parts = chunk_count(w->t_indptr, w->cols, bp);
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < parts; t++)
            k->spmm_backward_data(w, dy, dx, bp, split_point(w->t_indptr, w->cols, t, parts),
                                  split_point(w->t_indptr, w->cols, t + 1, parts), NULL,
                                  no_epilogue);
    }
}

void sparse_weight_grad_with(const kernel_table *k, const csr_matrix *w, const float *dy,
                             const float *x, float *dw, int bp)
{
#pragma omp parallel if (worth_threading(w->indptr, w->rows, bp))
    team_backward(k, w, dy, x, dw, NULL, NULL, NULL, bp, no_epilogue);
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
