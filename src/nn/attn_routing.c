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
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
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

void routing_group_keys(int C, const float *cl, int ldc, int T, int *ptr, int *pos)
{
    for (int c = 0; c <= C; c++) ptr[c] = 0;
    for (int s = 0; s < T; s++) ptr[(int)cl[(size_t)s * ldc] + 1]++;
    for (int c = 0; c < C; c++) ptr[c + 1] += ptr[c];
    for (int s = 0; s < T; s++) pos[ptr[(int)cl[(size_t)s * ldc]]++] = s; /* ascending per cluster */
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
        if ((int)kv->route_cl[(size_t)s * kv->ldc] == c) pos[n++] = s;
    return att_positions_to_ranges(pos, n, t, out);
}

/* The keys may come one by one, each its own range. */
static int routing_max(const att_pattern *p, int T) { return (void)p, T + 1; }

/* Queries read at once, feature by feature (one query's hd features lie
 * ldq apart, often a multiple of 4 KB: read query by query they fall
 * into the same cache sets). */
#define QUERY_BLOCK 64

/* ranges: T + 1; groups: a block of queries (QUERY_BLOCK × hd), each
 * query's cluster, the rows by cluster and each cluster's first (T, T and
 * C + 1 ints) */
static int64_t routing_work(const att_pattern *p, int T, int hd)
{
    return (int64_t)QUERY_BLOCK * hd + 2 * (int64_t)T + p->clusters + 2;
}

/* A whole sequence's queries by cluster: the rows of one cluster see the
 * same list, that cluster's keys, each up to its own position, so they
 * run together as tiles (attn_core.c, att_rows_forward). */
static int routing_groups(const att_pattern *p, const att_kv *kv, const float *q, size_t ldq, int T,
                          float *work, const int **rows, const int **first)
{
    int C = p->clusters, hd = kv->hd;
    float *x = work;
    int *cl = (int *)(work + (size_t)QUERY_BLOCK * hd), *row = cl + T, *start = row + T;
    for (int c = 0; c <= C; c++) start[c] = 0;
    for (int t0 = 0; t0 < T; t0 += QUERY_BLOCK) {
        int n = T - t0 < QUERY_BLOCK ? T - t0 : QUERY_BLOCK;
        for (int d = 0; d < hd; d++)
            for (int i = 0; i < n; i++) x[(size_t)i * hd + d] = q[(size_t)d * ldq + t0 + i];
        for (int i = 0; i < n; i++) {
            cl[t0 + i] = routing_nearest(kv->centroids, C, hd, x + (size_t)i * hd);
            start[cl[t0 + i] + 1]++;
        }
    }
    for (int c = 0; c < C; c++) start[c + 1] += start[c];
    for (int t = 0; t < T; t++) row[start[cl[t]]++] = t; /* ascending per cluster */
    for (int c = C; c > 0; c--) start[c] = start[c - 1];
    start[0] = 0;
    *rows = row, *first = start;
    return C;
}

static const int *routing_cluster_keys(const att_pattern *p, const att_kv *kv, int g, int *n,
                                       float *work)
{
    (void)p, (void)work;
    *n = kv->route_ptr[g + 1] - kv->route_ptr[g];
    return kv->route_pos + kv->route_ptr[g];
}

/* ---- the layer state: centroids ---------------------------------------- */

static att_state_tensor routing_tensor(const att_pattern *p, int k, int heads, int hd)
{
    (void)k;
    return (att_state_tensor){"centroids", (int64_t)heads * p->clusters, hd};
}

static void routing_init_state(const att_pattern *p, float *const *state, int heads, int hd,
                               uint64_t seed)
{
    routing_init(state[0], heads, p->clusters, hd, seed);
}

/* A key's cluster, as a float (a whole number below 2^24). */
static float routing_key_state(const att_pattern *p, float *const *state, int h, int hd,
                               float scale, const float *k, const float *v, float *slot)
{
    (void)scale, (void)v;
    int C = p->clusters;
    *slot = (float)routing_nearest(state[0] + (size_t)h * C * hd, C, hd, k);
    return 0.0f;
}

static void routing_view(const att_pattern *p, float *const *state, int h, int hd,
                         const float *slots, int lds, att_kv *kv)
{
    kv->centroids = state[0] + (size_t)h * p->clusters * hd;
    kv->route_cl = slots, kv->ldc = lds;
}

/* ptr [C + 1] and pos [T] */
static int64_t routing_index_floats(const att_pattern *p, int T)
{
    return (int64_t)p->clusters + 1 + T;
}

static void routing_index(const att_pattern *p, int T, float *work, att_kv *kv)
{
    int *ptr = (int *)work, *pos = ptr + p->clusters + 1;
    routing_group_keys(p->clusters, kv->route_cl, kv->ldc, T, ptr, pos);
    kv->route_ptr = ptr, kv->route_pos = pos;
}

/* The moving-average step of head h's centroids from the batch's unit
 * queries and keys, each given to its nearest centroid (training only). */
static void routing_backward_head(const att_pattern *p, float *const *state, float *const *grad,
                                  int h, const att_batch *b)
{
    (void)grad;
    if (!b->training) return;
    int hd = b->dim / b->heads, C = p->clusters;
    float *mu = state[0] + (size_t)h * C * hd;
    float *x = malloc(sizeof(float) * 2 * QUERY_BLOCK * (size_t)hd);
    double *sum = calloc((size_t)C * hd, sizeof(double));
    int64_t *count = calloc((size_t)C, sizeof(int64_t));
    RW_ASSERT(x && sum && count, "out of memory for the centroid step of layer %s", b->layer);
    for (int j0 = 0; j0 < b->n; j0 += QUERY_BLOCK) {
        int n = b->n - j0 < QUERY_BLOCK ? b->n - j0 : QUERY_BLOCK;
        for (int part = 0; part < 2; part++) /* [part][i][hd] */
            for (int d = 0; d < hd; d++) {
                const float *src = b->qkv + (size_t)(part * b->dim + h * hd + d) * b->bp + j0;
                for (int i = 0; i < n; i++) x[((size_t)part * QUERY_BLOCK + i) * hd + d] = src[i];
            }
        for (int i = 0; i < n; i++)
            for (int part = 0; part < 2; part++) /* its query, then its key */
                routing_accumulate(mu, C, hd, x + ((size_t)part * QUERY_BLOCK + i) * hd, sum, count);
    }
    routing_step(mu, C, hd, sum, count);
    free(x), free(sum), free(count);
}

static const att_state_ops routing_state = {
    .n_tensors = 1,
    .tensor = routing_tensor,
    .trained = 0,
    .extra_column = 0,
    .init = routing_init_state,
    .seed_salt = 0x726f757465ull, /* "route" */
    .key_state = routing_key_state,
    .view = routing_view,
    .index = routing_index,
    .index_floats = routing_index_floats,
    .backward_head = routing_backward_head,
    .single_process_only = "routing attention's centroids (each process would move them by its "
                           "own batch)",
};

const att_pattern_ops att_routing_ops = {
    .name = "routing",
    .ranges = routing_ranges,
    .max_ranges = routing_max,
    .work_floats = routing_work,
    .groups = routing_groups,
    .group_keys = routing_cluster_keys,
    .state = &routing_state,
};
