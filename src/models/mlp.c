/* The MLP classifier of rw_model_create: linear layers fc1, fc2, ...,
 * each CSR (at the density the distribution gives it) or dense where the
 * user asked for it, ReLU-family activations fused into all but the last,
 * whose outputs are the logits of a softmax cross-entropy; optionally a
 * LayerNorm after each hidden layer. Also the memory
 * such a model and its trainer will take, from the config alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/memory.h"
#include "nn/model.h"
#include "sparsity/distribution.h"

rw_model_config rw_model_config_default(void)
{
    rw_model_config c;
    memset(&c, 0, sizeof c);
    c.distribution = RW_DIST_ERK;
    c.activation = RW_ACT_RELU;
    c.leaky_slope = 0.01f;
    c.seed = 1;
    return c;
}

/* Uniform weights with bound 1/sqrt(fan-in), fan-in being the mean number of
 * stored inputs per output: the same output variance a dense layer gets
 * from PyTorch's default initialisation, so sparse layers do not start with
 * vanishing activations. The weight's values first, then the bias's. */
static void init_weights(const param *w, const param *b, rng_state *r)
{
    int64_t count = param_count(w);
    double fan_in = w->rows > 0 ? (double)count / w->rows : 1.0;
    if (fan_in < 1.0) fan_in = 1.0;
    float bound = (float)(1.0 / sqrt(fan_in));
    float *v = param_values(w);
    for (int64_t k = 0; k < count; k++) v[k] = bound * (float)(2.0 * rng_uniform(r) - 1.0);
    float *bias = param_values(b);
    for (int o = 0; o < b->rows; o++) bias[o] = bound * (float)(2.0 * rng_uniform(r) - 1.0);
}

static rw_status check_config(const rw_model_config *c)
{
    if (!c || !c->sizes || c->n_layers < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a model needs at least one layer");
    for (int l = 0; l <= c->n_layers; l++)
        if (c->sizes[l] < 1 || c->sizes[l] > RW_MAX_WIDTH)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer size %d is %d, expected 1 to %d", l,
                           c->sizes[l], RW_MAX_WIDTH);
    return RW_OK;
}

/* Which layers are CSR and at what density: the layer_sparsity override,
 * or the distribution with dense_first / dense_last kept dense. Dense
 * storage (OpenBLAS) only where the user asked for it; a layer the
 * distribution filled up stays CSR, so it runs on rewire's own kernels,
 * whose results do not depend on the thread count. */
static rw_status plan_layers(const rw_model_config *c, double *density, int *sparse)
{
    int n = c->n_layers;
    if (c->layer_sparsity) {
        for (int l = 0; l < n; l++) {
            double s = c->layer_sparsity[l];
            if (!(s >= 0.0 && s < 1.0))
                return rw_fail(RW_ERR_INVALID_ARGUMENT, "sparsity of layer %d is %g, outside [0, 1)",
                               l, s);
            density[l] = 1.0 - s;
            sparse[l] = s > 0.0;
        }
        return RW_OK;
    }
    int *keep = calloc((size_t)n, sizeof *keep);
    if (!keep) return rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a model");
    keep[0] = c->dense_first;
    keep[n - 1] = keep[n - 1] || c->dense_last;
    rw_status st = sparsity_distribute(c->sizes, n, c->sparsity, c->distribution, keep, density);
    for (int l = 0; l < n; l++) sparse[l] = !keep[l] && c->sparsity > 0.0;
    free(keep);
    return st;
}

/* Linear layer l of the MLP at position `at` of the chain, its arrays
 * allocated (weights still unset). */
static rw_status make_layer(const rw_model_config *c, int l, int at, int sparse, double density,
                            float slope, rng_state *r, layer **out)
{
    int n = c->n_layers, in = c->sizes[l], outs = c->sizes[l + 1];
    char name[LAYER_NAME_CAP];
    model_layer_name(name, sizeof name, l);
    rw_activation act = l == n - 1 ? RW_ACT_NONE : c->activation;
    float *bias = rw_alloc(sizeof(float) * (size_t)outs);
    if (!bias) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %d", l);
    if (sparse) {
        csr_matrix w;
        rw_status st = sparsity_random_pattern(&w, outs, in, density, r);
        if (st != RW_OK) {
            rw_free(bias);
            return st;
        }
        *out = linear_csr_new(name, in, outs, act, slope, at, &w, bias);
    } else {
        float *w = rw_alloc(sizeof(float) * (size_t)in * (size_t)outs);
        if (!w) {
            rw_free(bias);
            return rw_fail(RW_ERR_NO_MEMORY, "out of memory for dense layer %d (%d x %d)", l, outs,
                           in);
        }
        *out = linear_dense_new(name, in, outs, act, slope, at, w, bias);
    }
    return *out ? RW_OK : RW_ERR_NO_MEMORY;
}

