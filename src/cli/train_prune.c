#include "cli/train_prune.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"

static const char *method_names[] = {"gmp", "imp", "soup", "issp", NULL};
static const char *scope_names[] = {"layer", "global", NULL};

void prune_flags_init(prune_flags *f)
{
    f->method = f->rounds = f->soup_size = f->scope = f->rewind_step = -1;
    f->shrink = -1;
}

void prune_flags_specs(prune_flags *f, arg_spec *s)
{
    arg_spec specs[PRUNE_FLAG_COUNT] = {
        {"prune", ARG_CHOICE, &f->method, "gmp|imp|soup|issp",
         "train from dense (or --initial-sparsity) to --sparsity: gradual magnitude pruning, "
         "iterative magnitude pruning with rewinding, sparse model soups, or ISS-P soft "
         "shrinkage; --epochs is the whole budget", method_names, 0, 0},
        {"rounds", ARG_INT, &f->rounds, "N",
         "imp, soup: prune-retrain rounds (default imp 4, soup 3); --epochs is split into "
         "whole-epoch phases: 1 + N (imp) or 1 + N x --soup-size (soup)", NULL, 1, 1000},
        {"rewind-step", ARG_INT, &f->rewind_step, "K",
         "imp: rewind survivors to their weights and optimizer state after step K of the first "
         "training (default: 5% of a retrain phase's steps)", NULL, 0, 2147483647.0},
        {"soup-size", ARG_INT, &f->soup_size, "K",
         "soup: retrains averaged per round, each with its own data order (default 3)", NULL, 1,
         1000},
        {"prune-scope", ARG_CHOICE, &f->scope, "layer|global",
         "imp, soup: prune each layer by the same fraction, or by one global magnitude "
         "threshold (default layer)", scope_names, 0, 0},
        {"shrink", ARG_DOUBLE, &f->shrink, "A",
         "issp: multiply the weights pruning selects by A instead of removing them; removed at "
         "--prune-end (default 0.5)", NULL, 1e-6, 0.999999},
    };
    memcpy(s, specs, sizeof specs);
}

static int flag_error(const char *msg, const char *a, const char *b)
{
    fprintf(stderr, "rewire train: ");
    fprintf(stderr, msg, a, b);
    fprintf(stderr, "\n(see 'rewire train --help')\n");
    return 2;
}

int prune_flags_config(const prune_flags *f, const dst_flags *dst, double sparsity, int init,
                       const rw_train_config *train, rw_prune_schedule *s, int *active,
                       double *model_sparsity)
{
    *active = f->method >= 0;
    if (!*active) {
        const char *needs = f->rounds >= 0        ? "--rounds"
                            : f->rewind_step >= 0 ? "--rewind-step"
                            : f->soup_size >= 0   ? "--soup-size"
                            : f->scope >= 0       ? "--prune-scope"
                            : f->shrink >= 0      ? "--shrink"
                                                  : NULL;
        return needs ? flag_error("%s needs --prune%s", needs, "") : 0;
    }
    const char *name = method_names[f->method];
    rw_prune_method method = (rw_prune_method)f->method;
    int rounds = method == RW_PRUNE_IMP || method == RW_PRUNE_SOUP;
    if (dst->method != 0 || dst->drop >= 0 || dst->grow >= 0 || dst->drop_fraction >= 0 ||
        dst->schedule >= 0 || dst->update_until >= 0 || dst->redistribute >= 0 ||
        dst->window >= 0 || dst->mest_lambda >= 0)
        return flag_error("--prune %s does not combine with the dynamic sparse training flags "
                          "(--dst, --drop, --grow, --drop-fraction, ...)%s", name, "");
    if (f->rounds >= 0 && !rounds) return flag_error("--rounds applies to --prune imp|soup, not %s", name, "");
    if (f->scope >= 0 && !rounds) return flag_error("--prune-scope applies to --prune imp|soup, not %s", name, "");
    if (f->rewind_step >= 0 && method != RW_PRUNE_IMP)
        return flag_error("--rewind-step applies to --prune imp, not %s", name, "");
    if (f->soup_size >= 0 && method != RW_PRUNE_SOUP)
        return flag_error("--soup-size applies to --prune soup, not %s", name, "");
    if (f->shrink >= 0 && method != RW_PRUNE_ISSP)
        return flag_error("--shrink applies to --prune issp, not %s", name, "");
    if (rounds && (dst->prune_start >= 0 || dst->prune_end >= 0 || dst->update_every >= 0))
        return flag_error("--prune-start, --prune-end and --update-every apply to --prune "
                          "gmp|issp, not %s%s", name, "");
    if (!(sparsity > 0)) return flag_error("--prune %s needs a target --sparsity above 0%s", name, "");
    *s = rw_prune_schedule_preset(method, sparsity);
    s->distribution = (rw_distribution)init;
    if (f->rounds >= 0) s->rounds = f->rounds;
    if (f->scope >= 0) s->scope = (rw_prune_scope)f->scope;
    if (f->rewind_step >= 0) s->rewind_step = f->rewind_step;
    if (f->soup_size >= 0) s->soup_size = f->soup_size;
    if (f->shrink >= 0) s->shrink = f->shrink;
    if (dst->prune_start >= 0) s->prune_start = dst->prune_start;
    if (dst->prune_end >= 0) s->prune_end = dst->prune_end;
    if (dst->update_every >= 0) s->update_every = dst->update_every;
    if (!rounds && !(s->prune_start < s->prune_end)) {
        fprintf(stderr, "rewire train: --prune-start %g must be below --prune-end %g\n"
                        "(see 'rewire train --help')\n", s->prune_start, s->prune_end);
        return 2;
    }
    *model_sparsity = dst->initial_sparsity >= 0 ? dst->initial_sparsity : 0.0;
    if (!(*model_sparsity < sparsity)) {
        fprintf(stderr, "rewire train: --initial-sparsity %g must be below --sparsity %g\n"
                        "(see 'rewire train --help')\n", *model_sparsity, sparsity);
        return 2;
    }
    int first, phase;
    if (rw_prune_phase_epochs(train, s, &first, &phase) != RW_OK) {
        fprintf(stderr, "rewire train: --prune %s: %s\n(see 'rewire train --help')\n", name,
                rw_last_error());
        return 2;
    }
    return 0;
}

