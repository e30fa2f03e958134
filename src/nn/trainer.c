#include "nn/trainer.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "nn/checkpoint.h"
#include "kernels/team.h"
#include "nn/loss.h"
#include "nn/optimizer.h"
#include "sparsity/nm_train.h"

/* The optimizer phase hands out pieces of every parameter array: array 2l
 * is layer l's weights, 2l + 1 its bias. */
#define OPT_CHUNK 16384
/* The clipping norm sums each array in this many fixed parts, so its value
 * does not depend on the number of threads. */
#define NORM_PARTS 16

rw_train_config rw_train_config_default(void)
{
    rw_train_config c;
    memset(&c, 0, sizeof c);
    c.optimizer = RW_OPT_SGD;
    c.lr = 0.05f;
    c.momentum = 0.9f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.schedule = RW_SCHED_COSINE;
    c.step_every = 1;
    c.step_gamma = 0.1f;
    c.batch = 128;
    c.epochs = 10;
    c.seed = 1;
    return c;
}

static rw_status check_config(const rw_train_config *c)
{
    if (c->batch < 1 || c->batch > 1 << 20)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "batch size %d is outside [1, 1048576]", c->batch);
    if (!(c->lr > 0.0f) || !isfinite(c->lr))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "learning rate %g must be positive", c->lr);
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "momentum %g is outside [0, 1)", c->momentum);
    if (c->nesterov && c->momentum == 0.0f)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "Nesterov momentum needs a momentum above 0");
    if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "AdamW betas (%g, %g) must be in [0, 1)", c->beta1,
                       c->beta2);
    if (!(c->weight_decay >= 0.0f))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "weight decay %g must be >= 0", c->weight_decay);
    if (!(c->clip_norm >= 0.0f))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "gradient clip norm %g must be >= 0", c->clip_norm);
    if (c->epochs < 1) return rw_fail(RW_ERR_INVALID_ARGUMENT, "epochs %d must be >= 1", c->epochs);
    if (c->warmup_epochs < 0 || c->warmup_epochs > c->epochs)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "warm-up of %d epochs is outside [0, %d]",
                       c->warmup_epochs, c->epochs);
    if (c->schedule == RW_SCHED_STEP && (c->step_every < 1 || !(c->step_gamma > 0.0f)))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "step schedule needs step_every >= 1 and step_gamma > 0");
    return RW_OK;
}

void rw_trainer_free(rw_trainer *t)
{
    if (!t) return;
    int n = t->model ? t->model->n_layers : 0;
    float **tables[] = {t->wm1, t->wm2, t->bm1, t->bm2};
    for (int i = 0; i < 4; i++) {
        if (!tables[i]) continue;
        for (int l = 0; l < n; l++) rw_free(tables[i][l]);
        free(tables[i]);
    }
    workspace_free(&t->ws);
    dst_free(t->dst);
    free(t->order);
    free(t->labels);
    free(t->norm_part);
    free(t);
}

rw_status rw_trainer_set_dst(rw_trainer *t, const rw_dst_config *config)
{
    dst_state *d = NULL;
    if (config) {
        rw_status st = dst_create(config, t->model, t->ws.bp, &d);
        if (st != RW_OK) return st;
    }
    dst_free(t->dst);
    t->dst = d;
    return RW_OK;
}

void rw_trainer_set_topology_callback(rw_trainer *t, rw_topology_fn fn, void *user)
{
    t->on_topology = fn;
    t->on_topology_user = user;
}