rw_status rw_model_create(const rw_model_config *c, rw_model **out)
{
    *out = NULL;
    rw_status st = check_config(c);
    if (st != RW_OK) return st;
    if (c->sizes[c->n_layers] > RW_MAX_CLASSES)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%d classes is more than the %d supported",
                       c->sizes[c->n_layers], RW_MAX_CLASSES);
    if (c->activation < RW_ACT_RELU || c->activation > RW_ACT_NONE)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "unknown activation %d", (int)c->activation);

    int n = c->n_layers;
    double *density = calloc((size_t)n, sizeof *density);
    int *sparse = calloc((size_t)n, sizeof *sparse);
    st = density && sparse ? plan_layers(c, density, sparse)
                           : rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a model");
    int per = c->layer_norm ? 2 : 1; /* chain positions per hidden layer */
    rw_model *m = st == RW_OK ? model_alloc(per * n - (per - 1)) : NULL;
    if (st == RW_OK && !m) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a model");
    if (m) {
        m->leaky_slope = c->leaky_slope > 0 ? c->leaky_slope : 0.01f;
        m->inputs = c->sizes[0];
    }
    for (int l = 0; l < n && st == RW_OK; l++) {
        rng_state r;
        rng_seed_stream(&r, c->seed, (uint64_t)l);
        int at = per * l;
        st = make_layer(c, l, at, sparse[l], density[l], m->leaky_slope, &r, &m->layers[at]);
        if (st != RW_OK) break;
        param recs[LAYER_MAX_PARAMS];
        m->layers[at]->ops->params(m->layers[at], recs);
        init_weights(&recs[0], &recs[1], &r);
        if (c->layer_norm && l < n - 1) {
            char name[LAYER_NAME_CAP];
            snprintf(name, sizeof name, "ln%d", l + 1);
            m->layers[at + 1] = layer_norm_new(name, c->sizes[l + 1], 1e-5f, at + 1, 1);
            if (!m->layers[at + 1]) st = RW_ERR_NO_MEMORY;
        }
    }
    if (st == RW_OK) st = model_gather_params(m);
    free(density);
    free(sparse);
    if (st != RW_OK) {
        rw_model_free(m);
        return st;
    }
    *out = m;
    return RW_OK;
}

rw_status rw_estimate_memory(const rw_model_config *c, const rw_train_config *tc,
                             rw_memory_estimate *out)
{
    if (!c || !out || !c->sizes || c->n_layers < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_estimate_memory: a model needs at least one layer");
    rw_status st = check_config(c);
    if (st != RW_OK) return st;
    int n = c->n_layers;
    double *density = calloc((size_t)n, sizeof *density);
    int *sparse = calloc((size_t)n, sizeof *sparse);
    layer_shape *ls = calloc((size_t)(2 * n), sizeof *ls);
    st = density && sparse && ls ? RW_OK
                                 : rw_fail(RW_ERR_NO_MEMORY, "out of memory estimating memory");
    /* The same choices as rw_model_create. */
    if (st == RW_OK && c->layer_sparsity) {
        for (int l = 0; l < n; l++) {
            density[l] = 1.0 - c->layer_sparsity[l];
            sparse[l] = c->layer_sparsity[l] > 0.0;
        }
    } else if (st == RW_OK) {
        st = plan_layers(c, density, sparse);
    }
    for (int l = 0; l < n && st == RW_OK; l++) {
        int64_t in = c->sizes[l], outs = c->sizes[l + 1];
        double all = (double)in * (double)outs;
        int64_t weights = sparse[l] ? (int64_t)llround(density[l] * all) : in * outs;
        if (sparse[l] && density[l] > 0 && weights == 0) weights = 1;
        int at = c->layer_norm ? 2 * l : l;
        ls[at] = (layer_shape){in, outs,
                               sparse[l] ? linear_csr_bytes_for(in, outs, weights)
                                         : linear_dense_bytes_for(in, outs),
                               weights + outs, l < n - 1 && c->activation != RW_ACT_NONE};
        if (c->layer_norm && l < n - 1) /* γ and β */
            ls[at + 1] = (layer_shape){outs, outs, 8 * outs, 2 * outs, 0};
    }
    if (st == RW_OK) memory_estimate(ls, c->layer_norm ? 2 * n - 1 : n, tc, out);
    free(density);
    free(sparse);
    free(ls);
    return st;
}
