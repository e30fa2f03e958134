/* The model container: layers, their parameter list, and the calls of
 * rewire.h that look at a model's layers whatever their kind. Building an
 * MLP from a config is models/mlp.c's. */
#include "nn/model.h"

#include "nn/embedding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "nn/linear.h"
#include "nn/loss_layer.h"

rw_model *model_alloc(int n_layers)
{
    rw_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->layers = calloc((size_t)n_layers, sizeof *m->layers);
    /* Sized for every layer's most, so that gathering never allocates. */
    m->params = calloc((size_t)n_layers * LAYER_MAX_PARAMS + 1, sizeof *m->params);
    m->first_param = calloc((size_t)n_layers + 1, sizeof *m->first_param);
    m->loss = loss_softmax_xent_new();
    if (!m->layers || !m->params || !m->first_param || !m->loss) {
        rw_model_free(m);
        return NULL;
    }
    m->n_layers = n_layers;
    m->leaky_slope = 0.01f;
    input_stage_init(&m->input);
    return m;
}

void rw_model_free(rw_model *model)
{
    if (!model) return;
    for (int l = 0; model->layers && l < model->n_layers; l++) layer_free(model->layers[l]);
    layer_free(model->loss);
    for (int k = 0; k < model->n_info; k++) free(model->info_key[k]), free(model->info_value[k]);
    input_stage_free(&model->input);
    free(model->layers);
    free(model->params);
    free(model->first_param);
    free(model);
}

int model_reads_tokens(const rw_model *m)
{
    return m->n_layers > 0 && m->layers[0] && is_embedding(m->layers[0]);
}

int rw_model_context(const rw_model *m)
{
    return m && model_reads_tokens(m) ? embedding_context(m->layers[0]) : 0;
}

rw_status model_gather_params(rw_model *m)
{
    int n = 0;
    for (int l = 0; l < m->n_layers; l++) {
        m->first_param[l] = n;
        int got = m->layers[l]->ops->params(m->layers[l], m->params + n);
        RW_ASSERT(got >= 0 && got <= LAYER_MAX_PARAMS, "layer %s reports %d parameters",
                  m->layers[l]->name, got);
        for (int k = 0; k < got; k++) m->params[n + k].layer = l;
        n += got;
    }
    m->first_param[m->n_layers] = n;
    m->n_params = n;
    m->generation++;
    for (int l = 0; l < m->n_layers; l++) {
        layer *ly = m->layers[l];
        rw_status st = ly->ops->link ? ly->ops->link(ly, m) : RW_OK;
        if (st != RW_OK) return st;
    }
    return model_check_graph(m);
}

rw_status model_check_graph(rw_model *m)
{
    /* Token ids index the embedding: it comes first, once, and the logits
     * predict its tokens (generation feeds them back). */
    for (int l = 1; l < m->n_layers; l++)
        if (is_embedding(m->layers[l]))
            return rw_fail(RW_ERR_FORMAT, "layer %s reads token ids but is not the model's first "
                           "layer", m->layers[l]->name);
    if (model_reads_tokens(m) && m->layers[m->n_layers - 1]->out != embedding_vocab(m->layers[0]))
        return rw_fail(RW_ERR_FORMAT, "the model's last layer %s gives %d logits, not one per "
                       "token of the embedding's %d", m->layers[m->n_layers - 1]->name,
                       m->layers[m->n_layers - 1]->out, embedding_vocab(m->layers[0]));
    for (int l = 0; l < m->n_layers; l++) {
        layer *ly = m->layers[l];
        for (int i = 0; i < ly->n_inputs; i++) {
            int t = ly->inputs[i], later = 0;
            if (t < 0 || t > l)
                return rw_fail(RW_ERR_FORMAT, "layer %s reads tensor %d, not the model's input or "
                               "an earlier layer's output", ly->name, t);
            for (int j = l + 1; j < m->n_layers && !later; j++)
                for (int k = 0; k < m->layers[j]->n_inputs; k++) later |= m->layers[j]->inputs[k] == t;
            ly->accumulate[i] = later;
            if (later && !ly->ops->accumulates)
                return rw_fail(RW_ERR_FORMAT, "layer %s of kind %s reads a tensor later layers read "
                               "too, and cannot add to its gradient", ly->name, ly->ops->kind);
            /* A fused activation turns the gradient its reader writes into
             * the pre-activation's: that needs one reader. */
            if (later && t > 0 && m->layers[t - 1]->act != RW_ACT_NONE)
                return rw_fail(RW_ERR_FORMAT, "the output of layer %s has an activation and more "
                               "than one reader", m->layers[t - 1]->name);
        }
    }
    return RW_OK;
}

