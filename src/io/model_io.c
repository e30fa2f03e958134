/* Model files: safetensors with, per layer NAME (fc1, fc2, ...),
 *   sparse: NAME.indptr I32 [out+1], NAME.indices I32 [nnz], NAME.values F32 [nnz]
 *   nm:     NAME.values F32 [out, in/M*N], NAME.offsets U8 [out, in/M*N]
 *           (slot j of group g of row o is input g*M + offset)
 *   dense:  NAME.weight F32 [out, in]
 *   both:   NAME.bias F32 [out]
 * and in __metadata__ (all strings, as safetensors requires):
 *   format = "rewire", format_version = "1",
 *   layers = JSON array of {"name", "kind": "sparse"|"nm"|"dense", "in", "out",
 *            "activation"}, with "n" and "m" for kind "nm",
 *   input_mean, input_std, leaky_slope (decimal numbers). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/model_io.h"
#include "io/safetensors.h"
#include "nn/activation.h"
#include "nn/memory.h"
#include "nn/model.h"

#define NAME_CAP 64
#define BASE_CAP 16 /* "fc" and a layer number */
#define LAYERS_MAX_BYTES (1 << 20)

static void layer_name(char *buf, int l) { snprintf(buf, BASE_CAP, "fc%d", l + 1); }

static char *layers_json(const rw_model *m)
{
    json_t *arr = json_array();
    for (int l = 0; l < m->n_layers && arr; l++) {
        const layer *ly = &m->layers[l];
        char name[BASE_CAP];
        layer_name(name, l);
        json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:s}", "name", name, "kind",
                              ly->sparse ? "sparse" : ly->is_nm ? "nm" : "dense", "in", ly->in,
                              "out", ly->out, "activation", activation_name(ly->act));
        if (o && ly->is_nm) {
            json_object_set_new(o, "n", json_integer(ly->nm.n));
            json_object_set_new(o, "m", json_integer(ly->nm.m));
        }
        json_array_append_new(arr, o);
    }
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    return s;
}

rw_status model_add_to_writer(const rw_model *m, const char *path, st_writer *w)
{
    char *layers = layers_json(m);
    rw_status st = layers ? RW_OK : rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory saving", path);
    char num[64];
    if (st == RW_OK) st = st_writer_meta(w, "format", "rewire");
    if (st == RW_OK) st = st_writer_meta(w, "format_version", "1");
    if (st == RW_OK) st = st_writer_meta(w, "layers", layers);
    snprintf(num, sizeof num, "%.9g", m->norm_mean);
    if (st == RW_OK) st = st_writer_meta(w, "input_mean", num);
    snprintf(num, sizeof num, "%.9g", m->norm_std);
    if (st == RW_OK) st = st_writer_meta(w, "input_std", num);
    snprintf(num, sizeof num, "%.9g", m->leaky_slope);
    if (st == RW_OK) st = st_writer_meta(w, "leaky_slope", num);
    for (int l = 0; l < m->n_layers && st == RW_OK; l++) {
        const layer *ly = &m->layers[l];
        char base[BASE_CAP], name[NAME_CAP];
        layer_name(base, l);
        int64_t out = ly->out, out1 = ly->out + 1, nnz = ly->sparse ? ly->w.nnz : 0;
        int64_t dense_shape[2] = {ly->out, ly->in};
        int64_t nm_shape[2] = {ly->out, ly->is_nm ? nm_slots_per_row(&ly->nm) : 0};
        /* st_writer_add copies the names. */
        if (ly->is_nm) {
            snprintf(name, sizeof name, "%s.values", base);
            st = st_writer_add(w, name, ST_F32, 2, nm_shape, ly->nm.values);
            snprintf(name, sizeof name, "%s.offsets", base);
            if (st == RW_OK) st = st_writer_add(w, name, ST_U8, 2, nm_shape, ly->nm.offsets);
        } else if (ly->sparse) {
            snprintf(name, sizeof name, "%s.indptr", base);
            st = st_writer_add(w, name, ST_I32, 1, &out1, ly->w.indptr);
            snprintf(name, sizeof name, "%s.indices", base);
            if (st == RW_OK) st = st_writer_add(w, name, ST_I32, 1, &nnz, ly->w.indices);
            snprintf(name, sizeof name, "%s.values", base);
            if (st == RW_OK) st = st_writer_add(w, name, ST_F32, 1, &nnz, ly->w.values);
        } else {
            snprintf(name, sizeof name, "%s.weight", base);
            st = st_writer_add(w, name, ST_F32, 2, dense_shape, ly->dense);
        }
        snprintf(name, sizeof name, "%s.bias", base);
        if (st == RW_OK) st = st_writer_add(w, name, ST_F32, 1, &out, ly->bias);
    }
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

/* Finds a tensor and checks its dtype and 1-D or 2-D shape. */
static rw_status want_tensor(const st_file *f, const char *path, const char *name, st_dtype dtype,
                             int ndim, int64_t d0, int64_t d1, const st_tensor **out)
{
    const st_tensor *t = st_find(f, name);
    if (!t) return rw_fail(RW_ERR_FORMAT, "%s: tensor %s is missing", path, name);
    if (t->dtype != dtype)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has dtype %s, expected %s", path, name,
                       st_dtype_name(t->dtype), st_dtype_name(dtype));
    if (t->ndim != ndim || (d0 >= 0 && t->shape[0] != d0) || (ndim == 2 && t->shape[1] != d1)) {
        if (ndim == 1 && d0 >= 0)
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s should have shape [%lld]", path, name,
                           (long long)d0);
        if (ndim == 1)
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s should be one-dimensional", path, name);
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s should have shape [%lld, %lld]", path, name,
                       (long long)d0, (long long)d1);
    }
    *out = t;
    return RW_OK;
}

