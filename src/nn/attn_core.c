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

/* The chunk of n keys from c0 and each row's causal limit in it. */
static attn_chunk chunk_at(const att_kv *kv, int c0, int n, int t0, int R, int *nv)
{
    for (int r = 0; r < R; r++) {
        int see = t0 + r + 1 - c0;
        nv[r] = see < 0 ? 0 : see > n ? n : see;
    }
    size_t at = (size_t)c0 * kv->ld;
    return (attn_chunk){kv->kt + c0, kv->vt ? kv->vt + c0 : NULL, kv->k + at, kv->v + at,
                        kv->ldt, kv->ld, kv->hd};
}

void att_tile_forward(const attn_kernel_table *k, const att_kv *kv, const float *q, int t0, int R,
                      float scale, const att_range *r, int nr, float *o, float *lse)
{
    int hd = kv->hd, end = t0 + R, nv[ATT_TILE_ROWS];
    float m[ATT_TILE_ROWS], l[ATT_TILE_ROWS];
    for (int i = 0; i < R; i++) m[i] = -INFINITY, l[i] = 0.0f;
    memset(o, 0, sizeof(float) * (size_t)R * hd);
    for (int i = 0; i < nr; i++) {
        int s1 = r[i].s1 < end ? r[i].s1 : end; /* keys no row of the tile sees */
        for (int c0 = r[i].s0; c0 < s1; c0 += ATT_CHUNK) {
            int n = s1 - c0 < ATT_CHUNK ? s1 - c0 : ATT_CHUNK;
            attn_chunk c = chunk_at(kv, c0, n, t0, R, nv);
            k->forward(&c, n, q, R, nv, scale, m, l, o);
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
                       float scale, const att_range *r, int nr, float *dq, float *dk, float *dv)
{
    int end = t0 + R, nv[ATT_TILE_ROWS];
    for (int i = 0; i < nr; i++) {
        int s1 = r[i].s1 < end ? r[i].s1 : end;
        for (int c0 = r[i].s0; c0 < s1; c0 += ATT_CHUNK) {
            int n = s1 - c0 < ATT_CHUNK ? s1 - c0 : ATT_CHUNK;
            attn_chunk c = chunk_at(kv, c0, n, t0, R, nv);
            size_t at = (size_t)c0 * kv->ld;
            k->backward(&c, n, q, dout, R, nv, scale, lse, delta, dq, dk + at, dv + at);
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

int64_t att_range_keys_upto(const att_range *r, int nr, int t)
{
    int64_t n = 0;
    for (int i = 0; i < nr && r[i].s0 <= t; i++) n += (r[i].s1 <= t + 1 ? r[i].s1 : t + 1) - r[i].s0;
    return n;
}
