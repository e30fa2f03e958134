/* What the linear kinds share: the bias, parameter naming, file helpers,
 * and replacing a layer by another kind. */
#include "nn/linear.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "nn/model.h"

#define NAME_CAP (LAYER_NAME_CAP + 16)

linear *linear_of(layer *ly) { return ly && ly->ops->is_linear ? (linear *)ly : NULL; }

const linear *linear_of_const(const layer *ly)
{
    return ly && ly->ops->is_linear ? (const linear *)ly : NULL;
}

void linear_init(linear *lin, const layer_ops *ops, const char *name, int in, int out,
                 rw_activation act, float slope, int index)
{
    layer *b = &lin->base;
    b->ops = ops;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->in = in;
    b->out = out;
    b->act = act;
    b->slope = slope;
    b->inputs[0] = index;
    b->n_inputs = 1;
    b->output = index + 1;
    lin->bias_decays = 1;
}

rw_status linear_from_meta(linear *lin, const layer_ops *ops, const json_t *entry,
                           const layer_meta *m, const char *path)
{
    linear_init(lin, ops, m->name, m->in, m->out, m->act, m->slope, m->index);
    json_t *b = json_object_get(entry, "bias");
    if (b && !json_is_boolean(b))
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s: \"bias\" should be true or false", path,
                       m->name);
    lin->has_bias = !b || json_is_true(b);
    /* Written only when off (a transformer's biases), so an MLP's entry is
     * what it always was. */
    json_t *d = json_object_get(entry, "bias_decays");
    if (d && !json_is_boolean(d))
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s: \"bias_decays\" should be true or false",
                       path, m->name);
    lin->bias_decays = !d || json_is_true(d);
    return RW_OK;
}

void linear_describe(const layer *ly, json_t *entry)
{
    const linear *lin = (const linear *)ly;
    if (!lin->has_bias) json_object_set_new(entry, "bias", json_false());
    if (lin->has_bias && !lin->bias_decays) json_object_set_new(entry, "bias_decays", json_false());
}

void linear_inherit(linear *to, const layer_ops *ops, linear *from)
{
    to->base = from->base;
    to->base.ops = ops;
    to->bias = from->bias;
    to->has_bias = from->has_bias;
    to->bias_decays = from->bias_decays;
    from->bias = NULL;
}

int linear_bias_params(linear *lin, param *out)
{
    if (!lin->has_bias) return 0;
    /* The MLP's weight decay has always covered its biases too. */
    *out = param_dense(lin->base.name, "bias", lin->base.out, 1, &lin->bias, lin->bias_decays);
    return 1;
}

param linear_weight_param(const linear *lin, const char *values_tensor)
{
    param p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s.weight", lin->base.name);
    snprintf(p.tensor, sizeof p.tensor, "%s.%s", lin->base.name, values_tensor);
    snprintf(p.layer_name, sizeof p.layer_name, "%s", lin->base.name);
    p.rows = lin->base.out;
    p.cols = lin->base.in;
    p.is_weight = 1;
    p.decays = 1;
    p.x_tensor = lin->base.inputs[0];
    p.y_tensor = lin->base.output;
    return p;
}

void linear_bias_grad_rows(const float *dz, float *gb, int bp, int r0, int r1)
{
    for (int o = r0; o < r1; o++) {
        const float *row = dz + (size_t)o * bp;
        float s = 0;
        for (int b = 0; b < bp; b++) s += row[b];
        gb[o] = s;
    }
}

rw_status linear_want_tensor(const st_file *f, const char *path, const char *name,
                             st_dtype dtype, int ndim, int64_t d0, int64_t d1,
                             const st_tensor **out)
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

rw_status linear_load_bias(linear *lin, const st_file *f, const char *path)
{
    if (!lin->has_bias) return RW_OK;
    char name[NAME_CAP];
    snprintf(name, sizeof name, "%s.bias", lin->base.name);
    const st_tensor *bias;
    int out = lin->base.out;
    rw_status st = linear_want_tensor(f, path, name, ST_F32, 1, out, 0, &bias);
    if (st != RW_OK) return st;
    lin->bias = rw_alloc(sizeof(float) * (size_t)out);
    if (!lin->bias) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, name);
    memcpy(lin->bias, bias->data, bias->nbytes);
    for (int o = 0; o < out; o++)
        if (!isfinite(lin->bias[o]))
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value at %d", path, name,
                           o);
    return RW_OK;
}

rw_status linear_save_bias(const linear *lin, st_writer *w)
{
    if (!lin->has_bias) return RW_OK;
    char name[NAME_CAP];
    snprintf(name, sizeof name, "%s.bias", lin->base.name);
    int64_t out = lin->base.out;
    return st_writer_add(w, name, ST_F32, 1, &out, lin->bias);
}

int linear_tensor_is(const linear *lin, const char *name, const char *const *fields)
{
    size_t len = strlen(lin->base.name);
    if (strncmp(name, lin->base.name, len) != 0 || name[len] != '.') return 0;
    for (; *fields; fields++)
        if (strcmp(name + len + 1, *fields) == 0)
            return lin->has_bias || strcmp(*fields, "bias") != 0;
    return 0;
}

