#include "cli/train_dst.h"

#include <stdlib.h>
#include <string.h>

static const char *method_names[] = {"static", "set", "rigl", "snfs", "mest", "granet", "hebbian",
                                     NULL};
static const char *drop_names[] = {"magnitude", "set", "mest", "random", NULL};
static const char *grow_names[] = {"random", "gradient", "momentum", "hebbian", "unfired", NULL};
static const char *schedule_names[] = {"constant", "cosine", NULL};
static const char *redistribute_names[] = {"none", "momentum", NULL};
static const char *input_names[] = {"importance", "random", "variance", NULL};

void dst_flags_init(dst_flags *f)
{
    f->method = 0;
    f->drop = f->grow = f->update_every = f->schedule = f->redistribute = f->window = -1;
    f->drop_fraction = f->update_until = f->mest_lambda = f->initial_sparsity = f->prune_start =
        f->prune_end = -1;
    f->input_budget = 0;
    f->input_select = -1;
    f->input_start = f->input_end = -1;
}

void dst_input_flags_specs(dst_flags *f, arg_spec *s)
{
    arg_spec specs[DST_INPUT_FLAG_COUNT] = {
        {"input-budget", ARG_INT, &f->input_budget, "K",
         "input-level DST: remove whole inputs from the first layer during training until K "
         "remain, their connections regrown among the rest; the model then reads only those "
         "(default 0: off)", NULL, 0, 16777216},
        {"input-select", ARG_CHOICE, &f->input_select, "NAME",
         "which inputs go first: importance (the |w| mass of their connections times their "
         "RMS), random, or variance (the least varying; needs --normalize feature) (default "
         "importance)", input_names, 0, 0},
        {"input-start", ARG_DOUBLE, &f->input_start, "F",
         "input removal starts at this fraction of training (default 0.1)", NULL, 0, 1},
        {"input-end", ARG_DOUBLE, &f->input_end, "F",
         "input removal reaches --input-budget at this fraction of training (default 0.5)", NULL,
         0, 1},
    };
    memcpy(s, specs, sizeof specs);
}

void dst_flags_specs(dst_flags *f, arg_spec *s)
{
    arg_spec specs[DST_FLAG_COUNT] = {
        {"dst", ARG_CHOICE, &f->method, "NAME",
         "dynamic sparse training: static|set|rigl|snfs|mest|granet|hebbian (default static)",
         method_names, 0, 0},
        {"drop", ARG_CHOICE, &f->drop, "NAME",
         "drop criterion: magnitude|set|mest|random (default: preset's)", drop_names, 0, 0},
        {"grow", ARG_CHOICE, &f->grow, "NAME",
         "grow criterion: random|gradient|momentum|hebbian|unfired (default: preset's)", grow_names, 0, 0},
        {"update-every", ARG_INT, &f->update_every, "N",
         "steps between topology updates (or --prune gmp|issp pruning steps), 0 = every epoch, "
         "every 100 steps in rewire lm "
         "(default: preset's; --prune 100)", NULL, 0,
         2147483647.0},
        {"drop-fraction", ARG_DOUBLE, &f->drop_fraction, "F",
         "fraction of each layer's weights replaced per update (default: preset's)", NULL, 0,
         0.999},
        {"drop-schedule", ARG_CHOICE, &f->schedule, "constant|cosine",
         "decay of the drop fraction (default: preset's)", schedule_names, 0, 0},
        {"update-until", ARG_DOUBLE, &f->update_until, "F",
         "no drop and grow after this fraction of training (default: preset's)", NULL, 1e-9, 1},
        {"redistribute", ARG_CHOICE, &f->redistribute, "none|momentum",
         "share regrowth among layers by mean momentum, as SNFS (default: preset's)",
         redistribute_names, 0, 0},
        {"window", ARG_INT, &f->window, "N",
         "recent batches for momentum and hebbian growth (default: preset's)", NULL, 1, 64},
        {"mest-lambda", ARG_DOUBLE, &f->mest_lambda, "L",
         "weight of |gradient| in the mest drop score (default 1)", NULL, 0, 1e9},
        {"initial-sparsity", ARG_DOUBLE, &f->initial_sparsity, "S",
         "start at this sparsity and prune gradually to --sparsity (granet: 0.5, or half of --sparsity when that is 0.5 or less; --prune: 0)", NULL, 0,
         0.999999},
        {"prune-start", ARG_DOUBLE, &f->prune_start, "F",
         "gradual pruning starts at this fraction of training (default 0; --prune gmp|issp 0.1)",
         NULL, 0, 1},
        {"prune-end", ARG_DOUBLE, &f->prune_end, "F",
         "gradual pruning ends at this fraction of training (granet: 0.5; --prune gmp|issp 0.6)",
         NULL, 0, 1},
    };
    memcpy(s, specs, sizeof specs);
}

