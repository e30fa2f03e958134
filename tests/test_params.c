/* What a binding reads without copying (rewire.h, "Parameters"): every
 * parameter's own arrays, for dense, CSR, N:M and LayerNorm layers and a
 * GPT; values written through a view change the model's predictions; the
 * logits of a predictor against its probabilities (batch and single
 * sample); a dataset's arrays. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testmodel.h"
#include "testutil.h"

static rw_model *make_mlp(int layer_norm)
{
    static const int sizes[] = {40, 32, 24, 5};
    static const double layer_sparsity[] = {0.0, 0.7, 0.5};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 3;
    c.layer_sparsity = layer_sparsity;
    c.layer_norm = layer_norm;
    c.seed = 3;
    rw_model *m;
    assert_int_equal(rw_model_create(&c, &m), RW_OK);
    return m;
}

/* Each view is the model's own array, with the shape and pattern the
 * layer reports. */
static void test_views_are_the_models_arrays(void **state)
{
    (void)state;
    rw_model *m = make_mlp(0);
    assert_int_equal(rw_model_to_nm(m, 2, 2, 4), RW_OK);
    assert_int_equal(rw_model_param_count(m), 6);
    static const char *names[] = {"fc1.weight", "fc1.bias", "fc2.weight",
                                  "fc2.bias",   "fc3.weight", "fc3.bias"};
    static const rw_storage kinds[] = {RW_STORAGE_DENSE, RW_STORAGE_DENSE, RW_STORAGE_CSR,
                                       RW_STORAGE_DENSE, RW_STORAGE_NM,    RW_STORAGE_DENSE};
    for (int i = 0; i < 6; i++) {
        rw_param_view v;
        assert_int_equal(rw_model_param(m, i, &v), RW_OK);
        assert_string_equal(v.name, names[i]);
        assert_int_equal(v.storage, kinds[i]);
        assert_int_equal(v.layer_index, i / 2);
        assert_int_equal(v.is_weight, i % 2 == 0);
        rw_layer_info li;
        assert_int_equal(rw_model_layer_info(m, i / 2, &li), RW_OK);
        assert_string_equal(v.layer, li.name);
        assert_int_equal(v.rows, li.out);
        assert_int_equal(v.cols, i % 2 ? 1 : li.in);
        if (i % 2 == 0) assert_int_equal(v.count, li.nonzeros);
        assert_ptr_equal(v.values, i % 2 ? t_b(m, i / 2) : t_w(m, i / 2));
    }
    rw_param_view v;
    assert_int_equal(rw_model_param(m, 2, &v), RW_OK);
    const csr_matrix *w = t_csr(m, 1);
    assert_ptr_equal(v.indptr, w->indptr);
    assert_ptr_equal(v.indices, w->indices);
    assert_int_equal(v.indptr[v.rows], v.count);
    int32_t fan_in[24];
    assert_int_equal(rw_model_layer_fan(m, 1, fan_in, NULL), RW_OK);
    for (int o = 0; o < v.rows; o++) assert_int_equal(v.indptr[o + 1] - v.indptr[o], fan_in[o]);
    assert_null(v.offsets);
    assert_int_equal(rw_model_param(m, 4, &v), RW_OK);
    assert_int_equal(v.nm_n, 2);
    assert_int_equal(v.nm_m, 4);
    assert_ptr_equal(v.offsets, t_nmw(m, 2)->offsets);
    assert_int_equal(v.count, 5 * 24 / 4 * 2);
    assert_null(v.indptr);
    assert_int_equal(rw_model_param(m, 0, &v), RW_OK);
    assert_null(v.indptr);
    assert_null(v.offsets);
    assert_int_equal(v.count, 40 * 32);
    assert_int_equal(rw_model_param(m, 6, &v), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "parameter 6"));
    assert_int_equal(rw_model_param(m, -1, &v), RW_ERR_INVALID_ARGUMENT);
    rw_model_free(m);
}

