/* The shared topology machinery, the drop and grow criteria and the
 * topology measures, on small hand-checkable layers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/alloc.h"
#include "nn/linear.h"
#include "sparsity/drop.h"
#include "sparsity/grow.h"
#include "sparsity/topology.h"
#include "sparsity/topology_stats.h"
#include "testmodel.h"
#include "testutil.h"

#include <omp.h>

/* Value stored at (row, col), or NAN when absent. */
static float value_at(const csr_matrix *m, const float *arr, int row, int col)
{
    for (int k = m->indptr[row]; k < m->indptr[row + 1]; k++)
        if (m->indices[k] == col) return arr[k];
    return NAN;
}

/* The transposed view lists exactly the stored entries, by column. */
static void check_transpose(const csr_matrix *m)
{
    assert_int_equal(m->t_indptr[m->cols], m->nnz);
    for (int c = 0; c < m->cols; c++)
        for (int k = m->t_indptr[c]; k < m->t_indptr[c + 1]; k++) {
            int p = m->t_perm[k], r = m->t_rows[k];
            assert_true(p >= m->indptr[r] && p < m->indptr[r + 1]);
            assert_int_equal(m->indices[p], c);
        }
}

static void test_keep_and_insert_move_state_with_weights(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 7);
    csr_matrix m;
    tu_random_csr(&m, 50, 40, 0.2, &r);
    int n0 = m.nnz;
    /* Two state arrays that identify their weight by value. */
    float *m1 = rw_alloc(sizeof(float) * (size_t)n0), *m2 = rw_alloc(sizeof(float) * (size_t)n0);
    for (int k = 0; k < n0; k++) m1[k] = 2 * m.values[k], m2[k] = 3 * m.values[k];
    csr_matrix old;
    assert_int_equal(csr_alloc(&old, m.rows, m.cols, n0), RW_OK);
    memcpy(old.indptr, m.indptr, sizeof(int32_t) * (size_t)(m.rows + 1));
    memcpy(old.indices, m.indices, sizeof(int32_t) * (size_t)n0);
    memcpy(old.values, m.values, sizeof(float) * (size_t)n0);

    uint8_t *drop = malloc((size_t)n0);
    topology_select_random(n0, n0 / 3, &r, drop);
    int64_t pos[60];
    int grown = grow_random(&m, 60, &r, pos, NULL);
    assert_int_equal(grown, 60);
    parallel_arrays par = {{&m1, &m2}, 2};
    assert_int_equal(topology_keep(&m, drop, &par), n0 / 3);
    assert_int_equal(topology_insert(&m, pos, grown, &par), RW_OK);
    csr_build_transpose(&m);
    assert_int_equal(csr_validate(&m, "updated"), RW_OK);
    check_transpose(&m);
    assert_int_equal(m.nnz, n0 - n0 / 3 + 60);

    int new_count = 0;
    for (int o = 0; o < m.rows; o++)
        for (int k = m.indptr[o]; k < m.indptr[o + 1]; k++) {
            float before = value_at(&old, old.values, o, m.indices[k]);
            if (isnan(before)) {
                /* Grown: zero weight, zero state. */
                new_count++;
                assert_true(m.values[k] == 0.0f && m1[k] == 0.0f && m2[k] == 0.0f);
            } else {
                /* Kept: the same weight with its own state. */
                assert_true(m.values[k] == before);
                assert_true(m1[k] == 2 * before && m2[k] == 3 * before);
            }
        }
    assert_int_equal(new_count, 60);
    /* Every dropped weight is gone. */
    for (int o = 0; o < old.rows; o++)
        for (int k = old.indptr[o]; k < old.indptr[o + 1]; k++)
            if (drop[k]) assert_true(isnan(value_at(&m, m.values, o, old.indices[k])));
    free(drop);
    rw_free(m1);
    rw_free(m2);
    csr_free(&m);
    csr_free(&old);
}

