/* Local causal window plus always-visible first positions (attention
 * sinks): the diagonal and vertical-stripe patterns found in trained
 * attention by "Sparse-vDiT: Unleashing the Power of Sparse Attention to
 * Accelerate Video Diffusion Transformers". The query
 * at t sees t - W + 1 .. t and 0 .. S - 1. */
#include "nn/attn_pattern.h"

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

static int window_max(const att_pattern *p) { return (void)p, 2; }
static int64_t window_work(const att_pattern *p, int T, int hd) { return (void)p, (void)T, (void)hd, 0; }

const att_pattern_ops att_window_ops = {"window", window_ranges, window_max, window_work, 0, NULL,
                                        NULL};
