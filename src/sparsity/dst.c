#include "sparsity/dst.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "sparsity/distribution.h"
#include "sparsity/dst_internal.h"
#include "sparsity/drop.h"
#include "sparsity/grow.h"
#include "sparsity/topology.h"
#include "sparsity/topology_stats.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int dst_uses_window(const rw_dst_config *c)
{
    const grow_criterion *g = grow_criterion_get(c->grow);
    return c->drop_fraction > 0 && g && g->window != GROW_WINDOW_NONE;
}

void dst_free(dst_state *d)
{
    if (!d) return;
    for (int l = 0; l < d->n_layers; l++) {
        if (d->ever) pattern_free(&d->ever[l]);
        if (d->win_pre) rw_free(d->win_pre[l]);
        if (d->win_post) rw_free(d->win_post[l]);
    }
    for (int i = 0; i < d->scratch_n; i++) grow_scratch_free(&d->scratch[i]);
    free(d->scratch);
    free(d->ever);
    free(d->win_pre);
    free(d->win_post);
    free(d->start_nnz);
    free(d->final_nnz);
    free(d->drop_n);
    free(d->grow_n);
    free(d->prune_n);
    free(d->dropped);
    free(d->grown);
    free(d->nonzeros);
    free(d->dead);
    free(d->shrunk);
    free(d->density);
    free(d->weight);
    input_select_free(d->inputs);
    free(d);
}

static rw_status check_config(const rw_dst_config *c)
{
    if (c->drop < RW_DROP_MAGNITUDE || c->drop > RW_DROP_RANDOM)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "unknown drop criterion %d", (int)c->drop);
    if (!grow_criterion_get(c->grow))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "unknown grow criterion %d", (int)c->grow);
    if (c->drop_schedule != RW_DROP_SCHEDULE_CONSTANT && c->drop_schedule != RW_DROP_SCHEDULE_COSINE)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "unknown drop schedule %d", (int)c->drop_schedule);
    if (c->update_every < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "update_every %d must be >= 0", c->update_every);
    if (!(c->drop_fraction >= 0 && c->drop_fraction < 1))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "drop fraction %g is outside [0, 1)",
                       c->drop_fraction);
    if (!(c->update_until > 0 && c->update_until <= 1))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "update_until %g is outside (0, 1]",
                       c->update_until);
    if (c->window < 1 || c->window > DST_MAX_WINDOW)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "window of %d batches is outside [1, %d]",
                       c->window, DST_MAX_WINDOW);
    if (!(c->mest_lambda >= 0) || !isfinite(c->mest_lambda))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "MEST lambda %g must be >= 0", c->mest_lambda);
    if (!(c->final_sparsity >= 0 && c->final_sparsity < 1))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "final sparsity %g is outside [0, 1)",
                       c->final_sparsity);
    if (!(c->shrink >= 0 && c->shrink < 1))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "shrink factor %g is outside [0, 1)", c->shrink);
    if (c->shrink > 0 && !(c->final_sparsity > 0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "soft shrinkage (ISS-P) needs gradual pruning: a final sparsity above 0");
    if (c->final_sparsity > 0 &&
        !(c->prune_start >= 0 && c->prune_start < c->prune_end && c->prune_end <= 1))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "pruning must start and end within training (0 <= start %g < end %g <= 1)",
                       c->prune_start, c->prune_end);
    return RW_OK;
}

/* GraNet's per-layer targets: final_distribution shares final_sparsity
 * among the layers, dense-stored layers counted as dense. */
rw_status dst_granet_targets(dst_state *d, const rw_model *m)
{
    int n = d->n_layers;
    int *rows = calloc((size_t)n + 1, sizeof(int));
    int *cols = calloc((size_t)n + 1, sizeof(int));
    int *keep = calloc((size_t)n + 1, sizeof(int));
    double *density = calloc((size_t)n + 1, sizeof(double));
    rw_status st = RW_OK;
    if (!rows || !cols || !keep || !density) {
        st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for pruning targets");
        goto done;
    }
    for (int w = 0; w < n; w++) {
        const param *p = dst_param(d, m, w);
        rows[w] = p->rows;
        cols[w] = p->cols;
        keep[w] = !param_is_sparse(p);
    }
    st = sparsity_distribute_shapes(rows, cols, n, d->cfg.final_sparsity,
                                    d->cfg.final_distribution, keep, density);
    if (st != RW_OK) goto done;
    for (int w = 0; w < n; w++) {
        int64_t target = (int64_t)llround(density[w] * (double)cols[w] * rows[w]);
        if (target < 1) target = 1;
        /* A weight never grows back above its starting size by pruning. */
        d->final_nnz[w] = target < d->start_nnz[w] ? target : d->start_nnz[w];
    }
done:
    free(rows);
    free(cols);
    free(keep);
    free(density);
    return st;
}

