/* Attention patterns over the block-sparse core (src/nn/attn_*.c): every
 * pattern's forward and backward against a scalar twin (float64 dense
 * attention with the pattern written as an explicit 0/1 mask), the twin
 * itself against PyTorch (tools/make_attention_reference.py), each
 * instruction set's attention kernels against the scalar reference,
 * one-token decoding with a KV cache against the full forward, the score
 * counts, the specs, and a GPT whose pattern survives its model file.
 * routing's clusters and dma's kept keys are chosen again here in float64
 * from the layer's centroids and mask parameters; dma's mask gradient is
 * held to the float64 chain rule and that to finite differences;
 * routing's centroid step to a float64 one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "kernels/isa.h"
#include "kernels/team.h"
#include "nn/attention.h"
#include "nn/attn_core.h"
#include "nn/attn_learned.h"
#include "nn/attn_sparsed.h"
#include "nn/network.h"
#include "testutil.h"

#define TOL 1e-5

/* Masked attention in float64 over one sequence: qkv [3·H·hd][T], mask
 * [H][T][T] (1: query t sees key s), dy [H·hd][T]; writes y and dqkv.
 * With bias [H][T] (or NULL) bias[s] is added to the scaled score of key
 * s, and dbias (or NULL) gets the loss's gradient by it. */
static void twin_probs(const float *qkv, int T, int H, int hd, const unsigned char *mask,
                       const double *bias, const float *dy, double *y, double *dqkv,
                       double *dbias, double *probs)
{
    int dim = H * hd;
    double scale = 1.0 / sqrt((double)hd);
    double *P = calloc((size_t)T * T, sizeof(double)), *dS = calloc((size_t)T * T, sizeof(double));
    double *g = calloc((size_t)3 * dim * T, sizeof(double));
    assert_non_null(P);
    assert_non_null(dS);
    assert_non_null(g);
#define Q(d, t) ((double)qkv[(size_t)(h * hd + (d)) * T + (t)])
#define K(d, t) ((double)qkv[(size_t)(dim + h * hd + (d)) * T + (t)])
#define V(d, t) ((double)qkv[(size_t)(2 * dim + h * hd + (d)) * T + (t)])
#define DY(d, t) ((double)dy[(size_t)(h * hd + (d)) * T + (t)])
    for (int h = 0; h < H; h++) {
        const unsigned char *mk = mask + (size_t)h * T * T;
        for (int t = 0; t < T; t++) {
            double best = -INFINITY, sum = 0;
            for (int s = 0; s < T; s++) {
                double sc = 0;
                for (int d = 0; d < hd; d++) sc += Q(d, t) * K(d, s);
                P[(size_t)t * T + s] = sc * scale + (bias ? bias[(size_t)h * T + s] : 0.0);
                if (mk[(size_t)t * T + s]) best = fmax(best, P[(size_t)t * T + s]);
            }
            for (int s = 0; s < T; s++) {
                double *p = &P[(size_t)t * T + s];
                *p = mk[(size_t)t * T + s] ? exp(*p - best) : 0.0;
                sum += *p;
            }
            for (int s = 0; s < T; s++) P[(size_t)t * T + s] /= sum;
            if (probs)
                memcpy(probs + ((size_t)h * T + t) * T, P + (size_t)t * T, sizeof(double) * T);
            for (int d = 0; d < hd; d++) {
                double o = 0;
                for (int s = 0; s < T; s++) o += P[(size_t)t * T + s] * V(d, s);
                y[(size_t)(h * hd + d) * T + t] = o;
            }
            /* dS = P ⊙ (dP − rowsum(dP ⊙ P)), dP = dY Vᵀ */
            double dot = 0;
            for (int s = 0; s < T; s++) {
                double dp = 0;
                for (int d = 0; d < hd; d++) dp += DY(d, t) * V(d, s);
                dS[(size_t)t * T + s] = dp;
                dot += dp * P[(size_t)t * T + s];
            }
            for (int s = 0; s < T; s++)
                dS[(size_t)t * T + s] = P[(size_t)t * T + s] * (dS[(size_t)t * T + s] - dot);
        }
        for (int t = 0; t < T; t++)
            for (int s = 0; s < T; s++) {
                double p = P[(size_t)t * T + s], ds = dS[(size_t)t * T + s];
                for (int d = 0; d < hd; d++) {
                    g[(size_t)(h * hd + d) * T + t] += ds * K(d, s) * scale;
                    g[(size_t)(dim + h * hd + d) * T + s] += ds * Q(d, t) * scale;
                    g[(size_t)(2 * dim + h * hd + d) * T + s] += p * DY(d, t);
                }
            }
        if (dbias)
            for (int s = 0; s < T; s++) {
                double sum = 0;
                for (int t = 0; t < T; t++) sum += dS[(size_t)t * T + s];
                dbias[(size_t)h * T + s] = sum;
            }
    }
#undef Q
#undef K
#undef V
#undef DY
    for (size_t i = 0; i < (size_t)3 * dim * T; i++) dqkv[i] = g[i];
    free(P);
    free(dS);
    free(g);
}

/* twin_probs without the probabilities [H][T][T] (probs, or NULL). */
static void twin_bias(const float *qkv, int T, int H, int hd, const unsigned char *mask,
                      const double *bias, const float *dy, double *y, double *dqkv, double *dbias)
{
    twin_probs(qkv, T, H, hd, mask, bias, dy, y, dqkv, dbias, NULL);
}

static void twin(const float *qkv, int T, int H, int hd, const unsigned char *mask, const float *dy,
                 float *y, float *dqkv)
{
    int dim = H * hd;
    double *yd = malloc(sizeof(double) * (size_t)dim * T), *gd = malloc(sizeof(double) * (size_t)3 * dim * T);
    assert_true(yd && gd);
    twin_bias(qkv, T, H, hd, mask, NULL, dy, yd, gd, NULL);
    for (size_t i = 0; i < (size_t)dim * T; i++) y[i] = (float)yd[i];
    for (size_t i = 0; i < (size_t)3 * dim * T; i++) dqkv[i] = (float)gd[i];
    free(yd);
    free(gd);
}

/* sparsed's blocks for head h chosen again here from their definition:
 * the float64 dense attention of the sequence summed per (query block,
 * key block), then, while the kept pairs carry less than keep of it, the
 * diagonal or column whose pairs not yet kept carry the most (the nearer
 * diagonal, then the diagonals, on a tie). off[d], col[j]: kept. */
