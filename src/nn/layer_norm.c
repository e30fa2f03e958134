/* LayerNorm ("Layer Normalization", Ba, Kiros & Hinton 2016): each column
 * (sample, or token) of a [dim][bp] tensor is centred and scaled to unit
 * variance over its dim features, then y = x̂ · γ + β per feature, as
 * torch.nn.LayerNorm(dim, eps) with elementwise affine. Its parameters
 * are dense vectors, never pruned and not decayed.
 *
 * Forward: column blocks of LN_COLS, each reading all dim rows of its
 * columns; the mean and 1/σ of every column stay in the workspace's
 * scratch for the backward pass. Backward, for a column with x̂, g = dy·γ:
 *   dx = (g − mean(g) − x̂ · mean(g·x̂)) / σ       (column blocks)
 *   dγ_i = Σ_b dy_ib x̂_ib,  dβ_i = Σ_b dy_ib       (row chunks)
 * in one phase. Every sum runs in a fixed order, so results do not depend
 * on the threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/team.h"
#include "nn/activation.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"

#define LN_COLS 64

/* The column loops below run across 8 (AVX-512) or 4 (AVX2) doubles at a
 * time where the CPU has them, chosen when the library loads. Each
 * column's sums keep their order, and ISO C mode contracts no FMAs, so
 * every clone gives the same bytes. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define LN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LN_CLONES
#endif

typedef struct {
    layer base;
    float *gamma, *beta; /* [dim]; beta NULL without a bias (nanoGPT's bias=False) */
    int has_beta;
    float eps;
} layer_norm;

static const layer_norm *ln_of(const layer *ly) { return (const layer_norm *)ly; }

static int col_blocks(int bp) { return (bp + LN_COLS - 1) / LN_COLS; }

/* Columns [c0, c1): mean and 1/σ into the scratch, y into out->pre. */
LN_CLONES static void forward_cols(const layer_norm *l, const layer_io *io, int c0, int c1)
{
    int dim = l->base.in, bp = io->bp, w = c1 - c0;
    const float *x = io->in[0]->data;
    float *y = io->out->pre, *mean = io->scratch, *rstd = io->scratch + bp;
    double sum[LN_COLS], sq[LN_COLS];
    for (int b = 0; b < w; b++) sum[b] = sq[b] = 0;
    for (int i = 0; i < dim; i++)
        for (int b = 0; b < w; b++) sum[b] += x[(size_t)i * bp + c0 + b];
    for (int b = 0; b < w; b++) mean[c0 + b] = (float)(sum[b] / dim);
    for (int i = 0; i < dim; i++)
        for (int b = 0; b < w; b++) {
            double d = (double)x[(size_t)i * bp + c0 + b] - mean[c0 + b];
            sq[b] += d * d;
        }
    for (int b = 0; b < w; b++) rstd[c0 + b] = (float)(1.0 / sqrt(sq[b] / dim + l->eps));
    for (int i = 0; i < dim; i++) {
        const float *xi = x + (size_t)i * bp + c0;
        float *yi = y + (size_t)i * bp + c0, g = l->gamma[i], be = l->beta ? l->beta[i] : 0.0f;
        for (int b = 0; b < w; b++) yi[b] = (xi[b] - mean[c0 + b]) * rstd[c0 + b] * g + be;
        if (l->base.act != RW_ACT_NONE)
            activation_forward_range(l->base.act, l->base.slope, yi, io->out->data + (size_t)i * bp + c0,
                                     (size_t)w);
    }
}

static int ln_forward(const layer *ly, const layer_io *io)
{
    int blocks = col_blocks(io->bp);
    TEAM_FOR(c, blocks) {
        int c0 = c * LN_COLS, c1 = c0 + LN_COLS < io->bp ? c0 + LN_COLS : io->bp;
        forward_cols(ln_of(ly), io, c0, c1);
        team_chunk_done();
    }
    return blocks;
}