/* Input-level DST works on the weight that reads the model's input. */
static rw_status attach_inputs(dst_state *d, const rw_model *m)
{
    for (int w = 0; w < d->n_layers; w++) {
        const param *p = dst_param(d, m, w);
        if (p->x_tensor != 0) continue;
        if (!param_is_sparse(p))
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "input selection needs the first layer %s "
                           "sparse (CSR), not dense or N:M", p->layer_name);
        d->input_weight = w;
        return input_select_create(&d->cfg, m, p, &d->inputs);
    }
    return rw_fail(RW_ERR_INVALID_ARGUMENT, "input selection needs a weight that reads the "
                   "model's input (a language model reads tokens)");
}

rw_status dst_create(const rw_dst_config *c, const rw_model *m, int bp, dst_state **out)
{
    *out = NULL;
    rw_status st = check_config(c);
    if (st != RW_OK) return st;
    dst_state *d = calloc(1, sizeof *d);
    if (!d) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for dynamic sparse training");
    int n = 0;
    for (int q = 0; q < m->n_params; q++) n += m->params[q].is_weight;
    d->cfg = *c;
    d->grow = grow_criterion_get(c->grow);
    d->n_layers = n;
    d->bp = bp;
    size_t nl = (size_t)n + 1;
    d->weight = calloc(nl, sizeof(int));
    for (int q = 0, w = 0; d->weight && q < m->n_params; q++)
        if (m->params[q].is_weight) d->weight[w++] = q;
    d->start_nnz = calloc(nl, sizeof(int64_t));
    d->final_nnz = calloc(nl, sizeof(int64_t));
    d->ever = calloc(nl, sizeof(pattern));
    d->win_pre = calloc(nl, sizeof(float *));
    d->win_post = calloc(nl, sizeof(float *));
    d->drop_n = calloc(nl, sizeof(int64_t));
    d->grow_n = calloc(nl, sizeof(int64_t));
    d->prune_n = calloc(nl, sizeof(int64_t));
    d->dropped = calloc(nl, sizeof(int64_t));
    d->grown = calloc(nl, sizeof(int64_t));
    d->nonzeros = calloc(nl, sizeof(int64_t));
    d->dead = calloc(nl, sizeof(int64_t));
    d->density = calloc(nl, sizeof(double));
    d->shrunk = calloc(nl, sizeof(int64_t));
    int ok = d->weight && d->shrunk && d->start_nnz && d->final_nnz && d->ever && d->win_pre && d->win_post && d->drop_n &&
             d->grow_n && d->prune_n && d->dropped && d->grown && d->nonzeros && d->dead &&
             d->density;
    size_t cols = (size_t)c->window * (size_t)bp;
    for (int l = 0; l < n && ok; l++) {
        const param *p = dst_param(d, m, l);
        d->start_nnz[l] = param_count(p);
        if (!param_is_sparse(p)) continue;
        ok = pattern_copy(&d->ever[l], p->csr) == RW_OK;
        if (ok && dst_uses_window(c)) {
            d->win_pre[l] = rw_alloc(sizeof(float) * (size_t)p->cols * cols);
            d->win_post[l] = rw_alloc(sizeof(float) * (size_t)p->rows * cols);
            ok = d->win_pre[l] && d->win_post[l];
        }
    }
    if (!ok) {
        dst_free(d);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for dynamic sparse training");
    }
    if (c->final_sparsity > 0 && (st = dst_granet_targets(d, m)) != RW_OK) {
        dst_free(d);
        return st;
    }
    if (c->input_budget > 0 && (st = attach_inputs(d, m)) != RW_OK) {
        dst_free(d);
        return st;
    }
    *out = d;
    return RW_OK;
}

/* ---- Schedules --------------------------------------------------------- */

double dst_drop_fraction(const rw_dst_config *c, int64_t step, int64_t total_steps)
{
    double end = c->update_until * (double)total_steps;
    if ((double)step >= end || c->drop_fraction <= 0) return 0;
    if (c->drop_schedule == RW_DROP_SCHEDULE_COSINE)
        return c->drop_fraction * 0.5 * (1.0 + cos(3.141592653589793 * (double)step / end));
    return c->drop_fraction;
}

static int64_t update_interval(const dst_state *d, int64_t steps_per_epoch)
{
    return d->cfg.update_every > 0 ? d->cfg.update_every : steps_per_epoch;
}

