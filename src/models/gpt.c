/* A GPT-style language model ("Language Models are Unsupervised Multitask
 * Learners", Radford et al. 2019; the layout of nanoGPT's model.py) built
 * from layers: token and position embeddings, n_layer pre-LayerNorm
 * blocks (attention over a fused qkv projection, then a GELU MLP of 4·dim,
 * each added back to the residual stream), a final LayerNorm and the LM
 * head tied to the token embedding. The block's four linear maps are CSR
 * at the sparsity the distribution gives them (or dense when sparsity is
 * 0); embeddings and LayerNorms stay dense.
 *
 * Initialisation as nanoGPT's: weights N(0, 0.02), the two projections
 * back into the residual stream N(0, 0.02 / √(2 n_layer)), embeddings
 * N(0, 0.02), biases 0, LayerNorm γ 1 and β 0. A sparse map's stored
 * weights get the standard deviation over √density, so that its outputs
 * start at the dense map's scale. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/loss_layer.h"
#include "nn/moe.h"
#include "nn/model.h"
#include "models/gpt.h"
#include "nn/residual.h"
#include "sparsity/distribution.h"

rw_gpt_config rw_gpt_config_default(void)
{
    rw_gpt_config c;
    memset(&c, 0, sizeof c);
    c.vocab = 256;
    c.context = 64;
    c.n_layer = 4;
    c.n_head = 4;
    c.n_embd = 128;
    c.distribution = RW_DIST_ERK;
    c.seed = 1;
    c.layer_norm_eps = 1e-5;
    return c;
}

static rw_status check_config(const rw_gpt_config *c)
{
    if (c->vocab < 1 || c->vocab > EMBEDDING_MAX_VOCAB)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "vocabulary of %d tokens, expected 1 to %d", c->vocab,
                       EMBEDDING_MAX_VOCAB);
    if (c->context < 1 || c->context > ATTENTION_MAX_CONTEXT)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "context of %d tokens, expected 1 to %d", c->context,
                       ATTENTION_MAX_CONTEXT);
    if (c->n_layer < 1 || c->n_layer > 1024)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%d layers, expected 1 to 1024", c->n_layer);
    if (c->n_head < 1 || c->n_embd < 1 || c->n_embd % c->n_head != 0 || c->n_embd > (1 << 16))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "width %d with %d heads: the heads must divide a width of 1 to 65536",
                       c->n_embd, c->n_head);
    if (c->moe_experts < 0 || c->moe_experts > MOE_MAX_EXPERTS)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%d experts, expected 0 (none) to %d", c->moe_experts,
                       MOE_MAX_EXPERTS);
    if (c->moe_every < 0 || c->moe_every > c->n_layer)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "experts every %d blocks, expected 1 to the %d blocks",
                       c->moe_every, c->n_layer);
    if (c->moe_hidden < 0 || c->moe_hidden > (1 << 20))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "expert width %d, expected 0 (automatic) to 1048576",
                       c->moe_hidden);
    if (!(c->sparsity >= 0 && c->sparsity < 1))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "sparsity %g is outside [0, 1)", c->sparsity);
    if (!(c->layer_norm_eps >= 0 && c->layer_norm_eps < 1) ||
        (c->layer_norm_eps > 0 && (float)c->layer_norm_eps < FLT_MIN))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "LayerNorm epsilon %g is outside [0, 1) or below the smallest normal float",
                       c->layer_norm_eps);
    return RW_OK;
}

static float ln_eps(const rw_gpt_config *c)
{
    return c->layer_norm_eps > 0 ? (float)c->layer_norm_eps : 1e-5f;
}

/* 1 if block b's MLP is a mixture of experts. */
static int block_is_moe(const rw_gpt_config *c, int b)
{
    int every = c->moe_every > 0 ? c->moe_every : 1;
    return c->moe_experts > 0 && b % every == every - 1;
}

static int moe_hidden(const rw_gpt_config *c)
{
    int k = c->moe_top_k > 0 ? c->moe_top_k : 1;
    return c->moe_hidden > 0 ? c->moe_hidden : (4 * c->n_embd + k - 1) / k;
}

/* The block's maps in order: qkv, attention projection, then MLP up and
 * down, or each expert's up and down. */
static int block_maps(const rw_gpt_config *c, int b)
{
    return 2 + (block_is_moe(c, b) ? 2 * c->moe_experts : 2);
}

static void map_shape(const rw_gpt_config *c, int b, int k, int *rows, int *cols)
{
    int C = c->n_embd, H = block_is_moe(c, b) ? moe_hidden(c) : 4 * C;
    if (k < 2) {
        *rows = k == 0 ? 3 * C : C;
        *cols = C;
        return;
    }
    *rows = k % 2 == 0 ? H : C;
    *cols = k % 2 == 0 ? C : H;
}

/* Layers a model of c has: embedding, 9 per block (8 with experts: their
 * MLP is one layer), ln_f, the head. */
