/* Mixture of experts in place of a transformer block's MLP.
 *
 * Gates: a softmax router with top-k ("Outrageously Large Neural
 * Networks: The Sparsely-Gated Mixture-of-Experts Layer", Shazeer et al.
 * 2017), with the load-balancing loss and capacity factor of "Switch
 * Transformers: Scaling to Trillion Parameter Models with Simple and
 * Efficient Sparsity" (Fedus et al. 2021) and the router z-loss of
 * "ST-MoE: Designing Stable and Transferable Sparse Expert Models" (Zoph
 * et al. 2022); or top-1 to the nearest centroid, the centroids moved by
 * k-means steps instead of gradients, as in "Towards Foundational Models
 * for Dynamical System Reconstruction: Hierarchical Meta-Learning via
 * Mixture of Experts" (MixER).
 *
 * For k = 2 the two chosen probabilities are renormalised to sum to 1
 * (GShard's and Mixtral's top-2); for k = 1 the gate is the chosen
 * probability itself (Switch), so one expert with k = 1 computes exactly
 * the dense MLP.
 *
 * The tokens each expert gets are gathered into a buffer of their own
 * ([dim][n_e] padded to 8 columns), the expert's two maps (ordinary CSR or
 * dense linear layers) run once over it, and the outputs are scattered
 * back, weighted by the gate: no per-token products and no [E][tokens]
 * dense product. All passes are team phases (kernels/team.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/team.h"
#include "nn/moe_internal.h"

#define COLS_PER_CHUNK 64

/* What the forward pass leaves for the backward pass, at the start of
 * the scratch. */
typedef struct {
    int n;                        /* valid tokens */
    int kept[MOE_MAX_EXPERTS];    /* tokens each expert computed */
    int routed[MOE_MAX_EXPERTS];  /* tokens the gate sent to it */
    int off[MOE_MAX_EXPERTS];     /* its first column in the gathered buffers */
    int cols[MOE_MAX_EXPERTS];    /* its padded column count */
    int dropped;
    float f[MOE_MAX_EXPERTS];     /* fraction of assignments (balance loss) */
    double balance_loss, z_loss;  /* unscaled */
} moe_route;

/* The scratch, carved from one float array (every part 64-byte aligned). */
typedef struct {
    moe_route *r;
    int32_t *choice_e, *choice_i; /* [k][bp]: expert and position within it, -1 dropped */
    int32_t *tok;                 /* [cols] the token of each gathered column */
    float *gate;                  /* [cols] its gate weight */
    float *dg;                    /* [cols] d loss / d gate */
    float *probs;                 /* [E][bp] softmax probabilities or squared distances */
    float *lse;                   /* [bp] log-sum-exp of the logits */
    float *dlog;                  /* [E][bp] d loss / d logits */
    float *x, *hpre, *h, *dh, *y, *dy, *dx; /* [rows][cols] expert by expert */
} moe_scratch;


static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

/* Gathered columns at most: each expert adds at most 8 of padding. */
static int64_t max_cols(const moe_config *c, int bp)
{
    return (int64_t)c->top_k * bp + 8 * (int64_t)c->experts;
}

static int64_t scratch_layout(const moe_layer *m, int bp, float *base, moe_scratch *s)
{
    const moe_config *c = &m->cfg;
    int64_t cols = max_cols(c, bp), C = m->base.in, H = c->hidden, E = c->experts, at = 0;
#define TAKE(field, type, count)                                                                   \
    do {                                                                                           \
        if (s) s->field = (type *)(base + at);                                                     \
        at += round16(count);                                                                      \
    } while (0)
    if (s) s->r = (moe_route *)base;
    at += round16((int64_t)(sizeof(moe_route) + sizeof(float) - 1) / (int64_t)sizeof(float));
    TAKE(choice_e, int32_t, (int64_t)c->top_k * bp);
    TAKE(choice_i, int32_t, (int64_t)c->top_k * bp);
    TAKE(tok, int32_t, cols);
    TAKE(gate, float, cols);
    TAKE(dg, float, cols);
    TAKE(probs, float, E * bp);
    TAKE(lse, float, bp);
    TAKE(dlog, float, E * bp);
    TAKE(x, float, C * cols);
    TAKE(hpre, float, H * cols);
    TAKE(h, float, H * cols);
    TAKE(dh, float, H * cols);
    TAKE(y, float, C * cols);
    TAKE(dy, float, C * cols);
    TAKE(dx, float, C * cols);
#undef TAKE
    return at;
}