/* LayerNorm's γ and β, and a GPT's parameters by the names rewire.h gives. */
static void test_layer_norm_and_gpt(void **state)
{
    (void)state;
    rw_model *m = make_mlp(1);
    assert_int_equal(rw_model_param_count(m), 10);
    rw_param_view v;
    assert_int_equal(rw_model_param(m, 2, &v), RW_OK);
    assert_string_equal(v.layer, "ln1");
    assert_int_equal(v.is_weight, 0);
    assert_int_equal(v.rows * v.cols, 32);
    rw_model_free(m);

    rw_gpt_config g = rw_gpt_config_default();
    g.n_layer = 1;
    g.n_head = 2;
    g.n_embd = 16;
    g.context = 8;
    g.sparsity = 0.5;
    assert_int_equal(rw_gpt_create(&g, &m), RW_OK);
    int found = 0;
    for (int i = 0; i < rw_model_param_count(m); i++) {
        assert_int_equal(rw_model_param(m, i, &v), RW_OK);
        if (strcmp(v.name, "blocks.0.attn.qkv.weight") == 0) {
            found = 1;
            assert_int_equal(v.storage, RW_STORAGE_CSR);
            assert_int_equal(v.rows, 48);
            assert_int_equal(v.cols, 16);
        }
    }
    assert_true(found);
    rw_model_free(m);
}

/* Writing through a view is writing the model: zero weights, and the
 * output is the softmax of the last bias alone. */
static void test_writes_reach_predictions(void **state)
{
    (void)state;
    rw_model *m = make_mlp(0);
    float x[40], probs[5], logits[5];
    for (int i = 0; i < 40; i++) x[i] = (float)i / 40;
    rw_param_view v;
    for (int i = 0; i < rw_model_param_count(m); i++) {
        assert_int_equal(rw_model_param(m, i, &v), RW_OK);
        for (int64_t k = 0; k < v.count; k++) v.values[k] = v.is_weight ? 0.0f : 0.5f;
    }
    assert_int_equal(rw_model_param(m, 5, &v), RW_OK);
    v.values[3] = 1.5f;
    rw_predictor *p;
    assert_int_equal(rw_predictor_create(m, 4, &p), RW_OK);
    assert_int_equal(rw_predictor_logits(p, x, 1, logits), RW_OK);
    for (int c = 0; c < 5; c++) assert_float_equal(logits[c], c == 3 ? 1.5f : 0.5f, 0);
    assert_int_equal(rw_predictor_run(p, x, 1, probs), RW_OK);
    assert_true(probs[3] > probs[0]);
    rw_predictor_free(p);
    rw_model_free(m);
}

/* softmax(logits) is the probabilities, for single samples and batches
 * (including one cut into predictor batches and a last sample alone). */
static void test_logits_give_the_probabilities(void **state)
{
    (void)state;
    rw_model *m = make_mlp(0);
    enum { N = 21, C = 5 };
    float x[N * 40], probs[N * C], logits[N * C];
    rng_state r;
    rng_seed(&r, 4);
    tu_fill_uniform(x, N * 40, 0, 1, &r);
    for (int batch = 1; batch <= 8; batch += 7) {
        rw_predictor *p;
        assert_int_equal(rw_predictor_create(m, batch, &p), RW_OK);
        assert_int_equal(rw_predictor_run(p, x, N, probs), RW_OK);
        assert_int_equal(rw_predictor_logits(p, x, N, logits), RW_OK);
        for (int b = 0; b < N; b++) {
            double mx = -INFINITY, sum = 0;
            for (int c = 0; c < C; c++) mx = fmax(mx, logits[b * C + c]);
            for (int c = 0; c < C; c++) sum += exp(logits[b * C + c] - mx);
            for (int c = 0; c < C; c++)
                assert_true(fabs(exp(logits[b * C + c] - mx) / sum - probs[b * C + c]) < 1e-6);
        }
        assert_int_equal(rw_predictor_logits(p, x, -1, logits), RW_ERR_INVALID_ARGUMENT);
        rw_predictor_free(p);
    }
    rw_model_free(m);
}

static void test_dataset_arrays(void **state)
{
    (void)state;
    float x[6] = {0, 0.5f, 1, 0.25f, 0.75f, 0.125f};
    uint8_t y[3] = {1, 0, 2};
    rw_dataset *d;
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 2, 3, &d), RW_OK);
    const float *dx;
    const uint8_t *dy;
    rw_dataset_arrays(d, &dx, &dy);
    assert_memory_equal(dx, x, sizeof x);
    assert_memory_equal(dy, y, sizeof y);
    rw_dataset_arrays(d, NULL, NULL);
    rw_dataset_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views_are_the_models_arrays),
        cmocka_unit_test(test_layer_norm_and_gpt),
        cmocka_unit_test(test_writes_reach_predictions),
        cmocka_unit_test(test_logits_give_the_probabilities),
        cmocka_unit_test(test_dataset_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
