/* Forward and backward passes of a whole model over one batch, on buffers
 * laid out [features][bp] (batch innermost). */
#ifndef RW_NN_NETWORK_H
#define RW_NN_NETWORK_H

#include "nn/model.h"

typedef struct {
    int bp;       /* padded batch capacity */
    int n_layers;
    float **a;    /* a[0]: input [in][bp]; a[l+1]: output of layer l [out][bp]
                     (a[n_layers] are the logits) */
    float **z;    /* z[l]: pre-activation of layer l [out][bp]; aliases
                     a[l+1] when the layer has no activation */
    /* With gradients only: */
    float **g;    /* g[l]: d loss / d a[l], then d loss / d z[l-1] in place,
                     [size of a[l]][bp]; g[n_layers] = d loss / d logits */
    float **gw;   /* gw[l]: weight gradient, parallel to the layer's weights */
    float **gb;   /* gb[l]: bias gradient [out] */
} workspace;

/* Allocates buffers for batches of up to `batch` samples. */
rw_status workspace_init(workspace *ws, const rw_model *m, int batch, int with_grads);
void workspace_free(workspace *ws);

/* Copies n samples (rows of x, [n][features], raw in [0, 1]) into a[0] as
 * [features][bp], normalised, with zeros in the padding columns. `index`
 * selects the samples (NULL: the first n). */
void network_load_batch(const rw_model *m, workspace *ws, const float *x, int features,
                        const int *index, int n);

/* a[0] -> logits in a[n_layers]. */
void network_forward(const rw_model *m, workspace *ws);

/* From g[n_layers] (d loss / d logits, zero in padding columns) to gw, gb
 * of every layer. The input gradient g[0] is not computed. */
void network_backward(const rw_model *m, workspace *ws);

#endif