/* 1 if the two layers' parameters are stored alike, value for value, so
 * that arrays kept parallel to the old ones (a trainer's) fit the new. */
static int same_params(layer *a, layer *b)
{
    param pa[LAYER_MAX_PARAMS], pb[LAYER_MAX_PARAMS];
    int na = a->ops->params(a, pa), nb = b->ops->params(b, pb);
    if (na != nb) return 0;
    for (int k = 0; k < na; k++)
        if (!param_same_layout(&pa[k], &pb[k])) return 0;
    return 1;
}

rw_status model_replace_layer(rw_model *m, int l, layer *ly)
{
    int same = same_params(m->layers[l], ly);
    int64_t generation = m->generation;
    layer_free(m->layers[l]);
    m->layers[l] = ly;
    rw_status st = model_gather_params(m);
    /* N:M training's start keeps the dense weights as its master: a
     * trainer made before goes on. */
    if (same) m->generation = generation;
    return st;
}

rw_status model_set_info(rw_model *m, const char *key, const char *value)
{
    size_t n = key ? strlen(key) : 0;
    int ok = n > 0 && n < MODEL_INFO_KEY_CAP && value && strlen(value) < MODEL_INFO_VALUE_CAP;
    for (size_t i = 0; ok && i < n; i++) {
        char c = key[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.';
    }
    if (!ok)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "model info needs a key of 1 to %d letters, digits, "
                       "'_' or '.' and a value of less than %d bytes", MODEL_INFO_KEY_CAP - 1,
                       MODEL_INFO_VALUE_CAP);
    int k = 0;
    while (k < m->n_info && strcmp(m->info_key[k], key) != 0) k++;
    if (k == MODEL_INFO_MAX)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a model keeps at most %d info keys", MODEL_INFO_MAX);
    char *v = strdup(value), *kc = k < m->n_info ? NULL : strdup(key);
    if (!v || (k == m->n_info && !kc)) {
        free(v);
        free(kc);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for model info");
    }
    if (k < m->n_info) {
        free(m->info_value[k]);
    } else {
        m->info_key[k] = kc;
        m->n_info++;
    }
    m->info_value[k] = v;
    return RW_OK;
}

rw_status rw_model_set_info(rw_model *m, const char *key, const char *value)
{
    return model_set_info(m, key, value);
}

const char *rw_model_get_info(const rw_model *m, const char *key)
{
    for (int k = 0; k < m->n_info; k++)
        if (strcmp(m->info_key[k], key) == 0) return m->info_value[k];
    return NULL;
}

int model_has_after_step(const rw_model *m)
{
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l]->ops->after_step) return 1;
    return 0;
}

void model_layer_name(char *buf, size_t cap, int l) { snprintf(buf, cap, "fc%d", l + 1); }

int rw_model_inputs(const rw_model *m) { return m->inputs; }
int rw_model_classes(const rw_model *m) { return m->layers[m->n_layers - 1]->out; }
int rw_model_layer_count(const rw_model *m) { return m->n_layers; }

/* The weights layer l would hold dense: in · out for a linear layer, the
 * sum over its weight matrices for one with several (an MoE's experts). */
static int64_t layer_dense_weights(const rw_model *m, int l)
{
    int64_t all = 0;
    for (int p = m->first_param[l]; p < m->first_param[l + 1]; p++)
        if (m->params[p].is_weight) all += param_dense_count(&m->params[p]);
    return all ? all : (int64_t)m->layers[l]->in * m->layers[l]->out;
}

