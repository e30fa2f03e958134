/* Attention patterns that carry layer state (attn_routing.c, attn_dma.c):
 * the hooks through which the attention layer makes, saves, loads, uses
 * and moves that state without knowing which pattern it serves. The
 * choice of keys itself is each pattern's `ranges` (nn/attn_pattern.h).
 *
 * The state is up to ATT_STATE_TENSORS float tensors per layer (routing's
 * centroids; dma's mask projection and coefficient), saved in the model
 * file as LAYER.NAME. Each key of a sequence gets one float of per-key
 * state from them (its cluster, its mask value), and a pattern may add one
 * key column to the core's keys: the core then runs at head size hd + 1
 * with a query column of 1 and a value column of 0, so that column's
 * entry is added to the key's scaled score. */
#ifndef RW_NN_ATTN_LEARNED_H
#define RW_NN_ATTN_LEARNED_H

#include <stdint.h>

#include "nn/attn_pattern.h"

#define ATT_STATE_TENSORS 2

/* Tensor k of a layer's state: rows × cols floats (cols 0: a vector of
 * rows). */
typedef struct {
    const char *name;
    int64_t rows, cols;
} att_state_tensor;

/* What one head's second backward step reads and writes, over the batch's
 * first n columns (whole sequences). */
typedef struct {
    const float *qkv; /* the fused projection [3·dim][bp] */
    float *dqkv;      /* its gradient, added to */
    /* [n]: d loss / d (each key's extra column entry) for this head, or
     * NULL without an extra column */
    const float *key_grad;
    int bp, n, dim, heads;
    const char *layer; /* its name, for messages */
    int training; /* a training step (the layer's parameter gradients are wanted) */
} att_batch;

struct att_state_ops {
    int n_tensors;
    att_state_tensor (*tensor)(const att_pattern *p, int k, int heads, int hd);
    /* 1: the tensors are parameters the optimizer trains (dense, not
     * decayed, never pruned; backward_head writes their gradients); 0:
     * only backward_head moves them. */
    int trained;
    /* 1: each key gets one more column (see above) */
    int extra_column;
    /* Seeds the state of `heads` heads from seed. */
    void (*init)(const att_pattern *p, float *const *state, int heads, int hd, uint64_t seed);
    /* The salt of the layer's seed for init (fixed, so a run's bits stay). */
    uint64_t seed_salt;
    /* The per-key state of head h's key k and value v (hd floats each)
     * into *slot; returns the key's extra column entry (0 without one).
     * scale is the scores' 1/√hd. */
    float (*key_state)(const att_pattern *p, float *const *state, int h, int hd, float scale,
                       const float *k, const float *v, float *slot);
    /* Head h's view for `ranges` of keys whose per-key state is at
     * slots[s * lds] (decoding: the choice is made from them alone). */
    void (*view)(const att_pattern *p, float *const *state, int h, int hd, const float *slots,
                 int lds, att_kv *kv);
    /* A whole sequence of T keys (slots with lds 1, after view): the index
     * its rows choose from faster, built in index_floats(p, T) floats of
     * work. */
    void (*index)(const att_pattern *p, int T, float *work, att_kv *kv);
    int64_t (*index_floats)(const att_pattern *p, int T);
    /* The second backward step of head h over the batch (after the core's
     * pass over every pair): the state's gradients into grad[k] (NULL
     * when not training) or a move of the state. */
    void (*backward_head)(const att_pattern *p, float *const *state, float *const *grad, int h,
                          const att_batch *b);
    /* Why a run over several processes cannot keep the state in step, or
     * NULL when it can (trained state is averaged like any parameter). */
    const char *single_process_only;
};

/* ---- routing:C ---------------------------------------------------------- */

/* Each step moves a centroid this fraction of the way from where it was
 * to the mean of the unit queries and keys it got (then back onto the
 * unit sphere). */
#define ROUTING_RATE 0.01f

/* heads · C centroids of hd floats, [heads][C][hd]: seeded Gaussian
 * directions scaled to unit length. */
void routing_init(float *centroids, int heads, int C, int hd, uint64_t seed);

/* The centroid (of C, [C][hd]) with the largest dot product with x; ties
 * go to the lower index. */
int routing_nearest(const float *centroids, int C, int hd, const float *x);

/* Keys 0..T-1 grouped by cluster (cl[s * ldc], a whole number stored as
 * a float): cluster c's positions ascending at pos[ptr[c] .. ptr[c + 1]). */
void routing_group_keys(int C, const float *cl, int ldc, int T, int *ptr, int *pos);

/* Adds x / |x| to the sum of its nearest centroid's vectors ([C][hd])
 * and counts it (a zero vector counts for nothing). */
void routing_accumulate(const float *centroids, int C, int hd, const float *x, double *sum,
                        int64_t *count);

/* One moving-average step of the C centroids of one head towards the
 * means accumulated since the last (a centroid that got nothing stays). */
void routing_step(float *centroids, int C, int hd, const double *sum, const int64_t *count);

/* ---- dma:K -------------------------------------------------------------- */

/* The mask value of a key whose value vector is v (hd floats) in a head
 * of projection w (hd) and coefficient a: exp(a · softplus(w · v)); *z
 * gets w · v. */
float dma_mask(const float *w, float a, const float *v, int hd, float *z);

/* d mask / d (w · v) and d mask / d a at z = w · v with mask value m. */
void dma_mask_grads(float z, float a, float m, float *dm_dz, float *dm_da);

/* The mask parameters of `heads` heads: w [heads][hd] seeded N(0, 0.02²),
 * a [heads] zero. */
void dma_init(float *w, float *a, int heads, int hd, uint64_t seed);

/* For the mask values m[0..T) of one sequence, the query each key stops
 * being among the K kept ones at (exit[s]; T + 1 when never), and the
 * keys some query keeps, ascending, at cand (returns how many); heap holds
 * K ints of work. */
int dma_prepare(const float *m, int T, int K, int *exit, int *cand, int *heap);

#endif
