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

/* Weights, biases and optimizer state at the rewind step. */
struct imp_rewind {
    int n_layers;
    csr_matrix *w;            /* [n_layers] the weights, pattern included */
    float **wm1, **wm2;       /* [n_layers][nnz] optimizer state (wm2: AdamW) */
    float **bias, **bm1, **bm2; /* [n_layers][out] */
    int64_t step;
    double epoch_loss_sum;    /* of the epoch in progress, for its report */
};

void imp_rewind_free(imp_rewind *p)
{
    if (!p) return;
    for (int l = 0; l < p->n_layers; l++) {
        if (p->w) csr_free(&p->w[l]);
        float **arrays[] = {p->wm1, p->wm2, p->bias, p->bm1, p->bm2};
        for (int a = 0; a < 5; a++)
            if (arrays[a]) rw_free(arrays[a][l]);
    }
    free(p->w);
    free(p->wm1);
    free(p->wm2);
    free(p->bias);
    free(p->bm1);
    free(p->bm2);
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
    int n = m->n_layers, adam = t->cfg.optimizer == RW_OPT_ADAMW;
    p->n_layers = n;
    p->step = t->step;
    p->epoch_loss_sum = t->epoch_loss_sum;
    p->w = calloc((size_t)n, sizeof(csr_matrix));
    p->wm1 = calloc((size_t)n, sizeof(float *));
    p->wm2 = calloc((size_t)n, sizeof(float *));
    p->bias = calloc((size_t)n, sizeof(float *));
    p->bm1 = calloc((size_t)n, sizeof(float *));
    p->bm2 = calloc((size_t)n, sizeof(float *));
    int ok = p->w && p->wm1 && p->wm2 && p->bias && p->bm1 && p->bm2;
    for (int l = 0; l < n && ok; l++) {
        const layer *ly = &m->layers[l];
        const csr_matrix *w = &ly->w;
        ok = csr_alloc(&p->w[l], w->rows, w->cols, w->nnz) == RW_OK;
        if (!ok) break;
        memcpy(p->w[l].indptr, w->indptr, sizeof(int32_t) * ((size_t)w->rows + 1));
        memcpy(p->w[l].indices, w->indices, sizeof(int32_t) * (size_t)w->nnz);
        memcpy(p->w[l].values, w->values, sizeof(float) * (size_t)w->nnz);
        p->wm1[l] = copy_floats(t->wm1[l], w->nnz);
        p->bias[l] = copy_floats(ly->bias, ly->out);
        p->bm1[l] = copy_floats(t->bm1[l], ly->out);
        ok = p->wm1[l] && p->bias[l] && p->bm1[l];
        if (ok && adam) {
            p->wm2[l] = copy_floats(t->wm2[l], w->nnz);
            p->bm2[l] = copy_floats(t->bm2[l], ly->out);
            ok = p->wm2[l] && p->bm2[l];
        }
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
    for (int l = 0; l < m->n_layers; l++) {
        layer *ly = &m->layers[l];
        csr_matrix *w = &ly->w;
        const csr_matrix *s = &p->w[l];
        for (int o = 0; o < w->rows; o++) {
            int j = s->indptr[o], j1 = s->indptr[o + 1];
            for (int k = w->indptr[o]; k < w->indptr[o + 1]; k++) {
                while (j < j1 && s->indices[j] < w->indices[k]) j++;
                if (j == j1 || s->indices[j] != w->indices[k])
                    return rw_fail(RW_ERR_INVALID_ARGUMENT,
                                   "fc%d: weight (%d, %d) was not stored at the rewind step",
                                   l + 1, o, w->indices[k]);
                w->values[k] = s->values[j];
                t->wm1[l][k] = p->wm1[l][j];
                if (adam) t->wm2[l][k] = p->wm2[l][j];
            }
        }
        memcpy(ly->bias, p->bias[l], sizeof(float) * (size_t)ly->out);
        memcpy(t->bm1[l], p->bm1[l], sizeof(float) * (size_t)ly->out);
        if (adam) memcpy(t->bm2[l], p->bm2[l], sizeof(float) * (size_t)ly->out);
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
