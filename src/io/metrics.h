/* The metrics log: one JSON object per line (JSONL), written by the run
 * loop (run/run.c) as a run goes, so any plotting tool can read it while
 * it grows. Lines by kind:
 *   epoch     {"epoch", "step", "train_loss", "val_accuracy", "val_loss",
 *              "test_accuracy", "test_loss", "samples_per_second", "lr",
 *              "seconds", "train_seconds", "update_seconds", "sparsity"}
 *   pruning   the same (null where a soup has no training of its own) plus
 *             {"prune", "phase", "member", "phase_epoch", "phase_epochs"}
 *   topology  {"event": "topology", "update", "step", "epoch", ...} after
 *             every topology update (rw_topology_stats)
 * (input-level DST adds "inputs_kept" to both, and "inputs_removed" to the
 * topology line)
 *   nm        {"event": "nm", "epoch", "step", "pattern", "method",
 *             "layers", "mask_change", "decay_beta"} after each epoch of
 *             N:M training
 *   lm        {"event": "lm", "step", "steps", "train_loss", "val_loss",
 *             "val_bits_per_byte", "whole_split", "lr", "tokens_per_second",
 *             "seconds", "sparsity", "updates", "itop_rate"} at every
 *             validation estimate of a language model's run
 * Reals are written with 10 significant digits. */
#ifndef RW_IO_METRICS_H
#define RW_IO_METRICS_H

#include <stdio.h>

#include "rewire.h"

/* The line of a finished epoch (and, for pruning methods, its phase). */
void metrics_epoch_line(FILE *log, const rw_run_epoch *e);

/* The line of a topology update. */
void metrics_topology_line(FILE *log, const rw_topology_stats *s);

/* The line of an epoch of N:M training. */
void metrics_nm_line(FILE *log, const rw_nm_train_config *c, int epoch, long long step,
                     double mask_change, double beta);

/* The line of a language model's validation estimate. */
/* attn_density[0..n_attn): each attention layer's score entries computed
 * over causal dense attention's since the last line ("attention_density",
 * written when n_attn > 0). */
void metrics_lm_line(FILE *log, const rw_lm_report *r, const double *attn_density, int n_attn);

/* The names the log and the command line give. */
const char *metrics_prune_name(rw_prune_method m);
const char *metrics_nm_method_name(rw_nm_method m);
const char *metrics_nm_layers_name(rw_nm_layers l);

#endif
