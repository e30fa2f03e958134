/* Dynamic mask attention: "Trainable Dynamic Mask Sparse Attention" (Shi
 * et al. 2025). What we follow: the mask is computed from the values —
 * per head, a learned projection of each key's value vector to a scalar
 * z = w·v, gated as m = exp(a · softplus(z)) with a learned coefficient a
 * per head (the paper's and its reference code's δ = exp(A · τ(vΔ))) —
 * each query keeps the K earlier keys of largest m (its own position is
 * always kept), and m is added to the scaled scores of the kept keys, so
 * the projection, the coefficient and (through m) the values get
 * gradients end to end; the top-K choice itself has none, as in the
 * paper. Where we simplify: the paper projects the values of all heads
 * (its Δ maps the whole value state to one scalar per head); here each
 * head projects its own value only (hd weights per head), which keeps
 * heads independent. The paper's w init follows the model's linear maps
 * and a starts at zero, as here: at first every m is 1, the ties go to
 * the earliest keys, and a learns before w does.
 *
 * The mask depends only on the key, so the K kept keys of the query at t
 * are the top K of m[0..t): one ranking for all queries. Over a whole
 * sequence a heap of the K best so far gives, in O(T log K), the query at
 * which each key drops out (dma_prepare); a query then scans only the keys
 * some query keeps. Decoding ranks m[0..t) again (O(t), no state). Ranks
 * use one total order, the larger m first, then the earlier position,
 * NaN last, so both ways keep the same keys. */
#include <math.h>

#include "core/rng.h"
#include "nn/attn_core.h"
#include "nn/attn_learned.h"

static float softplus(float z) { return z > 20.0f ? z : log1pf(expf(z)); }

float dma_mask(const float *w, float a, const float *v, int hd, float *z)
{
    *z = att_dot(w, v, hd);
    return expf(a * softplus(*z));
}

void dma_mask_grads(float z, float a, float m, float *dm_dz, float *dm_da)
{
    float sig = 1.0f / (1.0f + expf(-z));
    *dm_dz = m * a * sig;
    *dm_da = m * softplus(z);
}

void dma_init(float *w, float *a, int heads, int hd, uint64_t seed)
{
    rng_state r;
    rng_seed(&r, seed);
    for (int64_t i = 0; i < (int64_t)heads * hd; i++) w[i] = (float)(0.02 * rng_normal(&r));
    for (int h = 0; h < heads; h++) a[h] = 0.0f;
}

/* The rank key of a mask value: NaN below every number. */
static float rank_key(float m) { return m == m ? m : -INFINITY; }

/* Key x ranks below key y. */
static int worse(const float *m, int x, int y)
{
    float a = rank_key(m[x]), b = rank_key(m[y]);
    return a < b || (a == b && x > y);
}

/* Restores the heap (worst kept key on top) below slot i. */
static void sift_down(const float *m, int *heap, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(m, heap[l], heap[w])) w = l;
        if (r < n && worse(m, heap[r], heap[w])) w = r;
        if (w == i) return;
        int tmp = heap[i];
        heap[i] = heap[w];
        heap[w] = tmp;
        i = w;
    }
}

int dma_prepare(const float *m, int T, int K, int *exit, int *cand, int *heap)
{
    int n = 0;
    for (int s = 0; s < T; s++) { /* queries from s + 1 on may keep key s */
        exit[s] = T + 1;
        if (n < K) {
            int i = n++;
            heap[i] = s;
            while (i > 0 && worse(m, heap[i], heap[(i - 1) / 2])) { /* sift up */
                int up = (i - 1) / 2, tmp = heap[i];
                heap[i] = heap[up];
                heap[up] = tmp;
                i = up;
            }
        } else if (worse(m, heap[0], s)) {
            exit[heap[0]] = s + 1;
            heap[0] = s;
            sift_down(m, heap, n, 0);
        } else {
            exit[s] = s + 1;
        }
    }
    int nc = 0;
    for (int s = 0; s < T; s++)
        if (exit[s] > s + 1) cand[nc++] = s;
    return nc;
}

static int dma_ranges(const att_pattern *p, const att_kv *kv, const float *q, int t,
                      att_range *out, float *work)
{
    (void)q;
    int *pos = (int *)work, n = 0;
    if (kv->dma_exit) {
        for (int i = 0; i < kv->n_cand && kv->dma_cand[i] < t; i++)
            if (kv->dma_exit[kv->dma_cand[i]] > t) pos[n++] = kv->dma_cand[i];
        return att_positions_to_ranges(pos, n, t, out);
    }
    float *key = work + t; /* decoding: rank m[0..t) again */
    for (int s = 0; s < t; s++) key[s] = rank_key(kv->dma_mask[(size_t)s * kv->ldd]);
    att_top_k(key, t, p->topk, pos);
    return att_positions_to_ranges(pos, t < p->topk ? t : p->topk, t, out);
}

static int dma_max(const att_pattern *p) { return p->topk + 1; }

static int64_t dma_work(const att_pattern *p, int T, int hd)
{
    (void)p, (void)hd;
    return 2 * (int64_t)T + 1;
}

const att_pattern_ops att_dma_ops = {"dma", dma_ranges, dma_max, dma_work, 0, NULL, NULL};
