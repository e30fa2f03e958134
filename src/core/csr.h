/* Compressed sparse row weights, the storage every sparse layer uses.
 * A matrix is out × in ("rows × cols"); only stored entries exist. The
 * transposed view lets the backward pass walk columns without a second copy
 * of the values: column c's entries are k in [t_indptr[c], t_indptr[c+1]),
 * at row t_rows[k] with value values[t_perm[k]]. */
#ifndef RW_CORE_CSR_H
#define RW_CORE_CSR_H

#include <stdint.h>

#include "rewire.h"

typedef struct {
    int rows, cols;    /* out, in */
    int nnz;
    int32_t *indptr;   /* [rows + 1], indptr[0] = 0, indptr[rows] = nnz */
    int32_t *indices;  /* [nnz], strictly increasing within a row */
    float *values;     /* [nnz] */
    int32_t *t_indptr; /* [cols + 1] transposed view */
    int32_t *t_rows;   /* [nnz] row of the k-th entry in column order */
    int32_t *t_perm;   /* [nnz] position of that entry in values */
    /* Narrow copies for the kernels, rebuilt with the transposed view: a
     * 16-bit index is half the bytes the kernels stream per nonzero. NULL
     * when the dimension does not fit (cols or rows > 65536). */
    uint16_t *indices16; /* [nnz] indices, when cols <= 65536 */
    uint16_t *t_rows16;  /* [nnz] t_rows, when rows <= 65536 */
    int narrow_cap;      /* entries the two narrow arrays can hold */
} csr_matrix;

/* Allocates an empty rows × cols matrix with room for nnz entries; indptr is
 * zeroed. The transposed view is built by csr_build_transpose. */
rw_status csr_alloc(csr_matrix *m, int rows, int cols, int nnz);
void csr_free(csr_matrix *m);

/* (Re)builds t_indptr, t_rows, t_perm from indptr/indices: counting sort by
 * column, so rows stay increasing within each column; and the narrow
 * copies indices16 and t_rows16 (reallocated if nnz grew; left NULL if
 * that fails, and the kernels then read the 32-bit arrays). Call it after
 * any change of the pattern. */
void csr_build_transpose(csr_matrix *m);

/* Checks the structure (indptr monotone from 0 to nnz, indices in range,
 * strictly increasing within each row) and that values are finite. On
 * failure the message starts with `what` (e.g. "model.safetensors: fc1"). */
rw_status csr_validate(const csr_matrix *m, const char *what);

#endif
