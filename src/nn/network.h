/* Forward and backward passes of a whole model over one batch: the
 * workspace holds the graph's tensors ([rows][bp], batch innermost) and
 * the parameter gradients; the passes call each layer's ops in order.
 *
 * Each pass is a sequence of phases, one (or two) per layer. A phase is
 * orphaned work-sharing (kernels/team.h): called inside a parallel region
 * its chunks are shared among the threads (the caller puts team_phase
 * after it), called outside one it runs whole on the calling thread. The
 * trainer runs a whole epoch in a single parallel region this way, so a
 * step pays a dozen waits for completed work instead of several dozen
 * fork/joins. */
#ifndef RW_NN_NETWORK_H
#define RW_NN_NETWORK_H

#include "data/dataset.h"
#include "kernels/team.h"
#include "nn/model.h"

typedef struct {
    int bp;          /* padded batch capacity */
    int n_tensors;
    tensor *t;       /* [n_tensors]: t[0] the input, then each layer's output */
    int n_layers;
    float **scratch; /* [n_layers] each layer's scratch (layer_ops.scratch_floats), or NULL */
    int64_t *scratch_len; /* [n_layers] its length in floats */
    /* With gradients only: */
    int n_params;
    float **grad;    /* [n_params] gradients parallel to the model's parameters */
    double *loss;    /* [bp] loss of each column of the last batch */
    /* Sequences (language models): see layer_io. n: the valid columns of
     * the batch, which the sequence layers need (0: all bp; the layers of
     * a classifier work on whole padded batches). */
    int n, seq_len, pos0;
    const int32_t *tokens;
} workspace;

/* Allocates buffers for batches of up to `batch` samples. */
rw_status workspace_init(workspace *ws, const rw_model *m, int batch, int with_grads);
/* Buffers of one sample (bp = 1, no padding, no gradients), for the
 * single-sample path. */
rw_status workspace_init_vector(workspace *ws, const rw_model *m);
void workspace_free(workspace *ws);

/* The batch model parameter q saw in the last training pass over ws, n
 * columns of it valid: the workspace's tensors x_tensor and y_tensor, or
 * the layer's own buffers (layer_ops.param_batch). */
param_batch workspace_param_batch(const workspace *ws, const rw_model *m, int q, int n);

/* The tensors and gradients layer l works on. */
layer_io workspace_io(const workspace *ws, const rw_model *m, int l);

/* Copies n samples (rows of floats or bytes, data/dataset.h) into t[0]
 * as [features][bp], normalised, with zeros in the padding columns.
 * `index` selects the rows (NULL: the first n samples of `rows`, through
 * rows.row_of when it is set; an index with rows.row_of set is a bug). */
void network_load_batch(const rw_model *m, workspace *ws, sample_rows rows, const int *index,
                        int n);

/* t[0] -> logits (the last layer's output). */
void network_forward(const rw_model *m, workspace *ws);

/* Layers first..last only, reading the tensors they read as they are
 * (the caller has filled those the earlier layers would write): one block
 * of a model at a time. */
void network_forward_layers(const rw_model *m, workspace *ws, int first, int last);

/* From the logits' gradient (zero in padding columns) to every parameter
 * gradient. The input gradient is not computed. */
void network_backward(const rw_model *m, workspace *ws);

/* The logits of the last batch, [classes][bp]. */
static inline const float *network_logits(const rw_model *m, const workspace *ws)
{
    return ws->t[model_logits_tensor(m)].data;
}

/* Whether a pass over this model at this batch is worth a parallel region. */
int network_worth_threading(const rw_model *m, int bp);

/* The phases, for callers that run them inside their own parallel region
 * (see above and kernels/team.h). Each returns the number of chunks of its
 * last part without waiting; the caller ends it with team_phase(chunks). */
int phase_load_batch(const rw_model *m, workspace *ws, sample_rows rows, const int *index, int n);
int phase_forward(const rw_model *m, workspace *ws, int l);
int phase_backward(const rw_model *m, workspace *ws, int l);

/* The whole model for a single sample (workspace_init_vector), in one
 * parallel region when some weight matrix is big enough to share. */
void network_forward_vector(const rw_model *m, workspace *ws, team_sync *sync);

/* The phases of network_forward_vector inside the caller's team
 * (kernels/team.h), for a caller that keeps one parallel region over many
 * passes; and whether such a region is worth opening for this model. */
void network_forward_vector_phases(const rw_model *m, workspace *ws);
int network_vector_worth_threading(const rw_model *m);

/* Layer l for a single sample: t[inputs] -> t[output] as plain vectors
 * (workspace_init_vector). */
int phase_forward_vector(const rw_model *m, workspace *ws, int l);

#endif