static void sparsed_choice(const float *qkv, int T, int H, int hd, int h, int B, double keep,
                           unsigned char *off, unsigned char *col)
{
    int dim = H * hd, nb = (T + B - 1) / B;
    double *mass = calloc((size_t)nb * nb, sizeof(double)), *p = malloc(sizeof(double) * T);
    unsigned char *kept = calloc((size_t)nb * nb, 1);
    assert_true(mass && p && kept);
    for (int t = 0; t < T; t++) {
        double best = -INFINITY, sum = 0;
        for (int s = 0; s <= t; s++) {
            p[s] = 0;
            for (int d = 0; d < hd; d++)
                p[s] += (double)qkv[(size_t)(h * hd + d) * T + t] * qkv[(size_t)(dim + h * hd + d) * T + s];
            p[s] /= sqrt((double)hd);
            best = fmax(best, p[s]);
        }
        for (int s = 0; s <= t; s++) sum += p[s] = exp(p[s] - best);
        for (int s = 0; s <= t; s++) mass[(t / B) * nb + s / B] += p[s] / sum;
    }
    memset(off, 0, (size_t)nb);
    memset(col, 0, (size_t)nb);
    off[0] = 1;
    double total = 0, have = 0;
    for (int qb = 0; qb < nb; qb++)
        for (int kb = 0; kb <= qb; kb++) {
            total += mass[qb * nb + kb];
            if (kb == qb) have += mass[qb * nb + kb], kept[qb * nb + kb] = 1;
        }
    while (have < keep * total * (1 - 1e-12)) {
        double gain[2][64] = {{0}};
        assert_true(nb <= 64);
        for (int qb = 0; qb < nb; qb++)
            for (int kb = 0; kb < qb; kb++)
                if (!kept[qb * nb + kb]) {
                    gain[0][qb - kb] += mass[qb * nb + kb];
                    gain[1][kb] += mass[qb * nb + kb];
                }
        int kind = -1, which = 0;
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < nb; i++)
                if (!(k ? col : off)[i] && gain[k][i] > (kind < 0 ? 0 : gain[kind][which]))
                    kind = k, which = i;
        if (kind < 0) break;
        (kind ? col : off)[which] = 1;
        have += gain[kind][which];
        for (int qb = 0; qb < nb; qb++)
            for (int kb = 0; kb < qb; kb++)
                if (kind ? kb == which : qb - kb == which) kept[qb * nb + kb] = 1;
    }
    free(mass), free(p), free(kept);
}

/* The pattern as an explicit mask, [H][T][T]. dense and window from their
 * definitions; block-topk and sparsed chosen here again in float64 from
 * their definitions (block-topk: each block of B queries by the query at
 * its first position); hip from the pattern's own choice (its descent is
 * checked on its own below: this holds the core to the choice). */
static void pattern_mask(const char *spec, const float *qkv, int T, int H, int hd,
                         unsigned char *mask)
{
    att_pattern p;
    assert_int_equal(att_pattern_parse(spec, &p), RW_OK);
    int dim = H * hd;
    memset(mask, 0, (size_t)H * T * T);
    double *sc = malloc(sizeof(double) * (size_t)(T + 1));
    int *work_i = malloc(sizeof(float) * (size_t)(T * 8 + 64 * p.topk + 64));
    float *keys = malloc(sizeof(float) * (size_t)T * hd);
    assert_non_null(keys);
    assert_non_null(sc);
    assert_non_null(work_i);
    unsigned char off[64], col[64];
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++) {
            unsigned char *row = mask + ((size_t)h * T + t) * T;
            if (p.kind == ATT_SPARSED && t == 0) sparsed_choice(qkv, T, H, hd, h, p.block, p.keep, off, col);
            if (p.kind == ATT_SPARSED)
                for (int s = 0; s <= t; s++)
                    row[s] = off[t / p.block - s / p.block] || col[s / p.block];
            else if (p.kind == ATT_DENSE)
                for (int s = 0; s <= t; s++) row[s] = 1;
            else if (p.kind == ATT_WINDOW)
                for (int s = 0; s <= t; s++) row[s] = t - s < p.window || s < p.sink;
            else if (p.kind == ATT_BLOCK_TOPK) {
                int B = p.block, own = t / B, first = own * B;
                for (int s = own * B; s <= t; s++) row[s] = 1;
                for (int j = 0; j < own; j++) {
                    sc[j] = 0;
                    for (int d = 0; d < hd; d++) {
                        double mean = 0;
                        for (int s = j * B; s < (j + 1) * B; s++)
                            mean += qkv[(size_t)(dim + h * hd + d) * T + s];
                        sc[j] += qkv[(size_t)(h * hd + d) * T + first] * (mean / B);
                    }
                }
                for (int k = 0; k < p.topk && k < own; k++) { /* the k-th best, by selection */
                    int best = -1;
                    for (int j = 0; j < own; j++)
                        if (!row[j * B] && (best < 0 || sc[j] > sc[best])) best = j;
                    for (int s = best * B; s < (best + 1) * B; s++) row[s] = 1;
                }
            } else {
                float q[64];
                att_range r[64];
                for (int s = 0; s < T; s++) /* token-major, as the core reads them */
                    for (int d = 0; d < hd; d++)
                        keys[(size_t)s * hd + d] = qkv[(size_t)(dim + h * hd + d) * T + s];
                att_kv kv = {.k = keys, .v = keys, .ld = hd, .hd = hd};
                const att_pattern_ops *ops = att_pattern_ops_of(&p);
                int t0 = ops->tile_ranges ? t - t % ops->tile_rows(&p) : t;
                for (int d = 0; d < hd; d++) q[d] = qkv[(size_t)(h * hd + d) * T + t0];
                int nr = ops->tile_ranges ? ops->tile_ranges(&p, &kv, q, t0, t + 1, r, (float *)work_i)
                                          : ops->ranges(&p, &kv, q, t, r, (float *)work_i);
                for (int i = 0; i < nr; i++)
                    for (int s = r[i].s0; s < r[i].s1; s++) row[s] = 1;
            }
        }
    free(sc);
    free(work_i);
    free(keys);
}

static float *random_floats(size_t n, float scale, uint64_t seed)
{
    rng_state r;
    rng_seed(&r, seed);
    float *x = malloc(sizeof(float) * n);
    assert_non_null(x);
    tu_fill_uniform(x, n, -scale, scale, &r);
    return x;
}

static double softplus_d(double z) { return z > 30 ? z : log1p(exp(z)); }

/* Head h's centroid nearest x (stride ld) in float64, ties to the lower. */
static int nearest_d(const float *cent, int C, int hd, const float *x, size_t ld)
{
    int best = 0;
    double top = -INFINITY;
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int d = 0; d < hd; d++) s += (double)cent[(size_t)c * hd + d] * x[(size_t)d * ld];
        if (s > top) top = s, best = c;
    }
    return best;
}

/* dma's mask value of key s of head h in float64, with z = w·v. */
static double dma_mask_d(const float *w, const float *a, const float *qkv, int T, int H, int hd,
                         int h, int s, double *z)
{
    *z = 0;
    for (int d = 0; d < hd; d++)
        *z += (double)w[h * hd + d] * qkv[(size_t)(2 * H * hd + h * hd + d) * T + s];
    return exp(a[h] * softplus_d(*z));
}

/* routing's and dma's masks chosen again from the layer's state: routing,
 * the earlier keys of the query's cluster; dma, the K earlier keys of
 * largest mask value (ties to the earlier), with bias [H][T] the mask
 * values. Both with the query's own position. */
static void learned_mask(const layer *ly, const float *qkv, int T, int H, int hd,
                         unsigned char *mask, double *bias)
{
    const att_pattern *p = attention_pattern(ly);
    int dim = H * hd;
    memset(mask, 0, (size_t)H * T * T);
    for (int h = 0; h < H; h++) {
        double *m = bias + (size_t)h * T;
        if (p->kind == ATT_DMA)
            for (int s = 0; s < T; s++) {
                double z;
                m[s] = dma_mask_d(attention_state(ly, "dma_proj"), attention_state(ly, "dma_a"), qkv, T, H, hd, h, s, &z);
            }
        for (int t = 0; t < T; t++) {
            unsigned char *row = mask + ((size_t)h * T + t) * T;
            row[t] = 1;
            if (p->kind == ATT_ROUTING) {
                const float *cent = attention_state(ly, "centroids") + (size_t)h * p->clusters * hd;
                int cq = nearest_d(cent, p->clusters, hd, qkv + (size_t)(h * hd) * T + t, T);
                for (int s = 0; s < t; s++)
                    row[s] = nearest_d(cent, p->clusters, hd, qkv + (size_t)(dim + h * hd) * T + s, T) == cq;
            } else {
                for (int k = 0; k < p->topk && k < t; k++) { /* the k-th best, by selection */
                    int best = -1; /* ties to the later key */
                    for (int s = 0; s < t; s++)
                        if (!row[s] && (best < 0 || m[s] >= m[best])) best = s;
                    row[best] = 1;
                }
            }
        }
    }
}

