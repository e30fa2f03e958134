/* The dynamic sparse training flags of rewire train, the config they
 * build, and the JSONL record of every topology update. */
#ifndef RW_CLI_TRAIN_DST_H
#define RW_CLI_TRAIN_DST_H

#include <stdio.h>

#include "cli/args.h"
#include "rewire.h"

/* -1 (or a negative value) means "not given: the preset's". */
typedef struct {
    int method, drop, grow, update_every, schedule, redistribute, window;
    double drop_fraction, update_until, mest_lambda, initial_sparsity, prune_start, prune_end;
    /* Input-level DST (0 / -1: not given). */
    int input_budget, input_select;
    double input_start, input_end;
} dst_flags;

#define DST_FLAG_COUNT 13
#define DST_INPUT_FLAG_COUNT 4

void dst_flags_init(dst_flags *f);

/* Fills specs[0 .. DST_FLAG_COUNT) with the flags, targeting f. */
void dst_flags_specs(dst_flags *f, arg_spec *specs);

/* Fills specs[0 .. DST_INPUT_FLAG_COUNT) with the input-level DST flags
 * (--input-budget, --input-select, --input-start, --input-end). */
void dst_input_flags_specs(dst_flags *f, arg_spec *specs);

/* Builds the config from the preset and the flags given. *active is 0 when
 * nothing would ever change the topology; *model_sparsity is the sparsity
 * to create the model at (the initial one for gradual pruning, else
 * `sparsity`). Returns 0, or 2 after printing what is wrong. */
int dst_flags_config(const dst_flags *f, double sparsity, int seed, rw_dst_config *out,
                     int *active, double *model_sparsity);

/* What the topology callback keeps for the epoch lines and the summary. */
int dst_resume(rw_trainer *t, const char *path, int active, const rw_dst_config *c);

#endif
