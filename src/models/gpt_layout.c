/* Recognising a GPT (see models/gpt.h): the layer list must be the one
 * rw_gpt_create builds in gpt.c, layer for layer. Layer i writes tensor
 * i + 1; the residual stream x is tensor a at the start of the block whose
 * first layer is a (a = 1 + 9 b), and each block is
 *   a     ln_1           LayerNorm        reads a
 *   a+1   attn.qkv       linear C -> 3C   reads a+1
 *   a+2   attn           attention        reads a+2
 *   a+3   attn.proj      linear C -> C    reads a+3
 *   a+4   attn_residual  add              reads a, a+4
 *   a+5   ln_2           LayerNorm        reads a+5
 *   a+6   mlp.up         linear C -> 4C, GELU   reads a+6
 *   a+7   mlp.down       linear 4C -> C   reads a+7
 *   a+8   mlp_residual   add              reads a+5, a+8
 * after the embedding (layer 0, reading the tokens, tensor 0) and before
 * ln_f and the tied lm_head. */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "models/gpt.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/model.h"

typedef enum { K_EMBED, K_LN, K_LINEAR, K_ATTN, K_ADD, K_HEAD } layer_role;

static const char *const role_name[] = {"embedding", "layer_norm", "linear", "attention", "add",
                                        "lm_head"};

static int has_role(const layer *ly, layer_role r)
{
    switch (r) {
    case K_EMBED: return is_embedding(ly);
    case K_LN: return is_layer_norm(ly);
    case K_LINEAR: return linear_of_const(ly) != NULL;
    case K_ATTN: return is_attention(ly);
    case K_ADD: return strcmp(ly->ops->kind, "add") == 0;
    case K_HEAD: return strcmp(ly->ops->kind, "lm_head") == 0;
    }
    return 0;
}

#define NOT_GPT "the model is not the graph rw_gpt_create builds"

/* Layer l must be `name` of role r, in -> out features, activation act,
 * reading tensors in0 (and in1 when >= 0). */
static rw_status expect_layer(const rw_model *m, int l, const char *name, layer_role r, int in,
                              int out, rw_activation act, int in0, int in1)
{
    const layer *ly = m->layers[l];
    if (strcmp(ly->name, name) != 0 || !has_role(ly, r))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %d is %s (kind %s), expected %s (%s): " NOT_GPT,
                       l, ly->name, ly->ops->kind, name, role_name[r]);
    if (ly->in != in || ly->out != out)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s takes %d features to %d, expected %d to "
                       "%d: " NOT_GPT, name, ly->in, ly->out, in, out);
    if (ly->act != act)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s has activation %d, expected %d: " NOT_GPT,
                       name, (int)ly->act, (int)act);
    int n_in = in1 >= 0 ? 2 : 1;
    if (ly->n_inputs != n_in || ly->inputs[0] != in0 || (in1 >= 0 && ly->inputs[1] != in1) ||
        ly->output != l + 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s is wired to other tensors than GPT's "
                       "(reads %d, expected %d): " NOT_GPT, name, ly->inputs[0], in0);
    return RW_OK;
}

/* The LayerNorm and linear maps of every block share ε and the bias. */
static rw_status expect_same(const layer *ly, const rw_gpt_config *c)
{
    if (is_layer_norm(ly)) {
        if (layer_norm_eps(ly) != (float)c->layer_norm_eps)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s has epsilon %g, the first LayerNorm "
                           "%g: GPT-2's config.json has one", ly->name, (double)layer_norm_eps(ly),
                           c->layer_norm_eps);
        if (layer_norm_has_bias(ly) != c->bias)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s %s a bias and the first LayerNorm "
                           "%s: " NOT_GPT, ly->name, c->bias ? "lacks" : "has",
                           c->bias ? "has one" : "does not");
    }
    const linear *lin = linear_of_const(ly);
    if (lin && lin->has_bias != c->bias)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s %s a bias and the first LayerNorm %s: "
                       NOT_GPT, ly->name, c->bias ? "lacks" : "has", c->bias ? "has one" : "does not");
    return RW_OK;
}