static rw_status load_layer(const st_file *f, const char *path, int l, layer *ly)
{
    char base[BASE_CAP], name[NAME_CAP + 16];
    layer_name(base, l);
    const st_tensor *bias, *t;
    snprintf(name, sizeof name, "%s.bias", base);
    rw_status st = want_tensor(f, path, name, ST_F32, 1, ly->out, 0, &bias);
    if (st != RW_OK) return st;
    ly->bias = rw_alloc(sizeof(float) * (size_t)ly->out);
    if (!ly->bias) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, name);
    memcpy(ly->bias, bias->data, bias->nbytes);
    for (int o = 0; o < ly->out; o++)
        if (!isfinite(ly->bias[o]))
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value at %d", path, name,
                           o);

    if (ly->is_nm) {
        const st_tensor *values, *offsets;
        st = nm_alloc(&ly->nm, ly->out, ly->in, ly->nm.n, ly->nm.m);
        if (st != RW_OK) return st;
        int slots = nm_slots_per_row(&ly->nm);
        snprintf(name, sizeof name, "%s.values", base);
        st = want_tensor(f, path, name, ST_F32, 2, ly->out, slots, &values);
        snprintf(name, sizeof name, "%s.offsets", base);
        if (st == RW_OK) st = want_tensor(f, path, name, ST_U8, 2, ly->out, slots, &offsets);
        if (st != RW_OK) return st;
        memcpy(ly->nm.values, values->data, values->nbytes);
        memcpy(ly->nm.offsets, offsets->data, offsets->nbytes);
        char what[512];
        snprintf(what, sizeof what, "%s: layer %s", path, base);
        st = nm_validate(&ly->nm, what);
        return st == RW_OK ? nm_prepare_backward(&ly->nm) : st;
    }
    if (!ly->sparse) {
        snprintf(name, sizeof name, "%s.weight", base);
        st = want_tensor(f, path, name, ST_F32, 2, ly->out, ly->in, &t);
        if (st != RW_OK) return st;
        ly->dense = rw_alloc(t->nbytes);
        if (!ly->dense) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, name);
        memcpy(ly->dense, t->data, t->nbytes);
        for (int64_t k = 0; k < t->count; k++)
            if (!isfinite(ly->dense[k]))
                return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value at %lld", path,
                               name, (long long)k);
        return RW_OK;
    }

    const st_tensor *indptr, *indices, *values;
    snprintf(name, sizeof name, "%s.indptr", base);
    st = want_tensor(f, path, name, ST_I32, 1, (int64_t)ly->out + 1, 0, &indptr);
    snprintf(name, sizeof name, "%s.indices", base);
    if (st == RW_OK) st = want_tensor(f, path, name, ST_I32, 1, -1, 0, &indices);
    snprintf(name, sizeof name, "%s.values", base);
    if (st == RW_OK) st = want_tensor(f, path, name, ST_F32, 1, -1, 0, &values);
    if (st != RW_OK) return st;
    if (indices->count != values->count)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s.indices has %lld entries but %s.values has %lld",
                       path, base, (long long)indices->count, base, (long long)values->count);
    if (indices->count > (int64_t)ly->in * ly->out)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s.indices has %lld entries, more than %d x %d",
                       path, base, (long long)indices->count, ly->out, ly->in);
    int32_t last;
    memcpy(&last, (const char *)indptr->data + 4 * (size_t)ly->out, 4);
    if (last != indices->count)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s.indices has %lld entries, %s.indptr says %d",
                       path, base, (long long)indices->count, base, last);
    st = csr_alloc(&ly->w, ly->out, ly->in, (int)indices->count);
    if (st != RW_OK) return st;
    memcpy(ly->w.indptr, indptr->data, indptr->nbytes);
    memcpy(ly->w.indices, indices->data, indices->nbytes);
    memcpy(ly->w.values, values->data, values->nbytes);
    char what[512];
    snprintf(what, sizeof what, "%s: layer %s", path, base);
    st = csr_validate(&ly->w, what);
    if (st == RW_OK) csr_build_transpose(&ly->w);
    return st;
}

