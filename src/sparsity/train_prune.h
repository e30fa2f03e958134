/* The shared parts of training from dense to sparse (rw_train_prune):
 * phases of training over rw_trainer, one-shot pruning rounds reported as
 * topology updates, and model copies. GMP and ISS-P are presets of the
 * dynamic-sparse-training machinery (train_prune.c); IMP (imp.c) and
 * Sparse Model Soups (soup.c) are rounds of prune and retrain. */
#ifndef RW_SPARSITY_TRAIN_PRUNE_H
#define RW_SPARSITY_TRAIN_PRUNE_H

#include "nn/model.h"
#include "nn/trainer.h"
#include "rewire.h"

/* One run of rw_train_prune: what every phase needs. */
typedef struct {
    const rw_train_config *train;
    const rw_prune_schedule *sched;
    const rw_dataset *data;
    rw_prune_epoch_fn on_epoch;
    rw_topology_fn on_prune;
    void *user;
    int first_epochs, phase_epochs; /* rw_prune_phase_epochs */
    int64_t steps;       /* optimizer steps done over the run */
    int epochs_done;     /* epochs finished over the run */
    int stopped;         /* on_epoch asked to stop */
    int64_t start_nnz, all; /* weights at the start, and in·out summed */
    int64_t rounds_done;
    double prune_seconds;
} prune_run;

/* Called on a trainer just created for a phase, before its first epoch
 * (IMP rewinds here); may be NULL. */
typedef rw_status (*phase_setup_fn)(rw_trainer *t, void *arg);

/* Trains `m` for one phase: a trainer with `epochs` epochs and data-order
 * seed `seed`, optional setup, then epochs until the trainer's schedule
 * ends (or on_epoch stops the run), reporting each as (phase, member). */
rw_status prune_phase(prune_run *r, rw_model *m, int phase, int member, int epochs,
                      uint64_t seed, phase_setup_fn setup, void *arg);

/* Prunes m by magnitude to overall density `density` (scope as the
 * schedule says) and reports it through on_prune as round `round`. */
rw_status prune_round(prune_run *r, rw_model *m, int round, double density);

/* The density round r of n reaches: d0 · (d_final / d0)^(r / n). */
double prune_round_density(double d0, double d_final, int r, int n);

/* A deep copy of a model whose layers are all CSR. */
rw_status prune_model_clone(const rw_model *m, rw_model **out);

/* Overall density: stored weights over in·out summed. */
double prune_model_density(const rw_model *m);

/* IMP's rewind point: every weight (with its position), bias and optimizer
 * state of a trainer, and its step. */
typedef struct imp_rewind imp_rewind;
rw_status imp_rewind_save(const rw_trainer *t, imp_rewind **out);
void imp_rewind_free(imp_rewind *p);

/* Gives the trainer of a pruned model the rewind point's values and
 * optimizer state at every stored position (each must have been stored at
 * the rewind point), its biases and their state, and its position: the
 * learning-rate schedule and the data order go on from that step. */
rw_status imp_rewind_apply(rw_trainer *t, const imp_rewind *p, int64_t steps_per_epoch);

rw_status imp_run(prune_run *r, rw_model *m);
rw_status soup_run(prune_run *r, rw_model *m);

#endif
