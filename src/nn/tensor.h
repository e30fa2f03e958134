/* The named buffers between layers. Every tensor of a batch is laid out
 * feature-major with the batch innermost, [rows][bp], so that a sparse
 * kernel does contiguous vector work over the batch; a single sample is
 * the same with bp = 1.
 *
 * A layer may apply an activation to its own output as it writes it (a
 * fused epilogue: the CSR kernels do ReLU for free). The output tensor
 * then records which, and the gradient that flows back into it is the
 * gradient at the pre-activation: whoever writes `grad` (the consuming
 * layer's backward) applies the activation's derivative, fused into its
 * own kernel where it can. */
#ifndef RW_NN_TENSOR_H
#define RW_NN_TENSOR_H

#include "rewire.h"

#define TENSOR_NAME_CAP 64

typedef struct {
    char name[TENSOR_NAME_CAP]; /* "input", or the producing layer's name */
    int rows;                   /* features */
    rw_activation act;          /* applied by the producer (RW_ACT_NONE: none) */
    float slope;                /* of a leaky ReLU */
    float *data;                /* [rows][bp] after the activation */
    float *pre;                 /* [rows][bp] before it; == data unless activation_needs_z */
    float *grad;                /* [rows][bp] d loss / d pre; NULL where nothing needs it */
} tensor;

#endif