static rw_status parse_layers(const st_file *f, const char *path, rw_model **out)
{
    const char *fmt = st_meta(f, "format");
    if (!fmt || strcmp(fmt, "rewire") != 0)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata format is %s%s%s, expected \"rewire\"", path,
                       fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "");
    const char *version = st_meta(f, "format_version");
    if (!version || strcmp(version, "1") != 0)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata format_version is %s, expected \"1\"", path,
                       version ? version : "missing");
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
    rw_status st = RW_OK;
    for (int l = 0; l < n && st == RW_OK; l++) {
        json_t *o = json_array_get(arr, (size_t)l);
        const char *name = NULL, *kind = NULL, *act = NULL;
        json_int_t in = 0, outs = 0;
        char want[BASE_CAP];
        layer_name(want, l);
        if (json_unpack(o, "{s:s, s:s, s:I, s:I, s:s}", "name", &name, "kind", &kind, "in", &in,
                        "out", &outs, "activation", &act) != 0) {
            st = rw_fail(RW_ERR_FORMAT,
                         "%s: layer %d in metadata layers needs name, kind, in, out, activation",
                         path, l);
            break;
        }
        int a = activation_parse(act);
        if (strcmp(name, want) != 0)
            st = rw_fail(RW_ERR_FORMAT, "%s: layer %d is named \"%s\", expected \"%s\"", path, l,
                         name, want);
        else if (strcmp(kind, "sparse") != 0 && strcmp(kind, "dense") != 0 &&
                 strcmp(kind, "nm") != 0)
            st = rw_fail(RW_ERR_FORMAT,
                         "%s: layer %s has kind \"%s\", expected sparse, nm or dense", path, name,
                         kind);
        else if (in < 1 || outs < 1 || in > RW_MAX_WIDTH || outs > RW_MAX_WIDTH)
            st = rw_fail(RW_ERR_FORMAT, "%s: layer %s has shape %lld x %lld, expected sizes in "
                         "[1, %d]", path, name, (long long)outs, (long long)in, RW_MAX_WIDTH);
        else if (a < 0)
            st = rw_fail(RW_ERR_FORMAT, "%s: layer %s has unknown activation \"%s\"", path, name,
                         act);
        else if (l > 0 && in != m->layers[l - 1].out)
            st = rw_fail(RW_ERR_FORMAT, "%s: layer %s takes %lld inputs but the layer before gives %d",
                         path, name, (long long)in, m->layers[l - 1].out);
        else if (l == n - 1 && outs > RW_MAX_CLASSES)
            st = rw_fail(RW_ERR_FORMAT, "%s: layer %s has %lld outputs, more than %d classes", path,
                         name, (long long)outs, RW_MAX_CLASSES);
        if (st != RW_OK) break;
        layer *ly = &m->layers[l];
        ly->in = (int)in;
        ly->out = (int)outs;
        ly->sparse = strcmp(kind, "sparse") == 0;
        ly->is_nm = strcmp(kind, "nm") == 0;
        ly->act = (rw_activation)a;
        if (ly->is_nm) {
            json_int_t nn = 0, mm = 0;
            if (json_unpack(o, "{s:I, s:I}", "n", &nn, "m", &mm) != 0 || nn < 1 || mm < 1 ||
                nn > mm || mm > NM_MAX_M || in % mm != 0) {
                st = rw_fail(RW_ERR_FORMAT,
                             "%s: layer %s of kind nm needs integers n, m with 1 <= n <= m <= %d "
                             "and m dividing its %lld inputs",
                             path, name, NM_MAX_M, (long long)in);
                break;
            }
            /* Allocated by load_layer, after the memory the file asks for
             * has been checked. */
            ly->nm.n = (int)nn;
            ly->nm.m = (int)mm;
        }
    }
    json_decref(arr);
    if (st != RW_OK) {
        rw_model_free(m);
        return st;
    }
    *out = m;
    return RW_OK;
}

