/* Memory estimates: what a model and a trainer will allocate, from the
 * layers' shapes alone (nn/layer.h, layer_shape), so that a run can be
 * refused before it starts instead of being killed when it runs out. */
#ifndef RW_NN_MEMORY_H
#define RW_NN_MEMORY_H

#include <stdint.h>

#include "nn/layer.h"
#include "rewire.h"

/* Fills *out for n layers of a chain; train may be NULL (the model alone).
 * Sums saturate at INT64_MAX. */
void memory_estimate(const layer_shape *layers, int n, const rw_train_config *train,
                     rw_memory_estimate *out);

#endif