int dst_flags_config(const dst_flags *f, double sparsity, int seed, rw_dst_config *c, int *active,
                     double *model_sparsity)
{
    *c = rw_dst_config_preset((rw_dst_method)f->method);
    c->seed = (uint64_t)seed;
    if (f->drop >= 0) c->drop = (rw_drop_criterion)f->drop;
    if (f->grow >= 0) c->grow = (rw_grow_criterion)f->grow;
    if (f->update_every >= 0) c->update_every = f->update_every;
    if (f->drop_fraction >= 0) c->drop_fraction = f->drop_fraction;
    if (f->schedule >= 0) c->drop_schedule = (rw_drop_schedule)f->schedule;
    if (f->update_until >= 0) c->update_until = f->update_until;
    if (f->redistribute >= 0) c->redistribute = f->redistribute;
    if (f->window >= 0) c->window = f->window;
    if (f->mest_lambda >= 0) c->mest_lambda = (float)f->mest_lambda;
    if (f->initial_sparsity >= 0)
        c->initial_sparsity = f->initial_sparsity;
    else if (c->initial_sparsity > 0 && !(c->initial_sparsity < sparsity))
        /* The preset's start (GraNet's 50%) is not below a low target: start
         * at half the target instead, still sparse and still pruned to it. */
        c->initial_sparsity = sparsity / 2;
    if (f->prune_start >= 0) c->prune_start = f->prune_start;
    if (f->prune_end >= 0) c->prune_end = f->prune_end;
    *model_sparsity = sparsity;
    if (c->initial_sparsity > 0) {
        if (!(c->initial_sparsity < sparsity)) {
            fprintf(stderr,
                    "rewire train: --initial-sparsity %g must be below --sparsity %g (gradual "
                    "pruning goes from the first to the second)\n",
                    c->initial_sparsity, sparsity);
            return 2;
        }
        *model_sparsity = c->initial_sparsity;
        c->final_sparsity = sparsity;
    }
    if (f->input_budget > 0) {
        c->input_budget = f->input_budget;
        if (f->input_select >= 0) c->input_select = (rw_input_criterion)f->input_select;
        if (f->input_start >= 0) c->input_start = f->input_start;
        if (f->input_end >= 0) c->input_end = f->input_end;
        if (!(c->input_start <= c->input_end)) {
            fprintf(stderr, "rewire train: --input-start %g is after --input-end %g\n",
                    c->input_start, c->input_end);
            return 2;
        }
    } else if (f->input_select >= 0 || f->input_start >= 0 || f->input_end >= 0) {
        fprintf(stderr, "rewire train: --input-select, --input-start and --input-end need "
                        "--input-budget K\n(see 'rewire train --help')\n");
        return 2;
    }
    if ((f->drop >= 0 || f->grow >= 0) && !(c->drop_fraction > 0)) {
        fprintf(stderr, "rewire train: --drop and --grow need --drop-fraction above 0 (or a --dst "
                        "preset other than static)\n");
        return 2;
    }
    *active = c->drop_fraction > 0 || c->final_sparsity > 0 || c->input_budget > 0;
    if (*active && sparsity == 0) {
        fprintf(stderr, "rewire train: dynamic sparse training needs --sparsity above 0\n");
        return 2;
    }
    return 0;
}

/* The first setting in which a and b differ, written to buf; 0 if none. */
static int dst_config_differs(const rw_dst_config *a, const rw_dst_config *b, char *buf,
                              size_t size)
{
#define INT_FIELD(f)                                                                             \
    if ((long long)a->f != (long long)b->f)                                                      \
        return snprintf(buf, size, #f " %lld, not %lld", (long long)a->f, (long long)b->f), 1;
#define REAL_FIELD(f)                                                                            \
    if ((double)a->f != (double)b->f)                                                            \
        return snprintf(buf, size, #f " %.17g, not %.17g", (double)a->f, (double)b->f), 1;
    INT_FIELD(drop) INT_FIELD(grow) INT_FIELD(update_every) REAL_FIELD(drop_fraction)
    INT_FIELD(drop_schedule) REAL_FIELD(update_until) INT_FIELD(redistribute) INT_FIELD(window)
    REAL_FIELD(mest_lambda) REAL_FIELD(final_sparsity) INT_FIELD(final_distribution)
    REAL_FIELD(prune_start) REAL_FIELD(prune_end) REAL_FIELD(initial_sparsity) REAL_FIELD(shrink)
    INT_FIELD(seed) INT_FIELD(input_budget)
    /* The input settings matter only with a budget (a preset fills them). */
    if (a->input_budget > 0) {
        INT_FIELD(input_select) REAL_FIELD(input_start) REAL_FIELD(input_end)
    }
#undef INT_FIELD
#undef REAL_FIELD
    return 0;
}

int dst_resume(rw_trainer *t, const char *path, int active, const rw_dst_config *c)
{
    rw_dst_config saved;
    int has = rw_trainer_dst(t, &saved, NULL);
    char why[256];
    if (active && !has) {
        fprintf(stderr, "rewire train: %s: the checkpoint's flags turn dynamic sparse training on, "
                        "but it holds no dynamic-sparse-training state (metadata dst.config is "
                        "missing)\n", path);
        return 1;
    }
    if (!active && has) {
        fprintf(stderr, "rewire train: %s: the checkpoint holds dynamic-sparse-training state "
                        "(metadata dst.config), but its flags turn dynamic sparse training off\n",
                path);
        return 1;
    }
    if (!has) return 0;
    if (dst_config_differs(&saved, c, why, sizeof why)) {
        fprintf(stderr, "rewire train: %s: the checkpoint's dynamic-sparse-training settings "
                        "(metadata dst.config) are not those of its flags (%s)\n", path, why);
        return 1;
    }
    return 0;
}
