/* The GPT builder's internals shared with the GPT-2 import and export
 * (gpt2_import.c, gpt2_export.c). */
#ifndef RW_MODELS_GPT_H
#define RW_MODELS_GPT_H

#include "rewire.h"

/* rw_gpt_create, with init 0 leaving the dense weights at zero (for a
 * caller that fills every parameter itself; a sparse map still draws its
 * pattern and values). */
rw_status gpt_build(const rw_gpt_config *c, int init, rw_model **out);

/* Recognises the graph rw_gpt_create builds (gpt.c) in a model of any
 * origin (built, loaded from a model file, its maps pruned to CSR or
 * converted to N:M): every layer's name, kind, sizes, activation and the
 * tensors it reads, the LM head tied to the embedding, one head count,
 * one LayerNorm ε and biases everywhere or nowhere. Fills *out (sparsity
 * 0, seed 0) and returns RW_OK; RW_ERR_INVALID_ARGUMENT naming the first
 * layer that differs otherwise. */
rw_status gpt_config_of(const rw_model *m, rw_gpt_config *out);

/* The graph's layers: the embedding, then GPT_BLOCK_LAYERS per block (the
 * list in gpt_layout.c), then ln_f and the LM head. */
#define GPT_BLOCK_LAYERS 9

/* Block b's first layer (its ln_1). */
static inline int gpt_block_first_layer(int b) { return 1 + GPT_BLOCK_LAYERS * b; }

#endif
