/* Prediction: a single sample (the SpMV path) agrees with the same sample
 * in a batch, for every activation and for sparse and dense layers, and is
 * bit-identical for any thread count. */
#include "testutil.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/model.h"

static void check_nm(rw_activation act, const double *layer_sparsity, int threads_max, int nm_layer)
{
    /* Wide enough that the single-sample path runs threaded. */
    int sizes[] = {300, 700, 400, 10};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 3;
    c.layer_sparsity = layer_sparsity;
    c.activation = act;
    c.seed = 5;
    rw_model *m;
    assert_int_equal(rw_model_create(&c, &m), RW_OK);
    if (nm_layer >= 0) assert_int_equal(rw_model_to_nm(m, nm_layer, 2, 4), RW_OK);
    enum { N = 37 };
    float *x = malloc(sizeof(float) * N * 300), *batch = malloc(sizeof(float) * N * 10);
    float *one = malloc(sizeof(float) * N * 10), *again = malloc(sizeof(float) * N * 10);
    assert_non_null(x);
    assert_non_null(batch);
    assert_non_null(one);
    assert_non_null(again);
    rng_state r;
    rng_seed(&r, 9);
    tu_fill_uniform(x, (size_t)N * 300, 0, 1, &r);
    assert_int_equal(rw_predict(m, x, N, batch), RW_OK);

    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= threads_max; threads++) {
        omp_set_num_threads(threads);
        rw_predictor *p;
        assert_int_equal(rw_predictor_create(m, 1, &p), RW_OK);
        assert_int_equal(rw_predictor_run(p, x, N, threads == 1 ? one : again), RW_OK);
        rw_predictor_free(p);
        if (threads > 1) assert_memory_equal(one, again, sizeof(float) * N * 10);
    }
    omp_set_num_threads(saved);
    assert_true(tu_max_rel_diff(one, batch, (size_t)N * 10) < 1e-5);
    /* Batches of 8 through a predictor, and n = 0. */
    rw_predictor *p;
    assert_int_equal(rw_predictor_create(m, 8, &p), RW_OK);
    assert_int_equal(rw_predictor_run(p, x, N, again), RW_OK);
    assert_true(tu_max_rel_diff(again, batch, (size_t)N * 10) < 1e-5);
    assert_int_equal(rw_predictor_run(p, x, 0, again), RW_OK);
    rw_predictor_free(p);
    free(x);
    free(batch);
    free(one);
    free(again);
    rw_model_free(m);
}

static void check(rw_activation act, const double *layer_sparsity, int threads_max)
{
    check_nm(act, layer_sparsity, threads_max, -1);
}

static const double sparse_all[] = {0.9, 0.95, 0.5};
static const double mixed[] = {0.0, 0.95, 0.0}; /* dense, sparse, dense */

static void test_single_sample_relu(void **state) { (void)state; check(RW_ACT_RELU, sparse_all, 3); }
static void test_single_sample_leaky(void **state) { (void)state; check(RW_ACT_LEAKY_RELU, sparse_all, 2); }
static void test_single_sample_tanh(void **state) { (void)state; check(RW_ACT_TANH, sparse_all, 2); }
static void test_single_sample_gelu(void **state) { (void)state; check(RW_ACT_GELU, mixed, 1); }
static void test_single_sample_dense(void **state) { (void)state; check(RW_ACT_RELU, mixed, 1); }

/* An N:M layer (2:4) between sparse ones; N:M kernels split rows evenly,
 * so any thread count gives the same bytes. */
static void test_single_sample_nm(void **state)
{
    (void)state;
    check_nm(RW_ACT_RELU, sparse_all, 3, 1);
    check_nm(RW_ACT_GELU, sparse_all, 2, 0);
}

static void test_bad_batch(void **state)
{
    (void)state;
    int sizes[] = {4, 3};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 1;
    c.sparsity = 0.5;
    rw_model *m;
    assert_int_equal(rw_model_create(&c, &m), RW_OK);
    rw_predictor *p;
    assert_int_equal(rw_predictor_create(m, 0, &p), RW_ERR_INVALID_ARGUMENT);
    assert_null(p);
    rw_predictor_free(NULL);
    rw_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_sample_relu),  cmocka_unit_test(test_single_sample_leaky),
        cmocka_unit_test(test_single_sample_tanh),  cmocka_unit_test(test_single_sample_gelu),
        cmocka_unit_test(test_single_sample_dense), cmocka_unit_test(test_single_sample_nm),
        cmocka_unit_test(test_bad_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
