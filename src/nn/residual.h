/* The residual add as a layer kind (residual.c). */
#ifndef RW_NN_RESIDUAL_H
#define RW_NN_RESIDUAL_H

#include "nn/layer.h"

/* y = tensor a + tensor b, both `dim` wide, at position `index`. */
layer *residual_new(const char *name, int dim, int a, int b, int index);

extern const layer_kind residual_kind;

#endif
