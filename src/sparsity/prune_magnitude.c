/* Magnitude pruning of a linear map ("Learning both Weights and
 * Connections for Efficient Neural Networks", Han et al. 2015): the
 * baseline every calibration-based method is compared with. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "sparsity/prune_layer.h"

rw_status prune_magnitude_rows(float *w, int rows, int cols, const prune_target *t, uint8_t *keep)
{
    int64_t count = (int64_t)rows * cols;
    float *score = malloc(sizeof *score * (size_t)(count + 1));
    if (!score) return rw_fail(RW_ERR_NO_MEMORY, "out of memory scoring %d x %d weights", rows, cols);
    for (int64_t k = 0; k < count; k++) score[k] = fabsf(w[k]);
    rw_status st = prune_keep_rows(score, rows, cols, t, keep);
    free(score);
    if (st == RW_OK) prune_apply_mask(w, keep, count);
    return st;
}

rw_status prune_magnitude_global(float *const *w, const int *rows, const int *cols, int maps,
                                 double sparsity, uint8_t *const *keep)
{
    int64_t total = 0;
    for (int i = 0; i < maps; i++) total += (int64_t)rows[i] * cols[i];
    float *score = malloc(sizeof *score * (size_t)(total + 1));
    uint8_t *all = malloc((size_t)total + 1);
    rw_status st = score && all ? RW_OK
                                : rw_fail(RW_ERR_NO_MEMORY, "out of memory scoring %lld weights",
                                          (long long)total);
    int64_t at = 0;
    for (int i = 0; i < maps && st == RW_OK; i++)
        for (int64_t k = 0; k < (int64_t)rows[i] * cols[i]; k++) score[at++] = fabsf(w[i][k]);
    if (st == RW_OK) st = prune_keep_largest(score, total, prune_kept_count(total, sparsity), all);
    at = 0;
    for (int i = 0; i < maps && st == RW_OK; i++) {
        int64_t count = (int64_t)rows[i] * cols[i];
        for (int64_t k = 0; k < count; k++) keep[i][k] = all[at + k];
        prune_apply_mask(w[i], keep[i], count);
        at += count;
    }
    free(score);
    free(all);
    return st;
}
