/* Memory estimates from layer shapes (see rewire.h, rw_estimate_memory).
 * The terms follow the allocations of model.c (csr_alloc, biases),
 * trainer.c (optimizer state) and network.c (workspace_init). */
#include "nn/memory.h"

#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/nm.h"
#include "nn/model.h"
#include "sparsity/nm_train.h"
#include "sparsity/distribution.h"

#define EVAL_BATCH 256 /* as evaluate.c */

static int64_t add(int64_t a, int64_t b)
{
    int64_t s;
    return __builtin_add_overflow(a, b, &s) ? INT64_MAX : s;
}

static int64_t mul(int64_t a, int64_t b)
{
    int64_t p;
    return __builtin_mul_overflow(a, b, &p) ? INT64_MAX : p;
}

/* Activation buffers of a workspace for a padded batch bp. */
static int64_t workspace_bytes(const layer_shape *ls, int n, int64_t bp, int with_grads)
{
    int64_t floats = mul(ls[0].in, bp); /* a[0] */
    for (int l = 0; l < n; l++) {
        floats = add(floats, mul(ls[l].out, bp));                         /* z[l] */
        if (ls[l].has_activation) floats = add(floats, mul(ls[l].out, bp)); /* a[l+1] */
        if (with_grads && l > 0) floats = add(floats, mul(ls[l].in, bp));   /* g[l] */
    }
    if (with_grads) floats = add(floats, mul(ls[n - 1].out, bp)); /* g[n] */
    return mul(floats, 4);
}

void memory_estimate(const layer_shape *ls, int n, const rw_train_config *tc,
                     rw_memory_estimate *out)
{
    int64_t model = 0, params = 0;
    for (int l = 0; l < n; l++) {
        const layer_shape *s = &ls[l];
        int64_t bytes = mul(4, s->out); /* bias */
        if (s->sparse) /* indptr, transposed column pointers; per entry an
                          index, a value, a row and a permutation slot */
            bytes = add(bytes, add(mul(4, add(add(s->out, s->in), 2)), mul(16, s->weights)));
        else if (s->nm_bytes > 0)
            bytes = add(bytes, s->nm_bytes);
        else
            bytes = add(bytes, mul(4, s->weights));
        model = add(model, bytes);
        params = add(params, add(s->weights, s->out));
    }
    out->model = model;
    out->optimizer = out->gradients = out->activations = 0;
    if (tc) {
        int adam = tc->optimizer == RW_OPT_ADAMW;
        out->optimizer = mul(mul(params, 4), adam ? 2 : 1);
        out->gradients = mul(params, 4);
        int64_t bp = rw_pad_batch(tc->batch > 0 ? tc->batch : 1);
        out->activations = add(workspace_bytes(ls, n, bp, 1), workspace_bytes(ls, n, EVAL_BATCH, 0));
    } else {
        out->activations = workspace_bytes(ls, n, EVAL_BATCH, 0);
    }
    out->total = add(add(out->model, out->optimizer), add(out->gradients, out->activations));
}

rw_status rw_estimate_memory(const rw_model_config *c, const rw_train_config *tc,
                             rw_memory_estimate *out)
{
    if (!c || !out || !c->sizes || c->n_layers < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_estimate_memory: a model needs at least one layer");
    int n = c->n_layers;
    for (int l = 0; l <= n; l++)
        if (c->sizes[l] < 1 || c->sizes[l] > RW_MAX_WIDTH)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer size %d is %d, expected 1 to %d", l,
                           c->sizes[l], RW_MAX_WIDTH);
    double *density = calloc((size_t)n, sizeof *density);
    int *keep = calloc((size_t)n, sizeof *keep);
    layer_shape *ls = calloc((size_t)n, sizeof *ls);
    rw_status st = density && keep && ls ? RW_OK
                                         : rw_fail(RW_ERR_NO_MEMORY, "out of memory estimating memory");
    /* The same choices as rw_model_create. */
    if (st == RW_OK && c->layer_sparsity) {
        for (int l = 0; l < n; l++) density[l] = 1.0 - c->layer_sparsity[l];
    } else if (st == RW_OK) {
        keep[0] = c->dense_first;
        keep[n - 1] = keep[n - 1] || c->dense_last;
        st = sparsity_distribute(c->sizes, n, c->sparsity, c->distribution, keep, density);
    }
    for (int l = 0; l < n && st == RW_OK; l++) {
        layer_shape *s = &ls[l];
        s->in = c->sizes[l];
        s->out = c->sizes[l + 1];
        s->sparse = c->layer_sparsity ? c->layer_sparsity[l] > 0.0 : !keep[l] && c->sparsity > 0.0;
        s->has_activation = l < n - 1 && c->activation != RW_ACT_NONE;
        double all = (double)s->in * (double)s->out;
        s->weights = s->sparse ? (int64_t)llround(density[l] * all) : s->in * s->out;
        if (s->sparse && density[l] > 0 && s->weights == 0) s->weights = 1;
    }
    if (st == RW_OK) memory_estimate(ls, n, tc, out);
    free(density);
    free(keep);
    free(ls);
    return st;
}

rw_status rw_estimate_trainer_memory(const rw_model *m, const rw_train_config *tc,
                                     rw_memory_estimate *out)
{
    if (!m || !out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_estimate_trainer_memory: NULL argument");
    layer_shape *ls = calloc((size_t)m->n_layers, sizeof *ls);
    if (!ls) return rw_fail(RW_ERR_NO_MEMORY, "out of memory estimating memory");
    for (int l = 0; l < m->n_layers; l++) {
        const layer *ly = &m->layers[l];
        int64_t nm_bytes = ly->is_nm ? nm_memory_bytes(ly->out, ly->in, ly->nm.n, ly->nm.m) : 0;
        ls[l] = (layer_shape){ly->in, ly->out, layer_weight_count(ly), ly->sparse,
                              ly->act != RW_ACT_NONE, nm_bytes};
    }
    memory_estimate(ls, m->n_layers, tc, out);
    free(ls);
    /* A model under N:M training also holds its masks (and W_eff). */
    int64_t nm = nm_train_bytes(m);
    out->model = add(out->model, nm);
    out->total = add(out->total, nm);
    return RW_OK;
}
