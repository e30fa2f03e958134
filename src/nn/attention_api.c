/* The attention layer on its own through the public API (rw_attention_*),
 * for benchmarks and for checking a pattern against a reference without a
 * whole model; and the model-level --attention setting. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/team.h"
#include "nn/attention.h"
#include "nn/model.h"

struct rw_attention {
    layer *ly;
    int dim, context, T;
    tensor in, out;
    float *scratch, *cache; /* the pass's (for T columns), the decoder's */
    int64_t scratch_len, cache_len;
    /* The gradients of the layer's parameters (dma's): a backward pass
     * trains, so routing's centroids move and dma's mask gets gradients. */
    float *grad[LAYER_MAX_PARAMS];
};

rw_status rw_attention_create(const char *spec, int heads, int head_dim, int context,
                              rw_attention **out)
{
    att_pattern p;
    rw_status st = att_pattern_parse(spec, &p);
    if (st != RW_OK) return st;
    if (heads < 1 || head_dim < 1 || (int64_t)heads * head_dim > (1 << 16) || context < 1 ||
        context > ATTENTION_MAX_CONTEXT)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "attention of %d heads of %d over %d positions: "
                       "expected heads x head_dim in [1, 65536], context in [1, %d]",
                       heads, head_dim, context, ATTENTION_MAX_CONTEXT);
    rw_attention *a = calloc(1, sizeof *a);
    if (!a || !(a->ly = attention_new("attn", heads * head_dim, heads, context, 0, 0))) {
        free(a);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for an attention layer");
    }
    if ((st = attention_set_pattern(a->ly, &p)) != RW_OK) {
        rw_attention_free(a);
        return st;
    }
    attention_set_core_only(a->ly);
    a->dim = heads * head_dim;
    a->context = context;
    a->cache_len = a->ly->ops->scratch_floats(a->ly, 1);
    param ps[LAYER_MAX_PARAMS];
    int np = a->ly->ops->params(a->ly, ps), ok = 1;
    for (int k = 0; k < np; k++)
        ok &= (a->grad[k] = rw_alloc(sizeof(float) * (size_t)param_count(&ps[k]))) != NULL;
    if (!ok || !(a->cache = rw_alloc(sizeof(float) * (size_t)a->cache_len))) {
        rw_attention_free(a);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for an attention cache of %d positions",
                       context);
    }
    *out = a;
    return RW_OK;
}

void rw_attention_free(rw_attention *a)
{
    if (!a) return;
    layer_free(a->ly);
    for (int k = 0; k < LAYER_MAX_PARAMS; k++) rw_free(a->grad[k]);
    rw_free(a->scratch);
    rw_free(a->cache);
    free(a);
}

/* One pass over the whole team of threads, as the model runs its layers. */
static void run_pass(rw_attention *a, int backward, int pos0)
{
    layer_io io = {0};
    io.in[0] = &a->in;
    io.n_in = 1;
    io.out = &a->out;
    io.bp = io.n = io.seq_len = backward < 0 ? 1 : a->T;
    io.pos0 = pos0;
    io.grad = backward > 0 ? a->grad : NULL;
    io.scratch = backward < 0 ? a->cache : a->scratch;
    io.scratch_len = backward < 0 ? a->cache_len : a->scratch_len;
    team_sync sync;
    team_sync_init(&sync);
#pragma omp parallel
    {
        team_begin(&sync);
        if (backward < 0) team_phase(a->ly->ops->forward_vector(a->ly, &io));
        else if (backward) team_phase(a->ly->ops->backward(a->ly, &io));
        else team_phase(a->ly->ops->forward(a->ly, &io));
        team_end();
    }
}

/* sparsed attends only once its blocks are chosen. */
static rw_status check_chosen(const rw_attention *a)
{
    const att_pattern *p = attention_pattern(a->ly);
    if (p->kind != ATT_SPARSED || attention_sparsed(a->ly)) return RW_OK;
    char spec[64];
    att_pattern_format(p, spec, sizeof spec);
    return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: each head's blocks are chosen from dense "
                   "attention first (rw_attention_calibrate)", spec);
}

rw_status rw_attention_calibrate(rw_attention *a, int T, const float *qkv, double *covered)
{
    const att_pattern *p = attention_pattern(a->ly);
    if (p->kind != ATT_SPARSED)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_attention_calibrate: the pattern is not "
                       "sparsed:B,KEEP");
    if (T < 1 || T > a->context)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a calibration sequence of %d positions, expected "
                       "1 to %d", T, a->context);
    int H = attention_heads(a->ly), nb = (a->context + p->block - 1) / p->block;
    double *mass = calloc((size_t)H * nb * nb, sizeof *mass);
    if (!mass) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for %d x %d blocks", nb, nb);
    att_pattern chosen = *p;
    rw_status st = attention_sparsed_mass(a->ly, p->block, qkv, T, 0, T, mass);
    if (st == RW_OK) st = attention_choose_sparsed(a->ly, &chosen, mass, covered);
    free(mass);
    return st;
}

