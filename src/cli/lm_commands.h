/* The subcommands of `rewire lm` (cmd_lm.c: train; lm_tools.c: eval,
 * generate; lm_convert.c: import, export; lm_prune.c: prune). Each returns the process exit status as commands.h says. */
#ifndef RW_CLI_LM_COMMANDS_H
#define RW_CLI_LM_COMMANDS_H

#include "rewire.h"

int cmd_lm_eval(int argc, char **argv);
int cmd_lm_generate(int argc, char **argv);
/* lm_convert.c: GPT-2 checkpoints (Hugging Face layout) in and out. */
int cmd_lm_import(int argc, char **argv);
int cmd_lm_export(int argc, char **argv);
/* lm_prune.c: pruning after training (magnitude, Wanda, SparseGPT). */
int cmd_lm_prune(int argc, char **argv);
/* lm_sparsed.c: per-head sparsed attention blocks from calibration text. */
int cmd_lm_sparsed(int argc, char **argv);

/* Loads the language model at path into *out. A file that fails to load,
 * or a classifier (suggesting `rewire INSTEAD` when instead is not NULL),
 * is reported as `command` and gives the exit status (1); 0 otherwise. */
int lm_load_model(const char *path, const char *command, const char *instead, rw_model **out);

/* The tokenizer of a model: `spec` when given, else the one its file
 * names (info "tokenizer"), else bytes for a 256-token model. Prints the
 * error (as `command`) and returns 1 when there is none. */
int lm_model_tokenizer(const rw_model *m, const char *spec, const char *command,
                       rw_tokenizer **out);

/* --attention SPEC of eval and generate: the model attends as spec says
 * (NULL: as saved). Prints the error (as `command`) and returns 2 for a bad
 * spec; 0 otherwise. */
int lm_set_attention(rw_model *m, const char *spec, const char *command);

#endif
