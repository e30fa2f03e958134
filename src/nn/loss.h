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

/* The same over columns [b0, b1) only, so threads can share a batch: the
 * loss of each valid column b goes to loss[b - b0] (loss may be NULL), the
 * gradient of the valid columns and zeros in the padding columns of the
 * range to dlogits (may be NULL). Returns the number of correct argmax
 * predictions in the range. n is the batch (for the 1/n of the mean). */
int softmax_xent_columns(const float *logits, const uint8_t *labels, int classes, int b0, int b1,
                         int n, int bp, float *dlogits, double *loss);

/* Column-wise softmax of n columns into probs [n][classes] (sample-major). */
void softmax_columns(const float *logits, int classes, int n, int bp, float *probs);

#endif
