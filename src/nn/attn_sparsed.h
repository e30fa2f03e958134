/* sparsed: per-head attention patterns chosen once from dense attention on
 * calibration text and reused at every step after ("SparseD: Sparse
 * Attention for Diffusion Language Models"). A head's pattern is a set of
 * diagonals (the key block d blocks before the query's own) and columns
 * (key block j counted from the first: attention sinks), so it applies at
 * any length up to the context, and a query sees its own block too.
 *
 * The choice (att_sparsed_choose) is greedy over the head's dense
 * attention mass per (query block, key block) pair summed over the
 * calibration windows: take the diagonal or column that carries the most
 * mass not yet covered, until the kept blocks carry KEEP of the whole. */
#ifndef RW_NN_ATTN_SPARSED_H
#define RW_NN_ATTN_SPARSED_H

#include <stdint.h>

#include "nn/attn_pattern.h"
#include "rewire.h"

/* The chosen blocks of every head of one attention layer. */
typedef struct {
    int heads, nb;  /* nb: blocks of the layer's context, ceil(context / block) */
    int block;
    float keep;
    unsigned char *sel; /* [heads][2][nb]: [h][0][d] diagonal d kept (d = 0, the
                           own block, always), [h][1][j] column j kept */
    int *lists;         /* each head's offsets and columns, which head[] points into */
    att_head_blocks *head; /* [heads] */
    int max_blocks;     /* the most blocks a head keeps besides its own */
} att_sparsed;

/* A table of no choice yet (only the own block), or NULL out of memory. */
att_sparsed *att_sparsed_new(int heads, int context, int block, float keep);
void att_sparsed_free(att_sparsed *s);

/* Head h's choice from mass [nb][nb] (mass[qb * nb + kb], query block qb,
 * key block kb <= qb): returns the share of the mass the kept blocks
 * carry (1 when there is none). Call att_sparsed_index after the last
 * head. */
double att_sparsed_choose(att_sparsed *s, int h, const double *mass);

/* head[] and max_blocks from sel (after choosing, or after sel was read
 * from a file). RW_ERR_INVALID_ARGUMENT when sel holds a value other than
 * 0 or 1; RW_ERR_NO_MEMORY. */
rw_status att_sparsed_index(att_sparsed *s);

/* Score entries head h computes for the queries 0 .. T-1 of a sequence. */
int64_t att_sparsed_keys(const att_sparsed *s, int h, int T);

#endif
