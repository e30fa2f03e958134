/* A tile of query rows of attention over key ranges: the online softmax of
 * FlashAttention ("FlashAttention: Fast and Memory-Efficient Exact
 * Attention with IO-Awareness", Dao et al. 2022) and its backward from
 * the saved log-sum-exp (FlashAttention-2's recomputation), chunk by
 * chunk through the kernel list's attention kernels. Keys and values are
 * token-major, each position's hd features contiguous (a pattern's
 * scattered blocks are then whole rows; the layer's feature-major
 * activations with a power-of-two stride between features thrashed the
 * cache, measured 25x slower per key at T = 16k), and the keys (values)
 * also transposed with a stride that is not a power of two, so one vector
 * holds the scores of consecutive keys. Rows of a tile share every chunk
 * they see: its keys are loaded once for all of them. */
#include <math.h>
#include <string.h>

#include "nn/attn_core.h"

/* Eight partial sums, so the compiler can keep them in one vector. */
float att_dot(const float *a, const float *b, int n)
{
    float acc[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++) acc[u] += a[j + u] * b[j + u];
    float tail = 0;
    for (; j < n; j++) tail += a[j] * b[j];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

static int clamp(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }

/* Keys of a chunk from c0 in [c0, s1): at most ATT_CHUNK, and none on
 * both sides of a window's sinks. */
static int chunk_keys(int c0, int s1, att_limit lim)
{
    int n = s1 - c0 < ATT_CHUNK ? s1 - c0 : ATT_CHUNK;
    return lim.window && c0 < lim.sink && lim.sink - c0 < n ? lim.sink - c0 : n;
}

/* The chunk of n keys from c0 and each row's first and last visible key
 * in it. */
static attn_chunk chunk_at(const att_kv *kv, int c0, int n, int t0, int R, att_limit lim, int *lo,
                           int *nv)
{
    for (int r = 0; r < R; r++) {
        nv[r] = clamp(t0 + r + 1 - c0, 0, n);
        lo[r] = lim.window && c0 >= lim.sink ? clamp(t0 + r - lim.window + 1 - c0, 0, n) : 0;
    }
    size_t at = (size_t)c0 * kv->ld;
    return (attn_chunk){kv->kt + c0, kv->vt ? kv->vt + c0 : NULL, kv->k + at, kv->v + at,
                        kv->ldt, kv->ld, kv->hd};
}

/* A lone row over many short ranges (routing's cluster keys and dma's kept
 * keys, often one position each) would call the chunk kernels once per
 * range, each call paying whole vectors of keys and its set-up for one or
 * two. Such a row's keys are copied instead, ATT_CHUNK at a time, into one
 * contiguous chunk of kv->gather (ATT_GATHER_FLOATS), which the kernels
 * then run in full vectors; the backward pass adds the chunk's key and
 * value gradients back at the keys' positions. */
#define GATHER_LDT (ATT_CHUNK + 16) /* rows of the gathered transposes, not a power of two */
#define GATHER_BELOW 4              /* gather when a range holds fewer keys on average */

static int gathers(const att_kv *kv, int t0, int R, const att_range *r, int nr, att_limit lim)
{
    return kv->gather && R == 1 && !lim.window && nr > 1 &&
           att_row_keys(r, nr, t0, lim) < (int64_t)GATHER_BELOW * nr;
}

/* The keys row t sees, in order, ATT_CHUNK at a time: calls run(n) with
 * pos[0..n) their positions after copying their keys transposed into kt
 * [hd][GATHER_LDT], their keys token-major into k [n][hd] (when k is not
 * NULL), their values into v [n][hd] (when v is not NULL) and transposed
 * into vt (when vt is not NULL). */
typedef struct {
    const att_kv *kv;
    float *kt, *vt, *k, *v;
    int pos[ATT_CHUNK];
} gather_chunk;

/* The key at position s into slot n of the gathered chunk. */
static void gather_key(gather_chunk *g, int n, int s)
{
    const att_kv *kv = g->kv;
    int hd = kv->hd;
    const float *key = kv->k + (size_t)s * kv->ld, *val = kv->v + (size_t)s * kv->ld;
    g->pos[n] = s;
    for (int d = 0; d < hd; d++) g->kt[(size_t)d * GATHER_LDT + n] = key[d];
    if (g->k) memcpy(g->k + (size_t)n * hd, key, sizeof(float) * (size_t)hd);
    if (g->v) memcpy(g->v + (size_t)n * hd, val, sizeof(float) * (size_t)hd);
    if (g->vt)
        for (int d = 0; d < hd; d++) g->vt[(size_t)d * GATHER_LDT + n] = val[d];
}

static int gather_next(gather_chunk *g, const att_range *r, int nr, int t, int *i, int *s)
{
    int n = 0;
    for (; *i < nr && n < ATT_CHUNK; (*i)++) {
        int s1 = r[*i].s1 < t + 1 ? r[*i].s1 : t + 1;
        if (*s < r[*i].s0) *s = r[*i].s0;
        for (; *s < s1 && n < ATT_CHUNK; (*s)++, n++) gather_key(g, n, *s);
        if (*s < s1) break; /* the chunk is full inside this range */
    }
    return n;
}

/* Adds a gathered chunk's key and value gradients gdk, gdv [n][hd] back at
 * the keys' positions in dk, dv. */
static void scatter_grads(const gather_chunk *g, int n, const float *gdk, const float *gdv,
                          float *dk, float *dv)
{
    const att_kv *kv = g->kv;
    int hd = kv->hd;
    for (int j = 0; j < n; j++) {
        float *dkj = dk + (size_t)g->pos[j] * kv->ld, *dvj = dv + (size_t)g->pos[j] * kv->ld;
        for (int d = 0; d < hd; d++) {
            dkj[d] += gdk[(size_t)j * hd + d];
            dvj[d] += gdv[(size_t)j * hd + d];
        }
    }
}

static void gather_forward(const attn_kernel_table *k, const att_kv *kv, const float *q, int t,
                           float scale, const att_range *r, int nr, float *m, float *l, float *o)
{
    int hd = kv->hd, i = 0, s = 0, n;
    gather_chunk g = {kv, kv->gather, NULL, NULL, kv->gather + (size_t)hd * GATHER_LDT, {0}};
    while ((n = gather_next(&g, r, nr, t, &i, &s)) > 0) {
        attn_chunk c = {g.kt, NULL, NULL, g.v, GATHER_LDT, hd, hd};
        int lo = 0;
        k->forward(&c, n, q, 1, &lo, &n, scale, m, l, o);
    }
}

static void gather_backward(const attn_kernel_table *k, const att_kv *kv, const float *q,
                            const float *dout, const float *lse, const float *delta, int t,
                            float scale, const att_range *r, int nr, float *dq, float *dk,
                            float *dv)
{
    int hd = kv->hd, i = 0, s = 0, n;
    size_t tr = (size_t)hd * GATHER_LDT, rows = (size_t)ATT_CHUNK * hd;
    float *kt = kv->gather, *vt = kt + tr, *kr = vt + tr, *gdk = kr + rows, *gdv = gdk + rows;
    gather_chunk g = {kv, kt, vt, kr, NULL, {0}};
    while ((n = gather_next(&g, r, nr, t, &i, &s)) > 0) {
        attn_chunk c = {kt, vt, kr, NULL, GATHER_LDT, hd, hd};
        int lo = 0;
        memset(gdk, 0, sizeof(float) * (size_t)n * hd);
        memset(gdv, 0, sizeof(float) * (size_t)n * hd);
        k->backward(&c, n, q, dout, 1, &lo, &n, scale, lse, delta, dq, gdk, gdv);
        scatter_grads(&g, n, gdk, gdv, dk, dv);
    }
}

/* The online softmax of R rows before their first chunk (running maxima
 * m, sums l and outputs o) and after their last (o normalised, each row's
 * log-sum-exp into lse), for att_tile_forward and att_rows_forward. */
static void softmax_start(float *m, float *l, float *o, int R, int hd)
{
    for (int i = 0; i < R; i++) m[i] = -INFINITY, l[i] = 0.0f;
    memset(o, 0, sizeof(float) * (size_t)R * hd);
}

static void softmax_finish(const float *m, const float *l, float *o, int R, int hd, float *lse)
{
    for (int i = 0; i < R; i++) {
        float inv = 1.0f / l[i];
        for (int d = 0; d < hd; d++) o[(size_t)i * hd + d] *= inv;
        lse[i] = m[i] + logf(l[i]);
    }
}

/* A group of rows sharing one key list (att_rows_forward): the list's
 * keys up to the last row, ATT_CHUNK at a time, copied into the gathered
 * chunk; each row sees those at or before its own position. */
typedef struct {
    const int *t, *keys;
    int R, nk; /* the keys at or before the last row */
    int j0;    /* the next chunk's first key */
} list_walk;

/* How many of the ascending keys[0..nkeys) lie before position t. */
static int keys_before(const int *keys, int nkeys, int t)
{
    int lo = 0, hi = nkeys;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (keys[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static list_walk list_walk_start(const int *t, int R, const int *keys, int nkeys)
{
    return (list_walk){t, keys, R, keys_before(keys, nkeys, t[R - 1] + 1), 0};
}

/* The next chunk into g with each row's visible count nv (lo all 0);
 * returns its keys, 0 after the last. */
static int list_walk_next(list_walk *w, gather_chunk *g, int *lo, int *nv)
{
    int n = w->nk - w->j0 < ATT_CHUNK ? w->nk - w->j0 : ATT_CHUNK;
    if (n <= 0) return 0;
    for (int j = 0; j < n; j++) gather_key(g, j, w->keys[w->j0 + j]);
    for (int r = 0, j = 0; r < w->R; r++) {
        while (j < n && g->pos[j] <= w->t[r]) j++;
        lo[r] = 0, nv[r] = j;
    }
    w->j0 += n;
    return n;
}

/* 1 when the list does not hold position t (the row at t sees its own
 * key apart then). */
static int own_outside(const int *keys, int nkeys, int t)
{
    int i = keys_before(keys, nkeys, t);
    return i == nkeys || keys[i] != t;
}

/* The rows' own keys copied into the gathered chunk, key r row r's, and
 * the visible interval of each row: its own key when the list does not
 * hold it, nothing when it does. One call of the kernels then takes
 * every row's own key (instead of a call of one key per row). */
static void own_keys(gather_chunk *g, const int *t, int R, const int *keys, int nkeys, int *lo,
                     int *nv)
{
    for (int r = 0; r < R; r++) {
        gather_key(g, r, t[r]);
        int out = own_outside(keys, nkeys, t[r]);
        lo[r] = out ? r : 0, nv[r] = out ? r + 1 : 0;
    }
}

void att_rows_forward(const attn_kernel_table *k, const att_kv *kv, const float *q, const int *t,
                      int R, float scale, const int *keys, int nkeys, float *o, float *lse)
{
    int hd = kv->hd, lo[ATT_TILE_ROWS], nv[ATT_TILE_ROWS], n;
    float m[ATT_TILE_ROWS], l[ATT_TILE_ROWS];
    softmax_start(m, l, o, R, hd);
    gather_chunk g = {kv, kv->gather, NULL, NULL, kv->gather + (size_t)hd * GATHER_LDT, {0}};
    list_walk w = list_walk_start(t, R, keys, nkeys);
    while ((n = list_walk_next(&w, &g, lo, nv)) > 0) {
        attn_chunk c = {g.kt, NULL, NULL, g.v, GATHER_LDT, hd, hd};
        k->forward(&c, n, q, R, lo, nv, scale, m, l, o);
    }
    own_keys(&g, t, R, keys, nkeys, lo, nv);
    attn_chunk c = {g.kt, NULL, NULL, g.v, GATHER_LDT, hd, hd};
    k->forward(&c, R, q, R, lo, nv, scale, m, l, o);
    softmax_finish(m, l, o, R, hd, lse);
}

void att_rows_backward(const attn_kernel_table *k, const att_kv *kv, const float *q,
                       const float *dout, const float *lse, const float *delta, const int *t,
                       int R, float scale, const int *keys, int nkeys, float *dq, float *dk,
                       float *dv)
{
    int hd = kv->hd, lo[ATT_TILE_ROWS], nv[ATT_TILE_ROWS], n;
    size_t tr = (size_t)hd * GATHER_LDT, rows = (size_t)ATT_CHUNK * hd;
    float *kt = kv->gather, *vt = kt + tr, *kr = vt + tr, *gdk = kr + rows, *gdv = gdk + rows;
    gather_chunk g = {kv, kt, vt, kr, NULL, {0}};
    list_walk w = list_walk_start(t, R, keys, nkeys);
    while ((n = list_walk_next(&w, &g, lo, nv)) > 0) {
        attn_chunk c = {kt, vt, kr, NULL, GATHER_LDT, hd, hd};
        memset(gdk, 0, sizeof(float) * (size_t)n * hd);
        memset(gdv, 0, sizeof(float) * (size_t)n * hd);
        k->backward(&c, n, q, dout, R, lo, nv, scale, lse, delta, dq, gdk, gdv);
        scatter_grads(&g, n, gdk, gdv, dk, dv);
    }
    own_keys(&g, t, R, keys, nkeys, lo, nv);
    attn_chunk c = {kt, vt, kr, NULL, GATHER_LDT, hd, hd};
    memset(gdk, 0, sizeof(float) * (size_t)R * hd);
    memset(gdv, 0, sizeof(float) * (size_t)R * hd);
    k->backward(&c, R, q, dout, R, lo, nv, scale, lse, delta, dq, gdk, gdv);
    scatter_grads(&g, R, gdk, gdv, dk, dv);
}

void att_tile_forward(const attn_kernel_table *k, const att_kv *kv, const float *q, int t0, int R,
                      float scale, const att_range *r, int nr, att_limit lim, float *o,
                      float *lse)
{
    int hd = kv->hd, end = t0 + R, lo[ATT_TILE_ROWS], nv[ATT_TILE_ROWS];
    float m[ATT_TILE_ROWS], l[ATT_TILE_ROWS];
    softmax_start(m, l, o, R, hd);
    if (gathers(kv, t0, R, r, nr, lim)) {
        gather_forward(k, kv, q, t0, scale, r, nr, m, l, o);
        nr = 0;
    }
    for (int i = 0; i < nr; i++) {
        int s1 = r[i].s1 < end ? r[i].s1 : end; /* keys no row of the tile sees */
        for (int c0 = r[i].s0, n; c0 < s1; c0 += n) {
            n = chunk_keys(c0, s1, lim);
            attn_chunk c = chunk_at(kv, c0, n, t0, R, lim, lo, nv);
            k->forward(&c, n, q, R, lo, nv, scale, m, l, o);
        }
    }
    softmax_finish(m, l, o, R, hd, lse);
}

void att_tile_backward(const attn_kernel_table *k, const att_kv *kv, const float *q,
                       const float *dout, const float *lse, const float *delta, int t0, int R,
                       float scale, const att_range *r, int nr, att_limit lim, float *dq,
                       float *dk, float *dv)
{
    int end = t0 + R, lo[ATT_TILE_ROWS], nv[ATT_TILE_ROWS];
    if (gathers(kv, t0, R, r, nr, lim)) {
        gather_backward(k, kv, q, dout, lse, delta, t0, scale, r, nr, dq, dk, dv);
        return;
    }
    for (int i = 0; i < nr; i++) {
        int s1 = r[i].s1 < end ? r[i].s1 : end;
        for (int c0 = r[i].s0, n; c0 < s1; c0 += n) {
            n = chunk_keys(c0, s1, lim);
            attn_chunk c = chunk_at(kv, c0, n, t0, R, lim, lo, nv);
            size_t at = (size_t)c0 * kv->ld;
            k->backward(&c, n, q, dout, R, lo, nv, scale, lse, delta, dq, dk + at, dv + at);
        }
    }
}

void att_block_mean(const att_kv *kv, int b, int block, float *means, int ldm)
{
    float *m = means + (size_t)b * ldm;
    for (int d = 0; d < kv->hd; d++) m[d] = 0.0f;
    for (int j = 0; j < block; j++) {
        const float *key = kv->k + (size_t)(b * block + j) * kv->ld;
        for (int d = 0; d < kv->hd; d++) m[d] += key[d];
    }
    for (int d = 0; d < kv->hd; d++) m[d] /= (float)block;
}

int64_t att_range_keys(const att_range *r, int nr)
{
    int64_t n = 0;
    for (int i = 0; i < nr; i++) n += r[i].s1 - r[i].s0;
    return n;
}

int64_t att_list_row_keys(const int *keys, int nkeys, int t)
{
    return keys_before(keys, nkeys, t) + 1;
}

int64_t att_row_keys(const att_range *r, int nr, int t, att_limit lim)
{
    int64_t n = 0;
    for (int i = 0; i < nr; i++) {
        int s1 = r[i].s1 <= t + 1 ? r[i].s1 : t + 1;
        if (r[i].s0 >= s1) continue;
        if (!lim.window) {
            n += s1 - r[i].s0;
            continue;
        }
        /* [s0, s1) split at the sinks: below them all, above only the window */
        int mid = clamp(lim.sink, r[i].s0, s1), from = t - lim.window + 1;
        n += mid - r[i].s0;
        n += s1 - (from > mid ? clamp(from, mid, s1) : mid);
    }
    return n;
}
