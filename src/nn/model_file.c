/* Model files: safetensors with, per layer NAME (fc1, fc2, ...), the
 * tensors its kind writes (nn/linear_*.c):
 *   sparse: NAME.indptr I32 [out+1], NAME.indices I32 [nnz], NAME.values F32 [nnz]
 *   nm:     NAME.values F32 [out, in/M*N], NAME.offsets U8 [out, in/M*N]
 *           (slot j of group g of row o is input g*M + offset)
 *   dense:  NAME.weight F32 [out, in]
 *   all:    NAME.bias F32 [out]
 * and in __metadata__ (all strings, as safetensors requires):
 *   format = "rewire", format_version = "1",
 *   layers = JSON array of {"name", "kind": "sparse"|"nm"|"dense", "in", "out",
 *            "activation"}, with "n" and "m" for kind "nm",
 *   input_mean, input_std, leaky_slope (decimal numbers),
 *   and, for per-feature normalisation or a selection of inputs, "input"
 *   with tensors input.* (nn/input_stage.h).
 * This file knows no layer kind: it looks each up in the registry
 * (nn/layer_kinds.c) by the name the metadata gives and lets the layer read and write its own tensors. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "nn/activation.h"
#include "nn/layer_kinds.h"
#include "nn/loss_layer.h"
#include "nn/memory.h"
#include "nn/model.h"
#include "nn/model_file.h"

#define LAYERS_MAX_BYTES (1 << 20)

/* Version 1 holds a chain classifier (an MLP): layer l reads what layer
 * l - 1 wrote, the loss is the softmax cross-entropy. Anything else is a
 * graph, version 2: each layer lists the tensors it reads ("inputs": 0 is
 * the model input, l + 1 layer l's output), and the metadata names the
 * model input's width and the loss. */
static int is_chain(const rw_model *m)
{
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l]->n_inputs != 1 || m->layers[l]->inputs[0] != l) return 0;
    return strcmp(m->loss->ops->kind, "softmax_cross_entropy") == 0;
}

static char *layers_json(const rw_model *m, int graph)
{
    json_t *arr = json_array();
    for (int l = 0; l < m->n_layers && arr; l++) {
        const layer *ly = m->layers[l];
        json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:s}", "name", ly->name, "kind",
                              ly->ops->kind, "in", ly->in, "out", ly->out, "activation",
                              activation_name(ly->act));
        if (o && ly->ops->describe) ly->ops->describe(ly, o);
        if (o && graph) {
            json_t *in = json_array();
            for (int i = 0; i < ly->n_inputs; i++) json_array_append_new(in, json_integer(ly->inputs[i]));
            json_object_set_new(o, "inputs", in);
        }
        json_array_append_new(arr, o);
    }
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    return s;
}

rw_status model_add_to_writer(const rw_model *m, const char *path, st_writer *w)
{
    int graph = !is_chain(m);
    char *layers = layers_json(m, graph);
    rw_status st = layers ? RW_OK : rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory saving", path);
    char num[64];
    if (st == RW_OK) st = st_writer_meta(w, "format", "rewire");
    if (st == RW_OK) st = st_writer_meta(w, "format_version", graph ? "2" : "1");
    if (st == RW_OK) st = st_writer_meta(w, "layers", layers);
    if (graph) {
        snprintf(num, sizeof num, "%d", m->inputs);
        if (st == RW_OK) st = st_writer_meta(w, "inputs", num);
        if (st == RW_OK) st = st_writer_meta(w, "loss", m->loss->ops->kind);
    }
    for (int k = 0; k < m->n_info && st == RW_OK; k++) {
        char key[MODEL_INFO_KEY_CAP + 8];
        snprintf(key, sizeof key, "info.%s", m->info_key[k]);
        st = st_writer_meta(w, key, m->info_value[k]);
    }
    snprintf(num, sizeof num, "%.9g", m->input.mean);
    if (st == RW_OK) st = st_writer_meta(w, "input_mean", num);
    snprintf(num, sizeof num, "%.9g", m->input.std);
    if (st == RW_OK) st = st_writer_meta(w, "input_std", num);
    if (st == RW_OK) st = input_stage_save(&m->input, m->inputs, w, path);
    snprintf(num, sizeof num, "%.9g", m->leaky_slope);
    if (st == RW_OK) st = st_writer_meta(w, "leaky_slope", num);
    /* st_writer_add copies the names. */
    for (int l = 0; l < m->n_layers && st == RW_OK; l++)
        st = m->layers[l]->ops->save(m->layers[l], w, path);
    free(layers);
    return st;
}

rw_status rw_model_save(const rw_model *m, const char *path)
{
    st_writer *w = st_writer_new();
    rw_status st = w ? model_add_to_writer(m, path, w)
                     : rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory saving", path);
    if (st == RW_OK) st = st_writer_write(w, path);
    st_writer_free(w);
    return st;
}

