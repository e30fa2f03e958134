/* A truly sparse linear layer: W in CSR, multiplied by rewire's own
 * kernels (forward SpMM, backward SpMMᵀ over the transposed view, weight
 * gradient SDDMM on the stored pattern), with ReLU and leaky ReLU fused
 * into their epilogues. Its weight is the parameter dynamic sparse
 * training and pruning change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/team.h"
#include "nn/activation.h"
#include "nn/linear.h"

typedef struct {
    linear lin;
    csr_matrix w; /* out × in */
} linear_csr;

static const linear_csr *csr_of(const layer *ly) { return (const linear_csr *)ly; }

/* The epilogue a kernel can apply for an activation, if any. */
static kernel_epilogue fused(rw_activation act, float slope)
{
    kernel_epilogue e = {KACT_NONE, slope};
    if (act == RW_ACT_RELU) e.act = KACT_RELU;
    if (act == RW_ACT_LEAKY_RELU) e.act = KACT_LEAKY;
    return e;
}

static int csr_forward(const layer *ly, const layer_io *io)
{
    const linear_csr *c = csr_of(ly);
    if (ly->act == RW_ACT_GELU) /* a transformer's MLP: GELU chunk by chunk */
        return team_forward_gelu(kernels_active(), &c->w, c->lin.bias, io->in[0]->data,
                                 io->out->pre, io->out->data, io->bp);
    kernel_epilogue epi = fused(ly->act, ly->slope);
    int chunks = team_forward(kernels_active(), &c->w, c->lin.bias, io->in[0]->data, io->out->pre,
                              io->bp, epi);
    if (ly->act == RW_ACT_NONE || epi.act != KACT_NONE) return chunks;
    /* tanh and GELU: a pass of their own once every row is done. */
    team_phase(chunks);
    return layer_activate_phase(io->out, io->bp);
}

static int csr_backward(const layer *ly, const layer_io *io)
{
    const linear_csr *c = csr_of(ly);
    const tensor *in = io->in[0];
    rw_activation in_act = in->grad ? in->act : RW_ACT_NONE;
    if (in_act == RW_ACT_GELU)
        return team_backward_gelu(kernels_active(), &c->w, io->out->grad, in->data, io->grad[0],
                                  linear_bias_grad(&c->lin, io), in->grad, in->pre, io->bp);
    kernel_epilogue epi = fused(in_act, in->slope);
    int chunks = team_backward(kernels_active(), &c->w, io->out->grad, in->data, io->grad[0],
                               linear_bias_grad(&c->lin, io), in->grad, in->grad ? in->data : NULL,
                               io->bp, epi);
    if (in_act == RW_ACT_NONE || epi.act != KACT_NONE) return chunks;
    /* tanh and GELU: the derivative in a pass of its own. */
    team_phase(chunks);
    return layer_grad_through_act_phase(in, io->bp);
}

static int csr_forward_vector(const layer *ly, const layer_io *io)
{
    const linear_csr *c = csr_of(ly);
    tensor *out = io->out;
    if (ly->act == RW_ACT_GELU) /* a transformer's MLP, as in csr_forward */
        return team_spmv_gelu(kernels_active(), &c->w, c->lin.bias, io->in[0]->data, out->pre,
                              out->data);
    kernel_epilogue epi = fused(ly->act, ly->slope);
    int chunks = team_spmv(kernels_active(), &c->w, c->lin.bias, io->in[0]->data, out->pre, epi);
    if (ly->act == RW_ACT_NONE || epi.act != KACT_NONE) return chunks;
    team_phase(chunks);
    TEAM_FOR(one, 1) {
        activation_forward_range(ly->act, ly->slope, out->pre, out->data, (size_t)ly->out);
        team_chunk_done();
    }
    return 1;
}

static int csr_params(layer *ly, param *out)
{
    linear_csr *c = (linear_csr *)ly;
    out[0] = linear_weight_param(&c->lin, "values");
    out[0].storage = PARAM_CSR;
    out[0].csr = &c->w;
    out[0].values = &c->w.values;
    return 1 + linear_bias_params(&c->lin, out + 1);
}

static void csr_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    int64_t nnz = csr_of(ly)->w.nnz;
    if (f) { /* the file's indices tensor says how many weights it stores */
        char name[LAYER_NAME_CAP + 16];
        snprintf(name, sizeof name, "%s.indices", ly->name);
        const st_tensor *t = st_find(f, name);
        nnz = t ? t->count : 0;
    }
    *out = (layer_shape){ly->in, ly->out, linear_csr_bytes_for(ly->in, ly->out, nnz),
                         nnz + (((const linear *)ly)->has_bias ? ly->out : 0),
                         ly->act != RW_ACT_NONE};
}

