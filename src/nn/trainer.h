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
#include "nn/thread_tuner.h"

/* What a hook is told about the step just made. */
typedef struct {
    int batch_n;             /* valid columns of the batch (of the global batch when the
                                trainer has a shard: every process's columns) */
    int64_t step;            /* optimizer steps done, this one included */
    int64_t steps_per_epoch, total_steps;
    /* after_backward only: how many columns this process's loss counts
     * (its gradients are their mean) and its summed loss. A data-parallel
     * hook replaces both with the global batch's once it has summed them. */
    int counted;
    double loss_sum;
} trainer_step_info;

typedef struct trainer_hook_ops {
    const char *name; /* "dst" */
    /* After backward, before clipping and the optimizer, with every
     * gradient complete; run by one thread while the others wait. NULL:
     * none. */
    rw_status (*after_backward)(void *state, struct rw_trainer *t, trainer_step_info *s);
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
    thread_tuner tuner;     /* one thread or all, for the epoch's steps */
    int64_t data_samples;
    uint64_t data_fingerprint;
    int data_fingerprint_version; /* of data_fingerprint (data/dataset.h) */
    int data_must_match; /* loaded from a checkpoint, no epoch run yet */
    trainer_hook hooks[TRAINER_MAX_HOOKS];
    int n_hooks;
    rw_topology_fn on_topology;
    void *on_topology_user;
    /* Data-parallel training (run/dist.c): this process trains on part
     * shard_rank of shard_count of every global batch (cfg.batch), its
     * workspace sized for that part. batch_data / batch_grad, when not
     * NULL, hold the whole global batch's tensors ([n_tensors], each
     * [rows][batch_bp], NULL where not gathered), for what looks at the
     * batch between steps (dynamic sparse training's growth). */
    int shard_rank, shard_count, shard_unit;
    int batch_bp;
    float **batch_data, **batch_grad;
    /* Scratch of a step, allocated once so that a step allocates nothing: */
    uint8_t *labels;    /* [batch] labels of the batch */
    double *norm_part;  /* [n_params][16] partial sums of the clipping norm */
};

/* Makes the trainer train on part `rank` of `count` of every global batch
 * (contiguous slices of whole samples of `unit` columns each, in rank
 * order: 1 for a classifier, the context for a language model's
 * sequences), its workspace resized to the largest part. count 1: the
 * whole batch. */
rw_status trainer_set_shard(rw_trainer *t, int rank, int count, int unit);

/* The first column and the number of columns of part `rank` of `count` of
 * a batch of `cols` columns in samples of `unit` columns. */
static inline int trainer_shard_part(int cols, int rank, int count, int unit, int *lo)
{
    int64_t samples = cols / unit;
    int64_t a = samples * rank / count, b = samples * (rank + 1) / count;
    *lo = (int)(a * unit);
    return (int)((b - a) * unit);
}

/* The global batch's tensor `i` (data or gradient at the pre-activation)
 * as it was after the last step, [rows][trainer_batch_bp]: the gathered
 * copy under a shard, the workspace's own otherwise. */
static inline const float *trainer_batch_data(const rw_trainer *t, int i)
{
    return t->batch_data && t->batch_data[i] ? t->batch_data[i] : t->ws.t[i].data;
}
static inline const float *trainer_batch_grad(const rw_trainer *t, int i)
{
    return t->batch_grad && t->batch_grad[i] ? t->batch_grad[i] : t->ws.t[i].grad;
}
/* Padded columns of the global batch. */
static inline int trainer_batch_bp(const rw_trainer *t)
{
    return t->batch_bp > 0 ? t->batch_bp : t->ws.bp;
}

/* The batch weight parameter q saw in the last step, n columns valid: the
 * global batch's tensors (above), or for a weight whose tensors its layer
 * keeps (an expert's, nn/moe.c) the layer's own copy of this process's
 * tokens. */
param_batch trainer_param_batch(const rw_trainer *t, int q, int n);

/* Attaches a hook (state owned by the trainer from now on, freed with it
 * or by trainer_remove_hook). RW_ERR_INVALID_ARGUMENT when full. */
rw_status trainer_add_hook(rw_trainer *t, const trainer_hook_ops *ops, void *state);

/* The same, before every hook attached so far (its after_step runs first). */
rw_status trainer_add_hook_first(rw_trainer *t, const trainer_hook_ops *ops, void *state);

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
