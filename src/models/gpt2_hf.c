/* The tensor table of GPT-2's Hugging Face layout (models/gpt2_hf.h). */
#include "models/gpt2_hf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const gpt2_tensor globals[GPT2_GLOBALS] = {
    {"wte.weight", "embed.wte", 2, {GPT2_VOCAB, GPT2_EMBD}, 0, 0},
    {"wpe.weight", "embed.wpe", 2, {GPT2_POSITIONS, GPT2_EMBD}, 0, 0},
    {"ln_f.weight", "ln_f.weight", 1, {GPT2_EMBD}, 0, 0},
    {"ln_f.bias", "ln_f.bias", 1, {GPT2_EMBD}, 0, 1},
};

static const gpt2_tensor block[GPT2_PER_BLOCK] = {
    {"ln_1.weight", "ln_1.weight", 1, {GPT2_EMBD}, 0, 0},
    {"ln_1.bias", "ln_1.bias", 1, {GPT2_EMBD}, 0, 1},
    {"attn.c_attn.weight", "attn.qkv.weight", 2, {GPT2_EMBD, GPT2_QKV}, 1, 0},
    {"attn.c_attn.bias", "attn.qkv.bias", 1, {GPT2_QKV}, 0, 1},
    {"attn.c_proj.weight", "attn.proj.weight", 2, {GPT2_EMBD, GPT2_EMBD}, 1, 0},
    {"attn.c_proj.bias", "attn.proj.bias", 1, {GPT2_EMBD}, 0, 1},
    {"ln_2.weight", "ln_2.weight", 1, {GPT2_EMBD}, 0, 0},
    {"ln_2.bias", "ln_2.bias", 1, {GPT2_EMBD}, 0, 1},
    {"mlp.c_fc.weight", "mlp.up.weight", 2, {GPT2_EMBD, GPT2_INNER}, 1, 0},
    {"mlp.c_fc.bias", "mlp.up.bias", 1, {GPT2_INNER}, 0, 1},
    {"mlp.c_proj.weight", "mlp.down.weight", 2, {GPT2_INNER, GPT2_EMBD}, 1, 0},
    {"mlp.c_proj.bias", "mlp.down.bias", 1, {GPT2_EMBD}, 0, 1},
};

const gpt2_tensor *gpt2_slot(int64_t k, int *b)
{
    if (k < GPT2_GLOBALS) {
        *b = -1;
        return &globals[k];
    }
    *b = (int)((k - GPT2_GLOBALS) / GPT2_PER_BLOCK);
    return &block[(k - GPT2_GLOBALS) % GPT2_PER_BLOCK];
}

void gpt2_slot_names(int64_t k, char *hf, size_t hf_cap, char *rw, size_t rw_cap)
{
    int b;
    const gpt2_tensor *t = gpt2_slot(k, &b);
    if (b < 0) {
        snprintf(hf, hf_cap, "%s", t->hf);
        snprintf(rw, rw_cap, "%s", t->rw);
    } else {
        snprintf(hf, hf_cap, "h.%d.%s", b, t->hf);
        snprintf(rw, rw_cap, "blocks.%d.%s", b, t->rw);
    }
}

static int64_t dim_size(gpt2_dim d, const gpt2_config *c)
{
    switch (d) {
    case GPT2_VOCAB: return c->vocab_size;
    case GPT2_POSITIONS: return c->n_positions;
    case GPT2_EMBD: return c->n_embd;
    case GPT2_QKV: return 3 * (int64_t)c->n_embd;
    case GPT2_INNER: return c->n_inner;
    }
    return 0;
}

void gpt2_tensor_shape(const gpt2_tensor *t, const gpt2_config *c, int64_t shape[2])
{
    shape[0] = dim_size(t->dims[0], c);
    shape[1] = t->ndim > 1 ? dim_size(t->dims[1], c) : 1;
}

void gpt2_tensor_shape_text(const gpt2_tensor *t, char *buf, size_t cap)
{
    static const char *const names[] = {"vocab_size", "n_positions", "n_embd", "3*n_embd",
                                        "n_inner"};
    if (t->ndim == 1) snprintf(buf, cap, "[%s]", names[t->dims[0]]);
    else snprintf(buf, cap, "[%s, %s]", names[t->dims[0]], names[t->dims[1]]);
}

char *gpt2_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}
