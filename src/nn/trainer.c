#include "nn/trainer.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <inttypes.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "kernels/team.h"
#include "nn/optimizer.h"

/* The optimizer phase hands out pieces of every parameter's values, in
 * the order of the model's parameter list. */
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
    for (int h = 0; h < t->n_hooks; h++) t->hooks[h].ops->free(t->hooks[h].state);
    for (int p = 0; p < t->n_params; p++) {
        if (t->m1) rw_free(t->m1[p]);
        if (t->m2) rw_free(t->m2[p]);
    }
    free(t->m1);
    free(t->m2);
    for (int i = 0; i < t->ws.n_tensors; i++) {
        if (t->batch_data) rw_free(t->batch_data[i]);
        if (t->batch_grad) rw_free(t->batch_grad[i]);
    }
    free(t->batch_data);
    free(t->batch_grad);
    workspace_free(&t->ws);
    free(t->order);
    free(t->labels);
    free(t->norm_part);
    free(t);
}

rw_status trainer_add_hook(rw_trainer *t, const trainer_hook_ops *ops, void *state)
{
    if (t->n_hooks == TRAINER_MAX_HOOKS)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a trainer takes at most %d hooks",
                       TRAINER_MAX_HOOKS);
    t->hooks[t->n_hooks++] = (trainer_hook){ops, state};
    return RW_OK;
}

rw_status trainer_add_hook_first(rw_trainer *t, const trainer_hook_ops *ops, void *state)
{
    if (t->n_hooks == TRAINER_MAX_HOOKS)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a trainer takes at most %d hooks",
                       TRAINER_MAX_HOOKS);
    memmove(t->hooks + 1, t->hooks, sizeof *t->hooks * (size_t)t->n_hooks);
    t->hooks[0] = (trainer_hook){ops, state};
    t->n_hooks++;
    return RW_OK;
}

rw_status trainer_set_shard(rw_trainer *t, int rank, int count, int unit)
{
    if (count < 1 || rank < 0 || rank >= count || unit < 1 || t->cfg.batch % unit)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "process %d of %d is not a part of a batch", rank,
                       count);
    int samples = t->cfg.batch / unit;
    if (unit > 1 && samples < count)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "a batch of %d sequences cannot be shared by %d processes: give each one "
                       "at least one", samples, count);
    int global_bp = rw_pad_batch(t->cfg.batch);
    /* The largest part: ceil(samples / count) samples. */
    int part = (samples + count - 1) / count * unit;
    workspace ws;
    rw_status st = workspace_init(&ws, t->model, part, 1);
    if (st != RW_OK) return st;
    workspace_free(&t->ws);
    t->ws = ws;
    t->shard_rank = rank;
    t->shard_count = count;
    t->shard_unit = unit;
    t->batch_bp = count > 1 ? global_bp : 0;
    return RW_OK;
}

void *trainer_find_hook(const rw_trainer *t, const trainer_hook_ops *ops)
{
    for (int h = 0; h < t->n_hooks; h++)
        if (t->hooks[h].ops == ops) return t->hooks[h].state;
    return NULL;
}

void trainer_remove_hook(rw_trainer *t, const trainer_hook_ops *ops)
{
    for (int h = 0; h < t->n_hooks; h++) {
        if (t->hooks[h].ops != ops) continue;
        ops->free(t->hooks[h].state);
        memmove(t->hooks + h, t->hooks + h + 1, sizeof *t->hooks * (size_t)(t->n_hooks - h - 1));
        t->n_hooks--;
        return;
    }
}

void rw_trainer_set_topology_callback(rw_trainer *t, rw_topology_fn fn, void *user)
{
    t->on_topology = fn;
    t->on_topology_user = user;
}