int64_t linear_csr_bytes_for(int64_t in, int64_t out, int64_t nnz)
{
    /* bias, indptr and the transposed column pointers; per entry an index,
     * a value, a row and a permutation slot. Saturates. */
    int64_t fixed = 4 * out + 4 * (out + in + 2), per, total;
    if (__builtin_mul_overflow(nnz, (int64_t)16, &per) ||
        __builtin_add_overflow(fixed, per, &total))
        return INT64_MAX;
    return total;
}

int64_t linear_dense_bytes_for(int64_t in, int64_t out)
{
    int64_t w, total;
    if (__builtin_mul_overflow(in, out, &w) || __builtin_mul_overflow(w, (int64_t)4, &w) ||
        __builtin_add_overflow(w, 4 * out, &total))
        return INT64_MAX;
    return total;
}

/* The current weights of layer l as a dense [out][in] array (caller frees). */
static float *weights_dense(rw_model *m, int l)
{
    const param *w = model_layer_params(m, l);
    float *d = rw_alloc(sizeof(float) * (size_t)w->rows * (size_t)w->cols);
    if (d) param_to_dense(w, d);
    return d;
}

rw_status linear_replace_csr(rw_model *m, int l, csr_matrix *w)
{
    linear *old = linear_of(m->layers[l]);
    if (!old) {
        csr_free(w);
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s is not a linear layer",
                       m->layers[l]->name);
    }
    csr_build_transpose(w);
    layer *ly = linear_csr_new(old->base.name, old->base.in, old->base.out, old->base.act,
                               old->base.slope, l, w, NULL);
    if (!ly) return rw_fail(RW_ERR_NO_MEMORY, "out of memory replacing %s", old->base.name);
    linear *lin = (linear *)ly;
    linear_inherit(lin, ly->ops, old);
    return model_replace_layer(m, l, ly);
}

rw_status linear_replace_nm(rw_model *m, int l, int n, int mm)
{
    linear *old = linear_of(m->layers[l]);
    if (!old)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s is not a linear layer",
                       m->layers[l]->name);
    /* The dense detour costs in·out floats once, at conversion time;
     * training and inference never see it. */
    float *d = weights_dense(m, l);
    if (!d)
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory converting %s to %d:%d", old->base.name,
                       n, mm);
    layer *ly = linear_nm_from_dense(old, d, n, mm);
    rw_free(d);
    if (!ly) return RW_ERR_NO_MEMORY; /* message set */
    return model_replace_layer(m, l, ly);
}

rw_status linear_keep_inputs(rw_model *m, int l, const int32_t *keep, int k)
{
    linear *old = linear_of(m->layers[l]);
    const param *w = model_layer_params(m, l);
    if (!old || old->base.ops->after_step || !(w->storage == PARAM_CSR || w->storage == PARAM_DENSE))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s is not a sparse (CSR) or dense linear "
                       "layer: its inputs cannot be removed", m->layers[l]->name);
    int in = old->base.in, out = old->base.out;
    int32_t *col = malloc(sizeof(int32_t) * (size_t)in);
    if (!col) return rw_fail(RW_ERR_NO_MEMORY, "out of memory removing inputs of %s", old->base.name);
    for (int i = 0; i < in; i++) col[i] = -1;
    for (int j = 0; j < k; j++) col[keep[j]] = j;
    layer *ly = NULL;
    if (w->storage == PARAM_DENSE) {
        float *d = rw_alloc(sizeof(float) * (size_t)out * (size_t)(k > 0 ? k : 1));
        const float *v = param_values(w);
        for (int o = 0; d && o < out; o++)
            for (int j = 0; j < k; j++) d[(size_t)o * k + j] = v[(size_t)o * in + keep[j]];
        ly = d ? linear_dense_new(old->base.name, k, out, old->base.act, old->base.slope, l, d, NULL)
               : NULL;
    } else {
        const csr_matrix *src = w->csr;
        int count = 0;
        for (int q = 0; q < src->nnz; q++) count += col[src->indices[q]] >= 0;
        csr_matrix c;
        if (csr_alloc(&c, out, k, count) == RW_OK) {
            int n = 0;
            for (int o = 0; o < out; o++) {
                /* Columns keep their order, so rows stay sorted. */
                for (int q = src->indptr[o]; q < src->indptr[o + 1]; q++)
                    if (col[src->indices[q]] >= 0) {
                        c.indices[n] = col[src->indices[q]];
                        c.values[n++] = src->values[q];
                    }
                c.indptr[o + 1] = n;
            }
            csr_build_transpose(&c);
            ly = linear_csr_new(old->base.name, k, out, old->base.act, old->base.slope, l, &c, NULL);
        }
    }
    free(col);
    if (!ly) return rw_fail(RW_ERR_NO_MEMORY, "out of memory removing inputs of %s", old->base.name);
    linear *lin = (linear *)ly;
    const layer_ops *ops = ly->ops;
    linear_inherit(lin, ops, old);
    ly->in = k;
    return model_replace_layer(m, l, ly);
}
