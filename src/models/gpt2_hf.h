/* GPT-2 checkpoints in Hugging Face's layout: DIR/config.json (text/
 * gpt2_config.h) and DIR/model.safetensors with the tensors of
 * transformers' GPT2Model, read by gpt2_import.c and written by
 * gpt2_export.c:
 *   wte.weight [vocab_size, n_embd]   wpe.weight [n_positions, n_embd]
 *   h.N.ln_1.{weight,bias} [n_embd]   h.N.ln_2.{weight,bias} [n_embd]
 *   h.N.attn.c_attn.weight [n_embd, 3 n_embd]  .bias [3 n_embd]
 *   h.N.attn.c_proj.weight [n_embd, n_embd]    .bias [n_embd]
 *   h.N.mlp.c_fc.weight [n_embd, n_inner]      .bias [n_inner]
 *   h.N.mlp.c_proj.weight [n_inner, n_embd]    .bias [n_embd]
 *   ln_f.{weight,bias} [n_embd]
 * The maps are transformers' Conv1D, y = x W + b with W stored [in][out]:
 * the transpose of rewire's (and nn.Linear's) [out][in]. c_attn's outputs
 * are q, k, v in that order, heads of n_embd / n_head consecutive
 * columns each, as rewire's attention reads its fused input. */
#ifndef RW_MODELS_GPT2_HF_H
#define RW_MODELS_GPT2_HF_H

#include <stddef.h>
#include <stdint.h>

#include "rewire.h"
#include "text/gpt2_config.h"

/* The sizes a tensor's dimensions are, as config.json names them. */
typedef enum { GPT2_VOCAB, GPT2_POSITIONS, GPT2_EMBD, GPT2_QKV, GPT2_INNER } gpt2_dim;

typedef struct {
    const char *hf;  /* its name in the checkpoint, after "h.N." for a block's */
    const char *rw;  /* rewire's parameter, after "blocks.N." for a block's */
    int ndim;
    gpt2_dim dims[2];
    int conv1d;      /* stored [in][out]: transposed from rewire's [out][in] */
    int is_bias;     /* a bias or LayerNorm β (rewire's bias-free models lack it) */
} gpt2_tensor;

/* The model's tensors as slots: the 4 outside the blocks (wte, wpe,
 * ln_f.weight, ln_f.bias), then 12 per block in the order above. */
#define GPT2_GLOBALS 4
#define GPT2_PER_BLOCK 12
static inline int64_t gpt2_slot_count(int n_layer)
{
    return GPT2_GLOBALS + (int64_t)GPT2_PER_BLOCK * n_layer;
}

/* Slot k's tensor and its block (-1 outside the blocks). */
const gpt2_tensor *gpt2_slot(int64_t k, int *block);

/* Slot k's checkpoint name ("h.3.attn.c_attn.weight") and rewire
 * parameter name ("blocks.3.attn.qkv.weight"). */
void gpt2_slot_names(int64_t k, char *hf, size_t hf_cap, char *rw, size_t rw_cap);

/* The checkpoint's shape of t under config c, and its description
 * ("[n_embd, 3*n_embd]") for messages. */
void gpt2_tensor_shape(const gpt2_tensor *t, const gpt2_config *c, int64_t shape[2]);
void gpt2_tensor_shape_text(const gpt2_tensor *t, char *buf, size_t cap);

/* DIR/NAME in a malloc'ed string (free()), or NULL when out of memory. */
char *gpt2_path_join(const char *dir, const char *name);

/* The import over a config.json and a model.safetensors in memory (the
 * names stand for the files in messages), without the tokenizer: the
 * core of rw_gpt2_import, for the fuzz harness. */
rw_status gpt2_import_memory(const char *config_name, const void *config, size_t config_len,
                             const char *weights_name, const void *weights, size_t weights_len,
                             rw_model **out);

#endif