int dst_update_due(const dst_state *d, int64_t step, int64_t steps_per_epoch, int64_t total_steps)
{
    int64_t dt = update_interval(d, steps_per_epoch);
    if (dt <= 0 || step <= 0 || step % dt != 0 || step >= total_steps) return 0;
    int churn = dst_drop_fraction(&d->cfg, step, total_steps) > 0;
    int prune = d->cfg.final_sparsity > 0 && !d->pruning_done &&
                (double)step >= d->cfg.prune_start * (double)total_steps;
    int inputs = d->inputs && input_select_due(d->inputs, step, total_steps);
    return churn || prune || inputs;
}

/* GraNet's size for layer l at `step`: the cubic schedule of "To prune, or
 * not to prune" (Zhu & Gupta 2017), which GraNet follows. */
static int64_t pruning_target(const dst_state *d, int l, int64_t step, int64_t total_steps)
{
    double t0 = d->cfg.prune_start * (double)total_steps, t1 = d->cfg.prune_end * (double)total_steps;
    double p = ((double)step - t0) / (t1 - t0);
    if (p < 0) p = 0;
    if (p > 1) p = 1;
    double s = d->final_nnz[l] + (double)(d->start_nnz[l] - d->final_nnz[l]) * pow(1 - p, 3);
    return (int64_t)llround(s);
}

int64_t dst_share(int n, const double *weight, const int64_t *cap, int64_t total, int64_t *share)
{
    /* Water-filling: give each open layer its proportional part; a layer
     * that would pass its cap is filled to it and closed, and the rest is
     * shared again among the open ones. */
    int *open = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    double *frac = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!open || !frac) {
        free(open);
        free(frac);
        for (int l = 0; l < n; l++) share[l] = 0;
        return 0;
    }
    int64_t left = total;
    for (int l = 0; l < n; l++) {
        share[l] = 0;
        open[l] = cap[l] > 0;
    }
    for (;;) {
        double sum = 0;
        int any = 0;
        for (int l = 0; l < n; l++)
            if (open[l]) sum += weight[l] > 0 ? weight[l] : 0, any = 1;
        if (!any || left <= 0) break;
        int closed = 0;
        for (int l = 0; l < n; l++) {
            if (!open[l]) continue;
            /* Without any weight, share equally among the open layers. */
            double w = sum > 0 ? (weight[l] > 0 ? weight[l] : 0) / sum : 0;
            if (sum <= 0) {
                int count = 0;
                for (int j = 0; j < n; j++) count += open[j];
                w = 1.0 / count;
            }
            if (w * (double)left >= (double)cap[l]) {
                share[l] = cap[l];
                open[l] = 0;
                closed = 1;
            }
        }
        if (closed) {
            left = total;
            for (int l = 0; l < n; l++)
                if (!open[l]) left -= share[l];
            continue;
        }
        /* No cap binds: floors, then the remainder by largest fraction. */
        int64_t placed = 0;
        for (int l = 0; l < n; l++) {
            if (!open[l]) continue;
            double w = sum > 0 ? (weight[l] > 0 ? weight[l] : 0) / sum : 0;
            if (sum <= 0) {
                int count = 0;
                for (int j = 0; j < n; j++) count += open[j];
                w = 1.0 / count;
            }
            double want = w * (double)left;
            share[l] = (int64_t)floor(want);
            frac[l] = want - (double)share[l];
            placed += share[l];
        }
        for (int64_t rest = left - placed; rest > 0; rest--) {
            int best = -1;
            for (int l = 0; l < n; l++)
                if (open[l] && share[l] < cap[l] && (best < 0 || frac[l] > frac[best])) best = l;
            if (best < 0) break;
            share[best]++;
            frac[best] = -1;
        }
        break;
    }
    int64_t placed = 0;
    for (int l = 0; l < n; l++) placed += share[l];
    free(open);
    free(frac);
    return placed;
}

/* ---- Recent batches ---------------------------------------------------- */

/* Stores the batch just trained on in its slot of the window before update
 * step u: the truncated momentum weighs a batch i steps back by β^i. */