rw_status rw_attention_forward(rw_attention *a, int T, const float *qkv, float *y)
{
    if (T < 1 || T > a->context)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a sequence of %d positions, expected 1 to %d", T,
                       a->context);
    if (check_chosen(a) != RW_OK) return RW_ERR_INVALID_ARGUMENT;
    int64_t need = a->ly->ops->scratch_floats(a->ly, T);
    if (need > a->scratch_len) {
        rw_free(a->scratch);
        a->scratch_len = 0;
        if (!(a->scratch = rw_alloc(sizeof(float) * (size_t)need)))
            return rw_fail(RW_ERR_NO_MEMORY, "out of memory for attention over %d positions", T);
        a->scratch_len = need;
    }
    a->T = T;
    a->in = (tensor){.rows = 3 * a->dim, .data = (float *)qkv, .pre = (float *)qkv};
    a->out = (tensor){.rows = a->dim, .data = y, .pre = y};
    run_pass(a, 0, 0);
    return RW_OK;
}

rw_status rw_attention_backward(rw_attention *a, const float *dy, float *dqkv)
{
    if (a->T < 1) return rw_fail(RW_ERR_INVALID_ARGUMENT, "attention backward before a forward");
    a->out.grad = (float *)dy;
    a->in.grad = dqkv;
    run_pass(a, 1, 0);
    a->out.grad = a->in.grad = NULL;
    return RW_OK;
}

rw_status rw_attention_decode(rw_attention *a, int pos, const float *qkv, float *y)
{
    if (pos < 0 || pos >= a->context)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "decoding position %d, expected 0 to %d", pos,
                       a->context - 1);
    if (check_chosen(a) != RW_OK) return RW_ERR_INVALID_ARGUMENT;
    tensor in = a->in, out = a->out;
    int T = a->T;
    a->in = (tensor){.rows = 3 * a->dim, .data = (float *)qkv, .pre = (float *)qkv};
    a->out = (tensor){.rows = a->dim, .data = y, .pre = y};
    run_pass(a, -1, pos);
    a->in = in, a->out = out, a->T = T;
    return RW_OK;
}

rw_status rw_attention_prefill(rw_attention *a, int T, const float *qkv)
{
    if (T < 0 || T > a->context)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a prefill of %d positions, expected 0 to %d", T,
                       a->context);
    attention_fill_cache(a->ly, a->cache, qkv, T, T);
    return RW_OK;
}

int64_t rw_attention_scores(rw_attention *a, int reset)
{
    int64_t n = attention_scores(a->ly);
    if (reset) attention_density(a->ly, 1);
    return n;
}

int64_t rw_attention_bytes(const rw_attention *a)
{
    return (int64_t)sizeof(float) * (a->scratch_len + a->cache_len);
}

rw_status rw_attention_check(const char *spec)
{
    att_pattern p;
    return att_pattern_parse(spec, &p);
}

layer *attention_api_layer(rw_attention *a) { return a->ly; }

float *attention_api_grad(rw_attention *a, int k) { return a->grad[k]; }

rw_status rw_model_set_attention(rw_model *model, const char *spec)
{
    att_pattern p;
    rw_status st = att_pattern_parse(spec, &p);
    if (st != RW_OK) return st;
    int found = 0, params_change = 0;
    for (int l = 0; l < model->n_layers && p.kind == ATT_SPARSED; l++) {
        /* the blocks were chosen for one B and KEEP: another needs a new choice */
        const layer *ly = model->layers[l];
        const att_sparsed *s = is_attention(ly) ? attention_sparsed(ly) : NULL;
        if (is_attention(ly) && (!s || s->block != p.block || s->keep != p.keep)) {
            char had[64] = "";
            if (s) {
                att_pattern q = {.kind = ATT_SPARSED, .block = s->block, .keep = s->keep};
                att_pattern_format(&q, had, sizeof had);
            }
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "--attention %s: layer %s has %s%s; choose "
                           "them from the trained model's dense attention with 'rewire lm sparsed "
                           "MODEL --calib-text FILE --attention %s -o OUT' (rw_lm_sparsed)", spec,
                           ly->name, s ? "the blocks of " : "no blocks chosen for sparsed",
                           had, spec);
        }
    }
    for (int l = 0; l < model->n_layers && st == RW_OK; l++)
        if (is_attention(model->layers[l])) {
            param ps[LAYER_MAX_PARAMS];
            layer *ly = model->layers[l];
            int before = ly->ops->params(ly, ps);
            st = attention_set_pattern(ly, &p);
            params_change |= ly->ops->params(ly, ps) != before;
            found = 1;
        }
    if (st != RW_OK) return st;
    /* dma's mask parameters join or leave the model's list (a trainer made
     * before no longer fits it) */
    if (params_change && (st = model_gather_params(model)) != RW_OK) return st;
    return found ? RW_OK
                 : rw_fail(RW_ERR_INVALID_ARGUMENT, "--attention %s: the model has no attention "
                           "layer", spec);
}

int rw_model_attention(const rw_model *model, char *buf, size_t cap)
{
    for (int l = 0; l < model->n_layers; l++)
        if (is_attention(model->layers[l])) {
            att_pattern_format(attention_pattern(model->layers[l]), buf, cap);
            return 1;
        }
    if (cap) buf[0] = '\0';
    return 0;
}

double rw_model_attention_density(const rw_model *model, int reset)
{
    int64_t computed = 0;
    double causal = 0;
    for (int l = 0; l < model->n_layers; l++)
        if (is_attention(model->layers[l])) {
            const layer *ly = model->layers[l];
            int64_t c = attention_scores(ly);
            double d = attention_density(ly, reset);
            computed += c;
            causal += d > 0 ? (double)c / d : 0;
        }
    return causal > 0 ? (double)computed / causal : 1.0;
}