/* dx of columns [c0, c1), through the input's activation. */
LN_CLONES static void backward_cols(const layer_norm *l, const layer_io *io, int c0, int c1)
{
    int dim = l->base.in, bp = io->bp, w = c1 - c0;
    const tensor *in = io->in[0];
    const float *x = in->data, *dy = io->out->grad, *mean = io->scratch, *rstd = io->scratch + bp;
    double a[LN_COLS], c[LN_COLS];
    for (int b = 0; b < w; b++) a[b] = c[b] = 0;
    for (int i = 0; i < dim; i++) {
        const float *xi = x + (size_t)i * bp + c0, *dyi = dy + (size_t)i * bp + c0;
        for (int b = 0; b < w; b++) {
            double g = (double)dyi[b] * l->gamma[i];
            a[b] += g;
            c[b] += g * ((double)xi[b] - mean[c0 + b]) * rstd[c0 + b];
        }
    }
    for (int b = 0; b < w; b++) a[b] /= dim, c[b] /= dim;
    int add = io->accumulate[0]; /* a later reader wrote its part already */
    for (int i = 0; i < dim; i++) {
        size_t off = (size_t)i * bp + c0;
        for (int b = 0; b < w; b++) {
            double xhat = ((double)x[off + b] - mean[c0 + b]) * rstd[c0 + b];
            double g = (double)dy[off + b] * l->gamma[i];
            float v = (float)(rstd[c0 + b] * (g - a[b] - xhat * c[b]));
            in->grad[off + b] = add ? in->grad[off + b] + v : v;
        }
        if (in->act != RW_ACT_NONE)
            activation_backward_range(in->act, in->slope, in->pre + off, in->data + off,
                                      in->grad + off, (size_t)w);
    }
}

/* dγ and dβ of rows [r0, r1). */
static void param_grad_rows(const layer_io *io, int r0, int r1)
{
    int bp = io->bp;
    const float *x = io->in[0]->data, *dy = io->out->grad, *mean = io->scratch,
                *rstd = io->scratch + bp;
    for (int i = r0; i < r1; i++) {
        const float *xi = x + (size_t)i * bp, *dyi = dy + (size_t)i * bp;
        double dg = 0, db = 0;
        for (int b = 0; b < bp; b++) {
            dg += (double)dyi[b] * (xi[b] - mean[b]) * rstd[b];
            db += dyi[b];
        }
        io->grad[0][i] = (float)dg;
        if (io->grad[1]) io->grad[1][i] = (float)db;
    }
}

static int ln_backward(const layer *ly, const layer_io *io)
{
    const layer_norm *l = ln_of(ly);
    float *grads[2] = {io->grad[0], l->has_beta ? io->grad[1] : NULL};
    layer_io pio = *io;
    pio.grad = grads;
    int blocks = io->in[0]->grad ? col_blocks(io->bp) : 0;
    int rows = layer_row_chunks(ly->in, io->bp), total = blocks + rows;
    TEAM_FOR(c, total) {
        if (c < blocks) {
            int c0 = c * LN_COLS, c1 = c0 + LN_COLS < io->bp ? c0 + LN_COLS : io->bp;
            backward_cols(l, io, c0, c1);
        } else {
            int r0, r1;
            part_range(ly->in, c - blocks, rows, &r0, &r1);
            param_grad_rows(&pio, r0, r1);
        }
        team_chunk_done();
    }
    return total;
}

static int ln_params(layer *ly, param *out)
{
    layer_norm *l = (layer_norm *)ly;
    const char *what[2] = {"weight", "bias"};
    float **values[2] = {&l->gamma, &l->beta};
    int n = l->has_beta ? 2 : 1;
    for (int k = 0; k < n; k++) out[k] = param_dense(ly->name, what[k], ly->in, 1, values[k], 0);
    return n;
}

static int64_t ln_scratch_floats(const layer *ly, int bp)
{
    (void)ly;
    return 2 * (int64_t)bp;
}

static void ln_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    (void)f;
    int n = ln_of(ly)->has_beta ? 2 : 1;
    *out = (layer_shape){ly->in, ly->out, 4 * n * (int64_t)ly->in, n * (int64_t)ly->in,
                         ly->act != RW_ACT_NONE};
}

static void ln_info(const layer *ly, rw_layer_info *out)
{
    out->nonzeros = 0;
    out->bytes = out->dense_bytes = 4 * (ln_of(ly)->has_beta ? 2 : 1) * (int64_t)ly->in;
}

static void ln_describe(const layer *ly, json_t *entry)
{
    json_object_set_new(entry, "eps", json_real(ln_of(ly)->eps));
    if (!ln_of(ly)->has_beta) json_object_set_new(entry, "bias", json_false());
}

static rw_status ln_save(const layer *ly, st_writer *w, const char *path)
{
    (void)path;
    const layer_norm *l = ln_of(ly);
    char name[LAYER_NAME_CAP + 16];
    int64_t dim = ly->in;
    snprintf(name, sizeof name, "%s.weight", ly->name);
    rw_status st = st_writer_add(w, name, ST_F32, 1, &dim, l->gamma);
    snprintf(name, sizeof name, "%s.bias", ly->name);
    if (st == RW_OK && l->has_beta) st = st_writer_add(w, name, ST_F32, 1, &dim, l->beta);
    return st;
}

