/* The MoE layer as the rest of rewire sees it: its parameter records (the
 * experts' maps' own, then the router's), what it stores in model files,
 * reports and memory estimates, and its construction (nn/moe.h). The
 * routing and the passes are nn/moe.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "nn/layer_kinds.h"
#include "nn/moe_internal.h"

static int moe_params(layer *ly, param *out)
{
    moe_layer *m = (moe_layer *)ly;
    int n = 0;
    for (int k = 0; k < 2 * m->cfg.experts; k++) {
        m->first[k] = n;
        n += m->maps[k]->ops->params(m->maps[k], out + n);
    }
    if (m->cfg.gate == MOE_GATE_SOFTMAX) {
        out[n++] = param_dense(ly->name, "router.weight", m->cfg.experts, ly->in, &m->gate_w, 1);
    }
    m->n_params = n;
    return n;
}

static const char *gate_tensor(const moe_layer *m)
{
    return m->cfg.gate == MOE_GATE_SOFTMAX ? "router.weight" : "centroids";
}

static void moe_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    const moe_layer *m = moe_of(ly);
    *out = (layer_shape){ly->in, ly->out, 0, 0, 0};
    int64_t gate = (int64_t)m->cfg.experts * ly->in;
    out->model_bytes = 4 * gate;
    out->param_floats = m->cfg.gate == MOE_GATE_SOFTMAX ? gate : 0;
    for (int k = 0; k < 2 * m->cfg.experts; k++) {
        layer_shape s;
        m->maps[k]->ops->shape(m->maps[k], f, &s);
        out->model_bytes += s.model_bytes;
        out->param_floats += s.param_floats;
    }
}

static void moe_info(const layer *ly, rw_layer_info *out)
{
    const moe_layer *m = moe_of(ly);
    int64_t nz = 0, bytes = 4 * (int64_t)m->cfg.experts * ly->in, dense = bytes;
    int sparse = 0;
    for (int k = 0; k < 2 * m->cfg.experts; k++) {
        rw_layer_info i;
        memset(&i, 0, sizeof i);
        i.dense_bytes = 4 * ((int64_t)m->maps[k]->in * m->maps[k]->out + m->maps[k]->out);
        m->maps[k]->ops->info(m->maps[k], &i);
        nz += i.nonzeros;
        bytes += i.bytes;
        sparse |= i.sparse;
        dense += 4 * ((int64_t)m->maps[k]->in * m->maps[k]->out + m->maps[k]->out);
    }
    out->experts = m->cfg.experts;
    out->top_k = m->cfg.top_k;
    out->expert_hidden = m->cfg.hidden;
    snprintf(out->gate, sizeof out->gate, "%s",
             m->cfg.gate == MOE_GATE_SOFTMAX ? "softmax" : "kmeans");
    out->nonzeros = nz;
    out->bytes = bytes;
    out->dense_bytes = dense;
    out->sparse = sparse;
}

static void moe_describe(const layer *ly, json_t *entry)
{
    const moe_layer *m = moe_of(ly);
    const moe_config *c = &m->cfg;
    json_t *kinds = json_array();
    for (int k = 0; k < 2 * c->experts; k++)
        json_array_append_new(kinds, json_string(m->maps[k]->ops->kind));
    json_object_set_new(entry, "experts", json_integer(c->experts));
    json_object_set_new(entry, "top_k", json_integer(c->top_k));
    json_object_set_new(entry, "hidden", json_integer(c->hidden));
    json_object_set_new(entry, "gate",
                        json_string(c->gate == MOE_GATE_SOFTMAX ? "softmax" : "kmeans"));
    json_object_set_new(entry, "capacity", json_real(c->capacity));
    json_object_set_new(entry, "balance", json_real(c->balance));
    json_object_set_new(entry, "zloss", json_real(c->zloss));
    json_object_set_new(entry, "kmeans_rate", json_real(c->kmeans_rate));
    json_object_set_new(entry, "maps", kinds);
    if (m->maps[0]->ops->describe) { /* the maps' own fields ("bias": false) */
        json_t *sub = json_object();
        m->maps[0]->ops->describe(m->maps[0], sub);
        json_object_set_new(entry, "map_fields", sub);
    }
}

static rw_status moe_save(const layer *ly, st_writer *w, const char *path)
{
    const moe_layer *m = moe_of(ly);
    rw_status st = RW_OK;
    for (int k = 0; st == RW_OK && k < 2 * m->cfg.experts; k++)
        st = m->maps[k]->ops->save(m->maps[k], w, path);
    char name[LAYER_NAME_CAP + 32];
    snprintf(name, sizeof name, "%s.%s", ly->name, gate_tensor(m));
    int64_t shape[2] = {m->cfg.experts, ly->in};
    return st == RW_OK ? st_writer_add(w, name, ST_F32, 2, shape, m->gate_w) : st;
}