static void test_select_smallest_is_exact_and_deterministic(void **state)
{
    (void)state;
    float score[] = {3, 1, 2, 1, 5, 0, 1, 4};
    uint8_t mark[8];
    assert_int_equal(topology_select_smallest(score, 8, 3, mark), 3);
    /* 0, then the first two of the three 1s. */
    uint8_t want[] = {0, 1, 0, 1, 0, 1, 0, 0};
    assert_memory_equal(mark, want, 8);
    assert_int_equal(topology_select_smallest(score, 8, 0, mark), 0);
    assert_int_equal(topology_select_smallest(score, 8, 8, mark), 8);
    /* Many equal values stay linear and exact. */
    enum { N = 20000 };
    float *many = calloc(N, sizeof(float));
    uint8_t *mk = malloc(N);
    for (int i = 0; i < N; i += 3) many[i] = 1.0f;
    assert_int_equal(topology_select_smallest(many, N, 5000, mk), 5000);
    for (int i = 0, seen = 0; i < N; i++) {
        if (many[i] == 0.0f) assert_int_equal(mk[i], seen++ < 5000);
        if (many[i] == 1.0f) assert_int_equal(mk[i], 0);
    }
    free(many);
    free(mk);
}

static void test_drop_criteria(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 3);
    csr_matrix m;
    tu_random_csr(&m, 30, 30, 0.3, &r);
    int n = m.nnz, k = n / 4;
    uint8_t *drop = malloc((size_t)n);
    float *g = malloc(sizeof(float) * (size_t)n);
    tu_fill_uniform(g, (size_t)n, -1, 1, &r);

    /* Magnitude: every dropped |w| <= every kept |w|. */
    drop_input in = {RW_DROP_MAGNITUDE, &m, NULL, 0, &r};
    assert_int_equal(drop_select(&in, k, drop), k);
    float max_dropped = 0, min_kept = INFINITY;
    for (int i = 0; i < n; i++) {
        float a = fabsf(m.values[i]);
        if (drop[i]) max_dropped = fmaxf(max_dropped, a);
        else min_kept = fminf(min_kept, a);
    }
    assert_true(max_dropped <= min_kept);

    /* MEST: the same with |w| + λ|g|. */
    in = (drop_input){RW_DROP_MEST, &m, g, 0.5f, &r};
    assert_int_equal(drop_select(&in, k, drop), k);
    max_dropped = 0, min_kept = INFINITY;
    for (int i = 0; i < n; i++) {
        float a = fabsf(m.values[i]) + 0.5f * fabsf(g[i]);
        if (drop[i]) max_dropped = fmaxf(max_dropped, a);
        else min_kept = fminf(min_kept, a);
    }
    assert_true(max_dropped <= min_kept);

    /* SET: the same share of each sign, the ones closest to zero. */
    in = (drop_input){RW_DROP_SET, &m, NULL, 0, &r};
    assert_int_equal(drop_select(&in, k, drop), k);
    int pos = 0, neg = 0, pos_dropped = 0, neg_dropped = 0;
    float max_pos_dropped = 0, min_pos_kept = INFINITY, min_neg_dropped = 0, max_neg_kept = -INFINITY;
    for (int i = 0; i < n; i++) {
        float v = m.values[i];
        if (v >= 0) {
            pos++;
            if (drop[i]) pos_dropped++, max_pos_dropped = fmaxf(max_pos_dropped, v);
            else min_pos_kept = fminf(min_pos_kept, v);
        } else {
            neg++;
            if (drop[i]) neg_dropped++, min_neg_dropped = fminf(min_neg_dropped, v);
            else max_neg_kept = fmaxf(max_neg_kept, v);
        }
    }
    assert_true(max_pos_dropped <= min_pos_kept);
    assert_true(min_neg_dropped >= max_neg_kept);
    assert_int_equal(pos_dropped, (int)llround((double)k * pos / n));
    assert_int_equal(pos_dropped + neg_dropped, k);

    /* Random: exactly k. */
    in = (drop_input){RW_DROP_RANDOM, &m, NULL, 0, &r};
    assert_int_equal(drop_select(&in, k, drop), k);
    int count = 0;
    for (int i = 0; i < n; i++) count += drop[i];
    assert_int_equal(count, k);
    free(drop);
    free(g);
    csr_free(&m);
}

