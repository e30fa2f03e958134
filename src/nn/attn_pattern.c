/* The pattern specs of --attention and what the patterns share: turning
 * chosen key blocks into ranges, and a deterministic top-k. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/attn_pattern.h"

#define ATT_MAX_BLOCK 65536

const att_pattern_ops *att_pattern_ops_of(const att_pattern *p)
{
    static const att_pattern_ops *const table[ATT_N_KINDS] = {
        [ATT_DENSE] = &att_dense_ops, [ATT_WINDOW] = &att_window_ops,
        [ATT_BLOCK_TOPK] = &att_block_topk_ops, [ATT_HIP] = &att_hip_ops,
        [ATT_SPARSED] = &att_sparsed_ops, [ATT_ROUTING] = &att_routing_ops,
        [ATT_DMA] = &att_dma_ops};
    return table[p->kind];
}

att_limit att_pattern_limit(const att_pattern *p)
{
    return p->kind == ATT_WINDOW ? (att_limit){p->window, p->sink} : (att_limit){0, 0};
}

int att_max_ranges(const att_pattern *p, int T)
{
    return att_pattern_ops_of(p)->max_ranges(p, T);
}

int att_positions_to_ranges(const int *pos, int n, int t, att_range *out)
{
    int nr = 0;
    for (int i = 0; i <= n; i++) {
        int s = i < n ? pos[i] : t;
        if (nr > 0 && out[nr - 1].s1 == s) out[nr - 1].s1 = s + 1;
        else out[nr++] = (att_range){s, s + 1};
    }
    return nr;
}

/* A decimal integer in [lo, hi] at *s, which moves past it. */
static int read_int(const char **s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(*s, &end, 10);
    if (end == *s || errno != 0 || v < lo || v > hi || (**s < '0' || **s > '9')) return 0;
    *out = (int)v;
    *s = end;
    return 1;
}

static rw_status bad(const char *spec, const char *expected)
{
    return rw_fail(RW_ERR_INVALID_ARGUMENT, "--attention '%s': expected %s", spec, expected);
}

/* A decimal fraction in (0, 1] at *s, which moves past it. */
static int read_share(const char **s, float *out)
{
    char *end;
    if (**s < '0' || **s > '9') return 0; /* no sign, space, "inf" or "nan" */
    errno = 0;
    double v = strtod(*s, &end);
    if (end == *s || errno != 0 || !(v > 0.0 && v <= 1.0)) return 0;
    /* to the 6 digits att_pattern_format writes, so a spec reads back equal */
    char six[32];
    snprintf(six, sizeof six, "%g", v);
    *out = (float)strtod(six, NULL);
    if (!(*out > 0.0f)) return 0;
    *s = end;
    return 1;
}

#define BLOCK_FORM " (B key positions per block in [1, 65536], K blocks >= 1)"
#define ATT_MAX_CLUSTERS 4096
#define ALL_FORMS                                                                           \
    "dense, window:W[,sink:S], block-topk:B,K, hip:B,K, sparsed:B,KEEP, routing:C or dma:K"

