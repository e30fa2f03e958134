/* The run (run.c, lm_run.c): what the loop of a classifier and of a
 * language model share, and the pieces both call. */
#ifndef RW_RUN_RUN_INTERNAL_H
#define RW_RUN_RUN_INTERNAL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>

#include "core/rng.h"
#include "rewire.h"

struct rw_run {
    rw_model *model;
    rw_trainer *t;            /* NULL for IMP and soups (a trainer per phase) */
    rw_train_config train;
    int dst_active, gradual, rounds, nm_active;
    rw_dst_config dst;
    rw_prune_schedule prune;
    rw_nm_train_config nm;
    char *log_path, *checkpoint_path, *flags, *out_path, *resume_path;
    int64_t checkpoint_every;
    rw_progress_fn progress;
    rw_run_epoch_fn on_epoch;
    rw_topology_fn on_topology;
    void *user;
    FILE *log;
    long log_bytes;           /* resumed: the log's length when the checkpoint was written */
    int configured;
    int64_t saved_step;       /* last checkpoint written or resumed from, or -1 */
    /* Topology updates so far, for the log and the result. */
    int64_t updates;
    double total_update_seconds, epoch_mark, itop_rate;
    double start;
    /* Training from dense to sparse in rounds (IMP, soups). */
    const rw_dataset *val, *test;
    int epochs_logged;
    int64_t steps;
    rw_status eval_status;
    rw_eval_result test_r, val_r;
    double train_seconds;
    int64_t train_samples;
    int last_round, members;
    double member_sum, member_best;
    int stopped;
    atomic_int stop_asked;    /* rw_run_stop: checked after every step */
    /* A language model's run (lm_run.c), or 0. */
    int lm;
    rw_lm_schedule lm_cfg;
    int lm_batch;             /* sequences per step (the trainer's batch is lm_batch x context) */
    uint64_t lm_fingerprint;  /* of the text it trains on (0 until it has) */
    rw_lm_report_fn on_lm_report;
};

/* Opens the log: afresh for a new run, cut back to log_bytes and appended
 * to for a resumed one. */
rw_status run_open_log(rw_run *r, int resumed);

/* Writes the checkpoint (flushing the log first, which its note counts). */
rw_status run_save_checkpoint(rw_run *r);

/* The trainer's topology callback of every run: counts, logs, hands on. */
void run_on_update(const rw_topology_stats *s, void *user);

double run_now(void);

/* 1 once if rw_run_stop was called since the last look (clearing it). */
int run_stop_asked(rw_run *r);

/* A language model's schedule is usable with this many sequences a step. */
rw_status lm_check_schedule(const rw_lm_schedule *s, int batch);

/* A token drawn from logits[vocab] (overwritten) divided by temperature,
 * among the top_k largest (0: all; ties with the k-th largest stay in);
 * temperature 0 takes the largest. sorted: room for vocab floats. */
int32_t lm_sample_token(float *logits, int vocab, float temperature, int top_k, float *sorted,
                        rng_state *rng);
/* The k-th largest (1 <= k <= n) of x[0..n), which it reorders. */
float lm_kth_largest(float *x, int n, int k);

/* The "lm" object of a checkpoint's note, and reading it back. */
json_t *lm_note(const rw_run *r);
rw_status lm_parse_note(rw_run *r, const json_t *o, const char *path);

#endif