/* The chain from dma's mask gradient dbias [H][T] to its parameters w
 * [H][hd] and a [H] (written) and to the values' rows of dqkv (added),
 * in float64. */
static void dma_chain(const layer *ly, const float *qkv, int T, int H, int hd, const double *dbias,
                      double *dw, double *da, double *dqkv)
{
    const float *w = attention_state(ly, "dma_proj"), *a = attention_state(ly, "dma_a");
    for (int h = 0; h < H; h++) {
        da[h] = 0;
        for (int d = 0; d < hd; d++) dw[h * hd + d] = 0;
        for (int s = 0; s < T; s++) {
            double z, m = dma_mask_d(w, a, qkv, T, H, hd, h, s, &z), g = dbias[(size_t)h * T + s];
            double dz = g * m * a[h] / (1 + exp(-z));
            da[h] += g * m * softplus_d(z);
            for (int d = 0; d < hd; d++) {
                size_t at = (size_t)(2 * H * hd + h * hd + d) * T + s;
                dw[h * hd + d] += dz * qkv[at];
                dqkv[at] += dz * w[h * hd + d];
            }
        }
    }
}

static const char *const SPECS[] = {"dense",          "window:5",       "window:7,sink:3",
                                    "block-topk:4,2", "block-topk:8,3", "hip:4,2",
                                    "hip:8,3",        "window:1",       "block-topk:1,5",
                                    "routing:3",      "routing:1",      "dma:4",
                                    "dma:1",          "dma:200",        "sparsed:4,0.6",
                                    "sparsed:8,0.95", "sparsed:3,0.3",  "sparsed:16,1"};

static double max_abs_diff(const float *a, const double *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i])));
    return worst;
}

/* The largest difference over the largest |b| (at least 1). */
static double scaled_diff(const float *a, const double *b, size_t n)
{
    double worst = 0, top = 1;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i])), top = fmax(top, fabs(b[i]));
    return worst / top;
}

/* Forward, backward, the score count and one-token decoding of one spec at
 * one length, against the twin; for routing also the centroid step its
 * backward pass takes, for dma its mask parameters' gradients. */
static void check_spec(const char *spec, int T, int context, uint64_t seed)
{
    const int H = 2, hd = 8, dim = H * hd;
    float *qkv = random_floats((size_t)3 * dim * T, 2.0f, seed);
    float *dy = random_floats((size_t)dim * T, 1.0f, seed + 1);
    float *y = malloc(sizeof(float) * (size_t)dim * T), *g = malloc(sizeof(float) * (size_t)3 * dim * T);
    double *want_y = malloc(sizeof(double) * (size_t)dim * T), *want_g = malloc(sizeof(double) * (size_t)3 * dim * T);
    double *bias = calloc((size_t)H * T, sizeof(double)), *dbias = calloc((size_t)H * T, sizeof(double));
    unsigned char *mask = malloc((size_t)H * T * T);
    assert_true(y && want_y && g && want_g && mask && bias && dbias);

    rw_attention *a;
    assert_int_equal(rw_attention_create(spec, H, hd, context, &a), RW_OK);
    if (strncmp(spec, "sparsed:", 8) == 0) { /* its blocks from this sequence's dense attention */
        assert_int_equal(rw_attention_forward(a, T, qkv, y), RW_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(rw_last_error(), "rw_attention_calibrate"));
        double covered;
        assert_int_equal(rw_attention_calibrate(a, T, qkv, &covered), RW_OK);
        att_pattern p;
        att_pattern_parse(spec, &p);
        if (!(covered >= p.keep * (1 - 1e-9) && covered <= 1 + 1e-9))
            fail_msg("%s T=%d: the chosen blocks carry %g of the mass", spec, T, covered);
    }
    layer *ly = attention_api_layer(a);
    att_kind kind = attention_pattern(ly)->kind;
    int learned = kind == ATT_ROUTING || kind == ATT_DMA;
    if (kind == ATT_DMA) { /* a content-dependent mask: w and a away from their start */
        rng_state r;
        rng_seed(&r, seed + 2);
        tu_fill_uniform(attention_state(ly, "dma_proj"), (size_t)H * hd, -0.3f, 0.3f, &r);
        tu_fill_uniform(attention_state(ly, "dma_a"), (size_t)H, 0.3f, 1.0f, &r);
    }
    if (learned) learned_mask(ly, qkv, T, H, hd, mask, bias);
    else pattern_mask(spec, qkv, T, H, hd, mask);
    twin_bias(qkv, T, H, hd, mask, kind == ATT_DMA ? bias : NULL, dy, want_y, want_g, dbias);
    double want_dw[16], want_da[2];
    if (kind == ATT_DMA) dma_chain(ly, qkv, T, H, hd, dbias, want_dw, want_da, want_g);
    int64_t keys = 0;
    for (size_t i = 0; i < (size_t)H * T * T; i++) keys += mask[i];

    assert_int_equal(rw_attention_forward(a, T, qkv, y), RW_OK);
    int64_t counted = rw_attention_scores(a, 1);
    if (counted != keys) fail_msg("%s T=%d: counted %lld scores, the mask has %lld", spec, T,
                                      (long long)counted, (long long)keys);
    double ey = max_abs_diff(y, want_y, (size_t)dim * T);

    /* one token at a time, each with the cache of the ones before (before
     * the backward pass, which moves routing's centroids) */
    float col[3 * 16], out[16];
    double worst = 0;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < 3 * dim; i++) col[i] = qkv[(size_t)i * T + t];
        assert_int_equal(rw_attention_decode(a, t, col, out), RW_OK);
        for (int i = 0; i < dim; i++)
            worst = fmax(worst, fabs(out[i] - y[(size_t)i * T + t]) / fmax(1.0, fabs(y[(size_t)i * T + t])));
    }
    /* and the last one again after a prefill of all */
    assert_int_equal(rw_attention_prefill(a, T, qkv), RW_OK);
    assert_int_equal(rw_attention_decode(a, T - 1, col, out), RW_OK);
    for (int i = 0; i < dim; i++)
        worst = fmax(worst, fabs(out[i] - y[(size_t)i * T + T - 1]) / fmax(1.0, fabs(y[(size_t)i * T + T - 1])));
    if (worst >= TOL) fail_msg("%s T=%d: decoding off the full forward by %g", spec, T, worst);

    float cent[2 * 3 * 8];
    if (kind == ATT_ROUTING)
        memcpy(cent, attention_state(ly, "centroids"), sizeof(float) * (size_t)H * attention_pattern(ly)->clusters * hd);
    for (size_t i = 0; i < (size_t)3 * dim * T; i++) g[i] = NAN; /* every entry must be written */
    assert_int_equal(rw_attention_backward(a, dy, g), RW_OK);
    double eg = max_abs_diff(g, want_g, (size_t)3 * dim * T);
    if (ey >= TOL || eg >= TOL)
        fail_msg("%s T=%d context %d: y off by %g, dqkv by %g", spec, T, context, ey, eg);
    if (kind == ATT_DMA) {
        /* Each is a sum over every (query, key) score in float32: held
         * relative to the gradient's largest entry (up to ~30 here), not
         * entry by entry, where a small entry's rounding is the big ones'. */
        double ew = scaled_diff(attention_api_grad(a, 0), want_dw, (size_t)H * hd);
        double ea = scaled_diff(attention_api_grad(a, 1), want_da, (size_t)H);
        if (ew >= TOL || ea >= TOL) fail_msg("%s T=%d: mask gradient off by %g (w), %g (a)", spec, T, ew, ea);
    }
    if (kind == ATT_ROUTING) { /* the step: to the mean of the unit queries and keys each got */
        int C = attention_pattern(ly)->clusters;
        double err = 0;
        for (int h = 0; h < H; h++) {
            const float *mu = cent + (size_t)h * C * hd;
            double sum[3 * 8] = {0}, cnt[3] = {0};
            for (int t = 0; t < T; t++)
                for (int part = 0; part < 2; part++) {
                    const float *x = qkv + (size_t)(part * dim + h * hd) * T + t;
                    double n2 = 0;
                    for (int d = 0; d < hd; d++) n2 += (double)x[(size_t)d * T] * x[(size_t)d * T];
                    int c = nearest_d(mu, C, hd, x, T);
                    for (int d = 0; d < hd; d++) sum[c * hd + d] += x[(size_t)d * T] / sqrt(n2);
                    cnt[c]++;
                }
            for (int c = 0; c < C; c++) {
                double next[8], n2 = 0;
                for (int d = 0; d < hd; d++) {
                    next[d] = mu[c * hd + d];
                    if (cnt[c] > 0) next[d] += (double)ROUTING_RATE * (sum[c * hd + d] / cnt[c] - next[d]);
                    n2 += next[d] * next[d];
                }
                for (int d = 0; d < hd; d++)
                    err = fmax(err, fabs(attention_state(ly, "centroids")[((size_t)h * C + c) * hd + d] - next[d] / sqrt(n2)));
            }
        }
        if (err >= TOL) fail_msg("%s T=%d: centroid step off by %g", spec, T, err);
    }
    rw_attention_free(a);
    free(qkv), free(dy), free(y), free(want_y), free(g), free(want_g), free(mask), free(bias),
        free(dbias);
}