float trainer_momentum(const rw_trainer *t)
{
    return t->cfg.optimizer == RW_OPT_ADAMW ? t->cfg.beta1 : t->cfg.momentum;
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
    t->data_fingerprint_version = DATASET_FINGERPRINT_VERSION;
    int n = model->n_params, adam = config->optimizer == RW_OPT_ADAMW;
    t->n_params = n;
    t->generation = model->generation;
    t->m1 = calloc((size_t)n + 1, sizeof(float *));
    t->m2 = calloc((size_t)n + 1, sizeof(float *));
    t->labels = malloc((size_t)config->batch);
    t->norm_part = malloc(sizeof(double) * ((size_t)n + 1) * NORM_PARTS);
    int ok = t->m1 && t->m2 && t->labels && t->norm_part;
    for (int p = 0; p < n && ok; p++) {
        size_t count = (size_t)param_count(&model->params[p]);
        t->m1[p] = rw_alloc(sizeof(float) * count);
        ok = t->m1[p] != NULL;
        if (adam && ok) t->m2[p] = rw_alloc(sizeof(float) * count), ok = t->m2[p] != NULL;
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

double trainer_grad_norm(const rw_trainer *t, int *bad_param)
{
    double total = 0;
    *bad_param = -1;
    for (int p = 0; p < t->n_params; p++) {
        double sum = 0;
        int64_t n = param_count(&t->model->params[p]);
        for (int64_t k = 0; k < n; k++) sum += (double)t->ws.grad[p][k] * t->ws.grad[p][k];
        if (!isfinite(sum) && *bad_param < 0) *bad_param = p;
        total += sum;
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
    for (int l = 0; l < m->n_layers; l++) {
        const tensor *t = &ws->t[m->layers[l]->output];
        for (int o = 0; o < t->rows; o++)
            for (int b = 0; b < n; b++)
                if (!isfinite(t->pre[(size_t)o * ws->bp + b])) return l;
    }
    return -1;
}

/* Sum of squares of part `part` of NORM_PARTS of a gradient array. */
static double grad_square_part(rw_trainer *t, int p, int part)
{
    int64_t n = param_count(&t->model->params[p]);
    int64_t k0 = n * part / NORM_PARTS, k1 = n * (part + 1) / NORM_PARTS;
    const float *g = t->ws.grad[p];
    double s = 0;
    for (int64_t k = k0; k < k1; k++) s += (double)g[k] * g[k];
    return s;
}

/* Pieces of OPT_CHUNK entries over all parameters. */
static int64_t opt_chunks(const rw_trainer *t)
{
    int64_t total = 0;
    for (int p = 0; p < t->n_params; p++)
        total += (param_count(&t->model->params[p]) + OPT_CHUNK - 1) / OPT_CHUNK;
    return total;
}

/* Optimizer step (and clipping scale) on piece c of opt_chunks. */
static void opt_chunk(rw_trainer *t, int64_t c, float lr, int64_t step, float scale)
{
    const param *ps = t->model->params;
    int p = 0;
    int64_t n = param_count(&ps[0]), pieces = (n + OPT_CHUNK - 1) / OPT_CHUNK;
    while (c >= pieces) {
        c -= pieces;
        n = param_count(&ps[++p]);
        pieces = (n + OPT_CHUNK - 1) / OPT_CHUNK;
    }
    int64_t k0 = c * OPT_CHUNK, k1 = k0 + OPT_CHUNK < n ? k0 + OPT_CHUNK : n;
    float *g = t->ws.grad[p];
    if (scale != 1.0f)
        for (int64_t k = k0; k < k1; k++) g[k] *= scale;
    rw_train_config cfg = t->cfg;
    if (!ps[p].decays) cfg.weight_decay = 0.0f;
    optimizer_step_range(&cfg, lr, step, param_values(&ps[p]), g, t->m1[p], t->m2[p], k0, k1);
}

/* One optimizer step after its batch is in the workspace, what the
 * threads running it share. The result fields are written by one chunk
 * (any thread, never two at once). */
typedef struct {
    rw_trainer *t;
    layer_io loss;       /* the loss layer's pass: labels or targets set */
    int n;               /* valid columns (samples or tokens) of this process's part */
    int counted;         /* columns the loss counts (the mean's divisor) */
    int batch_n;         /* valid columns of the global batch (n without a shard) */
    double batch_loss;   /* the summed loss and the columns it counts, after the */
    int batch_counted;   /* after_backward hooks (the global batch's) */
    int64_t step, steps_per_epoch, total_steps;
    float lr;
    int backward_hooks;  /* hooks with after_backward attached */
    double total;        /* the batch's summed loss */
    int diverged;        /* 1: non-finite loss, 2: non-finite gradient */
    int bad_param;       /* diverged == 2: the first parameter with one */
    double bad_loss;
    int64_t bad_step;
    rw_status hook_status; /* a hook failed */
    char hook_message[1024];
} step_run;

/* What the threads running an epoch share. */
typedef struct {
    step_run s;
    const rw_dataset *train;
    rw_progress_fn progress;
    void *user;
    int64_t steps, total_steps, first_step;
    double start;
    int stop;            /* the progress function asked to stop */
    int bad_n;           /* non-finite loss: samples in that batch */
} epoch_run;

/* Runs `body` as a phase of a single chunk: whichever thread comes first. */
#define ONE_CHUNK(...)                                                                             \
    do {                                                                                           \
        TEAM_FOR(one_, 1) {                                                                        \
            __VA_ARGS__;                                                                           \
            team_chunk_done();                                                                     \
        }                                                                                          \
    } while (0)

/* The phases of a step after its batch is loaded, run by every thread of
 * the region: forward, loss, backward, the after_backward hooks, clipping,
 * the optimizer, then `book` (the caller's bookkeeping, as one chunk of
 * the optimizer's phase), then the layers' after_step passes. Each phase
 * waits for the last one's work (kernels/team.h). Returns 0 to go on, 1 to
 * stop: the same for every thread, as each decision is read from shared
 * results once the phase that made them is complete. */
static int step_phases(step_run *r, void (*book)(void *arg), void *arg)
{
    rw_trainer *t = r->t;
    rw_model *m = t->model;
    workspace *ws = &t->ws;
    int n_layers = m->n_layers;
    for (int l = 0; l < n_layers; l++) team_phase(phase_forward(m, ws, l));
    team_phase(m->loss->ops->forward(m->loss, &r->loss));
    /* Every thread sums the same numbers in the same order. */
    double total = 0;
    for (int b = 0; b < r->n; b++) total += ws->loss[b];
    /* A process of a data-parallel run goes on to the all-reduce, which
     * carries the non-finite loss to every process: all stop together. */
    if (!isfinite(total) && t->shard_count <= 1) {
        ONE_CHUNK(r->diverged = 1; r->bad_loss = total / r->counted; r->bad_step = r->step);
        return 1;
    }
    for (int l = n_layers - 1; l >= 0; l--) team_phase(phase_backward(m, ws, l));
    /* Every gradient is complete: the hooks that want it (an all-reduce)
     * run on one thread while the others wait. */
    if (r->backward_hooks) {
        trainer_step_info info = {r->batch_n, r->step, r->steps_per_epoch, r->total_steps,
                                  r->counted, total};
        ONE_CHUNK({
            for (int h = 0; h < t->n_hooks && r->hook_status == RW_OK; h++) {
                const trainer_hook *hk = &t->hooks[h];
                if (!hk->ops->after_backward) continue;
                r->hook_status = hk->ops->after_backward(hk->state, t, &info);
                if (r->hook_status != RW_OK)
                    snprintf(r->hook_message, sizeof r->hook_message, "%s", rw_last_error());
            }
            /* The thread that ran the hooks shares what they changed. */
            r->batch_loss = info.loss_sum;
            r->batch_counted = info.counted;
        });
        team_phase(1);
        if (r->hook_status != RW_OK) return 1;
        /* The global batch's loss, once a data-parallel hook summed it. */
        total = r->batch_loss;
        if (!isfinite(total)) {
            ONE_CHUNK(r->diverged = 1; r->bad_loss = total / r->batch_counted;
                      r->bad_step = r->step);
            return 1;
        }
    }
    float scale = 1.0f;
    if (t->cfg.clip_norm > 0) {
        int parts = t->n_params * NORM_PARTS;
        TEAM_FOR(i, parts) {
            t->norm_part[i] = grad_square_part(t, i / NORM_PARTS, i % NORM_PARTS);
            team_chunk_done();
        }
        team_phase(parts);
        double sum = 0;
        int bad = -1;
        for (int i = 0; i < parts; i++) {
            sum += t->norm_part[i];
            if (!isfinite(t->norm_part[i]) && bad < 0) bad = i / NORM_PARTS;
        }
        if (bad >= 0) {
            ONE_CHUNK(r->diverged = 2; r->bad_param = bad; r->bad_step = r->step);
            return 1;
        }
        double norm = sqrt(sum);
        if (norm > t->cfg.clip_norm) scale = (float)(t->cfg.clip_norm / norm);
    }
    int64_t pieces = opt_chunks(t);
    TEAM_FOR(c, (int)pieces) {
        opt_chunk(t, c, r->lr, r->step, scale);
        team_chunk_done();
    }
    ONE_CHUNK({
        t->step = r->step;
        r->total = total;
        book(arg);
    });
    team_phase((int)pieces + 1);
    /* State that follows the updated weights (N:M masks). */
    for (int l = 0; l < n_layers; l++)
        if (m->layers[l]->ops->after_step)
            team_phase(m->layers[l]->ops->after_step(m->layers[l], r->step, r->total_steps));
    return 0;
}

/* The epoch's counts live in the trainer, so an epoch can stop after any
 * step and go on later (or in another process, from a checkpoint). */
static void epoch_book(void *arg)
{
    epoch_run *e = arg;
    rw_trainer *t = e->s.t;
    t->epoch_step = e->s.step - e->first_step;
    t->epoch_loss_sum += e->s.total;
    t->epoch_samples += e->s.batch_n;
    if (e->progress) {
        rw_progress p = {t->epoch, e->s.step, t->epoch_samples, e->train->n,
                         t->epoch_loss_sum / t->epoch_samples,
                         t->epoch_seconds + now_seconds() - e->start};
        if (e->progress(&p, e->user)) e->stop = 1;
    }
}

/* Step s of the epoch, run by every thread of the region: the batch, then
 * step_phases. */
static int train_step(epoch_run *e, int64_t s)
{
    rw_trainer *t = e->s.t;
    rw_model *m = t->model;
    workspace *ws = &t->ws;
    int batch = t->cfg.batch;
    int b0 = (int)(s * batch), n_all = e->train->n - b0 < batch ? e->train->n - b0 : batch;
    /* Under a shard this process takes its contiguous slice of the batch. */
    int lo = 0, n = n_all;
    if (t->shard_count > 1) n = trainer_shard_part(n_all, t->shard_rank, t->shard_count, 1, &lo);
    const int *index = t->order + b0 + lo;
    int64_t step = e->first_step + s + 1; /* counted from 1, as AdamW needs */
    float lr = schedule_lr(&t->cfg, step - 1, e->steps, e->total_steps);
    if (e->stop) return 1;

    step_run *r = &e->s;
    int chunks = phase_load_batch(m, ws, dataset_rows(e->train, 0), index, n);
    /* The step's shared fields, written once before any thread reads them. */
    ONE_CHUNK({
        for (int b = 0; b < n; b++) t->labels[b] = e->train->y[index[b]];
        r->loss = (layer_io){.in = {&ws->t[model_logits_tensor(m)]}, .n_in = 1, .bp = ws->bp,
                             .n = n, .labels = t->labels, .loss = ws->loss};
        r->n = r->counted = n;
        r->batch_n = n_all;
        r->step = step;
        r->lr = lr;
    });
    team_phase(chunks + 1);
    if (step_phases(r, epoch_book, e)) {
        if (r->diverged == 1) e->bad_n = n;
        return 1;
    }
    return 0;
}

/* ---- A language model's step --------------------------------------------- */

static void no_book(void *arg) { (void)arg; }

/* The message of a diverged step (r->diverged 1 or 2), for any run. */
static rw_status diverged(const rw_trainer *t, const step_run *r, int bad_n)
{
    const rw_model *m = t->model;
    if (r->diverged == 1) {
        int bad = first_nonfinite_output(m, &t->ws, bad_n);
        if (bad >= 0)
            return rw_fail(RW_ERR_DIVERGED,
                           "training diverged at step %lld: the loss is %g; layer %s is the "
                           "first whose output is not finite",
                           (long long)r->bad_step, r->bad_loss, m->layers[bad]->name);
        return rw_fail(RW_ERR_DIVERGED, "training diverged at step %lld: the loss is %g",
                       (long long)r->bad_step, r->bad_loss);
    }
    return rw_fail(RW_ERR_DIVERGED,
                   "training diverged at step %lld: the gradient of layer %s is not finite",
                   (long long)r->bad_step, m->params[r->bad_param].layer_name);
}

rw_status trainer_lm_step(rw_trainer *t, const int32_t *inputs, const int32_t *targets, int batch,
                          int seq_len, int64_t step, int64_t total_steps, float lr, double *loss)
{
    rw_model *m = t->model;
    workspace *ws = &t->ws;
    int n = batch * seq_len, n_all = n;
    /* Under a shard this process takes its contiguous slice of the sequences. */
    if (t->shard_count > 1 && batch >= 1 && seq_len >= 1) {
        int lo;
        n = trainer_shard_part(n_all, t->shard_rank, t->shard_count, seq_len, &lo);
        inputs += lo;
        targets += lo;
        batch = n / seq_len;
    }
    if (batch < 1 || seq_len < 1 || n > ws->bp)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a batch of %d sequences of %d tokens does not fit "
                       "the trainer's %d columns", batch, seq_len, ws->bp);
    if (m->generation != t->generation)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "the model's layers were replaced since the trainer was made: make a new "
                       "trainer");
    ws->tokens = inputs;
    ws->n = n;
    ws->seq_len = seq_len;
    ws->pos0 = 0;
    step_run r = {.t = t, .n = n, .batch_n = n_all, .step = step, .steps_per_epoch = total_steps,
                  .total_steps = total_steps, .lr = lr};
    r.loss = (layer_io){.in = {&ws->t[model_logits_tensor(m)]}, .n_in = 1, .bp = ws->bp, .n = n,
                        .targets = targets, .loss = ws->loss};
    for (int j = 0; j < n; j++) r.counted += targets[j] >= 0;
    if (r.counted == 0) r.counted = 1;
    int step_hooks = 0;
    for (int h = 0; h < t->n_hooks; h++) {
        step_hooks += t->hooks[h].ops->after_step != NULL;
        r.backward_hooks += t->hooks[h].ops->after_backward != NULL;
    }
    team_sync sync;
    team_sync_init(&sync);
#pragma omp parallel if (network_worth_threading(m, ws->bp))
    {
        team_begin(&sync);
        step_phases(&r, no_book, NULL);
        team_end();
    }
    if (r.diverged) return diverged(t, &r, n);
    if (r.hook_status != RW_OK) return rw_fail(r.hook_status, "%s", r.hook_message);
    if (loss) *loss = r.total / (r.backward_hooks ? r.batch_counted : r.counted);
    trainer_step_info info = {n_all, step, total_steps, total_steps, r.counted, r.total};
    for (int h = 0; h < t->n_hooks && step_hooks; h++) {
        const trainer_hook *hk = &t->hooks[h];
        if (!hk->ops->after_step) continue;
        rw_status st = hk->ops->after_step(hk->state, t, &info);
        if (st != RW_OK) return st;
    }
    return RW_OK;
}

/* The after_step hooks, after step s of the epoch (outside any region). */
static rw_status run_step_hooks(rw_trainer *t, const epoch_run *e, int64_t s)
{
    int b0 = (int)(s * t->cfg.batch);
    int count = e->train->n - b0 < t->cfg.batch ? e->train->n - b0 : t->cfg.batch;
    trainer_step_info info = {count, t->step, e->steps, e->total_steps, 0, 0.0};
    for (int h = 0; h < t->n_hooks; h++) {
        const trainer_hook *hk = &t->hooks[h];
        if (!hk->ops->after_step) continue;
        rw_status st = hk->ops->after_step(hk->state, t, &info);
        if (st != RW_OK) return st;
    }
    return RW_OK;
}

/* REWIRE_THREAD_TUNING=off keeps every step on all the threads (for
 * measuring how they scale); otherwise the tuner picks one or all. */
static int thread_tuning_wanted(void)
{
    const char *v = getenv("REWIRE_THREAD_TUNING");
    return !(v && (strcmp(v, "off") == 0 || strcmp(v, "0") == 0));
}

rw_status rw_trainer_epoch(rw_trainer *t, const rw_dataset *train, rw_progress_fn progress,
                           void *user, rw_epoch_stats *stats)
{
    rw_model *m = t->model;
    if (model_reads_tokens(m))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the model is a language model (it reads tokens, "
                       "not features): train it with rw_run_train_text");
    if (train->features != m->inputs)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the data has %d features but the model takes %d",
                       train->features, m->inputs);
    if (train->classes > rw_model_classes(m))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the data has %d classes but the model has %d",
                       train->classes, rw_model_classes(m));
    if (m->generation != t->generation)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "the model's layers were replaced since the trainer was made (pruned, "
                       "converted to N:M, or N:M training ended): make a new trainer");
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
    epoch_run e = {.s = {.t = t, .lr = t->cfg.lr}, .train = train, .progress = progress,
                   .user = user, .steps = (n + batch - 1) / batch,
                   .first_step = t->step - t->epoch_step};
    e.total_steps = e.steps * t->cfg.epochs;
    e.s.steps_per_epoch = e.steps;
    e.s.total_steps = e.total_steps;
    int step_hooks = 0;
    for (int h = 0; h < t->n_hooks; h++) {
        step_hooks += t->hooks[h].ops->after_step != NULL;
        e.s.backward_hooks += t->hooks[h].ops->after_backward != NULL;
    }
    e.start = now_seconds();
    int max = omp_get_max_threads(), worth = network_worth_threading(m, t->ws.bp);
    if (t->tuner.max != max) thread_tuner_init(&t->tuner, max, thread_tuning_wanted());
    team_sync sync;
    /* The steps run in segments, each on the threads the tuner picks (one
     * or all of them). Without step hooks a segment is one parallel
     * region: the threads stay in it from step to step, meeting only at
     * the team barriers. It starts where the epoch stopped (step 0 for a
     * new epoch). */
    for (int64_t s = t->epoch_step; s < e.steps;) {
        int threads = thread_tuner_threads(&t->tuner);
        int64_t end = s + TUNER_SEGMENT_STEPS < e.steps ? s + TUNER_SEGMENT_STEPS : e.steps;
        double t0 = now_seconds();
        if (!step_hooks) {
            team_sync_init(&sync);
#pragma omp parallel num_threads(threads) if (worth && threads > 1)
            {
                team_begin(&sync);
                for (int64_t k = s; k < end; k++)
                    if (train_step(&e, k)) break;
                team_end();
            }
        } else {
            /* Dynamic sparse training looks at every step (windows,
             * updates) and changes the arrays the step uses, so hooks
             * between steps run outside the parallel region, as one
             * thread. */
            for (int64_t k = s; k < end; k++) {
                team_sync_init(&sync);
#pragma omp parallel num_threads(threads) if (worth && threads > 1)
                {
                    team_begin(&sync);
                    train_step(&e, k);
                    team_end();
                }
                /* A step the progress function stopped after still gets
                 * its update, so stopping never changes the run. */
                if (e.s.diverged || e.s.hook_status != RW_OK || t->epoch_step != k + 1) break;
                rw_status st = run_step_hooks(t, &e, k);
                if (st != RW_OK) {
                    e.s.hook_status = st;
                    snprintf(e.s.hook_message, sizeof e.s.hook_message, "%s", rw_last_error());
                    break;
                }
                if (e.stop) break;
            }
        }
        int64_t done = t->epoch_step - s;
        thread_tuner_record(&t->tuner, threads, done, now_seconds() - t0);
        if (t->epoch_step != end || e.stop || e.s.diverged || e.s.hook_status != RW_OK) break;
        s = end;
    }
    t->epoch_seconds += now_seconds() - e.start;
    if (e.s.diverged) return diverged(t, &e.s, e.bad_n);
    if (e.s.hook_status != RW_OK) return rw_fail(e.s.hook_status, "%s", e.s.hook_message);
    int finished = t->epoch_step == e.steps;
    if (stats) {
        stats->loss = t->epoch_samples ? t->epoch_loss_sum / t->epoch_samples : 0;
        stats->seconds = t->epoch_seconds;
        stats->samples_per_second =
            t->epoch_seconds > 0 ? t->epoch_samples / t->epoch_seconds : 0;
        stats->step = t->step;
        stats->lr = e.s.lr;
        stats->finished = finished;
    }
    if (finished) {
        t->epoch++;
        t->epoch_step = t->epoch_samples = 0;
        t->epoch_loss_sum = t->epoch_seconds = 0;
    }
    return RW_OK;
}