static int compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void check_growth(const csr_matrix *m, const int64_t *pos, int n)
{
    int64_t *s = malloc(sizeof(int64_t) * (size_t)(n + 1));
    memcpy(s, pos, sizeof(int64_t) * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, compare_i64);
    for (int i = 0; i < n; i++) {
        assert_true(s[i] >= 0 && s[i] < (int64_t)m->rows * m->cols);
        if (i) assert_true(s[i] != s[i - 1]);
        assert_false(topology_contains(m, (int)(s[i] / m->cols), (int)(s[i] % m->cols)));
    }
    free(s);
}

static void test_grow_random(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 11);
    int64_t pos[2000];
    /* Sparse layer: rejection sampling. */
    csr_matrix m;
    tu_random_csr(&m, 40, 50, 0.1, &r);
    assert_int_equal(grow_random(&m, 300, &r, pos, NULL), 300);
    check_growth(&m, pos, 300);
    csr_free(&m);
    /* Nearly full layer: the absent positions are enumerated; asking for
     * more than there are gives all of them. */
    tu_random_csr(&m, 20, 30, 0.9, &r);
    int absent = 20 * 30 - m.nnz;
    assert_int_equal(grow_random(&m, 10, &r, pos, NULL), 10);
    check_growth(&m, pos, 10);
    assert_int_equal(grow_random(&m, 2000, &r, pos, NULL), absent);
    check_growth(&m, pos, absent);
    csr_free(&m);
}

/* Brute force: the dense product in double, absent positions only, the k
 * largest |value|, ties to the lower position. */
static void brute_top_outer(const csr_matrix *m, const float *post, const float *pre, int kdim,
                            int k, int64_t *out, const uint8_t *closed)
{
    int64_t total = (int64_t)m->rows * m->cols;
    double *v = malloc(sizeof(double) * (size_t)total);
    for (int o = 0; o < m->rows; o++)
        for (int i = 0; i < m->cols; i++) {
            double s = 0;
            for (int b = 0; b < kdim; b++) s += (double)post[o * kdim + b] * pre[i * kdim + b];
            v[(int64_t)o * m->cols + i] =
                topology_contains(m, o, i) || (closed && closed[i]) ? -1 : fabs(s);
        }
    for (int j = 0; j < k; j++) {
        int64_t best = -1;
        for (int64_t p = 0; p < total; p++)
            if (v[p] >= 0 && (best < 0 || v[p] > v[best])) best = p;
        out[j] = best;
        v[best] = -1;
    }
    free(v);
}

/* grow_top_outer's choice against brute force, on one and two threads. */
static void check_top_outer_closed(const csr_matrix *m, const float *post, const float *pre,
                                   int kdim, int k, const uint8_t *closed)
{
    int absent = m->rows * m->cols - m->nnz;
    for (int i = 0; closed && i < m->cols; i++)
        if (closed[i]) {
            absent -= m->rows;
            for (int q = 0; q < m->nnz; q++) absent += m->indices[q] == i;
        }
    int want = k < absent ? k : absent;
    int64_t *expect = malloc(sizeof(int64_t) * (size_t)(want + 1));
    int64_t *got = malloc(sizeof(int64_t) * (size_t)(want + 1));
    brute_top_outer(m, post, pre, kdim, want, expect, closed);
    qsort(expect, (size_t)want, sizeof(int64_t), compare_i64);
    grow_scratch scratch = {0};
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        assert_int_equal(grow_top_outer(m, post, pre, kdim, k, got, NULL,
                                        threads == 2 ? &scratch : NULL, closed),
                         want);
        qsort(got, (size_t)want, sizeof(int64_t), compare_i64);
        assert_memory_equal(got, expect, sizeof(int64_t) * (size_t)want);
    }
    grow_scratch_free(&scratch);
    free(expect);
    free(got);
}

