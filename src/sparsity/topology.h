/* The shared machinery of every topology change of a CSR layer: removal is
 * one compaction with a predicate (CSparse's cs_fkeep), growth is count,
 * prefix sum, scatter (cs_cumsum). Arrays parallel to the values (optimizer
 * state, the gradient buffer) move with their weight; removed entries lose
 * their state, inserted ones start at zero weight and zero state.
 *
 * Both operations leave the transposed view stale: call csr_build_transpose
 * once after the last change. Nothing here allocates rows × cols. */
#ifndef RW_SPARSITY_TOPOLOGY_H
#define RW_SPARSITY_TOPOLOGY_H

#include <stdint.h>

#include "core/csr.h"
#include "core/rng.h"

#define TOPOLOGY_MAX_PARALLEL 4

/* Arrays parallel to a matrix's values, by address so that an insertion can
 * replace them. An entry whose array is NULL is skipped (e.g. the second
 * Adam moment under SGD). */
typedef struct {
    float **arr[TOPOLOGY_MAX_PARALLEL];
    int n;
} parallel_arrays;

/* A position of a layer, row-major: row * cols + col. */
static inline int64_t topology_pos(int row, int col, int cols) { return (int64_t)row * cols + col; }

/* Keeps the entries with drop[k] == 0, in order, moving indices, values and
 * every parallel array with the same compaction; returns the number removed.
 * In place, no allocation. */
int topology_keep(csr_matrix *m, const uint8_t *drop, parallel_arrays *p);

/* Groups count positions (row · cols + col) by row: row r's columns end up
 * in col[start[r] .. start[r + 1]), sorted (count per row, prefix sum as
 * cs_cumsum, scatter, then each short bucket sorted). start has rows + 1
 * entries, fill rows (scratch), col count. */
void topology_bucket(const int64_t *pos, int count, int rows, int cols, int32_t *start, int32_t *fill,
                     int32_t *col);

/* Positions grouped by row, as topology_bucket leaves them: row r's
 * columns, sorted, are col[start[r] .. start[r + 1]). A topology update
 * groups its grown positions once for the layer and for the record of
 * positions ever stored. */
typedef struct {
    int count;
    int32_t *start; /* [rows + 1] */
    int32_t *col;   /* [count] */
} row_buckets;

/* Groups count positions of a layer of `cols` columns; free with
 * row_buckets_free. RW_ERR_NO_MEMORY when out of memory (b then empty). */
rw_status row_buckets_make(row_buckets *b, const int64_t *pos, int count, int rows, int cols);
void row_buckets_free(row_buckets *b);

/* Inserts new entries at the given positions (distinct, none already
 * stored), with value 0 and 0 in every parallel array: a prefix sum for
 * the new row pointers, then each row's old and new entries merged in
 * column order into freshly allocated arrays. On failure (out of memory)
 * the matrix and arrays are unchanged. */
rw_status topology_insert_buckets(csr_matrix *m, const row_buckets *b, parallel_arrays *p);

/* The same from `count` positions in any order. */
rw_status topology_insert(csr_matrix *m, const int64_t *pos, int count, parallel_arrays *p);

/* Reallocates the matrix's arrays (and every parallel array) to exactly
 * nnz entries, after topology_keep removed some, so that memory shrinks
 * with the pattern. The narrow copies are dropped, to be rebuilt at the new
 * size by csr_build_transpose. On failure (out of memory) nothing changes:
 * the arrays just stay larger than needed. */
rw_status topology_shrink(csr_matrix *m, parallel_arrays *p);

/* 1 if (row, col) is stored (binary search in the row). */
int topology_contains(const csr_matrix *m, int row, int col);

/* The k-th smallest (0-based, 0 <= k < n) of x[0..n), NaN-free: radix
 * selection on the floats' bits, three reads of x, no copy. */
float topology_kth_smallest(const float *x, int n, int k);

/* Marks (mark[i] = 1) the k entries with the smallest score; ties go to the
 * lower index, so the choice is deterministic. Other marks are cleared.
 * O(n), no allocation: radix selection of the k-th smallest, then two
 * passes. Returns the number marked, min(max(k, 0), n). */
int topology_select_smallest(const float *score, int n, int k, uint8_t *mark);

/* Marks k of n entries uniformly at random (selection sampling). */
void topology_select_random(int n, int k, rng_state *r, uint8_t *mark);

#endif