/* ---- Loading ------------------------------------------------------------ */

static rw_status meta_float(const st_file *f, const char *path, const char *key, float fallback,
                            float *out)
{
    const char *s = st_meta(f, key);
    *out = fallback;
    if (!s) return RW_OK;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v))
        return rw_fail(RW_ERR_FORMAT, "%s: metadata %s is \"%s\", expected a finite number", path,
                       key, s);
    *out = (float)v;
    return RW_OK;
}

/* A layer name: 1 to LAYER_NAME_CAP - 1 letters, digits, '_' and '.',
 * as tensor names are built from it ("fc1.bias", "blocks.0.ln_1.weight"). */
static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= LAYER_NAME_CAP) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

/* A version 2 entry's "inputs": 1 to LAYER_MAX_INPUTS tensors, each the
 * model input (0) or an earlier layer's output (1 .. l). */
static rw_status parse_inputs(const json_t *o, const char *path, const char *name, int l,
                              layer *ly)
{
    json_t *in = json_object_get(o, "inputs");
    size_t n = json_is_array(in) ? json_array_size(in) : 0;
    if (n < 1 || n > LAYER_MAX_INPUTS)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s needs \"inputs\", an array of 1 to %d tensor "
                       "numbers", path, name, LAYER_MAX_INPUTS);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(in, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > l)
            return rw_fail(RW_ERR_FORMAT, "%s: layer %s reads tensor %s, expected 0 (the model's "
                           "input) to %d (the layer before's output)", path, name,
                           json_is_integer(t) ? "out of range" : "that is not a number", l);
        ly->inputs[i] = (int)json_integer_value(t);
    }
    ly->n_inputs = (int)n;
    ly->output = l + 1;
    return RW_OK;
}

/* Layer l from its metadata entry o: checked, then built as a skeleton by
 * its kind (no arrays yet). */
static rw_status parse_layer(const json_t *o, const char *path, rw_model *m, int l, float slope,
                             int graph)
{
    const char *name = NULL, *kind = NULL, *act = NULL;
    json_int_t in = 0, outs = 0;
    if (json_unpack((json_t *)o, "{s:s, s:s, s:I, s:I, s:s}", "name", &name, "kind", &kind, "in",
                    &in, "out", &outs, "activation", &act) != 0)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: layer %d in metadata layers needs name, kind, in, out, activation",
                       path, l);
    int a = activation_parse(act);
    const layer_kind *k = layer_kind_find(kind);
    if (!valid_name(name))
        return rw_fail(RW_ERR_FORMAT,
                       "%s: layer %d is named \"%.80s\", expected 1 to %d letters, digits, '_' "
                       "or '.'",
                       path, l, name, LAYER_NAME_CAP - 1);
    for (int j = 0; j < l; j++)
        if (strcmp(m->layers[j]->name, name) == 0)
            return rw_fail(RW_ERR_FORMAT, "%s: layers %d and %d are both named \"%s\"", path, j,
                           l, name);
    if (!k) {
        char known[256];
        layer_kind_names(known, sizeof known);
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s has kind \"%s\", expected %s", path, name,
                       kind, known);
    }
    /* Token embeddings read token ids, not features: their "in" is 0. */
    int tokens_in = graph && strcmp(kind, "embedding") == 0;
    if (in < (tokens_in ? 0 : 1) || outs < 1 || in > RW_MAX_WIDTH || outs > RW_MAX_WIDTH)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s has shape %lld x %lld, expected sizes in "
                       "[1, %d]", path, name, (long long)outs, (long long)in, RW_MAX_WIDTH);
    if (a < 0)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s has unknown activation \"%s\"", path, name,
                       act);
    if (!graph && l > 0 && in != m->layers[l - 1]->out)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s takes %lld inputs but the layer before gives %d",
                       path, name, (long long)in, m->layers[l - 1]->out);
    if (!graph && l == m->n_layers - 1 && outs > RW_MAX_CLASSES)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s has %lld outputs, more than %d classes", path,
                       name, (long long)outs, RW_MAX_CLASSES);
    layer_meta meta = {name, (int)in, (int)outs, (rw_activation)a, slope, l};
    rw_status st = k->from_meta(o, &meta, path, &m->layers[l]);
    if (st != RW_OK || !graph) return st;
    layer *ly = m->layers[l];
    if ((st = parse_inputs(o, path, name, l, ly)) != RW_OK) return st;
    /* Widths agree along every edge (attention reads 3 x its width, the
     * embedding reads token ids, the add two of its width). */
    for (int i = 0; i < ly->n_inputs; i++) {
        int t = ly->inputs[i], width = t == 0 ? m->inputs : m->layers[t - 1]->out;
        int want = ly->n_inputs > 1 ? ly->out : ly->in;
        if (t > 0 && width != want)
            return rw_fail(RW_ERR_FORMAT, "%s: layer %s reads %d features from %s but takes %d",
                           path, name, width, m->layers[t - 1]->name, want);
    }
    return RW_OK;
}