/* dma's chain rule (dma_chain, which the layer's mask gradients are held
 * to) against central differences of Σ dy·y in float64 over its
 * parameters, the kept keys fixed. */
static void test_dma_gradient_finite_differences(void **state)
{
    (void)state;
    const int T = 37, H = 2, hd = 8, dim = H * hd;
    float *qkv = random_floats((size_t)3 * dim * T, 2.0f, 41), *dy = random_floats((size_t)dim * T, 1.0f, 42);
    rw_attention *a;
    assert_int_equal(rw_attention_create("dma:5", H, hd, T, &a), RW_OK);
    layer *ly = attention_api_layer(a);
    rng_state r;
    rng_seed(&r, 43);
    tu_fill_uniform(attention_state(ly, "dma_proj"), (size_t)H * hd, -0.3f, 0.3f, &r);
    tu_fill_uniform(attention_state(ly, "dma_a"), (size_t)H, 0.3f, 1.0f, &r);
    unsigned char *mask = malloc((size_t)H * T * T);
    double *bias = malloc(sizeof(double) * H * T), *dbias = malloc(sizeof(double) * H * T);
    double *yd = malloc(sizeof(double) * dim * T), *gd = calloc((size_t)3 * dim * T, sizeof(double));
    assert_true(mask && bias && dbias && yd && gd);
    learned_mask(ly, qkv, T, H, hd, mask, bias);
    twin_bias(qkv, T, H, hd, mask, bias, dy, yd, gd, dbias);
    double dw[16], da[2];
    dma_chain(ly, qkv, T, H, hd, dbias, dw, da, gd);
    /* perturbs a parameter (float64 copies of w and a) and evaluates the loss */
    double worst = 0;
    for (int k = 0; k < H * hd + H; k++) {
        double f[2], eps = 1e-5;
        for (int sgn = 0; sgn < 2; sgn++) {
            float *w = attention_state(ly, "dma_proj"), *av = attention_state(ly, "dma_a");
            for (int h = 0; h < H; h++)
                for (int s = 0; s < T; s++) {
                    double z = 0;
                    for (int d = 0; d < hd; d++) {
                        double wd = w[h * hd + d] + (k == h * hd + d ? (sgn ? eps : -eps) : 0);
                        z += wd * qkv[(size_t)(2 * dim + h * hd + d) * T + s];
                    }
                    double ah = av[h] + (k == H * hd + h ? (sgn ? eps : -eps) : 0);
                    bias[(size_t)h * T + s] = exp(ah * softplus_d(z));
                }
            twin_bias(qkv, T, H, hd, mask, bias, dy, yd, gd, NULL);
            f[sgn] = 0;
            for (size_t i = 0; i < (size_t)dim * T; i++) f[sgn] += dy[i] * yd[i];
        }
        double fd = (f[1] - f[0]) / (2 * eps), an = k < H * hd ? dw[k] : da[k - H * hd];
        worst = fmax(worst, fabs(fd - an) / fmax(1.0, fabs(an)));
    }
    if (worst >= 1e-6) fail_msg("dma: chain rule off the finite differences by %g", worst);
    rw_attention_free(a);
    free(qkv), free(dy), free(mask), free(bias), free(dbias), free(yd), free(gd);
}

static void test_patterns_match_masked_twin(void **state)
{
    (void)state;
    const int lengths[] = {1, 37, 150};
    for (size_t i = 0; i < sizeof SPECS / sizeof *SPECS; i++)
        for (int l = 0; l < 3; l++) check_spec(SPECS[i], lengths[l], 160, 100 + 10 * l + i);
}

/* A context past ATTENTION_GEMM_MAX (where a model's dense attention
 * leaves sgemm for the core). */
static void test_long_context(void **state)
{
    (void)state;
    check_spec("dense", 150, ATTENTION_GEMM_MAX + 1, 7);
    check_spec("block-topk:16,2", 300, ATTENTION_GEMM_MAX + 1, 8);
    /* query blocks of several tiles of rows, ranges of several chunks */
    check_spec("block-topk:64,2", 300, 300, 9);
    check_spec("hip:40,2", 300, 300, 10);
    check_spec("window:130,sink:3", 300, 300, 11);
    /* per-row choices over several chunks: dma's kept keys (mask column
     * at head size 9), routing's scattered cluster keys */
    check_spec("dma:150", 300, 300, 12);
    check_spec("routing:2", 300, 300, 13);
}

/* Each instruction set's attention kernels against the scalar reference
 * (kernels/attn_scalar.c): random tiles of rows and chunks of keys, every
 * row with its own causal limit, forward from a running state and
 * backward. */
