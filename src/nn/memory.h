/* Memory estimates: what a model and a trainer will allocate, from the
 * layer shapes alone, so that a run can be refused before it starts
 * instead of being killed when it runs out. */
#ifndef RW_NN_MEMORY_H
#define RW_NN_MEMORY_H

#include <stdint.h>

#include "rewire.h"

typedef struct {
    int64_t in, out;
    int64_t weights; /* stored weights: nnz, or in * out when dense */
    int sparse;
    int has_activation; /* a separate output buffer (not the last layer) */
    int64_t nm_bytes;   /* N:M layers: values, offsets and transposed view; 0 otherwise */
} layer_shape;

/* Fills *out for n layers; train may be NULL (the model alone). Sums
 * saturate at INT64_MAX. */
void memory_estimate(const layer_shape *layers, int n, const rw_train_config *train,
                     rw_memory_estimate *out);

#endif
