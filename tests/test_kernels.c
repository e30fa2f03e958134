/* The sparse kernels: the scalar reference against a dense computation of
 * the same products, every kernel of every table in the kernel list
 * (kernels/isa.h) that this CPU runs against the reference, and the
 * threaded entry points bit-identical for any thread count. Each test
 * prints which tables it checked and which it skipped because the CPU
 * lacks them. */
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "kernels/isa.h"

#define TOL 1e-5

/* The tables of the kernel list this CPU runs, into t[] (at most
 * kernel_isa_count()), scalar first; prints them, and the ones skipped,
 * under the test's name. */
static int runnable_tables(const char *test, const kernel_table **t)
{
    char checked[128] = "", skipped[128] = "";
    int n = 0;
    for (int i = 0; i < kernel_isa_count(); i++) {
        const kernel_isa *k = kernel_isa_at(i);
        char *list = k->cpu_runs() ? checked : skipped;
        if (k->cpu_runs()) t[n++] = k->csr;
        snprintf(list + strlen(list), 128 - strlen(list), "%s%s", list[0] ? " " : "", k->name);
    }
    print_message("%s: tables checked: %s; skipped, the CPU lacks them: %s\n", test, checked,
                  skipped[0] ? skipped : "none");
    return n;
}
#define MAX_TABLES 8

/* Float sums drift from exact ones roughly with their length: allow TOL up
 * to 128 terms, proportionally more beyond. */
static double tolerance(const csr_matrix *w, int bp)
{
    int longest = bp;
    for (int o = 0; o < w->rows; o++)
        if (w->indptr[o + 1] - w->indptr[o] > longest) longest = w->indptr[o + 1] - w->indptr[o];
    for (int i = 0; i < w->cols; i++)
        if (w->t_indptr[i + 1] - w->t_indptr[i] > longest) longest = w->t_indptr[i + 1] - w->t_indptr[i];
    return longest > 128 ? TOL * longest / 128.0 : TOL;
}

/* One problem: W (rows × cols), bias [rows], x [cols][bp], dy [rows][bp],
 * with the padding columns b >= batch of x and dy zero as the library
 * keeps them. */
typedef struct {
    csr_matrix w;
    int batch, bp;
    float *bias; /* [rows] */
    float *x;    /* [cols][bp] */
    float *dy;   /* [rows][bp] */
    float *a;    /* [cols][bp]: an activation output gating the backward pass,
                    about half of it <= 0 (and some exact zeros) */
} problem;

static void problem_make(problem *p, int rows, int cols, double density, int batch, uint64_t seed)
{
    rng_state r;
    rng_seed(&r, seed);
    tu_random_csr(&p->w, rows, cols, density, &r);
    p->batch = batch;
    p->bp = rw_pad_batch(batch);
    p->bias = rw_alloc(sizeof(float) * (size_t)rows);
    p->x = rw_alloc(sizeof(float) * (size_t)cols * (size_t)p->bp);
    p->dy = rw_alloc(sizeof(float) * (size_t)rows * (size_t)p->bp);
    assert_non_null(p->bias);
    assert_non_null(p->x);
    assert_non_null(p->dy);
    tu_fill_uniform(p->bias, (size_t)rows, -1.0f, 1.0f, &r);
    for (int i = 0; i < cols; i++) tu_fill_uniform(p->x + (size_t)i * p->bp, (size_t)batch, -1.0f, 1.0f, &r);
    for (int o = 0; o < rows; o++) tu_fill_uniform(p->dy + (size_t)o * p->bp, (size_t)batch, -1.0f, 1.0f, &r);
    p->a = rw_alloc(sizeof(float) * (size_t)cols * (size_t)p->bp);
    assert_non_null(p->a);
    tu_fill_uniform(p->a, (size_t)cols * p->bp, -1.0f, 1.0f, &r);
    for (size_t i = 0; i < (size_t)cols * p->bp; i += 7) p->a[i] = 0.0f;
}

static void problem_free(problem *p)
{
    csr_free(&p->w);
    rw_free(p->bias);
    rw_free(p->x);
    rw_free(p->dy);
    rw_free(p->a);
}

/* The epilogues every kernel is tested with. */
static const kernel_epilogue epilogues[] = {{KACT_NONE, 0.0f}, {KACT_RELU, 0.0f}, {KACT_LEAKY, 0.01f}};
#define N_EPI 3

static double act_ref(double v, kernel_epilogue e)
{
    if (e.act == KACT_RELU) return v < 0 ? 0 : v;
    if (e.act == KACT_LEAKY) return v < 0 ? e.slope * v : v;
    return v;
}

static double act_grad_ref(double v, float a, kernel_epilogue e)
{
    if (e.act == KACT_RELU) return a > 0 ? v : 0;
    if (e.act == KACT_LEAKY) return a > 0 ? v : e.slope * v;
    return v;
}

/* Column b of x as a plain vector, for the SpMV kernels. */
static float *column(const float *x, int n, int bp, int b)
{
    float *v = rw_alloc(sizeof(float) * (size_t)(n ? n : 1));
    assert_non_null(v);
    for (int i = 0; i < n; i++) v[i] = x[(size_t)i * bp + b];
    return v;
}

/* Output buffer filled with NaN, so any entry a kernel fails to write shows. */
static float *nan_buffer(size_t n)
{
    float *b = rw_alloc(sizeof(float) * (n ? n : 1));
    assert_non_null(b);
    memset(b, 0xff, sizeof(float) * n);
    return b;
}

