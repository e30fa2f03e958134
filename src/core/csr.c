#include "core/csr.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

rw_status csr_alloc(csr_matrix *m, int rows, int cols, int nnz)
{
    memset(m, 0, sizeof *m);
    if (rows < 0 || cols < 0 || nnz < 0 || (int64_t)nnz > (int64_t)rows * cols)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "sparse matrix %d x %d cannot hold %d entries",
                       rows, cols, nnz);
    m->rows = rows;
    m->cols = cols;
    m->nnz = nnz;
    m->indptr = rw_alloc(sizeof(int32_t) * ((size_t)rows + 1));
    m->indices = rw_alloc(sizeof(int32_t) * (size_t)nnz);
    m->values = rw_alloc(sizeof(float) * (size_t)nnz);
    m->t_indptr = rw_alloc(sizeof(int32_t) * ((size_t)cols + 1));
    m->t_rows = rw_alloc(sizeof(int32_t) * (size_t)nnz);
    m->t_perm = rw_alloc(sizeof(int32_t) * (size_t)nnz);
    if (!m->indptr || !m->indices || !m->values || !m->t_indptr || !m->t_rows || !m->t_perm) {
        csr_free(m);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for a %d x %d sparse matrix with %d entries",
                       rows, cols, nnz);
    }
    return RW_OK;
}

void csr_free(csr_matrix *m)
{
    rw_free(m->indptr);
    rw_free(m->indices);
    rw_free(m->values);
    rw_free(m->t_indptr);
    rw_free(m->t_rows);
    rw_free(m->t_perm);
    rw_free(m->indices16);
    rw_free(m->t_rows16);
    memset(m, 0, sizeof *m);
}

/* The narrow copies of indices and t_rows, where the dimensions allow. */
static void build_narrow(csr_matrix *m)
{
    int want_cols = m->cols <= 65536, want_rows = m->rows <= 65536;
    if (m->nnz > m->narrow_cap || (want_cols && !m->indices16) || (want_rows && !m->t_rows16)) {
        rw_free(m->indices16);
        rw_free(m->t_rows16);
        m->indices16 = want_cols ? rw_alloc(sizeof(uint16_t) * (size_t)m->nnz) : NULL;
        m->t_rows16 = want_rows ? rw_alloc(sizeof(uint16_t) * (size_t)m->nnz) : NULL;
        m->narrow_cap = m->nnz;
    }
    if (m->indices16)
        for (int k = 0; k < m->nnz; k++) m->indices16[k] = (uint16_t)m->indices[k];
    if (m->t_rows16)
        for (int k = 0; k < m->nnz; k++) m->t_rows16[k] = (uint16_t)m->t_rows[k];
}

void csr_build_transpose(csr_matrix *m)
{
    int32_t *tp = m->t_indptr;
    memset(tp, 0, sizeof(int32_t) * ((size_t)m->cols + 1));
    for (int k = 0; k < m->nnz; k++) tp[m->indices[k] + 1]++;
    for (int c = 0; c < m->cols; c++) tp[c + 1] += tp[c];
    /* Scatter rows in increasing order so each column's rows are sorted;
     * t_rows is used as the running cursor's target. */
    int32_t *next = rw_alloc(sizeof(int32_t) * ((size_t)m->cols + 1));
    if (next) {
        memcpy(next, tp, sizeof(int32_t) * (size_t)m->cols);
        for (int r = 0; r < m->rows; r++)
            for (int k = m->indptr[r]; k < m->indptr[r + 1]; k++) {
                int dst = next[m->indices[k]]++;
                m->t_rows[dst] = r;
                m->t_perm[dst] = k;
            }
        rw_free(next);
        build_narrow(m);
        return;
    }
    /* Without scratch memory, place each entry by scanning (slow but exact). */
    for (int c = 0; c < m->cols; c++) {
        int dst = tp[c];
        for (int r = 0; r < m->rows; r++)
            for (int k = m->indptr[r]; k < m->indptr[r + 1]; k++)
                if (m->indices[k] == c) {
                    m->t_rows[dst] = r;
                    m->t_perm[dst++] = k;
                }
    }
    build_narrow(m);
}

rw_status csr_validate(const csr_matrix *m, const char *what)
{
    if (m->indptr[0] != 0)
        return rw_fail(RW_ERR_FORMAT, "%s: indptr[0] is %d, expected 0", what, m->indptr[0]);
    for (int r = 0; r < m->rows; r++) {
        if (m->indptr[r + 1] < m->indptr[r])
            return rw_fail(RW_ERR_FORMAT, "%s: indptr is not monotone at row %d (%d then %d)", what,
                           r, m->indptr[r], m->indptr[r + 1]);
        if (m->indptr[r + 1] > m->nnz)
            return rw_fail(RW_ERR_FORMAT, "%s: indptr[%d] = %d exceeds the %d stored entries", what,
                           r + 1, m->indptr[r + 1], m->nnz);
    }
    if (m->indptr[m->rows] != m->nnz)
        return rw_fail(RW_ERR_FORMAT, "%s: indptr ends at %d but there are %d entries", what,
                       m->indptr[m->rows], m->nnz);
    for (int r = 0; r < m->rows; r++)
        for (int k = m->indptr[r]; k < m->indptr[r + 1]; k++) {
            int c = m->indices[k];
            if (c < 0 || c >= m->cols)
                return rw_fail(RW_ERR_FORMAT, "%s: index %d in row %d is outside [0, %d)", what, c, r,
                               m->cols);
            if (k > m->indptr[r] && c <= m->indices[k - 1])
                return rw_fail(RW_ERR_FORMAT,
                               "%s: indices in row %d are not strictly increasing (%d after %d)",
                               what, r, c, m->indices[k - 1]);
        }
    for (int k = 0; k < m->nnz; k++)
        if (!isfinite(m->values[k]))
            return rw_fail(RW_ERR_FORMAT, "%s: value %d is not finite", what, k);
    return RW_OK;
}
