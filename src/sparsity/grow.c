#include "sparsity/grow.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/kernels.h"
#include "sparsity/topology.h"

/* ---- Random growth ----------------------------------------------------- */

/* A set of positions: open addressing, linear probing, -1 is empty. */
typedef struct {
    int64_t *slot;
    uint64_t mask;
} pos_set;

static int pos_set_init(pos_set *s, int64_t count)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)count * 2) cap <<= 1;
    s->slot = malloc(sizeof(int64_t) * cap);
    if (!s->slot) return -1;
    memset(s->slot, 0xff, sizeof(int64_t) * cap);
    s->mask = cap - 1;
    return 0;
}

/* Adds p; returns 1 if it was new. */
static int pos_set_add(pos_set *s, int64_t p)
{
    uint64_t h = ((uint64_t)p * 0x9E3779B97F4A7C15ULL) >> 17;
    for (;; h++) {
        int64_t *e = &s->slot[h & s->mask];
        if (*e == p) return 0;
        if (*e < 0) {
            *e = p;
            return 1;
        }
    }
}

/* Random growth outside the closed columns: the same two ways over the
 * open columns only (a row drawn uniformly, then a column among the open
 * ones), so that a first layer left with few inputs does not reject most
 * draws. */
static int grow_random_open(const csr_matrix *w, int k, rng_state *r, int64_t *pos,
                            const uint8_t *closed)
{
    int32_t *open = malloc(sizeof(int32_t) * (size_t)(w->cols > 0 ? w->cols : 1));
    if (!open) return -1;
    int n_open = 0;
    for (int c = 0; c < w->cols; c++)
        if (!closed[c]) open[n_open++] = c;
    int64_t stored = 0;
    for (int q = 0; q < w->nnz; q++) stored += !closed[w->indices[q]];
    int64_t total = (int64_t)w->rows * n_open, free_count = total - stored;
    if (k > free_count) k = (int)free_count;
    int chosen = 0;
    if (k <= 0) {
        free(open);
        return 0;
    }
    if (2 * (int64_t)k > free_count || 2 * stored > total) {
        int64_t seen = 0;
        for (int o = 0; o < w->rows && chosen < k; o++) {
            int p = w->indptr[o], pe = w->indptr[o + 1];
            for (int j = 0; j < n_open && chosen < k; j++) {
                int c = open[j];
                while (p < pe && w->indices[p] < c) p++;
                if (p < pe && w->indices[p] == c) continue;
                if (rng_uniform(r) * (double)(free_count - seen) < (double)(k - chosen))
                    pos[chosen++] = topology_pos(o, c, w->cols);
                seen++;
            }
        }
        free(open);
        return chosen;
    }
    pos_set s;
    if (pos_set_init(&s, k) < 0) {
        free(open);
        return -1;
    }
    while (chosen < k) {
        int o = (int)rng_below(r, (uint64_t)w->rows), c = open[rng_below(r, (uint64_t)n_open)];
        int64_t p = topology_pos(o, c, w->cols);
        if (topology_contains(w, o, c) || !pos_set_add(&s, p)) continue;
        pos[chosen++] = p;
    }
    free(s.slot);
    free(open);
    return chosen;
}

int grow_random(const csr_matrix *w, int k, rng_state *r, int64_t *pos, const uint8_t *closed)
{
    if (closed) return grow_random_open(w, k, r, pos, closed);
    int64_t total = (int64_t)w->rows * w->cols, free_count = total - w->nnz;
    if (k > free_count) k = (int)free_count;
    if (k <= 0) return 0;
    if (2 * (int64_t)k > free_count || 2 * (int64_t)w->nnz > total) {
        /* A nearly full layer (rows · cols < 2 nnz, so this pass is O(nnz)):
         * selection sampling over the absent positions. */
        int64_t seen = 0;
        int chosen = 0;
        for (int o = 0; o < w->rows && chosen < k; o++) {
            int p = w->indptr[o], pe = w->indptr[o + 1];
            for (int c = 0; c < w->cols && chosen < k; c++) {
                if (p < pe && w->indices[p] == c) {
                    p++;
                    continue;
                }
                if (rng_uniform(r) * (double)(free_count - seen) < (double)(k - chosen))
                    pos[chosen++] = topology_pos(o, c, w->cols);
                seen++;
            }
        }
        return chosen;
    }
    /* Sparse layer: draw, reject stored or already drawn positions. At most
     * half the positions are taken, so a draw succeeds with probability
     * above 1/4. */
    pos_set s;
    if (pos_set_init(&s, k) < 0) return -1;
    int chosen = 0;
    while (chosen < k) {
        int64_t p = (int64_t)rng_below(r, (uint64_t)total);
        int o = (int)(p / w->cols), c = (int)(p % w->cols);
        if (topology_contains(w, o, c) || !pos_set_add(&s, p)) continue;
        pos[chosen++] = p;
    }
    free(s.slot);
    return chosen;
}

