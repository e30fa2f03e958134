/* What an attention layer's heads attend to, row by row, outside the
 * passes: the probabilities behind `rewire plot --attention`, and the
 * dense attention mass from which sparsed chooses each head's blocks
 * (nn/attn_sparsed.h). Scalar and in float64 where it sums: these run on
 * a few sequences, never inside training. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/attention.h"
#include "nn/attn_core.h"
#include "nn/attn_learned.h"
#include "nn/network.h"

/* Head h of the sequence at columns c0 .. c0 + T of qkv [3·dim][bp], under
 * pattern p (its head table from the layer): for each query t, the ranges
 * it sees and the probabilities of their keys in order. */
typedef void (*row_fn)(void *user, int t, const att_range *r, int nr, const double *prob);


/* The keys of ranges c[0..n) that row t sees (the core keeps each row of
 * a tile to positions <= t within the pattern's window), as ranges into
 * out (at most 2n); returns their count. */
static int row_share(const att_range *c, int n, int t, att_limit lim, att_range *out)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        int s0 = c[i].s0, s1 = c[i].s1 <= t + 1 ? c[i].s1 : t + 1;
        if (!lim.window) {
            if (s0 < s1) out[m++] = (att_range){s0, s1};
            continue;
        }
        int from = t - lim.window + 1;
        int a1 = s1 < lim.sink ? s1 : lim.sink; /* the sinks */
        if (s0 < a1) out[m++] = (att_range){s0, a1};
        int b0 = s0 > lim.sink ? s0 : lim.sink; /* the window */
        if (b0 < from) b0 = from;
        if (b0 < s1) {
            if (m > 0 && out[m - 1].s1 == b0) out[m - 1].s1 = s1;
            else out[m++] = (att_range){b0, s1};
        }
    }
    return m;
}

static rw_status head_rows(const layer *ly, const att_pattern *p, const float *qkv, int bp, int c0,
                           int T, int h, row_fn row, void *user)
{
    const att_pattern_ops *ops = att_pattern_ops_of(p);
    int dim = ly->out, H = attention_heads(ly), hd = dim / H;
    const att_sparsed *sp = attention_sparsed(ly);
    if (p->kind == ATT_SPARSED && !sp)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s attends sparsed but has no chosen blocks",
                       ly->name);
    /* A stateful pattern's tensors; its extra key column widens K and V
     * to hx, as the core runs it. */
    const att_state_ops *so = ops->state;
    float *state[ATT_STATE_TENSORS] = {NULL};
    for (int k = 0; so && k < so->n_tensors; k++) {
        const char *what = so->tensor(p, k, H, hd).name;
        if (!(state[k] = attention_state(ly, what)))
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s attends %s but has no %s", ly->name,
                           ops->name, what);
    }
    int hx = hd + (so && so->extra_column);
    int means = ops->uses_block_means ? T / p->block + 1 : 0;
    int max_r = att_max_ranges(p, T);
    int64_t work = ops->work_floats(p, T, hd);
    /* K, V, the block means, q, q0, the pattern's work, and each key's state */
    float *K = malloc(sizeof(float) * ((size_t)2 * T * hx + (size_t)means * hd + 2 * hx + work + T + 1));
    att_range *r = malloc(sizeof *r * (size_t)(3 * max_r)); /* the choice, then row t's share */
    double *prob = malloc(sizeof(double) * (size_t)T);
    if (!K || !r || !prob) {
        free(K), free(r), free(prob);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for the attention of %d positions", T);
    }
    float *V = K + (size_t)T * hx, *M = V + (size_t)T * hx, *q = M + (size_t)means * hd;
    float *q0 = q + hx, *w = q0 + hx, *m = w + work;
    for (int d = 0; d < hd; d++)
        for (int s = 0; s < T; s++) {
            K[(size_t)s * hx + d] = qkv[(size_t)(dim + h * hd + d) * bp + c0 + s];
            V[(size_t)s * hx + d] = qkv[(size_t)(2 * dim + h * hd + d) * bp + c0 + s];
        }
    att_kv kv = {.k = K, .v = V, .ld = hx, .hd = hx, .means = means ? M : NULL, .ldm = hd,
                 .head = p->kind == ATT_SPARSED ? &sp->head[h] : NULL};
    for (int b = 0; means && b < T / p->block; b++) att_block_mean(&kv, b, p->block, M, hd);
    float scale = 1.0f / sqrtf((float)hd);
    /* the per-key state as the decoding cache keeps it: the same choice
     * as the full pass (nn/attn_learned.h) */
    if (so) {
        for (int s = 0; s < T; s++) {
            float *k = K + (size_t)s * hx, *v = V + (size_t)s * hx;
            float col = so->key_state(p, state, h, hd, scale, k, v, m + s);
            if (hx > hd) k[hd] = col, v[hd] = 0.0f;
        }
        so->view(p, state, h, hd, m, 1, &kv);
    }
    if (hx > hd) q[hd] = q0[hd] = 1.0f; /* the extra column's query */
    for (int t = 0; t < T; t++) {
        /* A pattern that chooses per tile chooses with the query at the
         * tile's first position; the ranges a tile's choice gives up to
         * t + 1 are what row t sees (as the core keeps each row). */
        int t0 = ops->tile_ranges ? t - t % ops->tile_rows(p) : t;
        for (int d = 0; d < hd; d++) {
            q[d] = qkv[(size_t)(h * hd + d) * bp + c0 + t];
            q0[d] = qkv[(size_t)(h * hd + d) * bp + c0 + t0];
        }
        int nc = ops->tile_ranges ? ops->tile_ranges(p, &kv, q0, t0, t + 1, r, w)
                                  : ops->ranges(p, &kv, q, t, r, w),
            nr = row_share(r, nc, t, att_pattern_limit(p), r + max_r), n = 0;
        r += max_r;
        double best = -INFINITY, sum = 0;
        for (int i = 0; i < nr; i++) /* the scores as the core computes them */
            for (int s = r[i].s0; s < r[i].s1; s++) {
                prob[n] = scale * att_dot(q, K + (size_t)s * hx, hx);
                best = fmax(best, prob[n++]);
            }
        for (int j = 0; j < n; j++) sum += prob[j] = exp(prob[j] - best);
        for (int j = 0; j < n; j++) prob[j] /= sum;
        row(user, t, r, nr, prob);
        r -= max_r;
    }
    free(K), free(r), free(prob);
    return RW_OK;
}