/* ---- The run ------------------------------------------------------------ */

typedef struct {
    const rw_prune_schedule *s;
    const rw_dataset *val, *test;
    FILE *log;
    int quiet;
    double start, train_seconds;
    int64_t train_samples;
    int epoch;               /* epochs logged over the run */
    int64_t steps;           /* optimizer steps over the run */
    rw_status eval_status;
    rw_eval_result test_r;
    int last_round;          /* round of the members' accuracies below */
    double member_sum, member_best;
    int members;
    topology_log topo;
} prune_cli;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void prune_epoch_report(FILE *log, int quiet, rw_prune_method method, const rw_prune_epoch *e,
                        int logged_epoch, const rw_eval_result *val, const rw_eval_result *test,
                        double update_seconds, double seconds)
{
    const rw_epoch_stats *s = e->stats;
    double sparsity = rw_model_sparsity(e->model);
    if (!quiet) {
        char who[48] = "";
        if (e->member >= 0 && method == RW_PRUNE_SOUP && e->phase > 0)
            snprintf(who, sizeof who, " member %d", e->member + 1);
        else if (e->member < 0)
            snprintf(who, sizeof who, " soup");
        fprintf(stderr, "phase %d%s epoch %d/%d  step %lld", e->phase, who, e->epoch, e->epochs,
                (long long)e->steps);
        if (s) fprintf(stderr, "  loss %.4f", s->loss);
        if (val) fprintf(stderr, "  val %.2f%%", 100.0 * val->accuracy);
        fprintf(stderr, "  test %.2f%%  sparsity %.4f  %.1fs\n", 100.0 * test->accuracy, sparsity,
                seconds);
    }
    if (log) {
        json_t *o = json_pack(
            "{s:i, s:I, s:o, s:o, s:o, s:f, s:f, s:o, s:o, s:f, s:o, s:f, s:f, s:s, s:i, s:i, "
            "s:i, s:i}",
            "epoch", logged_epoch, "step", (json_int_t)e->steps, "train_loss",
            s ? json_real(s->loss) : json_null(), "val_accuracy",
            val ? json_real(val->accuracy) : json_null(), "val_loss",
            val ? json_real(val->loss) : json_null(), "test_accuracy", test->accuracy,
            "test_loss", test->loss, "samples_per_second",
            s ? json_real(s->samples_per_second) : json_null(), "lr",
            s ? json_real((double)s->lr) : json_null(), "seconds", seconds, "train_seconds",
            s ? json_real(s->seconds) : json_null(), "update_seconds", update_seconds,
            "sparsity", sparsity, "prune", method_names[method], "phase", e->phase, "member",
            e->member, "phase_epoch", e->epoch, "phase_epochs", e->epochs);
        json_dumpf(o, log, JSON_COMPACT | JSON_REAL_PRECISION(10));
        fputc('\n', log);
        fflush(log);
        json_decref(o);
    }
}

void prune_print_plan(const rw_model *m, const rw_train_config *train, const rw_prune_schedule *s)
{
    int first = train->epochs, phase = 0;
    rw_prune_phase_epochs(train, s, &first, &phase);
    if (s->method == RW_PRUNE_IMP || s->method == RW_PRUNE_SOUP)
        fprintf(stderr, "--prune %s to sparsity %g: first training %d epochs, then %d rounds "
                        "of %d x %d epochs, %d threads\n",
                method_names[s->method], s->sparsity, first, s->rounds,
                s->method == RW_PRUNE_SOUP ? s->soup_size : 1, phase, rw_get_num_threads());
    else
        fprintf(stderr, "--prune %s to sparsity %g from %.4f, steps %.0f%%..%.0f%% of %d "
                        "epochs, %d threads\n",
                method_names[s->method], s->sparsity, rw_model_sparsity(m),
                100 * s->prune_start, 100 * s->prune_end, train->epochs, rw_get_num_threads());
}