int64_t moe_scratch_floats(const layer *ly, int bp)
{
    return scratch_layout(moe_of(ly), bp, NULL, NULL);
}

/* ---- Routing ------------------------------------------------------------ */

/* Router logits and softmax (or centroid distances) of tokens [j0, j1). */
static void score_tokens(const moe_layer *m, const float *x, int bp, int j0, int j1,
                         moe_scratch *s)
{
    int E = m->cfg.experts, C = m->base.in;
    for (int e = 0; e < E; e++) {
        float *row = s->probs + (size_t)e * bp;
        const float *w = m->gate_w + (size_t)e * C;
        for (int j = j0; j < j1; j++) row[j] = 0.0f;
        if (m->cfg.gate == MOE_GATE_SOFTMAX)
            for (int c = 0; c < C; c++) {
                const float *xr = x + (size_t)c * bp;
                for (int j = j0; j < j1; j++) row[j] += w[c] * xr[j];
            }
        else
            for (int c = 0; c < C; c++) {
                const float *xr = x + (size_t)c * bp;
                for (int j = j0; j < j1; j++) row[j] += (xr[j] - w[c]) * (xr[j] - w[c]);
            }
    }
    if (m->cfg.gate != MOE_GATE_SOFTMAX) return;
    for (int j = j0; j < j1; j++) {
        float mx = s->probs[j];
        for (int e = 1; e < E; e++) mx = fmaxf(mx, s->probs[(size_t)e * bp + j]);
        double sum = 0;
        for (int e = 0; e < E; e++) {
            float *p = &s->probs[(size_t)e * bp + j];
            *p = expf(*p - mx);
            sum += *p;
        }
        for (int e = 0; e < E; e++)
            s->probs[(size_t)e * bp + j] = (float)(s->probs[(size_t)e * bp + j] / sum);
        s->lse[j] = mx + (float)log(sum);
    }
}

/* Top-k choices, capacity, and the gathered columns' order (one thread). */
static void assign_tokens(const moe_layer *m, int n, int bp, moe_scratch *s)
{
    const moe_config *c = &m->cfg;
    int E = c->experts, K = c->top_k;
    moe_route *r = s->r;
    memset(r, 0, sizeof *r);
    r->n = n;
    int cap = c->capacity > 0 ? (int)ceil(c->capacity * n * K / E) : n;
    int softmax = c->gate == MOE_GATE_SOFTMAX;
    for (int j = 0; j < n; j++) {
        int pick[2] = {-1, -1};
        for (int k = 0; k < K; k++)
            for (int e = 0; e < E; e++) {
                if (e == pick[0]) continue;
                float v = s->probs[(size_t)e * bp + j];
                float best = pick[k] < 0 ? 0 : s->probs[(size_t)pick[k] * bp + j];
                if (pick[k] < 0 || (softmax ? v > best : v < best)) pick[k] = e;
            }
        for (int k = 0; k < K; k++) {
            s->choice_e[(size_t)k * bp + j] = pick[k];
            r->routed[pick[k]]++;
        }
    }
    /* First choices claim capacity before second ones, each in token
     * order: a token loses its second expert before anyone loses a first. */
    for (int k = 0; k < K; k++)
        for (int j = 0; j < n; j++) {
            int e = s->choice_e[(size_t)k * bp + j];
            int32_t *at = &s->choice_i[(size_t)k * bp + j];
            if (r->kept[e] < cap) *at = r->kept[e]++;
            else *at = -1, r->dropped++;
        }
    int off = 0;
    for (int e = 0; e < E; e++) {
        r->off[e] = off;
        r->cols[e] = rw_pad_batch(r->kept[e] > 0 ? r->kept[e] : 1);
        off += r->cols[e];
        for (int i = r->kept[e]; i < r->cols[e]; i++) {
            s->tok[r->off[e] + i] = -1;
            s->gate[r->off[e] + i] = 0.0f;
        }
    }
    for (int k = 0; k < K; k++)
        for (int j = 0; j < n; j++) {
            int e = s->choice_e[(size_t)k * bp + j], i = s->choice_i[(size_t)k * bp + j];
            if (i < 0) continue;
            float g = 1.0f;
            if (softmax && K == 1) g = s->probs[(size_t)e * bp + j];
            if (softmax && K == 2) {
                float p0 = s->probs[(size_t)s->choice_e[j] * bp + j];
                float p1 = s->probs[(size_t)s->choice_e[(size_t)bp + j] * bp + j];
                g = s->probs[(size_t)e * bp + j] / (p0 + p1);
            }
            s->tok[r->off[e] + i] = j;
            s->gate[r->off[e] + i] = g;
        }
    if (!softmax || n == 0) return;
    double bal = 0, z = 0;
    for (int e = 0; e < E; e++) {
        double pe = 0;
        for (int j = 0; j < n; j++) pe += s->probs[(size_t)e * bp + j];
        r->f[e] = (float)((double)r->routed[e] / ((double)n * K));
        bal += r->f[e] * (pe / n);
    }
    for (int j = 0; j < n; j++) z += (double)s->lse[j] * s->lse[j];
    r->balance_loss = E * bal;
    r->z_loss = z / n;
}

