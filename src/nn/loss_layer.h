/* Losses as layers: forward reads the logits tensor (in[0]) and the
 * batch's targets, writes each valid column's loss and the gradient of the
 * mean loss into the logits' gradient (zeros in the padding columns). */
#ifndef RW_NN_LOSS_LAYER_H
#define RW_NN_LOSS_LAYER_H

#include "nn/layer.h"

/* Softmax cross-entropy over classes: the logits are [classes][bp] and
 * the targets one class per column. */
layer *loss_softmax_xent_new(void);

/* Token cross-entropy for a language model: the logits are [vocab][bp],
 * the targets (io->targets) a token id per column, -1 for a column that
 * counts for nothing; the loss of each column goes to io->loss[j] (0 for
 * those), the gradient of the mean over the counted columns to the
 * logits' gradient. */
layer *loss_token_xent_new(void);

#endif
