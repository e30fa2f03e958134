/* The run loop (rewire.h, "Runs"): epochs, evaluation, the metrics log,
 * checkpoints, and the runs from dense to sparse, as one library call. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "io/metrics.h"
#include "nn/model.h"
#include "nn/trainer.h"
#include "rewire.h"
#include "run/dist.h"
#include "run/run_internal.h"
#include "sparsity/dst.h"


double run_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

rw_run_config rw_run_config_default(void)
{
    rw_run_config c;
    memset(&c, 0, sizeof c);
    c.train = rw_train_config_default();
    return c;
}

static char *copy_string(const char *s) { return s ? strdup(s) : NULL; }

void rw_run_free(rw_run *r)
{
    if (!r) return;
    if (r->log) fclose(r->log);
    rw_trainer_free(r->t);
    free(r->log_path);
    free(r->checkpoint_path);
    free(r->flags);
    free(r->out_path);
    free(r->resume_path);
    free(r);
}

rw_trainer *rw_run_trainer(rw_run *r) { return r->t; }

void rw_run_stop(rw_run *r)
{
    if (r) atomic_store(&r->stop_asked, 1);
}

int run_stop_asked(rw_run *r) { return atomic_exchange(&r->stop_asked, 0); }

/* rw_topology_fn on the trainer (and for pruning rounds): counts, logs,
 * and hands the update on. */
void run_on_update(const rw_topology_stats *s, void *user)
{
    rw_run *r = user;
    r->updates = s->update;
    r->total_update_seconds = s->total_seconds;
    r->itop_rate = s->itop_rate;
    if (r->log) metrics_topology_line(r->log, s);
    if (r->on_topology) r->on_topology(s, r->user);
}

/* Copies what a config says the run does with its files and callbacks. */
static rw_status take_config(rw_run *r, const rw_run_config *c)
{
    free(r->log_path);
    free(r->checkpoint_path);
    free(r->flags);
    free(r->out_path);
    r->log_path = copy_string(c->log);
    r->checkpoint_path = copy_string(c->checkpoint);
    r->flags = copy_string(c->checkpoint_flags);
    r->out_path = copy_string(c->out);
    r->checkpoint_every = c->checkpoint_every;
    r->progress = c->progress;
    r->on_epoch = c->on_epoch;
    r->on_topology = c->on_topology;
    r->on_lm_report = c->on_lm_report;
    r->user = c->user;
    if ((c->log && !r->log_path) || (c->checkpoint && !r->checkpoint_path) ||
        (c->checkpoint_flags && !r->flags) || (c->out && !r->out_path))
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory configuring a run");
    if (r->checkpoint_every < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "checkpoint_every %lld must be >= 0",
                       (long long)r->checkpoint_every);
    if (r->rounds && r->checkpoint_path)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "IMP and model soups take no checkpoints (they rewind and retrain in "
                       "phases); GMP and ISS-P do");
    return RW_OK;
}

/* A new run's log starts afresh; a resumed one is cut back to what the
 * checkpoint had seen and appended to. */
rw_status run_open_log(rw_run *r, int resumed)
{
    /* Under mpirun, process 0 alone writes the run's files. */
    if (!r->log_path || !dist_writes_files()) return RW_OK;
    FILE *log = fopen(r->log_path, resumed ? "a" : "w");
    if (log && resumed && ftell(log) > r->log_bytes && ftruncate(fileno(log), r->log_bytes) != 0) {
        fclose(log);
        log = NULL;
    }
    if (!log)
        return rw_fail(RW_ERR_IO, "cannot open log file %s for writing: %s", r->log_path,
                       strerror(errno));
    fseek(log, 0, SEEK_END);
    r->log = log;
    return RW_OK;
}

