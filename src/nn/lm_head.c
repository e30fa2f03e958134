/* The LM head tied to the token embedding (as GPT-2 and nanoGPT do):
 * logits = wte · x, a [vocab][bp] tensor from the [dim][bp] output of the
 * final LayerNorm, with the embedding's wte [vocab][dim] (embedding.c).
 * The head has no parameter of its own; its backward writes wte's
 * gradient dlogits · xᵀ first (it runs before the embedding's), and the
 * input's gradient wteᵀ · dlogits. Products are OpenBLAS sgemm calls on
 * blocks of HEAD_ROWS rows, a count that does not depend on the threads:
 * OpenBLAS chooses its kernel, and with it the order of its sums, by the
 * shape of a call, so rows split among the threads (a call of 128 rows
 * with two, of 256 with one) gave logits that differed in the last bit. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/team.h"
#include "nn/embedding.h"
#include "nn/model.h"

typedef struct {
    layer base;
    char tied_to[LAYER_NAME_CAP];
    int vocab;
    const layer *embed; /* set by link */
} lm_head;

static const lm_head *head_of(const layer *ly) { return (const lm_head *)ly; }

#define HEAD_ROWS 64

/* Rows in blocks of HEAD_ROWS: how many, and block c's [*r0, *r1). */
static int row_blocks(int rows) { return (rows + HEAD_ROWS - 1) / HEAD_ROWS; }

static void row_block(int rows, int c, int *r0, int *r1)
{
    *r0 = c * HEAD_ROWS;
    *r1 = *r0 + HEAD_ROWS < rows ? *r0 + HEAD_ROWS : rows;
}

static int head_forward(const layer *ly, const layer_io *io)
{
    const lm_head *h = head_of(ly);
    const float *wte = embedding_wte(h->embed);
    int dim = ly->in, bp = io->bp, parts = row_blocks(h->vocab);
    TEAM_FOR(t, parts) {
        int r0, r1;
        row_block(h->vocab, t, &r0, &r1);
        if (r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, bp, dim, 1.0f,
                        wte + (size_t)r0 * dim, dim, io->in[0]->data, bp, 0.0f,
                        io->out->pre + (size_t)r0 * bp, bp);
        team_chunk_done();
    }
    return parts;
}

/* One token (generation): sgemv on the same row blocks. OpenBLAS 0.3.21
 * runs an sgemm of one column as a full sgemm, packing its block of wte
 * at every call: the four calls of a 256-token head at width 512 took
 * 130 us against sgemv's 38 (Haswell kernels, one thread), a tenth of a
 * 90%-sparse model's token. The logits may differ from sgemm's in the
 * last bits; they are the same for any thread count. */
static int head_forward_vector(const layer *ly, const layer_io *io)
{
    const lm_head *h = head_of(ly);
    const float *wte = embedding_wte(h->embed);
    int dim = ly->in, parts = row_blocks(h->vocab);
    TEAM_FOR(t, parts) {
        int r0, r1;
        row_block(h->vocab, t, &r0, &r1);
        if (r1 > r0)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, r1 - r0, dim, 1.0f, wte + (size_t)r0 * dim, dim,
                        io->in[0]->data, 1, 0.0f, io->out->pre + r0, 1);
        team_chunk_done();
    }
    return parts;
}

/* Parts [0, parts): row blocks of wte's gradient; then row blocks of dx. */
static int head_backward(const layer *ly, const layer_io *io)
{
    const lm_head *h = head_of(ly);
    const float *wte = embedding_wte(h->embed), *dz = io->out->grad, *x = io->in[0]->data;
    int dim = ly->in, bp = io->bp, parts = row_blocks(h->vocab);
    int total = parts + (io->in[0]->grad ? row_blocks(dim) : 0);
    TEAM_FOR(t, total) {
        int r0, r1;
        if (t < parts) {
            row_block(h->vocab, t, &r0, &r1);
            if (r1 > r0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, dim, bp, 1.0f,
                            dz + (size_t)r0 * bp, bp, x, bp, 0.0f, io->shared_grad + (size_t)r0 * dim,
                            dim);
        } else {
            row_block(dim, t - parts, &r0, &r1);
            if (r1 > r0) {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1 - r0, bp, h->vocab, 1.0f,
                            wte + r0, dim, dz, bp, io->accumulate[0] ? 1.0f : 0.0f,
                            io->in[0]->grad + (size_t)r0 * bp, bp);
                layer_grad_through_act(io->in[0], bp, r0, r1);
            }
        }
        team_chunk_done();
    }
    return total;
}

