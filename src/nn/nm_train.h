/* N:M training from scratch (rw_model_nm_train_begin in rewire.h) as a
 * layer kind, linear_nm_train.c. The layer keeps dense master weights W
 * (its parameter, so the optimizer and its state run over W as for a
 * dense layer) and, regenerated from W after every optimizer step, the
 * mask and the N:M-compressed mask ⊙ W. Its passes:
 *   forward        z = (mask ⊙ W) x + b with the N:M kernels on the
 *                  compressed copy; decay while β > 0: z = W_eff x + b,
 *                  W_eff = W ⊙ (mask + β(1 − mask)), as sgemm blocks
 *   backward data  dx = (mask ⊙ W)ᵀ dz with the N:M kernels (decay, β > 0:
 *                  W_effᵀ dz)
 *   weight grad    dW = dz xᵀ, dense (straight-through: every entry of W
 *                  gets its gradient), plus the SR-STE term
 * All products run in blocks of NMT_BLOCK rows whatever the thread count,
 * each block one single-threaded sgemm or kernel call, so results do not
 * depend on the number of threads. */
#ifndef RW_NN_NM_TRAIN_H
#define RW_NN_NM_TRAIN_H

#include <stdint.h>

#include "nn/linear.h"

typedef struct {
    linear lin;
    float *w;           /* [out][in] dense master weights W */
    rw_nm_method method;
    float lambda;       /* SR-STE λ_W */
    double decay_end;   /* decay: fraction of training at which β reaches 0 */
    float beta;         /* decay: weight of the masked-out entries in the forward */
    nm_matrix nm;       /* mask ⊙ W, compressed: what the N:M kernels run on */
    float *eff;         /* [out][in] W ⊙ (mask + β(1 − mask)); decay only */
    uint8_t *seen;      /* [out][slots] offsets at the last mask-change count */
} linear_nm_train;

/* The N:M-trained layer behind ly, or NULL. */
linear_nm_train *nm_train_of(layer *ly);
const linear_nm_train *nm_train_of_const(const layer *ly);

/* MDGF-Linear: β = 1 − step / (decay_end · total_steps), floored at 0. */
float nm_decay_beta(double decay_end, int64_t step, int64_t total_steps);

/* Rows [r0, r1): the mask from W, the compressed copy and (decay) W_eff
 * for factor beta. */
void nm_train_refresh_rows(linear_nm_train *t, float beta, int r0, int r1);

/* Whether the config chooses layer l of a model of n_layers. */
int nm_train_chosen(const rw_nm_train_config *c, int l, int n_layers);

/* The same for layer l of m, counting the layers that have a weight (a
 * LayerNorm between them is never chosen and does not count). */
int nm_train_chosen_layer(const rw_nm_train_config *c, const rw_model *m, int l);

/* What rw_model_nm_train_begin checks before it changes anything: the
 * ranges, and that every chosen layer is dense with inputs a multiple of
 * m. RW_ERR_INVALID_ARGUMENT with a message naming the layer. */
rw_status nm_train_check_config(const rw_model *model, const rw_nm_train_config *c);

/* The bytes the N:M training state of m's layers holds now (the terms of
 * rw_estimate_nm_train_memory). */
int64_t nm_train_bytes(const rw_model *m);

/* Whether some layer of m is under N:M training. */
int model_nm_training(const rw_model *m);

#endif
