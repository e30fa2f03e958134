/* The trainer behind rw_trainer: gradients, optimizer state parallel to
 * every weight array, and the position in the run. */
#ifndef RW_NN_TRAINER_H
#define RW_NN_TRAINER_H

#include "nn/network.h"

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
    /* Scratch of a step, allocated once so that a step allocates nothing: */
    uint8_t *labels;    /* [batch] labels of the batch */
    double *norm_part;  /* [2 n_layers][16] partial sums of the clipping norm */
};

/* Global L2 norm of all gradients; sets *bad_layer to the first layer whose
 * gradient is not finite (or -1). */
double trainer_grad_norm(const rw_trainer *t, int *bad_layer);

#endif