/* ---- Growth by the largest entries of an outer product ------------------ */

typedef struct {
    float v;
    int64_t pos;
} scored_pos;

/* A row (or column) and its norm. */
typedef struct {
    float norm;
    int row;
} row_norm;

/* "Better" is a total order (larger score, then smaller position), so the
 * k best are one well-defined set, whoever computes them. */
static int better(const scored_pos *a, const scored_pos *b)
{
    return a->v > b->v || (a->v == b->v && a->pos < b->pos);
}

/* Reorders a[0..n) so that its k best come first (quickselect). */
static void select_best(scored_pos *a, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        scored_pos pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (better(&a[i], &pivot)) i++;
            while (better(&pivot, &a[j])) j--;
            if (i <= j) {
                scored_pos t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        /* a[lo..j] are at least as good as the pivot, a[i..hi] at most. */
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            return;
    }
}

/* The best k seen so far, kept loosely: candidates at least as good as
 * `thr` are appended; when 2k have piled up, the best k are selected and
 * thr rises to the worst of them. Amortised O(1) per candidate. */
typedef struct {
    scored_pos *a; /* [2k] */
    int size, k;
    float thr;
    /* The scan of a row for candidates (the active kernel table's), and
     * its output: positions in the row, [cols]. */
    int (*find_at_least)(const float *x, int n, float thr, int32_t *at);
    int32_t *hits;
} top_k;

static void top_k_shrink(top_k *t)
{
    select_best(t->a, t->size, t->k);
    t->size = t->k;
    float worst = t->a[0].v;
    for (int i = 1; i < t->k; i++)
        if (t->a[i].v < worst) worst = t->a[i].v;
    t->thr = worst;
}

static inline void top_k_offer(top_k *t, float v, int64_t pos)
{
    t->a[t->size].v = v;
    t->a[t->size].pos = pos;
    if (++t->size == 2 * t->k) top_k_shrink(t);
}

/* Rows per block: a block's products are one CBLAS call into a buffer of
 * GROW_BLOCK_ROWS × cols floats, large enough that packing the shared
 * operand (pre) once per block stays cheap next to the product. */
#define GROW_BLOCK_ROWS 128
/* offer_first_block samples every 64th product. */
#define GROW_SAMPLE_STRIDE 64
/* Margin on the Cauchy–Schwarz bound for the rounding of float products. */
#define GROW_BOUND_MARGIN 1.001f

/* Overwrites the products of row o's stored positions with NaN, which
 * fails every comparison: the candidate scan (find_at_least) then needs
 * no test of its own for them. row[j] is the product with column col[j]
 * for j < n (inv maps back). */
static void hide_stored(const csr_matrix *w, float *row, int n, const int32_t *inv, int o)
{
    for (int p = w->indptr[o]; p < w->indptr[o + 1]; p++) {
        int j = inv[w->indices[p]];
        if (j < n) row[j] = NAN;
    }
}

/* Offers the absent positions of row o among the first n columns in norm
 * order, its stored ones already hidden. */
static void offer_hidden_row(const csr_matrix *w, const float *row, int n, const int32_t *col,
                             int o, top_k *t)
{
    int64_t base = (int64_t)o * w->cols;
    /* Candidates at the threshold the row starts with; the threshold may
     * rise while they are offered, so each is compared again. */
    int hits = t->find_at_least(row, n, t->thr, t->hits);
    for (int h = 0; h < hits; h++) {
        float v = fabsf(row[t->hits[h]]);
        if (v >= t->thr) top_k_offer(t, v, base + col[t->hits[h]]);
    }
}

static void offer_row(const csr_matrix *w, float *row, int n, const int32_t *col,
                      const int32_t *inv, int o, top_k *t)
{
    hide_stored(w, row, n, inv, o);
    offer_hidden_row(w, row, n, col, o, t);
}

/* Offers the absent positions of the first block, prod[n][cols], so that
 * afterwards t holds its k best (or all of them, fewer than k). Offered
 * one by one from a threshold of -inf, most products of the first rows
 * pass and the list is selected again and again (a sixth of a RigL update
 * at 99%). So a threshold is guessed first from every GROW_SAMPLE_STRIDE-th
 * product, below the sample's estimate of the k-th best, and kept only if
 * at least k products reach it: then it is at most the block's k-th best
 * and loses none of them. Otherwise a lower guess is tried, and last -inf. */
