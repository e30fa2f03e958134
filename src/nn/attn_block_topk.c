/* Block top-k: keys in blocks of B positions, each summarised by its mean
 * key; queries in blocks of the same B positions, each block choosing
 * once, by the query at its first position (a causal model may read no
 * later one): it scores the complete key blocks before its own, and every
 * query t of the block attends to the K best and to its own block up to
 * t. The blockified dynamic pattern of "Training-free and Adaptive Sparse
 * Attention for Efficient Long Video Generation" (AdaSpa). One choice per
 * query block costs T/B² scores per query instead of T/B, and lets the
 * block's rows share each chunk of keys. */
#include "nn/attn_core.h"

static int topk_ranges(const att_pattern *p, const att_kv *kv, const float *q, int t,
                       att_range *out, float *work)
{
    int B = p->block, own = t / B;
    if (own <= p->topk) {
        out[0] = (att_range){0, t + 1};
        return 1;
    }
    float *sc = work;
    int *idx = (int *)(work + own);
    for (int j = 0; j < own; j++) sc[j] = att_dot(q, kv->means + (size_t)j * kv->ldm, kv->hd);
    att_top_k(sc, own, p->topk, idx);
    return att_blocks_to_ranges(idx, p->topk, B, own, t, out);
}

static int topk_max(const att_pattern *p, int T) { return (void)T, p->topk + 1; }

static int topk_tile_rows(const att_pattern *p) { return p->block; }

static int64_t topk_work(const att_pattern *p, int T, int hd)
{
    (void)hd;
    return 2 * ((int64_t)T / p->block + 1);
}

const att_pattern_ops att_block_topk_ops = {
    .name = "block-topk",
    .ranges = topk_ranges,
    .max_ranges = topk_max,
    .work_floats = topk_work,
    .uses_block_means = 1,
    .tile_ranges = att_tile_from_first,
    .tile_rows = topk_tile_rows,
};