static void window_capture(dst_state *d, const rw_trainer *t, int batch_n, int slot, int back)
{
    const rw_model *m = t->model;
    int bp = d->bp, n = batch_n;
    size_t stride = (size_t)d->cfg.window * bp;
    float coef = powf(trainer_momentum(t), (float)back);
    int activations = d->grow->window == GROW_WINDOW_ACTIVATIONS;
    d->slot_n[slot] = n;
    for (int l = 0; l < d->n_layers; l++) {
        const param *p = dst_param(d, m, l);
        if (!d->win_pre[l]) continue;
        /* Hebbian: the activations going in and coming out; momentum: the
         * input and the gradient at the output (zero in padding columns). */
        param_batch pb = trainer_param_batch(t, d->weight[l], batch_n);
        const float *pre = pb.x, *post = activations ? pb.y : pb.dy;
        int in = p->cols, out = p->rows, valid = pb.n, sbp = pb.bp;
#pragma omp parallel for schedule(static) if ((size_t)(in + out) * bp >= 65536)
        for (int r = 0; r < in + out; r++) {
            int is_pre = r < in, row = is_pre ? r : r - in;
            const float *src = (is_pre ? pre : post) + (size_t)row * sbp;
            float *dst = (is_pre ? d->win_pre[l] : d->win_post[l]) + (size_t)row * stride +
                         (size_t)slot * bp;
            float scale = is_pre || activations ? 1.0f : coef;
            for (int b = 0; b < valid; b++) dst[b] = scale * src[b];
            for (int b = valid; b < bp; b++) dst[b] = 0.0f;
        }
    }
}

static void window_clear(dst_state *d, const rw_model *m)
{
    size_t stride = (size_t)d->cfg.window * d->bp;
    for (int l = 0; l < d->n_layers; l++) {
        if (!d->win_pre[l]) continue;
        const param *p = dst_param(d, m, l);
        memset(d->win_pre[l], 0, sizeof(float) * (size_t)p->cols * stride);
        memset(d->win_post[l], 0, sizeof(float) * (size_t)p->rows * stride);
    }
    memset(d->slot_n, 0, sizeof d->slot_n);
}

/* Centres each row on its valid columns and scales it to unit length, so
 * that a dot product of two rows is their Pearson correlation. */
static void window_standardise(const dst_state *d, float *x, int rows)
{
    int bp = d->bp, slots = d->cfg.window;
    size_t stride = (size_t)slots * bp;
#pragma omp parallel for schedule(static) if ((size_t)rows * stride >= 65536)
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * stride;
        double sum = 0, sq = 0;
        int64_t count = 0;
        for (int j = 0; j < slots; j++)
            for (int b = 0; b < d->slot_n[j]; b++) sum += row[(size_t)j * bp + b], count++;
        double mean = count ? sum / (double)count : 0;
        for (int j = 0; j < slots; j++)
            for (int b = 0; b < d->slot_n[j]; b++) {
                float *v = &row[(size_t)j * bp + b];
                *v = (float)(*v - mean);
                sq += (double)*v * *v;
            }
        float scale = sq > 0 ? (float)(1.0 / sqrt(sq)) : 0.0f;
        for (int j = 0; j < slots; j++)
            for (int b = 0; b < d->slot_n[j]; b++) row[(size_t)j * bp + b] *= scale;
    }
}

/* ---- The update -------------------------------------------------------- */

/* Closes the inputs due now; d->input_drop gets how many connections
 * they hold, which the first layer then removes and regrows elsewhere. */
static rw_status close_inputs(dst_state *d, const rw_trainer *t, int64_t step, int64_t total_steps)
{
    d->input_drop = 0;
    d->inputs_removed = 0;
    if (!d->inputs) return RW_OK;
    const param *p = dst_param(d, t->model, d->input_weight);
    int closed = input_select_close(d->inputs, p, trainer_batch_data(t, p->x_tensor), d->bp, d->batch_n,
                                    step, total_steps);
    if (closed < 0) return rw_fail(RW_ERR_NO_MEMORY, "out of memory choosing inputs to remove");
    const uint8_t *state = input_select_closed(d->inputs);
    const csr_matrix *w = p->csr;
    for (int i = 0; closed > 0 && i < w->cols; i++)
        if (state[i] == 2) d->input_drop += w->t_indptr[i + 1] - w->t_indptr[i];
    d->inputs_removed = closed;
    return RW_OK;
}

