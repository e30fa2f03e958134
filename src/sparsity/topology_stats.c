#include "sparsity/topology_stats.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

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

rw_status pattern_union(pattern *p, const csr_matrix *m)
{
    /* Count the union row by row, then merge into new arrays. */
    int64_t total = 0;
    for (int r = 0; r < m->rows; r++) {
        int a = p->indptr[r], ae = p->indptr[r + 1], b = m->indptr[r], be = m->indptr[r + 1];
        while (a < ae || b < be) {
            if (b == be || (a < ae && p->indices[a] < m->indices[b]))
                a++;
            else if (a == ae || p->indices[a] > m->indices[b])
                b++;
            else
                a++, b++;
            total++;
        }
    }
    if (total == p->nnz) return RW_OK; /* nothing new */
    if (total > INT32_MAX)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "more than 2^31 positions ever stored in a layer");
    int32_t *ptr = malloc(sizeof(int32_t) * ((size_t)m->rows + 1));
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)total);
    if (!ptr || !idx) {
        free(ptr);
        free(idx);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory tracking %lld positions", (long long)total);
    }
    int32_t n = 0;
    ptr[0] = 0;
    for (int r = 0; r < m->rows; r++) {
        int a = p->indptr[r], ae = p->indptr[r + 1], b = m->indptr[r], be = m->indptr[r + 1];
        while (a < ae || b < be) {
            if (b == be || (a < ae && p->indices[a] < m->indices[b]))
                idx[n++] = p->indices[a++];
            else if (a == ae || p->indices[a] > m->indices[b])
                idx[n++] = m->indices[b++];
            else
                idx[n++] = p->indices[a++], b++;
        }
        ptr[r + 1] = n;
    }
    free(p->indptr);
    free(p->indices);
    p->indptr = ptr;
    p->indices = idx;
    p->nnz = total;
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
