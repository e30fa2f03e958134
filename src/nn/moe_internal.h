/* What nn/moe.c (routing, the passes, the k-means step) and
 * nn/moe_layer.c (parameters, files, construction) share. */
#ifndef RW_NN_MOE_INTERNAL_H
#define RW_NN_MOE_INTERNAL_H

#include "nn/moe.h"

typedef struct {
    layer base;
    moe_config cfg;
    layer *maps[2 * MOE_MAX_EXPERTS]; /* e0.up, e0.down, e1.up, ... */
    int first[2 * MOE_MAX_EXPERTS];   /* index of each map's first parameter in the layer's list */
    int n_params;
    float *gate_w;       /* [E][dim]: router weights (softmax) or centroids (kmeans) */
    /* Mutable through const passes (training state, not a result): */
    moe_stats *stats;
    double *km_sum;      /* [E][dim] the tokens each centroid got since the last step */
    int64_t *km_count;   /* [E] */
    float *km_reseed;    /* [E][dim] a token for a centroid that got none */
    int *km_dead;        /* [E] 1: km_reseed holds one */
} moe_layer;

static inline const moe_layer *moe_of(const layer *ly) { return (const moe_layer *)ly; }

/* The layer_ops entries of nn/moe.c. */
int64_t moe_scratch_floats(const layer *ly, int bp);
int moe_forward(const layer *ly, const layer_io *io);
int moe_backward(const layer *ly, const layer_io *io);
int moe_after_step(layer *ly, int64_t step, int64_t total);
void moe_param_batch(const layer *ly, const float *scratch, int bp, int k, param_batch *out);

#endif