rw_status gpt_config_of(const rw_model *m, rw_gpt_config *out)
{
    int n = m->n_layers;
    if (n < 3 + GPT_BLOCK_LAYERS || (n - 3) % GPT_BLOCK_LAYERS != 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the model has %d layers, expected 3 + %d per "
                       "block: " NOT_GPT, n, GPT_BLOCK_LAYERS);
    const layer *e = m->layers[0], *ln1 = m->layers[1], *att = m->layers[3];
    if (!is_embedding(e) || !is_layer_norm(ln1) || !is_attention(att))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layers 0, 1 and 3 are %s, %s and %s (kinds %s, %s, "
                       "%s), expected embed, blocks.0.ln_1 and blocks.0.attn: " NOT_GPT, e->name,
                       ln1->name, att->name, e->ops->kind, ln1->ops->kind, att->ops->kind);
    rw_gpt_config c = rw_gpt_config_default();
    c.vocab = embedding_vocab(e);
    c.context = embedding_context(e);
    c.n_embd = e->out;
    c.n_layer = (n - 3) / GPT_BLOCK_LAYERS;
    c.n_head = attention_heads(att);
    c.bias = layer_norm_has_bias(ln1);
    c.layer_norm_eps = layer_norm_eps(ln1);
    c.sparsity = 0;
    c.seed = 0;
    int C = c.n_embd;
    rw_status st = expect_layer(m, 0, "embed", K_EMBED, e->in, C, RW_ACT_NONE, 0, -1);
    for (int b = 0; b < c.n_layer && st == RW_OK; b++) {
        static const struct {
            const char *name;
            layer_role role;
            int in, out; /* in multiples of C */
            rw_activation act;
            int in0, in1; /* tensors read, relative to a; in1 -1: none */
        } block[GPT_BLOCK_LAYERS] = {
            {"ln_1", K_LN, 1, 1, RW_ACT_NONE, 0, -1},
            {"attn.qkv", K_LINEAR, 1, 3, RW_ACT_NONE, 1, -1},
            {"attn", K_ATTN, 3, 1, RW_ACT_NONE, 2, -1},
            {"attn.proj", K_LINEAR, 1, 1, RW_ACT_NONE, 3, -1},
            {"attn_residual", K_ADD, 1, 1, RW_ACT_NONE, 0, 4},
            {"ln_2", K_LN, 1, 1, RW_ACT_NONE, 5, -1},
            {"mlp.up", K_LINEAR, 1, 4, RW_ACT_GELU, 6, -1},
            {"mlp.down", K_LINEAR, 4, 1, RW_ACT_NONE, 7, -1},
            {"mlp_residual", K_ADD, 1, 1, RW_ACT_NONE, 5, 8},
        };
        int a = gpt_block_first_layer(b);
        for (int k = 0; k < GPT_BLOCK_LAYERS && st == RW_OK; k++) {
            char name[LAYER_NAME_CAP];
            snprintf(name, sizeof name, "blocks.%d.%s", b, block[k].name);
            st = expect_layer(m, a + k, name, block[k].role, block[k].in * C, block[k].out * C,
                              block[k].act, a + block[k].in0,
                              block[k].in1 < 0 ? -1 : a + block[k].in1);
            if (st == RW_OK) st = expect_same(m->layers[a + k], &c);
        }
        const layer *at = m->layers[a + 2];
        if (st == RW_OK && (attention_heads(at) != c.n_head || attention_context(at) != c.context))
            st = rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s has %d heads over %d positions, expected "
                         "%d over %d: " NOT_GPT, at->name, attention_heads(at),
                         attention_context(at), c.n_head, c.context);
    }
    int f = n - 2;
    if (st == RW_OK) st = expect_layer(m, f, "ln_f", K_LN, C, C, RW_ACT_NONE, f, -1);
    if (st == RW_OK) st = expect_same(m->layers[f], &c);
    if (st == RW_OK) st = expect_layer(m, f + 1, "lm_head", K_HEAD, C, c.vocab, RW_ACT_NONE, f + 1, -1);
    const layer *head = m->layers[n - 1];
    if (st == RW_OK && (!head->has_shared_param || head->shared_param != m->first_param[0]))
        st = rw_fail(RW_ERR_INVALID_ARGUMENT, "layer lm_head is not tied to embed's wte: " NOT_GPT);
    if (st == RW_OK) *out = c;
    return st;
}
