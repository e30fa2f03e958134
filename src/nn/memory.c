/* Memory estimates from layer shapes (see rewire.h, rw_estimate_memory).
 * The terms follow the allocations of the layer kinds (their shape op),
 * trainer.c (optimizer state) and network.c (workspace_init). */
#include "nn/memory.h"

#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "nn/model.h"

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
        model = add(model, ls[l].model_bytes);
        params = add(params, ls[l].param_floats);
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

rw_status rw_estimate_trainer_memory(const rw_model *m, const rw_train_config *tc,
                                     rw_memory_estimate *out)
{
    if (!m || !out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_estimate_trainer_memory: NULL argument");
    layer_shape *ls = calloc((size_t)m->n_layers, sizeof *ls);
    if (!ls) return rw_fail(RW_ERR_NO_MEMORY, "out of memory estimating memory");
    for (int l = 0; l < m->n_layers; l++) m->layers[l]->ops->shape(m->layers[l], NULL, &ls[l]);
    memory_estimate(ls, m->n_layers, tc, out);
    free(ls);
    return RW_OK;
}