rw_status rw_run_new(rw_model *model, const rw_run_config *c, rw_run **out)
{
    *out = NULL;
    rw_run *r = calloc(1, sizeof *r);
    if (!r) return rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a run");
    r->model = model;
    r->train = c->train;
    r->saved_step = -1;
    if (c->prune) {
        r->prune = *c->prune;
        r->gradual = c->prune->method == RW_PRUNE_GMP || c->prune->method == RW_PRUNE_ISSP;
        r->rounds = !r->gradual;
    }
    rw_status st = take_config(r, c);
    /* A language model's trainer takes every token of its sequences as a
     * column of its batch. */
    rw_train_config tc = r->train;
    if (st == RW_OK && c->lm) {
        r->lm = 1;
        r->lm_cfg = *c->lm;
        r->lm_batch = c->train.batch;
        st = lm_check_schedule(c->lm, c->train.batch);
        if (st == RW_OK && (r->rounds || c->nm))
            st = rw_fail(RW_ERR_INVALID_ARGUMENT,
                         "a language model's run takes dynamic sparse training, GMP or ISS-P; not "
                         "IMP, soups or N:M training");
        tc.batch = c->train.batch * c->lm->context;
        tc.epochs = 1;
    }
    /* GMP and ISS-P are one training with a DST configuration: this loop
     * runs them, checkpoints included. */
    if (st == RW_OK && r->gradual) {
        st = rw_prune_schedule_dst_config(&r->prune, &r->dst);
        r->dst_active = 1;
    } else if (st == RW_OK && c->dst) {
        r->dst = *c->dst;
        r->dst_active = 1;
    }
    /* SNFS, MEST and Hebbian update once per epoch (update_every 0); a
     * language model's run has no epochs, and would never update. */
    if (st == RW_OK && r->lm && r->dst_active && r->dst.update_every == 0)
        r->dst.update_every = RW_LM_UPDATE_EVERY;
    if (st == RW_OK && c->nm) {
        r->nm = *c->nm;
        r->nm_active = 1;
        st = rw_model_nm_train_begin(model, c->nm);
    }
    if (st == RW_OK && r->gradual) st = rw_train_prune_prepare(model, &r->prune);
    if (st == RW_OK && !r->rounds) st = rw_trainer_create(model, &tc, &r->t);
    if (st == RW_OK && r->dst_active) {
        st = rw_trainer_set_dst(r->t, &r->dst);
        rw_trainer_set_topology_callback(r->t, run_on_update, r);
    }
    if (st == RW_OK && r->rounds && rw_dist_size() > 1)
        st = rw_fail(RW_ERR_INVALID_ARGUMENT,
                     "IMP and model soups do not train over several processes (they make a "
                     "trainer per phase); run them as one process, or use GMP or ISS-P");
    for (int l = 0; l < model->n_layers && st == RW_OK && rw_dist_size() > 1; l++) {
        const layer *ly = model->layers[l];
        const char *what = ly->ops->single_process_only
                               ? ly->ops->single_process_only(ly, r->dst_active)
                               : NULL;
        if (what)
            st = rw_fail(RW_ERR_INVALID_ARGUMENT,
                         "layer %s: %s does not train over several processes yet; run it as "
                         "one process, or without it", ly->name, what);
    }
    if (st == RW_OK && r->t) st = dist_attach(r->t, r->lm ? r->lm_cfg.context : 1);
    if (st == RW_OK) st = run_open_log(r, 0);
    r->configured = 1;
    if (st != RW_OK) {
        rw_run_free(r);
        return st;
    }
    *out = r;
    return RW_OK;
}

/* The note of a checkpoint: {"flags": the caller's object, "log_bytes":
 * the log's length}. */
static char *make_note(const rw_run *r, long log_bytes)
{
    json_error_t err;
    json_t *flags = r->flags ? json_loads(r->flags, 0, &err) : json_object();
    if (!flags) return NULL;
    json_t *o = json_pack("{s:o, s:I}", "flags", flags, "log_bytes", (json_int_t)log_bytes);
    json_t *lm = o && r->lm ? lm_note(r) : NULL;
    if (o && r->lm && (!lm || json_object_set_new(o, "lm", lm) != 0)) json_decref(o), o = NULL;
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    return s;
}

