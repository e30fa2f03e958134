#include "sparsity/topology.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

int topology_keep(csr_matrix *m, const uint8_t *drop, parallel_arrays *p)
{
    /* cs_fkeep: one pass, writing each kept entry at the next free slot. */
    int nz = 0;
    for (int r = 0; r < m->rows; r++) {
        int k0 = m->indptr[r], k1 = m->indptr[r + 1];
        m->indptr[r] = nz;
        for (int k = k0; k < k1; k++) {
            if (drop[k]) continue;
            m->indices[nz] = m->indices[k];
            m->values[nz] = m->values[k];
            for (int a = 0; a < p->n; a++)
                if (*p->arr[a]) (*p->arr[a])[nz] = (*p->arr[a])[k];
            nz++;
        }
    }
    int removed = m->nnz - nz;
    m->indptr[m->rows] = nz;
    m->nnz = nz;
    return removed;
}

/* Sorting a row's new columns. Growth by gradient piles many into the
 * rows with the largest gradients, so a long bucket is sorted by flags
 * over the row's columns (O(cols), one byte each, reused from row to row);
 * a short one by insertion, which beats qsort's calls through a pointer
 * (they took 8% of a RigL update). */
static int compare_int32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

#define SHORT_BUCKET 48

static void sort_columns(int32_t *c, int n, uint8_t *flag)
{
    if (n > SHORT_BUCKET && flag) {
        for (int i = 0; i < n; i++) flag[c[i]] = 1;
        int k = 0;
        for (int j = 0; k < n; j++)
            if (flag[j]) c[k++] = j, flag[j] = 0;
        return;
    }
    if (n > SHORT_BUCKET) { /* no room for the flags */
        qsort(c, (size_t)n, sizeof *c, compare_int32);
        return;
    }
    for (int i = 1; i < n; i++) {
        int32_t v = c[i];
        int j = i;
        for (; j > 0 && c[j - 1] > v; j--) c[j] = c[j - 1];
        c[j] = v;
    }
}

void topology_bucket(const int64_t *pos, int count, int rows, int cols, int32_t *start, int32_t *fill,
                     int32_t *col)
{
    memset(start, 0, sizeof(int32_t) * ((size_t)rows + 1));
    for (int i = 0; i < count; i++) start[pos[i] / cols + 1]++;
    for (int r = 0; r < rows; r++) start[r + 1] += start[r];
    memcpy(fill, start, sizeof(int32_t) * (size_t)rows);
    for (int i = 0; i < count; i++) col[fill[pos[i] / cols]++] = (int32_t)(pos[i] % cols);
    uint8_t *flag = NULL;
    int tried = 0;
    for (int r = 0; r < rows; r++) {
        int n = start[r + 1] - start[r];
        if (n > SHORT_BUCKET && !tried) tried = 1, flag = calloc((size_t)cols, 1);
        if (n > 1) sort_columns(col + start[r], n, flag);
    }
    free(flag);
}

rw_status row_buckets_make(row_buckets *b, const int64_t *pos, int count, int rows, int cols)
{
    b->count = count;
    b->start = malloc(sizeof(int32_t) * ((size_t)rows + 1));
    b->col = malloc(sizeof(int32_t) * (size_t)(count > 0 ? count : 1));
    int32_t *fill = malloc(sizeof(int32_t) * ((size_t)rows + 1));
    if (!b->start || !b->col || !fill) {
        free(fill);
        row_buckets_free(b);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory grouping %d positions by row", count);
    }
    topology_bucket(pos, count, rows, cols, b->start, fill, b->col);
    free(fill);
    return RW_OK;
}

void row_buckets_free(row_buckets *b)
{
    free(b->start);
    free(b->col);
    memset(b, 0, sizeof *b);
}

rw_status topology_insert(csr_matrix *m, const int64_t *pos, int count, parallel_arrays *p)
{
    if (count == 0) return RW_OK;
    row_buckets b;
    rw_status st = row_buckets_make(&b, pos, count, m->rows, m->cols);
    if (st == RW_OK) st = topology_insert_buckets(m, &b, p);
    row_buckets_free(&b);
    return st;
}

