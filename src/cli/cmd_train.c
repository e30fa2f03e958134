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
#include "cli/progress.h"
#include "cli/train_dst.h"
#include "rewire.h"

#define MAX_HIDDEN 64

static const char *init_names[] = {"uniform", "er", "erk", NULL};
static const char *opt_names[] = {"sgd", "adamw", NULL};
static const char *sched_names[] = {"constant", "step", "cosine", NULL};
static const char *act_names[] = {"relu", "leaky_relu", "tanh", "gelu", NULL};

typedef struct {
    const char *data, *hidden, *out, *log;
    double sparsity, lr, momentum, weight_decay, beta1, beta2, eps, clip, gamma, slope, val_split;
    int init, dense_first, dense_last, activation, epochs, batch, optimizer, nesterov, schedule,
        warmup, step_every, seed, threads, train_limit, test_limit, quiet;
    dst_flags dst;
} train_flags;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Loads the training split (minus the validation part) and the test split. */
static int load_data(const train_flags *f, rw_dataset **train, rw_dataset **val, rw_dataset **test)
{
    rw_dataset *all = NULL, *tmp = NULL;
    *train = *val = *test = NULL;
    if (rw_dataset_load(f->data, 0, &all) != RW_OK) return 1;
    if (f->train_limit > 0) {
        if (rw_dataset_head(all, f->train_limit, &tmp) != RW_OK) goto fail;
        rw_dataset_free(all);
        all = tmp;
    }
    int n_val = (int)(f->val_split * rw_dataset_count(all) + 0.5);
    if (n_val >= rw_dataset_count(all)) n_val = rw_dataset_count(all) - 1;
    if (rw_dataset_split(all, n_val, (uint64_t)f->seed, train, val) != RW_OK) goto fail;
    rw_dataset_free(all);
    all = NULL;
    if (rw_dataset_load(f->data, 1, &all) != RW_OK) goto fail;
    if (f->test_limit > 0) {
        if (rw_dataset_head(all, f->test_limit, test) != RW_OK) goto fail;
        rw_dataset_free(all);
    } else {
        *test = all;
    }
    return 0;
fail:
    rw_dataset_free(all);
    rw_dataset_free(*train);
    rw_dataset_free(*val);
    *train = *val = NULL;
    return 1;
}

static int build_model(const train_flags *f, double sparsity, int inputs, int classes, rw_model **m)
{
    int sizes[MAX_HIDDEN + 2];
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
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = n_hidden + 1;
    mc.sparsity = sparsity;
    mc.distribution = (rw_distribution)f->init;
    mc.dense_first = f->dense_first;
    mc.dense_last = f->dense_last;
    mc.activation = (rw_activation)f->activation;
    mc.leaky_slope = (float)f->slope;
    mc.seed = (uint64_t)f->seed;
    return rw_model_create(&mc, m) == RW_OK ? 0 : report_failure("train");
}

/* Overall fraction of zero weights of the model as it is now. */
static double model_sparsity_now(const rw_model *m)
{
    int64_t nnz = 0, all = 0;
    for (int l = 0; l < rw_model_layer_count(m); l++) {
        rw_layer_info li;
        rw_model_layer_info(m, l, &li);
        nnz += li.nonzeros;
        all += (int64_t)li.in * li.out;
    }
    return all ? 1.0 - (double)nnz / (double)all : 0.0;
}

static void print_model(const rw_model *m)
{
    int64_t nnz = 0, all = 0;
    fprintf(stderr, "model:");
    for (int l = 0; l < rw_model_layer_count(m); l++) {
        rw_layer_info li;
        rw_model_layer_info(m, l, &li);
        nnz += li.nonzeros;
        all += (int64_t)li.in * li.out;
        fprintf(stderr, " %d->%d %s %.1f%%", li.in, li.out, li.sparse ? "sparse" : "dense",
                100.0 * (1.0 - li.sparsity));
        if (l + 1 < rw_model_layer_count(m)) fprintf(stderr, ",");
    }
    fprintf(stderr, " | %lld of %lld weights (density %.2f%%), kernels %s, %d threads\n",
            (long long)nnz, (long long)all, 100.0 * nnz / (double)all, rw_kernel_isa(),
            rw_get_num_threads());
}