rw_status att_pattern_parse(const char *spec, att_pattern *out)
{
    att_pattern p = {.kind = ATT_DENSE};
    if (!spec) return bad("(null)", "a pattern");
    const char *s;
    if (strcmp(spec, "dense") == 0) {
        *out = p;
        return RW_OK;
    }
    if (strncmp(spec, "window:", 7) == 0) {
        s = spec + 7;
        p.kind = ATT_WINDOW;
        if (!read_int(&s, 1, 1 << 30, &p.window))
            return bad(spec, "window:W[,sink:S] with W >= 1 positions");
        if (strncmp(s, ",sink:", 6) == 0) {
            s += 6;
            if (!read_int(&s, 0, 1 << 30, &p.sink))
                return bad(spec, "window:W,sink:S with S >= 0 positions");
        }
        if (*s) return bad(spec, "window:W[,sink:S], nothing after");
        *out = p;
        return RW_OK;
    }
    if (strncmp(spec, "routing:", 8) == 0) {
        s = spec + 8;
        p.kind = ATT_ROUTING;
        if (!read_int(&s, 1, ATT_MAX_CLUSTERS, &p.clusters) || *s)
            return bad(spec, "routing:C with C clusters per head in [1, 4096]");
        *out = p;
        return RW_OK;
    }
    if (strncmp(spec, "dma:", 4) == 0) {
        s = spec + 4;
        p.kind = ATT_DMA;
        if (!read_int(&s, 1, 1 << 30, &p.topk) || *s)
            return bad(spec, "dma:K with K >= 1 earlier keys per query");
        *out = p;
        return RW_OK;
    }
    if (strncmp(spec, "sparsed:", 8) == 0) {
        s = spec + 8;
        p.kind = ATT_SPARSED;
        if (!read_int(&s, 1, ATT_MAX_BLOCK, &p.block) || *s++ != ',' || !read_share(&s, &p.keep) ||
            *s)
            return bad(spec, "sparsed:B,KEEP (B key positions per block in [1, 65536], KEEP the "
                             "share of each head's calibration attention mass kept, in (0, 1])");
        *out = p;
        return RW_OK;
    }
    const char *name = NULL;
    if (strncmp(spec, "block-topk:", 11) == 0) {
        s = spec + 11;
        p.kind = ATT_BLOCK_TOPK;
        name = "block-topk:B,K" BLOCK_FORM;
    } else if (strncmp(spec, "hip:", 4) == 0) {
        s = spec + 4;
        p.kind = ATT_HIP;
        name = "hip:B,K" BLOCK_FORM;
    } else {
        return bad(spec, ALL_FORMS);
    }
    if (!read_int(&s, 1, ATT_MAX_BLOCK, &p.block) || *s++ != ',' ||
        !read_int(&s, 1, 1 << 30, &p.topk) || *s)
        return bad(spec, name);
    *out = p;
    return RW_OK;
}

void att_pattern_format(const att_pattern *p, char *buf, size_t cap)
{
    switch (p->kind) {
    case ATT_WINDOW:
        if (p->sink) snprintf(buf, cap, "window:%d,sink:%d", p->window, p->sink);
        else snprintf(buf, cap, "window:%d", p->window);
        break;
    case ATT_BLOCK_TOPK: snprintf(buf, cap, "block-topk:%d,%d", p->block, p->topk); break;
    case ATT_HIP: snprintf(buf, cap, "hip:%d,%d", p->block, p->topk); break;
    case ATT_ROUTING: snprintf(buf, cap, "routing:%d", p->clusters); break;
    case ATT_DMA: snprintf(buf, cap, "dma:%d", p->topk); break;
    case ATT_SPARSED: snprintf(buf, cap, "sparsed:%d,%g", p->block, (double)p->keep); break;
    default: snprintf(buf, cap, "dense"); break;
    }
}

int att_blocks_to_ranges(int *idx, int n, int block, int own, int t, att_range *out)
{
    int nr = 0;
    for (int i = 0; i <= n; i++) {
        att_range r = i < n ? (att_range){idx[i] * block, (idx[i] + 1) * block}
                            : (att_range){own * block, t + 1};
        if (nr > 0 && out[nr - 1].s1 == r.s0) out[nr - 1].s1 = r.s1;
        else out[nr++] = r;
    }
    return nr;
}

int att_tile_from_first(const att_pattern *p, const att_kv *kv, const float *q, int t0, int t1,
                        att_range *out, float *work)
{
    int nr = att_pattern_ops_of(p)->ranges(p, kv, q, t0, out, work);
    out[nr - 1].s1 = t1;
    return nr;
}

/* a ranks before b: the higher score, then the lower index; NaN last. */
static int before(const float *sc, int a, int b)
{
    float x = sc[a], y = sc[b];
    if (x != x) return 0;
    if (y != y) return 1;
    return x > y || (x == y && a < b);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void att_top_k(const float *sc, int n, int k, int *idx)
{
    for (int i = 0; i < n; i++) idx[i] = i;
    if (k >= n) return;
    int lo = 0, hi = n - 1;
    while (lo < hi) { /* quickselect: idx[0..k) ends up the k best */
        int pivot = idx[lo + (hi - lo) / 2], i = lo, j = hi;
        while (i <= j) {
            while (before(sc, idx[i], pivot)) i++;
            while (before(sc, pivot, idx[j])) j--;
            if (i <= j) {
                int tmp = idx[i];
                idx[i++] = idx[j];
                idx[j--] = tmp;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
    qsort(idx, (size_t)k, sizeof *idx, cmp_int);
}