static void test_kernels_match_scalar(void **state)
{
    (void)state;
    /* head sizes with dma's mask column too (hd + 1: 9, 65) */
    const int hds[] = {4, 8, 9, 24, 64, 65, 72}, Rs[] = {1, 3, 4, 5, 16}, ns[] = {1, 7, 16, 33, 128};
    const attn_kernel_table *ref = attn_kernels_scalar();
    rng_state g;
    rng_seed(&g, 5);
    for (int i = 1; i < kernel_isa_count(); i++) {
        const kernel_isa *isa = kernel_isa_at(i);
        if (!isa->cpu_runs()) continue;
        for (int c = 0; c < 7 * 5 * 5; c++) {
            int hd = hds[c % 7], R = Rs[c / 7 % 5], n = ns[c / 35], ldt = n + 5, ld = hd + 3;
            float *kt = random_floats((size_t)hd * ldt, 1.0f, 200 + c), *vt = random_floats((size_t)hd * ldt, 1.0f, 300 + c);
            float *k = malloc(sizeof(float) * (size_t)n * ld), *v = malloc(sizeof(float) * (size_t)n * ld);
            assert_true(k && v);
            for (int j = 0; j < n; j++)
                for (int d = 0; d < ld; d++) {
                    k[(size_t)j * ld + d] = d < hd ? kt[(size_t)d * ldt + j] : NAN;
                    v[(size_t)j * ld + d] = d < hd ? vt[(size_t)d * ldt + j] : NAN;
                }
            float *q = random_floats((size_t)R * hd, 1.0f, 400 + c), *dout = random_floats((size_t)R * hd, 1.0f, 500 + c);
            float *o[2], *dq[2], *dk[2], *dv[2], m[2][16], l[2][16], lse[16], delta[16];
            int lo[16], nv[16];
            for (int r = 0; r < R; r++) {
                nv[r] = (int)(rng_next(&g) % (uint64_t)(n + 1));
                lo[r] = r % 3 ? 0 : (int)(rng_next(&g) % (uint64_t)(n + 1)); /* a window's start */
                m[0][r] = m[1][r] = r % 2 ? -INFINITY : 0.5f; /* a fresh row, or one mid-way */
                l[0][r] = l[1][r] = r % 2 ? 0.0f : 3.0f;
                lse[r] = 2.0f + (float)r / 8;
                delta[r] = 0.25f - (float)r / 16;
            }
            nv[R - 1] = n;
            for (int t = 0; t < 2; t++) {
                o[t] = random_floats((size_t)R * hd, 1.0f, 600 + c);
                dq[t] = random_floats((size_t)R * hd, 1.0f, 700 + c);
                dk[t] = random_floats((size_t)n * ld, 1.0f, 800 + c);
                dv[t] = random_floats((size_t)n * ld, 1.0f, 900 + c);
                for (int r = 0; r < R; r++)
                    if (r % 2)
                        for (int d = 0; d < hd; d++) o[t][(size_t)r * hd + d] = 0.0f;
                const attn_kernel_table *kern = t ? isa->attn : ref;
                attn_chunk ch = {kt, vt, k, v, ldt, ld, hd};
                kern->forward(&ch, n, q, R, lo, nv, 0.25f, m[t], l[t], o[t]);
                kern->backward(&ch, n, q, dout, R, lo, nv, 0.25f, lse, delta, dq[t], dk[t], dv[t]);
            }
            for (int r = 0; r < R; r++) /* a row that saw no key keeps m = -inf in both */
                if (m[0][r] == m[1][r]) m[0][r] = m[1][r] = 0.0f;
            double e = fmax(tu_max_rel_diff(o[1], o[0], (size_t)R * hd),
                            tu_max_rel_diff(dq[1], dq[0], (size_t)R * hd));
            e = fmax(e, fmax(tu_max_rel_diff(dk[1], dk[0], (size_t)n * ld),
                             tu_max_rel_diff(dv[1], dv[0], (size_t)n * ld)));
            e = fmax(e, fmax(tu_max_rel_diff(m[1], m[0], (size_t)R), tu_max_rel_diff(l[1], l[0], (size_t)R)));
            if (!(e < TOL))
                fail_msg("%s attention kernels: hd %d, %d rows, %d keys: off the scalar reference by %g",
                         isa->name, hd, R, n, e);
            for (int t = 0; t < 2; t++) free(o[t]), free(dq[t]), free(dk[t]), free(dv[t]);
            free(kt), free(vt), free(k), free(v), free(q), free(dout);
        }
    }
}

/* The twin and the core's window:3,sink:2 against PyTorch's masked softmax. */
static void test_twin_matches_pytorch(void **state)
{
    (void)state;
    const int T = 13, H = 2, hd = 4, dim = H * hd;
    st_file ref;
    assert_int_equal(st_read("data/reference/attention.ref.safetensors", &ref), RW_OK);
    float qkv[3 * 8 * 13], maskf[13 * 13], dy[8 * 13], want_y[8 * 13], want_g[3 * 8 * 13];
    const char *names[] = {"qkv", "mask", "dy", "y", "dqkv"};
    float *dst[] = {qkv, maskf, dy, want_y, want_g};
    for (int i = 0; i < 5; i++) {
        const st_tensor *t = st_find(&ref, names[i]);
        if (!t) fail_msg("reference tensor %s missing", names[i]);
        assert_int_equal(t->dtype, ST_F32);
        memcpy(dst[i], t->data, t->nbytes);
    }
    unsigned char mask[2 * 13 * 13];
    for (int i = 0; i < 2 * T * T; i++) mask[i] = maskf[i % (T * T)] != 0;
    float y[8 * 13], g[3 * 8 * 13];
    twin(qkv, T, H, hd, mask, dy, y, g);
    assert_true(tu_max_rel_diff(y, want_y, (size_t)dim * T) < TOL);
    assert_true(tu_max_rel_diff(g, want_g, (size_t)3 * dim * T) < TOL);
    rw_attention *a;
    assert_int_equal(rw_attention_create("window:3,sink:2", H, hd, T, &a), RW_OK);
    assert_int_equal(rw_attention_forward(a, T, qkv, y), RW_OK);
    assert_int_equal(rw_attention_backward(a, dy, g), RW_OK);
    assert_true(tu_max_rel_diff(y, want_y, (size_t)dim * T) < TOL);
    assert_true(tu_max_rel_diff(g, want_g, (size_t)3 * dim * T) < TOL);
    rw_attention_free(a);
    /* with a per-key score bias (dma's mask) and its gradient */
    float biasf[2 * 13], want_db[2 * 13];
    const char *bnames[] = {"bias", "y_bias", "dqkv_bias", "dbias"};
    float *bdst[] = {biasf, want_y, want_g, want_db};
    for (int i = 0; i < 4; i++) {
        const st_tensor *t = st_find(&ref, bnames[i]);
        if (!t) fail_msg("reference tensor %s missing", bnames[i]);
        memcpy(bdst[i], t->data, t->nbytes);
    }
    double bias[2 * 13], yd[8 * 13], gd[3 * 8 * 13], db[2 * 13];
    for (int i = 0; i < H * T; i++) bias[i] = biasf[i];
    twin_bias(qkv, T, H, hd, mask, bias, dy, yd, gd, db);
    assert_true(max_abs_diff(want_y, yd, (size_t)dim * T) < TOL);
    assert_true(max_abs_diff(want_g, gd, (size_t)3 * dim * T) < TOL);
    assert_true(max_abs_diff(want_db, db, (size_t)H * T) < TOL);
    st_file_free(&ref);
}

/* A run of blocks whose keys all point along the query that chooses for
 * the last block (its first position; HiP assumes
 * scores vary smoothly over positions: a lone block can hide from the
 * keys the descent samples) holds every block hip's descent and
 * block-topk's means choose, among others of noise. */