/* Version 2: the model input's width and the loss. */
static rw_status parse_graph_meta(const st_file *f, const char *path, rw_model *m)
{
    const char *in = st_meta(f, "inputs"), *loss = st_meta(f, "loss");
    char *end = NULL;
    long v = in ? strtol(in, &end, 10) : -1;
    if (!in || end == in || *end != '\0' || v < 0 || v > RW_MAX_WIDTH)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata inputs is %s, expected the model input's width "
                       "(0 to %d)", path, in ? in : "missing", RW_MAX_WIDTH);
    m->inputs = (int)v;
    layer *l = NULL;
    if (loss && strcmp(loss, "token_cross_entropy") == 0)
        l = loss_token_xent_new();
    else if (loss && strcmp(loss, "softmax_cross_entropy") == 0)
        l = loss_softmax_xent_new();
    else
        return rw_fail(RW_ERR_FORMAT, "%s: metadata loss is %s, expected softmax_cross_entropy or "
                       "token_cross_entropy", path, loss ? loss : "missing");
    if (!l) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    layer_free(m->loss);
    m->loss = l;
    return RW_OK;
}

/* The model's own metadata keys "info.*" (rw_model_set_info). */
static rw_status parse_info(const st_file *f, const char *path, rw_model *m)
{
    for (int i = 0; i < f->meta_count; i++) {
        const char *key = f->meta_keys[i];
        if (strncmp(key, "info.", 5) != 0) continue;
        const char *value = st_meta(f, key);
        rw_status st = model_set_info(m, key + 5, value);
        if (st != RW_OK)
            return rw_fail(st == RW_ERR_NO_MEMORY ? st : RW_ERR_FORMAT, "%s: metadata %s: %s", path,
                           key, rw_last_error());
    }
    return RW_OK;
}

static rw_status parse_layers(const st_file *f, const char *path, float slope, rw_model **out)
{
    const char *fmt = st_meta(f, "format");
    if (!fmt || strcmp(fmt, "rewire") != 0)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata format is %s%s%s, expected \"rewire\"", path,
                       fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "");
    const char *version = st_meta(f, "format_version");
    if (!version || (strcmp(version, "1") != 0 && strcmp(version, "2") != 0))
        return rw_fail(RW_ERR_FORMAT, "%s: metadata format_version is %s, expected \"1\" or \"2\"",
                       path, version ? version : "missing");
    int graph = strcmp(version, "2") == 0;
    const char *text = st_meta(f, "layers");
    if (!text) return rw_fail(RW_ERR_FORMAT, "%s: metadata layers is missing", path);
    /* 4096 layers take about 330 KB; a longer text would only make jansson
     * build a hostile number of values. */
    if (strlen(text) > LAYERS_MAX_BYTES)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata layers is %zu bytes, more than the %d that "
                       "4096 layers need", path, strlen(text), LAYERS_MAX_BYTES);
    json_error_t jerr;
    json_t *arr = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!arr || !json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 4096) {
        json_decref(arr);
        return rw_fail(RW_ERR_FORMAT, "%s: metadata layers is not a JSON array of 1 to 4096 layers",
                       path);
    }
    int n = (int)json_array_size(arr);
    rw_model *m = model_alloc(n);
    if (!m) {
        json_decref(arr);
        return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    rw_status st = graph ? parse_graph_meta(f, path, m) : RW_OK;
    for (int l = 0; l < n && st == RW_OK; l++)
        st = parse_layer(json_array_get(arr, (size_t)l), path, m, l, slope, graph);
    json_decref(arr);
    if (st != RW_OK) {
        rw_model_free(m); /* layers never built are NULL */
        return st;
    }
    if (!graph) m->inputs = m->layers[0]->in;
    *out = m;
    return RW_OK;
}

rw_status model_file_memory(const rw_model *m, const st_file *f, const rw_train_config *train,
                            rw_memory_estimate *out)
{
    layer_shape *ls = calloc((size_t)m->n_layers, sizeof *ls);
    if (!ls) return rw_fail(RW_ERR_NO_MEMORY, "out of memory estimating memory");
    for (int l = 0; l < m->n_layers; l++) m->layers[l]->ops->shape(m->layers[l], f, &ls[l]);
    memory_estimate(ls, m->n_layers, train, out);
    free(ls);
    return RW_OK;
}

/* The input stage: the sample's width it gives must feed the first
 * layer, which reads one row per kept feature. */