/* The folder --out will be written into must exist and be writable: found
 * out now, not after hours of training. */
static int check_out_dir(const char *out)
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
        fprintf(stderr, "rewire train: cannot write --out %s: folder %s: %s\n", out, dir,
                strerror(errno));
        return 1;
    }
    return 0;
}

static int run(const train_flags *f)
{
    FILE *log = NULL;
    if (f->out && check_out_dir(f->out)) return 1;
    if (f->log && !(log = fopen(f->log, "w"))) {
        fprintf(stderr, "rewire train: cannot open log file %s for writing: %s\n", f->log,
                strerror(errno));
        return 1;
    }
    rw_dataset *train, *val, *test;
    if (load_data(f, &train, &val, &test)) {
        if (log) fclose(log);
        return report_failure("train");
    }
    rw_model *m = NULL;
    rw_trainer *t = NULL;
    rw_dst_config dc;
    topology_log topo = {log, 0, 0, 0, 0};
    int dst_active = 0;
    double start_sparsity = f->sparsity;
    int rc = dst_flags_config(&f->dst, f->sparsity, f->seed, &dc, &dst_active, &start_sparsity);
    if (rc) goto done;
    rc = build_model(f, start_sparsity, rw_dataset_features(train), rw_dataset_classes(train), &m);
    if (rc) goto done;
    float mean, std;
    rw_dataset_stats(train, &mean, &std);
    rw_model_set_normalization(m, mean, std > 0 ? std : 1.0f);

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
    if (rw_trainer_create(m, &tc, &t) != RW_OK) {
        rc = report_failure("train");
        goto done;
    }
    if (dst_active) {
        if (rw_trainer_set_dst(t, &dc) != RW_OK) {
            rc = report_failure("train");
            goto done;
        }
        rw_trainer_set_topology_callback(t, topology_log_update, &topo);
    }
    if (!f->quiet) {
        fprintf(stderr, "data: %s, %d training, %d validation, %d test samples\n", f->data,
                rw_dataset_count(train), rw_dataset_count(val), rw_dataset_count(test));
        print_model(m);
    }

    progress_bar bar;
    progress_init(&bar, f->epochs);
    if (f->quiet) bar.tty = 0;
    double train_seconds = 0, start = now();
    int64_t train_samples = 0;
    rw_eval_result test_r = {0}, val_r = {0};
    for (int e = 0; e < f->epochs; e++) {
        rw_epoch_stats s;
        if (rw_trainer_epoch(t, train, progress_update, &bar, &s) != RW_OK) {
            progress_clear(&bar);
            rc = report_failure("train");
            goto done;
        }
        progress_clear(&bar);
        double epoch_update_seconds = topo.total_seconds - topo.epoch_mark;
        topo.epoch_mark = topo.total_seconds;
        train_seconds += s.seconds;
        train_samples += rw_dataset_count(train);
        if ((rw_dataset_count(val) > 0 && rw_evaluate(m, val, &val_r) != RW_OK) ||
            rw_evaluate(m, test, &test_r) != RW_OK) {
            rc = report_failure("train");
            goto done;
        }
        if (!f->quiet) {
            char val_text[32] = "";
            if (rw_dataset_count(val) > 0)
                snprintf(val_text, sizeof val_text, "  val %.2f%%", 100.0 * val_r.accuracy);
            char topo_text[96] = "";
            if (dst_active)
                snprintf(topo_text, sizeof topo_text,
                         "  [%lld updates, %.2fs, itop %.3f, sparsity %.4f]",
                         (long long)topo.updates, topo.total_seconds, topo.itop_rate,
                         model_sparsity_now(m));
            fprintf(stderr,
                    "epoch %d/%d  step %lld  loss %.4f%s  test %.2f%%  %.0f samples/s  lr %.4g  "
                    "%.1fs%s\n",
                    e + 1, f->epochs, (long long)s.step, s.loss, val_text, 100.0 * test_r.accuracy,
                    s.samples_per_second, s.lr, now() - start, topo_text);
        }
        if (log) {
            int has_val = rw_dataset_count(val) > 0;
            json_t *o = json_pack(
                "{s:i, s:I, s:f, s:o, s:o, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "epoch", e + 1,
                "step", (json_int_t)s.step, "train_loss", s.loss, "val_accuracy",
                has_val ? json_real(val_r.accuracy) : json_null(), "val_loss",
                has_val ? json_real(val_r.loss) : json_null(), "test_accuracy", test_r.accuracy,
                "test_loss", test_r.loss, "samples_per_second", s.samples_per_second, "lr",
                (double)s.lr, "seconds", now() - start, "train_seconds", s.seconds,
                "update_seconds", epoch_update_seconds, "sparsity", model_sparsity_now(m));
            json_dumpf(o, log, JSON_COMPACT | JSON_REAL_PRECISION(10));
            fputc('\n', log);
            fflush(log);
            json_decref(o);
        }
    }
    if (f->out) {
        if (rw_model_save(m, f->out) != RW_OK) {
            rc = report_failure("train");
            goto done;
        }
        if (!f->quiet) fprintf(stderr, "saved %s\n", f->out);
    }
    if (dst_active && dc.final_sparsity > 0 && model_sparsity_now(m) < dc.final_sparsity - 1e-3)
        fprintf(stderr,
                "rewire train: warning: gradual pruning ended at sparsity %.4f, not %.4f: no "
                "update step came after --prune-end (try a smaller --update-every)\n",
                model_sparsity_now(m), dc.final_sparsity);
    /* One machine-readable closing line on stdout, for scripts. */
    printf("result: test_accuracy=%.4f test_loss=%.4f train_samples_per_second=%.0f "
           "train_seconds=%.2f sparsity=%.4f update_seconds=%.3f updates=%lld itop_rate=%.4f\n",
           test_r.accuracy, test_r.loss, train_seconds > 0 ? train_samples / train_seconds : 0.0,
           train_seconds, model_sparsity_now(m), topo.total_seconds, (long long)topo.updates,
           dst_active ? topo.itop_rate : 1.0 - model_sparsity_now(m));
done:
    if (log) fclose(log);
    rw_trainer_free(t);
    rw_model_free(m);
    rw_dataset_free(train);
    rw_dataset_free(val);
    rw_dataset_free(test);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    train_flags f = {.data = "fashion-mnist", .hidden = "1000,1000,1000", .sparsity = 0.95,
                     .lr = 0.05, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                     .gamma = 0.1, .slope = 0.01, .val_split = 0.0, .init = 2, .epochs = 10,
                     .batch = 128, .schedule = 2, .step_every = 1, .seed = 1};
    dst_flags_init(&f.dst);
    arg_spec base[] = {
        {"data", ARG_STRING, &f.data, "DIR",
         "'fashion-mnist', 'mnist' or a folder of IDX files (default fashion-mnist)", NULL, 0, 0},
        {"hidden", ARG_STRING, &f.hidden, "N,N,...", "hidden layer sizes (default 1000,1000,1000)",
         NULL, 0, 0},
        {"sparsity", ARG_DOUBLE, &f.sparsity, "S",
         "overall fraction of zero weights, 0 = dense (default 0.95)", NULL, 0, 0.999999},
        {"init", ARG_CHOICE, &f.init, "uniform|er|erk",
         "how sparsity is shared among layers (default erk)", init_names, 0, 0},
        {"dense-first", ARG_FLAG, &f.dense_first, NULL, "keep the first layer dense", NULL, 0, 0},
        {"dense-last", ARG_FLAG, &f.dense_last, NULL, "keep the last layer dense", NULL, 0, 0},
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
    };
    enum { N_BASE = sizeof base / sizeof base[0] };
    arg_spec specs[N_BASE + DST_FLAG_COUNT];
    memcpy(specs, base, sizeof base);
    dst_flags_specs(&f.dst, specs + N_BASE);
    arg_parser p = {"train", "rewire train [flags]",
                    "Trains a truly sparse MLP classifier: hidden layers from --hidden, the "
                    "--sparsity target shared among layers by --init, evaluated on the test split "
                    "after every epoch. Prints one closing line 'result: ...' on stdout.",
                    specs, N_BASE + DST_FLAG_COUNT, NULL, 0, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (f.threads > 0) rw_set_num_threads(f.threads);
    return run(&f);
}