static void offer_first_block(const csr_matrix *w, float *prod, int n, int cols,
                              const int32_t *col, const int32_t *inv, const row_norm *order,
                              top_k *t)
{
    for (int r = 0; r < n; r++) hide_stored(w, prod + (size_t)r * cols, cols, inv, order[r].row);
    size_t total = (size_t)n * cols, m = 0;
    float *sample = malloc(sizeof(float) * (total / GROW_SAMPLE_STRIDE + 1));
    if (sample)
        for (size_t i = 0; i < total; i += GROW_SAMPLE_STRIDE)
            if (!isnan(prod[i])) sample[m++] = fabsf(prod[i]);
    /* Sample ranks: 3k/2 and 6k scaled to the sample, with room for the
     * sampling noise of small k. */
    int64_t rank = (int64_t)t->k * 3 / 2 / GROW_SAMPLE_STRIDE + 8;
    for (int attempt = 0; attempt < 3; attempt++, rank *= 4) {
        int last = attempt == 2 || !sample || (int64_t)m < rank;
        t->size = 0;
        /* The rank-th largest is the (m - rank)-th smallest, from 0. */
        t->thr = last ? -INFINITY : topology_kth_smallest(sample, (int)m, (int)m - (int)rank);
        for (int r = 0; r < n; r++)
            offer_hidden_row(w, prod + (size_t)r * cols, cols, col, order[r].row, t);
        if (last || t->size >= t->k) break;
    }
    free(sample);
}

void grow_scratch_free(grow_scratch *s)
{
    for (int i = 0; i < s->threads; i++) {
        rw_free(s->buf[i]);
        free(s->cand[i]);
    }
    free(s->buf);
    free(s->cand);
    rw_free(s->sorted);
    memset(s, 0, sizeof *s);
}

/* Makes room for `threads` buffers of buf_floats and candidate lists of
 * 2k. */
static int scratch_reserve(grow_scratch *s, int threads, size_t buf_floats, int k)
{
    if (s->threads < threads) {
        float **b = realloc(s->buf, sizeof(float *) * (size_t)threads);
        if (b) s->buf = b;
        void **h = realloc(s->cand, sizeof(void *) * (size_t)threads);
        if (h) s->cand = h;
        if (!b || !h) return -1;
        for (int i = s->threads; i < threads; i++) s->buf[i] = NULL, s->cand[i] = NULL;
        int old = s->threads;
        s->threads = threads;
        /* New threads get buffers of the current capacity. */
        for (int i = old; i < threads; i++) {
            if (s->buf_cap && !(s->buf[i] = rw_alloc(sizeof(float) * s->buf_cap))) return -1;
            if (s->cand_cap && !(s->cand[i] = malloc(sizeof(scored_pos) * 2 * (size_t)s->cand_cap)))
                return -1;
        }
    }
    if (s->buf_cap < buf_floats) {
        for (int i = 0; i < s->threads; i++) {
            rw_free(s->buf[i]);
            if (!(s->buf[i] = rw_alloc(sizeof(float) * buf_floats))) return -1;
        }
        s->buf_cap = buf_floats;
    }
    if (s->cand_cap < k) {
        for (int i = 0; i < s->threads; i++) {
            free(s->cand[i]);
            if (!(s->cand[i] = malloc(sizeof(scored_pos) * 2 * (size_t)k))) return -1;
        }
        s->cand_cap = k;
    }
    return 0;
}

/* Sorts a[0..n), given in increasing row order, by decreasing norm, equal
 * norms keeping that order: a stable radix sort, 8 bits a pass, on the
 * complemented bits of the norms (non-negative floats order as their bits
 * do). qsort's calls through a pointer were a tenth of a RigL update at
 * 99%. Returns -1 when out of memory. */
static int sort_by_norm_desc(row_norm *a, int n)
{
    row_norm *tmp = malloc(sizeof(row_norm) * (size_t)(n > 0 ? n : 1));
    if (!tmp) return -1;
    row_norm *from = a, *to = tmp;
    for (int shift = 0; shift < 32; shift += 8) {
        int count[257] = {0};
        for (int i = 0; i < n; i++) {
            uint32_t bits;
            memcpy(&bits, &from[i].norm, sizeof bits);
            count[((~bits >> shift) & 0xffu) + 1]++;
        }
        for (int d = 0; d < 256; d++) count[d + 1] += count[d];
        for (int i = 0; i < n; i++) {
            uint32_t bits;
            memcpy(&bits, &from[i].norm, sizeof bits);
            to[count[(~bits >> shift) & 0xffu]++] = from[i];
        }
        row_norm *t = from;
        from = to, to = t;
    }
    /* Four passes: the result is back in a. */
    free(tmp);
    return 0;
}