/* ---- The experts -------------------------------------------------------- */

/* Expert e's three tensors over its gathered columns. */
static void expert_tensors(const moe_layer *m, const moe_scratch *s, int e, tensor *x, tensor *h,
                           tensor *y)
{
    int C = m->base.in, H = m->cfg.hidden;
    size_t off = (size_t)s->r->off[e];
    *x = (tensor){.rows = C, .act = RW_ACT_NONE};
    x->data = x->pre = s->x + (size_t)C * off;
    x->grad = s->dx + (size_t)C * off;
    *h = (tensor){.rows = H, .act = RW_ACT_GELU};
    h->pre = s->hpre + (size_t)H * off;
    h->data = s->h + (size_t)H * off;
    h->grad = s->dh + (size_t)H * off;
    *y = (tensor){.rows = C, .act = RW_ACT_NONE};
    y->data = y->pre = s->y + (size_t)C * off;
    y->grad = s->dy + (size_t)C * off;
}

static layer_io expert_io(tensor *in, tensor *out, int cols, int n, float *const *grad)
{
    layer_io e;
    memset(&e, 0, sizeof e);
    e.in[0] = in;
    e.n_in = 1;
    e.out = out;
    e.bp = cols;
    e.n = n;
    e.grad = grad;
    e.seq_len = 1; /* gathered tokens are no longer sequences */
    return e;
}

