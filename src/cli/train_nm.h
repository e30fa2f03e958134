/* The N:M-training-from-scratch flags of rewire train (--nm N:M
 * --nm-method ste|srste|decay ...), their checks, and the JSONL line of
 * every epoch. */
#ifndef RW_CLI_TRAIN_NM_H
#define RW_CLI_TRAIN_NM_H

#include <stdio.h>

#include "cli/args.h"
#include "rewire.h"

typedef struct {
    const char *pattern;  /* "2:4", or NULL: no N:M training */
    int method, layers;   /* -1: not given */
    double lambda, decay_end; /* -1: not given */
} nm_flags;

#define NM_FLAG_COUNT 5

void nm_flags_init(nm_flags *f);

/* Fills specs[0 .. NM_FLAG_COUNT) with the flags, targeting f. */
void nm_flags_specs(nm_flags *f, arg_spec *specs);

/* After parsing: checks that no flag --nm excludes was given (argv tells
 * which were), then as nm_flags_config. Returns 0, or 2 after printing
 * what is wrong. */
int nm_flags_check(const nm_flags *f, int argc, char **argv, rw_nm_train_config *config,
                   int *active);

/* Checks the pattern and that the N:M flags go together; fills *config
 * and sets *active. Returns 0, or 2 after printing what is wrong. Called
 * again on resume, once the flags are the checkpoint's. */
int nm_flags_config(const nm_flags *f, rw_nm_train_config *config, int *active);

/* Resuming: the N:M training the checkpoint brought back (in the model)
 * must be what its flags (active, config) ask for. Returns 0, or 1 after
 * printing the difference, naming `path`. */
int nm_resume(const rw_model *model, const char *path, int active,
              const rw_nm_train_config *config);

#endif