rw_status rw_model_layer_info(const rw_model *m, int l, rw_layer_info *out)
{
    if (l < 0 || l >= m->n_layers)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %d does not exist (the model has %d)", l,
                       m->n_layers);
    const layer *ly = m->layers[l];
    int64_t dense_weights = layer_dense_weights(m, l);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", ly->name);
    snprintf(out->kind, sizeof out->kind, "%s", ly->ops->kind);
    out->in = ly->in;
    out->out = ly->out;
    out->activation = ly->act;
    out->dense_bytes = 4 * (dense_weights + ly->out);
    out->has_weights = model_layer_has_weight(m, l);
    out->dense_weights = dense_weights;
    ly->ops->info(ly, out);
    out->sparsity = dense_weights && out->has_weights
                        ? 1.0 - (double)out->nonzeros / (double)dense_weights
                        : 0.0;
    return RW_OK;
}

int64_t model_layer_stored(const rw_model *m, int l)
{
    rw_layer_info info;
    rw_model_layer_info(m, l, &info);
    return info.nonzeros;
}

int model_layer_has_weight(const rw_model *m, int l)
{
    return m->first_param[l + 1] > m->first_param[l] && m->params[m->first_param[l]].is_weight;
}

double rw_model_sparsity(const rw_model *m)
{
    int64_t stored = 0, all = 0;
    for (int l = 0; l < m->n_layers; l++) {
        if (!model_layer_has_weight(m, l)) continue; /* LayerNorm, activations, ... */
        stored += model_layer_stored(m, l);
        all += layer_dense_weights(m, l);
    }
    return all ? 1.0 - (double)stored / (double)all : 0.0;
}

void rw_model_set_normalization(rw_model *m, float mean, float std)
{
    m->input.mean = mean;
    m->input.std = std > 0 ? std : 1.0f;
    /* The global form again; the inputs kept stay kept. */
    if (m->input.feature) {
        int32_t *index = m->input.index;
        int kept = m->input.kept;
        m->input.index = NULL;
        input_stage_free(&m->input);
        m->input.index = index;
        m->input.kept = index ? kept : 0;
    }
}

void rw_model_get_normalization(const rw_model *m, float *mean, float *std)
{
    *mean = m->input.mean;
    *std = m->input.std;
}

rw_status rw_model_to_nm(rw_model *m, int which, int n, int mm)
{
    if (which < -1 || which >= m->n_layers)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %d does not exist (the model has %d)", which,
                       m->n_layers);
    if (n < 1 || mm < 1 || n > mm || mm > NM_MAX_M)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "N:M pattern %d:%d needs 1 <= N <= M <= %d", n, mm,
                       NM_MAX_M);
    if (which >= 0 && m->layers[which]->in % mm != 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s has %d inputs, not a multiple of M = %d",
                       m->layers[which]->name, m->layers[which]->in, mm);
    /* Its dense master weights and masks belong to the N:M training. */
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l]->ops->after_step && (which < 0 || l == which))
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "layer %s is in N:M training: end it (rw_model_nm_train_end) before "
                           "converting",
                           m->layers[l]->name);
    for (int l = 0; l < m->n_layers; l++) {
        if ((which >= 0 && l != which) || m->layers[l]->in % mm != 0) continue;
        if (!model_layer_has_weight(m, l)) continue; /* LayerNorm has nothing to convert */
        rw_status st = linear_replace_nm(m, l, n, mm);
        if (st != RW_OK) return st;
    }
    return RW_OK;
}

int rw_model_param_count(const rw_model *m) { return m->n_params; }

rw_status rw_model_param(rw_model *m, int i, rw_param_view *out)
{
    if (i < 0 || i >= m->n_params)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "parameter %d does not exist (the model has %d)", i,
                       m->n_params);
    param_view(&m->params[i], out);
    return RW_OK;
}

rw_status rw_model_layer_fan(const rw_model *m, int l, int32_t *fan_in, int32_t *fan_out)
{
    if (l < 0 || l >= m->n_layers)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %d does not exist (the model has %d)", l,
                       m->n_layers);
    param_fan(model_layer_params(m, l), fan_in, fan_out);
    return RW_OK;
}
