/* How an overall sparsity target is shared among layers, and the random
 * topology each layer starts from. */
#ifndef RW_SPARSITY_DISTRIBUTION_H
#define RW_SPARSITY_DISTRIBUTION_H

#include "core/csr.h"
#include "core/rng.h"
#include "rewire.h"

/* Fills density[n_layers] (fraction of stored weights per layer) so that the
 * stored weights over all layers are (1 - sparsity) of all weights. Layers
 * flagged in keep_dense[] (may be NULL) get density 1 and the others share
 * the rest. ER and ERK: density ∝ (in + out) / (in · out), scaled by one ε;
 * a layer whose density would exceed 1 is capped at 1 and ε is solved again
 * over the remaining layers ("Rigging the Lottery", Evci et al. 2020, and
 * SET's Erdős–Rényi, Mocanu et al. 2018). Fails when the target cannot be
 * met (e.g. dense layers alone exceed it). */
rw_status sparsity_distribute(const int *sizes, int n_layers, double sparsity,
                              rw_distribution dist, const int *keep_dense, double *density);

/* The same for n weight matrices of any shapes (rows[l] × cols[l]), such
 * as a model's parameter list gives them. */
rw_status sparsity_distribute_shapes(const int *rows, const int *cols, int n_layers,
                                     double sparsity, rw_distribution dist,
                                     const int *keep_dense, double *density);

/* A uniformly random pattern of round(density · rows · cols) distinct
 * entries (at least 1 when density > 0); values left zero; transposed view
 * built. Memory is O(nnz) whatever rows · cols is. */
rw_status sparsity_random_pattern(csr_matrix *m, int rows, int cols, double density,
                                  rng_state *r);

#endif
