/* Optimizers over flat parameter arrays. State arrays run parallel to the
 * parameters (for a sparse layer: parallel to the CSR values), so a
 * topology change can carry each weight's state with it. */
#ifndef RW_NN_OPTIMIZER_H
#define RW_NN_OPTIMIZER_H

#include <stdint.h>

#include "rewire.h"

/* One step over n parameters: w, its gradient g, and the state m1 (momentum
 * or first moment) and m2 (second moment, AdamW only). `t` counts steps from
 * 1 (AdamW bias correction). Matches torch.optim.SGD (dampening 0) and
 * torch.optim.AdamW. */
void optimizer_step(const rw_train_config *c, float lr, int64_t t, float *w, const float *g,
                    float *m1, float *m2, int64_t n);

/* The same over entries [k0, k1) only; inside a parallel region it runs on
 * the calling thread (threads share an array by taking disjoint ranges). */
void optimizer_step_range(const rw_train_config *c, float lr, int64_t t, float *w, const float *g,
                          float *m1, float *m2, int64_t k0, int64_t k1);

/* Learning rate at `step` of `total_steps` (steps_per_epoch converts the
 * epoch-based settings). */
float schedule_lr(const rw_train_config *c, int64_t step, int64_t steps_per_epoch,
                  int64_t total_steps);

#endif
