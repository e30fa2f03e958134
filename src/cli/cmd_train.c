/* rewire train: builds a sparse MLP, trains it, evaluates it after every
 * epoch (validation and test), logs JSONL and saves the model. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/data_flags.h"
#include "cli/progress.h"
#include "cli/train_checkpoint.h"
#include "cli/train_dst.h"
#include "cli/train_prune.h"
#include "cli/train_nm.h"
#include "rewire.h"

#define MAX_HIDDEN 64

static const char *init_names[] = {"uniform", "er", "erk", NULL};
static const char *opt_names[] = {"sgd", "adamw", NULL};
static const char *sched_names[] = {"constant", "step", "cosine", NULL};
static const char *act_names[] = {"relu", "leaky_relu", "tanh", "gelu", NULL};
static const char *normalize_names[] = {"global", "feature", NULL};

typedef struct {
    const char *hidden, *out, *log, *checkpoint, *resume, *max_memory;
    data_flags data;
    double sparsity, lr, momentum, weight_decay, beta1, beta2, eps, clip, gamma, slope, val_split;
    int init, dense_first, dense_last, layer_norm, activation, epochs, batch, optimizer, nesterov, schedule,
        warmup, step_every, seed, threads, train_limit, test_limit, quiet, checkpoint_every,
        normalize;
    dst_flags dst;
    prune_flags prune;
    nm_flags nm;
    rw_nm_train_config nm_config; /* when nm_active */
    int nm_active;
} train_flags;

/* Loads the training split (minus the validation part) and the test split. */
static int load_data(const train_flags *f, rw_dataset **train, rw_dataset **val, rw_dataset **test)
{
    return data_load(&f->data, "train", f->train_limit, f->test_limit, f->val_split,
                     (uint64_t)f->seed, train, val, test);
}

/* The input normalisation of a new model: the training set's mean and
 * std over all features, and with --normalize feature each feature's. */
static int set_normalization(const train_flags *f, rw_model *m, const rw_dataset *train)
{
    float mean, std;
    rw_dataset_stats(train, &mean, &std);
    rw_model_set_normalization(m, mean, std > 0 ? std : 1.0f);
    if (f->normalize != RW_NORMALIZE_FEATURE) return 0;
    int n = rw_dataset_features(train);
    float *fm = malloc(sizeof(float) * (size_t)n), *fs = malloc(sizeof(float) * (size_t)n);
    rw_status st = fm && fs ? rw_dataset_feature_stats(train, fm, fs) : RW_ERR_NO_MEMORY;
    if (st == RW_OK) st = rw_model_set_feature_normalization(m, fm, fs);
    free(fm);
    free(fs);
    if (st == RW_ERR_NO_MEMORY) fprintf(stderr, "rewire train: out of memory\n");
    else if (st != RW_OK) report_failure("train");
    return st == RW_OK ? 0 : 1;
}

/* The model config from the flags; sizes needs MAX_HIDDEN + 2 entries. */
static int model_config(const train_flags *f, double sparsity, int inputs, int classes, int *sizes,
                        rw_model_config *mc)
{
    int n_hidden = args_parse_int_list(f->hidden, sizes + 1, MAX_HIDDEN);
    if (n_hidden < 0) {
        fprintf(stderr,
                "rewire train: --hidden expects a comma-separated list of positive sizes (at most "
                "%d), got '%s'\n",
                MAX_HIDDEN, f->hidden);
        return 2;
    }
    sizes[0] = inputs;
    sizes[n_hidden + 1] = classes;
    *mc = rw_model_config_default();
    mc->sizes = sizes;
    mc->n_layers = n_hidden + 1;
    mc->sparsity = sparsity;
    mc->distribution = (rw_distribution)f->init;
    mc->dense_first = f->dense_first;
    mc->dense_last = f->dense_last;
    mc->layer_norm = f->layer_norm;
    mc->activation = (rw_activation)f->activation;
    mc->leaky_slope = (float)f->slope;
    mc->seed = (uint64_t)f->seed;
    return 0;
}

