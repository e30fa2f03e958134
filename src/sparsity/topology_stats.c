#include "sparsity/topology_stats.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sparsity/topology.h"

rw_status pattern_copy(pattern *p, const csr_matrix *m)
{
    int32_t *ptr = malloc(sizeof(int32_t) * ((size_t)m->rows + 1));
    int32_t *idx = malloc(sizeof(int32_t) * ((size_t)m->nnz + 1));
    if (!ptr || !idx) {
        free(ptr);
        free(idx);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory copying a pattern of %d entries", m->nnz);
    }
    memcpy(ptr, m->indptr, sizeof(int32_t) * ((size_t)m->rows + 1));
    memcpy(idx, m->indices, sizeof(int32_t) * (size_t)m->nnz);
    pattern_free(p);
    p->rows = m->rows;
    p->nnz = m->nnz;
    p->indptr = ptr;
    p->indices = idx;
    return RW_OK;
}

void pattern_free(pattern *p)
{
    free(p->indptr);
    free(p->indices);
    memset(p, 0, sizeof *p);
}

int64_t pattern_difference(const pattern *p, const csr_matrix *m)
{
    int64_t common = 0;
    for (int r = 0; r < m->rows; r++) {
        int a = p->indptr[r], ae = p->indptr[r + 1], b = m->indptr[r], be = m->indptr[r + 1];
        while (a < ae && b < be) {
            if (p->indices[a] < m->indices[b])
                a++;
            else if (p->indices[a] > m->indices[b])
                b++;
            else
                common++, a++, b++;
        }
    }
    return (p->nnz - common) + (m->nnz - common);
}

/* The first index in idx[lo, hi) not below c. */
static int lower_bound(const int32_t *idx, int lo, int hi, int32_t c)
{
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (idx[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

rw_status pattern_add(pattern *p, const int64_t *pos, int count, int cols)
{
    if (count <= 0) return RW_OK;
    int rows = p->rows;
    int32_t *start = malloc(sizeof(int32_t) * ((size_t)rows + 1));
    int32_t *fill = malloc(sizeof(int32_t) * ((size_t)rows + 1));
    int32_t *col = malloc(sizeof(int32_t) * (size_t)count);
    if (!start || !fill || !col) {
        free(start);
        free(fill);
        free(col);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory tracking %d new positions", count);
    }
    topology_bucket(pos, count, rows, cols, start, fill, col);
    /* A row's new positions are few next to its old ones: a binary search
     * per position, and the old row copied in runs between them, beat a
     * merge that compares every old entry (which took 12% of a RigL
     * update). First count the ones not held yet, for an exact size. */
    int64_t fresh = 0;
    for (int r = 0; r < rows; r++)
        for (int j = start[r]; j < start[r + 1]; j++) {
            int a = lower_bound(p->indices, p->indptr[r], p->indptr[r + 1], col[j]);
            if (a == p->indptr[r + 1] || p->indices[a] != col[j]) fresh++;
        }
    if (fresh == 0) {
        free(start);
        free(fill);
        free(col);
        return RW_OK;
    }
    int64_t total = p->nnz + fresh;
    int32_t *ptr = total <= INT32_MAX ? malloc(sizeof(int32_t) * ((size_t)rows + 1)) : NULL;
    int32_t *idx = total <= INT32_MAX ? malloc(sizeof(int32_t) * (size_t)total) : NULL;
    if (!ptr || !idx) {
        free(start);
        free(fill);
        free(col);
        free(ptr);
        free(idx);
        return total > INT32_MAX
                   ? rw_fail(RW_ERR_INVALID_ARGUMENT, "more than 2^31 positions ever stored in a layer")
                   : rw_fail(RW_ERR_NO_MEMORY, "out of memory tracking %lld positions",
                             (long long)total);
    }
    int32_t n = 0;
    ptr[0] = 0;
    for (int r = 0; r < rows; r++) {
        int a = p->indptr[r], ae = p->indptr[r + 1];
        for (int j = start[r]; j < start[r + 1]; j++) {
            int at = lower_bound(p->indices, a, ae, col[j]);
            memcpy(idx + n, p->indices + a, sizeof(int32_t) * (size_t)(at - a));
            n += at - a;
            a = at;
            if (a < ae && p->indices[a] == col[j]) continue; /* stored before */
            idx[n++] = col[j];
        }
        memcpy(idx + n, p->indices + a, sizeof(int32_t) * (size_t)(ae - a));
        n += ae - a;
        ptr[r + 1] = n;
    }
    free(start);
    free(fill);
    free(col);
    free(p->indptr);
    free(p->indices);
    p->indptr = ptr;
    p->indices = idx;
    p->nnz = n;
    return RW_OK;
}

void topology_dead_neurons(const rw_model *m, int64_t *dead, int64_t *unconnected)
{
    *unconnected = 0;
    const layer *first = &m->layers[0];
    if (first->sparse)
        for (int i = 0; i < first->in; i++)
            *unconnected += first->w.t_indptr[i + 1] == first->w.t_indptr[i];
    for (int h = 0; h + 1 < m->n_layers; h++) {
        const layer *in = &m->layers[h], *out = &m->layers[h + 1];
        dead[h] = 0;
        if (!in->sparse && !out->sparse) continue;
        for (int j = 0; j < in->out; j++) {
            int no_input = in->sparse && in->w.indptr[j + 1] == in->w.indptr[j];
            int no_output = out->sparse && out->w.t_indptr[j + 1] == out->w.t_indptr[j];
            dead[h] += no_input || no_output;
        }
    }
}