static rw_status parse_note(rw_run *r, const char *note, const char *path, char **flags)
{
    if (flags) *flags = NULL;
    if (!note) return RW_OK; /* a checkpoint saved by other code: no flags, no log */
    json_error_t err;
    /* The flags take a few KB; a longer note is not a run's. */
    json_t *o = strlen(note) <= 1 << 20 ? json_loads(note, JSON_REJECT_DUPLICATES, &err) : NULL;
    json_t *f = NULL;
    json_int_t bytes = 0;
    if (!o || json_unpack(o, "{s:o, s:I}", "flags", &f, "log_bytes", &bytes) != 0 ||
        !json_is_object(f) || bytes < 0) {
        /* Saved by rw_trainer_save_checkpoint with a note of its own: the
         * run has no flags to give back and no log to cut. */
        json_decref(o);
        return RW_OK;
    }
    r->log_bytes = (long)bytes;
    json_t *lm = json_object_get(o, "lm");
    if (lm) {
        rw_status st = lm_parse_note(r, lm, path);
        if (st != RW_OK) {
            json_decref(o);
            return st;
        }
    }
    if (flags) *flags = json_dumps(f, JSON_COMPACT | JSON_REAL_PRECISION(17));
    r->flags = json_dumps(f, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    if ((flags && !*flags) || !r->flags)
        return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory reading the note", path);
    return RW_OK;
}

rw_status rw_run_resume(const char *checkpoint, int64_t max_memory, rw_model **model,
                        rw_run **out, char **flags)
{
    *out = NULL;
    *model = NULL;
    if (flags) *flags = NULL;
    rw_run *r = calloc(1, sizeof *r);
    if (!r) return rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a run");
    char *note = NULL;
    rw_status st = rw_trainer_load_checkpoint(checkpoint, max_memory, &r->model, &r->t, &note);
    if (st == RW_OK) st = parse_note(r, note, checkpoint, flags);
    free(note);
    if (st == RW_OK && !(r->resume_path = strdup(checkpoint)))
        st = rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a run");
    if (st != RW_OK) {
        if (flags) free(*flags), *flags = NULL;
        rw_model *m = r->model;
        rw_run_free(r);
        rw_model_free(m);
        return st;
    }
    r->train = rw_trainer_config(r->t);
    rw_progress pos;
    rw_trainer_position(r->t, &pos);
    r->saved_step = pos.step;
    rw_dst_totals totals;
    if (rw_trainer_dst(r->t, &r->dst, &totals)) {
        r->dst_active = 1;
        r->gradual = r->dst.final_sparsity > 0 && r->dst.drop_fraction == 0;
        r->updates = totals.updates;
        r->total_update_seconds = r->epoch_mark = totals.total_seconds;
        r->itop_rate = totals.itop_rate;
        rw_trainer_set_topology_callback(r->t, run_on_update, r);
    }
    r->nm_active = rw_model_nm_train_config(r->model, &r->nm);
    /* Any number of processes resumes any checkpoint: the state is the
     * same on every process, and the batch is split anew. */
    st = dist_attach(r->t, r->lm ? r->lm_cfg.context : 1);
    if (st != RW_OK) {
        if (flags) free(*flags), *flags = NULL;
        rw_model *m = r->model;
        rw_run_free(r);
        rw_model_free(m);
        return st;
    }
    *model = r->model;
    *out = r;
    return RW_OK;
}

rw_status rw_run_configure(rw_run *r, const rw_run_config *c)
{
    int has_dst = c->dst != NULL || (c->prune && (c->prune->method == RW_PRUNE_GMP ||
                                                  c->prune->method == RW_PRUNE_ISSP));
    if (has_dst != r->dst_active)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "%s: the config %s dynamic sparse training, the checkpoint %s",
                       r->resume_path ? r->resume_path : "run", has_dst ? "asks for" : "has no",
                       r->dst_active ? "holds it" : "holds none");
    if ((c->nm != NULL) != r->nm_active)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: the config %s N:M training, the checkpoint %s",
                       r->resume_path ? r->resume_path : "run", c->nm ? "asks for" : "has no",
                       r->nm_active ? "holds it" : "holds none");
    if ((c->lm != NULL) != r->lm)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "%s: the config %s a language model's run, the checkpoint %s",
                       r->resume_path ? r->resume_path : "run", c->lm ? "asks for" : "is not",
                       r->lm ? "holds one" : "holds none");
    if (c->prune) {
        r->prune = *c->prune;
        r->gradual = 1;
        if (!(c->prune->method == RW_PRUNE_GMP || c->prune->method == RW_PRUNE_ISSP))
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "IMP and model soups cannot be resumed (they rewind and retrain in "
                           "phases, which no checkpoint records)");
    } else {
        r->gradual = 0;
    }
    rw_status st = take_config(r, c);
    if (st == RW_OK && !r->configured) st = run_open_log(r, 1);
    if (st == RW_OK) r->configured = 1;
    return st;
}

/* ---- Epochs ------------------------------------------------------------- */

typedef struct {
    rw_run *r;
    int every; /* stop the epoch at these steps, for a checkpoint (0: never) */
} step_ctx;

