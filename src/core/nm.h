/* N:M structured sparse weights: in every group of M consecutive inputs of
 * an output row, exactly N slots are stored, each a value and its position
 * inside the group (a byte). Compared with CSR at the same density this
 * drops the row pointers and narrows each 32-bit column index to 8 bits,
 * and every row holds the same number of weights, so work splits evenly.
 * ("Learning N:M Fine-grained Structured Sparse Neural Networks From
 * Scratch", Zhou et al. 2021, for the pattern.) */
#ifndef RW_CORE_NM_H
#define RW_CORE_NM_H

#include <stdint.h>

#include "rewire.h"

#define NM_MAX_M 64

typedef struct {
    int rows, cols;    /* out, in; cols is a multiple of m */
    int n, m;          /* n stored slots in every group of m inputs, 1 <= n <= m */
    int groups;        /* cols / m */
    float *values;     /* [rows][groups][n] */
    uint8_t *offsets;  /* [rows][groups][n], strictly increasing within a group, < m */
} nm_matrix;

/* Input g*m + offsets[k] of row o holds values[k], k = (o*groups + g)*n + j. */
static inline int nm_slots_per_row(const nm_matrix *w) { return w->groups * w->n; }

/* Allocates a rows × cols N:M matrix with every slot zero at offsets
 * 0..n-1. Fails, naming the sizes, when cols is not a multiple of m or
 * n, m are out of range. */
rw_status nm_alloc(nm_matrix *w, int rows, int cols, int n, int m);
void nm_free(nm_matrix *w);

/* Keeps, in each group of a dense row-major [rows][cols] matrix, the n
 * entries of largest magnitude (the lower position wins a tie). */
void nm_from_dense_magnitude(nm_matrix *w, const float *dense);

/* Expands to a dense row-major [rows][cols] matrix. */
void nm_to_dense(const nm_matrix *w, float *dense);

/* Offsets strictly increasing and below m in every group, values finite;
 * messages start with `what`. */
rw_status nm_validate(const nm_matrix *w, const char *what);

/* Bytes stored for the weights: values and offsets. */
int64_t nm_weight_bytes(const nm_matrix *w);

#endif
