/* Hierarchical top-k: "HiP Attention: Sparse Sub-Quadratic Attention with
 * Hierarchical Attention Pruning". The complete key
 * blocks before the query's own are cut into K groups; each round halves
 * every group, scores each half by the key at its middle and keeps the K
 * best halves, until every group is one block: O(K log T) scores per
 * query instead of one per block. The query's own block is always seen.
 * As block-topk does, each block of B queries descends once, with the
 * query at its first position, for all of its rows. */
#include "nn/attn_core.h"

/* The key at position s scored against q. */
static float key_score(const att_kv *kv, const float *q, int s)
{
    return att_dot(q, kv->k + (size_t)s * kv->ld, kv->hd);
}

static int hip_ranges(const att_pattern *p, const att_kv *kv, const float *q, int t,
                      att_range *out, float *work)
{
    int B = p->block, K = p->topk, own = t / B;
    if (own <= K) {
        out[0] = (att_range){0, t + 1};
        return 1;
    }
    /* groups of blocks [lo, hi): K kept, up to 2K candidates */
    int *lo = (int *)work, *hi = lo + 2 * K, *clo = hi + 2 * K, *chi = clo + 2 * K;
    int *idx = chi + 2 * K;
    float *sc = (float *)(idx + 2 * K);
    for (int i = 0; i < K; i++) {
        lo[i] = (int)((int64_t)own * i / K);
        hi[i] = (int)((int64_t)own * (i + 1) / K);
    }
    for (int wide = 1; wide;) {
        int n = 0;
        wide = 0;
        for (int i = 0; i < K; i++) {
            int mid = hi[i] - lo[i] > 1 ? (lo[i] + hi[i]) / 2 : hi[i];
            clo[n] = lo[i], chi[n++] = mid;
            if (mid < hi[i]) clo[n] = mid, chi[n++] = hi[i];
        }
        for (int c = 0; c < n; c++) sc[c] = key_score(kv, q, (clo[c] * B + chi[c] * B - 1) / 2);
        att_top_k(sc, n, K, idx);
        for (int i = 0; i < K; i++) {
            lo[i] = clo[idx[i]], hi[i] = chi[idx[i]];
            wide |= hi[i] - lo[i] > 1;
        }
    }
    return att_blocks_to_ranges(lo, K, B, own, t, out);
}

static int hip_max(const att_pattern *p, int T) { return (void)T, p->topk + 1; }

static int hip_tile_rows(const att_pattern *p) { return p->block; }

static int64_t hip_work(const att_pattern *p, int T, int hd)
{
    (void)T, (void)hd;
    return 12 * (int64_t)p->topk + 16;
}

const att_pattern_ops att_hip_ops = {
    .name = "hip",
    .ranges = hip_ranges,
    .max_ranges = hip_max,
    .work_floats = hip_work,
    .tile_ranges = att_tile_from_first,
    .tile_rows = hip_tile_rows,
};
