/* Training from dense to sparse: the budget of phases, the shared phase
 * and pruning-round steps, and gradual pruning (GMP, ISS-P) as a preset of
 * the dynamic-sparse-training machinery (dst.c) without regrowth. */
#include "sparsity/train_prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/dataset.h"
#include "nn/linear.h"
#include "sparsity/prune.h"
#include "sparsity/topology_stats.h"

rw_prune_schedule rw_prune_schedule_preset(rw_prune_method method, double sparsity)
{
    rw_prune_schedule s;
    memset(&s, 0, sizeof s);
    s.method = method;
    s.sparsity = sparsity;
    s.distribution = RW_DIST_ERK;
    s.scope = RW_PRUNE_PER_LAYER;
    s.prune_start = 0.1;
    s.prune_end = 0.6;
    s.update_every = 100;
    s.shrink = method == RW_PRUNE_ISSP ? 0.5 : 0;
    s.rounds = method == RW_PRUNE_IMP ? 4 : method == RW_PRUNE_SOUP ? 3 : 0;
    s.rewind_step = -1;
    s.soup_size = method == RW_PRUNE_SOUP ? 3 : 0;
    return s;
}

static int is_rounds(const rw_prune_schedule *s)
{
    return s->method == RW_PRUNE_IMP || s->method == RW_PRUNE_SOUP;
}

rw_status rw_prune_phase_epochs(const rw_train_config *train, const rw_prune_schedule *s,
                                int *first_epochs, int *phase_epochs)
{
    *first_epochs = train->epochs;
    *phase_epochs = 0;
    if (!is_rounds(s)) return RW_OK;
    if (s->rounds < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%d pruning rounds: at least 1 is needed",
                       s->rounds);
    if (s->method == RW_PRUNE_SOUP && s->soup_size < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a soup of %d models: at least 1 is needed",
                       s->soup_size);
    int64_t phases =
        1 + (int64_t)s->rounds * (s->method == RW_PRUNE_SOUP ? s->soup_size : 1);
    if (phases > train->epochs)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "%d epochs cannot be split into %lld phases of at least one epoch (one "
                       "first training and one per retrain%s)",
                       train->epochs, (long long)phases,
                       s->method == RW_PRUNE_SOUP ? ", each soup member counted" : "");
    *phase_epochs = (int)(train->epochs / phases);
    *first_epochs = train->epochs - (int)(phases - 1) * *phase_epochs;
    return RW_OK;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double prune_model_density(const rw_model *m)
{
    int64_t nnz = 0, all = 0;
    for (int q = 0; q < m->n_params; q++)
        if (m->params[q].is_weight) {
            nnz += param_count(&m->params[q]);
            all += param_dense_count(&m->params[q]);
        }
    return all ? (double)nnz / (double)all : 0;
}

double prune_round_density(double d0, double d_final, int r, int n)
{
    if (r >= n) return d_final;
    return d0 * pow(d_final / d0, (double)r / (double)n);
}

rw_status prune_model_clone(const rw_model *m, rw_model **out)
{
    *out = NULL;
    rw_model *c = model_alloc(m->n_layers);
    if (!c) return rw_fail(RW_ERR_NO_MEMORY, "out of memory copying a model");
    c->inputs = m->inputs;
    c->leaky_slope = m->leaky_slope;
    rw_status st = input_stage_copy(&c->input, &m->input);
    for (int l = 0; l < m->n_layers && st == RW_OK; l++) {
        const layer *src = m->layers[l];
        const param *p = model_layer_params(m, l);
        const linear *lin = linear_of_const(src);
        if (!lin) {
            st = rw_fail(RW_ERR_INVALID_ARGUMENT,
                         "layer %s is not a linear layer: model soups copy linear layers only",
                         src->name);
            break;
        }
        float *bias = lin->has_bias ? rw_alloc(sizeof(float) * (size_t)src->out) : NULL;
        csr_matrix w;
        memset(&w, 0, sizeof w);
        st = bias || !lin->has_bias ? param_to_csr(&p[0], &w)
                                    : rw_fail(RW_ERR_NO_MEMORY, "out of memory copying a model");
        if (st != RW_OK) {
            rw_free(bias);
            break;
        }
        if (bias) memcpy(bias, param_values(&p[1]), sizeof(float) * (size_t)src->out);
        csr_build_transpose(&w);
        c->layers[l] = linear_csr_new(src->name, src->in, src->out, src->act, src->slope, l, &w, bias);
        if (!c->layers[l]) st = RW_ERR_NO_MEMORY;
    }
    if (st == RW_OK) st = model_gather_params(c);
    if (st != RW_OK) {
        rw_model_free(c);
        return st;
    }
    *out = c;
    return RW_OK;
}

/* ---- A phase of training ------------------------------------------------ */

typedef struct {
    prune_run *r;
    int64_t stop_at; /* stop the epoch after this step (IMP's snapshot), or -1 */
} phase_progress;

