/* N:M storage and kernels: magnitude selection, validation, bytes, and each
 * kernel (scalar against a dense computation, every other table of the
 * kernel list that this CPU runs against scalar, any thread count against
 * one thread). Each test over tables prints which it checked and which it
 * skipped because the CPU lacks them. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/nm.h"
#include "kernels/isa.h"
#include "testutil.h"

/* The N:M tables of the kernel list this CPU runs, into t[], scalar
 * first; prints them, and the ones skipped, under the test's name. */
static int runnable_tables(const char *test, const nm_kernel_table **t)
{
    char checked[128] = "", skipped[128] = "";
    int n = 0;
    for (int i = 0; i < kernel_isa_count(); i++) {
        const kernel_isa *k = kernel_isa_at(i);
        char *list = k->cpu_runs() ? checked : skipped;
        if (k->cpu_runs()) t[n++] = k->nm;
        snprintf(list + strlen(list), 128 - strlen(list), "%s%s", list[0] ? " " : "", k->name);
    }
    print_message("%s: tables checked: %s; skipped, the CPU lacks them: %s\n", test, checked,
                  skipped[0] ? skipped : "none");
    return n;
}
#define MAX_TABLES 8

static void test_magnitude_selection(void **state)
{
    (void)state;
    /* One row, two groups of 4: keep the 2 largest |w| of each. */
    float dense[8] = {0.1f, -0.9f, 0.5f, 0.2f, 3.0f, 0.0f, -3.0f, 1.0f}, back[8];
    nm_matrix w;
    assert_int_equal(nm_alloc(&w, 1, 8, 2, 4), RW_OK);
    nm_from_dense_magnitude(&w, dense);
    const uint8_t want_off[4] = {1, 2, 0, 2};
    const float want_val[4] = {-0.9f, 0.5f, 3.0f, -3.0f};
    assert_memory_equal(w.offsets, want_off, 4);
    assert_memory_equal(w.values, want_val, sizeof want_val);
    nm_to_dense(&w, back);
    const float want_dense[8] = {0, -0.9f, 0.5f, 0, 3.0f, 0, -3.0f, 0};
    assert_memory_equal(back, want_dense, sizeof back);
    assert_int_equal(nm_validate(&w, "w"), RW_OK);
    assert_int_equal(nm_weight_bytes(&w), 4 * 5);
    w.offsets[1] = 1;
    assert_int_equal(nm_validate(&w, "w"), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "not strictly increasing"));
    w.offsets[1] = 4;
    assert_int_equal(nm_validate(&w, "w"), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "not below M = 4"));
    nm_free(&w);
}

static void test_bad_shapes(void **state)
{
    (void)state;
    nm_matrix w;
    assert_int_equal(nm_alloc(&w, 3, 10, 2, 4), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "multiple of 4, got 10"));
    assert_int_equal(nm_alloc(&w, 3, 8, 5, 4), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(nm_alloc(&w, 3, 8, 0, 4), RW_ERR_INVALID_ARGUMENT);
}

typedef struct {
    nm_matrix w;
    float *bias, *x, *dy; /* x [cols][bp], dy [rows][bp], padding columns zero */
    int bp, batch;
} problem;

static void make_problem(problem *p, int rows, int cols, int n, int m, int batch, uint64_t seed)
{
    rng_state r;
    rng_seed(&r, seed);
    p->batch = batch;
    p->bp = rw_pad_batch(batch);
    float *dense = malloc(sizeof(float) * (size_t)(rows * cols + 1));
    tu_fill_uniform(dense, (size_t)rows * cols, -1, 1, &r);
    assert_int_equal(nm_alloc(&p->w, rows, cols, n, m), RW_OK);
    nm_from_dense_magnitude(&p->w, dense);
    free(dense);
    p->bias = rw_alloc(sizeof(float) * (size_t)rows);
    p->x = rw_alloc(sizeof(float) * (size_t)cols * p->bp);
    p->dy = rw_alloc(sizeof(float) * (size_t)rows * p->bp);
    tu_fill_uniform(p->bias, (size_t)rows, -1, 1, &r);
    for (int i = 0; i < cols; i++) tu_fill_uniform(p->x + (size_t)i * p->bp, (size_t)batch, -1, 1, &r);
    for (int o = 0; o < rows; o++) tu_fill_uniform(p->dy + (size_t)o * p->bp, (size_t)batch, -1, 1, &r);
}

static void free_problem(problem *p)
{
    nm_free(&p->w);
    rw_free(p->bias);
    rw_free(p->x);
    rw_free(p->dy);
}

