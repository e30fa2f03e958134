/* GPT-2's config.json, as Hugging Face publishes it beside the weights:
 * the sizes of the transformer a checkpoint holds. */
#ifndef RW_TEXT_GPT2_CONFIG_H
#define RW_TEXT_GPT2_CONFIG_H

#include <stddef.h>

#include "rewire.h"

typedef enum {
    GPT2_GELU_TANH = 0, /* "gelu_new": GELU's tanh approximation, as GPT-2 trained */
    GPT2_GELU_ERF       /* "gelu": the exact GELU, x * Phi(x) */
} gpt2_activation;

typedef struct {
    int n_layer;        /* transformer blocks */
    int n_head;         /* attention heads; n_embd % n_head == 0 */
    int n_embd;         /* width of the residual stream */
    int n_positions;    /* longest context (learned position embeddings) */
    int vocab_size;
    int n_inner;        /* the MLP's hidden width (4 * n_embd unless given) */
    double layer_norm_epsilon; /* 1e-5 unless given */
    gpt2_activation activation; /* "gelu_new" unless given */
    /* Hugging Face's switches of the architecture, with its defaults: */
    int scale_attn_weights;  /* 1: scores divided by sqrt(head size) (true) */
    int scale_attn_by_inverse_layer_idx; /* 1: and by the block's number + 1 (false) */
    int tie_word_embeddings; /* 1: the LM head is wte (true) */
    int add_cross_attention; /* 1: blocks also attend to an encoder (false) */
} gpt2_config;

/* Upper bounds, far above any published GPT-2 (XL: 48 layers, 25 heads,
 * 1600 wide, 1024 positions, 50257 tokens), that keep sizes within int and
 * a hostile file from asking for an absurd model. */
#define GPT2_MAX_LAYERS 1024
#define GPT2_MAX_HEADS 1024
#define GPT2_MAX_EMBD 65536
#define GPT2_MAX_POSITIONS (1 << 20)
#define GPT2_MAX_VOCAB (1 << 21)
#define GPT2_MAX_INNER (1 << 20)
#define GPT2_MAX_CONFIG_BYTES ((size_t)1 << 20)

/* Reads config.json. Needs n_layer, n_head, n_embd, vocab_size and
 * n_positions (or its older name n_ctx; when both are given they must
 * agree), each a JSON integer within its bound; layer_norm_epsilon a
 * number in (0, 1); activation_function "gelu_new" or "gelu"; n_inner an
 * integer or null; model_type, when given, "gpt2"; scale_attn_weights,
 * scale_attn_by_inverse_layer_idx, tie_word_embeddings and
 * add_cross_attention, when given, booleans. Other fields are ignored. Errors: RW_ERR_IO, RW_ERR_FORMAT naming the file and the field
 * and what was expected. */
rw_status gpt2_config_read(const char *path, gpt2_config *out);

/* The same for JSON in memory; `name` stands for the file in messages. */
rw_status gpt2_config_parse(const char *name, const void *json, size_t len, gpt2_config *out);

#endif
