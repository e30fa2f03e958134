/* Initial sparsity: how the target is shared among layers (uniform, ER,
 * ERK with capping) and the random patterns layers start from. */
#include <math.h>
#include <string.h>

#include "sparsity/distribution.h"
#include "testutil.h"

static double stored_fraction(const int *sizes, int n, const double *density)
{
    double kept = 0, all = 0;
    for (int l = 0; l < n; l++) {
        double p = (double)sizes[l] * sizes[l + 1];
        kept += density[l] * p;
        all += p;
    }
    return kept / all;
}

static void test_uniform(void **state)
{
    (void)state;
    int sizes[] = {784, 1000, 1000, 10};
    double d[3];
    assert_int_equal(sparsity_distribute(sizes, 3, 0.9, RW_DIST_UNIFORM, NULL, d), RW_OK);
    for (int l = 0; l < 3; l++) assert_true(fabs(d[l] - 0.1) < 1e-12);
}

static void test_erk_caps_small_layers_and_meets_target(void **state)
{
    (void)state;
    int sizes[] = {784, 1000, 1000, 1000, 10};
    double d[4];
    assert_int_equal(sparsity_distribute(sizes, 4, 0.95, RW_DIST_ERK, NULL, d), RW_OK);
    assert_true(fabs(stored_fraction(sizes, 4, d) - 0.05) < 1e-9);
    assert_true(d[3] == 1.0); /* 1000 -> 10 would exceed 1 and is capped */
    /* Below the cap density follows (in + out) / (in * out). */
    double s0 = d[0] / ((784.0 + 1000) / (784.0 * 1000)), s1 = d[1] / (2000.0 / 1e6);
    assert_true(fabs(s0 - s1) < 1e-9 * s0);
    assert_true(d[0] > d[1] && fabs(d[1] - d[2]) < 1e-15);
}

static void test_keep_dense_layers(void **state)
{
    (void)state;
    int sizes[] = {100, 200, 50};
    int keep[] = {1, 0};
    double d[2];
    assert_int_equal(sparsity_distribute(sizes, 2, 0.3, RW_DIST_UNIFORM, keep, d), RW_OK);
    assert_true(d[0] == 1.0);
    assert_true(fabs(stored_fraction(sizes, 2, d) - 0.7) < 1e-12 && fabs(d[1] - 0.1) < 1e-12);
    /* The dense first layer alone holds 2/3 of the weights: 90% is impossible. */
    assert_int_equal(sparsity_distribute(sizes, 2, 0.9, RW_DIST_ER, keep, d),
                     RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "cannot be met"));
    assert_int_equal(sparsity_distribute(sizes, 2, 1.0, RW_DIST_ER, NULL, d),
                     RW_ERR_INVALID_ARGUMENT);
}

static void check_pattern(int rows, int cols, double density, int expect_nnz)
{
    rng_state r;
    rng_seed(&r, 42);
    csr_matrix m;
    assert_int_equal(sparsity_random_pattern(&m, rows, cols, density, &r), RW_OK);
    assert_int_equal(m.nnz, expect_nnz);
    assert_int_equal(csr_validate(&m, "pattern"), RW_OK); /* sorted, unique, in range */
    int64_t col_total = 0;
    for (int c = 0; c < cols; c++) col_total += m.t_indptr[c + 1] - m.t_indptr[c];
    assert_int_equal(col_total, m.nnz);
    for (int c = 0; c < cols; c++)
        for (int k = m.t_indptr[c]; k < m.t_indptr[c + 1]; k++) {
            assert_int_equal(m.indices[m.t_perm[k]], c);
            assert_true(m.t_perm[k] >= m.indptr[m.t_rows[k]] &&
                        m.t_perm[k] < m.indptr[m.t_rows[k] + 1]);
        }
    csr_free(&m);
}

static void test_random_patterns(void **state)
{
    (void)state;
    check_pattern(50, 40, 0.1, 200);   /* sparse path */
    check_pattern(50, 40, 0.6, 1200);  /* selection-sampling path */
    check_pattern(7, 3, 1.0, 21);
    check_pattern(1, 1, 0.001, 1);     /* at least one weight */
    check_pattern(3, 5, 0.0, 0);
    /* A 200000 x 200000 layer at 99.999% sparsity: O(nnz) memory. */
    check_pattern(200000, 200000, 1e-5, 400000);
}

static void test_same_seed_same_model(void **state)
{
    (void)state;
    int sizes[] = {20, 30, 5};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 2;
    c.sparsity = 0.7;
    rw_model *a, *b;
    assert_int_equal(rw_model_create(&c, &a), RW_OK);
    assert_int_equal(rw_model_create(&c, &b), RW_OK);
    float x[20], pa[5], pb[5];
    for (int i = 0; i < 20; i++) x[i] = (float)i / 20;
    assert_int_equal(rw_predict(a, x, 1, pa), RW_OK);
    assert_int_equal(rw_predict(b, x, 1, pb), RW_OK);
    assert_memory_equal(pa, pb, sizeof pa);
    rw_model_free(a);
    rw_model_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_erk_caps_small_layers_and_meets_target),
        cmocka_unit_test(test_keep_dense_layers),
        cmocka_unit_test(test_random_patterns),
        cmocka_unit_test(test_same_seed_same_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
