/* The block-sparse attention core: a tile of query rows over a list of key
 * ranges (nn/attn_pattern.h), FlashAttention's online softmax over chunks
 * of at most ATT_CHUNK keys ("FlashAttention: Fast and Memory-Efficient
 * Exact Attention with IO-Awareness", Dao et al. 2022). Forward keeps
 * only each row's log-sum-exp; backward recomputes each chunk's
 * probabilities from it. Nothing here is T×T: a row costs the keys it
 * sees. The inner loops are the kernel list's (kernels/attn_kernels.h). */
#ifndef RW_NN_ATTN_CORE_H
#define RW_NN_ATTN_CORE_H

#include "kernels/attn_kernels.h"
#include "nn/attn_pattern.h"

#define ATT_CHUNK ATTN_CHUNK
#define ATT_TILE_ROWS ATTN_TILE_ROWS
/* Floats of att_kv.gather for head size hd: where a lone row's keys from
 * many short ranges are copied together (attn_core.c). */
#define ATT_GATHER_FLOATS(hd) (2 * (int64_t)(hd) * (ATT_CHUNK + 16) + 3 * (int64_t)ATT_CHUNK * (hd))

/* Rows t0 .. t0 + R - 1 (R <= ATT_TILE_ROWS) of one head, all over the
 * ranges r[0..nr), row t seeing their keys s <= t within lim (kv with its
 * transposed keys kt). q [R][hd] unscaled; writes o [R][hd] = softmax(scale · q·k_s) ·
 * v_s and lse[R], each row's log-sum-exp of the scaled scores. Every row
 * must see at least one key. */
void att_tile_forward(const attn_kernel_table *k, const att_kv *kv, const float *q, int t0, int R,
                      float scale, const att_range *r, int nr, att_limit lim, float *o,
                      float *lse);

/* The tile's backward (kv with kt and vt): with dout [R][hd] its output
 * gradient, lse its forward log-sum-exps and delta[r] = dout_r·o_r, adds to
 * dq [R][hd] and to the token-major dk, dv (position s at [s * ld], the ld
 * of kv). */
void att_tile_backward(const attn_kernel_table *k, const att_kv *kv, const float *q,
                       const float *dout, const float *lse, const float *delta, int t0, int R,
                       float scale, const att_range *r, int nr, att_limit lim, float *dq,
                       float *dk, float *dv);

/* Rows at the positions t[0..R) (ascending, R <= ATT_TILE_ROWS) that
 * share one list of keys (positions ascending, keys[0..nkeys)): row t
 * sees the listed keys s <= t and its own position t, listed or not. The
 * listed keys are copied together into kv->gather (ATT_GATHER_FLOATS),
 * ATT_CHUNK at a time, so the rows run them as one tile. Otherwise as
 * att_tile_forward and att_tile_backward (q, dout, o, dq of row r at
 * [r * hd]). */
void att_rows_forward(const attn_kernel_table *k, const att_kv *kv, const float *q, const int *t,
                      int R, float scale, const int *keys, int nkeys, float *o, float *lse);
void att_rows_backward(const attn_kernel_table *k, const att_kv *kv, const float *q,
                       const float *dout, const float *lse, const float *delta, const int *t,
                       int R, float scale, const int *keys, int nkeys, float *dq, float *dk,
                       float *dv);

/* Row b of the block means (at means + b * ldm): the mean key of
 * positions [b * block, (b + 1) * block). */
void att_block_mean(const att_kv *kv, int b, int block, float *means, int ldm);

/* a · b over n floats, in a fixed order (so every caller gets the same
 * bits for the same inputs). */
float att_dot(const float *a, const float *b, int n);

/* Key positions the ranges cover, and those of them row t sees. */
int64_t att_range_keys(const att_range *r, int nr);
int64_t att_row_keys(const att_range *r, int nr, int t, att_limit lim);
/* Keys the row at t sees of a list keys[0..nkeys) (att_rows_forward):
 * the listed ones before t, and t itself. */
int64_t att_list_row_keys(const int *keys, int nkeys, int t);

#endif