static rw_status moe_load(layer *ly, const st_file *f, const char *path)
{
    moe_layer *m = (moe_layer *)ly;
    for (int k = 0; k < 2 * m->cfg.experts; k++) {
        rw_status st = m->maps[k]->ops->load(m->maps[k], f, path);
        if (st != RW_OK) return st;
    }
    char name[LAYER_NAME_CAP + 32];
    snprintf(name, sizeof name, "%s.%s", ly->name, gate_tensor(m));
    const st_tensor *t = st_find(f, name);
    size_t count = (size_t)m->cfg.experts * ly->in;
    if (!t) return rw_fail(RW_ERR_FORMAT, "%s: tensor %s is missing", path, name);
    if (t->dtype != ST_F32 || t->ndim != 2 || t->shape[0] != m->cfg.experts ||
        t->shape[1] != ly->in)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s should be F32 of shape [%d, %d]", path, name,
                       m->cfg.experts, ly->in);
    if (!(m->gate_w = rw_alloc(sizeof(float) * count)))
        return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, name);
    memcpy(m->gate_w, t->data, sizeof(float) * count);
    for (size_t i = 0; i < count; i++)
        if (!isfinite(m->gate_w[i]))
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value at %zu", path, name,
                           i);
    return RW_OK;
}

static int moe_owns(const layer *ly, const char *name)
{
    const moe_layer *m = moe_of(ly);
    size_t len = strlen(ly->name);
    if (strncmp(name, ly->name, len) == 0 && name[len] == '.' &&
        strcmp(name + len + 1, gate_tensor(m)) == 0)
        return 1;
    for (int k = 0; k < 2 * m->cfg.experts; k++)
        if (m->maps[k]->ops->owns_tensor(m->maps[k], name)) return 1;
    return 0;
}

static void moe_destroy(layer *ly)
{
    moe_layer *m = (moe_layer *)ly;
    for (int k = 0; k < 2 * MOE_MAX_EXPERTS; k++) layer_free(m->maps[k]);
    rw_free(m->gate_w);
    free(m->stats);
    free(m->km_sum);
    free(m->km_count);
    free(m->km_reseed);
    free(m->km_dead);
    free(m);
}

/* Each process routes and gathers its own tokens: centroids moved by them,
 * or topologies grown from them, would differ between processes. */
static const char *moe_single_process_only(const layer *ly, int dst_active)
{
    if (moe_of(ly)->cfg.gate == MOE_GATE_KMEANS)
        return "the k-means gate (each process moves the centroids by its own tokens)";
    return dst_active ? "dynamic sparse training inside experts (each process grows from its own "
                        "tokens)"
                      : NULL;
}

/* Its experts' load since the last line (assignments the gate asked for,
 * and those within capacity), dropped assignments, the mean auxiliary
 * losses (before their coefficients) and the mean over batches of busiest
 * / mean load. */
static json_t *moe_take_log(const layer *ly, const char **event)
{
    moe_stats st;
    moe_stats_take(ly, &st);
    int E = moe_of(ly)->cfg.experts;
    json_t *routed = json_array(), *kept = json_array();
    for (int e = 0; e < E; e++) {
        json_array_append_new(routed, json_integer(st.routed[e]));
        json_array_append_new(kept, json_integer(st.kept[e]));
    }
    double b = st.batches > 0 ? (double)st.batches : 1.0;
    *event = "moe";
    return json_pack("{s:I, s:I, s:o, s:o, s:I, s:f, s:f, s:f}", "batches",
                     (json_int_t)st.batches, "tokens", (json_int_t)st.tokens, "routed", routed,
                     "kept", kept, "dropped", (json_int_t)st.dropped, "balance_loss",
                     st.balance_loss / b, "z_loss", st.z_loss / b, "busiest_over_mean",
                     st.busiest / b);
}

static const layer_ops moe_ops = {
    .kind = "moe",
    .forward = moe_forward,
    .backward = moe_backward,
    .forward_vector = moe_forward,
    .params = moe_params,
    .shape = moe_shape,
    .info = moe_info,
    .describe = moe_describe,
    .save = moe_save,
    .load = moe_load,
    .owns_tensor = moe_owns,
    .scratch_floats = moe_scratch_floats,
    .accumulates = 1,
    .after_step = moe_after_step,
    .param_batch = moe_param_batch,
    .single_process_only = moe_single_process_only,
    .take_log = moe_take_log,
    .destroy = moe_destroy,
};