static int layer_count(const rw_gpt_config *c)
{
    int n = 3;
    for (int b = 0; b < c->n_layer; b++) n += block_is_moe(c, b) ? 8 : 9;
    return n;
}

static void fill_normal(float *v, int64_t n, float std, rng_state *r)
{
    for (int64_t k = 0; k < n; k++) v[k] = (float)(std * rng_normal(r));
}

/* A linear map at position `at`, reading tensor `input`, its values drawn. */
static rw_status make_map(const rw_gpt_config *c, const char *name, int rows, int cols,
                          rw_activation act, double density, int sparse, float std, int input,
                          int at, uint64_t stream, int init, layer **out)
{
    rng_state r;
    rng_seed_stream(&r, c->seed, stream);
    float *bias = NULL;
    if (c->bias && !(bias = rw_alloc(sizeof(float) * (size_t)rows)))
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", name);
    if (sparse) {
        csr_matrix w;
        rw_status st = sparsity_random_pattern(&w, rows, cols, density, &r);
        if (st != RW_OK) {
            rw_free(bias);
            return st;
        }
        fill_normal(w.values, w.nnz, std / (float)sqrt(density), &r);
        *out = linear_csr_new(name, cols, rows, act, 0.01f, at, &w, bias);
    } else {
        float *w = rw_alloc(sizeof(float) * (size_t)rows * cols);
        if (!w) {
            rw_free(bias);
            return rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s (%d x %d)", name, rows, cols);
        }
        if (init) fill_normal(w, (int64_t)rows * cols, std, &r);
        *out = linear_dense_new(name, cols, rows, act, 0.01f, at, w, bias);
    }
    if (!*out) return RW_ERR_NO_MEMORY;
    (*out)->inputs[0] = input;
    ((linear *)*out)->bias_decays = 0; /* nanoGPT decays 2-D parameters only */
    return RW_OK;
}

/* Block b's experts at position `at`, reading tensor at: each expert's
 * maps drawn as the dense MLP's are, the router N(0, 0.02), the centroids
 * N(0, 1) (the scale of a LayerNorm's output). */
static rw_status make_moe(const rw_gpt_config *c, int b, const double *density, int sparse,
                          float proj_std, int at, int init, layer **out)
{
    moe_config mc = {c->moe_experts, c->moe_top_k > 0 ? c->moe_top_k : 1, moe_hidden(c),
                     c->moe_gate == RW_MOE_KMEANS ? MOE_GATE_KMEANS : MOE_GATE_SOFTMAX,
                     c->moe_capacity, (float)c->moe_balance, (float)c->moe_zloss, 0.1f};
    int C = c->n_embd, E = c->moe_experts, H = mc.hidden;
    layer *maps[2 * MOE_MAX_EXPERTS] = {0};
    char name[32], sub[LAYER_NAME_CAP];
    snprintf(name, sizeof name, "blocks.%d.moe", b);
    rw_status st = RW_OK;
    for (int k = 0; k < 2 * E && st == RW_OK; k++) {
        int up = k % 2 == 0;
        snprintf(sub, sizeof sub, "%s.e%d.%s", name, k / 2, up ? "up" : "down");
        st = make_map(c, sub, up ? H : C, up ? C : H, up ? RW_ACT_GELU : RW_ACT_NONE, density[k],
                      sparse, up ? 0.02f : proj_std, -1, -1,
                      0x3e3c0000 + 256 * (uint64_t)b + (uint64_t)k, init, &maps[k]);
    }
    float *gate = st == RW_OK ? rw_alloc(sizeof(float) * (size_t)E * C) : NULL;
    if (st == RW_OK && !gate) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", name);
    if (st != RW_OK) {
        for (int k = 0; k < 2 * E; k++) layer_free(maps[k]);
        return st;
    }
    rng_state r;
    rng_seed_stream(&r, c->seed, 0x3e3d0000 + (uint64_t)b);
    fill_normal(gate, (int64_t)E * C, mc.gate == MOE_GATE_KMEANS ? 1.0f : 0.02f, &r);
    *out = moe_new(name, C, &mc, maps, gate, at, at);
    return *out ? RW_OK : RW_ERR_NO_MEMORY;
}