/* Into [T][T] floats: the probability or -1. */
typedef struct {
    float *p;
    int T;
} map_rows;

static void to_map(void *user, int t, const att_range *r, int nr, const double *prob)
{
    map_rows *m = user;
    float *row = m->p + (size_t)t * m->T;
    for (int s = 0; s < m->T; s++) row[s] = -1.0f;
    for (int i = 0, j = 0; i < nr; i++)
        for (int s = r[i].s0; s < r[i].s1; s++) row[s] = (float)prob[j++];
}

/* Into the mass of (query block, key block) pairs [nb][nb]. */
typedef struct {
    double *mass;
    int nb, block;
} mass_rows;

static void to_mass(void *user, int t, const att_range *r, int nr, const double *prob)
{
    mass_rows *m = user;
    double *row = m->mass + (size_t)(t / m->block) * m->nb;
    for (int i = 0, j = 0; i < nr; i++)
        for (int s = r[i].s0; s < r[i].s1; s++) row[s / m->block] += prob[j++];
}

rw_status attention_sparsed_mass(const layer *ly, int block, const float *qkv, int bp, int c0,
                                 int T, double *mass)
{
    int H = attention_heads(ly), nb = (attention_context(ly) + block - 1) / block;
    att_pattern dense = {.kind = ATT_DENSE};
    rw_status st = RW_OK;
    /* heads apart: each sums its own rows in order, whatever the threads */
#pragma omp parallel for schedule(dynamic, 1)
    for (int h = 0; h < H; h++) {
        mass_rows m = {mass + (size_t)h * nb * nb, nb, block};
        rw_status s = head_rows(ly, &dense, qkv, bp, c0, T, h, to_mass, &m);
        if (s != RW_OK) {
#pragma omp critical
            st = s;
        }
    }
    /* the message was left on another thread */
    return st == RW_OK ? RW_OK : rw_fail(st, "out of memory for the attention of layer %s over %d "
                                             "positions", ly->name, T);
}

rw_status attention_choose_sparsed(layer *ly, const att_pattern *p, const double *mass,
                                   double *covered)
{
    int H = attention_heads(ly);
    att_sparsed *s = att_sparsed_new(H, attention_context(ly), p->block, p->keep);
    if (!s) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for the sparsed blocks of %s", ly->name);
    double sum = 0;
    for (int h = 0; h < H; h++)
        sum += att_sparsed_choose(s, h, mass + (size_t)h * s->nb * s->nb);
    rw_status st = att_sparsed_index(s);
    if (st != RW_OK) {
        att_sparsed_free(s);
        return st;
    }
    attention_set_sparsed(ly, s);
    attention_set_pattern(ly, p);
    if (covered) *covered = sum / H;
    return RW_OK;
}

/* The index of the model's attn-th attention layer, or -1. */
static int nth_attention(const rw_model *m, int attn)
{
    for (int l = 0, k = 0; l < m->n_layers; l++)
        if (is_attention(m->layers[l]) && k++ == attn) return l;
    return -1;
}

int rw_model_attention_layers(const rw_model *model, int *heads)
{
    int n = 0;
    for (int l = 0; l < model->n_layers; l++)
        if (is_attention(model->layers[l])) {
            if (n++ == 0 && heads) *heads = attention_heads(model->layers[l]);
        }
    if (n == 0 && heads) *heads = 0;
    return n;
}

rw_status rw_model_attention_map(const rw_model *model, const int32_t *tokens, int n, int attn,
                                 int head, float *p)
{
    int l = nth_attention(model, attn), count = rw_model_attention_layers(model, NULL);
    if (l < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "attention layer %d: the model has %d (0 to %d)",
                       attn, count, count - 1);
    const layer *ly = model->layers[l];
    if (head < 0 || head >= attention_heads(ly))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "head %d: layer %s has %d heads (0 to %d)", head,
                       ly->name, attention_heads(ly), attention_heads(ly) - 1);
    int ctx = rw_model_context(model);
    if (n < 1 || n > ctx)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a sequence of %d tokens, expected 1 to the "
                       "model's context %d", n, ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= rw_model_classes(model))
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "token %d at position %d is outside the "
                           "model's %d", tokens[i], i, rw_model_classes(model));
    const att_pattern *pat = attention_pattern(ly);
    if (pat->kind == ATT_SPARSED && !attention_sparsed(ly))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s attends sparsed but has no chosen blocks",
                       ly->name);
    workspace ws;
    rw_status st = workspace_init(&ws, model, n, 0);
    if (st != RW_OK) return st;
    ws.tokens = tokens, ws.n = n, ws.seq_len = n, ws.pos0 = 0;
    network_forward(model, &ws);
    layer_io io = workspace_io(&ws, model, l);
    map_rows m = {p, n};
    st = head_rows(ly, pat, io.in[0]->data, ws.bp, 0, n, head, to_map, &m);
    workspace_free(&ws);
    return st;
}
