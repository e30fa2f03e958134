/* Data-parallel training over MPI (rewire.h, "Data-parallel training"):
 * the one module that speaks MPI. Without MPI (a build with
 * -DREWIRE_MPI=OFF, or a program not started by mpirun) there is one
 * process and every call here does nothing. */
#ifndef RW_RUN_DIST_H
#define RW_RUN_DIST_H

#include "nn/trainer.h"
#include "rewire.h"

/* Gives the trainer its process's slice of every global batch (whole
 * samples of `unit` columns: 1, or a language model's context) and the
 * hooks that all-reduce its gradients after backward, gather the global
 * batch for topology updates, and compare every layer's pattern across
 * processes after each update. Nothing with one process. */
rw_status dist_attach(rw_trainer *t, int unit);

/* Compares a hash of every parameter's pattern and values across the
 * processes; RW_ERR_INVALID_ARGUMENT naming the first layer that differs,
 * and `when` ("after topology update 3"). RW_OK with one process. */
rw_status dist_check_model(const rw_model *m, const char *when);

/* 1 if this process writes the run's files (process 0, or alone). */
static inline int dist_writes_files(void) { return rw_dist_rank() == 0; }

/* The trainer's statistics (rw_run_dist_stats); 0 without the hooks. */
int dist_stats(const rw_trainer *t, rw_dist_stats *out);

#endif
