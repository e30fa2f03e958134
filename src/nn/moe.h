/* A mixture-of-experts feed-forward layer (nn/moe.c): E experts, each a
 * GELU MLP of two linear maps that are ordinary CSR or dense linear layers
 * (so their weights are ordinary parameters: sparse training and the
 * optimizer treat them like any other), a gate that sends each token to k
 * of them, and the tokens of a batch grouped by expert so that each expert
 * runs one product over its own tokens. */
#ifndef RW_NN_MOE_H
#define RW_NN_MOE_H

#include "nn/layer.h"

#define MOE_MAX_EXPERTS 32

typedef enum {
    MOE_GATE_SOFTMAX = 0, /* a learned router, softmax, top-k */
    MOE_GATE_KMEANS       /* top-1 nearest centroid, centroids by k-means steps */
} moe_gate;

typedef struct {
    int experts, top_k, hidden;
    moe_gate gate;
    double capacity; /* capacity factor; 0: dropless */
    float balance;   /* coefficient of the load-balancing loss (softmax) */
    float zloss;     /* coefficient of the router z-loss (softmax) */
    float kmeans_rate; /* moving-average step of a centroid towards its tokens' mean */
} moe_config;

/* What training has seen since the last moe_stats_take: sums over the
 * backward passes (batches). */
typedef struct {
    int64_t batches, tokens;
    int64_t routed[MOE_MAX_EXPERTS]; /* token-expert assignments the gate asked for */
    int64_t kept[MOE_MAX_EXPERTS];   /* of them, within the expert's capacity */
    int64_t dropped;                 /* assignments over capacity */
    double balance_loss, z_loss;     /* sums of each batch's auxiliary loss (unscaled) */
    double busiest;                  /* sum over batches of max routed / mean routed */
} moe_stats;

/* A new MoE layer named `name` (its experts' maps are NAME.eK.up and
 * NAME.eK.down) reading tensor `input`, writing tensor index + 1. The
 * maps are given, 2 per expert (up: hidden × dim with GELU, down: dim ×
 * hidden), taken also on failure; router ([experts][dim], softmax) or
 * centroids ([experts][dim], kmeans) are taken too. NULL with the
 * message set on failure. */
layer *moe_new(const char *name, int dim, const moe_config *cfg, layer **maps, float *gate_w,
               int input, int index);

/* 1 if ly is an MoE layer. */
int is_moe(const layer *ly);

/* Its configuration. */
const moe_config *moe_config_of(const layer *ly);

/* Copies and clears the training statistics. */
void moe_stats_take(const layer *ly, moe_stats *out);

/* Expert e's map (0: up, 1: down), for tests and reports. */
layer *moe_map(const layer *ly, int e, int which);

/* The router or centroids [experts][dim]. */
float *moe_gate_weights(const layer *ly);

extern const layer_kind moe_kind;

#endif
