/* The trainer behind rw_trainer: gradients and optimizer state parallel to
 * every parameter of the model's list, the position in the run, and hooks
 * for what other modules do around a step (dynamic sparse training
 * between steps, a gradient all-reduce after backward).
 *
 * A step is: load the batch, forward, loss, backward, [after_backward
 * hooks], clipping, optimizer, layers' after_step passes, [after_step
 * hooks]. Without after_step hooks a whole epoch runs in one parallel
 * region; with one, each step gets its own region and the hooks run
 * between them on one thread. */
#ifndef RW_NN_TRAINER_H
#define RW_NN_TRAINER_H

#include "nn/network.h"

/* What a hook is told about the step just made. */
typedef struct {
    int batch_n;             /* valid columns of the batch */
    int64_t step;            /* optimizer steps done, this one included */
    int64_t steps_per_epoch, total_steps;
} trainer_step_info;

typedef struct trainer_hook_ops {
    const char *name; /* "dst" */
    /* After backward, before clipping and the optimizer, with every
     * gradient complete; run by one thread while the others wait. NULL:
     * none. */
    rw_status (*after_backward)(void *state, struct rw_trainer *t, const trainer_step_info *s);
    /* After the optimizer step, outside any parallel region. NULL: none. */
    rw_status (*after_step)(void *state, struct rw_trainer *t, const trainer_step_info *s);
    void (*free)(void *state);
} trainer_hook_ops;

#define TRAINER_MAX_HOOKS 4

typedef struct {
    const trainer_hook_ops *ops;
    void *state;
} trainer_hook;

struct rw_trainer {
    rw_model *model;
    rw_train_config cfg;
    workspace ws;       /* tensors and the gradients ws.grad[p] */
    float **m1, **m2;   /* [n_params] momentum / Adam moments, parallel to values
                           (m2 NULL entries under SGD) */
    int n_params;       /* the model's list when the trainer was made */
    int64_t generation; /* ... and its generation (nn/model.h) */
    int64_t step;       /* optimizer steps done */
    int epoch;          /* epochs done */
    int *order;         /* [order_cap] sample order of the current epoch */
    int order_cap;
    /* The epoch in progress, so that it can stop after any step and go on
     * (rw_trainer_epoch again, or a checkpoint resumed in a new process). */
    int64_t epoch_step;     /* steps done in it */
    int64_t epoch_samples;  /* samples seen in it */
    double epoch_loss_sum;  /* sum over those samples of their loss */
    double epoch_seconds;   /* training time spent in it */
    /* The training set the run started on: a resumed run must see the
     * same one. data_fingerprint 0: not seen yet. */
    const rw_dataset *data_seen; /* last set checked (datasets are immutable) */
    int64_t data_samples;
    uint64_t data_fingerprint;
    int data_fingerprint_version; /* of data_fingerprint (data/dataset.h) */
    int data_must_match; /* loaded from a checkpoint, no epoch run yet */
    trainer_hook hooks[TRAINER_MAX_HOOKS];
    int n_hooks;
    rw_topology_fn on_topology;
    void *on_topology_user;
    /* Scratch of a step, allocated once so that a step allocates nothing: */
    uint8_t *labels;    /* [batch] labels of the batch */
    double *norm_part;  /* [n_params][16] partial sums of the clipping norm */
};

/* Attaches a hook (state owned by the trainer from now on, freed with it
 * or by trainer_remove_hook). RW_ERR_INVALID_ARGUMENT when full. */
rw_status trainer_add_hook(rw_trainer *t, const trainer_hook_ops *ops, void *state);

/* The state of the hook with these ops, or NULL. */
void *trainer_find_hook(const rw_trainer *t, const trainer_hook_ops *ops);

/* Detaches and frees the hook with these ops, if any. */
void trainer_remove_hook(rw_trainer *t, const trainer_hook_ops *ops);

/* One optimizer step of a language model: `batch` sequences of seq_len
 * tokens, inputs[b · seq_len + t] the model's columns in order and
 * targets the token each column should predict (-1: the column counts for
 * nothing). step counts from 1 (AdamW's bias correction), lr is this
 * step's rate; *loss gets the batch's mean loss. Hooks run as for an epoch
 * (after_step after it, with total_steps as the epoch). RW_ERR_DIVERGED as
 * rw_trainer_epoch; the trainer must have been made with a batch of at
 * least batch · seq_len columns. */
rw_status trainer_lm_step(rw_trainer *t, const int32_t *inputs, const int32_t *targets, int batch,
                          int seq_len, int64_t step, int64_t total_steps, float lr, double *loss);

/* Global L2 norm of all gradients; sets *bad_param to the first parameter
 * whose gradient is not finite (or -1). */
double trainer_grad_norm(const rw_trainer *t, int *bad_param);

/* The decay of the first optimizer moment (SGD momentum, Adam's beta1). */
float trainer_momentum(const rw_trainer *t);

/* Records the training set's fingerprint, and refuses a set other than
 * the one a loaded checkpoint (or the epoch in progress) was made on. */
rw_status trainer_check_data(rw_trainer *t, const rw_dataset *train);

#endif