static int head_params(layer *ly, param *out)
{
    (void)ly;
    (void)out;
    return 0;
}

static void head_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    (void)f;
    *out = (layer_shape){ly->in, ly->out, 0, 0, 0};
}

static void head_info(const layer *ly, rw_layer_info *out)
{
    (void)ly;
    out->nonzeros = 0;
    out->bytes = out->dense_bytes = 0;
}

static void head_describe(const layer *ly, json_t *entry)
{
    json_object_set_new(entry, "tied_to", json_string(head_of(ly)->tied_to));
}

static rw_status head_save(const layer *ly, st_writer *w, const char *path)
{
    (void)ly;
    (void)w;
    (void)path;
    return RW_OK;
}

static rw_status head_load(layer *ly, const st_file *f, const char *path)
{
    (void)ly;
    (void)f;
    (void)path;
    return RW_OK;
}

static int head_owns(const layer *ly, const char *name)
{
    (void)ly;
    (void)name;
    return 0;
}

static rw_status head_link(layer *ly, rw_model *m)
{
    lm_head *h = (lm_head *)ly;
    for (int l = 0; l < m->n_layers; l++) {
        layer *e = m->layers[l];
        if (strcmp(e->name, h->tied_to) != 0) continue;
        if (!is_embedding(e) || embedding_vocab(e) != h->vocab || e->out != ly->in)
            return rw_fail(RW_ERR_FORMAT, "layer %s is tied to %s, which is not an embedding of %d "
                           "tokens of %d features", ly->name, h->tied_to, h->vocab, ly->in);
        h->embed = e;
        embedding_mark_tied(e);
        ly->has_shared_param = 1;
        ly->shared_param = m->first_param[l]; /* wte, the embedding's first */
        return RW_OK;
    }
    return rw_fail(RW_ERR_FORMAT, "layer %s is tied to %s, which the model does not have", ly->name,
                   h->tied_to);
}

static void head_destroy(layer *ly) { free(ly); }

static const layer_ops lm_head_ops = {
    .kind = "lm_head",
    .forward = head_forward,
    .backward = head_backward,
    .forward_vector = head_forward_vector,
    .params = head_params,
    .shape = head_shape,
    .info = head_info,
    .describe = head_describe,
    .save = head_save,
    .load = head_load,
    .owns_tensor = head_owns,
    .link = head_link,
    .destroy = head_destroy,
    .accumulates = 1,
};

layer *lm_head_new(const char *name, const char *tied_to, int vocab, int dim, int input, int index)
{
    lm_head *h = calloc(1, sizeof *h);
    if (!h) {
        rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", name);
        return NULL;
    }
    layer *b = &h->base;
    b->ops = &lm_head_ops;
    snprintf(b->name, sizeof b->name, "%s", name);
    snprintf(h->tied_to, sizeof h->tied_to, "%s", tied_to);
    b->in = dim;
    b->out = vocab;
    b->act = RW_ACT_NONE;
    b->inputs[0] = input;
    b->n_inputs = 1;
    b->output = index + 1;
    h->vocab = vocab;
    return b;
}

static rw_status head_from_meta(const json_t *entry, const layer_meta *m, const char *path,
                                layer **out)
{
    const char *tied = NULL;
    if (json_unpack((json_t *)entry, "{s:s}", "tied_to", &tied) != 0 || strlen(tied) == 0 ||
        strlen(tied) >= LAYER_NAME_CAP)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s of kind lm_head needs \"tied_to\", the name of "
                       "its embedding", path, m->name);
    *out = lm_head_new(m->name, tied, m->out, m->in, m->index, m->index);
    return *out ? RW_OK : rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
}

const layer_kind lm_head_kind = {"lm_head", head_from_meta};