rw_status trainer_check_data(rw_trainer *t, const rw_dataset *train)
{
    if (t->data_seen == train) return RW_OK;
    /* A fingerprint from a checkpoint made before version 2 is compared in
     * its own version, for as long as the run goes on. */
    int version = t->data_fingerprint ? t->data_fingerprint_version : DATASET_FINGERPRINT_VERSION;
    uint64_t fp = dataset_fingerprint(train, version);
    /* A loaded checkpoint, or an epoch in progress, needs its own data. */
    int must_match = t->data_must_match || (t->epoch_step > 0 && t->data_fingerprint);
    if (must_match && (fp != t->data_fingerprint || train->n != t->data_samples))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "the training set (%d samples, fingerprint %016" PRIx64 ") is not the one "
                       "the %s was made on (%lld samples, fingerprint %016" PRIx64 "): "
                       "resume with the same data, limits, validation split and seed",
                       train->n, fp, t->data_must_match ? "checkpoint" : "epoch in progress",
                       (long long)t->data_samples, t->data_fingerprint);
    t->data_must_match = 0;
    t->data_seen = train;
    t->data_samples = train->n;
    t->data_fingerprint = fp;
    t->data_fingerprint_version = version;
    return RW_OK;
}

void rw_trainer_position(const rw_trainer *t, rw_progress *out)
{
    memset(out, 0, sizeof *out);
    out->epoch = t->epoch;
    out->step = t->step;
    out->samples = t->epoch_samples;
    out->loss = t->epoch_samples ? t->epoch_loss_sum / (double)t->epoch_samples : 0.0;
}

rw_train_config rw_trainer_config(const rw_trainer *t) { return t->cfg; }

param_batch trainer_param_batch(const rw_trainer *t, int q, int n)
{
    const param *p = &t->model->params[q];
    if (p->x_tensor < 0) return workspace_param_batch(&t->ws, t->model, q, n);
    param_batch b = {trainer_batch_data(t, p->x_tensor), trainer_batch_grad(t, p->y_tensor),
                     trainer_batch_data(t, p->y_tensor), trainer_batch_bp(t), n};
    return b;
}
