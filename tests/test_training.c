/* End-to-end training through the public API on the shipped Fashion-MNIST
 * subset (3000 train, 1000 test): a fixed accuracy is reached, runs are
 * reproducible, and the thread count does not change sparse results. */
#include <math.h>
#include <string.h>

#include "data/dataset.h"
#include "nn/model.h"
#include "nn/trainer.h"
#include "testmodel.h"
#include "testutil.h"

static rw_dataset *train_set, *test_set;

static int setup(void **state)
{
    (void)state;
    if (rw_dataset_load("data/fashion-small", 0, &train_set) != RW_OK) return -1;
    if (rw_dataset_load("data/fashion-small", 1, &test_set) != RW_OK) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rw_dataset_free(train_set);
    rw_dataset_free(test_set);
    return 0;
}

static rw_model *train_nm(rw_distribution dist, int epochs, int threads, int nm, double *accuracy,
                          double *first_loss, double *last_loss)
{
    int sizes[] = {784, 256, 256, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    mc.sparsity = 0.9;
    mc.distribution = dist;
    mc.seed = 1;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    if (nm) assert_int_equal(rw_model_to_nm(m, 1, 2, 4), RW_OK);
    float mean, std;
    rw_dataset_stats(train_set, &mean, &std);
    rw_model_set_normalization(m, mean, std);
    rw_train_config tc = rw_train_config_default();
    tc.epochs = epochs;
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    rw_set_num_threads(threads);
    for (int e = 0; e < epochs; e++) {
        rw_epoch_stats s;
        assert_int_equal(rw_trainer_epoch(t, train_set, NULL, NULL, &s), RW_OK);
        if (e == 0) *first_loss = s.loss;
        *last_loss = s.loss;
    }
    rw_trainer_free(t);
    rw_eval_result r;
    assert_int_equal(rw_evaluate(m, test_set, &r), RW_OK);
    *accuracy = r.accuracy;
    return m;
}

static rw_model *train(rw_distribution dist, int epochs, int threads, double *accuracy,
                       double *first_loss, double *last_loss)
{
    return train_nm(dist, epochs, threads, 0, accuracy, first_loss, last_loss);
}

static void test_reaches_accuracy(void **state)
{
    (void)state;
    double acc, l0, l1;
    rw_model *m = train(RW_DIST_ERK, 5, 2, &acc, &l0, &l1);
    print_message("90%%-sparse 784-256-256-10, 5 epochs on 3000 samples: test accuracy %.4f, "
                  "loss %.4f -> %.4f\n", acc, l0, l1);
    assert_true(acc >= 0.74);
    assert_true(l1 < 0.6 * l0);
    rw_model_free(m);
}

static void test_thread_count_does_not_change_results(void **state)
{
    (void)state;
    /* ERK fills the last layer completely; it must still be CSR (OpenBLAS
     * results change with the thread count, rewire's kernels do not). */
    double a1, a2, l0, l1, m0, m1;
    rw_model *one = train(RW_DIST_ERK, 2, 1, &a1, &l0, &l1);
    assert_int_equal(t_csr(one, 2)->nnz, 256 * 10);
    /* 2 threads, and 5 on this 2-core machine: the OS keeps descheduling
     * some, so phases are finished by whichever threads are running. */
    for (int threads = 2; threads <= 5; threads += 3) {
        rw_model *two = train(RW_DIST_ERK, 2, threads, &a2, &m0, &m1);
        for (int l = 0; l < one->n_layers; l++) {
            assert_true(t_sparse(one, l));
            assert_memory_equal(t_csr(one, l)->values, t_csr(two, l)->values,
                                sizeof(float) * (size_t)t_csr(one, l)->nnz);
            assert_memory_equal(t_b(one, l), t_b(two, l),
                                sizeof(float) * (size_t)one->layers[l]->out);
        }
        assert_true(a1 == a2 && l1 == m1);
        rw_model_free(two);
    }
    rw_model_free(one);
}

/* The same with a 2:4 N:M middle layer, whose kernels run in the same
 * parallel phases. */
static void test_thread_count_nm(void **state)
{
    (void)state;
    double a1, a2, l0, l1, m0, m1;
    rw_model *one = train_nm(RW_DIST_ERK, 1, 1, 1, &a1, &l0, &l1);
    rw_model *two = train_nm(RW_DIST_ERK, 1, 2, 1, &a2, &m0, &m1);
    assert_true(t_nm(one, 1));
    assert_memory_equal(t_nmw(one, 1)->values, t_nmw(two, 1)->values,
                        sizeof(float) * (size_t)t_count(one, 1));
    for (int l = 0; l < one->n_layers; l++)
        assert_memory_equal(t_b(one, l), t_b(two, l),
                            sizeof(float) * (size_t)one->layers[l]->out);
    assert_true(a1 == a2 && l1 == m1);
    rw_model_free(one);
    rw_model_free(two);
}

static void test_bad_inputs_are_reported(void **state)
{
    (void)state;
    int sizes[] = {10, 4, 3};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 2;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    rw_train_config tc = rw_train_config_default();
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    assert_int_equal(rw_trainer_epoch(t, train_set, NULL, NULL, NULL), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "784 features but the model takes 10"));
    rw_eval_result r;
    assert_int_equal(rw_evaluate(m, test_set, &r), RW_ERR_INVALID_ARGUMENT);
    rw_trainer_free(t);

    tc.batch = 0;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "batch size 0"));
    tc = rw_train_config_default();
    tc.lr = -1;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "learning rate"));
    rw_model_free(m);

    mc.sparsity = 1.0;
    assert_int_equal(rw_model_create(&mc, &m), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "sparsity 1"));
}

