/* Wanda ("A Simple and Effective Pruning Approach for Large Language
 * Models", Sun et al. 2023): a weight matters in proportion to its
 * magnitude times the norm of the input it multiplies, S_ij = |W_ij| ·
 * ‖X_j‖₂, compared within each output row; no weight update. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "sparsity/prune_layer.h"

rw_status prune_wanda(float *w, int rows, int cols, const float *xnorm, const prune_target *t,
                      uint8_t *keep)
{
    int64_t count = (int64_t)rows * cols;
    float *score = malloc(sizeof *score * (size_t)(count + 1));
    if (!score) return rw_fail(RW_ERR_NO_MEMORY, "out of memory scoring %d x %d weights", rows, cols);
    for (int o = 0; o < rows; o++)
        for (int j = 0; j < cols; j++)
            score[(size_t)o * cols + j] = fabsf(w[(size_t)o * cols + j]) * xnorm[j];
    rw_status st = prune_keep_rows(score, rows, cols, t, keep);
    free(score);
    if (st == RW_OK) prune_apply_mask(w, keep, count);
    return st;
}
