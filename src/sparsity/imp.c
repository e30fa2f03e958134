/* Iterative magnitude pruning with weight rewinding: "Linear Mode
 * Connectivity and the Lottery Ticket Hypothesis" (Frankle et al. 2020).
 * Train; then `rounds` times: prune by magnitude, rewind every surviving
 * weight, every bias and their optimizer state to their values at step k
 * of the first training, and retrain from step k with the learning rate
 * schedule at step k. Pruning only removes, so the snapshot's pattern
 * holds every later pattern. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/dataset.h"
#include "sparsity/train_prune.h"

/* Every parameter and its optimizer state at the rewind step: a CSR
 * weight with its pattern, any other parameter as its values. */
struct imp_rewind {
    int n_params;
    csr_matrix *w;   /* [n_params] CSR weights (pattern included), empty otherwise */
    float **values;  /* [n_params] the values of the others */
    float **m1, **m2; /* [n_params] optimizer state (m2: AdamW) */
    int64_t step;
    double epoch_loss_sum; /* of the epoch in progress, for its report */
};

void imp_rewind_free(imp_rewind *p)
{
    if (!p) return;
    for (int q = 0; q < p->n_params; q++) {
        if (p->w) csr_free(&p->w[q]);
        float **arrays[] = {p->values, p->m1, p->m2};
        for (int a = 0; a < 3; a++)
            if (arrays[a]) rw_free(arrays[a][q]);
    }
    free(p->w);
    free(p->values);
    free(p->m1);
    free(p->m2);
    free(p);
}

static float *copy_floats(const float *src, int64_t n)
{
    float *dst = rw_alloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (dst && src && n > 0) memcpy(dst, src, sizeof(float) * (size_t)n);
    return dst;
}

rw_status imp_rewind_save(const rw_trainer *t, imp_rewind **out)
{
    *out = NULL;
    imp_rewind *p = calloc(1, sizeof *p);
    if (!p) return rw_fail(RW_ERR_NO_MEMORY, "out of memory saving the weights to rewind to");
    const rw_model *m = t->model;
    int n = m->n_params, adam = t->cfg.optimizer == RW_OPT_ADAMW;
    p->n_params = n;
    p->step = t->step;
    p->epoch_loss_sum = t->epoch_loss_sum;
    p->w = calloc((size_t)n + 1, sizeof(csr_matrix));
    p->values = calloc((size_t)n + 1, sizeof(float *));
    p->m1 = calloc((size_t)n + 1, sizeof(float *));
    p->m2 = calloc((size_t)n + 1, sizeof(float *));
    int ok = p->w && p->values && p->m1 && p->m2;
    for (int q = 0; q < n && ok; q++) {
        const param *pr = &m->params[q];
        int64_t count = param_count(pr);
        if (param_is_sparse(pr)) {
            const csr_matrix *w = pr->csr;
            ok = csr_alloc(&p->w[q], w->rows, w->cols, w->nnz) == RW_OK;
            if (!ok) break;
            memcpy(p->w[q].indptr, w->indptr, sizeof(int32_t) * ((size_t)w->rows + 1));
            memcpy(p->w[q].indices, w->indices, sizeof(int32_t) * (size_t)w->nnz);
            memcpy(p->w[q].values, w->values, sizeof(float) * (size_t)w->nnz);
        } else {
            ok = (p->values[q] = copy_floats(param_values(pr), count)) != NULL;
        }
        p->m1[q] = copy_floats(t->m1[q], count);
        ok = ok && p->m1[q];
        if (ok && adam) ok = (p->m2[q] = copy_floats(t->m2[q], count)) != NULL;
    }
    if (!ok) {
        imp_rewind_free(p);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory saving the weights to rewind to");
    }
    *out = p;
    return RW_OK;
}