int is_moe(const layer *ly) { return ly && ly->ops == &moe_ops; }

const moe_config *moe_config_of(const layer *ly) { return &moe_of(ly)->cfg; }

layer *moe_map(const layer *ly, int e, int which) { return moe_of(ly)->maps[2 * e + which]; }

float *moe_gate_weights(const layer *ly) { return moe_of(ly)->gate_w; }

void moe_stats_take(const layer *ly, moe_stats *out)
{
    const moe_layer *m = moe_of(ly);
    *out = *m->stats;
    memset(m->stats, 0, sizeof *m->stats);
}

static rw_status check_config(const moe_config *c, int dim, const char *name)
{
    if (c->experts < 1 || c->experts > MOE_MAX_EXPERTS)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s: %d experts, expected 1 to %d", name,
                       c->experts, MOE_MAX_EXPERTS);
    if (c->top_k < 1 || c->top_k > 2 || c->top_k > c->experts)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s: top-%d of %d experts, expected 1 or 2 "
                       "and at most the experts", name, c->top_k, c->experts);
    if (c->gate == MOE_GATE_KMEANS && c->top_k != 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s: the kmeans gate is top-1, not top-%d",
                       name, c->top_k);
    if (c->gate != MOE_GATE_SOFTMAX && c->gate != MOE_GATE_KMEANS)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s: unknown gate", name);
    if (c->hidden < 1 || dim < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s: expert width %d, expected at least 1",
                       name, c->hidden);
    if (!(c->capacity == 0 || (c->capacity >= 0.1 && c->capacity <= 64)))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s: capacity factor %g, expected 0 "
                       "(dropless) or 0.1 to 64", name, c->capacity);
    if (!(c->balance >= 0 && c->balance <= 100) || !(c->zloss >= 0 && c->zloss <= 100))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s: auxiliary loss coefficients %g and %g, "
                       "expected 0 to 100", name, c->balance, c->zloss);
    if (!(c->kmeans_rate > 0 && c->kmeans_rate <= 1))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s: k-means rate %g, expected (0, 1]", name,
                       c->kmeans_rate);
    return RW_OK;
}

layer *moe_new(const char *name, int dim, const moe_config *cfg, layer **maps, float *gate_w,
               int input, int index)
{
    rw_status st = check_config(cfg, dim, name);
    moe_layer *m = st == RW_OK ? calloc(1, sizeof *m) : NULL;
    int E = st == RW_OK ? cfg->experts : 0;
    if (m) {
        m->stats = calloc(1, sizeof *m->stats);
        m->km_sum = calloc((size_t)cfg->experts * dim, sizeof(double));
        m->km_count = calloc((size_t)cfg->experts, sizeof(int64_t));
        m->km_reseed = calloc((size_t)cfg->experts * dim, sizeof(float));
        m->km_dead = calloc((size_t)cfg->experts, sizeof(int));
    }
    if (st == RW_OK &&
        (!m || !m->stats || !m->km_sum || !m->km_count || !m->km_reseed || !m->km_dead))
        st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", name);
    for (int k = 0; st == RW_OK && k < 2 * E; k++) {
        int up = k % 2 == 0;
        if (!maps[k] || maps[k]->in != (up ? dim : cfg->hidden) ||
            maps[k]->out != (up ? cfg->hidden : dim) ||
            maps[k]->act != (up ? RW_ACT_GELU : RW_ACT_NONE))
            st = rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s: expert map %d is not a %s map of %d "
                         "to %d", name, k, up ? "GELU" : "linear", up ? dim : cfg->hidden,
                         up ? cfg->hidden : dim);
    }
    if (st != RW_OK) {
        int taken = cfg->experts < 0                 ? 0
                    : cfg->experts > MOE_MAX_EXPERTS ? MOE_MAX_EXPERTS
                                                     : cfg->experts;
        for (int k = 0; k < 2 * taken; k++) layer_free(maps[k]);
        rw_free(gate_w);
        if (m) moe_destroy(&m->base);
        return NULL;
    }
    m->base.ops = &moe_ops;
    snprintf(m->base.name, sizeof m->base.name, "%s", name);
    m->base.in = m->base.out = dim;
    m->base.act = RW_ACT_NONE;
    m->base.inputs[0] = input;
    m->base.n_inputs = 1;
    m->base.output = index + 1;
    m->cfg = *cfg;
    m->gate_w = gate_w;
    for (int k = 0; k < 2 * E; k++) {
        m->maps[k] = maps[k];
        /* Not in the model's graph: the layer hands them its own buffers. */
        maps[k]->inputs[0] = maps[k]->output = -1;
    }
    param scratch[4 * MOE_MAX_EXPERTS + 1];
    moe_params(&m->base, scratch);
    return &m->base;
}