rw_status prune_phase(prune_run *r, rw_model *m, int phase, int member, int epochs,
                      uint64_t seed, phase_setup_fn setup, void *arg)
{
    rw_train_config tc = *r->train;
    tc.epochs = epochs;
    tc.seed = seed;
    rw_trainer *t = NULL;
    rw_status st = rw_trainer_create(m, &tc, &t);
    if (st == RW_OK && setup) st = setup(t, arg);
    while (st == RW_OK && t->epoch < epochs && !r->stopped) {
        int64_t before = t->step;
        rw_epoch_stats s;
        st = rw_trainer_epoch(t, r->data, NULL, NULL, &s);
        if (st != RW_OK) break;
        r->steps += t->step - before;
        r->epochs_done++;
        rw_prune_epoch e = {phase, member, t->epoch, epochs, r->steps, &s, m};
        if (r->on_epoch && r->on_epoch(&e, r->user)) r->stopped = 1;
    }
    rw_trainer_free(t);
    return st;
}

/* ---- A pruning round (IMP, soup) --------------------------------------- */

rw_status prune_round(prune_run *r, rw_model *m, int round, double density)
{
    double t0 = now_seconds();
    int n = model_weights(m, NULL);
    int *weights = calloc((size_t)n + 1, sizeof(int));
    int64_t *before = calloc((size_t)n, sizeof(int64_t));
    int64_t *dropped = calloc((size_t)n, sizeof(int64_t));
    int64_t *grown = calloc((size_t)n, sizeof(int64_t));
    int64_t *nonzeros = calloc((size_t)n, sizeof(int64_t));
    int64_t *dead = calloc((size_t)n, sizeof(int64_t));
    double *dens = calloc((size_t)n, sizeof(double));
    rw_status st = weights && before && dropped && grown && nonzeros && dead && dens
                       ? RW_OK
                       : rw_fail(RW_ERR_NO_MEMORY, "out of memory for a pruning round");
    int64_t total_before = 0, total_after = 0;
    if (st == RW_OK) model_weights(m, weights);
    for (int l = 0; l < n && st == RW_OK; l++)
        total_before += before[l] = param_count(&m->params[weights[l]]);
    if (st == RW_OK) {
        rw_prune_config pc = {1.0 - density, RW_PRUNE_MAGNITUDE, r->sched->scope, NULL, 0};
        st = rw_model_prune(m, &pc);
    }
    if (st == RW_OK) {
        for (int l = 0; l < n; l++) {
            const param *p = &m->params[weights[l]];
            nonzeros[l] = param_count(p);
            dropped[l] = before[l] - nonzeros[l];
            dens[l] = (double)nonzeros[l] / ((double)p->cols * p->rows);
            total_after += nonzeros[l];
        }
        rw_topology_stats s;
        memset(&s, 0, sizeof s);
        topology_dead_neurons(m, weights, n, dead, &s.unconnected_inputs);
        double seconds = now_seconds() - t0;
        r->prune_seconds += seconds;
        s.update = round;
        s.step = r->steps;
        s.epoch = r->epochs_done > 0 ? r->epochs_done - 1 : 0;
        s.n_layers = n;
        s.dropped = dropped;
        s.grown = grown;
        s.nonzeros = nonzeros;
        s.density = dens;
        s.drop_fraction = total_before ? 1.0 - (double)total_after / (double)total_before : 0;
        /* Pruning only removes: every position ever stored was there at the start. */
        s.itop_rate = r->all ? (double)r->start_nnz / (double)r->all : 0;
        s.sad = total_before - total_after;
        s.sad_rate = s.drop_fraction;
        s.dead_neurons = dead;
        s.seconds = seconds;
        s.total_seconds = r->prune_seconds;
        for (int l = 0; l < n; l++)
            s.topology_hash = s.topology_hash * 0x100000001b3ULL ^ param_hash(&m->params[weights[l]], 0);
        if (r->on_prune) r->on_prune(&s, r->user);
    }
    free(weights);
    free(before);
    free(dropped);
    free(grown);
    free(nonzeros);
    free(dead);
    free(dens);
    return st;
}

/* ---- GMP and ISS-P ------------------------------------------------------ */

static rw_status check_schedule(const rw_prune_schedule *s);

/* Gradual magnitude pruning, "To prune, or not to prune: exploring the
 * efficacy of pruning for model compression" (Zhu & Gupta 2017): GraNet's
 * cubic schedule (dst.c) without regrowth; with a shrink factor, ISS-P's
 * soft shrinkage ("Iterative Soft Shrinkage Learning for Efficient Image
 * Super-Resolution", Wang et al. 2023). */
