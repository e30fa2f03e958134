/* Dense causal attention through the block-sparse core: every position up
 * to the query's own, with no T×T buffer at any length. */
#include "nn/attn_pattern.h"

static int dense_ranges(const att_pattern *p, const att_kv *kv, const float *q, int t,
                        att_range *out, float *work)
{
    (void)p, (void)kv, (void)q, (void)work;
    out[0] = (att_range){0, t + 1};
    return 1;
}

static int dense_max(const att_pattern *p, int T) { return (void)p, (void)T, 1; }

/* All rows of a tile see 0 .. their own position. */
static int dense_tile(const att_pattern *p, const att_kv *kv, const float *q, int t0, int t1,
                      att_range *out, float *work)
{
    (void)p, (void)kv, (void)q, (void)t0, (void)work;
    out[0] = (att_range){0, t1};
    return 1;
}

static int dense_tile_rows(const att_pattern *p) { return (void)p, 64; }
static int64_t dense_work(const att_pattern *p, int T, int hd) { return (void)p, (void)T, (void)hd, 0; }

const att_pattern_ops att_dense_ops = {
    .name = "dense",
    .ranges = dense_ranges,
    .max_ranges = dense_max,
    .work_floats = dense_work,
    .tile_ranges = dense_tile,
    .tile_rows = dense_tile_rows,
};
