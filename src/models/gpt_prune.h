/* The machinery of rw_lm_prune (gpt_prune.c) that EvoPress's database
 * (gpt_evopress.c) shares: the calibration stream through the blocks, the
 * statistics of a block's four maps, one map pruned at a given sparsity. */
#ifndef RW_MODELS_GPT_PRUNE_H
#define RW_MODELS_GPT_PRUNE_H

#include "core/csr.h"
#include "nn/network.h"
#include "rewire.h"

enum { LM_PRUNE_MAPS = 4 }; /* per block: attn.qkv, attn.proj, mlp.up, mlp.down */

/* The layer index of map k (0-3) of block b (gpt_layout.c's order). */
int lm_prune_map_layer(int b, int k);

/* Checks c against the model (as rw_lm_prune documents); *context gets the
 * calibration window length (0 when the method reads no text). */
rw_status lm_prune_check(const rw_model *m, const rw_lm_prune_config *c, const rw_gpt_config *g,
                         int *context);

/* What the calibration tokens say about one map's input x. */
typedef struct {
    int layer, rows, cols;
    double *sq;  /* [cols] Σ x² over the tokens (Wanda) */
    double *h;   /* [cols][cols] X Xᵀ (SparseGPT, DSnoT) */
    double *sum; /* [cols] Σ x (DSnoT) */
    int64_t tokens;
} map_stats;

void lm_prune_stats_free(map_stats *s); /* the block's LM_PRUNE_MAPS records */

/* The calibration tokens' residual stream as it enters the block being
 * pruned: each block runs once to collect its maps' statistics and once
 * to carry the stream to the next block, so the model is never run from
 * the start again. */
typedef struct {
    workspace ws;           /* a batch of `per` windows through one block */
    int T, samples, per, C;
    int64_t n;              /* samples · T tokens */
    float *x;               /* [C][n] the stream, token t of window w at column w · T + t */
    int32_t *windows;       /* [samples][T], the stream's own */
} calib_stream;

/* 1 if the method reads calibration inputs (Wanda, SparseGPT, DSnoT). */
int lm_prune_reads_calibration(rw_lm_prune_method m);

/* Draws c's calibration windows (c->calib_samples of T tokens from the
 * training split, seeded by c->seed) and embeds them: the stream entering
 * block 0, of width C. For a method that reads no calibration (magnitude)
 * the stream stays empty (cs->x NULL). lm_stream_free in every case. */
rw_status lm_stream_open(calib_stream *cs, const rw_model *m, const rw_lm_prune_config *c, int T,
                         int C);
/* Carries the stream through block b as the model now has it. */
void lm_stream_advance(calib_stream *cs, const rw_model *m, int b);
void lm_stream_free(calib_stream *cs);

/* The statistics of block b's maps (s [LM_PRUNE_MAPS]) over the stream as
 * it stands; X Xᵀ only with want_h. The records are zero-filled (no
 * statistics) when cs is NULL (magnitude). */
rw_status lm_collect_block(calib_stream *cs, const rw_model *m, int b, int want_h, map_stats *s);

/* The map of s pruned by c's method at `sparsity` (c's N:M when nm_m >
 * 0), the model unchanged: *out gets the kept weights as CSR (N:M: every
 * kept slot, zeros too), *error the relative reconstruction error (NAN
 * without X Xᵀ), *seconds the time spent choosing the weights. */
rw_status lm_prune_map_csr(const rw_model *m, const map_stats *s, const rw_lm_prune_config *c,
                           double sparsity, csr_matrix *out, double *error, double *seconds);

#endif
