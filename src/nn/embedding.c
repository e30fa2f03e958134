/* Token and learned position embeddings, the first layer of a GPT
 * ("Language Models are Unsupervised Multitask Learners", Radford et al.
 * 2019): column j of the output is wte[token j] + wpe[position of j], a
 * [dim][bp] tensor. Both tables are dense parameters, [vocab][dim] and
 * [context][dim] row-major (PyTorch's nn.Embedding layout), never pruned.
 * A tied LM head (lm_head.c) reads wte too and writes its gradient first;
 * this layer's backward then adds the token rows into it.
 *
 * Backward splits the dim features among chunks: a chunk adds, for its
 * features, every column's gradient into its token's row in column order,
 * so results do not depend on the threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/team.h"
#include "nn/embedding.h"
#include "nn/linear.h"

typedef struct {
    layer base;
    int vocab, context;
    float *wte; /* [vocab][dim] */
    float *wpe; /* [context][dim] */
    int tied;   /* an LM head reads wte and writes its gradient first */
} embedding;

static const embedding *emb_of(const layer *ly) { return (const embedding *)ly; }

/* Columns in chunks of this many features. */
#define EMB_ROWS 32

static int row_blocks(int dim) { return (dim + EMB_ROWS - 1) / EMB_ROWS; }

static int emb_forward(const layer *ly, const layer_io *io)
{
    const embedding *e = emb_of(ly);
    int dim = ly->out, bp = io->bp, n = io->n, blocks = row_blocks(dim);
    float *y = io->out->pre;
    TEAM_FOR(c, blocks) {
        int d0 = c * EMB_ROWS, d1 = d0 + EMB_ROWS < dim ? d0 + EMB_ROWS : dim;
        for (int d = d0; d < d1; d++) {
            float *row = y + (size_t)d * bp;
            for (int j = 0; j < n; j++) {
                int pos = io->pos0 + j % io->seq_len;
                row[j] = e->wte[(size_t)io->tokens[j] * dim + d] + e->wpe[(size_t)pos * dim + d];
            }
            for (int j = n; j < bp; j++) row[j] = 0.0f;
        }
        team_chunk_done();
    }
    return blocks;
}

static int emb_backward(const layer *ly, const layer_io *io)
{
    const embedding *e = emb_of(ly);
    int dim = ly->out, bp = io->bp, n = io->n, blocks = row_blocks(dim);
    /* A tied head has written wte's gradient already: add to it. */
    float *gte = io->grad[0], *gpe = io->grad[1];
    const float *dy = io->out->grad;
    TEAM_FOR(c, blocks) {
        int d0 = c * EMB_ROWS, d1 = d0 + EMB_ROWS < dim ? d0 + EMB_ROWS : dim;
        if (!e->tied)
            for (int v = 0; v < e->vocab; v++)
                for (int d = d0; d < d1; d++) gte[(size_t)v * dim + d] = 0.0f;
        for (int p = 0; p < e->context; p++)
            for (int d = d0; d < d1; d++) gpe[(size_t)p * dim + d] = 0.0f;
        for (int d = d0; d < d1; d++) {
            const float *row = dy + (size_t)d * bp;
            for (int j = 0; j < n; j++) {
                int pos = io->pos0 + j % io->seq_len;
                gte[(size_t)io->tokens[j] * dim + d] += row[j];
                gpe[(size_t)pos * dim + d] += row[j];
            }
        }
        team_chunk_done();
    }
    return blocks;
}

static param table_param(embedding *e, const char *what, float **values, int rows)
{
    /* nanoGPT decays every 2-D parameter, embeddings too */
    return param_dense(e->base.name, what, rows, e->base.out, values, 1);
}

/* wte first: a tied head finds it as the layer's first parameter. */
static int emb_params(layer *ly, param *out)
{
    embedding *e = (embedding *)ly;
    out[0] = table_param(e, "wte", &e->wte, e->vocab);
    out[1] = table_param(e, "wpe", &e->wpe, e->context);
    return 2;
}

static void emb_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    (void)f;
    const embedding *e = emb_of(ly);
    int64_t floats = ((int64_t)e->vocab + e->context) * ly->out;
    *out = (layer_shape){ly->in, ly->out, 4 * floats, floats, 0};
}

static void emb_info(const layer *ly, rw_layer_info *out)
{
    const embedding *e = emb_of(ly);
    out->nonzeros = 0;
    out->bytes = out->dense_bytes = 4 * ((int64_t)e->vocab + e->context) * ly->out;
}

static void emb_describe(const layer *ly, json_t *entry)
{
    json_object_set_new(entry, "vocab", json_integer(emb_of(ly)->vocab));
    json_object_set_new(entry, "context", json_integer(emb_of(ly)->context));
}

