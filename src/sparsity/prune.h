/* One-shot pruning over the model's weights (rw_model_prune). */
#ifndef RW_SPARSITY_PRUNE_H
#define RW_SPARSITY_PRUNE_H

#include "nn/model.h"

/* The parameter indices of m's weights (records with is_weight), in list
 * order, into out (which may be NULL); returns how many. */
int model_weights(const rw_model *m, int *out);

#endif
