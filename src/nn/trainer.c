#include "nn/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "nn/checkpoint.h"
#include "nn/loss.h"
#include "nn/optimizer.h"

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
    int ok = t->wm1 && t->wm2 && t->bm1 && t->bm2;
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

/* One optimizer step on the batch already in ws.a[0] with labels y. */
static rw_status train_step(rw_trainer *t, const uint8_t *y, int n, float lr,
                            int64_t steps_per_epoch, int64_t total_steps, double *loss)
{
    rw_model *m = t->model;
    workspace *ws = &t->ws;
    network_forward(m, ws);
    int classes = m->layers[m->n_layers - 1].out;
    *loss = softmax_xent(ws->a[m->n_layers], y, classes, n, ws->bp, ws->g[m->n_layers], NULL) / n;
    if (!isfinite(*loss)) {
        int bad = first_nonfinite_output(m, ws, n);
        if (bad >= 0)
            return rw_fail(RW_ERR_DIVERGED,
                           "training diverged at step %lld: the loss is %g; layer fc%d is the "
                           "first whose output is not finite",
                           (long long)t->step + 1, *loss, bad + 1);
        return rw_fail(RW_ERR_DIVERGED, "training diverged at step %lld: the loss is %g",
                       (long long)t->step + 1, *loss);
    }
    network_backward(m, ws);

    /* The global norm costs a pass over every gradient, so it is computed
     * only to clip; a non-finite gradient shows up as a non-finite loss on
     * the next step. */
    float scale = 1.0f;
    if (t->cfg.clip_norm > 0) {
        int bad = -1;
        double norm = trainer_grad_norm(t, &bad);
        if (bad >= 0)
            return rw_fail(RW_ERR_DIVERGED,
                           "training diverged at step %lld: the gradient of layer fc%d is not "
                           "finite",
                           (long long)t->step + 1, bad + 1);
        if (norm > t->cfg.clip_norm) scale = (float)(t->cfg.clip_norm / norm);
    }

    t->step++;
    for (int l = 0; l < m->n_layers; l++) {
        layer *ly = &m->layers[l];
        int64_t wn = layer_weight_count(ly);
        if (scale != 1.0f) {
            for (int64_t k = 0; k < wn; k++) ws->gw[l][k] *= scale;
            for (int o = 0; o < ly->out; o++) ws->gb[l][o] *= scale;
        }
        optimizer_step(&t->cfg, lr, t->step, layer_weights(ly), ws->gw[l], t->wm1[l], t->wm2[l],
                       wn);
        optimizer_step(&t->cfg, lr, t->step, ly->bias, ws->gb[l], t->bm1[l], t->bm2[l], ly->out);
    }
    return t->dst ? topology_step(t, n, steps_per_epoch, total_steps) : RW_OK;
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
    int64_t steps_per_epoch = (n + batch - 1) / batch;
    int64_t total_steps = steps_per_epoch * t->cfg.epochs;
    uint8_t *labels = malloc((size_t)batch);
    if (!labels) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for labels");

    /* Starts where the epoch stopped (0 for a new epoch). */
    double start = now_seconds();
    float lr = t->cfg.lr;
    rw_status st = RW_OK;
    for (int64_t s = t->epoch_step; s < steps_per_epoch; s++) {
        int b0 = (int)(s * batch), count = n - b0 < batch ? n - b0 : batch;
        for (int b = 0; b < count; b++) labels[b] = train->y[t->order[b0 + b]];
        network_load_batch(m, &t->ws, train->x, train->features, t->order + b0, count);
        lr = schedule_lr(&t->cfg, t->step, steps_per_epoch, total_steps);
        double loss;
        st = train_step(t, labels, count, lr, steps_per_epoch, total_steps, &loss);
        if (st != RW_OK) break;
        t->epoch_step = s + 1;
        t->epoch_loss_sum += loss * count;
        t->epoch_samples += count;
        if (progress) {
            rw_progress p = {t->epoch, t->step, t->epoch_samples, n,
                             t->epoch_loss_sum / t->epoch_samples,
                             t->epoch_seconds + now_seconds() - start};
            if (progress(&p, user)) break;
        }
    }
    free(labels);
    t->epoch_seconds += now_seconds() - start;
    if (st != RW_OK) return st;
    int finished = t->epoch_step == steps_per_epoch;
    if (stats) {
        stats->loss = t->epoch_samples ? t->epoch_loss_sum / t->epoch_samples : 0;
        stats->seconds = t->epoch_seconds;
        stats->samples_per_second = t->epoch_seconds > 0 ? t->epoch_samples / t->epoch_seconds : 0;
        stats->step = t->step;
        stats->lr = lr;
        stats->finished = finished;
    }
    if (finished) {
        t->epoch++;
        t->epoch_step = t->epoch_samples = 0;
        t->epoch_loss_sum = t->epoch_seconds = 0;
    }
    return RW_OK;
}