static rw_status emb_save(const layer *ly, st_writer *w, const char *path)
{
    (void)path;
    const embedding *e = emb_of(ly);
    char name[LAYER_NAME_CAP + 16];
    int64_t te[2] = {e->vocab, ly->out}, pe[2] = {e->context, ly->out};
    snprintf(name, sizeof name, "%s.wte", ly->name);
    rw_status st = st_writer_add(w, name, ST_F32, 2, te, e->wte);
    snprintf(name, sizeof name, "%s.wpe", ly->name);
    if (st == RW_OK) st = st_writer_add(w, name, ST_F32, 2, pe, e->wpe);
    return st;
}

static rw_status load_table(const layer *ly, const st_file *f, const char *path, const char *what,
                            int rows, float **out)
{
    char name[LAYER_NAME_CAP + 16];
    snprintf(name, sizeof name, "%s.%s", ly->name, what);
    const st_tensor *t;
    rw_status st = linear_want_tensor(f, path, name, ST_F32, 2, rows, ly->out, &t);
    if (st != RW_OK) return st;
    if (!(*out = rw_alloc(t->nbytes)))
        return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, name);
    memcpy(*out, t->data, t->nbytes);
    for (int64_t k = 0; k < t->count; k++)
        if (!isfinite((*out)[k]))
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value at %lld", path, name,
                           (long long)k);
    return RW_OK;
}

static rw_status emb_load(layer *ly, const st_file *f, const char *path)
{
    embedding *e = (embedding *)ly;
    rw_status st = load_table(ly, f, path, "wte", e->vocab, &e->wte);
    return st == RW_OK ? load_table(ly, f, path, "wpe", e->context, &e->wpe) : st;
}

static int emb_owns(const layer *ly, const char *name)
{
    size_t n = strlen(ly->name);
    return strncmp(name, ly->name, n) == 0 && name[n] == '.' &&
           (strcmp(name + n + 1, "wte") == 0 || strcmp(name + n + 1, "wpe") == 0);
}

static void emb_destroy(layer *ly)
{
    embedding *e = (embedding *)ly;
    rw_free(e->wte);
    rw_free(e->wpe);
    free(e);
}

static const layer_ops embedding_ops = {
    .kind = "embedding",
    .forward = emb_forward,
    .backward = emb_backward,
    .forward_vector = emb_forward,
    .params = emb_params,
    .shape = emb_shape,
    .info = emb_info,
    .describe = emb_describe,
    .save = emb_save,
    .load = emb_load,
    .owns_tensor = emb_owns,
    .destroy = emb_destroy,
};

static embedding *emb_alloc(const char *name, int vocab, int context, int dim)
{
    embedding *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    layer *b = &e->base;
    b->ops = &embedding_ops;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->in = 0;
    b->out = dim;
    b->act = RW_ACT_NONE;
    b->inputs[0] = 0;
    b->n_inputs = 1;
    b->output = 1;
    e->vocab = vocab;
    e->context = context;
    return e;
}

layer *embedding_new(const char *name, int vocab, int context, int dim)
{
    embedding *e = emb_alloc(name, vocab, context, dim);
    if (e) {
        e->wte = rw_alloc(sizeof(float) * (size_t)vocab * dim);
        e->wpe = rw_alloc(sizeof(float) * (size_t)context * dim);
    }
    if (!e || !e->wte || !e->wpe) {
        if (e) emb_destroy(&e->base);
        rw_fail(RW_ERR_NO_MEMORY, "out of memory for the embeddings %s (%d tokens, %d positions, "
                "%d features)", name, vocab, context, dim);
        return NULL;
    }
    return &e->base;
}

int embedding_context(const layer *ly) { return emb_of(ly)->context; }
void embedding_mark_tied(layer *ly) { ((embedding *)ly)->tied = 1; }
const float *embedding_wte(const layer *ly) { return emb_of(ly)->wte; }
int embedding_vocab(const layer *ly) { return emb_of(ly)->vocab; }
int is_embedding(const layer *ly) { return ly->ops == &embedding_ops; }

static rw_status emb_from_meta(const json_t *entry, const layer_meta *m, const char *path,
                               layer **out)
{
    json_int_t vocab = 0, context = 0;
    if (json_unpack((json_t *)entry, "{s:I, s:I}", "vocab", &vocab, "context", &context) != 0 ||
        vocab < 1 || vocab > EMBEDDING_MAX_VOCAB || context < 1 || context > EMBEDDING_MAX_CONTEXT)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s of kind embedding needs integers vocab in [1, "
                       "%d] and context in [1, %d]", path, m->name, EMBEDDING_MAX_VOCAB,
                       EMBEDDING_MAX_CONTEXT);
    embedding *e = emb_alloc(m->name, (int)vocab, (int)context, m->out);
    if (!e) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    e->base.inputs[0] = 0;
    e->base.output = m->index + 1;
    *out = &e->base;
    return RW_OK;
}

const layer_kind embedding_kind = {"embedding", emb_from_meta};
