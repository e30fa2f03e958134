/* The attention patterns that carry layer state (attn_routing.c,
 * attn_dma.c): what the attention layer calls to initialise, prepare,
 * update and differentiate that state. The choice of keys itself is each
 * pattern's `ranges` (nn/attn_pattern.h). */
#ifndef RW_NN_ATTN_LEARNED_H
#define RW_NN_ATTN_LEARNED_H

#include <stdint.h>

#include "nn/attn_pattern.h"

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

/* The keys 0..T-1 of kv (one head) grouped by nearest centroid: cluster
 * c's positions ascending at pos[ptr[c] .. ptr[c + 1]); cl holds T ints of
 * work. */
void routing_group_keys(const float *centroids, int C, const att_kv *kv, int T, int *ptr, int *pos,
                        int *cl);

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