static rw_status load_input_stage(const st_file *f, const char *path, rw_model *m)
{
    int features = m->inputs;
    rw_status st = input_stage_load(&m->input, f, path, &features);
    if (st != RW_OK || !st_meta(f, "input")) return st;
    if (model_reads_tokens(m) || m->layers[0]->n_inputs != 1 || m->layers[0]->inputs[0] != 0)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata input is for a classifier whose first layer "
                       "reads the features", path);
    int rows = input_stage_rows(&m->input, features);
    if (rows != m->layers[0]->in)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata input keeps %d of %d features, but layer %s "
                       "takes %d", path, rows, features, m->layers[0]->name, m->layers[0]->in);
    m->inputs = features;
    return RW_OK;
}

rw_status model_skeleton(const st_file *f, const char *path, rw_model **out)
{
    *out = NULL;
    rw_model *m = NULL;
    rw_status st = parse_layers(f, path, 0.01f, &m);
    if (st == RW_OK) st = parse_info(f, path, m);
    if (st == RW_OK) st = meta_float(f, path, "input_mean", 0.0f, &m->input.mean);
    if (st == RW_OK) st = meta_float(f, path, "input_std", 1.0f, &m->input.std);
    if (st == RW_OK) st = load_input_stage(f, path, m);
    if (st == RW_OK) st = meta_float(f, path, "leaky_slope", 0.01f, &m->leaky_slope);
    for (int l = 0; st == RW_OK && l < m->n_layers; l++) m->layers[l]->slope = m->leaky_slope;
    /* The records name the skeleton's parameters (no values yet): memory
     * estimates and the trainer's sections read them before the load. */
    if (st == RW_OK && (st = model_gather_params(m)) != RW_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", rw_last_error());
        st = rw_fail(st, "%s: %s", path, msg);
    }
    if (st == RW_OK && !(m->input.std > 0))
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata input_std is %g, expected a positive number", path,
                     m->input.std);
    if (st != RW_OK) {
        rw_model_free(m);
        return st;
    }
    *out = m;
    return RW_OK;
}

int model_owns_tensor(const rw_model *m, const char *name)
{
    if (input_stage_owns_tensor(name)) return 1;
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l]->ops->owns_tensor(m->layers[l], name)) return 1;
    return 0;
}

rw_status model_fill(const st_file *f, const char *path, rw_model *m)
{
    rw_status st = RW_OK;
    for (int l = 0; l < m->n_layers && st == RW_OK; l++)
        st = m->layers[l]->ops->load(m->layers[l], f, path);
    if (st == RW_OK && (st = model_gather_params(m)) != RW_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", rw_last_error());
        st = rw_fail(st, "%s: %s", path, msg);
    }
    if (st != RW_OK) return st;
    /* A checkpoint's other tensors are the trainer's (run/checkpoint.c). */
    if (st_meta(f, "checkpoint")) return RW_OK;
    for (int i = 0; i < f->count; i++)
        if (!model_owns_tensor(m, f->tensors[i].name))
            return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s", path, f->tensors[i].name);
    return RW_OK;
}
rw_status model_from_file(const st_file *f, const char *path, int64_t max_bytes, rw_model **out)
{
    rw_model *m = NULL;
    rw_status st = model_skeleton(f, path, &m);
    if (st != RW_OK) return st;
    /* The declared shapes decide what is allocated (a sparse layer's
     * input count is not backed by the file's bytes), so check first. */
    rw_memory_estimate est;
    if (max_bytes > 0) {
        st = model_file_memory(m, f, NULL, &est);
        if (st == RW_OK && est.model > max_bytes)
            st = rw_fail(RW_ERR_NO_MEMORY, "%s: the model needs %lld bytes of memory, more than "
                         "the limit of %lld", path, (long long)est.model, (long long)max_bytes);
    }
    if (st == RW_OK) st = model_fill(f, path, m);
    if (st != RW_OK) {
        rw_model_free(m);
        return st;
    }
    *out = m;
    return RW_OK;
}

rw_status rw_model_load(const char *path, rw_model **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_model_load: out is NULL");
    *out = NULL;
    if (!path) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_model_load: path is NULL");
    st_file f;
    rw_status st = st_read(path, &f);
    if (st != RW_OK) return st;
    st = model_from_file(&f, path, rw_available_memory(), out);
    st_file_free(&f);
    if (st == RW_OK) rw_clear_error();
    return st;
}

rw_status model_load_memory(const char *name, const void *bytes, size_t size, int64_t max_bytes,
                            rw_model **out)
{
    *out = NULL;
    st_file f;
    rw_status st = st_read_memory(name, bytes, size, &f);
    if (st != RW_OK) return st;
    st = model_from_file(&f, name, max_bytes, out);
    st_file_free(&f);
    return st;
}
