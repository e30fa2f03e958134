/* A dense linear layer: W row-major [out][in], multiplied by OpenBLAS.
 * Dense layers are what the user asked for (--sparsity 0, --dense-first,
 * --dense-last) and the baseline every benchmark compares with. Inside a
 * parallel region each thread calls OpenBLAS on its own rows (it then runs
 * single-threaded); outside one OpenBLAS threads the whole product. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
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
    float *w; /* [out][in] */
} linear_dense;

static const linear_dense *dense_of(const layer *ly) { return (const linear_dense *)ly; }

/* Rows [r0, r1): y = W x + bias, then the activation. */
static void forward_rows(const linear_dense *d, const float *x, const tensor *out, int bp, int r0,
                         int r1)
{
    const layer *ly = &d->lin.base;
    float *z = out->pre;
    for (int o = r0; o < r1; o++) {
        float *row = z + (size_t)o * bp;
        float b0 = d->lin.bias ? d->lin.bias[o] : 0.0f;
        for (int b = 0; b < bp; b++) row[b] = b0;
    }
    if (r1 > r0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, bp, ly->in, 1.0f,
                    d->w + (size_t)r0 * ly->in, ly->in, x, bp, 1.0f, z + (size_t)r0 * bp, bp);
    if (ly->act != RW_ACT_NONE)
        activation_forward_range(ly->act, ly->slope, z + (size_t)r0 * bp, out->data + (size_t)r0 * bp,
                                 (size_t)(r1 - r0) * bp);
}

static int dense_forward(const layer *ly, const layer_io *io)
{
    const linear_dense *d = dense_of(ly);
    int parts = omp_get_num_threads();
    TEAM_FOR(t, parts) {
        int r0, r1;
        part_range(ly->out, t, parts, &r0, &r1);
        forward_rows(d, io->in[0]->data, io->out, io->bp, r0, r1);
        team_chunk_done();
    }
    return parts;
}

/* Part t of `parts`: the first `parts` parts are rows of the weight and
 * bias gradients, the others rows of the input gradient (then through the
 * input's activation). */
static void backward_part(const linear_dense *d, const layer_io *io, int t, int parts)
{
    const layer *ly = &d->lin.base;
    int bp = io->bp;
    const float *dz = io->out->grad;
    const tensor *in = io->in[0];
    int r0, r1;
    if (t < parts) {
        part_range(ly->out, t, parts, &r0, &r1);
        if (d->lin.has_bias) linear_bias_grad_rows(dz, io->grad[1], bp, r0, r1);
        if (r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, ly->in, bp, 1.0f,
                        dz + (size_t)r0 * bp, bp, in->data, bp, 0.0f,
                        io->grad[0] + (size_t)r0 * ly->in, ly->in);
        return;
    }
    part_range(ly->in, t - parts, parts, &r0, &r1);
    if (r1 == r0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1 - r0, bp, ly->out, 1.0f, d->w + r0,
                ly->in, dz, bp, 0.0f, in->grad + (size_t)r0 * bp, bp);
    layer_grad_through_act(in, bp, r0, r1);
}

static int dense_backward(const layer *ly, const layer_io *io)
{
    const linear_dense *d = dense_of(ly);
    int parts = omp_get_num_threads();
    int total = (io->in[0]->grad ? 2 : 1) * parts;
    TEAM_FOR(t, total) {
        backward_part(d, io, t, parts);
        team_chunk_done();
    }
    return total;
}

int linear_dense_vector(const float *w, const float *bias, const layer *ly, const layer_io *io)
{
    int64_t weights = (int64_t)ly->in * ly->out;
    int parts = weights >= KERNEL_PARALLEL_MIN_WORK ? omp_get_num_threads() : 1;
    const float *x = io->in[0]->data;
    float *z = io->out->pre, *a = io->out->data;
    TEAM_FOR(t, parts) {
        int r0, r1;
        part_range(ly->out, t, parts, &r0, &r1);
        if (r1 > r0) {
            if (bias)
                memcpy(z + r0, bias + r0, sizeof(float) * (size_t)(r1 - r0));
            else
                memset(z + r0, 0, sizeof(float) * (size_t)(r1 - r0));
            cblas_sgemv(CblasRowMajor, CblasNoTrans, r1 - r0, ly->in, 1.0f, w + (size_t)r0 * ly->in,
                        ly->in, x, 1, 1.0f, z + r0, 1);
            if (ly->act != RW_ACT_NONE)
                activation_forward_range(ly->act, ly->slope, z + r0, a + r0, (size_t)(r1 - r0));
        }
        team_chunk_done();
    }
    return parts;
}

