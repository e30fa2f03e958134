/* Causal multi-head self-attention ("Attention Is All You Need", Vaswani
 * et al. 2017, as GPT-2 uses it), dense: the reference every sparse
 * pattern is checked against. The input is the fused projection qkv
 * [3·dim][bp] (rows 0..dim the queries, then the keys, then the values,
 * heads of dim/heads consecutive rows each); the output y [dim][bp].
 * Columns are sequences of seq_len tokens; token t of a sequence attends
 * to tokens 0..t of it:
 *   S = Q Kᵀ / √hd,  P = softmax over s ≤ t,  Y = P V           (per head)
 * and backward
 *   dV = Pᵀ dY,  dP = dY Vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),
 *   dQ = dS K / √hd,  dK = dSᵀ Q / √hd.
 * Each (sequence, head) pair is one chunk: it gathers its Q, K, V into
 * token-major blocks and runs the products through sgemm; P stays in the
 * workspace's scratch from forward to backward. Every pair writes its own
 * entries, so results do not depend on the threads.
 *
 * One token at a time (forward_vector, generation): the keys and values of
 * the positions before pos0 are kept in the scratch (a KV cache); the new
 * token's are added at pos0 and its query attends to all of them. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/team.h"
#include "nn/attention.h"

typedef struct {
    layer base;
    int heads, context;
} attention;

static const attention *att_of(const layer *ly) { return (const attention *)ly; }

/* Work floats of one (sequence, head) pair: Q, K, V, dY, dQ, dK, dV of T
 * × hd each and dP of T × T. */
static int64_t pair_work(int T, int hd) { return 7 * (int64_t)T * hd + (int64_t)T * T; }

static int64_t att_scratch_floats(const layer *ly, int bp)
{
    const attention *a = att_of(ly);
    int dim = ly->out, T = a->context, hd = dim / a->heads;
    if (bp == 1) /* generation: the cache of keys and values, and one row of scores */
        return 2 * (int64_t)T * dim + T;
    /* P for every pair (at most bp / T sequences of T, or fewer longer
     * ones: nseq · heads · T² ≤ bp · heads · T), and one work area per
     * thread. */
    return (int64_t)bp * a->heads * T + (int64_t)omp_get_max_threads() * pair_work(T, hd);
}

/* Rows r0.. of [rows][bp] at columns c0 .. c0 + T into a T × hd block. */
static void gather(const float *src, int bp, int r0, int c0, int T, int hd, float *dst)
{
    for (int d = 0; d < hd; d++) {
        const float *row = src + (size_t)(r0 + d) * bp + c0;
        for (int t = 0; t < T; t++) dst[(size_t)t * hd + d] = row[t];
    }
}

static void scatter(const float *src, int bp, int r0, int c0, int T, int hd, float *dst, int add)
{
    for (int d = 0; d < hd; d++) {
        float *row = dst + (size_t)(r0 + d) * bp + c0;
        for (int t = 0; t < T; t++) row[t] = add ? row[t] + src[(size_t)t * hd + d] : src[(size_t)t * hd + d];
    }
}

/* Row t of S (scaled) to causal softmax in place: positions > t get 0. */
static void causal_softmax_row(float *row, int t, int T)
{
    float best = row[0];
    for (int s = 1; s <= t; s++) best = row[s] > best ? row[s] : best;
    double sum = 0;
    for (int s = 0; s <= t; s++) sum += row[s] = expf(row[s] - best);
    float inv = (float)(1.0 / sum);
    for (int s = 0; s <= t; s++) row[s] *= inv;
    for (int s = t + 1; s < T; s++) row[s] = 0.0f;
}

static float *pair_buffer(const layer_io *io, const attention *a, int64_t p_floats, int T, int hd,
                          float **own)
{
    int id = omp_get_thread_num();
    *own = NULL;
    int64_t slots = (io->scratch_len - p_floats) / pair_work(T, hd);
    if (id < slots) return io->scratch + p_floats + (int64_t)id * pair_work(T, hd);
    /* More threads than when the workspace was made: a buffer of its own. */
    (void)a;
    *own = malloc(sizeof(float) * (size_t)pair_work(T, hd));
    RW_ASSERT(*own != NULL, "out of memory for attention's work buffer of layer %s",
              a->base.name);
    return *own;
}