static void test_selection_finds_planted_block(void **state)
{
    (void)state;
    const int T = 256, hd = 8, B = 8, first = 2, last = 9, chooser = T - B;
    float *qkv = random_floats((size_t)3 * hd * T, 0.05f, 3);
    for (int d = 0; d < hd; d++) { /* the query that chooses for the last block */
        qkv[(size_t)d * T + chooser] = d % 2 ? 1.0f : -1.0f;
        for (int s = first * B; s < (last + 1) * B; s++)
            qkv[(size_t)(hd + d) * T + s] = 3.0f * qkv[(size_t)d * T + chooser];
    }
    const char *specs[] = {"hip:8,2", "block-topk:8,2"};
    for (int i = 0; i < 2; i++) {
        unsigned char *mask = malloc((size_t)T * T);
        assert_non_null(mask);
        pattern_mask(specs[i], qkv, T, 1, hd, mask);
        const unsigned char *row = mask + (size_t)(T - 1) * T;
        int seen = 0;
        for (int s = 0; s < T; s++) seen += row[s];
        for (int s = 0; s < T - B; s++)
            if (row[s] && (s < first * B || s >= (last + 1) * B))
                fail_msg("%s chose position %d outside the planted blocks", specs[i], s);
        assert_int_equal(seen, 3 * B); /* two chosen blocks and its own full one */
        free(mask);
    }
    free(qkv);
}

static void test_specs(void **state)
{
    (void)state;
    const char *bad[] = {"", "window", "window:", "window:0", "window:3,sink:-1", "window:3,", "window:3x",
                         "block-topk:4", "block-topk:0,2", "block-topk:4,0", "hip:4,2,1",
                         "hip:70000,2", "foo", "dense:1", "window: 3", "routing", "routing:",
                         "routing:0", "routing:-2", "routing:4097", "routing:2,3", "routing:2x",
                         "dma", "dma:", "dma:0", "dma:-1", "dma:3,1", "dma:x", "dma: 2",
                         "dma:99999999999", "sparsed:4", "sparsed:4,0", "sparsed:4,1.5",
                         "sparsed:0,0.5", "sparsed:4,-0.5", "sparsed:4,nan", "sparsed:4,inf",
                         "sparsed:4,0.5x", "sparsed:4, 0.5", "sparsed:4,1e-300",
                         "sparsed:70000,0.5", "sparsed:4,0.5,1"};
    att_pattern p;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (att_pattern_parse(bad[i], &p) != RW_ERR_INVALID_ARGUMENT) fail_msg("accepted '%s'", bad[i]);
        assert_non_null(strstr(rw_last_error(), "--attention"));
    }
    for (size_t i = 0; i < sizeof SPECS / sizeof *SPECS; i++) {
        char back[64];
        assert_int_equal(att_pattern_parse(SPECS[i], &p), RW_OK);
        att_pattern_format(&p, back, sizeof back);
        assert_string_equal(back, SPECS[i]);
    }
}

/* A small GPT with each pattern: the logits of one token at a time (the
 * KV cache) against the full forward pass; the pattern saved and loaded. */
static void test_gpt_decode_and_file(void **state)
{
    (void)state;
    const int V = 16, C = 32, N = 32;
    /* dense at a context past ATTENTION_GEMM_MAX: its forward through the core */
    const char *specs[] = {"window:5,sink:2", "block-topk:4,2", "hip:4,2", "dense", "dense",
                           "routing:3", "dma:6"};
    const int contexts[] = {C, C, C, C, ATTENTION_GEMM_MAX + 8, C, C};
    int32_t tokens[32];
    for (int i = 0; i < N; i++) tokens[i] = (i * 7 + 3) % V;
    for (int i = 0; i < 7; i++) {
        rw_gpt_config c = rw_gpt_config_default();
        c.vocab = V, c.context = contexts[i], c.n_layer = 2, c.n_head = 2, c.n_embd = 16;
        c.attention = specs[i];
        rw_model *m;
        assert_int_equal(rw_gpt_create(&c, &m), RW_OK);
        /* dma's mask parameters join the model's list, two per layer */
        if (i == 6) {
            rw_model *d;
            c.attention = "dense";
            assert_int_equal(rw_gpt_create(&c, &d), RW_OK);
            assert_int_equal(rw_model_param_count(m), rw_model_param_count(d) + 2 * c.n_layer);
            rw_model_free(d);
        }
        const char *path = tu_temp_path("attn_model.safetensors");
        assert_int_equal(rw_model_save(m, path), RW_OK);
        float *before = malloc(sizeof(float) * (size_t)N * V);
        assert_non_null(before);
        workspace ws;
        assert_int_equal(workspace_init(&ws, m, N, 0), RW_OK);
        ws.tokens = tokens, ws.n = N, ws.seq_len = N, ws.pos0 = 0;
        network_forward(m, &ws);
        for (int j = 0; j < N; j++)
            for (int v = 0; v < V; v++) before[(size_t)j * V + v] = network_logits(m, &ws)[(size_t)v * ws.bp + j];
        workspace_free(&ws);
        rw_model_free(m);
        assert_int_equal(rw_model_load(path, &m), RW_OK);
        char spec[64];
        assert_int_equal(rw_model_attention(m, spec, sizeof spec), 1);
        assert_string_equal(spec, specs[i]);
        assert_int_equal(workspace_init(&ws, m, N, 0), RW_OK);
        ws.tokens = tokens, ws.n = N, ws.seq_len = N, ws.pos0 = 0;
        network_forward(m, &ws);
        const float *z = network_logits(m, &ws);
        float *full = malloc(sizeof(float) * (size_t)N * V);
        assert_non_null(full);
        for (int j = 0; j < N; j++)
            for (int v = 0; v < V; v++) full[(size_t)j * V + v] = z[(size_t)v * ws.bp + j];
        workspace_free(&ws);
        /* the state (centroids, mask parameters) came back from the file */
        if (memcmp(before, full, sizeof(float) * (size_t)N * V) != 0)
            fail_msg("%s: the loaded model's logits differ from the saved one's", specs[i]);
        free(before);
        assert_int_equal(workspace_init_vector(&ws, m), RW_OK);
        double worst = 0;
        for (int t = 0; t < N; t++) {
            ws.tokens = tokens + t, ws.n = ws.seq_len = 1, ws.pos0 = t;
            for (int l = 0; l < m->n_layers; l++) phase_forward_vector(m, &ws, l);
            worst = fmax(worst, tu_max_rel_diff(network_logits(m, &ws), full + (size_t)t * V, V));
        }
        if (worst >= TOL) fail_msg("%s: decoded logits off by %g", specs[i], worst);
        workspace_free(&ws);
        assert_int_equal(rw_model_set_attention(m, "block-topk:0,1"), RW_ERR_INVALID_ARGUMENT);
        if (i == 0) { /* dense in a workspace made for a sparse pattern: through the core */
            assert_int_equal(workspace_init(&ws, m, N, 0), RW_OK);
            assert_int_equal(rw_model_set_attention(m, "dense"), RW_OK);
            ws.tokens = tokens, ws.n = N, ws.seq_len = N, ws.pos0 = 0;
            network_forward(m, &ws);
            float *got = malloc(sizeof(float) * (size_t)N * V);
            assert_non_null(got);
            for (int j = 0; j < N; j++)
                for (int v = 0; v < V; v++) got[(size_t)j * V + v] = network_logits(m, &ws)[(size_t)v * ws.bp + j];
            workspace_free(&ws);
            assert_int_equal(workspace_init(&ws, m, N, 0), RW_OK); /* made for dense: sgemm */
            ws.tokens = tokens, ws.n = N, ws.seq_len = N, ws.pos0 = 0;
            network_forward(m, &ws);
            for (int j = 0; j < N; j++)
                for (int v = 0; v < V; v++) full[(size_t)j * V + v] = network_logits(m, &ws)[(size_t)v * ws.bp + j];
            workspace_free(&ws);
            assert_true(tu_max_rel_diff(got, full, (size_t)N * V) < TOL);
            free(got);
        }
        free(full);
        rw_model_free(m);
        remove(path);
    }
}