int moe_forward(const layer *ly, const layer_io *io)
{
    const moe_layer *m = moe_of(ly);
    moe_scratch s;
    scratch_layout(m, io->bp, io->scratch, &s);
    int bp = io->bp, n = io->n < bp ? io->n : bp, E = m->cfg.experts, C = ly->in;
    const float *x = io->in[0]->data;
    int chunks = (n + COLS_PER_CHUNK - 1) / COLS_PER_CHUNK;
    TEAM_FOR(c, chunks) {
        int j0 = c * COLS_PER_CHUNK, j1 = j0 + COLS_PER_CHUNK < n ? j0 + COLS_PER_CHUNK : n;
        score_tokens(m, x, bp, j0, j1, &s);
        team_chunk_done();
    }
    team_phase(chunks);
    TEAM_FOR(one, 1) {
        assign_tokens(m, n, bp, &s);
        team_chunk_done();
    }
    team_phase(1);
    int rows = layer_row_chunks(C, bp);
    TEAM_FOR(c, rows) {
        int r0, r1;
        part_range(C, c, rows, &r0, &r1);
        for (int f = r0; f < r1; f++)
            for (int e = 0; e < E; e++) {
                const int32_t *tok = s.tok + s.r->off[e];
                float *dst = s.x + (size_t)C * s.r->off[e] + (size_t)f * s.r->cols[e];
                for (int i = 0; i < s.r->cols[e]; i++)
                    dst[i] = tok[i] >= 0 ? x[(size_t)f * bp + tok[i]] : 0.0f;
            }
        team_chunk_done();
    }
    team_phase(rows);
    for (int e = 0; e < E; e++) {
        tensor tx, th, ty;
        expert_tensors(m, &s, e, &tx, &th, &ty);
        layer_io up = expert_io(&tx, &th, s.r->cols[e], s.r->kept[e], NULL);
        const layer *mu = m->maps[2 * e], *md = m->maps[2 * e + 1];
        team_phase(mu->ops->forward(mu, &up));
        layer_io down = expert_io(&th, &ty, s.r->cols[e], s.r->kept[e], NULL);
        team_phase(md->ops->forward(md, &down));
    }
    float *out = io->out->pre;
    TEAM_FOR(c, rows) {
        int r0, r1;
        part_range(C, c, rows, &r0, &r1);
        for (int f = r0; f < r1; f++) {
            float *row = out + (size_t)f * bp;
            for (int j = 0; j < bp; j++) row[j] = 0.0f;
            for (int e = 0; e < E; e++) {
                const float *ye = s.y + (size_t)C * s.r->off[e] + (size_t)f * s.r->cols[e];
                const int32_t *tok = s.tok + s.r->off[e];
                const float *g = s.gate + s.r->off[e];
                for (int i = 0; i < s.r->kept[e]; i++) row[tok[i]] += g[i] * ye[i];
            }
        }
        team_chunk_done();
    }
    return rows;
}

/* d loss / d logits of tokens [j0, j1) from the gates' gradients, the
 * balance loss (its f held constant, as Switch does) and the z-loss. */
static void router_grad_tokens(const moe_layer *m, int bp, int j0, int j1, moe_scratch *s)
{
    const moe_config *c = &m->cfg;
    int E = c->experts, K = c->top_k, n = s->r->n;
    for (int j = j0; j < j1; j++) {
        double dp[MOE_MAX_EXPERTS] = {0};
        float dgk[2] = {0, 0}, p[2] = {0, 0};
        for (int k = 0; k < K; k++) {
            int e = s->choice_e[(size_t)k * bp + j], i = s->choice_i[(size_t)k * bp + j];
            dgk[k] = i >= 0 ? s->dg[s->r->off[e] + i] : 0.0f;
            p[k] = s->probs[(size_t)e * bp + j];
        }
        if (K == 1) dp[s->choice_e[j]] += dgk[0];
        else { /* g_k = p_k / S, S = p_0 + p_1 */
            double S = (double)p[0] + p[1], mean = (dgk[0] * p[0] + dgk[1] * p[1]) / S;
            for (int k = 0; k < 2; k++) dp[s->choice_e[(size_t)k * bp + j]] += (dgk[k] - mean) / S;
        }
        for (int e = 0; e < E; e++) dp[e] += (double)c->balance * E * s->r->f[e] / n;
        double dot = 0;
        for (int e = 0; e < E; e++) dot += dp[e] * s->probs[(size_t)e * bp + j];
        for (int e = 0; e < E; e++) {
            double pe = s->probs[(size_t)e * bp + j];
            s->dlog[(size_t)e * bp + j] =
                (float)(pe * (dp[e] - dot) + 2.0 * c->zloss / n * s->lse[j] * pe);
        }
    }
}

