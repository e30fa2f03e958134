#include "sparsity/distribution.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

rw_status sparsity_distribute(const int *sizes, int n_layers, double sparsity,
                              rw_distribution dist, const int *keep_dense, double *density)
{
    int *rows = malloc(sizeof(int) * (size_t)(n_layers > 0 ? n_layers : 1));
    int *cols = malloc(sizeof(int) * (size_t)(n_layers > 0 ? n_layers : 1));
    if (!rows || !cols) {
        free(rows);
        free(cols);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory sharing sparsity among layers");
    }
    for (int l = 0; l < n_layers; l++) {
        cols[l] = sizes[l];
        rows[l] = sizes[l + 1];
    }
    rw_status st = sparsity_distribute_shapes(rows, cols, n_layers, sparsity, dist, keep_dense,
                                              density);
    free(rows);
    free(cols);
    return st;
}

rw_status sparsity_distribute_shapes(const int *rows, const int *cols, int n_layers,
                                     double sparsity, rw_distribution dist,
                                     const int *keep_dense, double *density)
{
    if (!(sparsity >= 0.0 && sparsity < 1.0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "sparsity %g is outside [0, 1)", sparsity);
    double total = 0;
    for (int l = 0; l < n_layers; l++) total += (double)cols[l] * rows[l];
    int *dense = calloc((size_t)n_layers, sizeof *dense);
    if (!dense) return rw_fail(RW_ERR_NO_MEMORY, "out of memory sharing sparsity among layers");
    for (int l = 0; l < n_layers; l++) dense[l] = keep_dense ? keep_dense[l] : 0;
    if (sparsity == 0.0)
        for (int l = 0; l < n_layers; l++) dense[l] = 1;

    /* Each pass solves the scale for the layers still sparse; a layer pushed
     * past density 1 becomes dense and the budget is shared again. */
    rw_status st = RW_OK;
    for (;;) {
        double budget = (1.0 - sparsity) * total, weight = 0;
        int any_sparse = 0;
        for (int l = 0; l < n_layers; l++) {
            double params = (double)cols[l] * rows[l];
            if (dense[l]) {
                budget -= params;
                continue;
            }
            any_sparse = 1;
            double raw = dist == RW_DIST_UNIFORM
                             ? 1.0
                             : (double)(cols[l] + rows[l]) / params;
            weight += raw * params;
        }
        if (!any_sparse) {
            for (int l = 0; l < n_layers; l++) density[l] = 1.0;
            if (sparsity > 0.0)
                st = rw_fail(RW_ERR_INVALID_ARGUMENT,
                             "sparsity %g cannot be met: every layer is kept dense", sparsity);
            break;
        }
        if (budget <= 0) {
            st = rw_fail(RW_ERR_INVALID_ARGUMENT,
                         "sparsity %g cannot be met: the dense layers alone hold more than %.4g%% "
                         "of the weights",
                         sparsity, 100.0 * (1.0 - sparsity));
            break;
        }
        double eps = budget / weight;
        int worst = -1;
        double worst_density = 1.0;
        for (int l = 0; l < n_layers; l++) {
            if (dense[l]) {
                density[l] = 1.0;
                continue;
            }
            double params = (double)cols[l] * rows[l];
            double raw = dist == RW_DIST_UNIFORM ? 1.0 : (double)(cols[l] + rows[l]) / params;
            density[l] = eps * raw;
            if (density[l] > worst_density) {
                worst_density = density[l];
                worst = l;
            }
        }
        if (worst < 0) break;
        if (dist == RW_DIST_UNIFORM) {
            st = rw_fail(RW_ERR_INVALID_ARGUMENT,
                         "sparsity %g cannot be met uniformly: the sparse layers would need "
                         "density %g",
                         sparsity, worst_density);
            break;
        }
        dense[worst] = 1;
    }
    free(dense);
    return st;
}

/* Sorts n keys below `bound` ascending: least-significant-digit radix
 * sort, 11 bits a pass, as many passes as the bound needs (two for a
 * 1000 x 1000 layer), through tmp [n]. qsort took 4% of a one-epoch
 * Fashion-MNIST run at 95% sparsity. */
static void sort_positions(uint64_t *keys, uint64_t *tmp, int64_t n, uint64_t bound)
{
    enum { BITS = 11, BUCKETS = 1 << BITS };
    int64_t count[BUCKETS];
    uint64_t *from = keys, *to = tmp;
    for (int shift = 0; shift < 64 && (bound - 1) >> shift; shift += BITS) {
        memset(count, 0, sizeof count);
        for (int64_t k = 0; k < n; k++) count[(from[k] >> shift) & (BUCKETS - 1)]++;
        int64_t at = 0;
        for (int b = 0; b < BUCKETS; b++) {
            int64_t c = count[b];
            count[b] = at;
            at += c;
        }
        for (int64_t k = 0; k < n; k++) to[count[(from[k] >> shift) & (BUCKETS - 1)]++] = from[k];
        uint64_t *t = from;
        from = to;
        to = t;
    }
    if (from != keys) memcpy(keys, from, sizeof *keys * (size_t)n);
}

rw_status sparsity_random_pattern(csr_matrix *m, int rows, int cols, double density,
                                  rng_state *r)
{
    uint64_t total = (uint64_t)rows * (uint64_t)cols;
    double want = density * (double)total;
    if (want > 2147483647.0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "a %d x %d layer at density %g needs %.0f weights, more than 2^31 - 1",
                       rows, cols, density, want);
    int64_t nnz = (int64_t)llround(want);
    if (density > 0 && nnz == 0 && total > 0) nnz = 1;
    if ((uint64_t)nnz > total) nnz = (int64_t)total;

    uint64_t *pos = malloc(sizeof(uint64_t) * (size_t)(nnz > 0 ? nnz : 1)), *tmp = NULL;
    if (!pos) return rw_fail(RW_ERR_NO_MEMORY, "out of memory choosing %lld weights", (long long)nnz);
    int64_t have = 0;
    if ((uint64_t)nnz * 4 >= total) {
        /* Selection sampling (Knuth's Algorithm S): exact count, in order. */
        for (uint64_t p = 0; p < total && have < nnz; p++)
            if (rng_uniform(r) * (double)(total - p) < (double)(nnz - have)) pos[have++] = p;
    } else {
        /* Sparse case: draw positions, sort, drop repeats, draw the shortfall. */
        tmp = malloc(sizeof(uint64_t) * (size_t)(nnz > 0 ? nnz : 1));
        if (!tmp) {
            free(pos);
            return rw_fail(RW_ERR_NO_MEMORY, "out of memory choosing %lld weights", (long long)nnz);
        }
        while (have < nnz) {
            for (int64_t k = have; k < nnz; k++) pos[k] = rng_below(r, total);
            sort_positions(pos, tmp, nnz, total);
            have = 0;
            for (int64_t k = 0; k < nnz; k++)
                if (have == 0 || pos[k] != pos[have - 1]) pos[have++] = pos[k];
        }
    }
    free(tmp);
    rw_status st = csr_alloc(m, rows, cols, (int)nnz);
    if (st != RW_OK) {
        free(pos);
        return st;
    }
    for (int64_t k = 0; k < nnz; k++) {
        int row = (int)(pos[k] / (uint64_t)cols);
        m->indices[k] = (int32_t)(pos[k] % (uint64_t)cols);
        m->indptr[row + 1]++;
    }
    for (int o = 0; o < rows; o++) m->indptr[o + 1] += m->indptr[o];
    free(pos);
    csr_build_transpose(m);
    return RW_OK;
}
