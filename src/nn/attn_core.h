/* The block-sparse attention core: one query row over a list of key ranges
 * (nn/attn_pattern.h), FlashAttention's online softmax over chunks of at
 * most ATT_CHUNK keys ("FlashAttention: Fast and Memory-Efficient Exact
 * Attention with IO-Awareness", Dao et al. 2022). Forward keeps only the
 * row's log-sum-exp; backward recomputes each chunk's probabilities from
 * it. Nothing here is T×T: a row costs the keys it sees. */
#ifndef RW_NN_ATTN_CORE_H
#define RW_NN_ATTN_CORE_H

#include "nn/attn_pattern.h"

#define ATT_CHUNK 128

/* o[0..hd) = softmax(scale · q·k_s) · v_s over the ranges; returns the
 * row's log-sum-exp of the scaled scores. */
float att_row_forward(const att_kv *kv, const float *q, float scale, const att_range *r, int nr,
                      float *o);

/* The row's backward: with dout its output gradient, lse its forward
 * log-sum-exp and delta = dout·o, adds to dq[0..hd) and to the
 * token-major dk, dv (position s at [s * ld], the ld of kv). */
void att_row_backward(const att_kv *kv, const float *q, float scale, const att_range *r, int nr,
                      float lse, const float *dout, float delta, float *dq, float *dk, float *dv);

/* Row b of the block means (at means + b * ldm): the mean key of
 * positions [b * block, (b + 1) * block). */
void att_block_mean(const att_kv *kv, int b, int block, float *means, int ldm);

/* a · b over n floats, in a fixed order (so every caller gets the same
 * bits for the same inputs). */
float att_dot(const float *a, const float *b, int n);

/* Key positions the ranges cover. */
int64_t att_range_keys(const att_range *r, int nr);

#endif