/* rw_model_attention_map (what `rewire plot --attention` draws) against
 * the twin's probabilities under the pattern's mask chosen again here,
 * on a small GPT with each pattern (dma's mask parameters moved away from
 * their start, so its keys are scattered): every key a row sees with its
 * probability within 1e-5, every other -1. */
static void test_plot_map_matches_twin(void **state)
{
    (void)state;
    const int V = 16, N = 32, H = 2, hd = 8, dim = H * hd;
    const char *specs[] = {"dense", "window:5,sink:2", "block-topk:4,2", "hip:4,2", "routing:3",
                           "dma:6"};
    int32_t tokens[32];
    for (int i = 0; i < N; i++) tokens[i] = (i * 7 + 3) % V;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        rw_gpt_config c = rw_gpt_config_default();
        c.vocab = V, c.context = N, c.n_layer = 2, c.n_head = H, c.n_embd = dim;
        c.attention = specs[i];
        rw_model *m;
        assert_int_equal(rw_gpt_create(&c, &m), RW_OK);
        int l = 0, attn = 1; /* the second attention layer */
        for (int k = -1; l < m->n_layers; l++)
            if (is_attention(m->layers[l]) && ++k == attn) break;
        assert_true(l < m->n_layers);
        layer *ly = m->layers[l];
        if (attention_pattern(ly)->kind == ATT_DMA) {
            rng_state r;
            rng_seed(&r, 7);
            tu_fill_uniform(attention_state(ly, "dma_proj"), (size_t)H * hd, -3.0f, 3.0f, &r);
            tu_fill_uniform(attention_state(ly, "dma_a"), (size_t)H, 0.5f, 1.0f, &r);
        }
        workspace ws; /* the layer's input, [3·dim][N] */
        assert_int_equal(workspace_init(&ws, m, N, 0), RW_OK);
        ws.tokens = tokens, ws.n = N, ws.seq_len = N, ws.pos0 = 0;
        network_forward(m, &ws);
        layer_io io = workspace_io(&ws, m, l);
        float *qkv = malloc(sizeof(float) * (size_t)3 * dim * N), *dy = calloc((size_t)dim * N, sizeof(float));
        float *map = malloc(sizeof(float) * (size_t)N * N);
        double *y = malloc(sizeof(double) * (size_t)dim * N), *g = malloc(sizeof(double) * (size_t)3 * dim * N);
        double *bias = calloc((size_t)H * N, sizeof(double)), *probs = malloc(sizeof(double) * (size_t)H * N * N);
        unsigned char *mask = malloc((size_t)H * N * N);
        assert_true(qkv && dy && map && y && g && bias && probs && mask);
        for (int r = 0; r < 3 * dim; r++)
            memcpy(qkv + (size_t)r * N, io.in[0]->data + (size_t)r * ws.bp, sizeof(float) * N);
        workspace_free(&ws);
        att_kind kind = attention_pattern(ly)->kind;
        if (kind == ATT_ROUTING || kind == ATT_DMA) learned_mask(ly, qkv, N, H, hd, mask, bias);
        else pattern_mask(specs[i], qkv, N, H, hd, mask);
        twin_probs(qkv, N, H, hd, mask, kind == ATT_DMA ? bias : NULL, dy, y, g, NULL, probs);
        int scattered = 0; /* a row that sees keys apart from each other */
        for (int h = 0; h < H; h++) {
            assert_int_equal(rw_model_attention_map(m, tokens, N, attn, h, map), RW_OK);
            double worst = 0;
            for (int t = 0; t < N; t++)
                for (int s = 0; s < N; s++) {
                    size_t at = ((size_t)h * N + t) * N + s;
                    float got = map[(size_t)t * N + s];
                    if (!mask[at] && got != -1.0f)
                        fail_msg("%s head %d: row %d shows key %d (%g), which it does not see",
                                 specs[i], h, t, s, (double)got);
                    if (mask[at]) worst = fmax(worst, fabs(got - probs[at]));
                    if (mask[at] && s > 0 && s < t && !mask[at - 1]) scattered = 1;
                }
            if (worst >= TOL) fail_msg("%s head %d: probabilities off by %g", specs[i], h, worst);
        }
        if (kind == ATT_DMA && !scattered) fail_msg("dma: every kept key run starts at 0");
        free(qkv), free(dy), free(map), free(y), free(g), free(bias), free(probs), free(mask);
        rw_model_free(m);
    }
}

/* The greedy choice on a planted mass: a column (sink) and one diagonal
 * carry nearly all of it, so they are what KEEP 0.9 keeps; KEEP 1 keeps
 * every block with mass; the key count follows the kept blocks. */
static void test_sparsed_choice_planted(void **state)
{
    (void)state;
    const int B = 4, context = 24, nb = 6;
    double mass[6 * 6] = {0};
    for (int qb = 0; qb < nb; qb++) {
        mass[qb * nb + qb] = 0.05;                    /* own block */
        if (qb > 0) mass[qb * nb + 0] = 1.0;          /* sink column 0 */
        if (qb >= 3) mass[qb * nb + qb - 2] = 0.8;    /* diagonal 2 */
        if (qb >= 4) mass[qb * nb + 1] = 0.01;        /* a little on column 1 */
    }
    att_sparsed *s = att_sparsed_new(1, context, B, 0.9f);
    assert_non_null(s);
    double covered = att_sparsed_choose(s, 0, mass);
    assert_int_equal(att_sparsed_index(s), RW_OK);
    assert_int_equal(s->head[0].n_sink, 1);
    assert_int_equal(s->head[0].sink[0], 0);
    /* column 0 first (5.0), then diagonal 2 (3 x 0.8, minus its pair on column 0) */
    assert_int_equal(s->head[0].n_off, 1);
    assert_int_equal(s->head[0].off[0], 2);
    assert_true(covered >= 0.9 && covered < 1.0);
    /* query 21 (block 5): blocks 0 and 3 and its own from 20 to 21 */
    assert_int_equal(att_sparsed_keys(s, 0, 22) - att_sparsed_keys(s, 0, 21), 2 * B + 2);
    s->keep = 1.0f;
    assert_true(att_sparsed_choose(s, 0, mass) > 1 - 1e-9);
    assert_int_equal(att_sparsed_index(s), RW_OK);
    assert_int_equal(s->head[0].n_sink + s->head[0].n_off, 3); /* column 1 joins */
    s->sel[3] = 2; /* a table read from a bad file */
    assert_int_equal(att_sparsed_index(s), RW_ERR_INVALID_ARGUMENT);
    att_sparsed_free(s);
}

/* The logits of one token at a time (the KV cache) against the full
 * forward pass of n tokens. */