int moe_backward(const layer *ly, const layer_io *io)
{
    const moe_layer *m = moe_of(ly);
    moe_scratch s;
    scratch_layout(m, io->bp, io->scratch, &s);
    int bp = io->bp, E = m->cfg.experts, C = ly->in, n = s.r->n;
    int softmax = m->cfg.gate == MOE_GATE_SOFTMAX;
    const float *dy = io->out->grad, *x = io->in[0]->data;
    /* Gate gradients, and dY = g · dy over each expert's columns. */
    TEAM_FOR(e, E) {
        const moe_route *r = s.r;
        int cols = r->cols[e], kept = r->kept[e];
        const int32_t *tok = s.tok + r->off[e];
        const float *g = s.gate + r->off[e];
        float *dg = s.dg + r->off[e];
        for (int i = 0; i < cols; i++) dg[i] = 0.0f;
        for (int f = 0; f < C; f++) {
            const float *ye = s.y + (size_t)C * r->off[e] + (size_t)f * cols;
            float *dye = s.dy + (size_t)C * r->off[e] + (size_t)f * cols;
            const float *d = dy + (size_t)f * bp;
            for (int i = 0; i < kept; i++) {
                dg[i] += d[tok[i]] * ye[i];
                dye[i] = g[i] * d[tok[i]];
            }
            for (int i = kept; i < cols; i++) dye[i] = 0.0f;
        }
        moe_stats *st = m->stats;
        st->routed[e] += r->routed[e];
        st->kept[e] += kept;
        if (!softmax) { /* the k-means step's sums, applied after the optimizer step */
            for (int f = 0; f < C; f++) {
                double sum = 0;
                for (int i = 0; i < kept; i++) sum += x[(size_t)f * bp + tok[i]];
                m->km_sum[(size_t)e * C + f] += sum;
            }
            m->km_count[e] += kept;
        }
        if (e == 0) {
            int most = 0;
            for (int k = 0; k < E; k++) most = r->routed[k] > most ? r->routed[k] : most;
            st->batches++;
            st->tokens += n;
            st->dropped += r->dropped;
            st->balance_loss += r->balance_loss;
            st->z_loss += r->z_loss;
            st->busiest += n > 0 ? (double)most * E / ((double)n * m->cfg.top_k) : 0.0;
        }
        team_chunk_done();
    }
    team_phase(E);
    /* A centroid no token chose would never move again: it restarts at
     * the batch's worst-fitting tokens, one each, as online k-means and
     * VQ codebooks re-seed dead codes. */
    int reseed = !softmax;
    TEAM_FOR(one, reseed) {
        float *taken = s.lse; /* unused by the k-means gate */
        for (int j = 0; j < n; j++) taken[j] = 0.0f;
        for (int e = 0; e < E && n > 0; e++) {
            if (s.r->kept[e] > 0) continue;
            int worst = -1;
            float far = -1.0f;
            for (int j = 0; j < n; j++) {
                float d = s.probs[(size_t)s.choice_e[j] * bp + j];
                if (taken[j] == 0.0f && d > far) far = d, worst = j;
            }
            if (worst < 0) continue;
            taken[worst] = 1.0f;
            for (int f = 0; f < C; f++) m->km_reseed[(size_t)e * C + f] = x[(size_t)f * bp + worst];
            m->km_dead[e] = 1;
        }
        team_chunk_done();
    }
    team_phase(reseed);
    int want_dx = io->in[0]->grad != NULL;
    for (int e = 0; e < E; e++) {
        tensor tx, th, ty;
        expert_tensors(m, &s, e, &tx, &th, &ty);
        if (!want_dx) tx.grad = NULL;
        const layer *mu = m->maps[2 * e], *md = m->maps[2 * e + 1];
        layer_io down =
            expert_io(&th, &ty, s.r->cols[e], s.r->kept[e], io->grad + m->first[2 * e + 1]);
        team_phase(md->ops->backward(md, &down));
        layer_io up =
            expert_io(&tx, &th, s.r->cols[e], s.r->kept[e], io->grad + m->first[2 * e]);
        team_phase(mu->ops->backward(mu, &up));
    }
    int chunks = softmax ? (n + COLS_PER_CHUNK - 1) / COLS_PER_CHUNK : 0;
    TEAM_FOR(c, chunks) {
        int j0 = c * COLS_PER_CHUNK, j1 = j0 + COLS_PER_CHUNK < n ? j0 + COLS_PER_CHUNK : n;
        router_grad_tokens(m, bp, j0, j1, &s);
        team_chunk_done();
    }
    team_phase(chunks);
    /* The router's weight gradient (softmax; the centroids have none), and
     * the input's gradient: router part plus each expert's, scattered. */
    int rows = want_dx ? layer_row_chunks(C, bp) : 0, router = softmax ? E : 0;
    float *gw = softmax ? io->grad[m->n_params - 1] : NULL;
    TEAM_FOR(c, router + rows) {
        if (c < router) {
            for (int f = 0; f < C; f++) {
                const float *xr = x + (size_t)f * bp, *dl = s.dlog + (size_t)c * bp;
                float sum = 0;
                for (int j = 0; j < n; j++) sum += dl[j] * xr[j];
                gw[(size_t)c * C + f] = sum;
            }
            team_chunk_done();
            continue;
        }
        int r0, r1;
        part_range(C, c - router, rows, &r0, &r1);
        for (int f = r0; f < r1; f++) {
            float *row = io->in[0]->grad + (size_t)f * bp;
            if (!io->accumulate[0])
                for (int j = 0; j < bp; j++) row[j] = 0.0f;
            if (softmax)
                for (int e = 0; e < E; e++) {
                    float w = m->gate_w[(size_t)e * C + f];
                    const float *dl = s.dlog + (size_t)e * bp;
                    for (int j = 0; j < n; j++) row[j] += w * dl[j];
                }
            for (int e = 0; e < E; e++) {
                const float *dxe = s.dx + (size_t)C * s.r->off[e] + (size_t)f * s.r->cols[e];
                const int32_t *tok = s.tok + s.r->off[e];
                for (int i = 0; i < s.r->kept[e]; i++) row[tok[i]] += dxe[i];
            }
        }
        layer_grad_through_act(io->in[0], bp, r0, r1);
        team_chunk_done();
    }
    return router + rows;
}

