/* Causal multi-head self-attention as a layer kind (attention.c). */
#ifndef RW_NN_ATTENTION_H
#define RW_NN_ATTENTION_H

#include "nn/layer.h"

#define ATTENTION_MAX_CONTEXT (1 << 20)
/* One-token decoding keeps scores up to this many positions on the stack. */
#define ATTENTION_MAX_CONTEXT_STACK 4096

/* Reads the fused [3·dim] projection `input`, writes [dim]; heads divide
 * dim; sequences of at most `context` tokens. */
layer *attention_new(const char *name, int dim, int heads, int context, int input, int index);

/* 1 if ly is an attention layer; then its heads and longest sequence. */
int is_attention(const layer *ly);
int attention_heads(const layer *ly);
int attention_context(const layer *ly);

extern const layer_kind attention_kind;

#endif
