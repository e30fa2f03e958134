/* The dense-to-sparse flags of rewire train (--prune gmp|imp|soup|issp and
 * their settings), the schedule they build, and the run over
 * rw_train_prune with the same JSONL records as dynamic sparse training. */
#ifndef RW_CLI_TRAIN_PRUNE_H
#define RW_CLI_TRAIN_PRUNE_H

#include <stdio.h>

#include "cli/args.h"
#include "cli/train_dst.h"
#include "rewire.h"

/* -1 means "not given". */
typedef struct {
    int method, rounds, soup_size, scope;
    int rewind_step;
    double shrink;
} prune_flags;

#define PRUNE_FLAG_COUNT 6

void prune_flags_init(prune_flags *f);

/* Fills specs[0 .. PRUNE_FLAG_COUNT) with the flags, targeting f. */
void prune_flags_specs(prune_flags *f, arg_spec *specs);

/* Checks the flags against each other and builds the schedule. Without
 * --prune, *active is 0 and only flags that need --prune are refused. The
 * DST flags --prune-start, --prune-end, --update-every and
 * --initial-sparsity (the model's starting sparsity, default 0: dense)
 * apply to gmp and issp. Returns 0, or 2 after printing what is wrong. */
int prune_flags_config(const prune_flags *f, const dst_flags *dst, double sparsity, int init,
                       const rw_train_config *train, rw_prune_schedule *out, int *active,
                       double *model_sparsity);

/* Trains and prunes m, evaluating after every epoch, logging to `log`
 * (JSONL, may be NULL), saving to `out` (may be NULL) and printing the
 * closing 'result:' line. Returns the exit code. */
int train_prune_run(rw_model *m, const rw_train_config *train, const rw_prune_schedule *s,
                    const rw_dataset *data, const rw_dataset *val, const rw_dataset *test,
                    FILE *log, int quiet, const char *out);

#endif