static int on_step(const rw_progress *p, void *user)
{
    step_ctx *c = user;
    if (c->r->progress) c->r->progress(p, c->r->user);
    /* Stops the epoch, which stays in progress; train_single takes the flag. */
    if (atomic_load(&c->r->stop_asked)) return 1;
    return c->every > 0 && p->step % c->every == 0;
}

static rw_status evaluate(rw_run *r, const rw_model *m, const rw_dataset *val,
                          const rw_dataset *test)
{
    rw_status st = RW_OK;
    if (val && rw_dataset_count(val) > 0) st = rw_evaluate(m, val, &r->val_r);
    if (st == RW_OK) st = rw_evaluate(m, test, &r->test_r);
    return st;
}

rw_status run_save_checkpoint(rw_run *r)
{
    /* The log on disk must hold what the note counts (topology lines are
     * not flushed one by one): a crash after the checkpoint keeps it. */
    if (r->log) fflush(r->log);
    /* Every process holds the same state; process 0 writes it. */
    rw_status checked = dist_check_model(r->model, "at a checkpoint");
    if (checked != RW_OK) return checked;
    if (!dist_writes_files()) {
        rw_progress pos;
        rw_trainer_position(r->t, &pos);
        r->saved_step = pos.step;
        return RW_OK;
    }
    char *note = make_note(r, r->log ? ftell(r->log) : 0);
    if (!note) return rw_fail(RW_ERR_NO_MEMORY, "out of memory writing checkpoint %s",
                              r->checkpoint_path);
    rw_status st = rw_trainer_save_checkpoint(r->t, r->checkpoint_path, note);
    free(note);
    if (st != RW_OK) return st;
    rw_progress pos;
    rw_trainer_position(r->t, &pos);
    r->saved_step = pos.step;
    return RW_OK;
}

/* The report of an epoch of the single training (not of rounds). */
static int report_epoch(rw_run *r, const rw_epoch_stats *s, int epoch, int has_val, double nm_change,
                        double update_seconds)
{
    rw_run_epoch e;
    memset(&e, 0, sizeof e);
    e.epoch = epoch;
    e.epochs = r->train.epochs;
    e.step = s->step;
    e.stats = s;
    e.val = has_val ? &r->val_r : NULL;
    e.test = &r->test_r;
    e.seconds = run_now() - r->start;
    e.sparsity = rw_model_sparsity(r->model);
    e.update_seconds = r->gradual ? r->total_update_seconds : update_seconds;
    e.dst = r->dst_active;
    e.updates = r->updates;
    e.total_update_seconds = r->total_update_seconds;
    e.itop_rate = r->itop_rate;
    rw_dst_totals totals;
    if (r->dst_active && rw_trainer_dst(r->t, NULL, &totals)) e.inputs_kept = totals.inputs_kept;
    e.nm = r->nm_active;
    e.nm_mask_change = nm_change;
    e.nm_beta = r->nm_active ? rw_model_nm_decay_beta(r->model) : 0;
    e.prune = r->gradual;
    e.prune_method = r->prune.method;
    e.phase = 0;
    e.member = 0;
    e.phase_epoch = epoch;
    e.phase_epochs = r->train.epochs;
    e.model = r->model;
    if (r->log) {
        metrics_epoch_line(r->log, &e);
        if (r->nm_active)
            metrics_nm_line(r->log, &r->nm, epoch, (long long)s->step, nm_change, e.nm_beta);
        fflush(r->log);
    }
    return r->on_epoch ? r->on_epoch(&e, r->user) : 0;
}