/* How many weights each layer prunes (GraNet), drops and grows. */
static rw_status plan_counts(dst_state *d, const rw_trainer *t, int64_t step,
                             int64_t total_steps, double frac)
{
    const rw_model *m = t->model;
    int n = d->n_layers, pruning = d->cfg.final_sparsity > 0 && !d->pruning_done &&
                                   (double)step >= d->cfg.prune_start * (double)total_steps;
    int64_t *cap = calloc((size_t)n, sizeof(int64_t));
    double *weight = calloc((size_t)n, sizeof(double));
    if (!cap || !weight) {
        free(cap);
        free(weight);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory planning a topology update");
    }
    for (int l = 0; l < n; l++) {
        const param *p = dst_param(d, m, l);
        const float *m1 = t->m1[d->weight[l]];
        d->prune_n[l] = d->drop_n[l] = d->grow_n[l] = 0;
        if (!param_is_sparse(p)) continue;
        int64_t nnz = p->csr->nnz, absent = param_dense_count(p) - nnz;
        if (d->inputs && l == d->input_weight) {
            /* The closing inputs' connections go first; the rest churns
             * and grows among the open inputs only. */
            nnz -= d->input_drop;
            absent = (int64_t)p->rows * input_select_kept(d->inputs) - nnz;
        }
        if (pruning) {
            int64_t target = pruning_target(d, l, step, total_steps);
            if (nnz > target) d->prune_n[l] = nnz - target;
        }
        /* A layer with no absent position cannot grow: it is left whole. */
        int64_t churn = absent > 0 ? (int64_t)llround(frac * (double)(nnz - d->prune_n[l])) : 0;
        if (!d->cfg.redistribute && churn > absent) churn = absent;
        d->drop_n[l] = churn;
        d->grow_n[l] = churn;
        cap[l] = absent;
        if (d->cfg.redistribute && nnz > 0 && m1) {
            /* SNFS shares regrowth by the mean momentum magnitude of each
             * layer's weights. */
            double s = 0;
            for (int64_t k = 0; k < nnz; k++) s += fabsf(m1[k]);
            weight[l] = s / (double)nnz;
        }
    }
    if (d->cfg.redistribute) {
        int64_t total = 0;
        for (int l = 0; l < n; l++) total += d->drop_n[l];
        int64_t placed = dst_share(n, weight, cap, total, d->grow_n);
        /* Every layer full: drop only what can be regrown somewhere. */
        for (int l = 0; l < n && placed < total; l++) {
            int64_t back = d->drop_n[l] < total - placed ? d->drop_n[l] : total - placed;
            d->drop_n[l] -= back;
            total -= back;
        }
    }
    /* The closed inputs' connections come back among the open inputs of
     * the same layer (as many as there is room for). */
    if (d->inputs) {
        int w = d->input_weight;
        int64_t room = cap[w] - d->grow_n[w];
        d->grow_n[w] += d->input_drop < room ? d->input_drop : (room > 0 ? room : 0);
    }
    free(cap);
    free(weight);
    return RW_OK;
}

/* Chooses the positions weight l grows: pos gets d->grow_n[l] of them at
 * most; returns how many, or -1 on failure (message set). */
static int choose_growth(dst_state *d, const rw_trainer *t, int l, rng_state *r, int64_t *pos,
                         grow_scratch *scratch, const uint8_t *closed)
{
    const param *p = dst_param(d, t->model, l);
    param_batch pb = trainer_param_batch(t, d->weight[l], d->batch_n);
    grow_input in = {p, pb.x, pb.dy, pb.y, pb.bp, pb.n, d->win_pre[l], d->win_post[l],
                     d->cfg.window * d->bp, r, scratch, closed};
    int got = d->grow->choose(&in, (int)d->grow_n[l], pos);
    if (got < 0)
        rw_fail(RW_ERR_NO_MEMORY, "out of memory choosing connections to grow in %s",
                p->layer_name);
    return got;
}

/* ISS-P: "Iterative Soft Shrinkage Learning for Efficient Image
 * Super-Resolution" (Wang et al. 2023). The weights gradual pruning chose
 * are scaled by `factor` instead of removed: they stay in the pattern and
 * keep training, and may grow back above the others before the next step.
 * Returns how many were scaled. */
static int64_t issp_shrink(csr_matrix *w, const uint8_t *chosen, float factor)
{
    int64_t n = 0;
    for (int k = 0; k < w->nnz; k++)
        if (chosen[k]) w->values[k] *= factor, n++;
    return n;
}

/* Removes every connection of the inputs the update closes (closed[i] ==
 * 2), moving the optimizer state and gradient with the rest; the
 * transposed view is rebuilt for the drop and grow that follow. */
static rw_status remove_closed_inputs(csr_matrix *w, const uint8_t *closed, rw_trainer *t, int q,
                                      int64_t *removed)
{
    uint8_t *mark = malloc((size_t)w->nnz + 1);
    if (!mark) return rw_fail(RW_ERR_NO_MEMORY, "out of memory removing inputs");
    for (int k = 0; k < w->nnz; k++) mark[k] = closed[w->indices[k]] == 2;
    parallel_arrays par = {{&t->ws.grad[q], &t->m1[q], &t->m2[q]}, 3};
    *removed = topology_keep(w, mark, &par);
    free(mark);
    csr_build_transpose(w);
    return RW_OK;
}