static void check_top_outer(const csr_matrix *m, const float *post, const float *pre, int kdim,
                            int k)
{
    check_top_outer_closed(m, post, pre, kdim, k, NULL);
}

/* A layer pattern and random post [rows][kdim] and pre [cols][kdim]
 * in [-1, 1], for grow_top_outer's cases. */
typedef struct {
    csr_matrix m;
    float *post, *pre;
    int kdim;
} outer_case;

static void outer_case_make(outer_case *c, int rows, int cols, int kdim, double density,
                            uint64_t seed)
{
    rng_state r;
    rng_seed(&r, seed);
    tu_random_csr(&c->m, rows, cols, density, &r);
    c->kdim = kdim;
    c->post = malloc(sizeof(float) * (size_t)rows * kdim);
    c->pre = malloc(sizeof(float) * (size_t)cols * kdim);
    assert_true(c->post && c->pre);
    tu_fill_uniform(c->post, (size_t)rows * kdim, -1, 1, &r);
    tu_fill_uniform(c->pre, (size_t)cols * kdim, -1, 1, &r);
}

static void outer_case_free(outer_case *c)
{
    free(c->post);
    free(c->pre);
    csr_free(&c->m);
}

/* Input-level DST closes input columns to growth: no criterion picks one,
 * and each still finds its k among the open columns (all of them when
 * fewer are left). Closed columns here hold no entries, as after removal. */
static void close_columns(csr_matrix *m, uint8_t *closed, int every)
{
    uint8_t *drop = calloc((size_t)m->nnz + 1, 1);
    for (int c = 0; c < m->cols; c++) closed[c] = c % every == 1;
    for (int k = 0; k < m->nnz; k++) drop[k] = closed[m->indices[k]];
    parallel_arrays none = {{NULL}, 0};
    topology_keep(m, drop, &none);
    csr_build_transpose(m);
    free(drop);
}

static void check_open_growth(const csr_matrix *m, const int64_t *pos, int n, const uint8_t *closed)
{
    check_growth(m, pos, n);
    for (int i = 0; i < n; i++) assert_false(closed[pos[i] % m->cols]);
}

static void test_grow_closed_columns(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 12);
    int64_t pos[4000];
    uint8_t closed[60];
    csr_matrix m;
    /* Random growth, both ways: sparse, and nearly full among the open. */
    tu_random_csr(&m, 40, 60, 0.1, &r);
    close_columns(&m, closed, 3);
    assert_int_equal(grow_random(&m, 300, &r, pos, closed), 300);
    check_open_growth(&m, pos, 300, closed);
    int open_absent = 40 * 40 - m.nnz;
    assert_int_equal(grow_random(&m, 4000, &r, pos, closed), open_absent);
    check_open_growth(&m, pos, open_absent, closed);
    csr_free(&m);
    /* The blocked top-k against brute force without the closed columns. */
    outer_case c;
    outer_case_make(&c, 300, 60, 16, 0.15, 31);
    close_columns(&c.m, closed, 4);
    check_top_outer_closed(&c.m, c.post, c.pre, c.kdim, 500, closed);
    check_top_outer_closed(&c.m, c.post, c.pre, c.kdim, 20000, closed);
    outer_case_free(&c);
    /* Unfired growth: toward quiet rows, inputs among the open ones. */
    tu_random_csr(&m, 30, 60, 0.2, &r);
    close_columns(&m, closed, 2);
    float y[30 * 8];
    tu_fill_uniform(y, 30 * 8, -1, 1, &r);
    const grow_criterion *g = grow_criterion_get(RW_GROW_UNFIRED);
    param p = {.csr = &m, .rows = 30, .cols = 60};
    grow_input in = {.p = &p, .y = y, .bp = 8, .n = 8, .rng = &r, .closed = closed};
    open_absent = 30 * 30 - m.nnz;
    assert_int_equal(g->choose(&in, 200, pos), 200);
    check_open_growth(&m, pos, 200, closed);
    assert_int_equal(g->choose(&in, 4000, pos), open_absent);
    check_open_growth(&m, pos, open_absent, closed);
    csr_free(&m);
}