static rw_status train_single(rw_run *r, const rw_dataset *train, const rw_dataset *val,
                              const rw_dataset *test, rw_run_result *out)
{
    int has_val = val && rw_dataset_count(val) > 0, evaluated = 0;
    step_ctx ctx = {r, r->checkpoint_path ? (int)r->checkpoint_every : 0};
    rw_progress pos;
    /* A resumed epoch had samples and seconds before the checkpoint: the
     * speed this process reports is of its own part. */
    rw_trainer_position(r->t, &pos);
    int resumed_epoch = pos.epoch;
    int64_t earlier_samples = pos.samples;
    double earlier_seconds = r->t->epoch_seconds;
    for (rw_trainer_position(r->t, &pos); pos.epoch < r->train.epochs;
         rw_trainer_position(r->t, &pos)) {
        rw_epoch_stats s;
        rw_status st = rw_trainer_epoch(r->t, train, on_step, &ctx, &s);
        if (st != RW_OK) {
            if (st == RW_ERR_DIVERGED && r->saved_step >= 0)
                out->checkpoint_kept = r->checkpoint_path ? r->checkpoint_path : r->resume_path;
            return st;
        }
        if (s.finished) {
            double update_seconds = r->total_update_seconds - r->epoch_mark;
            double nm_change = r->nm_active ? rw_model_nm_mask_change(r->model) : 0;
            r->epoch_mark = r->total_update_seconds;
            out->train_seconds += s.seconds;
            out->train_samples += rw_dataset_count(train);
            if (pos.epoch == resumed_epoch) {
                out->train_seconds -= earlier_seconds;
                out->train_samples -= earlier_samples;
            }
            if ((st = evaluate(r, r->model, val, test)) != RW_OK) return st;
            char when[64];
            snprintf(when, sizeof when, "at the end of epoch %d", pos.epoch + 1);
            if ((st = dist_check_model(r->model, when)) != RW_OK) return st;
            evaluated = 1;
            if (report_epoch(r, &s, pos.epoch + 1, has_val, nm_change, update_seconds))
                out->stopped = 1;
        }
        if (run_stop_asked(r)) out->stopped = 1;
        /* At every checkpoint_every step (or the end of each epoch without
         * it), at the end of the run and where it was stopped; after the
         * log line, which the checkpoint counts. */
        int last = out->stopped || (s.finished && pos.epoch + 1 == r->train.epochs);
        int due = last || (ctx.every > 0 ? s.step % ctx.every == 0 : s.finished);
        if (r->checkpoint_path && due && s.step != r->saved_step) {
            st = run_save_checkpoint(r);
            if (st != RW_OK) {
                if (r->saved_step >= 0) out->checkpoint_kept = r->checkpoint_path;
                return st;
            }
        }
        if (out->stopped) break;
    }
    if (!evaluated) {
        rw_status st = evaluate(r, r->model, val, test);
        if (st != RW_OK) return st;
    }
    return RW_OK;
}

/* ---- Training from dense to sparse in rounds (IMP, soups) --------------- */

static int on_round_epoch(const rw_prune_epoch *pe, void *user)
{
    rw_run *r = user;
    int has_val = r->val && rw_dataset_count(r->val) > 0;
    if ((r->eval_status = evaluate(r, pe->model, r->val, r->test)) != RW_OK) return 1;
    r->epochs_logged++;
    r->steps = pe->steps;
    const rw_epoch_stats *s = pe->stats;
    if (s) {
        r->train_seconds += s->seconds;
        r->train_samples += (int64_t)(s->samples_per_second * s->seconds + 0.5);
    }
    /* A soup's members at the end of their retrain, for the comparison
     * with the soup they make. */
    if (r->prune.method == RW_PRUNE_SOUP && pe->member >= 0 && pe->epoch == pe->epochs &&
        pe->phase > 0) {
        if (pe->phase != r->last_round)
            r->last_round = pe->phase, r->member_sum = 0, r->members = 0, r->member_best = 0;
        r->member_sum += r->test_r.accuracy;
        r->members++;
        if (r->test_r.accuracy > r->member_best) r->member_best = r->test_r.accuracy;
    }
    rw_run_epoch e;
    memset(&e, 0, sizeof e);
    e.epoch = r->epochs_logged;
    e.epochs = r->train.epochs;
    e.step = pe->steps;
    e.stats = s;
    e.val = has_val ? &r->val_r : NULL;
    e.test = &r->test_r;
    e.seconds = run_now() - r->start;
    e.sparsity = rw_model_sparsity(pe->model);
    e.update_seconds = e.total_update_seconds = r->total_update_seconds;
    e.updates = r->updates;
    e.itop_rate = r->itop_rate;
    e.prune = 1;
    e.prune_method = r->prune.method;
    e.phase = pe->phase;
    e.member = pe->member;
    e.phase_epoch = pe->epoch;
    e.phase_epochs = pe->epochs;
    e.model = pe->model;
    if (r->log) {
        metrics_epoch_line(r->log, &e);
        fflush(r->log);
    }
    if (r->on_epoch && r->on_epoch(&e, r->user)) r->stopped = 1;
    if (run_stop_asked(r)) r->stopped = 1;
    return r->stopped;
}

