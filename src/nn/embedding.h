/* Token and position embeddings (embedding.c) and the LM head tied to
 * them (lm_head.c). */
#ifndef RW_NN_EMBEDDING_H
#define RW_NN_EMBEDDING_H

#include "nn/layer.h"

#define EMBEDDING_MAX_VOCAB (1 << 22)
#define EMBEDDING_MAX_CONTEXT (1 << 20)

/* The first layer of a language model: reads the batch's tokens (writes
 * tensor 1), tables left unset. NULL with the message set when out of
 * memory. */
layer *embedding_new(const char *name, int vocab, int context, int dim);
int embedding_context(const layer *ly);
int embedding_vocab(const layer *ly);
int is_embedding(const layer *ly);
/* For the tied head: its gradient of wte comes first, and the table. */
void embedding_mark_tied(layer *ly);
const float *embedding_wte(const layer *ly);

/* logits = wte · x for the `dim`-feature tensor `input`, with the wte of
 * `tied_to` (an embedding layer's name), at position `index` of the
 * model. The model links it once every layer is in (layer_ops.link). */
layer *lm_head_new(const char *name, const char *tied_to, int vocab, int dim, int input, int index);

extern const layer_kind embedding_kind, lm_head_kind;

#endif
