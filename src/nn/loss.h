/* Softmax cross-entropy over logits laid out [classes][bp]. */
#ifndef RW_NN_LOSS_H
#define RW_NN_LOSS_H

#include <stdint.h>

/* For the n valid columns: returns the summed loss, counts correct argmax
 * predictions into *correct (may be NULL), and, when dlogits is non-NULL,
 * writes d(mean loss)/d(logits) = (softmax - onehot) / n, with zeros in the
 * padding columns [n, bp). */
double softmax_xent(const float *logits, const uint8_t *labels, int classes, int n, int bp,
                    float *dlogits, int64_t *correct);

/* Column-wise softmax of n columns into probs [n][classes] (sample-major). */
void softmax_columns(const float *logits, int classes, int n, int bp, float *probs);

#endif
