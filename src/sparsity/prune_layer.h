/* Post-training pruning of one linear map y = W x from calibration
 * statistics of its input x, the building blocks rw_lm_prune runs layer by
 * layer (models/gpt_prune.c). One file per method:
 *   prune_layer.c      choosing the best entries, the Hessian X Xᵀ and the
 *                      reconstruction error every method is judged by
 *   prune_magnitude.c  |w| per output row, or one threshold over many maps
 *   prune_wanda.c      |w| · ‖x‖₂ per output row
 *   prune_sparsegpt.c  OBS reconstruction with the damped Hessian
 *   prune_dsnot.c      prune-and-grow swaps that lower the error
 * Every function works on a dense row-major w [rows][cols] (absent weights
 * are zeros), writes keep [rows][cols] (1: the weight stays) and sets the
 * weights it removes to zero. */
#ifndef RW_SPARSITY_PRUNE_LAYER_H
#define RW_SPARSITY_PRUNE_LAYER_H

#include <stdint.h>

#include "rewire.h"

/* What to keep: with m > 0, n of every m consecutive inputs of each row
 * (N:M); otherwise the fraction `sparsity` of each row (or block) removed,
 * the kept count rounded to the nearest integer. */
typedef struct {
    double sparsity;
    int n, m;
} prune_target;

/* Entries kept of `count` at the target (unstructured). */
int64_t prune_kept_count(int64_t count, double sparsity);

/* Sets keep[k] = 1 for the `want` entries of largest score[k], k in
 * [0, count); the lower index wins a tie (so a numpy stable argsort gives
 * the same mask). RW_ERR_NO_MEMORY is the only failure. */
rw_status prune_keep_largest(const float *score, int64_t count, int64_t want, uint8_t *keep);

/* The same for scores in double. */
rw_status prune_keep_largest_d(const double *score, int64_t count, int64_t want, uint8_t *keep);

/* Keeps, per row of score [rows][cols], the entries the target asks for:
 * the largest llround((1 - sparsity) · cols), or the n largest of every
 * group of m. */
rw_status prune_keep_rows(const float *score, int rows, int cols, const prune_target *t,
                          uint8_t *keep);

/* w[k] = 0 where keep[k] is 0. */
void prune_apply_mask(float *w, const uint8_t *keep, int64_t count);

/* Adds x xᵀ to h [cols][cols] (full, both triangles), for n samples of
 * x [cols][ld] (sample j of input i at x[i · ld + j]). RW_ERR_NO_MEMORY. */
rw_status prune_add_hessian(double *h, const float *x, int cols, int n, int ld);

/* Adds Σ_j x_ij² over the n samples to sq [cols] (x as above): Wanda's
 * norms are the square roots at the end. */
void prune_add_sq_norms(double *sq, const float *x, int cols, int n, int ld);

/* ‖W X − Ŵ X‖²_F = Σ_rows δᵀ H δ with δ = w − w_new and h = X Xᵀ, in
 * double (NAN when out of memory). */
double prune_reconstruction_error(const float *w, const float *w_new, int rows, int cols,
                                  const double *h);

/* ---- The methods ---- */

/* Magnitude ("Learning both Weights and Connections for Efficient Neural
 * Networks", Han et al. 2015): per row, score |w|. */
rw_status prune_magnitude_rows(float *w, int rows, int cols, const prune_target *t, uint8_t *keep);

/* Magnitude over `maps` maps at once: one threshold, the kept count
 * llround((1 - sparsity) · Σ rows · cols); w[i] is rows[i] × cols[i]. */
rw_status prune_magnitude_global(float *const *w, const int *rows, const int *cols, int maps,
                                 double sparsity, uint8_t *const *keep);

/* Wanda ("A Simple and Effective Pruning Approach for Large Language
 * Models", Sun et al. 2023): per row, score |w_ij| · ‖x_j‖₂, with xnorm
 * [cols] the norms of the inputs over the calibration tokens. */
rw_status prune_wanda(float *w, int rows, int cols, const float *xnorm, const prune_target *t,
                      uint8_t *keep);

/* SparseGPT ("SparseGPT: Massive Language Models Can Be Accurately Pruned
 * in One-Shot", Frantar and Alistarh 2023). h is X Xᵀ [cols][cols] (not
 * changed); the damped H + λI, λ = 0.01 · mean diag(H), is inverted by
 * Cholesky and the columns are eliminated left to right in blocks of
 * `block` (128 in the paper) with lazy updates of the columns after the
 * block. Unstructured: in each block the (1 - sparsity) of its rows ·
 * block entries with the largest w²/[H⁻¹]²_cc are kept; N:M: at the
 * first column of each group of m, per row, the n largest. An input never
 * seen (H_jj = 0) has its weights removed. RW_ERR_INVALID_ARGUMENT when
 * the damped H is not positive definite, RW_ERR_NO_MEMORY. */
rw_status prune_sparsegpt(float *w, int rows, int cols, const double *h, const prune_target *t,
                          int block, uint8_t *keep);

/* DSnoT ("Dynamic Sparse No Training: Training-Free Fine-tuning for
 * Sparse LLMs", Zhang et al. 2024): improves keep [rows][cols] (a mask of
 * the target, from any method) by up to `cycles` swaps per row, each
 * growing back one removed weight and removing one kept weight (of the
 * same group of m for N:M), accepted only when the row's error δᵀ H δ
 * falls; w (the dense weights, not changed) is multiplied by the final
 * mask by the caller. h is X Xᵀ, mu [cols] the mean input, xnorm [cols]
 * its norm. *swaps (may be NULL) gets the swaps made. RW_ERR_NO_MEMORY. */
rw_status prune_dsnot(const float *w, int rows, int cols, const double *h, const double *mu,
                      const float *xnorm, const prune_target *t, int cycles, uint8_t *keep,
                      int64_t *swaps);

/* Adds Σ_j x_ij over the n samples to sum [cols] (DSnoT's mean input). */
void prune_add_sums(double *sum, const float *x, int cols, int n, int ld);

#endif
