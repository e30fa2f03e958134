/* The model behind rw_model: a graph of layers with named tensors between
 * them (nn/layer.h), its loss, and the parameter list gathered from its
 * layers (nn/param.h).
 *
 * Tensor 0 is the model's input (the normalised features of a batch);
 * each layer writes one tensor and reads one or more earlier ones, so the
 * layers in order are a valid schedule for the forward pass and reversed
 * for the backward one. An MLP is the chain fc1 -> fc2 -> ... whose last
 * output is the logits of the softmax cross-entropy. */
#ifndef RW_NN_MODEL_H
#define RW_NN_MODEL_H

#include "nn/input_stage.h"
#include "nn/layer.h"
#include "nn/param.h"
#include "rewire.h"

#define MODEL_INFO_MAX 16
#define MODEL_INFO_KEY_CAP 64
#define MODEL_INFO_VALUE_CAP 4096

struct rw_model {
    int n_layers;
    layer **layers;      /* [n_layers] in execution order */
    layer *loss;         /* reads the last layer's output (the logits) */
    int inputs;          /* features of a sample, as callers give them */
    float leaky_slope;
    input_stage input;   /* tensor 0 from a sample: the features read, normalised */
    /* The parameter list, gathered from the layers whenever one is added
     * or replaced (model_gather_params). */
    int n_params;
    param *params;
    int *first_param;    /* [n_layers + 1] layer l's records are [first_param[l], first_param[l + 1]) */
    int64_t generation;  /* counts the gatherings: a trainer made before a layer was
                            replaced holds arrays for the old parameters */
    /* What the model's user keeps with it in files ("info.<key>"): a
     * language model's tokenizer, say. */
    int n_info;
    char *info_key[MODEL_INFO_MAX], *info_value[MODEL_INFO_MAX];
};

/* Sets (or replaces) info `key`: 1 to 63 letters, digits, '_' or '.', a
 * value of at most 4095 bytes, at most 16 keys. RW_ERR_INVALID_ARGUMENT
 * with a message otherwise. */
rw_status model_set_info(rw_model *m, const char *key, const char *value);

/* An empty model with room for n layers (every entry NULL); freed by
 * rw_model_free. */
rw_model *model_alloc(int n_layers);

/* Gathers the parameter list from the layers (all must be set), then
 * checks the graph (model_check_graph). */
rw_status model_gather_params(rw_model *m);

/* Every layer reads the model input or earlier outputs; where several read
 * one tensor, each but the last (in the forward order) adds to its
 * gradient (layer.accumulate, which its kind must honour), and the tensor
 * has no fused activation. RW_ERR_FORMAT naming the layer otherwise. */
rw_status model_check_graph(rw_model *m);

/* Replaces layer l by ly (freeing the old one) and gathers the list
 * again. */
rw_status model_replace_layer(rw_model *m, int l, layer *ly);

/* The records of layer l: params[first_param[l] ..] */
static inline param *model_layer_params(const rw_model *m, int l) { return m->params + m->first_param[l]; }

/* Rows of tensor 0: the features the network reads. */
static inline int model_input_rows(const rw_model *m) { return input_stage_rows(&m->input, m->inputs); }

/* The number of tensors of the graph (the input and one per layer). */
static inline int model_tensor_count(const rw_model *m) { return m->n_layers + 1; }

/* The logits tensor: the last layer's output. */
static inline int model_logits_tensor(const rw_model *m) { return m->layers[m->n_layers - 1]->output; }

/* 1 for a language model: its first layer reads token ids (embedding.c),
 * not the features of a batch, so the classifier's paths (rw_predict,
 * rw_evaluate, rw_trainer_epoch) refuse it. */
int model_reads_tokens(const rw_model *m);

/* Whether some layer has an after_step pass (N:M training). */
int model_has_after_step(const rw_model *m);

/* The name of linear layer l as files and messages give it: "fc1", ... */
void model_layer_name(char *buf, size_t cap, int l);

/* 1 if layer l's first parameter is a weight matrix (a linear layer; not
 * LayerNorm or an activation): the layers sparsity is counted over. */
int model_layer_has_weight(const rw_model *m, int l);

/* Stored weights of layer l as its kind reports them (rw_layer_info). */
int64_t model_layer_stored(const rw_model *m, int l);

#endif
