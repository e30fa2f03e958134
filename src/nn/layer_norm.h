/* LayerNorm as a layer kind (layer_norm.c). */
#ifndef RW_NN_LAYER_NORM_H
#define RW_NN_LAYER_NORM_H

#include "nn/layer.h"

/* A LayerNorm over `dim` features at position `index` of a chain (reads
 * tensor index, writes index + 1), γ = 1 and β = 0 as torch starts them;
 * without β when bias is 0 (nanoGPT's bias=False). NULL with the message
 * set when out of memory. */
layer *layer_norm_new(const char *name, int dim, float eps, int index, int bias);

/* 1 if ly is a LayerNorm; then its ε and whether it has β. */
int is_layer_norm(const layer *ly);
float layer_norm_eps(const layer *ly);
int layer_norm_has_bias(const layer *ly);

extern const layer_kind layer_norm_kind;

#endif
