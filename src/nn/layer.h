/* The layer interface: an ops table per layer kind, one file per kind
 * (linear_csr.c, linear_nm.c, linear_dense.c, linear_nm_train.c,
 * activation_layer.c, layer_norm.c, ...). Adding a kind means adding a
 * file; the trainer, optimizer, sparse training, checkpoints and model
 * files reach a layer only through these functions and its parameter
 * records (nn/param.h).
 *
 * Passes are phases of a team (kernels/team.h): a forward or backward
 * function cuts its work into chunks, runs the ones this thread takes
 * (TEAM_FOR ... team_chunk_done) and returns the chunk count without
 * waiting; the caller ends the phase with team_phase(count). Called
 * outside a parallel region a phase runs whole on the calling thread. A
 * pass that needs two phases (a separate activation pass) ends the first
 * itself with team_phase. Results never depend on which thread ran which
 * chunk. */
#ifndef RW_NN_LAYER_H
#define RW_NN_LAYER_H

#include <jansson.h>
#include <stdint.h>

#include "io/safetensors.h"
#include "nn/param.h"
#include "nn/tensor.h"
#include "rewire.h"

#define LAYER_NAME_CAP 64
#define LAYER_MAX_INPUTS 4
/* An MoE layer reports its experts' maps' (nn/moe.h: 32 experts, 2 maps,
 * weight and bias each) and its router's. */
#define LAYER_MAX_PARAMS 132

typedef struct layer layer;

/* The batch a weight saw in the last training pass: its input [cols][bp],
 * the gradient at its output [rows][bp] (zero in padding columns) and the
 * output [rows][bp], n columns valid. Dynamic sparse training grows from
 * these (nn/network.h: workspace_param_batch). */
typedef struct {
    const float *x, *dy, *y;
    int bp, n;
} param_batch;

/* A layer's share of a memory estimate (nn/memory.h). */
typedef struct {
    int64_t in, out;
    int64_t model_bytes;  /* weights, indices, transposed views, bias */
    int64_t param_floats; /* values that get a gradient and optimizer state */
    int has_activation;   /* its output has an activation (a buffer of its own) */
} layer_shape;

/* One pass of one layer: its tensors in the workspace of a batch of bp
 * columns (n of them valid), and its parameters' gradients. */
typedef struct {
    tensor *in[LAYER_MAX_INPUTS];
    int n_in;
    /* 1 where a later layer also reads in[i] and its backward has written
     * in[i]->grad already: this layer adds its part instead of writing. */
    int accumulate[LAYER_MAX_INPUTS];
    tensor *out;
    int bp, n;
    float *const *grad; /* [the layer's params], NULL when not training */
    float *shared_grad; /* the gradient of the other layer's parameter the layer uses
                           (layer.shared_param: a tied LM head's embedding), or NULL */
    /* Sequences: the columns are `n / seq_len` sequences of seq_len tokens
     * each, column j at position pos0 + j % seq_len (pos0 > 0 when decoding
     * one token at a time after a cache of earlier ones); tokens[j] the
     * input token of column j. */
    int seq_len, pos0;
    const int32_t *tokens;
    /* Loss layers: the targets, one per column (int32: token ids, -1 for a
     * column that counts for nothing), or the labels of a classifier. */
    const int32_t *targets;
    float *scratch;     /* [scratch_floats] the layer's own, kept from its forward
                           to its backward pass (NULL when it asks for none) */
    int64_t scratch_len; /* its length in floats, as scratch_floats gave it when the
                           workspace was made (the thread count may have changed) */
    /* Loss layers: the batch's targets, and the loss of each valid
     * column (written at loss[b]). */
    const uint8_t *labels;
    double *loss;
} layer_io;

/* Where a layer's tensors are written in a file: the layer hands its
 * tensors to the writer (io/safetensors.h) and takes them from a parsed
 * file; io never sees a layer. `path` names the file in messages. */