static void test_grow_top_outer_equals_brute_force(void **state)
{
    (void)state;
    /* Shapes with one and several row blocks, k small and large, and rows
     * of very different norms so that whole blocks are skipped. */
    int shapes[][4] = {{37, 53, 24, 40}, {300, 70, 16, 500}, {260, 41, 8, 2000}, {5, 7, 3, 35}};
    for (int t = 0; t < 4; t++) {
        int rows = shapes[t][0], cols = shapes[t][1], kdim = shapes[t][2], k = shapes[t][3];
        outer_case c;
        outer_case_make(&c, rows, cols, kdim, 0.15, 100 + (uint64_t)t);
        for (int o = 0; o < rows; o++) /* norms spread over decades */
            for (int b = 0; b < kdim; b++) c.post[o * kdim + b] *= powf(10.0f, (float)(o % 7) - 3);
        check_top_outer(&c.m, c.post, c.pre, kdim, k);
        outer_case_free(&c);
    }
}

/* Entries so small that their squares vanish in float (1e-24 squared is
 * below even float's subnormals): the norms behind the bounds must not
 * come out as 0, or every row after the first block would be skipped. */
static void test_grow_top_outer_tiny_values(void **state)
{
    (void)state;
    outer_case c;
    outer_case_make(&c, 300, 50, 16, 0.1, 8);
    for (int i = 0; i < 300 * 16; i++) c.post[i] *= 1e-24f;
    check_top_outer(&c.m, c.post, c.pre, c.kdim, 400);
    outer_case_free(&c);
}

/* The first block's threshold is guessed from every 64th of its products.
 * With 32 columns those are the column of largest norm in every other row;
 * making that one column far larger than the rest misleads the guess:
 * k = 30 needs the second, lower guess, k = 200 the last resort of no
 * guess. The result must not change. */
static void test_grow_top_outer_misleading_sample(void **state)
{
    (void)state;
    outer_case c;
    outer_case_make(&c, 128, 32, 8, 0.1, 7);
    for (int b = 0; b < c.kdim; b++) c.pre[5 * c.kdim + b] *= 100.0f;
    check_top_outer(&c.m, c.post, c.pre, c.kdim, 30);
    check_top_outer(&c.m, c.post, c.pre, c.kdim, 200);
    outer_case_free(&c);
}

/* A pattern from a list of (row, col), in row-major order, on a rows × cols
 * layer. */
static void make_csr(csr_matrix *m, int rows, int cols, const int (*rc)[2], int n)
{
    assert_int_equal(csr_alloc(m, rows, cols, n), RW_OK);
    for (int i = 0; i < n; i++) m->indptr[rc[i][0] + 1]++;
    for (int r = 0; r < rows; r++) m->indptr[r + 1] += m->indptr[r];
    for (int i = 0; i < n; i++) m->indices[i] = rc[i][1], m->values[i] = 1.0f;
    csr_build_transpose(m);
    assert_int_equal(csr_validate(m, "hand-made"), RW_OK);
}

/* Against sorting: random scores of both signs, with ties, signed zeros
 * and infinities; the k marked are the first k by (score, index). */
