/* The dense-to-sparse flags of rewire train (--prune gmp|imp|soup|issp and
 * their settings), the schedule they build, the records of every epoch, and
 * the run of imp and soup over rw_train_prune with the same JSONL records
 * as dynamic sparse training. gmp and issp are one training with a DST
 * configuration (rw_prune_schedule_dst_config): cmd_train.c runs them in
 * its own loop, which checkpoints and resumes. */
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

/* "gmp", "imp", "soup" or "issp". */
const char *prune_method_name(rw_prune_method method);

/* The plan of the run on stderr: "--prune gmp to sparsity 0.9 from ...". */
void prune_print_plan(const rw_model *m, const rw_train_config *train, const rw_prune_schedule *s);

#endif
