/* sparsed: "SparseD: Sparse Attention for Diffusion Language Models" —
 * each head's pattern chosen once from dense attention on calibration
 * text, then reused at every step with no further dense pass. SparseD
 * keeps absolute block pairs of a fixed-length diffusion sequence; a
 * causal model runs every length up to its context, so a head here keeps
 * diagonals (key blocks at a fixed distance behind the query's) and
 * columns (fixed key blocks from the start, attention sinks), the two
 * shapes trained attention takes ("Sparse-vDiT"), chosen per head from
 * the calibration mass (nn/attn_sparsed.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/attn_sparsed.h"

att_sparsed *att_sparsed_new(int heads, int context, int block, float keep)
{
    att_sparsed *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->heads = heads;
    s->nb = (context + block - 1) / block;
    s->block = block;
    s->keep = keep;
    s->sel = calloc((size_t)heads * 2 * s->nb, 1);
    s->head = calloc((size_t)heads, sizeof *s->head);
    if (!s->sel || !s->head) {
        att_sparsed_free(s);
        return NULL;
    }
    for (int h = 0; h < heads; h++) s->sel[(size_t)h * 2 * s->nb] = 1;
    return s;
}

void att_sparsed_free(att_sparsed *s)
{
    if (!s) return;
    free(s->sel);
    free(s->lists);
    free(s->head);
    free(s);
}

/* Candidate c of nb diagonals (c < nb: offset c) then nb columns: its
 * mass not yet covered. */
static double uncovered(const double *mass, const unsigned char *covered, int nb, int c)
{
    double sum = 0;
    if (c < nb) {
        for (int qb = c; qb < nb; qb++)
            if (!covered[qb * nb + qb - c]) sum += mass[qb * nb + qb - c];
    } else {
        for (int qb = c - nb; qb < nb; qb++)
            if (!covered[qb * nb + c - nb]) sum += mass[qb * nb + c - nb];
    }
    return sum;
}

static void cover(unsigned char *covered, int nb, int c)
{
    if (c < nb)
        for (int qb = c; qb < nb; qb++) covered[qb * nb + qb - c] = 1;
    else
        for (int qb = c - nb; qb < nb; qb++) covered[qb * nb + c - nb] = 1;
}

double att_sparsed_choose(att_sparsed *s, int h, const double *mass)
{
    int nb = s->nb;
    unsigned char *sel = s->sel + (size_t)h * 2 * nb;
    unsigned char *covered = calloc((size_t)nb * nb, 1);
    RW_ASSERT(covered != NULL, "out of memory choosing sparsed blocks (%d blocks)", nb);
    memset(sel, 0, (size_t)2 * nb);
    sel[0] = 1;
    double total = 0, kept = 0;
    for (int qb = 0; qb < nb; qb++)
        for (int kb = 0; kb <= qb; kb++) total += mass[qb * nb + kb];
    cover(covered, nb, 0);
    for (int qb = 0; qb < nb; qb++) kept += mass[qb * nb + qb];
    /* KEEP of the total, less a rounding margin so that KEEP = 1 stops
     * once every block with mass is in */
    double target = (double)s->keep * total * (1.0 - 1e-12);
    while (kept < target) {
        int best = -1;
        double gain = 0;
        for (int c = 1; c < 2 * nb; c++) { /* ties: diagonals first, nearer first */
            if (sel[c]) continue;
            double g = uncovered(mass, covered, nb, c);
            if (g > gain) gain = g, best = c;
        }
        if (best < 0) break;
        sel[best] = 1;
        cover(covered, nb, best);
        kept += gain;
    }
    free(covered);
    return total > 0 ? kept / total : 1.0;
}

rw_status att_sparsed_index(att_sparsed *s)
{
    int nb = s->nb, n = 0;
    for (size_t i = 0; i < (size_t)s->heads * 2 * nb; i++) {
        if (s->sel[i] > 1)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "sparsed blocks: entry %zu is %d, expected 0 "
                           "or 1", i, s->sel[i]);
        n += s->sel[i];
    }
    int *lists = malloc(sizeof(int) * (size_t)(n + 1));
    if (!lists) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for sparsed blocks");
    free(s->lists);
    s->lists = lists;
    s->max_blocks = 0;
    for (int h = 0; h < s->heads; h++) {
        const unsigned char *sel = s->sel + (size_t)h * 2 * nb;
        att_head_blocks *b = &s->head[h];
        b->off = lists;
        b->n_off = 0;
        for (int d = nb - 1; d >= 1; d--)
            if (sel[d]) lists[b->n_off++] = d;
        lists += b->n_off;
        b->sink = lists;
        b->n_sink = 0;
        for (int j = 0; j < nb; j++)
            if (sel[nb + j]) lists[b->n_sink++] = j;
        lists += b->n_sink;
        if (b->n_off + b->n_sink > s->max_blocks) s->max_blocks = b->n_off + b->n_sink;
    }
    return RW_OK;
}

/* The blocks before `own` that b keeps, ascending and once each, into
 * idx; returns their count. */
static int head_blocks(const att_head_blocks *b, int own, int *idx)
{
    int n = 0, i = 0, j = 0;
    while (i < b->n_off && b->off[i] > own) i++; /* diagonals reaching before block 0 */
    for (;;) {
        int d = i < b->n_off ? own - b->off[i] : own;
        int c = j < b->n_sink && b->sink[j] < own ? b->sink[j] : own;
        if (d == own && c == own) break;
        int next = d < c ? d : c;
        idx[n++] = next;
        if (d == next) i++;
        if (c == next) j++;
    }
    return n;
}

int64_t att_sparsed_keys(const att_sparsed *s, int h, int T)
{
    int64_t keys = 0;
    int *idx = malloc(sizeof(int) * (size_t)(s->max_blocks + 1));
    RW_ASSERT(idx != NULL, "out of memory counting sparsed keys");
    for (int t = 0; t < T; t++) {
        int own = t / s->block;
        keys += (int64_t)head_blocks(&s->head[h], own, idx) * s->block + t - own * s->block + 1;
    }
    free(idx);
    return keys;
}

static int sparsed_ranges(const att_pattern *p, const att_kv *kv, const float *q, int t,
                          att_range *out, float *work)
{
    (void)q;
    RW_ASSERT(kv->head != NULL, "sparsed attention without its chosen blocks");
    int own = t / p->block, *idx = (int *)work;
    int n = head_blocks(kv->head, own, idx);
    return att_blocks_to_ranges(idx, n, p->block, own, t, out);
}

static int sparsed_max(const att_pattern *p, int T) { return (void)T, p->max_blocks + 1; }

static int64_t sparsed_work(const att_pattern *p, int T, int hd)
{
    (void)hd;
    return (int64_t)T / p->block + 2;
}

const att_pattern_ops att_sparsed_ops = {
    .name = "sparsed",
    .ranges = sparsed_ranges,
    .max_ranges = sparsed_max,
    .work_floats = sparsed_work,
};