typedef struct layer_ops {
    const char *kind; /* as model files write it: "sparse", "nm", "dense", ... */

    /* out = f(in) over a batch. */
    int (*forward)(const layer *ly, const layer_io *io);
    /* From out->grad to the gradients of the parameters and, when
     * in[i]->grad is not NULL, of the inputs (through their producers'
     * activations, see nn/tensor.h). */
    int (*backward)(const layer *ly, const layer_io *io);
    /* The forward pass of one sample (bp = 1): plain vectors, and where a
     * kernel exists for it the matrix-vector one. */
    int (*forward_vector)(const layer *ly, const layer_io *io);

    /* Fills out[0..) with the layer's parameter records (at most
     * LAYER_MAX_PARAMS) and returns how many. */
    int (*params)(layer *ly, param *out);
    /* What the layer takes in memory, for estimates: of the layer as it
     * is (f NULL), or of a skeleton as the file f declares it (checked
     * against the memory limit before its tensors are loaded). */
    void (*shape)(const layer *ly, const st_file *f, layer_shape *out);
    /* Weights as the user sees them: stored count and kind (info), and an
     * N:M-trained layer's N:M rather than its dense master. */
    void (*info)(const layer *ly, rw_layer_info *out);
    /* Optional: adds kind-specific fields to the layer's entry in a model
     * file's "layers" metadata (N:M's n and m). */
    void (*describe)(const layer *ly, json_t *entry);
    /* Adds the layer's tensors to a model file. */
    rw_status (*save)(const layer *ly, st_writer *w, const char *path);
    /* Allocates and reads the layer's tensors from a parsed file, validating
     * every value. */
    rw_status (*load)(layer *ly, const st_file *f, const char *path);
    /* 1 if the file holds a tensor of this name for this layer (the loader
     * refuses any tensor no layer claims). */
    int (*owns_tensor)(const layer *ly, const char *name);
    /* Optional (NULL: none): floats the workspace keeps for the layer
     * between its forward and backward passes (LayerNorm's means and
     * inverse deviations, attention's probabilities and work buffers), for
     * batches of bp columns (bp = 1: the one-sample workspace). */
    int64_t (*scratch_floats)(const layer *ly, int bp);
    /* 1 if backward honours io->accumulate: a kind that does not may only
     * be the last reader of each input (the model refuses other graphs). */
    int accumulates;
    /* Optional (NULL: none): after the whole model is built or loaded, to
     * find another layer (a tied LM head its embedding); RW_ERR_FORMAT
     * with a message when it is not there. */
    rw_status (*link)(layer *ly, rw_model *m);
    /* Optional (NULL: none): after each optimizer step, state that follows
     * the weights or the schedule (N:M training's masks), as a phase;
     * returns its chunks. */
    int (*after_step)(layer *ly, int64_t step, int64_t total_steps);
    /* Optional (NULL: none): the batch parameter k of the layer saw, for
     * parameters whose tensors are the layer's own (x_tensor -1: an MoE
     * expert's map over the tokens routed to it), from the layer's scratch
     * of a bp-column workspace after a training pass. */
    void (*param_batch)(const layer *ly, const float *scratch, int bp, int k, param_batch *out);
    /* Optional (NULL: it can): what of the layer cannot train over several
     * processes (run/dist.c) as configured, with dynamic sparse training on
     * or not, as a phrase for a message ("the k-means gate of ..."), or
     * NULL when all of it can. */
    const char *(*single_process_only)(const layer *ly, int dst_active);
    /* Optional (NULL: none): what the layer has to say in a run's log after
     * each estimate, as the fields of one JSON line whose event it names in
     * *event (an MoE layer: its experts' load since the last one); its
     * counts start again from zero. NULL when it has nothing to say. */
    json_t *(*take_log)(const layer *ly, const char **event);
    /* Frees what the layer owns, and the layer. */
    void (*destroy)(layer *ly);
    /* 1 if the layer's struct begins with `linear` (nn/linear.h). */
    int is_linear;
} layer_ops;

/* What every layer has; a kind's struct begins with it. */
struct layer {
    const layer_ops *ops;
    char name[LAYER_NAME_CAP]; /* "fc1"; its parameters are "fc1.weight", ... */
    int in, out;               /* features in (of in[0]) and out */
    rw_activation act;         /* applied to the output as it is written */
    float slope;               /* of a leaky ReLU */
    /* The graph: the tensors this layer reads and writes (workspace
     * indices; 0 is the model input). */
    int inputs[LAYER_MAX_INPUTS];
    int n_inputs;
    int output;
    int accumulate[LAYER_MAX_INPUTS]; /* set by the model (model_gather_params) */
    int has_shared_param; /* 1: the layer also uses a parameter of another layer */
    int shared_param;     /* (a tied LM head: the embedding's), its index in the model's list */
};

/* What a model file's "layers" metadata gives every layer. */
typedef struct {
    const char *name;
    int in, out;
    rw_activation act;
    float slope;
    int index; /* position in the model */
} layer_meta;

/* A kind the model loader knows: builds a layer with no arrays from its
 * metadata entry (reading its own extra fields), to be filled by `load`
 * once the memory the file asks for has been checked. */
typedef struct {
    const char *kind;
    rw_status (*from_meta)(const json_t *entry, const layer_meta *m, const char *path,
                           layer **out);
} layer_kind;

/* Rows [r0, r1) of part t of n split into `parts` equal ranges. */
static inline void part_range(int n, int t, int parts, int *r0, int *r1)
{
    *r0 = (int)((int64_t)n * t / parts);
    *r1 = (int)((int64_t)n * (t + 1) / parts);
}

/* Whole rows of [rows][bp] per chunk, about 16K floats each. */
int layer_row_chunks(int rows, int bp);

/* Applies out's activation to rows [r0, r1) of out->pre into out->data
 * (tanh, GELU: the activations no kernel fuses). */
void layer_activate_rows(const tensor *out, int bp, int r0, int r1);

/* The gradient of rows [r0, r1) of t, written as d loss / d data, turned
 * into d loss / d pre through t's activation (nothing for none). */
void layer_grad_through_act(const tensor *t, int bp, int r0, int r1);

/* The activation pass of a whole output as its own phase (after the
 * caller's team_phase): returns its chunks. */
int layer_activate_phase(const tensor *out, int bp);

/* The same for an input gradient. */
int layer_grad_through_act_phase(const tensor *in, int bp);

/* Frees a layer of any kind (NULL is fine). */
static inline void layer_free(layer *ly)
{
    if (ly) ly->ops->destroy(ly);
}

#endif
