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

/* The first index in idx[lo, hi) not below c. The halving steps choose by
 * a conditional move, not a branch: the searched values are random, and a
 * mispredicted branch per step made the searches most of pattern_add. */
static int lower_bound(const int32_t *idx, int lo, int hi, int32_t c)
{
    const int32_t *base = idx + lo;
    int n = hi - lo;
    if (n == 0) return lo;
    while (n > 1) {
        int half = n / 2;
        base = base[half - 1] < c ? base + half : base;
        n -= half;
    }
    return (int)(base - idx) + (*base < c);
}

rw_status pattern_add(pattern *p, const int64_t *pos, int count, int cols)
{
    if (count <= 0) return RW_OK;
    row_buckets b;
    rw_status st = row_buckets_make(&b, pos, count, p->rows, cols);
    if (st == RW_OK) st = pattern_add_buckets(p, &b);
    row_buckets_free(&b);
    return st;
}

rw_status pattern_add_buckets(pattern *p, const row_buckets *b)
{
    int rows = p->rows, count = b->count;
    if (count <= 0) return RW_OK;
    const int32_t *start = b->start, *col = b->col;
    /* Room for every position given; the exact count is known after. */
    int32_t *ptr = malloc(sizeof(int32_t) * ((size_t)rows + 1));
    int32_t *idx = malloc(sizeof(int32_t) * ((size_t)p->nnz + (size_t)count));
    rw_status st = RW_OK;
    if (!ptr || !idx) {
        st = rw_fail(RW_ERR_NO_MEMORY, "out of memory tracking %d new positions", count);
        goto done;
    }
    /* A row's new positions are few next to its old ones: a search per
     * position, and the old row copied in runs between them, beat a merge
     * that compares every old entry (which took 12% of a RigL update). */
    int64_t n = 0;
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
        if (n > INT32_MAX) {
            st = rw_fail(RW_ERR_INVALID_ARGUMENT, "more than 2^31 positions ever stored in a layer");
            goto done;
        }
        ptr[r + 1] = (int32_t)n;
    }
    /* The new arrays replace the old (the unused tail of idx is harmless:
     * nnz says where it ends). */
    int32_t *old_ptr = p->indptr, *old_idx = p->indices;
    p->indptr = ptr;
    p->indices = idx;
    p->nnz = n;
    ptr = old_ptr;
    idx = old_idx;
done: /* frees the new arrays on failure, the old ones on success */
    free(ptr);
    free(idx);
    return st;
}

void topology_dead_neurons(const rw_model *m, const int *weights, int n, int64_t *dead,
                           int64_t *unconnected)
{
    *unconnected = 0;
    for (int w = 0; w < n; w++) {
        const param *p = &m->params[weights[w]];
        if (p->x_tensor == 0 && param_is_sparse(p))
            for (int i = 0; i < p->cols; i++)
                *unconnected += p->csr->t_indptr[i + 1] == p->csr->t_indptr[i];
    }
    /* A hidden neuron between two weights of a chain (the second reads
     * what the first writes) is dead without inputs or without outputs. */
    for (int h = 0; h + 1 < n; h++) {
        const param *in = &m->params[weights[h]], *out = &m->params[weights[h + 1]];
        dead[h] = 0;
        if (out->x_tensor < 0 || out->x_tensor != in->y_tensor) continue;
        if (!param_is_sparse(in) && !param_is_sparse(out)) continue;
        for (int j = 0; j < in->rows; j++) {
            int no_input = param_is_sparse(in) && in->csr->indptr[j + 1] == in->csr->indptr[j];
            int no_output =
                param_is_sparse(out) && out->csr->t_indptr[j + 1] == out->csr->t_indptr[j];
            dead[h] += no_input || no_output;
        }
    }
}