/* All three kernels of a table into fresh buffers. */
static void run(const nm_kernel_table *k, const problem *p, float **y, float **dx, float **dw)
{
    const nm_matrix *w = &p->w;
    *y = rw_alloc(sizeof(float) * (size_t)w->rows * p->bp);
    *dx = rw_alloc(sizeof(float) * (size_t)w->cols * p->bp);
    *dw = rw_alloc(sizeof(float) * (size_t)w->rows * nm_slots_per_row(w));
    for (size_t i = 0; i < (size_t)w->cols * p->bp; i++) (*dx)[i] = NAN; /* must be overwritten */
    nm_forward_with(k, w, p->bias, p->x, *y, p->bp);
    nm_backward_data_with(k, w, p->dy, *dx, p->bp);
    nm_weight_grad_with(k, w, p->dy, p->x, *dw, p->bp);
}

static void check_against_dense(const problem *p, const float *y, const float *dx, const float *dw)
{
    const nm_matrix *w = &p->w;
    int rows = w->rows, cols = w->cols, bp = p->bp;
    float *dense = malloc(sizeof(float) * (size_t)(rows * cols + 1));
    nm_to_dense(w, dense);
    for (int o = 0; o < rows; o++)
        for (int b = 0; b < p->batch; b++) {
            double s = p->bias[o];
            for (int i = 0; i < cols; i++) s += (double)dense[o * cols + i] * p->x[(size_t)i * bp + b];
            float want = (float)s;
            assert_true(tu_max_rel_diff(&y[(size_t)o * bp + b], &want, 1) < 1e-5);
        }
    for (int i = 0; i < cols; i++)
        for (int b = 0; b < bp; b++) {
            double s = 0;
            for (int o = 0; o < rows; o++) s += (double)dense[o * cols + i] * p->dy[(size_t)o * bp + b];
            float want = (float)s;
            assert_true(tu_max_rel_diff(&dx[(size_t)i * bp + b], &want, 1) < 1e-5);
        }
    int slots = nm_slots_per_row(w);
    for (int o = 0; o < rows; o++)
        for (int k = 0; k < slots; k++) {
            int i = (k / w->n) * w->m + w->offsets[(size_t)o * slots + k];
            double s = 0;
            for (int b = 0; b < bp; b++) s += (double)p->dy[(size_t)o * bp + b] * p->x[(size_t)i * bp + b];
            float want = (float)s;
            assert_true(tu_max_rel_diff(&dw[(size_t)o * slots + k], &want, 1) < 1e-5);
        }
    free(dense);
}

static const int shapes[][5] = {
    /* rows, cols, n, m, batch */
    {1, 4, 2, 4, 1},   {5, 8, 2, 4, 3},     {17, 32, 1, 4, 8},   {9, 64, 2, 8, 13},
    {33, 48, 4, 4, 64}, {12, 40, 1, 8, 70}, {40, 128, 2, 4, 128}, {3, 64, 2, 64, 5},
    {64, 96, 2, 4, 136}, {0, 8, 2, 4, 8},
    /* every chunk width of the AVX2 kernels (64, 32, 8 columns) and n = 3 */
    {21, 64, 1, 4, 32}, {18, 48, 2, 4, 96}, {11, 72, 4, 8, 40}, {7, 36, 3, 4, 104},
    {30, 256, 1, 16, 24},
    /* a view at a batch above 32 for 1:4 (smaller batches sum in memory) */
    {19, 96, 1, 4, 48},
};

static void test_scalar_against_dense(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        problem p;
        make_problem(&p, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4], 10 + s);
        float *y, *dx, *dw;
        run(nm_kernels_scalar(), &p, &y, &dx, &dw);
        check_against_dense(&p, y, dx, dw);
        rw_free(y);
        rw_free(dx);
        rw_free(dw);
        free_problem(&p);
    }
}

/* Position q of the view is column (q mod groups) * m + q / groups
 * (offset-major); every (row, slot) at a position is a stored weight of its
 * column, each stored weight appears once, and rows increase within a
 * column. */
static void assert_view_is_transpose(const nm_matrix *w)
{
    int per_row = nm_slots_per_row(w);
    int64_t slots = (int64_t)w->rows * per_row;
    assert_int_equal(w->t_start[0], 0);
    assert_int_equal(w->t_start[w->cols], slots);
    unsigned char *seen = calloc((size_t)slots + 1, 1);
    for (int q = 0; q < w->cols; q++) {
        int c = w->t_col[q];
        assert_int_equal(c, q % w->groups * w->m + q / w->groups);
        for (int e = w->t_start[q]; e < w->t_start[q + 1]; e++) {
            int k = w->t_slot[e], o = w->t_rows[e], j = k % per_row;
            assert_int_equal(k / per_row, o);
            assert_int_equal(j / w->n * w->m + w->offsets[k], c);
            if (w->t_rows16) assert_int_equal(w->t_rows16[e], o);
            if (e > w->t_start[q]) assert_true(w->t_rows[e - 1] < o);
            assert_false(seen[k]);
            seen[k] = 1;
        }
    }
    free(seen);
}

