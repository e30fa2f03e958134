/* The model behind rw_model: a stack of linear layers, each sparse (CSR) or
 * dense (row-major, CBLAS), followed by an activation; the last layer's
 * output are the logits of a softmax classifier. */
#ifndef RW_NN_MODEL_H
#define RW_NN_MODEL_H

#include "core/csr.h"
#include "rewire.h"

typedef struct {
    int in, out;
    int sparse;          /* 1: w holds the weights; 0: dense does */
    rw_activation act;   /* applied to the output; RW_ACT_NONE on the last */
    csr_matrix w;        /* out × in, when sparse */
    float *dense;        /* [out][in], when !sparse */
    float *bias;         /* [out] */
} layer;

struct rw_model {
    int n_layers;
    layer *layers;       /* [n_layers] */
    float leaky_slope;
    float norm_mean, norm_std;
};

/* Number of stored weights of a layer (nnz, or in·out when dense). */
static inline int64_t layer_weight_count(const layer *l)
{
    return l->sparse ? l->w.nnz : (int64_t)l->in * l->out;
}

/* The weight array of a layer, sparse or dense. */
static inline float *layer_weights(layer *l) { return l->sparse ? l->w.values : l->dense; }

/* An empty model with n layers (every layer zeroed); freed by rw_model_free. */
rw_model *model_alloc(int n_layers);

#endif
