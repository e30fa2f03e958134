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

void att_tile_forward(const attn_kernel_table *k, const att_kv *kv, const float *q, int t0, int R,
                      float scale, const att_range *r, int nr, att_limit lim, float *o,
                      float *lse)
{
    int hd = kv->hd, end = t0 + R, lo[ATT_TILE_ROWS], nv[ATT_TILE_ROWS];
    float m[ATT_TILE_ROWS], l[ATT_TILE_ROWS];
    for (int i = 0; i < R; i++) m[i] = -INFINITY, l[i] = 0.0f;
    memset(o, 0, sizeof(float) * (size_t)R * hd);
    for (int i = 0; i < nr; i++) {
        int s1 = r[i].s1 < end ? r[i].s1 : end; /* keys no row of the tile sees */
        for (int c0 = r[i].s0, n; c0 < s1; c0 += n) {
            n = chunk_keys(c0, s1, lim);
            attn_chunk c = chunk_at(kv, c0, n, t0, R, lim, lo, nv);
            k->forward(&c, n, q, R, lo, nv, scale, m, l, o);
        }
    }
    for (int i = 0; i < R; i++) {
        float inv = 1.0f / l[i];
        for (int d = 0; d < hd; d++) o[(size_t)i * hd + d] *= inv;
        lse[i] = m[i] + logf(l[i]);
    }
}

void att_tile_backward(const attn_kernel_table *k, const att_kv *kv, const float *q,
                       const float *dout, const float *lse, const float *delta, int t0, int R,
                       float scale, const att_range *r, int nr, att_limit lim, float *dq,
                       float *dk, float *dv)
{
    int end = t0 + R, lo[ATT_TILE_ROWS], nv[ATT_TILE_ROWS];
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
