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

/* One finished epoch of a --prune run: the stderr line (unless quiet) and
 * the JSONL record (log may be NULL) with its phase, member and epoch of
 * the phase. logged_epoch counts the epochs of the whole run; val is NULL
 * without a validation split; update_seconds is the pruning time so far
 * and seconds the time since the start. Shared by rw_train_prune's runs
 * (imp, soup) and the checkpointable loop of gmp and issp (cmd_train.c),
 * so that both write the same lines. */
void prune_epoch_report(FILE *log, int quiet, rw_prune_method method, const rw_prune_epoch *e,
                        int logged_epoch, const rw_eval_result *val, const rw_eval_result *test,
                        double update_seconds, double seconds);

/* imp and soup (it would run gmp and issp too, without checkpoints):
 * trains and prunes m, evaluating after every epoch, logging to `log`
 * (JSONL, may be NULL), saving to `out` (may be NULL) and printing the
 * closing 'result:' line. Returns the exit code. */
int train_prune_run(rw_model *m, const rw_train_config *train, const rw_prune_schedule *s,
                    const rw_dataset *data, const rw_dataset *val, const rw_dataset *test,
                    FILE *log, int quiet, const char *out);

#endif
