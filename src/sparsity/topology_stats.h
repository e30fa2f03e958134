/* Measures of a changing topology: how it differs from the previous one,
 * how much of the dense network it has visited, and neurons it cut off. */
#ifndef RW_SPARSITY_TOPOLOGY_STATS_H
#define RW_SPARSITY_TOPOLOGY_STATS_H

#include <stdint.h>

#include "nn/model.h"
#include "sparsity/topology.h"

/* A sparsity pattern alone: row pointers and sorted column indices. */
typedef struct {
    int rows;
    int64_t nnz;
    int32_t *indptr;  /* [rows + 1] */
    int32_t *indices; /* [nnz] */
} pattern;

/* Copies the pattern of m into p (p's old arrays are freed). */
rw_status pattern_copy(pattern *p, const csr_matrix *m);
void pattern_free(pattern *p);

/* Positions stored in exactly one of p and m (same shape): the Sparse
 * Architecture Divergence of "Learning N:M Fine-grained Structured Sparse
 * Neural Networks From Scratch", Zhou et al. 2021. */
int64_t pattern_difference(const pattern *p, const csr_matrix *m);

/* Adds count positions (row · cols + col, distinct, any order) to p, the
 * positions ever stored, for the in-time over-parameterisation rate ("Do
 * We Actually Need Dense Over-Parameterization? In-Time
 * Over-Parameterization in Sparse Training", Liu et al. 2021); positions p
 * holds already are skipped. A topology update adds only what it grew:
 * the rest of the new pattern was stored before, so is in p already. On
 * failure p is unchanged. */
rw_status pattern_add(pattern *p, const int64_t *pos, int count, int cols);

/* The same from positions grouped by row (topology.h). */
rw_status pattern_add_buckets(pattern *p, const row_buckets *b);

/* dead[h] (h < n_layers - 1): neurons of hidden layer h (the outputs of
 * layer h) with no stored input or no stored output; *unconnected: inputs
 * of the network with no stored output. Dense layers connect everything. */
void topology_dead_neurons(const rw_model *m, int64_t *dead, int64_t *unconnected);

#endif