static rw_train_config train_config(const train_flags *f)
{
    rw_train_config tc = rw_train_config_default();
    tc.optimizer = (rw_optimizer)f->optimizer;
    tc.lr = (float)f->lr;
    tc.momentum = (float)f->momentum;
    tc.nesterov = f->nesterov;
    tc.beta1 = (float)f->beta1;
    tc.beta2 = (float)f->beta2;
    tc.eps = (float)f->eps;
    tc.weight_decay = (float)f->weight_decay;
    tc.schedule = (rw_schedule)f->schedule;
    tc.warmup_epochs = f->warmup;
    tc.step_every = f->step_every;
    tc.step_gamma = (float)f->gamma;
    tc.clip_norm = (float)f->clip;
    tc.batch = f->batch;
    tc.epochs = f->epochs;
    tc.seed = (uint64_t)f->seed;
    return tc;
}

/* Bytes the three datasets take (floats per feature, a byte per label). */
static int64_t data_bytes(const rw_dataset *const *sets, int n)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += (int64_t)rw_dataset_count(sets[i]) * (4 * (int64_t)rw_dataset_features(sets[i]) + 1);
    return total;
}

/* Refuses a run whose estimate exceeds the limit (0: none). */
static int check_memory(const rw_memory_estimate *e, int64_t data, int64_t limit, int from_flag)
{
    int64_t need = e->total + data;
    if (limit <= 0 || need <= limit) return 0;
    char a[32], b[32], c[32], d[32], g[32], h[32], lim[32];
    format_bytes(a, sizeof a, need);
    format_bytes(b, sizeof b, e->model);
    format_bytes(c, sizeof c, e->optimizer);
    format_bytes(d, sizeof d, e->gradients);
    format_bytes(g, sizeof g, e->activations);
    format_bytes(h, sizeof h, data);
    format_bytes(lim, sizeof lim, limit);
    fprintf(stderr,
            "rewire train: the run needs about %s (%lld bytes: model %s, optimizer %s, gradients "
            "%s, activations %s, data %s), more than the limit of %s (%lld bytes, %s); lower "
            "--hidden, --batch or the density, or raise --max-memory\n",
            a, (long long)need, b, c, d, g, h, lim, (long long)limit,
            from_flag ? "--max-memory" : "the memory available now");
    return 1;
}

static void print_model(const rw_model *m)
{
    int64_t nnz = 0, all = 0;
    fprintf(stderr, "model:");
    for (int l = 0; l < rw_model_layer_count(m); l++) {
        rw_layer_info li;
        rw_model_layer_info(m, l, &li);
        if (!li.has_weights) {
            fprintf(stderr, " %s%s", li.kind, l + 1 < rw_model_layer_count(m) ? "," : "");
            continue;
        }
        nnz += li.nonzeros;
        all += li.dense_weights;
        char kind[16];
        snprintf(kind, sizeof kind, "%s", li.sparse ? "sparse" : "dense");
        if (li.nm_m) snprintf(kind, sizeof kind, "%d:%d", li.nm_n, li.nm_m);
        fprintf(stderr, " %d->%d %s %.1f%%", li.in, li.out, kind, 100.0 * (1.0 - li.sparsity));
        if (l + 1 < rw_model_layer_count(m)) fprintf(stderr, ",");
    }
    fprintf(stderr, " | %lld of %lld weights (density %.2f%%), kernels %s, %d threads\n",
            (long long)nnz, (long long)all, 100.0 * nnz / (double)all, rw_kernel_isa(),
            rw_get_num_threads());
}

/* The folder --out (or --checkpoint) will be written into must exist and
 * be writable: found out now, not after hours of training. */
static int check_out_dir(const char *flag, const char *out)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "rewire train: cannot write --%s %s: folder %s: %s\n", flag, out, dir,
                strerror(errno));
        return 1;
    }
    return 0;
}

/* What the run's callbacks draw and print. */
typedef struct {
    progress_bar *bar;
    int quiet;
    int epochs;
} cli_run;