/* Max relative difference over the first `batch` columns of n rows. */
static double rows_rel_diff(const float *a, const float *b, int n, int batch, int bp)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double d = tu_max_rel_diff(a + (size_t)i * bp, b + (size_t)i * bp, (size_t)batch);
        if (d > worst) worst = d;
    }
    return worst;
}

/* Shapes covering the edges: empty dimensions, single rows and columns,
 * densities 0 and 1, sparse enough for empty rows and columns, and batches
 * padding to bp = 8, 16, 24, 128 and 136. */
typedef struct {
    int rows, cols;
    double density;
    int batch;
} shape;

static const shape shapes[] = {
    {0, 7, 0.5, 8},     {7, 0, 0.5, 8},      {0, 0, 0.5, 16},    {1, 1, 1.0, 1},
    {1, 37, 0.5, 24},   {37, 1, 0.5, 128},   {1, 64, 1.0, 136},  {23, 19, 0.0, 16},
    {23, 19, 1.0, 20},  {40, 30, 0.03, 128}, {50, 60, 0.1, 5},   {33, 70, 0.3, 130},
    {64, 48, 0.05, 136}, {17, 90, 0.5, 128}, {90, 17, 0.2, 13},  {128, 100, 0.08, 64},
    /* Columns longer than the AVX2 backward's gather buffer (4096 entries),
     * and columns of about half its size. */
    {4200, 3, 0.99, 8}, {2100, 5, 0.9, 16},
    /* Too wide or too tall for the 16-bit index copies: the 32-bit paths. */
    {3, 70000, 0.002, 16}, {70000, 3, 0.002, 8},
    /* Dense operands larger than L2: the kernels' other loop order. */
    {5, 1100, 0.05, 130}, {1100, 5, 0.05, 130},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static void test_scalar_matches_dense(void **state)
{
    (void)state;
    const kernel_table *k = kernels_scalar();
    for (size_t s = 0; s < N_SHAPES; s++) {
        problem p;
        const shape *sh = &shapes[s];
        problem_make(&p, sh->rows, sh->cols, sh->density, sh->batch, 100 + s);
        int rows = sh->rows, cols = sh->cols, bp = p.bp, batch = p.batch;
        const csr_matrix *w = &p.w;

        /* The dense matrix the CSR stands for. */
        double *dense = calloc((size_t)rows * cols + 1, sizeof(double));
        assert_non_null(dense);
        for (int o = 0; o < rows; o++)
            for (int q = w->indptr[o]; q < w->indptr[o + 1]; q++)
                dense[(size_t)o * cols + w->indices[q]] = w->values[q];

        float *y_ref = nan_buffer((size_t)rows * bp), *dx_ref = nan_buffer((size_t)cols * bp);
        float *dw_ref = nan_buffer((size_t)w->nnz);
        for (int o = 0; o < rows; o++)
            for (int b = 0; b < batch; b++) {
                double acc = p.bias[o];
                for (int i = 0; i < cols; i++) acc += dense[(size_t)o * cols + i] * p.x[(size_t)i * bp + b];
                y_ref[(size_t)o * bp + b] = (float)acc;
            }
        for (int i = 0; i < cols; i++)
            for (int b = 0; b < batch; b++) {
                double acc = 0;
                for (int o = 0; o < rows; o++) acc += dense[(size_t)o * cols + i] * p.dy[(size_t)o * bp + b];
                dx_ref[(size_t)i * bp + b] = (float)acc;
            }
        for (int o = 0; o < rows; o++)
            for (int q = w->indptr[o]; q < w->indptr[o + 1]; q++) {
                double acc = 0;
                for (int b = 0; b < batch; b++)
                    acc += (double)p.dy[(size_t)o * bp + b] * p.x[(size_t)w->indices[q] * bp + b];
                dw_ref[q] = (float)acc;
            }

        float *y = nan_buffer((size_t)rows * bp), *dx = nan_buffer((size_t)cols * bp);
        float *dw = nan_buffer((size_t)w->nnz), *db = nan_buffer((size_t)rows);
        double tol = tolerance(w, bp);
        for (int e = 0; e < N_EPI; e++) {
            kernel_epilogue epi = epilogues[e];
            k->spmm_forward(w, p.bias, p.x, y, bp, 0, rows, epi);
            k->spmm_backward_data(w, p.dy, dx, bp, 0, cols, p.a, epi);
            for (int o = 0; o < rows; o++)
                for (int b = 0; b < bp; b++) {
                    float want = (float)act_ref(b < batch ? y_ref[(size_t)o * bp + b] : p.bias[o], epi);
                    float got = y[(size_t)o * bp + b];
                    assert_true(tu_max_rel_diff(&got, &want, 1) < tol);
                }
            for (int i = 0; i < cols; i++)
                for (int b = 0; b < bp; b++) {
                    float want = b < batch ? (float)act_grad_ref(dx_ref[(size_t)i * bp + b],
                                                                 p.a[(size_t)i * bp + b], epi)
                                           : 0.0f;
                    float got = dx[(size_t)i * bp + b];
                    assert_true(tu_max_rel_diff(&got, &want, 1) < tol);
                }
            /* SpMV on column 0 of x against the same dense product. */
            float *xv = column(p.x, cols, bp, 0), *yv = nan_buffer((size_t)rows);
            k->spmv_forward(w, p.bias, xv, yv, 0, rows, epi);
            for (int o = 0; o < rows; o++) {
                float want = (float)act_ref(y_ref[(size_t)o * bp], epi);
                assert_true(tu_max_rel_diff(&yv[o], &want, 1) < tol);
            }
            rw_free(xv);
            rw_free(yv);
        }
        k->sddmm_weight_grad(w, p.dy, p.x, dw, db, bp, 0, rows);
        assert_true(tu_max_rel_diff(dw, dw_ref, (size_t)w->nnz) < tol);
        for (int o = 0; o < rows; o++) {
            double s = 0;
            for (int b = 0; b < batch; b++) s += p.dy[(size_t)o * bp + b];
            float want = (float)s;
            assert_true(tu_max_rel_diff(&db[o], &want, 1) < tol);
        }
        /* Padding columns: the bias in y, zero in the gradient dx. */
        k->spmm_forward(w, p.bias, p.x, y, bp, 0, rows, epilogues[0]);
        k->spmm_backward_data(w, p.dy, dx, bp, 0, cols, NULL, epilogues[0]);
        for (int o = 0; o < rows; o++)
            for (int b = batch; b < bp; b++) assert_true(y[(size_t)o * bp + b] == p.bias[o]);
        for (int i = 0; i < cols; i++)
            for (int b = batch; b < bp; b++) assert_true(dx[(size_t)i * bp + b] == 0.0f);

        /* No bias means zero bias; no db means none written. */
        k->spmm_forward(w, NULL, p.x, y, bp, 0, rows, epilogues[0]);
        for (int o = 0; o < rows; o++)
            for (int b = 0; b < batch; b++) y_ref[(size_t)o * bp + b] -= p.bias[o];
        assert_true(rows_rel_diff(y, y_ref, rows, batch, bp) < tol);
        k->sddmm_weight_grad(w, p.dy, p.x, dw, NULL, bp, 0, rows);
        assert_true(tu_max_rel_diff(dw, dw_ref, (size_t)w->nnz) < tol);
        rw_free(db);

        rw_free(y); rw_free(dx); rw_free(dw);
        rw_free(y_ref); rw_free(dx_ref); rw_free(dw_ref);
        free(dense);
        problem_free(&p);
    }
}

/* Every output of one run of the kernels over a problem. */
typedef struct {
    float *y, *dx, *dw, *db, *yv;
} outputs;

static void outputs_alloc(outputs *o, const problem *p)
{
    o->y = nan_buffer((size_t)p->w.rows * p->bp);
    o->dx = nan_buffer((size_t)p->w.cols * p->bp);
    o->dw = nan_buffer((size_t)p->w.nnz);
    o->db = nan_buffer((size_t)p->w.rows);
    o->yv = nan_buffer((size_t)p->w.rows);
}

static void outputs_free(outputs *o)
{
    rw_free(o->y); rw_free(o->dx); rw_free(o->dw); rw_free(o->db); rw_free(o->yv);
}

/* Byte equality of two runs. */
static void outputs_identical(const outputs *a, const outputs *b, const problem *p)
{
    assert_memory_equal(a->y, b->y, sizeof(float) * (size_t)p->w.rows * p->bp);
    assert_memory_equal(a->dx, b->dx, sizeof(float) * (size_t)p->w.cols * p->bp);
    assert_memory_equal(a->dw, b->dw, sizeof(float) * (size_t)p->w.nnz);
    assert_memory_equal(a->db, b->db, sizeof(float) * (size_t)p->w.rows);
    assert_memory_equal(a->yv, b->yv, sizeof(float) * (size_t)p->w.rows);
}

/* Runs every kernel of table k over the whole problem, each over two
 * sub-ranges (so the range arguments are exercised), into fresh buffers;
 * the SpMV on column 0 of x. */
static void run_ranges(const kernel_table *k, const problem *p, kernel_epilogue epi, outputs *o)
{
    const csr_matrix *w = &p->w;
    int bp = p->bp, rm = w->rows / 3, cm = w->cols / 2;
    outputs_alloc(o, p);
    k->spmm_forward(w, p->bias, p->x, o->y, bp, 0, rm, epi);
    k->spmm_forward(w, p->bias, p->x, o->y, bp, rm, w->rows, epi);
    k->spmm_backward_data(w, p->dy, o->dx, bp, 0, cm, p->a, epi);
    k->spmm_backward_data(w, p->dy, o->dx, bp, cm, w->cols, p->a, epi);
    k->sddmm_weight_grad(w, p->dy, p->x, o->dw, o->db, bp, 0, rm);
    k->sddmm_weight_grad(w, p->dy, p->x, o->dw, o->db, bp, rm, w->rows);
    float *xv = column(p->x, w->cols, bp, 0);
    k->spmv_forward(w, p->bias, xv, o->yv, 0, rm, epi);
    k->spmv_forward(w, p->bias, xv, o->yv, rm, w->rows, epi);
    rw_free(xv);
}

/* Every table but the reference against it, on the edge shapes and
 * random ones. */
static void test_twins_match_scalar(void **state)
{
    (void)state;
    const kernel_table *tables[MAX_TABLES];
    int n_tables = runnable_tables("twins against scalar", tables);
    rng_state r;
    rng_seed(&r, 7);
    for (size_t s = 0; s < N_SHAPES + 60; s++) {
        shape sh;
        if (s < N_SHAPES) {
            sh = shapes[s];
        } else {
            static const int batches[] = {1, 8, 11, 16, 24, 31, 32, 40, 64, 72, 96, 100, 128, 136, 256};
            sh.rows = (int)rng_below(&r, 120);
            sh.cols = (int)rng_below(&r, 120);
            sh.density = rng_uniform(&r) * (rng_uniform(&r) < 0.3 ? 1.0 : 0.15);
            sh.batch = batches[rng_below(&r, sizeof batches / sizeof batches[0])];
        }
        problem p;
        problem_make(&p, sh.rows, sh.cols, sh.density, sh.batch, 500 + s);
        double tol = tolerance(&p.w, p.bp);
        for (int e = 0; e < N_EPI; e++) {
            outputs ref;
            run_ranges(kernels_scalar(), &p, epilogues[e], &ref);
            for (int t = 1; t < n_tables; t++) {
                outputs got;
                run_ranges(tables[t], &p, epilogues[e], &got);
                /* Padding columns included: both must write the same there too. */
                assert_true(tu_max_rel_diff(got.y, ref.y, (size_t)sh.rows * p.bp) < tol);
                assert_true(tu_max_rel_diff(got.dx, ref.dx, (size_t)sh.cols * p.bp) < tol);
                assert_true(tu_max_rel_diff(got.dw, ref.dw, (size_t)p.w.nnz) < tol);
                if (!(tu_max_rel_diff(got.db, ref.db, (size_t)sh.rows) < tol))
                    fail_msg("%s db: shape %zu (%d x %d, density %g, batch %d): %g", tables[t]->name,
                             s, sh.rows, sh.cols, sh.density, sh.batch,
                             tu_max_rel_diff(got.db, ref.db, (size_t)sh.rows));
                assert_true(tu_max_rel_diff(got.yv, ref.yv, (size_t)sh.rows) < tol);
                outputs_free(&got);
            }
            outputs_free(&ref);
        }
        problem_free(&p);
    }
}

/* The AVX-512 kernels sum as the AVX2 ones do where spmm_avx512.c says
 * so: the SDDMM, the bias gradient and the SpMV at every batch, the
 * SpMM and SpMMᵀ at batches padding to a multiple of 128, plus 8 or not;
 * there the two tables give the same bytes (so a training run does not
 * depend on which of them the CPU picks). */
static void test_avx512_sums_as_avx2(void **state)
{
    (void)state;
    const kernel_isa *a = kernel_isa_named("avx2"), *b = kernel_isa_named("avx512");
    if (!a->cpu_runs() || !b->cpu_runs()) {
        print_message("avx512 against avx2: skipped, the CPU lacks %s\n",
                      a->cpu_runs() ? "avx512" : "avx2");
        skip();
    }
    print_message("avx512 against avx2: checked\n");
    rng_state r;
    rng_seed(&r, 8);
    for (int s = 0; s < 43; s++) {
        static const int batches[] = {1, 8, 24, 64, 100, 128, 136, 250, 256, 384};
        int rows = 1 + (int)rng_below(&r, 150), cols = 1 + (int)rng_below(&r, 150);
        int batch = batches[s % (int)(sizeof batches / sizeof batches[0])];
        double density = s % 5 == 0 ? 0.9 : 0.01 + 0.2 * rng_uniform(&r);
        /* And: no stored weight at all; rows of ~200 terms over 32-bit
         * indices; one row of every length 0 to 60. */
        if (s == 40) density = 0.0;
        if (s == 41) rows = 6, cols = 70000, density = 0.003;
        if (s == 42) rows = 61, cols = 64, density = -1;
        problem p;
        problem_make(&p, rows, cols, density < 0 ? 1.0 : density, batch, 900 + (uint64_t)s);
        if (density < 0) { /* row o keeps its first o entries */
            int nnz = 0;
            for (int o = 0; o < rows; o++) {
                for (int k = 0; k < o; k++, nnz++) {
                    p.w.indices[nnz] = p.w.indices[(size_t)o * cols + k];
                    p.w.values[nnz] = p.w.values[(size_t)o * cols + k];
                }
                p.w.indptr[o + 1] = nnz;
            }
            p.w.nnz = nnz;
            csr_build_transpose(&p.w); /* and the 16-bit copy */
        }
        for (int e = 0; e < N_EPI; e++) {
            outputs x, y;
            run_ranges(a->csr, &p, epilogues[e], &x);
            run_ranges(b->csr, &p, epilogues[e], &y);
            if (p.bp % 128 == 0 || p.bp % 128 == 8) {
                assert_memory_equal(x.y, y.y, sizeof(float) * (size_t)rows * p.bp);
                assert_memory_equal(x.dx, y.dx, sizeof(float) * (size_t)cols * p.bp);
            }
            assert_memory_equal(x.dw, y.dw, sizeof(float) * (size_t)p.w.nnz);
            assert_memory_equal(x.db, y.db, sizeof(float) * (size_t)rows);
            assert_memory_equal(x.yv, y.yv, sizeof(float) * (size_t)rows);
            outputs_free(&x);
            outputs_free(&y);
        }
        problem_free(&p);
    }
}

/* The AVX-512 table b against the AVX2 table a on problem p, every
 * epilogue: the same bytes at batches of 128·k (+ 8) columns and in the
 * gradients of the weights and biases, and the scalar reference's sums
 * within the tolerance. */
static void check_avx512_as_avx2(const kernel_table *a, const kernel_table *b, problem *p,
                                 const char *what)
{
    double tol = tolerance(&p->w, p->bp);
    for (int e = 0; e < N_EPI; e++) {
        outputs ref, x, y;
        run_ranges(kernels_scalar(), p, epilogues[e], &ref);
        run_ranges(a, p, epilogues[e], &x);
        run_ranges(b, p, epilogues[e], &y);
        if (p->bp % 128 == 0 || p->bp % 128 == 8) {
            assert_memory_equal(x.y, y.y, sizeof(float) * (size_t)p->w.rows * p->bp);
            assert_memory_equal(x.dx, y.dx, sizeof(float) * (size_t)p->w.cols * p->bp);
        }
        assert_memory_equal(x.dw, y.dw, sizeof(float) * (size_t)p->w.nnz);
        assert_memory_equal(x.db, y.db, sizeof(float) * (size_t)p->w.rows);
        double ey = tu_max_rel_diff(y.y, ref.y, (size_t)p->w.rows * p->bp);
        double ex = tu_max_rel_diff(y.dx, ref.dx, (size_t)p->w.cols * p->bp);
        double ew = tu_max_rel_diff(y.dw, ref.dw, (size_t)p->w.nnz);
        if (!(ey < tol) || !(ex < tol) || !(ew < tol))
            fail_msg("%s (%d x %d, batch %d, epilogue %d): y %g, dx %g, dw %g against the "
                     "reference, tolerance %g", what, p->w.rows, p->w.cols, p->bp, e, ey, ex, ew,
                     tol);
        outputs_free(&ref);
        outputs_free(&x);
        outputs_free(&y);
    }
}

/* Inputs too large for the cache take the kernels' tiled loops (the
 * AVX-512 SDDMM over tiles of input rows, its SpMM and SpMMᵀ over tiles
 * of a batch chunk's input rows): the same bytes as the AVX2
 * table, and the reference's sums within the tolerance. The shapes have
 * short and long rows (entries outside a row's groups of four, groups cut
 * by a tile's edge), 16- and 32-bit indices, batches of 128·k and 128·k + 8
 * columns and others. */
static void test_large_inputs_tiled(void **state)
{
    (void)state;
    const kernel_isa *a = kernel_isa_named("avx2"), *b = kernel_isa_named("avx512");
    if (!a->cpu_runs() || !b->cpu_runs()) {
        print_message("tiled kernels: skipped, the CPU lacks %s\n",
                      a->cpu_runs() ? "avx512" : "avx2");
        skip();
    }
    static const struct { int rows, cols; double density; int batch; } big[] = {
        {48, 700, 0.08, 384}, {30, 1100, 0.3, 256}, {70, 520, 0.02, 768},
        {5, 3000, 0.5, 136},  {9, 1500, 0.01, 200}, {4, 70000, 0.002, 40},
        {20, 2100, 0.1, 384}, {12, 2500, 0.05, 128}, {6, 9000, 0.02, 128},
        {1100, 30, 0.3, 256}, {2100, 20, 0.1, 384},   {2500, 12, 0.05, 128},
    };
    for (size_t s = 0; s < sizeof big / sizeof big[0]; s++) {
        problem p;
        problem_make(&p, big[s].rows, big[s].cols, big[s].density, big[s].batch, 1300 + s);
        check_avx512_as_avx2(a->csr, b->csr, &p, "tiled input");
        problem_free(&p);
    }
}

/* The GPT's shapes at batch 768 and inputs around the kernels' cache
 * thresholds (an input chunk of more or less than L2's share, up to 4096
 * input rows and past it): the AVX-512 kernels give the same bytes as the
 * AVX2 table at batches of 128·k (+ 8) columns, and the reference's sums
 * within the tolerance, forward, backward and SDDMM, for few rows, rows all of
 * one length, empty rows and columns, batch tails of 64, 32, 16 and 8
 * columns, and with the 32-bit indices too (the 16-bit copies dropped). */
static void test_large_batch_shapes(void **state)
{
    (void)state;
    const kernel_isa *a = kernel_isa_named("avx2"), *b = kernel_isa_named("avx512");
    if (!a->cpu_runs() || !b->cpu_runs()) {
        print_message("large batch shapes: skipped, the CPU lacks %s\n",
                      a->cpu_runs() ? "avx512" : "avx2");
        skip();
    }
    static const struct { int rows, cols; double density; int batch; } sh[] = {
        {512, 512, 0.1, 768}, {300, 400, 0.02, 700}, {257, 500, 0.25, 1000},
        {450, 200, 0.05, 1024}, {5, 400, 0.3, 512},  {8, 300, 1.0, 640},
        {500, 3, 0.6, 768},   {40, 512, 0.5, 392},  {350, 350, 0.004, 512},
        {600, 1100, 0.05, 768}, {1300, 700, 0.1, 520}, {40, 2048, 0.1, 768},
        {2048, 40, 0.1, 768}, {10, 5000, 0.05, 256}, {5000, 10, 0.05, 256},
    };
    for (size_t s = 0; s < 2 * (sizeof sh / sizeof sh[0]); s++) {
        size_t i = s % (sizeof sh / sizeof sh[0]);
        problem p;
        problem_make(&p, sh[i].rows, sh[i].cols, sh[i].density, sh[i].batch, 1700 + s);
        if (s >= sizeof sh / sizeof sh[0]) { /* the 32-bit index loops */
            rw_free(p.w.indices16);
            rw_free(p.w.t_rows16);
            p.w.indices16 = NULL;
            p.w.t_rows16 = NULL;
        }
        check_avx512_as_avx2(a->csr, b->csr, &p, s < sizeof sh / sizeof sh[0]
                                                      ? "large batch, 16-bit indices"
                                                      : "large batch, 32-bit indices");
        problem_free(&p);
    }
}

/* A NaN in the input stays NaN through the forward epilogues (so a
 * diverging layer is found), for both tables. */
static void test_epilogue_keeps_nan(void **state)
{
    (void)state;
    const kernel_table *tables[MAX_TABLES];
    int n_tables = runnable_tables("NaN through the epilogues", tables);
    for (int t = 0; t < n_tables; t++) {
        problem p;
        problem_make(&p, 5, 4, 1.0, 8, 77);
        p.x[0] = NAN;
        float *y = nan_buffer((size_t)5 * p.bp);
        for (int e = 1; e < N_EPI; e++) {
            tables[t]->spmm_forward(&p.w, p.bias, p.x, y, p.bp, 0, 5, epilogues[e]);
            for (int o = 0; o < 5; o++) assert_true(isnan(y[(size_t)o * p.bp]));
            float *xv = column(p.x, 4, p.bp, 0), yv[5];
            tables[t]->spmv_forward(&p.w, p.bias, xv, yv, 0, 5, epilogues[e]);
            for (int o = 0; o < 5; o++) assert_true(isnan(yv[o]));
            rw_free(xv);
        }
        rw_free(y);
        problem_free(&p);
    }
}

/* GELU keeps a NaN (of either sign) NaN, forward and backward, for every
 * table; under UBSan its exp's exponent trick must stay defined. */
static void test_gelu_keeps_nan(void **state)
{
    (void)state;
    const kernel_table *tables[MAX_TABLES];
    int n_tables = runnable_tables("NaN through GELU", tables);
    for (int t = 0; t < n_tables; t++) {
        float z[4] = {NAN, -NAN, 1.0f, -1e30f}, a[4], g[4] = {1, 1, 1, 1};
        tables[t]->gelu_forward(z, a, 4);
        tables[t]->gelu_backward(z, g, 4);
        assert_true(isnan(a[0]) && isnan(a[1]) && isnan(g[0]) && isnan(g[1]));
        assert_true(fabsf(a[2] - 0.841192f) < 1e-5f && a[3] == 0.0f);
    }
}

/* The team versions inside a parallel region of `threads` threads, and the
 * plain threaded entry points, into fresh buffers. */
static void run_threaded(const kernel_table *k, const problem *p, int threads, kernel_epilogue epi,
                         outputs *o)
{
    const csr_matrix *w = &p->w;
    outputs_alloc(o, p);
    float *xv = column(p->x, w->cols, p->bp, 0);
#pragma omp parallel num_threads(threads)
    {
        team_forward(k, w, p->bias, p->x, o->y, p->bp, epi);
        team_backward(k, w, p->dy, p->x, o->dw, o->db, o->dx, p->a, p->bp, epi);
        team_spmv(k, w, p->bias, xv, o->yv, epi);
    }
    rw_free(xv);
}

static void run_entry_points(const kernel_table *k, const problem *p, int threads, float **y,
                             float **dx, float **dw)
{
    const csr_matrix *w = &p->w;
    omp_set_num_threads(threads);
    *y = nan_buffer((size_t)w->rows * p->bp);
    *dx = nan_buffer((size_t)w->cols * p->bp);
    *dw = nan_buffer((size_t)w->nnz);
    sparse_forward_with(k, w, p->bias, p->x, *y, p->bp);
    sparse_backward_data_with(k, w, p->dy, *dx, p->bp);
    sparse_weight_grad_with(k, w, p->dy, p->x, *dw, p->bp);
}

/* A problem whose nonzeros crowd into a few rows and columns, so a split by
 * row count alone would be badly unbalanced (and some ranges are empty). */
static void make_skewed(problem *p)
{
    problem_make(p, 300, 200, 0.02, 64, 99);
    csr_matrix *w = &p->w;
    csr_free(w);
    int nnz = 3 * 200 + 2 * 150;
    assert_int_equal(csr_alloc(w, 300, 200, nnz), RW_OK);
    int q = 0;
    for (int o = 0; o < 300; o++) {
        if (o == 5 || o == 6 || o == 7)
            for (int i = 0; i < 200; i++) w->indices[q++] = i;
        else if (o == 290 || o == 291)
            for (int i = 0; i < 150; i++) w->indices[q++] = i * 200 / 150;
        w->indptr[o + 1] = q;
    }
    assert_int_equal(q, nnz);
    for (int k = 0; k < nnz; k++) w->values[k] = (float)((k * 37 % 101) - 50) / 50.0f;
    csr_build_transpose(w);
}

static void test_threads_bit_identical(void **state)
{
    (void)state;
    const kernel_table *tables[MAX_TABLES];
    int n_tables = runnable_tables("thread counts", tables);
    int saved = omp_get_max_threads();
    for (int c = 0; c < 4; c++) {
        problem p;
        if (c == 0)
            problem_make(&p, 300, 200, 0.1, 64, 42);
        else if (c == 1)
            problem_make(&p, 257, 311, 0.05, 120, 43);
        else if (c == 2)
            problem_make(&p, 1000, 900, 0.05, 8, 44); /* SpMV worth threading */
        else
            make_skewed(&p);
        for (int t = 0; t < n_tables; t++) {
            for (int e = 0; e < N_EPI; e++) {
                /* One thread = each kernel over its full range. */
                outputs one, ranges;
                run_threaded(tables[t], &p, 1, epilogues[e], &one);
                run_ranges(tables[t], &p, epilogues[e], &ranges);
                outputs_identical(&one, &ranges, &p);
                for (int threads = 2; threads <= 3; threads++) {
                    outputs many;
                    run_threaded(tables[t], &p, threads, epilogues[e], &many);
                    outputs_identical(&many, &one, &p);
                    outputs_free(&many);
                }
                outputs_free(&one);
                outputs_free(&ranges);
            }
            /* The plain entry points: the kernels without epilogue. */
            float *y1, *dx1, *dw1;
            run_entry_points(tables[t], &p, 1, &y1, &dx1, &dw1);
            outputs ranges;
            run_ranges(tables[t], &p, epilogues[0], &ranges);
            assert_memory_equal(ranges.y, y1, sizeof(float) * (size_t)p.w.rows * p.bp);
            assert_memory_equal(ranges.dx, dx1, sizeof(float) * (size_t)p.w.cols * p.bp);
            assert_memory_equal(ranges.dw, dw1, sizeof(float) * (size_t)p.w.nnz);
            outputs_free(&ranges);
            for (int threads = 2; threads <= 3; threads++) {
                float *yn, *dxn, *dwn;
                run_entry_points(tables[t], &p, threads, &yn, &dxn, &dwn);
                assert_memory_equal(yn, y1, sizeof(float) * (size_t)p.w.rows * p.bp);
                assert_memory_equal(dxn, dx1, sizeof(float) * (size_t)p.w.cols * p.bp);
                assert_memory_equal(dwn, dw1, sizeof(float) * (size_t)p.w.nnz);
                rw_free(yn); rw_free(dxn); rw_free(dwn);
            }
            rw_free(y1); rw_free(dx1); rw_free(dw1);
        }
        problem_free(&p);
    }
    omp_set_num_threads(saved);
}

/* GELU applied chunk by chunk inside the products (team_forward_gelu,
 * team_backward_gelu) gives the bytes of the product followed by a GELU
 * pass over the whole tensor, for every table and 1 to 3 threads. */
static void test_gelu_fused_as_pass(void **state)
{
    (void)state;
    const kernel_table *tables[MAX_TABLES];
    int n_tables = runnable_tables("GELU fused into the products", tables);
    for (int c = 0; c < 3; c++) {
        problem p;
        if (c == 0)
            problem_make(&p, 300, 200, 0.1, 64, 51);
        else if (c == 1)
            problem_make(&p, 257, 311, 0.05, 120, 52);
        else
            make_skewed(&p);
        const csr_matrix *w = &p.w;
        size_t ny = (size_t)w->rows * p.bp, nx = (size_t)w->cols * p.bp;
        for (int t = 0; t < n_tables; t++) {
            const kernel_table *k = tables[t];
            /* The pass: the product, then GELU (or its derivative at p.a). */
            float *z = nan_buffer(ny), *a = nan_buffer(ny), *dx = nan_buffer(nx);
            float *dw = nan_buffer((size_t)w->nnz);
            k->spmm_forward(w, p.bias, p.x, z, p.bp, 0, w->rows, epilogues[0]);
            k->gelu_forward(z, a, ny);
            k->spmm_backward_data(w, p.dy, dx, p.bp, 0, w->cols, NULL, epilogues[0]);
            k->gelu_backward(p.a, dx, nx);
            k->sddmm_weight_grad(w, p.dy, p.x, dw, NULL, p.bp, 0, w->rows);
            for (int threads = 1; threads <= 3; threads++) {
                float *z2 = nan_buffer(ny), *a2 = nan_buffer(ny), *dx2 = nan_buffer(nx);
                float *dw2 = nan_buffer((size_t)w->nnz);
#pragma omp parallel num_threads(threads)
                {
                    team_forward_gelu(k, w, p.bias, p.x, z2, a2, p.bp);
                    team_backward_gelu(k, w, p.dy, p.x, dw2, NULL, dx2, p.a, p.bp);
                }
                assert_memory_equal(z2, z, sizeof(float) * ny);
                assert_memory_equal(a2, a, sizeof(float) * ny);
                assert_memory_equal(dx2, dx, sizeof(float) * nx);
                assert_memory_equal(dw2, dw, sizeof(float) * (size_t)w->nnz);
                rw_free(z2); rw_free(a2); rw_free(dx2); rw_free(dw2);
            }
            /* One sample: team_spmv_gelu as the SpMV, then a GELU pass. */
            float *xv = column(p.x, w->cols, p.bp, 0), *zv = nan_buffer((size_t)w->rows);
            float *av = nan_buffer((size_t)w->rows);
            k->spmv_forward(w, p.bias, xv, zv, 0, w->rows, epilogues[0]);
            k->gelu_forward(zv, av, (size_t)w->rows);
            for (int threads = 1; threads <= 3; threads++) {
                float *z2 = nan_buffer((size_t)w->rows), *a2 = nan_buffer((size_t)w->rows);
#pragma omp parallel num_threads(threads)
                team_spmv_gelu(k, w, p.bias, xv, z2, a2);
                assert_memory_equal(z2, zv, sizeof(float) * (size_t)w->rows);
                assert_memory_equal(a2, av, sizeof(float) * (size_t)w->rows);
                rw_free(z2); rw_free(a2);
            }
            rw_free(xv); rw_free(zv); rw_free(av);
            rw_free(z); rw_free(a); rw_free(dx); rw_free(dw);
        }
        problem_free(&p);
    }
}

/* The batch transposition: the same bytes from every table, over random
 * sample orders, feature ranges, batches and paddings. */
static void test_load_batch(void **state)
{
    (void)state;
    const kernel_table *tables[MAX_TABLES];
    int n_tables = runnable_tables("load_batch", tables);
    rng_state r;
    rng_seed(&r, 11);
    for (int trial = 0; trial < 40; trial++) {
        int features = 1 + (int)rng_below(&r, 100), samples = 1 + (int)rng_below(&r, 300);
        int n = 1 + (int)rng_below(&r, samples < 140 ? samples : 140), bp = rw_pad_batch(n);
        if (trial % 3 == 0) bp += 8;
        int f0 = (int)rng_below(&r, (uint64_t)features), f1 = f0 + 1 + (int)rng_below(&r, (uint64_t)(features - f0));
        float *x = rw_alloc(sizeof(float) * (size_t)samples * features);
        int *index = malloc(sizeof(int) * (size_t)n);
        assert_non_null(x);
        assert_non_null(index);
        tu_fill_uniform(x, (size_t)samples * features, 0.0f, 1.0f, &r);
        for (int b = 0; b < n; b++) index[b] = (int)rng_below(&r, (uint64_t)samples);
        float *out[MAX_TABLES];
        for (int t = 0; t < n_tables; t++) {
            out[t] = nan_buffer((size_t)features * bp);
            tables[t]->load_batch(x, features, trial % 4 == 1 ? NULL : index, n, 0.28f, 2.9f,
                                  out[t], bp, f0, f1);
        }
        for (int f = f0; f < f1; f++)
            for (int b = 0; b < bp; b++) {
                float v = out[0][(size_t)f * bp + b];
                float want = b >= n ? 0.0f
                                    : (x[(size_t)(trial % 4 == 1 ? b : index[b]) * features + f] - 0.28f) * 2.9f;
                assert_true(v == want);
            }
        for (int t = 1; t < n_tables; t++)
            assert_memory_equal(out[0] + (size_t)f0 * bp, out[t] + (size_t)f0 * bp,
                                sizeof(float) * (size_t)(f1 - f0) * bp);
        for (int t = 0; t < n_tables; t++) rw_free(out[t]);
        rw_free(x);
        free(index);
    }
}

/* The threshold scan: the positions a plain loop finds, from every table,
 * over lengths with and without a tail, NaN and infinite entries, exact
 * ties with the threshold and negative values. */
static void test_find_at_least(void **state)
{
    (void)state;
    const kernel_table *tables[MAX_TABLES];
    int n_tables = runnable_tables("find_at_least", tables);
    rng_state r;
    rng_seed(&r, 12);
    for (int trial = 0; trial < 60; trial++) {
        int n = (int)rng_below(&r, 200);
        float thr = trial % 7 == 0 ? -INFINITY : (float)rng_uniform(&r);
        float *x = malloc(sizeof(float) * (size_t)(n + 1));
        int32_t *want = malloc(sizeof(int32_t) * (size_t)(n + 1));
        int32_t *got = malloc(sizeof(int32_t) * (size_t)(n + 1));
        assert_true(x && want && got);
        tu_fill_uniform(x, (size_t)n, -1.0f, 1.0f, &r);
        for (int j = 0; j < n; j++) {
            uint64_t kind = rng_below(&r, 10);
            if (kind == 0) x[j] = NAN;
            else if (kind == 1) x[j] = -thr; /* a tie, on the negative side */
            else if (kind == 2) x[j] = trial % 2 ? INFINITY : -INFINITY;
        }
        int count = 0;
        for (int j = 0; j < n; j++)
            if (!isnan(x[j]) && fabsf(x[j]) >= thr) want[count++] = j;
        for (int t = 0; t < n_tables; t++) {
            /* Fenced: nothing may be written past the last position found. */
            for (int j = 0; j <= n; j++) got[j] = -7;
            assert_int_equal(tables[t]->find_at_least(x, n, thr, got), count);
            for (int j = count; j <= n; j++) assert_int_equal(got[j], -7);
            assert_memory_equal(got, want, sizeof(int32_t) * (size_t)count);
        }
        free(x);
        free(want);
        free(got);
    }
}

/* The choice: the best table the CPU runs, at most the one REWIRE_KERNELS
 * names (ctest runs this program with the variable unset; CI may set it). */
static void test_active_table(void **state)
{
    (void)state;
    const kernel_isa *asked = kernel_isa_named(getenv("REWIRE_KERNELS"));
    int top = kernel_isa_count() - 1;
    for (int i = 0; asked && i < kernel_isa_count(); i++)
        if (kernel_isa_at(i) == asked) top = i;
    const kernel_isa *want = kernel_isa_at(0);
    for (int i = top; i > 0 && want == kernel_isa_at(0); i--)
        if (kernel_isa_at(i)->cpu_runs()) want = kernel_isa_at(i);
    assert_ptr_equal(kernel_isa_active(), want);
    assert_ptr_equal(kernels_active(), want->csr);
    assert_string_equal(rw_kernel_isa(), want->name);
    print_message("active table: %s\n", rw_kernel_isa());

    /* The scalar reference runs everywhere, and every name is found. */
    assert_true(kernel_isa_at(0)->cpu_runs());
    assert_ptr_equal(kernel_isa_at(0)->csr, kernels_scalar());
    for (int i = 0; i < kernel_isa_count(); i++) {
        assert_ptr_equal(kernel_isa_named(kernel_isa_at(i)->name), kernel_isa_at(i));
        assert_string_equal(kernel_isa_at(i)->csr->name, kernel_isa_at(i)->name);
        assert_string_equal(kernel_isa_at(i)->nm->name, kernel_isa_at(i)->name);
    }
    assert_null(kernel_isa_named("avx1024"));
    assert_null(kernel_isa_named(NULL));

    rw_kernel_info info;
    rw_kernel_get_info(&info);
    assert_string_equal(info.chosen, want->name);
    assert_non_null(strstr(info.runnable, "scalar"));
    assert_non_null(info.cpu);
    assert_non_null(info.features);

    int saved = rw_get_num_threads();
    rw_set_num_threads(3);
    assert_int_equal(rw_get_num_threads(), 3);
    rw_set_num_threads(saved);
    assert_int_equal(rw_get_num_threads(), saved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_matches_dense),
        cmocka_unit_test(test_twins_match_scalar),
        cmocka_unit_test(test_large_inputs_tiled),
        cmocka_unit_test(test_large_batch_shapes),
        cmocka_unit_test(test_avx512_sums_as_avx2),
        cmocka_unit_test(test_epilogue_keeps_nan),
        cmocka_unit_test(test_gelu_keeps_nan),
        cmocka_unit_test(test_load_batch),
        cmocka_unit_test(test_find_at_least),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_gelu_fused_as_pass),
        cmocka_unit_test(test_active_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