const char *prune_method_name(rw_prune_method method) { return method_names[method]; }

static int on_epoch(const rw_prune_epoch *e, void *user)
{
    prune_cli *c = user;
    rw_eval_result val_r = {0};
    int has_val = rw_dataset_count(c->val) > 0;
    if ((has_val && (c->eval_status = rw_evaluate(e->model, c->val, &val_r)) != RW_OK) ||
        (c->eval_status = rw_evaluate(e->model, c->test, &c->test_r)) != RW_OK)
        return 1;
    c->epoch++;
    c->steps = e->steps;
    const rw_epoch_stats *s = e->stats;
    if (s) {
        c->train_seconds += s->seconds;
        c->train_samples += (int64_t)(s->samples_per_second * s->seconds + 0.5);
    }
    /* A soup's members at the end of their retrain, for the comparison
     * with the soup they make. */
    if (c->s->method == RW_PRUNE_SOUP && e->member >= 0 && e->epoch == e->epochs && e->phase > 0) {
        if (e->phase != c->last_round) c->last_round = e->phase, c->member_sum = 0, c->members = 0,
                                       c->member_best = 0;
        c->member_sum += c->test_r.accuracy;
        c->members++;
        if (c->test_r.accuracy > c->member_best) c->member_best = c->test_r.accuracy;
    }
    prune_epoch_report(c->log, c->quiet, c->s->method, e, c->epoch, has_val ? &val_r : NULL,
                       &c->test_r, c->topo.total_seconds, now() - c->start);
    return 0;
}

/* rw_topology_fn: the same JSONL record as a dynamic-sparse-training update. */
static void on_prune(const rw_topology_stats *s, void *user)
{
    topology_log_update(s, &((prune_cli *)user)->topo);
}

int train_prune_run(rw_model *m, const rw_train_config *train, const rw_prune_schedule *s,
                    const rw_dataset *data, const rw_dataset *val, const rw_dataset *test,
                    FILE *log, int quiet, const char *out)
{
    prune_cli c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.val = val;
    c.test = test;
    c.log = log;
    c.quiet = quiet;
    c.start = now();
    c.topo.log = log;
    int first, phase;
    if (rw_prune_phase_epochs(train, s, &first, &phase) != RW_OK) return report_failure("train");
    if (!quiet) {
        fprintf(stderr, "data: %d training, %d validation, %d test samples\n",
                rw_dataset_count(data), rw_dataset_count(val), rw_dataset_count(test));
        prune_print_plan(m, train, s);
    }
    int64_t spe = (rw_dataset_count(data) + train->batch - 1) / train->batch;
    if (s->method == RW_PRUNE_IMP && s->rewind_step >= (int64_t)phase * spe) {
        fprintf(stderr, "rewire train: --rewind-step: rewind step %lld is not below the %lld steps "
                        "of a retrain phase (%d epochs of %lld steps)\n(see 'rewire train --help')\n",
                (long long)s->rewind_step, (long long)phase * spe, phase, (long long)spe);
        return 2;
    }
    rw_status st = rw_train_prune(m, train, s, data, on_epoch, on_prune, &c);
    if (c.eval_status != RW_OK) return report_failure("train");
    if (st != RW_OK) return report_failure("train");
    if (c.epoch == 0 && rw_evaluate(m, test, &c.test_r) != RW_OK) return report_failure("train");
    if (rw_model_sparsity(m) < s->sparsity - 1e-3)
        fprintf(stderr,
                "rewire train: warning: pruning ended at sparsity %.4f, not %.4f: no pruning "
                "step came after --prune-end (try a smaller --update-every)\n",
                rw_model_sparsity(m), s->sparsity);
    if (out) {
        if (rw_model_save(m, out) != RW_OK) return report_failure("train");
        if (!quiet) fprintf(stderr, "saved %s\n", out);
    }
    printf("result: test_accuracy=%.4f test_loss=%.4f train_samples_per_second=%.0f "
           "train_seconds=%.2f sparsity=%.4f update_seconds=%.3f updates=%lld itop_rate=%.4f "
           "prune=%s steps=%lld",
           c.test_r.accuracy, c.test_r.loss,
           c.train_seconds > 0 ? (double)c.train_samples / c.train_seconds : 0.0, c.train_seconds,
           rw_model_sparsity(m), c.topo.total_seconds, (long long)c.topo.updates,
           c.topo.updates ? c.topo.itop_rate : 1.0, method_names[s->method], (long long)c.steps);
    if (s->method == RW_PRUNE_SOUP && c.members > 0)
        printf(" member_accuracy_mean=%.4f member_accuracy_best=%.4f members=%d",
               c.member_sum / c.members, c.member_best, c.members);
    printf("\n");
    return 0;
}
