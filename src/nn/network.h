/* Forward and backward passes of a whole model over one batch, on buffers
 * laid out [features][bp] (batch innermost).
 *
 * Each pass is a sequence of phases, one per layer. A phase is orphaned
 * OpenMP work-sharing: called inside a parallel region its chunks are
 * shared among the threads (the caller puts a barrier after it), called
 * outside one it runs whole on the calling thread. The trainer runs a
 * whole epoch in a single parallel region this way, so a step pays a dozen
 * waits for completed work (kernels/team.h) instead of several dozen
 * fork/joins. */
#ifndef RW_NN_NETWORK_H
#define RW_NN_NETWORK_H

#include "nn/model.h"

typedef struct {
    int bp;       /* padded batch capacity */
    int n_layers;
    float **a;    /* a[0]: input [in][bp]; a[l+1]: output of layer l [out][bp]
                     (a[n_layers] are the logits) */
    float **z;    /* z[l]: pre-activation of layer l [out][bp]; the same
                     buffer as a[l+1] unless activation_needs_z (tanh, GELU) */
    /* With gradients only: */
    float **g;    /* g[l]: d loss / d a[l], then d loss / d z[l-1] in place,
                     [size of a[l]][bp]; g[n_layers] = d loss / d logits */
    float **gw;   /* gw[l]: weight gradient, parallel to the layer's weights */
    float **gb;   /* gb[l]: bias gradient [out] */
    double *loss; /* [bp] loss of each column of the last batch */
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

/* Whether a pass over this model at this batch is worth a parallel region. */
int network_worth_threading(const rw_model *m, int bp);

/* The phases, for callers that run them inside their own parallel region
 * (see above and kernels/team.h). Each returns the number of chunks of its
 * last part without waiting; the caller ends it with team_phase(chunks). */
int phase_load_batch(const rw_model *m, workspace *ws, const float *x, int features,
                     const int *index, int n);
int phase_forward(const rw_model *m, workspace *ws, int l);
/* Layer l's weight and bias gradients from g[l+1], and for l > 0 the
 * gradient g[l] through layer l-1's activation. */
int phase_backward(const rw_model *m, workspace *ws, int l);

/* Layer l for a single sample: av[l] -> av[l+1] as plain vectors (no
 * batch padding), zv[l] the pre-activation (== av[l+1] unless
 * activation_needs_z). Sparse layers use the SpMV kernel. */
int phase_forward_vector(const rw_model *m, float **av, float **zv, int l);

#endif