static void test_divergence_is_reported(void **state)
{
    (void)state;
    int sizes[] = {784, 64, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 2;
    mc.sparsity = 0.5;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    rw_train_config tc = rw_train_config_default();
    tc.lr = 1e30f;
    tc.schedule = RW_SCHED_CONSTANT;
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    rw_status st = rw_trainer_epoch(t, train_set, NULL, NULL, NULL);
    assert_int_equal(st, RW_ERR_DIVERGED);
    assert_non_null(strstr(rw_last_error(), "diverged at step"));
    rw_trainer_free(t);
    rw_model_free(m);
}

/* One epoch of a 90%-sparse 784-128-10 on `data`, 2 threads, seed 3. */
static rw_model *one_epoch_on(const rw_dataset *data, uint64_t *fingerprint)
{
    int sizes[] = {784, 128, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 2;
    mc.sparsity = 0.9;
    mc.seed = 3;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    float mean, std;
    rw_dataset_stats(data, &mean, &std);
    rw_model_set_normalization(m, mean, std);
    rw_train_config tc = rw_train_config_default();
    tc.epochs = 1;
    tc.batch = 100;
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    rw_set_num_threads(2);
    assert_int_equal(rw_trainer_epoch(t, data, NULL, NULL, NULL), RW_OK);
    *fingerprint = t->data_fingerprint;
    rw_trainer_free(t);
    return m;
}

/* rw_dataset_load_part shuffles and splits through an index of the rows
 * it loaded (data/dataset.h, row_of): training, evaluation and the
 * fingerprint a checkpoint records see exactly the samples of the copy
 * rw_dataset_split gathers, so the weights come out the same. */
static void test_split_at_load_trains_alike(void **state)
{
    (void)state;
    rw_dataset *indexed = NULL, *val_a = NULL, *all = NULL, *copied = NULL, *val_b = NULL;
    assert_int_equal(rw_dataset_load_part("data/fashion-small", 0, 0, 0.1, 7, &indexed, &val_a),
                     RW_OK);
    assert_non_null(indexed->row_of);
    assert_int_equal(rw_dataset_load("data/fashion-small", 0, &all), RW_OK);
    assert_int_equal(rw_dataset_split(all, 300, 7, &copied, &val_b), RW_OK);
    assert_null(copied->row_of);
    assert_int_equal(rw_dataset_count(indexed), rw_dataset_count(copied));
    uint64_t fa, fb;
    rw_model *a = one_epoch_on(indexed, &fa), *b = one_epoch_on(copied, &fb);
    assert_true(fa == fb);
    for (int l = 0; l < a->n_layers; l++) {
        assert_int_equal(t_csr(a, l)->nnz, t_csr(b, l)->nnz);
        assert_memory_equal(t_csr(a, l)->values, t_csr(b, l)->values,
                            sizeof(float) * (size_t)t_csr(a, l)->nnz);
        assert_memory_equal(t_b(a, l), t_b(b, l), sizeof(float) * (size_t)a->layers[l]->out);
    }
    /* Evaluation reads the indexed rows in sample order too. */
    rw_eval_result ra, rb;
    assert_int_equal(rw_evaluate(a, indexed, &ra), RW_OK);
    assert_int_equal(rw_evaluate(a, copied, &rb), RW_OK);
    assert_true(ra.accuracy == rb.accuracy && ra.loss == rb.loss);
    assert_int_equal(rw_evaluate(a, val_a, &ra), RW_OK);
    assert_int_equal(rw_evaluate(a, val_b, &rb), RW_OK);
    assert_true(ra.accuracy == rb.accuracy && ra.loss == rb.loss);
    rw_model_free(a);
    rw_model_free(b);
    rw_dataset_free(indexed);
    rw_dataset_free(val_a);
    rw_dataset_free(all);
    rw_dataset_free(copied);
    rw_dataset_free(val_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reaches_accuracy),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_thread_count_nm),
        cmocka_unit_test(test_bad_inputs_are_reported),
        cmocka_unit_test(test_divergence_is_reported),
        cmocka_unit_test(test_split_at_load_trains_alike),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