rw_status rw_prune_schedule_dst_config(const rw_prune_schedule *s, rw_dst_config *out)
{
    rw_status st = check_schedule(s);
    if (st != RW_OK) return st;
    if (is_rounds(s))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "%s is rounds of pruning and retraining, not one training with a "
                       "dynamic-sparse-training configuration",
                       s->method == RW_PRUNE_IMP ? "IMP" : "a sparse model soup");
    rw_dst_config dc = rw_dst_config_preset(RW_DST_STATIC);
    dc.drop = RW_DROP_MAGNITUDE;
    dc.drop_fraction = 0;
    dc.update_every = s->update_every;
    dc.final_sparsity = s->sparsity;
    dc.final_distribution = s->distribution;
    dc.prune_start = s->prune_start;
    dc.prune_end = s->prune_end;
    dc.shrink = s->method == RW_PRUNE_ISSP ? s->shrink : 0;
    *out = dc;
    return RW_OK;
}

static rw_status gradual_run(prune_run *r, rw_model *m)
{
    rw_dst_config dc;
    rw_status st = rw_prune_schedule_dst_config(r->sched, &dc);
    if (st != RW_OK) return st;
    rw_trainer *t = NULL;
    st = rw_trainer_create(m, r->train, &t);
    if (st == RW_OK) st = rw_trainer_set_dst(t, &dc);
    if (st == RW_OK) rw_trainer_set_topology_callback(t, r->on_prune, r->user);
    while (st == RW_OK && t->epoch < r->train->epochs && !r->stopped) {
        int64_t before = t->step;
        rw_epoch_stats es;
        st = rw_trainer_epoch(t, r->data, NULL, NULL, &es);
        if (st != RW_OK) break;
        r->steps += t->step - before;
        r->epochs_done++;
        rw_prune_epoch e = {0, 0, t->epoch, r->train->epochs, r->steps, &es, m};
        if (r->on_epoch && r->on_epoch(&e, r->user)) r->stopped = 1;
    }
    rw_trainer_free(t);
    return st;
}

/* ---- The entry point ----------------------------------------------------- */

static rw_status check_schedule(const rw_prune_schedule *s)
{
    if (s->method < RW_PRUNE_GMP || s->method > RW_PRUNE_ISSP)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "unknown pruning method %d", (int)s->method);
    if (!(s->sparsity > 0 && s->sparsity < 1))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "target sparsity %g is outside (0, 1)",
                       s->sparsity);
    if (s->method == RW_PRUNE_ISSP && !(s->shrink > 0 && s->shrink < 1))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "ISS-P shrink factor %g is outside (0, 1)",
                       s->shrink);
    if (is_rounds(s) && s->scope != RW_PRUNE_PER_LAYER && s->scope != RW_PRUNE_GLOBAL)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "unknown pruning scope %d", (int)s->scope);
    return RW_OK;
}

rw_status rw_train_prune_prepare(rw_model *m, const rw_prune_schedule *s)
{
    rw_status st = check_schedule(s);
    if (st != RW_OK) return st;
    if (1.0 - prune_model_density(m) >= s->sparsity)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "the model is already at sparsity %.4f, not below the target %g",
                       1.0 - prune_model_density(m), s->sparsity);
    /* Every layer becomes CSR (a dense one at density 1): only CSR layers
     * can lose weights, and their results do not depend on the threads. */
    int all_csr = 1;
    for (int q = 0; q < m->n_params; q++)
        if (m->params[q].is_weight) all_csr &= param_is_sparse(&m->params[q]);
    if (!all_csr) {
        rw_prune_config keep_all = {0.0, RW_PRUNE_MAGNITUDE, RW_PRUNE_PER_LAYER, NULL, 0};
        if ((st = rw_model_prune(m, &keep_all)) != RW_OK) return st;
    }
    return RW_OK;
}

rw_status rw_train_prune(rw_model *m, const rw_train_config *train, const rw_prune_schedule *s,
                         const rw_dataset *data, rw_prune_epoch_fn on_epoch,
                         rw_topology_fn on_prune, void *user)
{
    rw_status st = check_schedule(s);
    if (st != RW_OK) return st;
    prune_run r;
    memset(&r, 0, sizeof r);
    r.train = train;
    r.sched = s;
    r.data = data;
    r.on_epoch = on_epoch;
    r.on_prune = on_prune;
    r.user = user;
    if ((st = rw_prune_phase_epochs(train, s, &r.first_epochs, &r.phase_epochs)) != RW_OK)
        return st;
    if ((st = rw_train_prune_prepare(m, s)) != RW_OK) return st;
    for (int q = 0; q < m->n_params; q++)
        if (m->params[q].is_weight) {
            r.start_nnz += param_count(&m->params[q]);
            r.all += param_dense_count(&m->params[q]);
        }
    switch (s->method) {
    case RW_PRUNE_IMP: return imp_run(&r, m);
    case RW_PRUNE_SOUP: return soup_run(&r, m);
    default: return gradual_run(&r, m);
    }
}