/* Every table but the reference against it, the backward both without
 * the transposed view (summing in memory) and with it (CSR's kernel). */
static void test_twins_against_scalar(void **state)
{
    (void)state;
    const nm_kernel_table *tables[MAX_TABLES];
    int n_tables = runnable_tables("N:M twins against scalar", tables);
    for (int view = 0; view < 2; view++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            problem p;
            make_problem(&p, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4],
                         30 + s);
            if (view) {
                assert_int_equal(nm_build_transpose(&p.w), RW_OK);
                assert_view_is_transpose(&p.w);
            }
            const nm_matrix *w = &p.w;
            float *y1, *dx1, *dw1;
            run(nm_kernels_scalar(), &p, &y1, &dx1, &dw1);
            for (int t = 1; t < n_tables; t++) {
                float *y2, *dx2, *dw2;
                run(tables[t], &p, &y2, &dx2, &dw2);
                assert_true(tu_max_rel_diff(y2, y1, (size_t)w->rows * p.bp) < 1e-5);
                assert_true(tu_max_rel_diff(dx2, dx1, (size_t)w->cols * p.bp) < 1e-5);
                assert_true(tu_max_rel_diff(dw2, dw1, (size_t)w->rows * nm_slots_per_row(w)) < 1e-5);
                rw_free(y2), rw_free(dx2), rw_free(dw2);
            }
            rw_free(y1), rw_free(dx1), rw_free(dw1);
            free_problem(&p);
        }
}

/* As for CSR (test_kernels.c): the AVX-512 N:M kernels give the AVX2 ones'
 * bytes for the weight gradient, the backward data summed in memory and
 * the single-sample forward at every batch, and for every kernel at
 * batches padding to a multiple of 128, plus 8 or not. */
static void test_avx512_sums_as_avx2(void **state)
{
    (void)state;
    const kernel_isa *a = kernel_isa_named("avx2"), *b = kernel_isa_named("avx512");
    if (!a->cpu_runs() || !b->cpu_runs()) {
        print_message("N:M avx512 against avx2: skipped, the CPU lacks %s\n",
                      a->cpu_runs() ? "avx512" : "avx2");
        skip();
    }
    print_message("N:M avx512 against avx2: checked\n");
    static const int cases[][5] = {
        /* rows, cols, n, m, batch */
        {40, 128, 2, 4, 128}, {33, 64, 1, 4, 256}, {17, 96, 1, 8, 136}, {20, 64, 4, 8, 24},
        {12, 128, 1, 16, 128}, {9, 48, 3, 4, 128}, {25, 64, 2, 8, 100}, {30, 64, 1, 32, 384},
    };
    for (int view = 0; view < 2; view++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            problem p;
            make_problem(&p, cases[c][0], cases[c][1], cases[c][2], cases[c][3], cases[c][4], 70 + c);
            if (view) assert_int_equal(nm_build_transpose(&p.w), RW_OK);
            const nm_matrix *w = &p.w;
            float *y1, *dx1, *dw1, *y2, *dx2, *dw2;
            run(a->nm, &p, &y1, &dx1, &dw1);
            run(b->nm, &p, &y2, &dx2, &dw2);
            int all = p.bp % 128 == 0 || p.bp % 128 == 8;
            if (all) assert_memory_equal(y1, y2, sizeof(float) * (size_t)w->rows * p.bp);
            if (all || !view) assert_memory_equal(dx1, dx2, sizeof(float) * (size_t)w->cols * p.bp);
            assert_memory_equal(dw1, dw2, sizeof(float) * (size_t)w->rows * nm_slots_per_row(w));
            float *xv = malloc(sizeof(float) * (size_t)w->cols), *v1 = malloc(sizeof(float) * (size_t)w->rows);
            float *v2 = malloc(sizeof(float) * (size_t)w->rows);
            for (int i = 0; i < w->cols; i++) xv[i] = p.x[(size_t)i * p.bp];
            a->nm->forward_vector(w, p.bias, xv, v1, 0, w->rows);
            b->nm->forward_vector(w, p.bias, xv, v2, 0, w->rows);
            assert_memory_equal(v1, v2, sizeof(float) * (size_t)w->rows);
            free(xv), free(v1), free(v2);
            rw_free(y1), rw_free(dx1), rw_free(dw1), rw_free(y2), rw_free(dx2), rw_free(dw2);
            free_problem(&p);
        }
}

