/* The trainer behind rw_trainer: gradients, optimizer state parallel to
 * every weight array, and the position in the run. */
#ifndef RW_NN_TRAINER_H
#define RW_NN_TRAINER_H

#include "nn/network.h"
#include "sparsity/dst.h"

struct rw_trainer {
    rw_model *model;
    rw_train_config cfg;
    workspace ws;
    float **wm1, **wm2; /* [layer][weights]: momentum / Adam moments of weights */
    float **bm1, **bm2; /* [layer][out]: the same for biases */
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
    /* The training set the run started on (nn/checkpoint.c): a resumed run
     * must see the same one. data_fingerprint 0: not seen yet. */
    const rw_dataset *data_seen; /* last set checked (datasets are immutable) */
    int64_t data_samples;
    uint64_t data_fingerprint;
    int data_must_match; /* loaded from a checkpoint, no epoch run yet */
    dst_state *dst;     /* dynamic sparse training, or NULL */
    rw_topology_fn on_topology;
    void *on_topology_user;
    /* Scratch of a step, allocated once so that a step allocates nothing: */
    uint8_t *labels;    /* [batch] labels of the batch */
    double *norm_part;  /* [2 n_layers][16] partial sums of the clipping norm */
};

/* Global L2 norm of all gradients; sets *bad_layer to the first layer whose
 * gradient is not finite (or -1). */
double trainer_grad_norm(const rw_trainer *t, int *bad_layer);

#endif