static double decode_error(rw_model *m, const int32_t *tokens, int N, int V)
{
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, N, 0), RW_OK);
    ws.tokens = tokens, ws.n = N, ws.seq_len = N, ws.pos0 = 0;
    network_forward(m, &ws);
    float *full = malloc(sizeof(float) * (size_t)N * V);
    assert_non_null(full);
    for (int j = 0; j < N; j++)
        for (int v = 0; v < V; v++) full[(size_t)j * V + v] = network_logits(m, &ws)[(size_t)v * ws.bp + j];
    workspace_free(&ws);
    assert_int_equal(workspace_init_vector(&ws, m), RW_OK);
    double worst = 0;
    for (int t = 0; t < N; t++) {
        ws.tokens = tokens + t, ws.n = ws.seq_len = 1, ws.pos0 = t;
        for (int l = 0; l < m->n_layers; l++) phase_forward_vector(m, &ws, l);
        worst = fmax(worst, tu_max_rel_diff(network_logits(m, &ws), full + (size_t)t * V, V));
    }
    workspace_free(&ws);
    free(full);
    return worst;
}

/* Copies model file `from` to `to` without tensor `drop`, or with byte 0
 * of tensor `poke` set to `value`. */
static void rewrite_file(const char *from, const char *to, const char *drop, const char *poke,
                         unsigned char value)
{
    st_file f;
    assert_int_equal(st_read(from, &f), RW_OK);
    st_writer *w = st_writer_new();
    assert_non_null(w);
    unsigned char *copy = NULL;
    for (int i = 0; i < f.count; i++) {
        const st_tensor *t = &f.tensors[i];
        if (drop && strcmp(t->name, drop) == 0) continue;
        const void *data = t->data;
        if (poke && strcmp(t->name, poke) == 0) {
            copy = malloc(t->nbytes);
            assert_non_null(copy);
            memcpy(copy, t->data, t->nbytes);
            copy[0] = value;
            data = copy;
        }
        assert_int_equal(st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, data), RW_OK);
    }
    for (int i = 0; i < f.meta_count; i++)
        assert_int_equal(st_writer_meta(w, f.meta_keys[i], f.meta_values[i]), RW_OK);
    assert_int_equal(st_writer_write(w, to), RW_OK);
    st_writer_free(w);
    free(copy);
    st_file_free(&f);
}

/* sparsed on a GPT: blocks chosen from calibration text, the model file
 * round trip (the same blocks back), decoding with the cache against the
 * full forward, and what is refused: a model or spec without chosen
 * blocks, a file whose blocks are missing or broken. */
static void test_gpt_sparsed(void **state)
{
    (void)state;
    const int V = 256, N = 32;
    rw_gpt_config c = rw_gpt_config_default();
    c.vocab = V, c.context = 32, c.n_layer = 2, c.n_head = 2, c.n_embd = 16;
    c.attention = "sparsed:4,0.5";
    rw_model *m;
    assert_int_equal(rw_gpt_create(&c, &m), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "rewire lm sparsed"));
    c.attention = NULL;
    assert_int_equal(rw_gpt_create(&c, &m), RW_OK);
    char text[4096];
    for (size_t i = 0; i < sizeof text; i++) text[i] = "the rain in spain falls mainly. "[i % 32] + (i / 97) % 3;
    rw_tokenizer *tok;
    rw_text *calib;
    assert_int_equal(rw_tokenizer_bytes(&tok), RW_OK);
    assert_int_equal(rw_text_from_memory("calib", text, sizeof text, tok, 0.1, 32, &calib), RW_OK);
    rw_lm_sparsed_report r;
    assert_int_equal(rw_lm_sparsed(m, calib, "block-topk:4,1", 4, 0, 1, &r), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_lm_sparsed(m, calib, "sparsed:4,0.5", 0, 0, 1, &r), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_lm_sparsed(m, calib, "sparsed:4,0.5", 4, 33, 1, &r), RW_ERR_INVALID_ARGUMENT);
    char spec[64];
    rw_model_attention(m, spec, sizeof spec);
    assert_string_equal(spec, "dense"); /* unchanged by the refusals */
    assert_int_equal(rw_lm_sparsed(m, calib, "sparsed:4,0.5", 4, 0, 1, &r), RW_OK);
    assert_int_equal(r.layers, 2);
    assert_int_equal(r.heads, 2);
    assert_true(r.covered >= 0.5 - 1e-9 && r.covered <= 1 + 1e-9);
    assert_true(r.density > 0 && r.density < 1);
    rw_model_attention(m, spec, sizeof spec);
    assert_string_equal(spec, "sparsed:4,0.5");
    int32_t tokens[32];
    for (int i = 0; i < N; i++) tokens[i] = (unsigned char)text[i + 100];
    double worst = decode_error(m, tokens, N, V);
    if (worst >= TOL) fail_msg("sparsed: decoded logits off by %g", worst);

    char path[600], broken[600]; /* tu_temp_path's buffer is reused */
    snprintf(path, sizeof path, "%s", tu_temp_path("sparsed.safetensors"));
    snprintf(broken, sizeof broken, "%s", tu_temp_path("sparsed-broken.safetensors"));
    assert_int_equal(rw_model_save(m, path), RW_OK);
    rw_model *back;
    assert_int_equal(rw_model_load(path, &back), RW_OK);
    rw_model_attention(back, spec, sizeof spec);
    assert_string_equal(spec, "sparsed:4,0.5");
    for (int l = 0; l < m->n_layers; l++) {
        if (!is_attention(m->layers[l])) continue;
        const att_sparsed *a = attention_sparsed(m->layers[l]), *b = attention_sparsed(back->layers[l]);
        assert_non_null(b);
        assert_memory_equal(a->sel, b->sel, (size_t)a->heads * 2 * a->nb);
    }
    worst = decode_error(back, tokens, N, V);
    if (worst >= TOL) fail_msg("sparsed after loading: decoded logits off by %g", worst);
    /* another pattern and back; a B or KEEP the blocks were not chosen for */
    assert_int_equal(rw_model_set_attention(back, "window:4"), RW_OK);
    assert_int_equal(rw_model_set_attention(back, "sparsed:4,0.5"), RW_OK);
    assert_int_equal(rw_model_set_attention(back, "sparsed:8,0.5"), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "has the blocks of sparsed:4,0.5"));
    rw_model_free(back);

    rewrite_file(path, broken, "blocks.1.attn.sparsed", NULL, 0);
    assert_int_equal(rw_model_load(broken, &back), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "blocks.1.attn.sparsed"));
    rewrite_file(path, broken, NULL, "blocks.0.attn.sparsed", 7);
    assert_int_equal(rw_model_load(broken, &back), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "expected 0 or 1"));

    rw_model_free(m);
    assert_int_equal(rw_gpt_create(&c, &m), RW_OK); /* a dense model: no blocks to attend */
    assert_int_equal(rw_model_set_attention(m, "sparsed:4,0.5"), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "no blocks chosen"));
    rw_model_free(m);
    rw_text_free(calib);
    rw_tokenizer_free(tok);
    remove(path);
    remove(broken);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twin_matches_pytorch),
        cmocka_unit_test(test_specs),
        cmocka_unit_test(test_patterns_match_masked_twin),
        cmocka_unit_test(test_long_context),
        cmocka_unit_test(test_kernels_match_scalar),
        cmocka_unit_test(test_dma_gradient_finite_differences),
        cmocka_unit_test(test_selection_finds_planted_block),
        cmocka_unit_test(test_gpt_decode_and_file),
        cmocka_unit_test(test_plot_map_matches_twin),
        cmocka_unit_test(test_sparsed_choice_planted),
        cmocka_unit_test(test_gpt_sparsed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