static int by_score_then_index(const void *a, const void *b)
{
    const float *x = a, *y = b; /* pairs {score, index} */
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

static void test_select_smallest_matches_sorting(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 5);
    for (int trial = 0; trial < 60; trial++) {
        int n = 1 + (int)rng_below(&r, 3000);
        float *score = malloc(sizeof(float) * (size_t)n), *pair = malloc(sizeof(float) * 2 * (size_t)n);
        uint8_t *mark = malloc((size_t)n);
        int levels = 1 + (int)rng_below(&r, 50);
        for (int i = 0; i < n; i++) {
            float v = (float)((int)rng_below(&r, (uint64_t)levels) - levels / 2) * 0.37f;
            int kind = (int)rng_below(&r, 20);
            if (kind == 0) v = -0.0f;
            if (kind == 1) v = 0.0f;
            if (kind == 2) v = INFINITY;
            if (kind == 3) v = -INFINITY;
            if (kind == 4) v = 1e-40f; /* subnormal */
            score[i] = v;
            pair[2 * i] = v, pair[2 * i + 1] = (float)i;
        }
        qsort(pair, (size_t)n, 2 * sizeof(float), by_score_then_index);
        int k = (int)rng_below(&r, (uint64_t)n + 1);
        assert_int_equal(topology_select_smallest(score, n, k, mark), k);
        /* Everything below the k-th value, then its ties (-0 and +0 are
         * equal) in index order until k. */
        float tau = k > 0 ? pair[2 * (k - 1)] : -INFINITY;
        int below = 0, at = 0;
        for (int i = 0; i < n; i++) below += k > 0 && score[i] < tau;
        for (int i = 0; i < n; i++) {
            if (k > 0 && score[i] < tau) assert_int_equal(mark[i], 1);
            if (k == 0 || score[i] > tau) assert_int_equal(mark[i], 0);
            if (k > 0 && score[i] == tau) {
                assert_int_equal(mark[i], below + at < k);
                at += mark[i];
            }
        }
        free(score);
        free(pair);
        free(mark);
    }
}

static void test_sad_and_itop_on_hand_made_patterns(void **state)
{
    (void)state;
    /* 3 × 4: before {(0,0) (0,2) (1,1) (2,3)}, after {(0,0) (1,1) (1,2) (2,0)}:
     * (0,2) and (2,3) left, (1,2) and (2,0) came: SAD 4; ever stored 6. */
    int a[][2] = {{0, 0}, {0, 2}, {1, 1}, {2, 3}}, b[][2] = {{0, 0}, {1, 1}, {1, 2}, {2, 0}};
    csr_matrix before, after;
    make_csr(&before, 3, 4, a, 4);
    make_csr(&after, 3, 4, b, 4);
    pattern p = {0}, ever = {0};
    assert_int_equal(pattern_copy(&p, &before), RW_OK);
    assert_int_equal(pattern_difference(&p, &after), 4);
    assert_int_equal(pattern_difference(&p, &before), 0);
    assert_int_equal(pattern_copy(&ever, &before), RW_OK);
    /* The update grew (2,0) and (1,2), in that order. */
    int64_t grown[] = {2 * 4 + 0, 1 * 4 + 2};
    assert_int_equal(pattern_add(&ever, grown, 2, 4), RW_OK);
    assert_int_equal(ever.nnz, 6);
    int32_t want_ptr[] = {0, 2, 4, 6}, want_idx[] = {0, 2, 1, 2, 0, 3};
    assert_memory_equal(ever.indptr, want_ptr, sizeof want_ptr);
    assert_memory_equal(ever.indices, want_idx, sizeof want_idx);
    int64_t again[] = {0 * 4 + 2, 2 * 4 + 3}; /* grown back: nothing new */
    assert_int_equal(pattern_add(&ever, again, 2, 4), RW_OK);
    assert_int_equal(ever.nnz, 6);
    assert_memory_equal(ever.indices, want_idx, sizeof want_idx);
    pattern_free(&p);
    pattern_free(&ever);
    csr_free(&before);
    csr_free(&after);
}

/* pattern_add against a dense table of the same shape: random held
 * patterns (empty and full rows included) and random batches of distinct
 * positions, some held already. */