static int att_forward(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    int dim = ly->out, H = a->heads, hd = dim / H, T = io->seq_len, bp = io->bp;
    int nseq = io->n / T, pairs = nseq * H;
    int64_t p_floats = (int64_t)pairs * T * T;
    const float *qkv = io->in[0]->data;
    float *y = io->out->pre, scale = 1.0f / sqrtf((float)hd);
    TEAM_FOR(c, pairs + 1) {
        if (c == pairs) { /* the padding columns */
            for (int d = 0; d < dim; d++)
                for (int j = io->n; j < bp; j++) y[(size_t)d * bp + j] = 0.0f;
            team_chunk_done();
            continue;
        }
        int seq = c / H, h = c % H, c0 = seq * T;
        float *own, *w = pair_buffer(io, a, p_floats, T, hd, &own);
        float *Q = w, *K = Q + T * hd, *V = K + T * hd, *Y = V + T * hd;
        float *P = io->scratch + (int64_t)c * T * T;
        gather(qkv, bp, h * hd, c0, T, hd, Q);
        gather(qkv, bp, dim + h * hd, c0, T, hd, K);
        gather(qkv, bp, 2 * dim + h * hd, c0, T, hd, V);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, Q, hd, K, hd, 0.0f,
                    P, T);
        for (int t = 0; t < T; t++) causal_softmax_row(P + (size_t)t * T, t, T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, V, hd, 0.0f,
                    Y, hd);
        scatter(Y, bp, h * hd, c0, T, hd, y, 0);
        free(own);
        team_chunk_done();
    }
    return pairs + 1;
}

static int att_backward(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    int dim = ly->out, H = a->heads, hd = dim / H, T = io->seq_len, bp = io->bp;
    int nseq = io->n / T, pairs = nseq * H;
    int64_t p_floats = (int64_t)pairs * T * T;
    const tensor *in = io->in[0];
    const float *qkv = in->data, *dy = io->out->grad;
    float scale = 1.0f / sqrtf((float)hd);
    int add = io->accumulate[0];
    TEAM_FOR(c, pairs + 1) {
        if (c == pairs) {
            if (!add)
                for (int d = 0; d < 3 * dim; d++)
                    for (int j = io->n; j < bp; j++) in->grad[(size_t)d * bp + j] = 0.0f;
            team_chunk_done();
            continue;
        }
        int seq = c / H, h = c % H, c0 = seq * T;
        float *own, *w = pair_buffer(io, a, p_floats, T, hd, &own);
        float *Q = w, *K = Q + T * hd, *V = K + T * hd, *dY = V + T * hd;
        float *dQ = dY + T * hd, *dK = dQ + T * hd, *dV = dK + T * hd, *dP = dV + T * hd;
        const float *P = io->scratch + (int64_t)c * T * T;
        gather(qkv, bp, h * hd, c0, T, hd, Q);
        gather(qkv, bp, dim + h * hd, c0, T, hd, K);
        gather(qkv, bp, 2 * dim + h * hd, c0, T, hd, V);
        gather(dy, bp, h * hd, c0, T, hd, dY);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dY, hd, 0.0f,
                    dV, hd);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dY, hd, V, hd, 0.0f,
                    dP, T);
        for (int t = 0; t < T; t++) { /* dP becomes dS */
            const float *p = P + (size_t)t * T;
            float *g = dP + (size_t)t * T;
            double dot = 0;
            for (int s = 0; s <= t; s++) dot += (double)p[s] * g[s];
            for (int s = 0; s <= t; s++) g[s] = p[s] * (g[s] - (float)dot);
            for (int s = t + 1; s < T; s++) g[s] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, dP, T, K, hd, 0.0f,
                    dQ, hd);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, dP, T, Q, hd, 0.0f,
                    dK, hd);
        scatter(dQ, bp, h * hd, c0, T, hd, in->grad, add);
        scatter(dK, bp, dim + h * hd, c0, T, hd, in->grad, add);
        scatter(dV, bp, 2 * dim + h * hd, c0, T, hd, in->grad, add);
        free(own);
        team_chunk_done();
    }
    return pairs + 1;
}

/* One token at position pos0: its key and value join the cache, its query
 * attends to positions 0..pos0. Heads are the chunks. */