rw_status topology_insert_buckets(csr_matrix *m, const row_buckets *b, parallel_arrays *p)
{
    int count = b->count;
    if (count == 0) return RW_OK;
    int rows = m->rows, cols = m->cols;
    int64_t nnz64 = (int64_t)m->nnz + count;
    if (nnz64 > INT32_MAX)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a %d x %d layer cannot hold %lld weights", rows,
                       cols, (long long)nnz64);
    int nnz = (int)nnz64;
    /* Every entry of these is written below (t_rows and t_perm by
     * csr_build_transpose): no zeroing. */
    int32_t *indices = rw_alloc_unset(sizeof(int32_t) * (size_t)nnz);
    float *values = rw_alloc_unset(sizeof(float) * (size_t)nnz);
    int32_t *t_rows = rw_alloc_unset(sizeof(int32_t) * (size_t)nnz);
    int32_t *t_perm = rw_alloc_unset(sizeof(int32_t) * (size_t)nnz);
    float *par[TOPOLOGY_MAX_PARALLEL] = {0};
    int ok = indices && values && t_rows && t_perm;
    for (int a = 0; a < p->n && ok; a++)
        if (*p->arr[a]) ok = (par[a] = rw_alloc_unset(sizeof(float) * (size_t)nnz)) != NULL;
    if (!ok) {
        rw_free(indices);
        rw_free(values);
        rw_free(t_rows);
        rw_free(t_perm);
        for (int a = 0; a < p->n; a++) rw_free(par[a]);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory growing a %d x %d layer to %d weights",
                       rows, cols, nnz);
    }
    const int32_t *start = b->start, *newcol = b->col;

    /* Merge each row's old entries with its new ones, in column order. */
    int dst = 0;
    for (int r = 0; r < rows; r++) {
        int k = m->indptr[r], k1 = m->indptr[r + 1], j = start[r], j1 = start[r + 1];
        m->indptr[r] = dst;
        while (k < k1 || j < j1) {
            if (j == j1 || (k < k1 && m->indices[k] < newcol[j])) {
                indices[dst] = m->indices[k];
                values[dst] = m->values[k];
                for (int a = 0; a < p->n; a++)
                    if (par[a]) par[a][dst] = (*p->arr[a])[k];
                k++;
            } else {
                indices[dst] = newcol[j++];
                values[dst] = 0.0f;
                for (int a = 0; a < p->n; a++)
                    if (par[a]) par[a][dst] = 0.0f;
            }
            dst++;
        }
    }
    m->indptr[rows] = dst;
    m->nnz = dst;
    rw_free(m->indices);
    rw_free(m->values);
    rw_free(m->t_rows);
    rw_free(m->t_perm);
    m->indices = indices;
    m->values = values;
    m->t_rows = t_rows;
    m->t_perm = t_perm;
    for (int a = 0; a < p->n; a++)
        if (par[a]) {
            rw_free(*p->arr[a]);
            *p->arr[a] = par[a];
        }
    return RW_OK;
}