rw_status gpt_build(const rw_gpt_config *c, int init, rw_model **out)
{
    *out = NULL;
    rw_status st = check_config(c);
    if (st != RW_OK) return st;
    int L = c->n_layer, C = c->n_embd, n = layer_count(c), maps = 0;
    for (int b = 0; b < L; b++) maps += block_maps(c, b);
    /* The sparsity target is shared among all the blocks' maps. */
    int *rows = calloc((size_t)maps, sizeof(int)), *cols = calloc((size_t)maps, sizeof(int));
    double *density = calloc((size_t)maps, sizeof(double));
    rw_model *m = model_alloc(n);
    if (!rows || !cols || !density || !m) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a model");
    for (int b = 0, k = 0; st == RW_OK && b < L; b++)
        for (int i = 0; i < block_maps(c, b); i++, k++) map_shape(c, b, i, &rows[k], &cols[k]);
    if (st == RW_OK && c->sparsity > 0)
        st = sparsity_distribute_shapes(rows, cols, maps, c->sparsity, c->distribution, NULL,
                                        density);
    if (st == RW_OK) {
        layer_free(m->loss);
        m->loss = loss_token_xent_new();
        if (!m->loss) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a model");
        m->inputs = 0;
    }
    /* Layer i writes tensor i + 1; the residual stream is x. */
    int at = 0, x = 1;
    if (st == RW_OK) {
        layer *e = embedding_new("embed", c->vocab, c->context, C);
        m->layers[at++] = e;
        if (!e) st = RW_ERR_NO_MEMORY;
        else {
            rng_state r;
            rng_seed_stream(&r, c->seed, 0x3e3b0000);
            param p[2];
            e->ops->params(e, p);
            if (init) {
                fill_normal(param_values(&p[0]), param_count(&p[0]), 0.02f, &r);
                fill_normal(param_values(&p[1]), param_count(&p[1]), 0.02f, &r);
            }
        }
    }
    float proj_std = 0.02f / sqrtf(2.0f * (float)L);
    const double *d = density;
    for (int b = 0; b < L && st == RW_OK; d += block_maps(c, b), b++) {
        char name[LAYER_NAME_CAP];
        int sparse = c->sparsity > 0;
        uint64_t stream = 0x3e3b0100 + 16 * (uint64_t)b;
#define NAME(fmt) (snprintf(name, sizeof name, "blocks.%d." fmt, b), name)
        layer **ly = m->layers;
        if (!(ly[at] = layer_norm_new(NAME("ln_1"), C, ln_eps(c), at, c->bias))) st = RW_ERR_NO_MEMORY;
        if (st == RW_OK) ly[at]->inputs[0] = x, at++;
        if (st == RW_OK)
            st = make_map(c, NAME("attn.qkv"), 3 * C, C, RW_ACT_NONE, d[0], sparse, 0.02f, at, at,
                          stream, init, &ly[at]), at++;
        if (st == RW_OK && !(ly[at] = attention_new(NAME("attn"), C, c->n_head, c->context, at, at)))
            st = RW_ERR_NO_MEMORY;
        if (st == RW_OK) at++;
        if (st == RW_OK)
            st = make_map(c, NAME("attn.proj"), C, C, RW_ACT_NONE, d[1], sparse, proj_std, at, at,
                          stream + 1, init, &ly[at]), at++;
        if (st == RW_OK && !(ly[at] = residual_new(NAME("attn_residual"), C, x, at, at)))
            st = RW_ERR_NO_MEMORY;
        if (st == RW_OK) x = ++at;
        if (st == RW_OK && !(ly[at] = layer_norm_new(NAME("ln_2"), C, ln_eps(c), at, c->bias)))
            st = RW_ERR_NO_MEMORY;
        if (st == RW_OK) ly[at]->inputs[0] = x, at++;
        if (st == RW_OK && block_is_moe(c, b))
            st = make_moe(c, b, d + 2, sparse, proj_std, at, init, &ly[at]), at++;
        else {
            if (st == RW_OK)
                st = make_map(c, NAME("mlp.up"), 4 * C, C, RW_ACT_GELU, d[2], sparse, 0.02f, at, at,
                              stream + 2, init, &ly[at]), at++;
            if (st == RW_OK)
                st = make_map(c, NAME("mlp.down"), C, 4 * C, RW_ACT_NONE, d[3], sparse, proj_std, at,
                              at, stream + 3, init, &ly[at]), at++;
        }
        if (st == RW_OK && !(ly[at] = residual_new(NAME("mlp_residual"), C, x, at, at)))
            st = RW_ERR_NO_MEMORY;
        if (st == RW_OK) x = ++at;
#undef NAME
    }
    if (st == RW_OK) {
        if (!(m->layers[at] = layer_norm_new("ln_f", C, ln_eps(c), at, c->bias))) st = RW_ERR_NO_MEMORY;
        else m->layers[at]->inputs[0] = x, at++;
    }
    if (st == RW_OK && !(m->layers[at] = lm_head_new("lm_head", "embed", c->vocab, C, at, at)))
        st = RW_ERR_NO_MEMORY;
    if (st == RW_OK) st = model_gather_params(m);
    if (st == RW_OK && c->attention) st = rw_model_set_attention(m, c->attention);
    free(rows);
    free(cols);
    free(density);
    if (st != RW_OK) {
        rw_model_free(m);
        return st;
    }
    *out = m;
    return RW_OK;
}

rw_status rw_gpt_create(const rw_gpt_config *c, rw_model **out)
{
    if (!c || !out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_gpt_create: NULL argument");
    return gpt_build(c, 1, out);
}
