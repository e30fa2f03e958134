#include "cli/train_prune.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