static void csr_info(const layer *ly, rw_layer_info *out)
{
    out->sparse = 1;
    out->nonzeros = csr_of(ly)->w.nnz;
    out->bytes = 4 * ((int64_t)ly->out + 1) + 8 * out->nonzeros + 4 * (int64_t)ly->out;
}

static rw_status csr_save(const layer *ly, st_writer *w, const char *path)
{
    (void)path;
    const linear_csr *c = csr_of(ly);
    char name[LAYER_NAME_CAP + 16];
    int64_t out1 = ly->out + 1, nnz = c->w.nnz;
    snprintf(name, sizeof name, "%s.indptr", ly->name);
    rw_status st = st_writer_add(w, name, ST_I32, 1, &out1, c->w.indptr);
    snprintf(name, sizeof name, "%s.indices", ly->name);
    if (st == RW_OK) st = st_writer_add(w, name, ST_I32, 1, &nnz, c->w.indices);
    snprintf(name, sizeof name, "%s.values", ly->name);
    if (st == RW_OK) st = st_writer_add(w, name, ST_F32, 1, &nnz, c->w.values);
    return st == RW_OK ? linear_save_bias(&c->lin, w) : st;
}

static rw_status csr_load(layer *ly, const st_file *f, const char *path)
{
    linear_csr *c = (linear_csr *)ly;
    const char *base = ly->name;
    rw_status st = linear_load_bias(&c->lin, f, path);
    if (st != RW_OK) return st;
    char name[LAYER_NAME_CAP + 16];
    const st_tensor *indptr, *indices, *values;
    snprintf(name, sizeof name, "%s.indptr", base);
    st = linear_want_tensor(f, path, name, ST_I32, 1, (int64_t)ly->out + 1, 0, &indptr);
    snprintf(name, sizeof name, "%s.indices", base);
    if (st == RW_OK) st = linear_want_tensor(f, path, name, ST_I32, 1, -1, 0, &indices);
    snprintf(name, sizeof name, "%s.values", base);
    if (st == RW_OK) st = linear_want_tensor(f, path, name, ST_F32, 1, -1, 0, &values);
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
    st = csr_alloc(&c->w, ly->out, ly->in, (int)indices->count);
    if (st != RW_OK) return st;
    memcpy(c->w.indptr, indptr->data, indptr->nbytes);
    memcpy(c->w.indices, indices->data, indices->nbytes);
    memcpy(c->w.values, values->data, values->nbytes);
    char what[512];
    snprintf(what, sizeof what, "%s: layer %s", path, base);
    st = csr_validate(&c->w, what);
    if (st == RW_OK) csr_build_transpose(&c->w);
    return st;
}

static int csr_owns(const layer *ly, const char *name)
{
    static const char *const fields[] = {"indptr", "indices", "values", "bias", NULL};
    return linear_tensor_is((const linear *)ly, name, fields);
}

static void csr_destroy(layer *ly)
{
    linear_csr *c = (linear_csr *)ly;
    csr_free(&c->w);
    rw_free(c->lin.bias);
    free(c);
}

const layer_ops linear_csr_ops = {
    .kind = "sparse",
    .forward = csr_forward,
    .backward = csr_backward,
    .forward_vector = csr_forward_vector,
    .params = csr_params,
    .shape = csr_shape,
    .info = csr_info,
    .describe = linear_describe,
    .save = csr_save,
    .load = csr_load,
    .owns_tensor = csr_owns,
    .destroy = csr_destroy,
    .is_linear = 1,
};

layer *linear_csr_new(const char *name, int in, int out, rw_activation act, float slope,
                      int index, csr_matrix *w, float *bias)
{
    linear_csr *c = calloc(1, sizeof *c);
    if (!c) {
        csr_free(w);
        rw_free(bias);
        rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", name);
        return NULL;
    }
    linear_init(&c->lin, &linear_csr_ops, name, in, out, act, slope, index);
    c->lin.bias = bias;
    c->lin.has_bias = bias != NULL;
    c->w = *w;
    memset(w, 0, sizeof *w);
    return &c->lin.base;
}

static rw_status csr_from_meta(const json_t *entry, const layer_meta *m, const char *path,
                               layer **out)
{
    csr_matrix empty;
    memset(&empty, 0, sizeof empty);
    *out = linear_csr_new(m->name, m->in, m->out, m->act, m->slope, m->index, &empty, NULL);
    if (!*out) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    return linear_from_meta((linear *)*out, &linear_csr_ops, entry, m, path);
}

const layer_kind linear_csr_kind = {"sparse", csr_from_meta};
