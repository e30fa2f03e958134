/* One query row of attention over key ranges: the online softmax of
 * FlashAttention ("FlashAttention: Fast and Memory-Efficient Exact
 * Attention with IO-Awareness", Dao et al. 2022) and its backward from
 * the saved log-sum-exp (FlashAttention-2's recomputation). Keys and
 * values stay feature-major as the layer's activations are, so a chunk's
 * scores are hd contiguous multiply-adds over its positions and its
 * output hd dot products: both vectorise without gathering. */
#include <math.h>

#include "nn/attn_core.h"

/* Eight partial sums, so the compiler can keep them in one vector. */
static float dot(const float *a, const float *b, int n)
{
    float acc[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++) acc[u] += a[j + u] * b[j + u];
    float tail = 0;
    for (; j < n; j++) tail += a[j] * b[j];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

/* s[j] = (scale · q) · k_{c0 + j} for j < n. */
static void chunk_scores(const att_kv *kv, const float *q, float scale, int c0, int n, float *s)
{
    for (int j = 0; j < n; j++) s[j] = 0.0f;
    for (int d = 0; d < kv->hd; d++) {
        const float *k = kv->k + (size_t)d * kv->ld + c0;
        float qd = q[d] * scale;
        for (int j = 0; j < n; j++) s[j] += qd * k[j];
    }
}

float att_row_forward(const att_kv *kv, const float *q, float scale, const att_range *r, int nr,
                      float *o)
{
    int hd = kv->hd;
    float s[ATT_CHUNK], m = -INFINITY, l = 0.0f;
    for (int d = 0; d < hd; d++) o[d] = 0.0f;
    for (int i = 0; i < nr; i++)
        for (int c0 = r[i].s0; c0 < r[i].s1; c0 += ATT_CHUNK) {
            int n = r[i].s1 - c0 < ATT_CHUNK ? r[i].s1 - c0 : ATT_CHUNK;
            chunk_scores(kv, q, scale, c0, n, s);
            float cm = s[0];
            for (int j = 1; j < n; j++) cm = s[j] > cm ? s[j] : cm;
            if (cm > m) { /* a new maximum rescales what was summed so far */
                float a = m == -INFINITY ? 0.0f : expf(m - cm);
                for (int d = 0; d < hd; d++) o[d] *= a;
                l *= a;
                m = cm;
            }
            for (int j = 0; j < n; j++) l += s[j] = expf(s[j] - m);
            for (int d = 0; d < hd; d++) o[d] += dot(s, kv->v + (size_t)d * kv->ld + c0, n);
        }
    float inv = 1.0f / l;
    for (int d = 0; d < hd; d++) o[d] *= inv;
    return m + logf(l);
}

void att_row_backward(const att_kv *kv, const float *q, float scale, const att_range *r, int nr,
                      float lse, const float *dout, float delta, float *dq, float *dk, float *dv)
{
    int hd = kv->hd, ld = kv->ld;
    float p[ATT_CHUNK], ds[ATT_CHUNK];
    for (int i = 0; i < nr; i++)
        for (int c0 = r[i].s0; c0 < r[i].s1; c0 += ATT_CHUNK) {
            int n = r[i].s1 - c0 < ATT_CHUNK ? r[i].s1 - c0 : ATT_CHUNK;
            chunk_scores(kv, q, scale, c0, n, p);
            for (int j = 0; j < n; j++) {
                p[j] = expf(p[j] - lse);
                ds[j] = 0.0f;
            }
            for (int d = 0; d < hd; d++) { /* ds = dP = dout · v_s, for now */
                const float *v = kv->v + (size_t)d * ld + c0;
                for (int j = 0; j < n; j++) ds[j] += dout[d] * v[j];
            }
            for (int j = 0; j < n; j++) ds[j] = p[j] * (ds[j] - delta);
            for (int d = 0; d < hd; d++) {
                const float *k = kv->k + (size_t)d * ld + c0;
                float *gk = dk + (size_t)d * ld + c0, *gv = dv + (size_t)d * ld + c0;
                float qd = q[d] * scale, od = dout[d];
                dq[d] += scale * dot(ds, k, n);
                for (int j = 0; j < n; j++) {
                    gk[j] += qd * ds[j];
                    gv[j] += od * p[j];
                }
            }
        }
}

void att_block_mean(const att_kv *kv, int b, int block, float *means, int ldm)
{
    for (int d = 0; d < kv->hd; d++) {
        const float *k = kv->k + (size_t)d * kv->ld + (size_t)b * block;
        float sum = 0.0f;
        for (int j = 0; j < block; j++) sum += k[j];
        means[(size_t)d * ldm + b] = sum / (float)block;
    }
}

int64_t att_range_keys(const att_range *r, int nr)
{
    int64_t n = 0;
    for (int i = 0; i < nr; i++) n += r[i].s1 - r[i].s0;
    return n;
}