/* The k-means step: each centroid moves a fraction of the way to the
 * mean of the tokens it got since the last step. */
int moe_after_step(layer *ly, int64_t step, int64_t total)
{
    (void)step;
    (void)total;
    moe_layer *m = (moe_layer *)ly;
    if (m->cfg.gate != MOE_GATE_KMEANS) return 0;
    int E = m->cfg.experts, C = ly->in;
    TEAM_FOR(e, E) {
        if (m->km_count[e] > 0) {
            float rate = m->cfg.kmeans_rate;
            for (int f = 0; f < C; f++) {
                float mean = (float)(m->km_sum[(size_t)e * C + f] / (double)m->km_count[e]);
                float *mu = &m->gate_w[(size_t)e * C + f];
                *mu += rate * (mean - *mu);
            }
        } else if (m->km_dead[e])
            memcpy(m->gate_w + (size_t)e * C, m->km_reseed + (size_t)e * C,
                   sizeof(float) * (size_t)C);
        m->km_dead[e] = 0;
        for (int f = 0; f < C; f++) m->km_sum[(size_t)e * C + f] = 0;
        m->km_count[e] = 0;
        team_chunk_done();
    }
    return E;
}

/* ---- Sparse training -------------------------------------------------- */

/* An expert map's batch: the tokens routed to its expert, in the layer's
 * gathered buffers. */
void moe_param_batch(const layer *ly, const float *scratch, int bp, int k, param_batch *out)
{
    const moe_layer *m = moe_of(ly);
    moe_scratch s;
    scratch_layout(m, bp, (float *)scratch, &s);
    int map = 2 * m->cfg.experts - 1;
    while (map > 0 && m->first[map] > k) map--;
    tensor tx, th, ty;
    expert_tensors(m, &s, map / 2, &tx, &th, &ty);
    const tensor *in = map % 2 ? &th : &tx, *o = map % 2 ? &ty : &th;
    *out = (param_batch){in->data, o->grad, o->data, s.r->cols[map / 2], s.r->kept[map / 2]};
}