static int att_forward_vector(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    int dim = ly->out, H = a->heads, hd = dim / H, T = a->context, t = io->pos0;
    const float *qkv = io->in[0]->data;
    float *kc = io->scratch, *vc = kc + (size_t)T * dim, *y = io->out->pre;
    float scale = 1.0f / sqrtf((float)hd);
    TEAM_FOR(one, 1) {
        memcpy(kc + (size_t)t * dim, qkv + dim, sizeof(float) * (size_t)dim);
        memcpy(vc + (size_t)t * dim, qkv + 2 * dim, sizeof(float) * (size_t)dim);
        team_chunk_done();
    }
    team_phase(1);
    TEAM_FOR(h, H) {
        float scores[ATTENTION_MAX_CONTEXT_STACK], *p = scores;
        if (t >= ATTENTION_MAX_CONTEXT_STACK) {
            p = malloc(sizeof(float) * (size_t)(t + 1));
            RW_ASSERT(p != NULL, "out of memory for the scores of layer %s", ly->name);
        }
        const float *q = qkv + h * hd;
        float best = -INFINITY;
        for (int s = 0; s <= t; s++) {
            const float *k = kc + (size_t)s * dim + h * hd;
            float dot = 0;
            for (int d = 0; d < hd; d++) dot += q[d] * k[d];
            p[s] = dot * scale;
            best = p[s] > best ? p[s] : best;
        }
        double sum = 0;
        for (int s = 0; s <= t; s++) sum += p[s] = expf(p[s] - best);
        float inv = (float)(1.0 / sum);
        for (int d = 0; d < hd; d++) y[h * hd + d] = 0.0f;
        for (int s = 0; s <= t; s++) {
            const float *v = vc + (size_t)s * dim + h * hd;
            float ps = p[s] * inv;
            for (int d = 0; d < hd; d++) y[h * hd + d] += ps * v[d];
        }
        if (p != scores) free(p);
        team_chunk_done();
    }
    return H;
}

static int att_params(layer *ly, param *out)
{
    (void)ly;
    (void)out;
    return 0;
}

static void att_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    (void)f;
    *out = (layer_shape){ly->in, ly->out, 0, 0, 0};
}

static void att_info(const layer *ly, rw_layer_info *out)
{
    (void)ly;
    out->nonzeros = 0;
    out->bytes = out->dense_bytes = 0;
}

static void att_describe(const layer *ly, json_t *entry)
{
    json_object_set_new(entry, "heads", json_integer(att_of(ly)->heads));
    json_object_set_new(entry, "context", json_integer(att_of(ly)->context));
}

static rw_status att_save(const layer *ly, st_writer *w, const char *path)
{
    (void)ly;
    (void)w;
    (void)path;
    return RW_OK;
}

static rw_status att_load(layer *ly, const st_file *f, const char *path)
{
    (void)ly;
    (void)f;
    (void)path;
    return RW_OK;
}

static int att_owns(const layer *ly, const char *name)
{
    (void)ly;
    (void)name;
    return 0;
}

/* The model's positions (its token embedding's) must fit the scratch and
 * the cache, which hold this layer's context. */
static rw_status att_link(layer *ly, rw_model *m)
{
    int positions = rw_model_context(m);
    if (positions > att_of(ly)->context)
        return rw_fail(RW_ERR_FORMAT, "layer %s attends over %d positions but the model's "
                       "embeddings have %d", ly->name, att_of(ly)->context, positions);
    return RW_OK;
}

static void att_destroy(layer *ly) { free(ly); }

static const layer_ops attention_ops = {
    .kind = "attention",
    .forward = att_forward,
    .backward = att_backward,
    .forward_vector = att_forward_vector,
    .params = att_params,
    .shape = att_shape,
    .info = att_info,
    .describe = att_describe,
    .save = att_save,
    .load = att_load,
    .owns_tensor = att_owns,
    .scratch_floats = att_scratch_floats,
    .link = att_link,
    .destroy = att_destroy,
    .accumulates = 1,
};

layer *attention_new(const char *name, int dim, int heads, int context, int input, int index)
{
    attention *a = calloc(1, sizeof *a);
    if (!a) {
        rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", name);
        return NULL;
    }
    layer *b = &a->base;
    b->ops = &attention_ops;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->in = 3 * dim;
    b->out = dim;
    b->act = RW_ACT_NONE;
    b->inputs[0] = input;
    b->n_inputs = 1;
    b->output = index + 1;
    a->heads = heads;
    a->context = context;
    return b;
}

static rw_status att_from_meta(const json_t *entry, const layer_meta *m, const char *path,
                               layer **out)
{
    json_int_t heads = 0, context = 0;
    if (json_unpack((json_t *)entry, "{s:I, s:I}", "heads", &heads, "context", &context) != 0 ||
        heads < 1 || context < 1 || context > ATTENTION_MAX_CONTEXT || m->out % heads != 0 ||
        m->in != 3 * m->out)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s of kind attention needs integers heads "
                       "dividing its %d outputs and context in [1, %d], and 3 x %d inputs", path,
                       m->name, m->out, ATTENTION_MAX_CONTEXT, m->out);
    *out = attention_new(m->name, m->out, (int)heads, (int)context, m->index, m->index);
    return *out ? RW_OK : rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
}

int is_attention(const layer *ly) { return ly->ops == &attention_ops; }
int attention_heads(const layer *ly) { return att_of(ly)->heads; }
int attention_context(const layer *ly) { return att_of(ly)->context; }

const layer_kind attention_kind = {"attention", att_from_meta};
