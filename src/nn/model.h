/* The model behind rw_model: a stack of linear layers, each sparse (CSR),
 * N:M structured (core/nm.h) or dense (row-major, CBLAS), followed by an
 * activation; the last layer's output are the logits of a softmax
 * classifier. */
#ifndef RW_NN_MODEL_H
#define RW_NN_MODEL_H

#include "core/csr.h"
#include "core/nm.h"
#include "rewire.h"

typedef struct {
    int in, out;
    int sparse;          /* 1: w holds the weights (CSR) */
    int is_nm;           /* 1: nm holds the weights; dense iff !sparse && !is_nm */
    rw_activation act;   /* applied to the output; RW_ACT_NONE on the last */
    csr_matrix w;        /* out × in, when sparse */
    nm_matrix nm;        /* out × in, when is_nm */
    float *dense;        /* [out][in], when dense */
    float *bias;         /* [out] */
    /* N:M training from scratch (sparsity/nm_train.h): the layer is dense
     * (dense holds the master weights W) and runs through nmt; else NULL. */
    struct nm_train_layer *nmt;
} layer;

struct rw_model {
    int n_layers;
    layer *layers;       /* [n_layers] */
    float leaky_slope;
    float norm_mean, norm_std;
};

/* Number of stored weights of a layer (nnz, N:M slots, or in·out). */
static inline int64_t layer_weight_count(const layer *l)
{
    if (l->sparse) return l->w.nnz;
    if (l->is_nm) return (int64_t)l->out * nm_slots_per_row(&l->nm);
    return (int64_t)l->in * l->out;
}

/* The weight array of a layer, whatever its storage. */
static inline float *layer_weights(layer *l)
{
    return l->sparse ? l->w.values : l->is_nm ? l->nm.values : l->dense;
}

/* An empty model with n layers (every layer zeroed); freed by rw_model_free. */
rw_model *model_alloc(int n_layers);

#endif