rw_status topology_shrink(csr_matrix *m, parallel_arrays *p)
{
    size_t n = (size_t)(m->nnz > 0 ? m->nnz : 1);
    int32_t *indices = rw_alloc(sizeof(int32_t) * n), *t_rows = rw_alloc(sizeof(int32_t) * n),
            *t_perm = rw_alloc(sizeof(int32_t) * n);
    float *values = rw_alloc(sizeof(float) * n), *par[TOPOLOGY_MAX_PARALLEL] = {0};
    int ok = indices && t_rows && t_perm && values;
    for (int a = 0; a < p->n && ok; a++)
        if (*p->arr[a]) ok = (par[a] = rw_alloc(sizeof(float) * n)) != NULL;
    if (!ok) {
        rw_free(indices);
        rw_free(t_rows);
        rw_free(t_perm);
        rw_free(values);
        for (int a = 0; a < p->n; a++) rw_free(par[a]);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory shrinking a %d x %d layer", m->rows,
                       m->cols);
    }
    size_t used = (size_t)m->nnz;
    memcpy(indices, m->indices, sizeof(int32_t) * used);
    memcpy(values, m->values, sizeof(float) * used);
    rw_free(m->indices);
    rw_free(m->values);
    rw_free(m->t_rows);
    rw_free(m->t_perm);
    rw_free(m->indices16);
    rw_free(m->t_rows16);
    m->indices = indices;
    m->values = values;
    m->t_rows = t_rows; /* rebuilt by csr_build_transpose */
    m->t_perm = t_perm;
    m->indices16 = NULL;
    m->t_rows16 = NULL;
    m->narrow_cap = 0;
    for (int a = 0; a < p->n; a++)
        if (par[a]) {
            memcpy(par[a], *p->arr[a], sizeof(float) * used);
            rw_free(*p->arr[a]);
            *p->arr[a] = par[a];
        }
    return RW_OK;
}

int topology_contains(const csr_matrix *m, int row, int col)
{
    int lo = m->indptr[row], hi = m->indptr[row + 1];
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (m->indices[mid] < col)
            lo = mid + 1;
        else if (m->indices[mid] > col)
            hi = mid;
        else
            return 1;
    }
    return 0;
}

/* The k-th smallest (0-based) of x[0..n), by radix selection on the
 * float's bits mapped to an unsigned order (negatives flipped): a
 * histogram of the top 11 bits, then of the next 11 and the last 10 among
 * the entries that share the chosen prefix: three reads of x, no copy and
 * no data-dependent swaps (a quickselect on a copy was a tenth of a RigL
 * update at 95%). */
static uint32_t order_key(float v)
{
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b & 0x80000000u ? ~b : b | 0x80000000u;
}

static float key_value(uint32_t key)
{
    uint32_t b = key & 0x80000000u ? key & 0x7fffffffu : ~key;
    float v;
    memcpy(&v, &b, sizeof v);
    return v;
}

float topology_kth_smallest(const float *x, int n, int k)
{
    static const int shift[3] = {21, 10, 0}, width[3] = {11, 11, 10};
    uint32_t prefix = 0, prefix_mask = 0;
    int count[2048];
    for (int pass = 0; pass < 3; pass++) {
        int buckets = 1 << width[pass];
        memset(count, 0, sizeof(int) * (size_t)buckets);
        for (int i = 0; i < n; i++) {
            uint32_t key = order_key(x[i]);
            if ((key & prefix_mask) == prefix) count[(key >> shift[pass]) & (uint32_t)(buckets - 1)]++;
        }
        int b = 0;
        while (k >= count[b]) k -= count[b++];
        prefix |= (uint32_t)b << shift[pass];
        prefix_mask |= (uint32_t)(buckets - 1) << shift[pass];
    }
    return key_value(prefix);
}

int topology_select_smallest(const float *score, int n, int k, uint8_t *mark)
{
    memset(mark, 0, (size_t)n);
    if (k <= 0) return 0;
    if (k >= n) {
        memset(mark, 1, (size_t)n);
        return n;
    }
    float tau = topology_kth_smallest(score, n, k - 1);
    int marked = 0;
    for (int i = 0; i < n; i++)
        if (score[i] < tau) mark[i] = 1, marked++;
    for (int i = 0; i < n && marked < k; i++)
        if (score[i] == tau) mark[i] = 1, marked++;
    return marked;
}

void topology_select_random(int n, int k, rng_state *r, uint8_t *mark)
{
    /* Knuth's Algorithm S: exactly k, each subset equally likely. */
    int chosen = 0;
    for (int i = 0; i < n; i++) {
        mark[i] = rng_uniform(r) * (double)(n - i) < (double)(k - chosen);
        chosen += mark[i];
    }
}
