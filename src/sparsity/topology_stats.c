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
    /* One merge into arrays sized for the worst case (nothing in common),
     * rather than a counting pass first: the union runs at every topology
     * update, and the second pass over both patterns was most of its cost. */
    int64_t most = (int64_t)p->nnz + m->nnz;
    if (most > INT32_MAX) {
        /* |p ∪ m| = (|p| + |m| + |p Δ m|) / 2, counted exactly. */
        most = (p->nnz + m->nnz + pattern_difference(p, m)) / 2;
        if (most > INT32_MAX)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "more than 2^31 positions ever stored in a layer");
    }
    int32_t *ptr = malloc(sizeof(int32_t) * ((size_t)m->rows + 1));
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)(most > 0 ? most : 1));
    if (!ptr || !idx) {
        free(ptr);
        free(idx);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory tracking %lld positions", (long long)most);
    }
    int32_t n = 0;
    ptr[0] = 0;
    for (int r = 0; r < m->rows; r++) {
        int a = p->indptr[r], ae = p->indptr[r + 1], b = m->indptr[r], be = m->indptr[r + 1];
        while (a < ae && b < be) {
            int32_t x = p->indices[a], y = m->indices[b];
            idx[n++] = x < y ? x : y;
            a += x <= y;
            b += y <= x;
        }
        while (a < ae) idx[n++] = p->indices[a++];
        while (b < be) idx[n++] = m->indices[b++];
        ptr[r + 1] = n;
    }
    if (n == p->nnz) { /* nothing new */
        free(ptr);
        free(idx);
        return RW_OK;
    }
    /* Give back the worst case's spare room (shrinking keeps the data). */
    int32_t *fit = realloc(idx, sizeof(int32_t) * (size_t)n);
    free(p->indptr);
    free(p->indices);
    p->indptr = ptr;
    p->indices = fit ? fit : idx;
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