/* The single-sample forward of each table equals the batched forward's
 * first column (scalar) on every shape. */
static void test_forward_vector(void **state)
{
    (void)state;
    const nm_kernel_table *tables[MAX_TABLES];
    int n_tables = runnable_tables("N:M single-sample forward", tables);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        problem p;
        make_problem(&p, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], shapes[s][4], 50 + s);
        const nm_matrix *w = &p.w;
        float *y = rw_alloc(sizeof(float) * ((size_t)w->rows * p.bp + 1));
        float *xv = malloc(sizeof(float) * ((size_t)w->cols + 1));
        float *yv = malloc(sizeof(float) * ((size_t)w->rows + 1));
        for (int i = 0; i < w->cols; i++) xv[i] = p.x[(size_t)i * p.bp];
        nm_forward_with(nm_kernels_scalar(), w, p.bias, p.x, y, p.bp);
        for (int t = 0; t < n_tables; t++) {
            for (int o = 0; o < w->rows; o++) yv[o] = NAN;
            tables[t]->forward_vector(w, p.bias, xv, yv, 0, w->rows);
            for (int o = 0; o < w->rows; o++)
                assert_true(tu_max_rel_diff(&yv[o], &y[(size_t)o * p.bp], 1) < 1e-5);
        }
        rw_free(y);
        free(xv);
        free(yv);
        free_problem(&p);
    }
}

/* The view is built for patterns sparser than half only, and the memory
 * figure counts it exactly then. */
static void test_prepare_backward(void **state)
{
    (void)state;
    const int patterns[][2] = {{2, 4}, {1, 4}, {4, 8}, {3, 8}, {1, 2}, {1, 16}};
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        int n = patterns[i][0], m = patterns[i][1];
        nm_matrix w;
        assert_int_equal(nm_alloc(&w, 24, 64, n, m), RW_OK);
        assert_int_equal(nm_prepare_backward(&w), RW_OK);
        int64_t slots = 24 * (64 / m) * n;
        if (2 * n < m) {
            assert_non_null(w.t_start);
            assert_view_is_transpose(&w);
            assert_non_null(w.t_col);
            assert_int_equal(nm_memory_bytes(24, 64, n, m), slots * 5 + 4 * 65 + 4 * 64 + slots * 10);
        } else {
            assert_null(w.t_start);
            assert_int_equal(nm_memory_bytes(24, 64, n, m), slots * 5);
        }
        nm_free(&w);
    }
}

/* Results do not depend on the thread count, with and without the view
 * (1:4, a pattern that gets one), for every table. */
static void test_thread_count_independent(void **state)
{
    (void)state;
    const nm_kernel_table *tables[MAX_TABLES];
    int n_tables = runnable_tables("N:M thread counts", tables);
    for (int t = 0; t < n_tables; t++)
        for (int view = 0; view < 2; view++) {
            problem p;
            make_problem(&p, 300, 512, 1, 4, 128, 77);
            if (view) assert_int_equal(nm_build_transpose(&p.w), RW_OK);
            const nm_kernel_table *k = tables[t];
            float *y1, *dx1, *dw1, *y2, *dx2, *dw2;
            omp_set_num_threads(1);
            run(k, &p, &y1, &dx1, &dw1);
            omp_set_num_threads(3);
            run(k, &p, &y2, &dx2, &dw2);
            omp_set_num_threads(2);
            const nm_matrix *w = &p.w;
            assert_memory_equal(y1, y2, sizeof(float) * (size_t)w->rows * p.bp);
            assert_memory_equal(dx1, dx2, sizeof(float) * (size_t)w->cols * p.bp);
            assert_memory_equal(dw1, dw2, sizeof(float) * (size_t)w->rows * nm_slots_per_row(w));
            rw_free(y1), rw_free(dx1), rw_free(dw1), rw_free(y2), rw_free(dx2), rw_free(dw2);
            free_problem(&p);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magnitude_selection),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_scalar_against_dense),
        cmocka_unit_test(test_twins_against_scalar),
        cmocka_unit_test(test_avx512_sums_as_avx2),
        cmocka_unit_test(test_forward_vector),
        cmocka_unit_test(test_prepare_backward),
        cmocka_unit_test(test_thread_count_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
