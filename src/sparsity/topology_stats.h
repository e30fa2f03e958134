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

/* Over the weights params[weights[0..n)] of m: dead[h] (h < n - 1)
 * counts the neurons between weights h and h + 1 of a chain (h + 1 reads
 * what h writes) with no stored input or no stored output, counted where
 * one of the two is sparse; *unconnected the model inputs a sparse weight
 * reading them has no connection from. */
void topology_dead_neurons(const rw_model *m, const int *weights, int n, int64_t *dead,
                           int64_t *unconnected);

#endif