rw_status rw_trainer_create(rw_model *model, const rw_train_config *config, rw_trainer **out)
{
    *out = NULL;
    rw_status st = check_config(config);
    if (st != RW_OK) return st;
    rw_trainer *t = calloc(1, sizeof *t);
    if (!t) return rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a trainer");
    t->model = model;
    t->cfg = *config;
    int n = model->n_layers, adam = config->optimizer == RW_OPT_ADAMW;
    t->wm1 = calloc((size_t)n, sizeof(float *));
    t->wm2 = calloc((size_t)n, sizeof(float *));
    t->bm1 = calloc((size_t)n, sizeof(float *));
    t->bm2 = calloc((size_t)n, sizeof(float *));
    t->labels = malloc((size_t)config->batch);
    t->norm_part = malloc(sizeof(double) * 2 * (size_t)n * NORM_PARTS);
    int ok = t->wm1 && t->wm2 && t->bm1 && t->bm2 && t->labels && t->norm_part;
    for (int l = 0; l < n && ok; l++) {
        const layer *ly = &model->layers[l];
        size_t wn = (size_t)layer_weight_count(ly), bn = (size_t)ly->out;
        t->wm1[l] = rw_alloc(sizeof(float) * wn);
        t->bm1[l] = rw_alloc(sizeof(float) * bn);
        ok = t->wm1[l] && t->bm1[l];
        if (adam && ok) {
            t->wm2[l] = rw_alloc(sizeof(float) * wn);
            t->bm2[l] = rw_alloc(sizeof(float) * bn);
            ok = t->wm2[l] && t->bm2[l];
        }
    }
    if (!ok) {
        rw_trainer_free(t);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for optimizer state");
    }
    st = workspace_init(&t->ws, model, config->batch, 1);
    if (st != RW_OK) {
        rw_trainer_free(t);
        return st;
    }
    *out = t;
    return RW_OK;
}