static int dense_forward_vector(const layer *ly, const layer_io *io)
{
    const linear_dense *d = dense_of(ly);
    return linear_dense_vector(d->w, d->lin.bias, ly, io);
}

static int dense_params(layer *ly, param *out)
{
    linear_dense *d = (linear_dense *)ly;
    out[0] = linear_weight_param(&d->lin, "weight");
    out[0].storage = PARAM_DENSE;
    out[0].values = &d->w;
    return 1 + linear_bias_params(&d->lin, out + 1);
}

static void dense_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    (void)f;
    int64_t w = (int64_t)ly->in * ly->out;
    *out = (layer_shape){ly->in, ly->out, linear_dense_bytes_for(ly->in, ly->out),
                         w + (((const linear *)ly)->has_bias ? ly->out : 0), ly->act != RW_ACT_NONE};
}

static void dense_info(const layer *ly, rw_layer_info *out)
{
    out->nonzeros = (int64_t)ly->in * ly->out;
    out->bytes = out->dense_bytes;
}

static rw_status dense_save(const layer *ly, st_writer *w, const char *path)
{
    (void)path;
    const linear_dense *d = dense_of(ly);
    char name[LAYER_NAME_CAP + 16];
    int64_t shape[2] = {ly->out, ly->in};
    snprintf(name, sizeof name, "%s.weight", ly->name);
    rw_status st = st_writer_add(w, name, ST_F32, 2, shape, d->w);
    return st == RW_OK ? linear_save_bias(&d->lin, w) : st;
}

static rw_status dense_load(layer *ly, const st_file *f, const char *path)
{
    linear_dense *d = (linear_dense *)ly;
    rw_status st = linear_load_bias(&d->lin, f, path);
    if (st != RW_OK) return st;
    char name[LAYER_NAME_CAP + 16];
    const st_tensor *t;
    snprintf(name, sizeof name, "%s.weight", ly->name);
    st = linear_want_tensor(f, path, name, ST_F32, 2, ly->out, ly->in, &t);
    if (st != RW_OK) return st;
    d->w = rw_alloc(t->nbytes);
    if (!d->w) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, name);
    memcpy(d->w, t->data, t->nbytes);
    for (int64_t k = 0; k < t->count; k++)
        if (!isfinite(d->w[k]))
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value at %lld", path,
                           name, (long long)k);
    return RW_OK;
}

static int dense_owns(const layer *ly, const char *name)
{
    static const char *const fields[] = {"weight", "bias", NULL};
    return linear_tensor_is((const linear *)ly, name, fields);
}

static void dense_destroy(layer *ly)
{
    linear_dense *d = (linear_dense *)ly;
    rw_free(d->w);
    rw_free(d->lin.bias);
    free(d);
}

const layer_ops linear_dense_ops = {
    .kind = "dense",
    .forward = dense_forward,
    .backward = dense_backward,
    .forward_vector = dense_forward_vector,
    .params = dense_params,
    .shape = dense_shape,
    .info = dense_info,
    .describe = linear_describe,
    .save = dense_save,
    .load = dense_load,
    .owns_tensor = dense_owns,
    .destroy = dense_destroy,
    .is_linear = 1,
};

layer *linear_dense_new(const char *name, int in, int out, rw_activation act, float slope,
                        int index, float *w, float *bias)
{
    linear_dense *d = calloc(1, sizeof *d);
    if (!d) {
        rw_free(w);
        rw_free(bias);
        rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", name);
        return NULL;
    }
    linear_init(&d->lin, &linear_dense_ops, name, in, out, act, slope, index);
    d->lin.bias = bias;
    d->lin.has_bias = bias != NULL;
    d->w = w;
    return &d->lin.base;
}

static rw_status dense_from_meta(const json_t *entry, const layer_meta *m, const char *path,
                                 layer **out)
{
    *out = linear_dense_new(m->name, m->in, m->out, m->act, m->slope, m->index, NULL, NULL);
    if (!*out) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    return linear_from_meta((linear *)*out, &linear_dense_ops, entry, m, path);
}

const layer_kind linear_dense_kind = {"dense", dense_from_meta};

float *linear_dense_take_weights(layer *ly)
{
    linear_dense *d = (linear_dense *)ly;
    float *w = d->w;
    d->w = NULL;
    return w;
}