static void test_pattern_add_matches_a_dense_table(void **state)
{
    (void)state;
    rng_state r;
    rng_seed(&r, 77);
    for (int trial = 0; trial < 40; trial++) {
        int rows = 1 + (int)rng_below(&r, 30), cols = 1 + (int)rng_below(&r, 90);
        int size = rows * cols;
        uint8_t *held = calloc((size_t)size, 1);
        double density = rng_uniform(&r);
        for (int i = 0; i < size; i++) held[i] = rng_uniform(&r) < density;
        if (rows > 2) memset(held + cols, 1, (size_t)cols); /* a full row */
        pattern p = {rows, 0, malloc(sizeof(int32_t) * ((size_t)rows + 1)),
                     malloc(sizeof(int32_t) * (size_t)size + 4)};
        p.indptr[0] = 0;
        for (int o = 0; o < rows; o++) {
            for (int c = 0; c < cols; c++)
                if (held[o * cols + c]) p.indices[p.nnz++] = c;
            p.indptr[o + 1] = (int32_t)p.nnz;
        }
        /* Distinct positions in random order: a shuffled prefix. */
        int64_t *pos = malloc(sizeof(int64_t) * (size_t)size);
        for (int i = 0; i < size; i++) pos[i] = i;
        for (int i = size - 1; i > 0; i--) {
            int j = (int)rng_below(&r, (uint64_t)i + 1);
            int64_t t = pos[i];
            pos[i] = pos[j], pos[j] = t;
        }
        int count = (int)rng_below(&r, (uint64_t)size + 1);
        assert_int_equal(pattern_add(&p, pos, count, cols), RW_OK);
        for (int i = 0; i < count; i++) held[pos[i]] = 1;
        int64_t want = 0;
        for (int o = 0; o < rows; o++) {
            assert_int_equal(p.indptr[o], want);
            for (int c = 0; c < cols; c++)
                if (held[o * cols + c]) assert_int_equal(p.indices[want++], c);
        }
        assert_int_equal(p.indptr[rows], want);
        assert_int_equal(p.nnz, want);
        free(pos);
        free(held);
        pattern_free(&p);
    }
}

static void test_dead_neurons_on_a_hand_made_model(void **state)
{
    (void)state;
    /* 4 inputs -> 3 hidden -> 2 outputs. Input 3 has no connection; hidden
     * 0 has no input, hidden 2 no output, hidden 1 is alive. */
    rw_model *m = model_alloc(2);
    int l0[][2] = {{1, 0}, {1, 1}, {2, 2}}, l1[][2] = {{0, 0}, {0, 1}, {1, 1}};
    csr_matrix w0, w1;
    make_csr(&w0, 3, 4, l0, 3);
    make_csr(&w1, 2, 3, l1, 3);
    m->inputs = 4;
    m->layers[0] = linear_csr_new("fc1", 4, 3, RW_ACT_RELU, 0.01f, 0, &w0, rw_alloc(3 * 4));
    m->layers[1] = linear_csr_new("fc2", 3, 2, RW_ACT_NONE, 0.01f, 1, &w1, rw_alloc(2 * 4));
    assert_int_equal(model_gather_params(m), RW_OK);
    int64_t dead[1], unconnected;
    int weights[2] = {0, 2};
    topology_dead_neurons(m, weights, 2, dead, &unconnected);
    assert_int_equal(unconnected, 1);
    assert_int_equal(dead[0], 2);
    int32_t fan_in[3], fan_out[4];
    assert_int_equal(rw_model_layer_fan(m, 0, fan_in, fan_out), RW_OK);
    int32_t want_in[] = {0, 2, 1}, want_out[] = {1, 1, 1, 0};
    assert_memory_equal(fan_in, want_in, sizeof want_in);
    assert_memory_equal(fan_out, want_out, sizeof want_out);
    assert_int_equal(rw_model_layer_fan(m, 2, NULL, NULL), RW_ERR_INVALID_ARGUMENT);
    rw_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_and_insert_move_state_with_weights),
        cmocka_unit_test(test_select_smallest_is_exact_and_deterministic),
        cmocka_unit_test(test_select_smallest_matches_sorting),
        cmocka_unit_test(test_drop_criteria),
        cmocka_unit_test(test_grow_random),
        cmocka_unit_test(test_grow_closed_columns),
        cmocka_unit_test(test_grow_top_outer_equals_brute_force),
        cmocka_unit_test(test_grow_top_outer_misleading_sample),
        cmocka_unit_test(test_grow_top_outer_tiny_values),
        cmocka_unit_test(test_sad_and_itop_on_hand_made_patterns),
        cmocka_unit_test(test_pattern_add_matches_a_dense_table),
        cmocka_unit_test(test_dead_neurons_on_a_hand_made_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