rw_status imp_rewind_apply(rw_trainer *t, const imp_rewind *p, int64_t steps_per_epoch)
{
    rw_model *m = t->model;
    int adam = t->cfg.optimizer == RW_OPT_ADAMW;
    if (m->n_params != p->n_params)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the model has %d parameters, the rewind point %d",
                       m->n_params, p->n_params);
    for (int q = 0; q < m->n_params; q++) {
        const param *pr = &m->params[q];
        if (!param_is_sparse(pr)) {
            int64_t count = param_count(pr);
            memcpy(param_values(pr), p->values[q], sizeof(float) * (size_t)count);
            memcpy(t->m1[q], p->m1[q], sizeof(float) * (size_t)count);
            if (adam) memcpy(t->m2[q], p->m2[q], sizeof(float) * (size_t)count);
            continue;
        }
        csr_matrix *w = pr->csr;
        const csr_matrix *s = &p->w[q];
        if (s->rows != w->rows)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: not stored as CSR at the rewind step",
                           pr->layer_name);
        for (int o = 0; o < w->rows; o++) {
            int j = s->indptr[o], j1 = s->indptr[o + 1];
            for (int k = w->indptr[o]; k < w->indptr[o + 1]; k++) {
                while (j < j1 && s->indices[j] < w->indices[k]) j++;
                if (j == j1 || s->indices[j] != w->indices[k])
                    return rw_fail(RW_ERR_INVALID_ARGUMENT,
                                   "%s: weight (%d, %d) was not stored at the rewind step",
                                   pr->layer_name, o, w->indices[k]);
                w->values[k] = s->values[j];
                t->m1[q][k] = p->m1[q][j];
                if (adam) t->m2[q][k] = p->m2[q][j];
            }
        }
    }
    /* The learning-rate schedule and the data order continue from step k. */
    int64_t k = p->step;
    t->step = k;
    t->epoch = (int)(k / steps_per_epoch);
    t->epoch_step = k % steps_per_epoch;
    t->epoch_samples = t->epoch_step * t->cfg.batch;
    t->epoch_loss_sum = t->epoch_step ? p->epoch_loss_sum : 0;
    return RW_OK;
}

typedef struct {
    const imp_rewind *point;
    int64_t steps_per_epoch;
} rewind_setup;

/* phase_setup_fn of a retrain phase. */
static rw_status rewind_setup_apply(rw_trainer *t, void *arg)
{
    const rewind_setup *r = arg;
    return imp_rewind_apply(t, r->point, r->steps_per_epoch);
}

/* Stops the first training's epoch after step k, for the snapshot. */
static int stop_at(const rw_progress *p, void *user)
{
    return p->step == *(const int64_t *)user;
}

/* The first training, with the snapshot taken after step k (before any
 * step for k = 0). */
static rw_status first_training(prune_run *r, rw_model *m, int64_t k, imp_rewind **point)
{
    rw_train_config tc = *r->train;
    tc.epochs = r->first_epochs;
    rw_trainer *t = NULL;
    rw_status st = rw_trainer_create(m, &tc, &t);
    if (st == RW_OK && k == 0) st = imp_rewind_save(t, point);
    while (st == RW_OK && t->epoch < tc.epochs && !r->stopped) {
        int64_t before = t->step;
        rw_epoch_stats s;
        int64_t target = k;
        st = rw_trainer_epoch(t, r->data, !*point ? stop_at : NULL, &target, &s);
        if (st != RW_OK) break;
        r->steps += t->step - before;
        if (!*point && t->step == k && (st = imp_rewind_save(t, point)) != RW_OK) break;
        if (!s.finished) continue; /* stopped for the snapshot: the epoch goes on */
        r->epochs_done++;
        rw_prune_epoch e = {0, 0, t->epoch, tc.epochs, r->steps, &s, m};
        if (r->on_epoch && r->on_epoch(&e, r->user)) r->stopped = 1;
    }
    rw_trainer_free(t);
    return st;
}

rw_status imp_run(prune_run *r, rw_model *m)
{
    const rw_prune_schedule *s = r->sched;
    int64_t spe = (rw_dataset_count(r->data) + r->train->batch - 1) / r->train->batch;
    int64_t retrain_steps = spe * r->phase_epochs;
    int64_t k = s->rewind_step >= 0 ? s->rewind_step : (int64_t)(0.05 * (double)retrain_steps + 0.5);
    if (k >= retrain_steps)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "rewind step %lld is not below the %lld steps of a retrain phase (%d "
                       "epochs of %lld steps)",
                       (long long)k, (long long)retrain_steps, r->phase_epochs, (long long)spe);
    imp_rewind *point = NULL;
    double d0 = prune_model_density(m), d_final = 1.0 - s->sparsity;
    rw_status st = first_training(r, m, k, &point);
    rewind_setup setup = {point, spe};
    for (int round = 1; round <= s->rounds && st == RW_OK && !r->stopped; round++) {
        st = prune_round(r, m, round, prune_round_density(d0, d_final, round, s->rounds));
        if (st == RW_OK)
            st = prune_phase(r, m, round, 0, r->phase_epochs, r->train->seed, rewind_setup_apply,
                             &setup);
    }
    imp_rewind_free(point);
    return st;
}