static int on_progress(const rw_progress *p, void *user)
{
    progress_update(p, ((cli_run *)user)->bar);
    return 0;
}

/* The line of a finished epoch on stderr (the log has its own). */
static int on_epoch(const rw_run_epoch *e, void *user)
{
    cli_run *c = user;
    progress_clear(c->bar);
    if (c->quiet) return 0;
    const rw_epoch_stats *s = e->stats;
    if (e->prune) {
        char who[48] = "";
        if (e->member >= 0 && e->prune_method == RW_PRUNE_SOUP && e->phase > 0)
            snprintf(who, sizeof who, " member %d", e->member + 1);
        else if (e->member < 0)
            snprintf(who, sizeof who, " soup");
        fprintf(stderr, "phase %d%s epoch %d/%d  step %lld", e->phase, who, e->phase_epoch,
                e->phase_epochs, (long long)e->step);
        if (s) fprintf(stderr, "  loss %.4f", s->loss);
        if (e->val) fprintf(stderr, "  val %.2f%%", 100.0 * e->val->accuracy);
        fprintf(stderr, "  test %.2f%%  sparsity %.4f  %.1fs\n", 100.0 * e->test->accuracy,
                e->sparsity, e->seconds);
        return 0;
    }
    char val_text[32] = "", topo_text[96] = "";
    if (e->val) snprintf(val_text, sizeof val_text, "  val %.2f%%", 100.0 * e->val->accuracy);
    if (e->dst && e->inputs_kept > 0)
        snprintf(topo_text, sizeof topo_text,
                 "  [%lld updates, %.2fs, itop %.3f, sparsity %.4f, %d inputs]", (long long)e->updates,
                 e->total_update_seconds, e->itop_rate, e->sparsity, e->inputs_kept);
    else if (e->dst)
        snprintf(topo_text, sizeof topo_text, "  [%lld updates, %.2fs, itop %.3f, sparsity %.4f]",
                 (long long)e->updates, e->total_update_seconds, e->itop_rate, e->sparsity);
    else if (e->nm)
        snprintf(topo_text, sizeof topo_text, "  [N:M mask change %.4f, beta %.3f]",
                 e->nm_mask_change, e->nm_beta);
    fprintf(stderr,
            "epoch %d/%d  step %lld  loss %.4f%s  test %.2f%%  %.0f samples/s  lr %.4g  %.1fs%s\n",
            e->epoch, e->epochs, (long long)e->step, s->loss, val_text, 100.0 * e->test->accuracy,
            s->samples_per_second, s->lr, e->seconds, topo_text);
    return 0;
}

/* The run's config from the flags and the pieces the caller resolved. */
static rw_run_config run_config(const train_flags *f, const rw_train_config *tc,
                                const rw_dst_config *dc, const rw_prune_schedule *ps,
                                const char *flags_json, cli_run *cli)
{
    rw_run_config c = rw_run_config_default();
    c.train = *tc;
    c.dst = dc;
    c.prune = ps;
    c.nm = f->nm_active ? &f->nm_config : NULL;
    c.log = f->log;
    c.checkpoint = f->checkpoint;
    c.checkpoint_every = f->checkpoint_every;
    c.checkpoint_flags = flags_json;
    c.out = f->out;
    c.progress = on_progress;
    c.on_epoch = on_epoch;
    c.user = cli;
    return c;
}

