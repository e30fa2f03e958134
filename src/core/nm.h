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
    /* Optional transposed view (nm_build_transpose), for the backward
     * kernel of a layer whose pattern no longer changes: for each input
     * column, the rows that store it, in increasing order, and their slots.
     * NULL until built. With it the backward sums in registers as CSR's
     * does; without it, it accumulates in memory (a store per term).
     * The columns are offset-major: position q = j * groups + g holds column
     * g * m + j. In column order the m columns of a group hold every row
     * exactly once between them, so a row's dy is reused only a whole group
     * later; offset-major neighbours overlap at random, as CSR's columns
     * do (measured 1:16, 1,024 square: CSR's own kernel ran 5-10% slower
     * on the N:M pattern in column order than on a random one, and as fast
     * in this order). */
    int32_t *t_start;   /* [cols + 1] by position */
    int32_t *t_col;     /* [cols] the column at position q */
    int32_t *t_rows;    /* [slots] */
    int32_t *t_slot;    /* [slots] index into values */
    uint16_t *t_rows16; /* [slots] t_rows when rows <= 65536, else NULL */
} nm_matrix;

/* Input g*m + offsets[k] of row o holds values[k], k = (o*groups + g)*n + j. */
static inline int nm_slots_per_row(const nm_matrix *w) { return w->groups * w->n; }

/* The input of slot k of a row whose offsets start at row_offsets: its
 * group (k / n) times m plus its offset. The kernels call it with n and m
 * constants where they can. */
static inline int nm_slot_input(int k, int n, int m, const uint8_t *row_offsets)
{
    return k / n * m + row_offsets[k];
}

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

/* (Re)builds the transposed view from the offsets (call again after they
 * change). Fails only when out of memory, leaving no view. */
rw_status nm_build_transpose(nm_matrix *w);

/* Builds the transposed view when the backward kernel runs faster with
 * it: for patterns sparser than half (2n < m). Denser patterns sum in
 * memory faster (measured: 2:4 at batch 32-256, 1.05-1.3x CSR's speed
 * without the view, CSR's speed with it). For layers whose pattern is
 * fixed from now on (loaded, converted, or at the end of N:M training). */
rw_status nm_prepare_backward(nm_matrix *w);

/* Bytes a prepared rows x cols N:M matrix holds in memory: values,
 * offsets, and the transposed view when nm_prepare_backward builds one. */
int64_t nm_memory_bytes(int64_t rows, int64_t cols, int n, int m);

#endif
