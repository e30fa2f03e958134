/* The registry of layer kinds that model files can name (layer_kinds.c):
 * a new kind adds its layer_kind there, nothing else in the loader. */
#ifndef RW_NN_LAYER_KINDS_H
#define RW_NN_LAYER_KINDS_H

#include <stddef.h>

#include "nn/layer.h"

/* The kind a model file calls `name`, or NULL. */
const layer_kind *layer_kind_find(const char *name);

/* "sparse, nm or dense": the known names, for messages. */
void layer_kind_names(char *buf, size_t cap);

#endif