static rw_status train_rounds(rw_run *r, const rw_dataset *train, const rw_dataset *val,
                              const rw_dataset *test, rw_run_result *out)
{
    r->val = val;
    r->test = test;
    rw_status st = rw_train_prune(r->model, &r->train, &r->prune, train, on_round_epoch, run_on_update, r);
    if (r->eval_status != RW_OK) return r->eval_status;
    if (st != RW_OK) return st;
    if (r->epochs_logged == 0 && (st = evaluate(r, r->model, val, test)) != RW_OK) return st;
    out->stopped = r->stopped;
    out->steps = r->steps;
    out->train_seconds = r->train_seconds;
    out->train_samples = r->train_samples;
    out->members = r->members;
    out->member_accuracy_mean = r->members ? r->member_sum / r->members : 0;
    out->member_accuracy_best = r->member_best;
    return RW_OK;
}

/* The first layer's inputs that input-level DST kept become the model's
 * (nothing without it). The trainer's arrays no longer fit the model. */
static rw_status keep_selected_inputs(rw_run *r, rw_run_result *out)
{
    int32_t *index = malloc(sizeof(int32_t) * (size_t)(rw_model_inputs(r->model) + 1));
    if (!index) return rw_fail(RW_ERR_NO_MEMORY, "out of memory keeping the selected inputs");
    int k = dst_kept_inputs(r->t, index);
    rw_status st = k > 0 ? rw_model_keep_inputs(r->model, index, k) : RW_OK;
    free(index);
    if (k > 0) out->inputs_kept = k;
    return st;
}

rw_status rw_run_train(rw_run *r, const rw_dataset *train, const rw_dataset *val,
                       const rw_dataset *test, rw_run_result *out)
{
    memset(out, 0, sizeof *out);
    out->checkpoint_step = r->saved_step;
    if (!r->configured)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a resumed run needs rw_run_configure first");
    if (r->lm)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "the run is a language model's: train it with rw_run_train_text");
    r->start = run_now();
    rw_status st = r->rounds ? train_rounds(r, train, val, test, out)
                             : train_single(r, train, val, test, out);
    atomic_store(&r->stop_asked, 0);
    out->checkpoint_step = r->saved_step;
    if (st != RW_OK) return st;
    /* N:M training ends here: the layers keep mask ⊙ W as N:M storage. */
    if (r->nm_active) rw_model_nm_train_end(r->model);
    /* So does input selection: the model reads only the inputs kept. */
    if (r->t && (st = keep_selected_inputs(r, out)) != RW_OK) return st;
    if (r->t) {
        rw_progress pos;
        rw_trainer_position(r->t, &pos);
        out->steps = pos.step;
    }
    out->test = r->test_r;
    out->val = r->val_r;
    out->has_val = val && rw_dataset_count(val) > 0;
    out->sparsity = rw_model_sparsity(r->model);
    out->updates = r->updates;
    out->update_seconds = r->total_update_seconds;
    if (r->rounds || r->gradual)
        out->itop_rate = r->updates ? r->itop_rate : 1.0;
    else
        out->itop_rate = r->dst_active ? r->itop_rate : 1.0 - out->sparsity;
    out->train_samples_per_second =
        out->train_seconds > 0 ? (double)out->train_samples / out->train_seconds : 0.0;
    if (r->rounds) out->target_sparsity = r->prune.sparsity;
    else if (r->dst_active) out->target_sparsity = r->dst.final_sparsity;
    if ((st = dist_check_model(r->model, "at the end of training")) != RW_OK) return st;
    if (r->out_path && dist_writes_files()) st = rw_model_save(r->model, r->out_path);
    return st;
}

rw_status rw_dst_config_target(rw_dst_config *c, double sparsity, int explicit_initial,
                               double *model_sparsity)
{
    /* The preset's start (GraNet's 50%) is not below a low target: start
     * at half the target instead, still sparse and still pruned to it. */
    if (!explicit_initial && c->initial_sparsity > 0 && !(c->initial_sparsity < sparsity))
        c->initial_sparsity = sparsity / 2;
    *model_sparsity = sparsity;
    if (!(c->initial_sparsity > 0)) return RW_OK;
    if (!(c->initial_sparsity < sparsity))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "initial sparsity %g must be below the target sparsity %g (gradual pruning "
                       "goes from the first to the second)",
                       c->initial_sparsity, sparsity);
    *model_sparsity = c->initial_sparsity;
    c->final_sparsity = sparsity;
    return RW_OK;
}