/* Stored weights of layer l as the file declares them. */
static int64_t model_file_weights(const rw_model *m, const st_file *f, int l)
{
    const layer *ly = &m->layers[l];
    if (ly->is_nm) return (int64_t)ly->out * (ly->in / ly->nm.m) * ly->nm.n;
    if (!ly->sparse) return (int64_t)ly->in * ly->out;
    char name[NAME_CAP];
    snprintf(name, sizeof name, "fc%d.indices", l + 1);
    const st_tensor *t = st_find(f, name);
    return t ? t->count : 0;
}

rw_status model_file_memory(const rw_model *m, const st_file *f, const rw_train_config *train,
                            rw_memory_estimate *out)
{
    layer_shape *ls = calloc((size_t)m->n_layers, sizeof *ls);
    if (!ls) return rw_fail(RW_ERR_NO_MEMORY, "out of memory estimating memory");
    for (int l = 0; l < m->n_layers; l++) {
        const layer *ly = &m->layers[l];
        int64_t nm_bytes = ly->is_nm ? nm_memory_bytes(ly->out, ly->in, ly->nm.n, ly->nm.m) : 0;
        ls[l] = (layer_shape){ly->in, ly->out, model_file_weights(m, f, l), ly->sparse,
                              ly->act != RW_ACT_NONE, nm_bytes};
    }
    memory_estimate(ls, m->n_layers, train, out);
    free(ls);
    return RW_OK;
}

rw_status model_skeleton(const st_file *f, const char *path, rw_model **out)
{
    *out = NULL;
    rw_model *m = NULL;
    rw_status st = parse_layers(f, path, &m);
    if (st == RW_OK) st = meta_float(f, path, "input_mean", 0.0f, &m->norm_mean);
    if (st == RW_OK) st = meta_float(f, path, "input_std", 1.0f, &m->norm_std);
    if (st == RW_OK) st = meta_float(f, path, "leaky_slope", 0.01f, &m->leaky_slope);
    if (st == RW_OK && !(m->norm_std > 0))
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata input_std is %g, expected a positive number", path,
                     m->norm_std);
    if (st != RW_OK) {
        rw_model_free(m);
        return st;
    }
    *out = m;
    return RW_OK;
}

rw_status model_fill(const st_file *f, const char *path, rw_model *m)
{
    rw_status st = RW_OK;
    int expected = 0;
    for (int l = 0; l < m->n_layers && st == RW_OK; l++) {
        st = load_layer(f, path, l, &m->layers[l]);
        expected += m->layers[l].sparse ? 4 : m->layers[l].is_nm ? 3 : 2;
    }
    if (st != RW_OK) return st;
    /* A checkpoint's other tensors are the trainer's (nn/checkpoint.c). */
    int checkpoint = st_meta(f, "checkpoint") != NULL, present = 0;
    for (int i = 0; i < f->count; i++)
        present += !checkpoint || strncmp(f->tensors[i].name, "fc", 2) == 0;
    if (present == expected) return RW_OK;
    /* Name the first tensor that no layer claimed. */
    for (int i = 0; i < f->count; i++) {
        const char *dot = strrchr(f->tensors[i].name, '.');
        int l = -1;
        char canonical[NAME_CAP * 2];
        if (checkpoint && strncmp(f->tensors[i].name, "fc", 2) != 0) continue;
        if (dot && sscanf(f->tensors[i].name, "fc%d.", &l) == 1 && l >= 1 && l <= m->n_layers &&
            snprintf(canonical, sizeof canonical, "fc%d%s", l, dot) > 0 &&
            strcmp(canonical, f->tensors[i].name) == 0) {
            const layer *ly = &m->layers[l - 1];
            const char *field = dot + 1;
            if (strcmp(field, "bias") == 0) continue;
            if (ly->sparse && (!strcmp(field, "indptr") || !strcmp(field, "indices") ||
                               !strcmp(field, "values")))
                continue;
            if (ly->is_nm && (!strcmp(field, "values") || !strcmp(field, "offsets"))) continue;
            if (!ly->sparse && !ly->is_nm && !strcmp(field, "weight")) continue;
        }
        return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s", path, f->tensors[i].name);
    }
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