/* Eight running float sums, which the compiler keeps in vector registers
 * (double sums, four chains, were still a tenth of a RigL update at 99%).
 * Only the order of rows and the bounds depend on the norms, never a
 * product; their rounding, about kdim float epsilons, is far inside
 * GROW_BOUND_MARGIN. A sum near float's range ends (squares of entries
 * below about 1e-19 vanish, above 1e19 overflow) is done again in double,
 * so that a bound is never too small. */
static float norm2(const float *x, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += x[i + j] * x[i + j];
    for (; i < n; i++) acc[0] += x[i] * x[i];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    if (s >= 1e-30f && s <= 1e30f) return sqrtf(s);
    if (s == 0.0f) { /* rows of zeros (units off for the whole batch) are common */
        uint32_t bits = 0;
        for (i = 0; i < n; i++) {
            uint32_t b;
            memcpy(&b, &x[i], sizeof b);
            bits |= b & 0x7fffffffu;
        }
        if (bits == 0) return 0.0f;
    }
    double d = 0;
    for (i = 0; i < n; i++) d += (double)x[i] * x[i];
    return (float)sqrt(d);
}

/* How many leading entries of norms (decreasing) reach at least `need`. */
static int count_at_least(const row_norm *norms, int n, float need)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (norms[mid].norm >= need)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int grow_top_outer(const csr_matrix *w, const float *post, const float *pre, int kdim, int k,
                   int64_t *pos, float *values, grow_scratch *scratch, const uint8_t *closed)
{
    /* Only the open columns are candidates: `ncand` of them. */
    int ncand = w->cols;
    int64_t stored = w->nnz;
    if (closed) {
        ncand = 0;
        for (int c = 0; c < w->cols; c++) ncand += !closed[c];
        for (int q = 0; q < w->nnz; q++) stored -= closed[w->indices[q]] != 0;
    }
    int64_t total = (int64_t)w->rows * ncand, free_count = total - stored;
    if (k > free_count) k = (int)free_count;
    if (k <= 0) return 0;
    int rows = w->rows, cols = w->cols;
    int blocks = (rows + GROW_BLOCK_ROWS - 1) / GROW_BLOCK_ROWS;
    /* Every thread of the pool, even with fewer blocks: the region is then
     * active and OpenBLAS single-threaded in it whatever the thread count.
     * Inside another team (layers updated at once) the layer gets one. */
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    /* Per thread: the products [GROW_BLOCK_ROWS][cols], then the block's
     * rows of post gathered [GROW_BLOCK_ROWS][kdim] (32-byte aligned),
     * then a row's candidate positions [cols] (int32). */
    size_t prod_floats = ((size_t)GROW_BLOCK_ROWS * cols + 7) / 8 * 8;
    size_t gathered_floats = (size_t)GROW_BLOCK_ROWS * kdim;
    size_t buf_floats = prod_floats + gathered_floats + (size_t)cols;
    grow_scratch local = {0};
    grow_scratch *s = scratch ? scratch : &local;
    int chosen = -1;
    top_k *tops = calloc((size_t)threads, sizeof *tops);
    row_norm *order = malloc(sizeof(row_norm) * (size_t)rows);
    row_norm *corder = malloc(sizeof(row_norm) * (size_t)cols);
    int32_t *col = malloc(sizeof(int32_t) * (size_t)cols), *inv = malloc(sizeof(int32_t) * (size_t)cols);
    if (!tops || !order || !corder || !col || !inv || scratch_reserve(s, threads, buf_floats, k) < 0)
        goto done;
    /* Kept between calls: fresh pages of it cost more than the copy. */
    if (s->sorted_cap < (size_t)ncand * kdim) {
        rw_free(s->sorted);
        s->sorted_cap = 0;
        if (!(s->sorted = rw_alloc_unset(sizeof(float) * (size_t)ncand * kdim))) goto done;
        s->sorted_cap = (size_t)ncand * kdim;
    }
    float *pre_sorted = s->sorted; /* filled whole below */
    /* Cauchy–Schwarz: |post[o]·pre[i]| <= |post[o]| · |pre[i]|. Rows are
     * visited in decreasing order of |post[o]|, and a block computes only
     * the columns (also in decreasing order of norm) whose bound with the
     * block's first row reaches the k-th best value found so far; rows and
     * columns left out cannot hold one of the k best, so the result is
     * exact. */
    for (int o = 0; o < rows; o++) order[o] = (row_norm){norm2(post + (size_t)o * kdim, kdim), o};
    for (int i = 0, j = 0; i < cols; i++) {
        /* A closed column is no candidate: past the end of inv's range. */
        inv[i] = cols;
        if (!closed || !closed[i]) corder[j++] = (row_norm){norm2(pre + (size_t)i * kdim, kdim), i};
    }
    if (sort_by_norm_desc(order, rows) < 0 || sort_by_norm_desc(corder, ncand) < 0) goto done;
    for (int j = 0; j < ncand; j++) {
        col[j] = corder[j].row;
        inv[corder[j].row] = j;
        memcpy(pre_sorted + (size_t)j * kdim, pre + (size_t)col[j] * kdim, sizeof(float) * (size_t)kdim);
    }
    float max_pre = corder[0].norm;
    int (*find)(const float *, int, float, int32_t *) = kernels_active()->find_at_least;
    for (int id = 0; id < threads; id++)
        tops[id] = (top_k){s->cand[id], 0, k, -INFINITY, find,
                           (int32_t *)(s->buf[id] + prod_floats + gathered_floats)};
    /* Which columns a block computes must not depend on the thread count
     * (a product's last bit can depend on the shape of the CBLAS call), so
     * it follows thr0, the k-th best of the first block, computed whole by
     * one thread. Skipping whole rows and blocks needs no such care. */
    float thr0 = -INFINITY;
#pragma omp parallel num_threads(threads)
    {
        int id = omp_get_thread_num();
        top_k *t = &tops[id];
        float *prod = s->buf[id], *gathered = s->buf[id] + prod_floats;
        /* Inside an active parallel region OpenBLAS runs single-threaded, so
         * every call below computes the same products whoever makes it. */
#pragma omp single
        {
            int n = rows < GROW_BLOCK_ROWS ? rows : GROW_BLOCK_ROWS;
            for (int r = 0; r < n; r++)
                memcpy(gathered + (size_t)r * kdim, post + (size_t)order[r].row * kdim,
                       sizeof(float) * (size_t)kdim);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, ncand, kdim, 1.0f, gathered,
                        kdim, pre_sorted, kdim, 0.0f, prod, ncand);
            offer_first_block(w, prod, n, ncand, col, inv, order, t);
            if (t->size >= k) {
                top_k_shrink(t);
                thr0 = t->thr;
            }
        }
#pragma omp for schedule(static, 1)
        for (int b = 1; b < blocks; b++) {
            int r0 = b * GROW_BLOCK_ROWS;
            int n = rows - r0 < GROW_BLOCK_ROWS ? rows - r0 : GROW_BLOCK_ROWS;
            if (t->size > k) top_k_shrink(t);
            if (t->size >= k && order[r0].norm * max_pre * GROW_BOUND_MARGIN < t->thr) continue;
            int ncols = ncand;
            if (thr0 > -INFINITY) {
                ncols = count_at_least(corder, ncand, thr0 / (order[r0].norm * GROW_BOUND_MARGIN));
                if (ncols == 0) continue;
            }
            for (int r = 0; r < n; r++)
                memcpy(gathered + (size_t)r * kdim, post + (size_t)order[r0 + r].row * kdim,
                       sizeof(float) * (size_t)kdim);
            /* prod[n][ncols] = gathered[n][kdim] · pre_sorted[ncols][kdim]ᵀ */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, ncols, kdim, 1.0f, gathered,
                        kdim, pre_sorted, kdim, 0.0f, prod, ncols);
            for (int r = 0; r < n; r++) {
                if (t->size >= k && order[r0 + r].norm * max_pre * GROW_BOUND_MARGIN < t->thr)
                    break;
                offer_row(w, prod + (size_t)r * ncols, ncols, col, inv, order[r0 + r].row, t);
            }
        }
    }
    /* The k best of the union of the per-thread bests are the k best. */
    top_k *all = &tops[0];
    for (int id = 1; id < threads; id++)
        for (int i = 0; i < tops[id].size; i++)
            if (tops[id].a[i].v >= all->thr) top_k_offer(all, tops[id].a[i].v, tops[id].a[i].pos);
    if (all->size > k) top_k_shrink(all);
    chosen = all->size;
    for (int i = 0; i < chosen; i++) {
        pos[i] = all->a[i].pos;
        if (values) values[i] = all->a[i].v;
    }
done: /* chosen is -1 when out of memory */
    free(tops);
    free(order);
    free(corder);
    free(col);
    free(inv);
    grow_scratch_free(&local);
    return chosen;
}