double trainer_grad_norm(const rw_trainer *t, int *bad_layer)
{
    double total = 0;
    *bad_layer = -1;
    for (int l = 0; l < t->model->n_layers; l++) {
        const layer *ly = &t->model->layers[l];
        double s = 0;
        int64_t wn = layer_weight_count(ly);
        for (int64_t k = 0; k < wn; k++) s += (double)t->ws.gw[l][k] * t->ws.gw[l][k];
        for (int o = 0; o < ly->out; o++) s += (double)t->ws.gb[l][o] * t->ws.gb[l][o];
        if (!isfinite(s) && *bad_layer < 0) *bad_layer = l;
        total += s;
    }
    return sqrt(total);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The first layer whose pre-activation output holds a NaN or Inf in the n
 * valid columns, or -1. */
static int first_nonfinite_output(const rw_model *m, const workspace *ws, int n)
{
    for (int l = 0; l < m->n_layers; l++)
        for (int o = 0; o < m->layers[l].out; o++)
            for (int b = 0; b < n; b++)
                if (!isfinite(ws->z[l][(size_t)o * ws->bp + b])) return l;
    return -1;
}

/* After the optimizer step: a topology update when one is due. */
static rw_status topology_step(rw_trainer *t, int n, int64_t steps_per_epoch, int64_t total_steps)
{
    dst_context ctx = {t->model, &t->ws, n, t->wm1, t->wm2,
                       t->cfg.optimizer == RW_OPT_ADAMW ? t->cfg.beta1 : t->cfg.momentum,
                       t->epoch};
    const rw_topology_stats *stats = NULL;
    rw_status st = dst_after_step(t->dst, &ctx, t->step, steps_per_epoch, total_steps, &stats);
    if (st == RW_OK && stats && t->on_topology) t->on_topology(stats, t->on_topology_user);
    return st;
}

static int64_t param_count(const rw_model *m, int array)
{
    const layer *ly = &m->layers[array / 2];
    return array % 2 ? ly->out : layer_weight_count(ly);
}

static float *param_array(rw_model *m, int array)
{
    layer *ly = &m->layers[array / 2];
    return array % 2 ? ly->bias : layer_weights(ly);
}

static float *param_grad(rw_trainer *t, int array)
{
    return array % 2 ? t->ws.gb[array / 2] : t->ws.gw[array / 2];
}

static float *param_state(rw_trainer *t, int array, int second)
{
    float **w = second ? t->wm2 : t->wm1, **b = second ? t->bm2 : t->bm1;
    return array % 2 ? b[array / 2] : w[array / 2];
}

/* Sum of squares of part `part` of NORM_PARTS of a gradient array. */
static double grad_square_part(rw_trainer *t, int array, int part)
{
    int64_t n = param_count(t->model, array);
    int64_t k0 = n * part / NORM_PARTS, k1 = n * (part + 1) / NORM_PARTS;
    const float *g = param_grad(t, array);
    double s = 0;
    for (int64_t k = k0; k < k1; k++) s += (double)g[k] * g[k];
    return s;
}

/* Pieces of OPT_CHUNK entries over all parameter arrays. */
static int64_t opt_chunks(const rw_model *m)
{
    int64_t total = 0;
    for (int i = 0; i < 2 * m->n_layers; i++) total += (param_count(m, i) + OPT_CHUNK - 1) / OPT_CHUNK;
    return total;
}

/* Optimizer step (and clipping scale) on piece c of opt_chunks. */
static void opt_chunk(rw_trainer *t, int64_t c, float lr, int64_t step, float scale)
{
    rw_model *m = t->model;
    int i = 0;
    int64_t n = param_count(m, 0), pieces = (n + OPT_CHUNK - 1) / OPT_CHUNK;
    while (c >= pieces) {
        c -= pieces;
        n = param_count(m, ++i);
        pieces = (n + OPT_CHUNK - 1) / OPT_CHUNK;
    }
    int64_t k0 = c * OPT_CHUNK, k1 = k0 + OPT_CHUNK < n ? k0 + OPT_CHUNK : n;
    float *g = param_grad(t, i);
    if (scale != 1.0f)
        for (int64_t k = k0; k < k1; k++) g[k] *= scale;
    optimizer_step_range(&t->cfg, lr, step, param_array(m, i), g, param_state(t, i, 0),
                         param_state(t, i, 1), k0, k1);
}

/* What the threads running an epoch share. The bookkeeping fields are
 * written by one chunk per step (any thread, never two at once). */
typedef struct {
    rw_trainer *t;
    const rw_dataset *train;
    rw_progress_fn progress;
    void *user;
    int64_t steps, total_steps, first_step;
    double start;
    int stop;            /* the progress function asked to stop */
    int diverged;        /* 1: non-finite loss, 2: non-finite gradient */
    int bad_layer;       /* diverged == 2: the first layer with one */
    int bad_n;           /* diverged == 1: samples in that batch */
    double bad_loss;
    int64_t bad_step;
    float lr;
    rw_status dst_status; /* a topology update failed */
    char dst_message[1024];
} epoch_run;

/* Runs `body` as a phase of a single chunk: whichever thread comes first. */
#define ONE_CHUNK(...)                                                                             \
    do {                                                                                           \
        TEAM_FOR(one_, 1) {                                                                        \
            __VA_ARGS__;                                                                           \
            team_chunk_done();                                                                     \
        }                                                                                          \
    } while (0)

/* Step s of the epoch, run by every thread of the region: batch, forward,
 * loss, backward, clipping, update, one phase after another, each waiting
 * for the last one's work (kernels/team.h). Returns 0 to go on, 1 to stop:
 * the same for every thread, as each decision is read from shared results
 * once the phase that made them is complete. */
static int train_step(epoch_run *e, int64_t s)
{
    rw_trainer *t = e->t;
    rw_model *m = t->model;
    workspace *ws = &t->ws;
    int n_layers = m->n_layers, bp = ws->bp, batch = t->cfg.batch;
    int b0 = (int)(s * batch), n = e->train->n - b0 < batch ? e->train->n - b0 : batch;
    const int *index = t->order + b0;
    int64_t step = e->first_step + s + 1; /* counted from 1, as AdamW needs */
    float lr = schedule_lr(&t->cfg, step - 1, e->steps, e->total_steps);
    if (e->stop) return 1;

    int chunks = phase_load_batch(m, ws, e->train->x, e->train->features, index, n);
    ONE_CHUNK(for (int b = 0; b < n; b++) t->labels[b] = e->train->y[index[b]]);
    team_phase(chunks + 1);
    for (int l = 0; l < n_layers; l++) team_phase(phase_forward(m, ws, l));
    int parts = omp_get_num_threads(), classes = m->layers[n_layers - 1].out;
    TEAM_FOR(p, parts) {
        int c0 = (int)((int64_t)bp * p / parts), c1 = (int)((int64_t)bp * (p + 1) / parts);
        softmax_xent_columns(ws->a[n_layers], t->labels, classes, c0, c1, n, bp, ws->g[n_layers],
                             ws->loss + c0);
        team_chunk_done();
    }
    team_phase(parts);
    /* Every thread sums the same numbers in the same order. */
    double total = 0;
    for (int b = 0; b < n; b++) total += ws->loss[b];
    if (!isfinite(total)) {
        ONE_CHUNK(e->diverged = 1; e->bad_loss = total / n; e->bad_step = step; e->bad_n = n);
        return 1;
    }
    for (int l = n_layers - 1; l >= 0; l--) team_phase(phase_backward(m, ws, l));
    float scale = 1.0f;
    if (t->cfg.clip_norm > 0) {
        int arrays = 2 * n_layers;
        TEAM_FOR(i, arrays * NORM_PARTS) {
            t->norm_part[i] = grad_square_part(t, i / NORM_PARTS, i % NORM_PARTS);
            team_chunk_done();
        }
        team_phase(arrays * NORM_PARTS);
        double sum = 0;
        int bad = -1;
        for (int i = 0; i < arrays * NORM_PARTS; i++) {
            sum += t->norm_part[i];
            if (!isfinite(t->norm_part[i]) && bad < 0) bad = i / NORM_PARTS / 2;
        }
        if (bad >= 0) {
            ONE_CHUNK(e->diverged = 2; e->bad_layer = bad; e->bad_step = step);
            return 1;
        }
        double norm = sqrt(sum);
        if (norm > t->cfg.clip_norm) scale = (float)(t->cfg.clip_norm / norm);
    }
    int64_t pieces = opt_chunks(m);
    TEAM_FOR(c, (int)pieces) {
        opt_chunk(t, c, lr, step, scale);
        team_chunk_done();
    }
    /* Bookkeeping, and the progress function, in a chunk of its own. The
     * epoch's counts live in the trainer, so an epoch can stop after any
     * step and go on later (or in another process, from a checkpoint). */
    ONE_CHUNK({
        t->step = step;
        t->epoch_step = s + 1;
        t->epoch_loss_sum += total;
        t->epoch_samples += n;
        e->lr = lr;
        if (e->progress) {
            rw_progress p = {t->epoch, step, t->epoch_samples, e->train->n,
                             t->epoch_loss_sum / t->epoch_samples,
                             t->epoch_seconds + now_seconds() - e->start};
            if (e->progress(&p, e->user)) e->stop = 1;
        }
    });
    team_phase((int)pieces + 1);
    /* N:M training: masks and N:M weights from the updated W. */
    if (model_nm_training(m)) team_phase(phase_nm_refresh(m, step, e->total_steps));
    return 0;
}

rw_status rw_trainer_epoch(rw_trainer *t, const rw_dataset *train, rw_progress_fn progress,
                           void *user, rw_epoch_stats *stats)
{
    rw_model *m = t->model;
    if (train->features != m->layers[0].in)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the data has %d features but the model takes %d",
                       train->features, m->layers[0].in);
    if (train->classes > m->layers[m->n_layers - 1].out)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the data has %d classes but the model has %d",
                       train->classes, m->layers[m->n_layers - 1].out);
    int n = train->n;
    if (n < 1) return rw_fail(RW_ERR_INVALID_ARGUMENT, "the training set is empty");
    rw_status checked = trainer_check_data(t, train);
    if (checked != RW_OK) return checked;
    if (t->order_cap < n) {
        int *o = realloc(t->order, sizeof(int) * (size_t)n);
        if (!o) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for the sample order");
        t->order = o;
        t->order_cap = n;
    }
    /* The order depends only on the seed and the epoch, so a resumed run
     * sees the same batches. */
    rng_state r;
    rng_seed_stream(&r, t->cfg.seed, 0x5eed0000ULL + (uint64_t)t->epoch);
    for (int i = 0; i < n; i++) t->order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        int tmp = t->order[i];
        t->order[i] = t->order[j];
        t->order[j] = tmp;
    }

    int batch = t->cfg.batch;
    epoch_run e = {.t = t, .train = train, .progress = progress, .user = user,
                   .steps = (n + batch - 1) / batch, .first_step = t->step - t->epoch_step,
                   .lr = t->cfg.lr};
    e.total_steps = e.steps * t->cfg.epochs;
    e.start = now_seconds();
    team_sync sync;
    team_sync_init(&sync);
    /* One parallel region for the whole epoch: the threads stay in it from
     * the first step to the last, meeting only at the team barriers. It
     * starts where the epoch stopped (step 0 for a new epoch). */
    int64_t first = t->epoch_step;
    if (!t->dst) {
#pragma omp parallel if (network_worth_threading(m, t->ws.bp))
        {
            team_begin(&sync);
            for (int64_t s = first; s < e.steps; s++)
                if (train_step(&e, s)) break;
            team_end();
        }
    } else {
        /* Dynamic sparse training looks at every step (windows, updates)
         * and changes the arrays the step uses, so its work runs between
         * steps, outside the parallel region, as one thread. */
        for (int64_t s = first; s < e.steps; s++) {
            team_sync_init(&sync);
#pragma omp parallel if (network_worth_threading(m, t->ws.bp))
            {
                team_begin(&sync);
                train_step(&e, s);
                team_end();
            }
            /* A step the progress function stopped after still gets its
             * update, so stopping never changes the run. */
            if (e.diverged || t->epoch_step != s + 1) break;
            int b0 = (int)(s * t->cfg.batch);
            int count = train->n - b0 < t->cfg.batch ? train->n - b0 : t->cfg.batch;
            rw_status st = topology_step(t, count, e.steps, e.total_steps);
            if (st != RW_OK) {
                e.dst_status = st;
                snprintf(e.dst_message, sizeof e.dst_message, "%s", rw_last_error());
                break;
            }
            if (e.stop) break;
        }
    }
    t->epoch_seconds += now_seconds() - e.start;
    if (e.diverged == 1) {
        int bad = first_nonfinite_output(m, &t->ws, e.bad_n);
        if (bad >= 0)
            return rw_fail(RW_ERR_DIVERGED,
                           "training diverged at step %lld: the loss is %g; layer fc%d is the "
                           "first whose output is not finite",
                           (long long)e.bad_step, e.bad_loss, bad + 1);
        return rw_fail(RW_ERR_DIVERGED, "training diverged at step %lld: the loss is %g",
                       (long long)e.bad_step, e.bad_loss);
    }
    if (e.diverged == 2)
        return rw_fail(RW_ERR_DIVERGED,
                       "training diverged at step %lld: the gradient of layer fc%d is not finite",
                       (long long)e.bad_step, e.bad_layer + 1);
    if (e.dst_status != RW_OK) return rw_fail(e.dst_status, "%s", e.dst_message);
    int finished = t->epoch_step == e.steps;
    if (stats) {
        stats->loss = t->epoch_samples ? t->epoch_loss_sum / t->epoch_samples : 0;
        stats->seconds = t->epoch_seconds;
        stats->samples_per_second =
            t->epoch_seconds > 0 ? t->epoch_samples / t->epoch_seconds : 0;
        stats->step = t->step;
        stats->lr = e.lr;
        stats->finished = finished;
    }
    if (finished) {
        t->epoch++;
        t->epoch_step = t->epoch_samples = 0;
        t->epoch_loss_sum = t->epoch_seconds = 0;
    }
    return RW_OK;
}
