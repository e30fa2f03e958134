/* One query row of attention over key ranges: the online softmax of
 * FlashAttention ("FlashAttention: Fast and Memory-Efficient Exact
 * Attention with IO-Awareness", Dao et al. 2022) and its backward from
 * the saved log-sum-exp (FlashAttention-2's recomputation). Keys and
 * values are token-major, each position's hd features contiguous: a
 * pattern's scattered blocks are then whole rows, and the layer's
 * feature-major activations with a power-of-two stride between features
 * thrashed the cache (measured: 25x slower per key at T = 16k). */
#include <math.h>

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

static void axpy(float *y, float a, const float *x, int n)
{
    for (int j = 0; j < n; j++) y[j] += a * x[j];
}

static const float *key(const att_kv *kv, int s) { return kv->k + (size_t)s * kv->ld; }
static const float *value(const att_kv *kv, int s) { return kv->v + (size_t)s * kv->ld; }

float att_row_forward(const att_kv *kv, const float *q, float scale, const att_range *r, int nr,
                      float *o)
{
    int hd = kv->hd;
    float s[ATT_CHUNK], m = -INFINITY, l = 0.0f;
    for (int d = 0; d < hd; d++) o[d] = 0.0f;
    for (int i = 0; i < nr; i++)
        for (int c0 = r[i].s0; c0 < r[i].s1; c0 += ATT_CHUNK) {
            int n = r[i].s1 - c0 < ATT_CHUNK ? r[i].s1 - c0 : ATT_CHUNK;
            float cm = -INFINITY;
            for (int j = 0; j < n; j++) {
                s[j] = scale * att_dot(q, key(kv, c0 + j), hd);
                cm = s[j] > cm ? s[j] : cm;
            }
            if (cm > m) { /* a new maximum rescales what was summed so far */
                float a = m == -INFINITY ? 0.0f : expf(m - cm);
                for (int d = 0; d < hd; d++) o[d] *= a;
                l *= a;
                m = cm;
            }
            for (int j = 0; j < n; j++) {
                float p = expf(s[j] - m);
                l += p;
                axpy(o, p, value(kv, c0 + j), hd);
            }
        }
    float inv = 1.0f / l;
    for (int d = 0; d < hd; d++) o[d] *= inv;
    return m + logf(l);
}

void att_row_backward(const att_kv *kv, const float *q, float scale, const att_range *r, int nr,
                      float lse, const float *dout, float delta, float *dq, float *dk, float *dv)
{
    int hd = kv->hd;
    for (int i = 0; i < nr; i++)
        for (int s = r[i].s0; s < r[i].s1; s++) {
            const float *k = key(kv, s), *v = value(kv, s);
            float p = expf(scale * att_dot(q, k, hd) - lse);
            float ds = p * (att_dot(dout, v, hd) - delta);
            axpy(dq, scale * ds, k, hd);
            axpy(dk + (size_t)s * kv->ld, scale * ds, q, hd);
            axpy(dv + (size_t)s * kv->ld, p, dout, hd);
        }
}

void att_block_mean(const att_kv *kv, int b, int block, float *means, int ldm)
{
    float *m = means + (size_t)b * ldm;
    for (int d = 0; d < kv->hd; d++) m[d] = 0.0f;
    for (int j = 0; j < block; j++) axpy(m, 1.0f, key(kv, b * block + j), kv->hd);
    for (int d = 0; d < kv->hd; d++) m[d] /= (float)block;
}

int64_t att_range_keys(const att_range *r, int nr)
{
    int64_t n = 0;
    for (int i = 0; i < nr; i++) n += r[i].s1 - r[i].s0;
    return n;
}
