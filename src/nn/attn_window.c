/* Local causal window plus always-visible first positions (attention
 * sinks): the diagonal and vertical-stripe patterns found in trained
 * attention by "Sparse-vDiT: Unleashing the Power of Sparse Attention to
 * Accelerate Video Diffusion Transformers". The query
 * at t sees t - W + 1 .. t and 0 .. S - 1. */
#include "nn/attn_core.h"

static int window_ranges(const att_pattern *p, const att_kv *kv, const float *q, int t,
                         att_range *out, float *work)
{
    (void)kv, (void)q, (void)work;
    int lo = t - p->window + 1 > 0 ? t - p->window + 1 : 0;
    if (p->sink >= lo) {
        out[0] = (att_range){0, t + 1};
        return 1;
    }
    if (p->sink == 0) {
        out[0] = (att_range){lo, t + 1};
        return 1;
    }
    out[0] = (att_range){0, p->sink};
    out[1] = (att_range){lo, t + 1};
    return 2;
}

/* Rows [t0, t1) together: the sinks, then every position a row's window
 * reaches; the core keeps each row to its own window (att_pattern_limit),
 * so a tile of 16 rows computes W + 15 scores per row for W. */
static int window_tile(const att_pattern *p, const att_kv *kv, const float *q, int t0, int t1,
                       att_range *out, float *work)
{
    (void)kv, (void)q, (void)work;
    int lo = t0 - p->window + 1 > 0 ? t0 - p->window + 1 : 0, n = 0;
    if (p->sink > 0) {
        int s = p->sink < t1 ? p->sink : t1;
        out[n++] = (att_range){0, s};
        lo = lo > s ? lo : s;
    }
    if (lo < t1) out[n++] = (att_range){lo, t1};
    return n;
}

static int window_tile_rows(const att_pattern *p) { return (void)p, ATT_TILE_ROWS; }

static int window_max(const att_pattern *p, int T) { return (void)p, (void)T, 2; }
static int64_t window_work(const att_pattern *p, int T, int hd) { return (void)p, (void)T, (void)hd, 0; }

const att_pattern_ops att_window_ops = {
    .name = "window",
    .ranges = window_ranges,
    .max_ranges = window_max,
    .work_floats = window_work,
    .tile_ranges = window_tile,
    .tile_rows = window_tile_rows,
};