static rw_status update_layer(dst_state *d, rw_trainer *t, int l, int64_t step,
                              int64_t total_steps, int64_t *sad, grow_scratch *scratch)
{
    const param *p = dst_param(d, t->model, l);
    int q = d->weight[l];
    csr_matrix *w = p->csr;
    int64_t k_drop = d->prune_n[l] + d->drop_n[l], k_grow = d->grow_n[l];
    /* Soft shrinkage until the end of the pruning schedule, removal then. */
    int soft = d->cfg.shrink > 0 && (double)step < d->cfg.prune_end * (double)total_steps;
    *sad = 0;
    d->shrunk[l] = 0;
    int first = d->inputs && l == d->input_weight;
    const uint8_t *closed = first ? input_select_closed(d->inputs) : NULL;
    if (k_drop == 0 && k_grow == 0 && !(first && d->input_drop > 0)) return RW_OK;
    rng_state r;
    rng_seed_stream(&r, d->cfg.seed, 0xd5700000000ULL + (uint64_t)d->updates * 4096 + (uint64_t)l);
    int64_t input_dropped = 0;
    if (first && d->input_drop > 0) {
        rw_status st = remove_closed_inputs(w, closed, t, q, &input_dropped);
        if (st != RW_OK) return st;
    }

    rw_status st = RW_OK;
    uint8_t *drop = malloc((size_t)w->nnz + 1);
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)(k_grow + 1));
    if (!drop || !pos)
        st = rw_fail(RW_ERR_NO_MEMORY, "out of memory updating the topology of %s", p->layer_name);
    /* Both choices look at the pattern before the update, so grown
     * positions are never ones just dropped. */
    int dropped = 0, grown = 0;
    row_buckets grown_rows = {0};
    if (st == RW_OK) {
        drop_input in = {d->cfg.drop, w, t->ws.grad[q], d->cfg.mest_lambda, &r};
        dropped = drop_select(&in, (int)k_drop, drop);
        if (dropped < 0)
            st = rw_fail(RW_ERR_NO_MEMORY, "out of memory choosing connections to drop in %s",
                         p->layer_name);
    }
    if (st == RW_OK && k_grow > 0 && (grown = choose_growth(d, t, l, &r, pos, scratch, closed)) < 0)
        st = RW_ERR_NO_MEMORY;
    if (st == RW_OK && soft) {
        d->shrunk[l] = issp_shrink(w, drop, (float)d->cfg.shrink);
        dropped = 0;
    } else if (st == RW_OK) {
        parallel_arrays par = {{&t->ws.grad[q], &t->m1[q], &t->m2[q]}, 3};
        topology_keep(w, drop, &par);
        /* Grouped once for the layer and for the positions ever stored. */
        if ((st = row_buckets_make(&grown_rows, pos, grown, w->rows, w->cols)) == RW_OK)
            st = topology_insert_buckets(w, &grown_rows, &par);
        /* Pruning alone (GMP): the arrays shrink with the pattern. If that
         * runs out of memory they merely stay larger than needed. */
        if (st == RW_OK && grown == 0 && dropped > 0 && topology_shrink(w, &par) != RW_OK)
            rw_clear_error();
        csr_build_transpose(w);
    }
    /* The positions ever stored gain what was grown (the rest of the
     * pattern was there before). */
    if (st == RW_OK && !soft) st = pattern_add_buckets(&d->ever[l], &grown_rows);
    row_buckets_free(&grown_rows);
    free(drop);
    free(pos);
    if (st != RW_OK) return st;
    d->dropped[l] = dropped + input_dropped;
    d->grown[l] = grown;
    /* Dropped positions were stored and grown ones were not (both chosen
     * from the pattern before the update), so the two patterns differ in
     * exactly these: the Sparse Architecture Divergence without comparing
     * them. Soft shrinkage keeps the pattern. */
    *sad = (soft ? 0 : (int64_t)dropped + grown) + input_dropped;
    return RW_OK;
}

/* Layers at once, one thread each, when there are threads to spare and
 * the growth's per-layer buffers (cols × batch floats each) stay small: a
 * layer's update is otherwise mostly one thread's work. The results do
 * not change: each layer draws from its own random stream, and its growth
 * makes the same products on one thread as on several. */
#define CONCURRENT_BUFFER_BYTES ((size_t)64 << 20)

