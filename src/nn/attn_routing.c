/* Routing attention: "Efficient Content-Based Sparse Attention with
 * Routing Transformers" (Roy, Saffar, Vaswani & Grangier 2021). Each head
 * keeps C centroids on the unit sphere; a query attends to the earlier
 * keys whose nearest centroid is its own nearest (and to itself, so no
 * row is empty). Nearest means the largest dot product with the
 * centroid, which for the normalised vectors of the paper is the nearest
 * point on the sphere: normalising x does not change the argmax.
 *
 * A key's cluster depends on the key and the centroids only, never on a
 * later position, so one token decoded with a KV cache sees the keys the
 * full pass showed it. The centroids are layer state, not parameters:
 * seeded random unit vectors at first (routing_init), then, in each
 * training step's backward pass (after the step's forward, never while
 * evaluating), moved by a moving average towards the mean of the unit
 * queries and keys they got in that batch, and put back on the sphere
 * (the paper's online k-means; it sums and uses a decay of 0.999 over
 * long runs, here a mean and a rate of ROUTING_RATE, so a few hundred
 * steps move them). A centroid that got nothing stays where it is. */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "nn/attn_core.h"
#include "nn/attn_learned.h"

void routing_init(float *centroids, int heads, int C, int hd, uint64_t seed)
{
    rng_state r;
    rng_seed(&r, seed);
    for (int64_t c = 0; c < (int64_t)heads * C; c++) {
        float *mu = centroids + c * hd;
        double n2 = 0;
        for (int d = 0; d < hd; d++) {
            mu[d] = (float)rng_normal(&r);
            n2 += (double)mu[d] * mu[d];
        }
        float inv = n2 > 0 ? (float)(1.0 / sqrt(n2)) : 0.0f;
        for (int d = 0; d < hd; d++) mu[d] *= inv;
    }
}

int routing_nearest(const float *centroids, int C, int hd, const float *x)
{
    int best = 0;
    float top = att_dot(x, centroids, hd);
    for (int c = 1; c < C; c++) {
        float s = att_dot(x, centroids + (size_t)c * hd, hd);
        if (s > top) top = s, best = c;
    }
    return best;
}

void routing_group_keys(const float *centroids, int C, const att_kv *kv, int T, int *ptr, int *pos,
                        int *cl)
{
    for (int c = 0; c <= C; c++) ptr[c] = 0;
    for (int s = 0; s < T; s++) {
        cl[s] = routing_nearest(centroids, C, kv->hd, kv->k + (size_t)s * kv->ld);
        ptr[cl[s] + 1]++;
    }
    for (int c = 0; c < C; c++) ptr[c + 1] += ptr[c];
    for (int s = 0; s < T; s++) pos[ptr[cl[s]]++] = s; /* ascending within each cluster */
    for (int c = C; c > 0; c--) ptr[c] = ptr[c - 1];
    ptr[0] = 0;
}

void routing_accumulate(const float *centroids, int C, int hd, const float *x, double *sum,
                        int64_t *count)
{
    double n2 = 0;
    for (int d = 0; d < hd; d++) n2 += (double)x[d] * x[d];
    if (!(n2 > 0) || !isfinite(n2)) return;
    int c = routing_nearest(centroids, C, hd, x);
    double inv = 1.0 / sqrt(n2);
    for (int d = 0; d < hd; d++) sum[(size_t)c * hd + d] += x[d] * inv;
    count[c]++;
}

void routing_step(float *centroids, int C, int hd, const double *sum, const int64_t *count)
{
    for (int c = 0; c < C; c++) {
        if (count[c] == 0) continue;
        float *mu = centroids + (size_t)c * hd;
        const double *s = sum + (size_t)c * hd;
        double n2 = 0, inv_n = 1.0 / (double)count[c];
        for (int d = 0; d < hd; d++) {
            double next = mu[d] + ROUTING_RATE * (s[d] * inv_n - mu[d]);
            n2 += next * next;
        }
        if (!(n2 > 0)) continue; /* the mean cancelled the centroid exactly: keep it */
        double inv = 1.0 / sqrt(n2);
        for (int d = 0; d < hd; d++)
            mu[d] = (float)((mu[d] + ROUTING_RATE * (s[d] * inv_n - mu[d])) * inv);
    }
}

static int routing_ranges(const att_pattern *p, const att_kv *kv, const float *q, int t,
                          att_range *out, float *work)
{
    int c = routing_nearest(kv->centroids, p->clusters, kv->hd, q);
    if (kv->route_pos) { /* the cluster's keys before t: a prefix of its list */
        const int *pos = kv->route_pos + kv->route_ptr[c];
        int lo = 0, hi = kv->route_ptr[c + 1] - kv->route_ptr[c];
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (pos[mid] < t) lo = mid + 1;
            else hi = mid;
        }
        return att_positions_to_ranges(pos, lo, t, out);
    }
    int *pos = (int *)work, n = 0;
    for (int s = 0; s < t; s++)
        if (kv->route_cl[(size_t)s * kv->ldc] == c) pos[n++] = s;
    return att_positions_to_ranges(pos, n, t, out);
}

/* No bound without the length: att_max_ranges gives T + 1. */
static int routing_max(const att_pattern *p) { return (void)p, 1 << 30; }

static int64_t routing_work(const att_pattern *p, int T, int hd)
{
    (void)p, (void)hd;
    return (int64_t)T + 1;
}

const att_pattern_ops att_routing_ops = {"routing", routing_ranges, routing_max, routing_work, 0,
                                        NULL, NULL};
