/* DynST: "DynST: Dynamic Sparse Training for Resource-Constrained
 * Spatio-Temporal Forecasting" (Wu et al. 2025) — sparse training that
 * decides which inputs (sensors) are worth reading at all. Here: the first
 * layer of a sparse network gives up whole input columns at topology
 * updates, the lowest-scoring open input first, until the budget is left;
 * what an input's connections carried is regrown among the others (dst.c).
 *
 * The schedule is GMP's cubic one ("To prune, or not to prune", Zhu &
 * Gupta 2017), over inputs instead of weights: k(t) = budget + (n -
 * budget)(1 - p)³. Nothing goes before input_start, because until the
 * weights have trained a little their mass says nothing about an input;
 * then many inputs go at once, while most of them are redundant and the
 * network has time to recover, and ever fewer as the budget nears, when
 * each removal costs more. Ending well before the DST updates stop leaves
 * the rewiring time to settle on the inputs kept. */
#include "sparsity/input_select.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"

struct input_select {
    int n;              /* inputs of the first layer */
    int budget, kept;
    rw_input_criterion criterion;
    double start, end;  /* fractions of the training steps */
    uint8_t *closed;    /* [n] 0 open, 1 closed, 2 closed by the update in progress */
    float *fixed;       /* [n] random or variance scores (NULL for importance) */
};

const char *rw_input_criterion_name(rw_input_criterion c)
{
    switch (c) {
    case RW_INPUT_IMPORTANCE: return "importance";
    case RW_INPUT_RANDOM: return "random";
    case RW_INPUT_VARIANCE: return "variance";
    }
    return NULL;
}

void input_select_free(input_select *s)
{
    if (!s) return;
    free(s->closed);
    free(s->fixed);
    free(s);
}

rw_status input_select_create(const rw_dst_config *c, const rw_model *m, const param *p,
                              input_select **out)
{
    *out = NULL;
    int n = p->cols;
    if (!rw_input_criterion_name(c->input_select))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "unknown input criterion %d", (int)c->input_select);
    if (c->input_budget < 1 || c->input_budget >= n)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "an input budget of %d: expected 1 to %d, fewer "
                       "than the %d inputs layer %s reads", c->input_budget, n - 1, n,
                       p->layer_name);
    if (!(c->input_start >= 0 && c->input_start <= c->input_end && c->input_end <= 1))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "inputs must go within training (0 <= start %g <= "
                       "end %g <= 1)", c->input_start, c->input_end);
    if (c->input_select == RW_INPUT_VARIANCE && !m->input.feature)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "input selection by variance needs per-feature "
                       "normalisation (the model's standard deviation of each input)");
    input_select *s = calloc(1, sizeof *s);
    if (s) s->closed = calloc((size_t)n, 1);
    if (s && c->input_select != RW_INPUT_IMPORTANCE) s->fixed = malloc(sizeof(float) * (size_t)n);
    if (!s || !s->closed || (c->input_select != RW_INPUT_IMPORTANCE && !s->fixed)) {
        input_select_free(s);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for input selection");
    }
    s->n = s->kept = n;
    s->budget = c->input_budget;
    s->criterion = c->input_select;
    s->start = c->input_start;
    s->end = c->input_end;
    if (c->input_select == RW_INPUT_RANDOM) {
        rng_state r;
        rng_seed_stream(&r, c->seed, 0x1a9u);
        for (int i = 0; i < n; i++) s->fixed[i] = (float)rng_uniform(&r);
    } else if (c->input_select == RW_INPUT_VARIANCE) {
        for (int i = 0; i < n; i++) s->fixed[i] = m->input.fstd[i] * m->input.fstd[i];
    }
    *out = s;
    return RW_OK;
}

int input_select_kept(const input_select *s) { return s->kept; }

const uint8_t *input_select_closed(const input_select *s) { return s->closed; }

/* Inputs to keep after `step`: all of them before start, then the cubic
 * down to the budget at end. */
static int kept_target(const input_select *s, int64_t step, int64_t total_steps)
{
    double t0 = s->start * (double)total_steps, t1 = s->end * (double)total_steps;
    if ((double)step < t0) return s->n;
    double p = t1 > t0 ? ((double)step - t0) / (t1 - t0) : 1.0;
    if (p > 1) p = 1;
    return s->budget + (int)llround((double)(s->n - s->budget) * pow(1.0 - p, 3));
}

int input_select_due(const input_select *s, int64_t step, int64_t total_steps)
{
    return s->kept > kept_target(s, step, total_steps);
}

typedef struct {
    float score;
    int input;
} scored_input;

static int by_score(const void *a, const void *b)
{
    const scored_input *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    return (x->input > y->input) - (x->input < y->input);
}

/* The importance of input i: how much weight its connections carry, times
 * how much signal it feeds them. Per-feature normalised inputs all feed
 * about 1, so the mass decides; an input that is always 0 (a constant
 * feature) scores 0 whatever its weights. */
static float importance(const csr_matrix *w, const float *x, int bp, int n, int i)
{
    double mass = 0, sq = 0;
    for (int k = w->t_indptr[i]; k < w->t_indptr[i + 1]; k++) mass += fabsf(w->values[w->t_perm[k]]);
    const float *row = x + (size_t)i * bp;
    for (int b = 0; b < n; b++) sq += (double)row[b] * row[b];
    return (float)(mass * sqrt(n > 0 ? sq / n : 0));
}

int input_select_close(input_select *s, const param *p, const float *x, int bp, int n,
                       int64_t step, int64_t total_steps)
{
    int go = s->kept - kept_target(s, step, total_steps);
    if (go <= 0) return 0;
    scored_input *open = malloc(sizeof *open * (size_t)s->kept);
    if (!open) return -1;
    int count = 0;
    for (int i = 0; i < s->n; i++)
        if (!s->closed[i])
            open[count++] = (scored_input){s->fixed ? s->fixed[i] : importance(p->csr, x, bp, n, i), i};
    qsort(open, (size_t)count, sizeof *open, by_score);
    for (int j = 0; j < go; j++) s->closed[open[j].input] = 2;
    s->kept -= go;
    free(open);
    return go;
}

void input_select_settle(input_select *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->closed[i]) s->closed[i] = 1;
}

void input_select_restore(input_select *s, const uint8_t *closed)
{
    s->kept = 0;
    for (int i = 0; i < s->n; i++) {
        s->closed[i] = closed[i] ? 1 : 0;
        s->kept += !closed[i];
    }
}

int input_select_open(const input_select *s, int32_t *index)
{
    int k = 0;
    for (int i = 0; i < s->n; i++)
        if (!s->closed[i]) index[k++] = i;
    return k;
}