static rw_status update_layers(dst_state *d, rw_trainer *t, int64_t step, int64_t total_steps,
                               int64_t *sad)
{
    const rw_model *m = t->model;
    int n = d->n_layers, busy = 0, threads = omp_get_max_threads();
    size_t buffers = 0;
    for (int l = 0; l < n; l++)
        if (param_is_sparse(dst_param(d, m, l)) &&
            (d->drop_n[l] + d->prune_n[l] > 0 || d->grow_n[l] > 0 ||
             (d->inputs && l == d->input_weight && d->input_drop > 0))) {
            busy++;
            buffers += sizeof(float) * (size_t)dst_param(d, m, l)->cols * (size_t)d->bp *
                       (size_t)(dst_uses_window(&d->cfg) ? d->cfg.window : 1);
        }
    int concurrent = threads > 1 && busy > 1 && buffers <= CONCURRENT_BUFFER_BYTES;
    int want = concurrent ? threads : 1;
    if (d->scratch_n < want) {
        grow_scratch *more = realloc(d->scratch, sizeof *more * (size_t)want);
        if (!more) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for topology update buffers");
        memset(more + d->scratch_n, 0, sizeof *more * (size_t)(want - d->scratch_n));
        d->scratch = more;
        d->scratch_n = want;
    }
    rw_status *st = calloc((size_t)n, sizeof *st);
    int64_t *sads = calloc((size_t)n, sizeof *sads);
    char(*why)[256] = calloc((size_t)n, sizeof *why);
    if (!st || !sads || !why) {
        free(st);
        free(sads);
        free(why);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for a topology update");
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(want) if (concurrent)
    for (int l = 0; l < n; l++) {
        if (!param_is_sparse(dst_param(d, m, l))) continue;
        st[l] = update_layer(d, t, l, step, total_steps, &sads[l],
                             &d->scratch[concurrent ? omp_get_thread_num() : 0]);
        /* The message is the failing thread's own: keep it for ours. */
        if (st[l] != RW_OK) snprintf(why[l], sizeof why[l], "%s", rw_last_error());
    }
    rw_status first = RW_OK;
    for (int l = 0; l < n; l++) {
        *sad += sads[l];
        if (first == RW_OK && st[l] != RW_OK) first = rw_fail(st[l], "%s", why[l]);
    }
    free(st);
    free(sads);
    free(why);
    return first;
}

static rw_status run_update(dst_state *d, rw_trainer *t, int64_t step, int64_t total_steps)
{
    double t0 = now_seconds();
    const rw_model *m = t->model;
    int n = d->n_layers;
    double frac = dst_drop_fraction(&d->cfg, step, total_steps);
    rw_status st = close_inputs(d, t, step, total_steps);
    if (st == RW_OK) st = plan_counts(d, t, step, total_steps, frac);
    if (st != RW_OK) return st;
    if (d->grow->window == GROW_WINDOW_ACTIVATIONS)
        for (int l = 0; l < n; l++)
            if (d->win_pre[l] && d->grow_n[l] > 0) {
                window_standardise(d, d->win_pre[l], dst_param(d, m, l)->cols);
                window_standardise(d, d->win_post[l], dst_param(d, m, l)->rows);
            }
    int64_t sad = 0, before = 0, ever = 0, all = 0;
    for (int l = 0; l < n; l++) {
        d->dropped[l] = d->grown[l] = d->shrunk[l] = 0;
        before += param_count(dst_param(d, m, l));
    }
    if ((st = update_layers(d, t, step, total_steps, &sad)) != RW_OK) return st;
    if (dst_uses_window(&d->cfg)) window_clear(d, m);
    if (d->inputs) input_select_settle(d->inputs);

    d->pruning_done = d->cfg.final_sparsity > 0;
    for (int l = 0; l < n; l++) {
        const param *p = dst_param(d, m, l);
        int64_t size = param_dense_count(p);
        d->nonzeros[l] = param_count(p);
        d->density[l] = (double)d->nonzeros[l] / (double)size;
        ever += param_is_sparse(p) ? d->ever[l].nnz : size;
        all += size;
        if (param_is_sparse(p) && d->cfg.final_sparsity > 0 && d->nonzeros[l] > d->final_nnz[l])
            d->pruning_done = 0;
    }
    topology_dead_neurons(m, d->weight, n, d->dead, &d->stats.unconnected_inputs);
    d->updates++;
    double seconds = now_seconds() - t0;
    d->total_seconds += seconds;
    rw_topology_stats *s = &d->stats;
    s->update = d->updates;
    s->step = step;
    s->epoch = t->epoch;
    s->n_layers = n;
    s->dropped = d->dropped;
    s->grown = d->grown;
    s->nonzeros = d->nonzeros;
    s->density = d->density;
    s->drop_fraction = frac;
    s->itop_rate = all ? (double)ever / (double)all : 0;
    s->sad = sad;
    s->sad_rate = before ? (double)sad / (double)before : 0;
    s->dead_neurons = d->dead;
    s->seconds = seconds;
    s->total_seconds = d->total_seconds;
    s->shrunk = d->cfg.shrink > 0 ? d->shrunk : NULL;
    s->inputs_kept = d->inputs ? input_select_kept(d->inputs) : 0;
    s->inputs_removed = d->inputs_removed;
    uint64_t h = 0;
    for (int l = 0; l < n; l++) h = h * 0x100000001b3ULL ^ param_hash(dst_param(d, m, l), 0);
    s->topology_hash = h;
    return RW_OK;
}

rw_status dst_after_step(dst_state *d, rw_trainer *t, const trainer_step_info *si,
                         const rw_topology_stats **stats)
{
    int64_t step = si->step, steps_per_epoch = si->steps_per_epoch, total_steps = si->total_steps;
    *stats = NULL;
    d->batch_n = si->batch_n;
    if (dst_uses_window(&d->cfg)) {
        /* Keep this batch if the next update is at most window - 1 steps
         * away. */
        int64_t dt = update_interval(d, steps_per_epoch);
        int64_t next = dt > 0 ? (step + dt - 1) / dt * dt : 0;
        int64_t back = next - step;
        if (dt > 0 && back < d->cfg.window && dst_update_due(d, next, steps_per_epoch, total_steps)) {
            double t0 = now_seconds();
            window_capture(d, t, si->batch_n, d->cfg.window - 1 - (int)back, (int)back);
            d->total_seconds += now_seconds() - t0;
        }
    }
    if (!dst_update_due(d, step, steps_per_epoch, total_steps)) return RW_OK;
    rw_status st = run_update(d, t, step, total_steps);
    if (st == RW_OK) *stats = &d->stats;
    return st;
}

int dst_wants_batch(const rw_trainer *t, const trainer_step_info *si)
{
    const dst_state *d = trainer_dst(t);
    if (!d) return 0;
    int64_t step = si->step, per_epoch = si->steps_per_epoch, total = si->total_steps;
    if (dst_update_due(d, step, per_epoch, total)) return 1;
    if (!dst_uses_window(&d->cfg)) return 0;
    int64_t dt = update_interval(d, per_epoch);
    int64_t next = dt > 0 ? (step + dt - 1) / dt * dt : 0;
    return dt > 0 && next - step < d->cfg.window && dst_update_due(d, next, per_epoch, total);
}

/* ---- The trainer hook -------------------------------------------------- */

static rw_status hook_after_step(void *state, rw_trainer *t, const trainer_step_info *s)
{
    const rw_topology_stats *stats = NULL;
    rw_status st = dst_after_step(state, t, s, &stats);
    if (st == RW_OK && stats && t->on_topology) t->on_topology(stats, t->on_topology_user);
    return st;
}

static void hook_free(void *state) { dst_free(state); }

static const trainer_hook_ops dst_hook = {"dst", NULL, hook_after_step, hook_free};

dst_state *trainer_dst(const rw_trainer *t) { return trainer_find_hook(t, &dst_hook); }

rw_status dst_attach(rw_trainer *t, dst_state *d)
{
    trainer_remove_hook(t, &dst_hook);
    if (!d) return RW_OK;
    rw_status st = trainer_add_hook(t, &dst_hook, d);
    if (st != RW_OK) dst_free(d);
    return st;
}

rw_status rw_trainer_set_dst(rw_trainer *t, const rw_dst_config *config)
{
    dst_state *d = NULL;
    if (config) {
        rw_status st = dst_create(config, t->model, trainer_batch_bp(t), &d);
        if (st != RW_OK) return st;
    }
    return dst_attach(t, d);
}

int rw_trainer_dst(const rw_trainer *t, rw_dst_config *config, rw_dst_totals *totals)
{
    const dst_state *d = trainer_dst(t);
    if (!d) return 0;
    if (config) *config = d->cfg;
    if (totals) {
        totals->updates = d->updates;
        totals->total_seconds = d->total_seconds;
        int64_t ever = 0, all = 0;
        for (int l = 0; l < d->n_layers; l++) {
            const param *p = dst_param(d, t->model, l);
            all += param_dense_count(p);
            ever += param_is_sparse(p) ? d->ever[l].nnz : param_dense_count(p);
        }
        totals->itop_rate = all ? (double)ever / (double)all : 0;
        totals->inputs_kept = d->inputs ? input_select_kept(d->inputs) : 0;
    }
    return 1;
}

int dst_kept_inputs(const rw_trainer *t, int32_t *index)
{
    const dst_state *d = trainer_dst(t);
    if (!d || !d->inputs) return -1;
    return input_select_open(d->inputs, index);
}