/* ---- Model files -------------------------------------------------------- */

static rw_status meta_number(const json_t *entry, const char *key, const layer_meta *mt,
                             const char *path, double *out)
{
    json_t *v = json_object_get(entry, key);
    if (!v || !json_is_number(v))
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s of kind moe needs a number \"%s\"", path,
                       mt->name, key);
    *out = json_number_value(v);
    return RW_OK;
}

static rw_status moe_from_meta(const json_t *entry, const layer_meta *mt, const char *path,
                               layer **out)
{
    *out = NULL;
    moe_config c;
    memset(&c, 0, sizeof c);
    double v[8];
    static const char *const keys[] = {"experts", "top_k", "hidden", "capacity",
                                       "balance", "zloss", "kmeans_rate"};
    for (int k = 0; k < 7; k++) {
        rw_status st = meta_number(entry, keys[k], mt, path, &v[k]);
        if (st != RW_OK) return st;
    }
    if (v[0] != (int)v[0] || v[1] != (int)v[1] || v[2] != (int)v[2] || v[2] > (1 << 20))
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s: experts, top_k and hidden should be whole "
                       "numbers", path, mt->name);
    c.experts = (int)v[0];
    c.top_k = (int)v[1];
    c.hidden = (int)v[2];
    c.capacity = v[3];
    c.balance = (float)v[4];
    c.zloss = (float)v[5];
    c.kmeans_rate = (float)v[6];
    const char *gate = json_string_value(json_object_get(entry, "gate"));
    if (!gate || (strcmp(gate, "softmax") != 0 && strcmp(gate, "kmeans") != 0))
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s: \"gate\" should be \"softmax\" or \"kmeans\"",
                       path, mt->name);
    c.gate = strcmp(gate, "softmax") == 0 ? MOE_GATE_SOFTMAX : MOE_GATE_KMEANS;
    if (mt->in != mt->out || mt->act != RW_ACT_NONE)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s of kind moe should map %d features to as many, "
                       "without an activation", path, mt->name, mt->in);
    rw_status st = check_config(&c, mt->in, mt->name);
    if (st != RW_OK) return rw_fail(RW_ERR_FORMAT, "%s: %s", path, rw_last_error());
    json_t *kinds = json_object_get(entry, "maps");
    if (!json_is_array(kinds) || json_array_size(kinds) != (size_t)(2 * c.experts))
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s: \"maps\" should list the kinds of its %d "
                       "expert maps", path, mt->name, 2 * c.experts);
    json_t *fields = json_object_get(entry, "map_fields");
    json_t *sub = fields && json_is_object(fields) ? json_deep_copy(fields) : json_object();
    layer *maps[2 * MOE_MAX_EXPERTS] = {0};
    for (int k = 0; st == RW_OK && k < 2 * c.experts; k++) {
        const char *kind = json_string_value(json_array_get(kinds, (size_t)k));
        if (!kind || (strcmp(kind, "sparse") != 0 && strcmp(kind, "dense") != 0)) {
            st = rw_fail(RW_ERR_FORMAT, "%s: layer %s: expert map %d has kind %s, expected sparse "
                         "or dense", path, mt->name, k, kind ? kind : "(not a string)");
            break;
        }
        char name[LAYER_NAME_CAP];
        snprintf(name, sizeof name, "%s.e%d.%s", mt->name, k / 2, k % 2 ? "down" : "up");
        layer_meta sm = {name, k % 2 ? c.hidden : mt->in, k % 2 ? mt->in : c.hidden,
                         k % 2 ? RW_ACT_NONE : RW_ACT_GELU, mt->slope, -1};
        st = layer_kind_find(kind)->from_meta(sub, &sm, path, &maps[k]);
    }
    json_decref(sub);
    if (st != RW_OK) {
        for (int k = 0; k < 2 * c.experts; k++) layer_free(maps[k]);
        return st;
    }
    *out = moe_new(mt->name, mt->in, &c, maps, NULL, 0, mt->index);
    return *out ? RW_OK : RW_ERR_NO_MEMORY;
}

const layer_kind moe_kind = {"moe", moe_from_meta};