static rw_status ln_load(layer *ly, const st_file *f, const char *path)
{
    layer_norm *l = (layer_norm *)ly;
    const char *what[2] = {"weight", "bias"};
    float **dst[2] = {&l->gamma, &l->beta};
    for (int k = 0; k < (l->has_beta ? 2 : 1); k++) {
        char name[LAYER_NAME_CAP + 16];
        snprintf(name, sizeof name, "%s.%s", ly->name, what[k]);
        const st_tensor *t;
        rw_status st = linear_want_tensor(f, path, name, ST_F32, 1, ly->in, 0, &t);
        if (st != RW_OK) return st;
        if (!(*dst[k] = rw_alloc(t->nbytes)))
            return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, name);
        memcpy(*dst[k], t->data, t->nbytes);
        for (int i = 0; i < ly->in; i++)
            if (!isfinite((*dst[k])[i]))
                return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value at %d", path,
                               name, i);
    }
    return RW_OK;
}

static int ln_owns(const layer *ly, const char *name)
{
    size_t n = strlen(ly->name);
    return strncmp(name, ly->name, n) == 0 && name[n] == '.' &&
           (strcmp(name + n + 1, "weight") == 0 ||
            (ln_of(ly)->has_beta && strcmp(name + n + 1, "bias") == 0));
}

static void ln_destroy(layer *ly)
{
    layer_norm *l = (layer_norm *)ly;
    rw_free(l->gamma);
    rw_free(l->beta);
    free(l);
}

static const layer_ops layer_norm_ops = {
    .kind = "layer_norm",
    .forward = ln_forward,
    .backward = ln_backward,
    .forward_vector = ln_forward,
    .params = ln_params,
    .shape = ln_shape,
    .info = ln_info,
    .describe = ln_describe,
    .save = ln_save,
    .load = ln_load,
    .owns_tensor = ln_owns,
    .scratch_floats = ln_scratch_floats,
    .accumulates = 1,
    .destroy = ln_destroy,
};

static layer_norm *ln_alloc(const char *name, int dim, rw_activation act, float slope, int index,
                            float eps)
{
    layer_norm *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    layer *b = &l->base;
    b->ops = &layer_norm_ops;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->in = b->out = dim;
    b->act = act;
    b->slope = slope;
    b->inputs[0] = index;
    b->n_inputs = 1;
    b->output = index + 1;
    l->eps = eps;
    l->has_beta = 1;
    return l;
}

layer *layer_norm_new(const char *name, int dim, float eps, int index, int bias)
{
    layer_norm *l = ln_alloc(name, dim, RW_ACT_NONE, 0.01f, index, eps);
    if (l) {
        l->has_beta = bias;
        l->gamma = rw_alloc(sizeof(float) * (size_t)dim);
        if (bias) l->beta = rw_alloc(sizeof(float) * (size_t)dim);
    }
    if (!l || !l->gamma || (bias && !l->beta)) {
        if (l) ln_destroy(&l->base);
        rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", name);
        return NULL;
    }
    /* torch.nn.LayerNorm's start: the identity. */
    for (int i = 0; i < dim; i++) l->gamma[i] = 1.0f;
    return &l->base;
}

static rw_status ln_from_meta(const json_t *entry, const layer_meta *m, const char *path,
                              layer **out)
{
    double eps = 1e-5;
    json_t *e = json_object_get(entry, "eps");
    if (e && (!json_is_number(e) || !((eps = json_number_value(e)) > 0) || eps > 1))
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s: eps should be a number in (0, 1]", path,
                       m->name);
    if (m->in != m->out)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s of kind layer_norm has %d inputs and %d outputs, "
                       "expected the same", path, m->name, m->in, m->out);
    json_t *b = json_object_get(entry, "bias");
    if (b && !json_is_boolean(b))
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s: \"bias\" should be true or false", path,
                       m->name);
    layer_norm *l = ln_alloc(m->name, m->in, m->act, m->slope, m->index, (float)eps);
    if (!l) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    l->has_beta = !b || json_is_true(b);
    *out = &l->base;
    return RW_OK;
}

int is_layer_norm(const layer *ly) { return ly->ops == &layer_norm_ops; }
float layer_norm_eps(const layer *ly) { return ln_of(ly)->eps; }
int layer_norm_has_bias(const layer *ly) { return ln_of(ly)->has_beta; }

const layer_kind layer_norm_kind = {"layer_norm", ln_from_meta};