static int run(train_flags *f, const arg_spec *specs, int n_specs, const train_flags *defaults)
{
    if (f->out && check_out_dir("out", f->out)) return 1;
    if (f->checkpoint && check_out_dir("checkpoint", f->checkpoint)) return 1;
    int64_t limit = f->max_memory ? parse_memory_size(f->max_memory) : rw_available_memory();

    /* Resuming: the model, the run and its run-shaping flags come from the
     * checkpoint, loaded (within the memory limit) before the data. */
    rw_model *m = NULL;
    rw_run *r = NULL;
    void *note_keep = NULL;
    char *flags_json = NULL;
    rw_dataset *train = NULL, *val = NULL, *test = NULL;
    int rc = 0;
    if (f->resume) {
        char *stored = NULL;
        if (rw_run_resume(f->resume, limit, &m, &r, &stored) != RW_OK)
            return report_failure("train");
        rc = resume_flags(stored, f->resume, specs, n_specs, f, defaults, &note_keep);
        free(stored);
        /* The N:M flags are the checkpoint's now. */
        if (!rc) rc = nm_flags_config(&f->nm, &f->nm_config, &f->nm_active);
        if (rc) goto done;
    }
    if (load_data(f, &train, &val, &test)) { /* the message is printed */
        rc = 1;
        goto done;
    }
    const rw_dataset *sets[3] = {train, val, test};
    rw_train_config tc = train_config(f);
    rw_memory_estimate est;
    rw_dst_config dc;
    int dst_active = 0, prune_active = 0, gradual = 0;
    double start_sparsity = f->sparsity;
    rw_prune_schedule ps;
    rc = prune_flags_config(&f->prune, &f->dst, f->sparsity, f->init, &tc, &ps, &prune_active,
                            &start_sparsity);
    if (!rc && !prune_active)
        rc = dst_flags_config(&f->dst, f->sparsity, f->seed, &dc, &dst_active, &start_sparsity);
    if (rc) goto done;
    /* GMP and ISS-P are one training with a DST configuration, checkpoints
     * included. IMP and soups rewind and retrain in phases, which no
     * checkpoint records. */
    gradual = prune_active && (ps.method == RW_PRUNE_GMP || ps.method == RW_PRUNE_ISSP);
    if (prune_active && !gradual && (f->resume || f->checkpoint)) {
        fprintf(stderr, "rewire train: --prune imp|soup runs do not take --checkpoint or --resume "
                        "(they rewind and retrain in phases); --prune gmp|issp do\n");
        rc = 2;
        goto done;
    }
    if (gradual) {
        if (rw_prune_schedule_dst_config(&ps, &dc) != RW_OK) {
            report_failure("train");
            rc = 2;
            goto done;
        }
        dst_active = 1;
    }
    /* The checkpoint brought its dynamic sparse training back, and its N:M
     * training, masks and decay as they were: they must be the flags'. */
    if (f->resume && (rc = dst_resume(rw_run_trainer(r), f->resume, dst_active, &dc))) goto done;
    if (f->resume && (rc = nm_resume(m, f->resume, f->nm_active, &f->nm_config))) goto done;
    if (!f->resume) {
        int sizes[MAX_HIDDEN + 2];
        rw_model_config mc;
        rc = model_config(f, f->nm_active ? 0.0 : start_sparsity, rw_dataset_features(train),
                          rw_dataset_classes(train), sizes, &mc);
        if (rc) goto done;
        /* Refused before anything of the model's size is allocated. */
        if (rw_estimate_memory(&mc, &tc, &est) != RW_OK) {
            rc = report_failure("train");
            goto done;
        }
        if (f->nm_active) {
            int64_t nm_bytes;
            if (rw_estimate_nm_train_memory(&mc, &f->nm_config, &nm_bytes) != RW_OK) {
                report_failure("train");
                rc = 2;
                goto done;
            }
            est.model += nm_bytes;
            est.total += nm_bytes;
        }
        if ((rc = check_memory(&est, data_bytes(sets, 3), limit, f->max_memory != NULL))) goto done;
        if (rw_model_create(&mc, &m) != RW_OK) {
            rc = report_failure("train");
            goto done;
        }
        if ((rc = set_normalization(f, m, train))) goto done;
        /* A CSV file's classes are its labels: the model keeps their names,
         * so that rewire eval numbers another file's classes alike. */
        char *names = data_class_names_json(train);
        rw_status named = names ? rw_model_set_info(m, "class_names", names) : RW_OK;
        free(names);
        if (named != RW_OK) {
            rc = report_failure("train");
            goto done;
        }
    } else {
        tc = rw_trainer_config(rw_run_trainer(r));
        if (rw_estimate_trainer_memory(m, &tc, &est) != RW_OK) {
            rc = report_failure("train");
            goto done;
        }
        if ((rc = check_memory(&est, data_bytes(sets, 3), limit, f->max_memory != NULL))) goto done;
    }
    if (prune_active && !gradual) {
        int first, phase;
        rw_prune_phase_epochs(&tc, &ps, &first, &phase);
        int64_t spe = (rw_dataset_count(train) + tc.batch - 1) / tc.batch;
        if (ps.method == RW_PRUNE_IMP && ps.rewind_step >= (int64_t)phase * spe) {
            fprintf(stderr, "rewire train: --rewind-step: rewind step %lld is not below the %lld "
                            "steps of a retrain phase (%d epochs of %lld steps)\n(see 'rewire train "
                            "--help')\n",
                    (long long)ps.rewind_step, (long long)phase * spe, phase, (long long)spe);
            rc = 2;
            goto done;
        }
    }
    if (f->checkpoint && !(flags_json = train_flags_json(specs, n_specs, f, defaults))) {
        fprintf(stderr, "rewire train: out of memory\n");
        rc = 1;
        goto done;
    }

    progress_bar bar;
    progress_init(&bar, tc.epochs);
    if (f->quiet) bar.tty = 0;
    cli_run cli = {&bar, f->quiet, tc.epochs};
    rw_run_config c = run_config(f, &tc, dst_active && !gradual ? &dc : NULL,
                                 prune_active ? &ps : NULL, flags_json, &cli);
    rw_status st = f->resume ? rw_run_configure(r, &c) : rw_run_new(m, &c, &r);
    if (st != RW_OK) {
        report_failure("train");
        /* 2: the layer sizes do not allow the N:M pattern the flags ask for. */
        rc = st == RW_ERR_INVALID_ARGUMENT && f->nm_active && !f->resume ? 2 : 1;
        goto done;
    }
    if (!f->quiet && prune_active && !gradual) {
        fprintf(stderr, "data: %d training, %d validation, %d test samples\n",
                rw_dataset_count(train), rw_dataset_count(val), rw_dataset_count(test));
        prune_print_plan(m, &tc, &ps);
    } else if (!f->quiet) {
        fprintf(stderr, "data: %s, %d training, %d validation, %d test samples\n", f->data.data,
                rw_dataset_count(train), rw_dataset_count(val), rw_dataset_count(test));
        print_model(m);
        if (gradual && !f->resume) prune_print_plan(m, &tc, &ps);
        if (f->resume) {
            rw_progress pos;
            rw_trainer_position(rw_run_trainer(r), &pos);
            if (pos.epoch < tc.epochs)
                fprintf(stderr, "resuming %s at epoch %d, step %lld\n", f->resume, pos.epoch + 1,
                        (long long)pos.step);
            else
                fprintf(stderr, "resuming %s: all %d epochs are done (step %lld)\n", f->resume,
                        tc.epochs, (long long)pos.step);
        }
    }

    rw_run_result res;
    st = rw_run_train(r, train, val, test, &res);
    progress_clear(&bar);
    if (st != RW_OK) {
        rc = report_failure("train");
        if (res.checkpoint_kept)
            fprintf(stderr, "rewire train: the last good checkpoint, %s (step %lld), is kept\n",
                    res.checkpoint_kept, (long long)res.checkpoint_step);
        goto done;
    }
    /* Pruning that ended short of its target: one check for every kind,
     * worded as each run's own lines are. */
    if (res.target_sparsity > 0 && res.sparsity < res.target_sparsity - 1e-3)
        fprintf(stderr,
                "rewire train: warning: %s ended at sparsity %.4f, not %.4f: no %s step came "
                "after --prune-end (try a smaller --update-every)\n",
                prune_active ? "pruning" : "gradual pruning", res.sparsity, res.target_sparsity,
                prune_active ? "pruning" : "update");
    if (res.inputs_kept > f->dst.input_budget && f->dst.input_budget > 0)
        fprintf(stderr, "rewire train: warning: the model reads %d inputs, not the %d of "
                        "--input-budget: no update came after --input-end (try a smaller "
                        "--update-every)\n", res.inputs_kept, f->dst.input_budget);
    if (f->out && !f->quiet) fprintf(stderr, "saved %s\n", f->out);
    rw_dist_stats ds;
    int dist = rw_run_dist_stats(r, &ds);
    if (dist && !f->quiet)
        fprintf(stderr,
                "%d processes: every step all-reduced %.1f KB of gradients (stored weights; "
                "dense: %.1f KB); of %.2f s training, %.2f s computing, %.2f s waiting for the "
                "slowest process, %.2f s in all-reduces, %.2f s gathering batches for %lld "
                "topology updates and checking them\n",
                ds.processes, ds.reduce_bytes / 1e3, ds.dense_bytes / 1e3, res.train_seconds,
                res.train_seconds - ds.wait_seconds - ds.reduce_seconds - ds.gather_seconds,
                ds.wait_seconds, ds.reduce_seconds, ds.gather_seconds, (long long)ds.checks);
    /* One machine-readable closing line on stdout, for scripts. */
    printf("result: test_accuracy=%.4f test_loss=%.4f train_samples_per_second=%.0f "
           "train_seconds=%.2f sparsity=%.4f update_seconds=%.3f updates=%lld itop_rate=%.4f",
           res.test.accuracy, res.test.loss, res.train_samples_per_second, res.train_seconds,
           res.sparsity, res.update_seconds, (long long)res.updates, res.itop_rate);
    if (prune_active) printf(" prune=%s steps=%lld", prune_method_name(ps.method), (long long)res.steps);
    if (res.inputs_kept > 0) printf(" inputs_kept=%d", res.inputs_kept);
    if (dist)
        printf(" processes=%d allreduce_bytes=%lld dense_bytes=%lld wait_seconds=%.3f "
               "allreduce_seconds=%.3f gather_seconds=%.3f gathers=%lld gather_bytes=%lld",
               ds.processes, (long long)ds.reduce_bytes, (long long)ds.dense_bytes,
               ds.wait_seconds, ds.reduce_seconds, ds.gather_seconds, (long long)ds.gathers,
               (long long)ds.gather_bytes);
    if (prune_active && ps.method == RW_PRUNE_SOUP && res.members > 0)
        printf(" member_accuracy_mean=%.4f member_accuracy_best=%.4f members=%d",
               res.member_accuracy_mean, res.member_accuracy_best, res.members);
    printf("\n");
done:
    rw_run_free(r);
    rw_model_free(m);
    rw_dataset_free(train);
    rw_dataset_free(val);
    rw_dataset_free(test);
    resume_note_free(note_keep);
    free(flags_json);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    train_flags f = {.hidden = "1000,1000,1000", .sparsity = 0.95,
                     .lr = 0.05, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                     .gamma = 0.1, .slope = 0.01, .val_split = 0.0, .init = 2, .epochs = 10,
                     .batch = 128, .schedule = 2, .step_every = 1, .seed = 1};
    data_flags_init(&f.data);
    dst_flags_init(&f.dst);
    prune_flags_init(&f.prune);
    nm_flags_init(&f.nm);
    arg_spec base[] = {
        data_flags_data_spec(&f.data),
        {"hidden", ARG_STRING, &f.hidden, "N,N,...", "hidden layer sizes (default 1000,1000,1000)",
         NULL, 0, 0},
        {"sparsity", ARG_DOUBLE, &f.sparsity, "S",
         "overall fraction of zero weights, 0 = dense (default 0.95)", NULL, 0, 0.999999},
        {"init", ARG_CHOICE, &f.init, "uniform|er|erk",
         "how sparsity is shared among layers (default erk)", init_names, 0, 0},
        {"dense-first", ARG_FLAG, &f.dense_first, NULL, "keep the first layer dense", NULL, 0, 0},
        {"dense-last", ARG_FLAG, &f.dense_last, NULL, "keep the last layer dense", NULL, 0, 0},
        {"layer-norm", ARG_FLAG, &f.layer_norm, NULL,
         "a LayerNorm after every hidden layer's activation (not with --prune imp|soup)", NULL, 0,
         0},
        {"activation", ARG_CHOICE, &f.activation, "NAME",
         "relu|leaky_relu|tanh|gelu (default relu)", act_names, 0, 0},
        {"leaky-slope", ARG_DOUBLE, &f.slope, "A", "negative slope of leaky_relu (default 0.01)",
         NULL, 1e-6, 1},
        {"epochs", ARG_INT, &f.epochs, "N", "training epochs (default 10)", NULL, 1, 100000},
        {"batch", ARG_INT, &f.batch, "N", "batch size (default 128)", NULL, 1, 1 << 20},
        {"optimizer", ARG_CHOICE, &f.optimizer, "sgd|adamw", "optimizer (default sgd)", opt_names,
         0, 0},
        {"lr", ARG_DOUBLE, &f.lr, "LR", "peak learning rate (default 0.05)", NULL, 1e-12, 1e6},
        {"momentum", ARG_DOUBLE, &f.momentum, "M", "SGD momentum (default 0.9)", NULL, 0, 0.999999},
        {"nesterov", ARG_FLAG, &f.nesterov, NULL, "Nesterov momentum for SGD", NULL, 0, 0},
        {"weight-decay", ARG_DOUBLE, &f.weight_decay, "WD",
         "L2 for SGD, decoupled for AdamW (default 0)", NULL, 0, 1e3},
        {"beta1", ARG_DOUBLE, &f.beta1, "B", "AdamW beta1 (default 0.9)", NULL, 0, 0.999999},
        {"beta2", ARG_DOUBLE, &f.beta2, "B", "AdamW beta2 (default 0.999)", NULL, 0, 0.999999},
        {"adam-eps", ARG_DOUBLE, &f.eps, "E", "AdamW epsilon (default 1e-8)", NULL, 1e-30, 1},
        {"schedule", ARG_CHOICE, &f.schedule, "constant|step|cosine",
         "learning-rate schedule (default cosine)", sched_names, 0, 0},
        {"warmup-epochs", ARG_INT, &f.warmup, "N", "linear warm-up epochs (default 0)", NULL, 0,
         100000},
        {"step-every", ARG_INT, &f.step_every, "N", "step schedule: decay every N epochs (default 1)",
         NULL, 1, 100000},
        {"step-gamma", ARG_DOUBLE, &f.gamma, "G", "step schedule: decay factor (default 0.1)", NULL,
         1e-9, 1},
        {"clip-norm", ARG_DOUBLE, &f.clip, "C", "clip the global gradient norm to C (default off)",
         NULL, 0, 1e12},
        {"val-split", ARG_DOUBLE, &f.val_split, "F",
         "fraction of the training set held out for validation (default 0)", NULL, 0, 0.9},
        {"train-limit", ARG_INT, &f.train_limit, "N", "use only the first N training samples", NULL,
         0, 2147483647.0},
        {"test-limit", ARG_INT, &f.test_limit, "N", "use only the first N test samples", NULL, 0,
         2147483647.0},
        {"seed", ARG_INT, &f.seed, "N", "seed for topology, weights and data order (default 1)",
         NULL, 0, 2147483647.0},
        {"threads", ARG_INT, &f.threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"out", ARG_STRING, &f.out, "PATH", "save the trained model (safetensors)", NULL, 0, 0},
        {"log", ARG_STRING, &f.log, "PATH", "write one JSON object per epoch (JSONL)", NULL, 0, 0},
        {"quiet", ARG_FLAG, &f.quiet, NULL, "print only the closing result line", NULL, 0, 0},
        {"checkpoint", ARG_STRING, &f.checkpoint, "PATH",
         "save a checkpoint (model + trainer state) here, atomically: at the end of each epoch, "
         "or every --checkpoint-every steps", NULL, 0, 0},
        {"checkpoint-every", ARG_INT, &f.checkpoint_every, "N",
         "checkpoint every N optimizer steps (default 0: at the end of each epoch)", NULL, 0,
         2147483647.0},
        {"resume", ARG_STRING, &f.resume, "PATH",
         "continue the run saved in checkpoint PATH, with its settings (the result is "
         "bit-identical to a run never interrupted)", NULL, 0, 0},
        {"max-memory", ARG_STRING, &f.max_memory, "SIZE",
         "refuse to start a run estimated to need more memory, e.g. 512M, 4G, 0 for no limit "
         "(default: the memory available now)", NULL, 0, 0},
    };
    enum { N_BASE = sizeof base / sizeof base[0] };
    /* Newer flags, after the older ones: a checkpoint's note lists the
     * flags in this order. */
    arg_spec late[] = {
        {"normalize", ARG_CHOICE, &f.normalize, "global|feature",
         "standardise the inputs with the training set's mean and std over all features, or "
         "each feature with its own (a constant feature then feeds 0) (default global)",
         normalize_names, 0, 0},
        {0}, {0}, {0}, {0}, /* the input-level DST flags */
    };
    dst_input_flags_specs(&f.dst, late + 1);
    enum { N_LATE = sizeof late / sizeof late[0] };
    enum { N_SPECS = N_BASE + DST_FLAG_COUNT + PRUNE_FLAG_COUNT + NM_FLAG_COUNT +
                     DATA_TABULAR_FLAG_COUNT + N_LATE };
    arg_spec specs[N_SPECS];
    memcpy(specs, base, sizeof base);
    dst_flags_specs(&f.dst, specs + N_BASE);
    prune_flags_specs(&f.prune, specs + N_BASE + DST_FLAG_COUNT);
    nm_flags_specs(&f.nm, specs + N_BASE + DST_FLAG_COUNT + PRUNE_FLAG_COUNT);
    data_flags_tabular_specs(&f.data,
                             specs + N_BASE + DST_FLAG_COUNT + PRUNE_FLAG_COUNT + NM_FLAG_COUNT);
    memcpy(specs + N_SPECS - N_LATE, late, sizeof late);
    arg_parser p = {"train", "rewire train [flags]",
                    "Trains a truly sparse MLP classifier: hidden layers from --hidden, the "
                    "--sparsity target shared among layers by --init, evaluated on the test split "
                    "after every epoch. Prints one closing line 'result: ...' on stdout. Under "
                    "'mpirun -np N' the N processes train data-parallel: --batch is the global "
                    "batch, --threads per process (docs/distributed.md).",
                    specs, N_SPECS, NULL, 0, 0};
    train_flags defaults = f;
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (f.max_memory && parse_memory_size(f.max_memory) < 0) {
        fprintf(stderr, "rewire train: --max-memory expects a size such as 512M, 4G or 0, got "
                        "'%s'\n(see 'rewire train --help')\n", f.max_memory);
        return 2;
    }
    if (data_flags_check(&f.data, "train")) return 2;
    if (f.checkpoint_every > 0 && !f.checkpoint) {
        fprintf(stderr, "rewire train: --checkpoint-every needs --checkpoint PATH\n"
                        "(see 'rewire train --help')\n");
        return 2;
    }
    /* Resuming, the N:M flags are checked once the checkpoint's are in. */
    if (!f.resume && nm_flags_check(&f.nm, argc, argv, &f.nm_config, &f.nm_active)) return 2;
    if (f.dst.input_budget > 0 && (f.prune.method >= 0 || f.nm_active || f.dense_first)) {
        fprintf(stderr, "rewire train: --input-budget removes inputs of a sparse first layer "
                        "during --dst training (any preset, static included): not with --prune, "
                        "--nm or --dense-first\n(see 'rewire train --help')\n");
        return 2;
    }
    if (f.threads > 0) rw_set_num_threads(f.threads);
    return run(&f, specs, N_SPECS, &defaults);
}
