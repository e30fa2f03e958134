/* A model's inputs: per-feature normalisation (constant features feed 0,
 * a batch and a single sample give the same bytes, files keep it), the
 * inputs a model keeps (rw_model_keep_inputs: the removed ones no longer
 * matter, files keep the choice), the first layer's use of each input
 * (rw_model_input_importance), and every malformed "input" field of a
 * model file refused with its message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "io/safetensors.h"
#include "nn/model.h"
#include "testmodel.h"
#include "testutil.h"

enum { F = 8, H = 6, C = 3, N = 13 };

/* 8 -> 6 (sparse 50%) -> 3 (sparse, filled). */
static rw_model *make_model(int dense_first)
{
    int sizes[] = {F, H, C};
    double sp[] = {dense_first ? 0.0 : 0.5, 0.1};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 2;
    c.layer_sparsity = sp;
    c.activation = RW_ACT_TANH;
    c.seed = 3;
    rw_model *m;
    assert_int_equal(rw_model_create(&c, &m), RW_OK);
    return m;
}

/* Per-feature statistics with feature 2 constant. */
static void stats(float *mean, float *std)
{
    for (int f = 0; f < F; f++) {
        mean[f] = 0.1f * (float)f - 0.2f;
        std[f] = 0.5f + 0.25f * (float)f;
    }
    std[2] = 0.0f;
}

static void samples(float *x, int n, uint64_t seed)
{
    rng_state r;
    rng_seed(&r, seed);
    tu_fill_uniform(x, (size_t)n * F, -1, 2, &r);
}

/* One sample at a time (the single-sample path) against a batch. */
static void predict_one_by_one(const rw_model *m, const float *x, int n, float *probs)
{
    rw_predictor *p;
    assert_int_equal(rw_predictor_create(m, 1, &p), RW_OK);
    for (int i = 0; i < n; i++) assert_int_equal(rw_predictor_run(p, x + i * F, 1, probs + i * C), RW_OK);
    rw_predictor_free(p);
}

/* Samples stored as bytes (IDX pixels) load into tensor 0 as the same
 * floats, bit for bit, as those samples stored as the floats byte / 255:
 * under the global normalisation, per feature, with inputs removed, and
 * with the samples picked by an index. */
static void test_byte_rows(void **state)
{
    (void)state;
    enum { S = 40 };
    uint8_t bytes[S * F];
    float x[S * F];
    rng_state r;
    rng_seed(&r, 9);
    for (int i = 0; i < S * F; i++) {
        bytes[i] = (uint8_t)rng_below(&r, 256);
        x[i] = (float)bytes[i] / 255.0f;
        assert_true(x[i] == dataset_byte_value[bytes[i]]);
    }
    /* 37 samples: two whole groups of the byte loader and a part. */
    enum { NB = 37 };
    int index[NB];
    for (int b = 0; b < NB; b++) index[b] = (int)rng_below(&r, S);
    float mean[F], std[F];
    stats(mean, std);
    int32_t keep[] = {1, 2, 5, 7};
    for (int setting = 0; setting < 4; setting++) {
        rw_model *m = make_model(0);
        if (setting == 0) rw_model_set_normalization(m, 0.3f, 0.7f);
        if (setting >= 1) assert_int_equal(rw_model_set_feature_normalization(m, mean, std), RW_OK);
        if (setting >= 2) assert_int_equal(rw_model_keep_inputs(m, keep, 4), RW_OK);
        if (setting == 3) rw_model_set_normalization(m, 0.1f, 1.5f);
        for (int picked = 0; picked < 4; picked++) {
            int n = picked < 2 ? N : NB;
            workspace a, b;
            assert_int_equal(workspace_init(&a, m, n, 0), RW_OK);
            assert_int_equal(workspace_init(&b, m, n, 0), RW_OK);
            const int *idx = picked % 2 ? index : NULL;
            network_load_batch(m, &a, (sample_rows){.x = x, .features = F}, idx, n);
            network_load_batch(m, &b, (sample_rows){.bytes = bytes, .features = F}, idx, n);
            size_t rows = (size_t)model_input_rows(m);
            assert_memory_equal(a.t[0].data, b.t[0].data, sizeof(float) * rows * (size_t)a.bp);
            workspace_free(&a);
            workspace_free(&b);
        }
        rw_model_free(m);
    }
}

static void test_feature_normalization(void **state)
{
    (void)state;
    rw_model *m = make_model(0);
    float mean[F], std[F], got_mean[F], got_std[F];
    stats(mean, std);
    assert_int_equal(rw_model_normalization(m, NULL, NULL), RW_NORMALIZE_GLOBAL);
    assert_int_equal(rw_model_set_feature_normalization(m, mean, std), RW_OK);
    assert_int_equal(rw_model_normalization(m, got_mean, got_std), RW_NORMALIZE_FEATURE);
    assert_memory_equal(mean, got_mean, sizeof mean);
    assert_memory_equal(std, got_std, sizeof std);

    /* Tensor 0 of a batch is (x - mean) / std per feature, the constant
     * feature 0 whatever its value. */
    float x[N * F], probs[N * C], one[N * C];
    samples(x, N, 4);
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, N, 0), RW_OK);
    network_load_batch(m, &ws, (sample_rows){.x = x, .features = F}, NULL, N);
    for (int f = 0; f < F; f++)
        for (int b = 0; b < ws.bp; b++) {
            float want = b >= N || f == 2 ? 0.0f : (x[b * F + f] - mean[f]) * (1.0f / std[f]);
            assert_true(fabsf(ws.t[0].data[f * ws.bp + b] - want) <= 1e-6f * (1 + fabsf(want)));
        }
    workspace_free(&ws);

    /* One sample's tensor 0 is the batch's column, byte for byte. */
    workspace one_ws;
    assert_int_equal(workspace_init(&ws, m, N, 0), RW_OK);
    assert_int_equal(workspace_init_vector(&one_ws, m), RW_OK);
    network_load_batch(m, &ws, (sample_rows){.x = x, .features = F}, NULL, N);
    for (int b = 0; b < N; b++) {
        input_stage_load_one(&m->input, x + b * F, F, one_ws.t[0].data);
        for (int f = 0; f < F; f++) assert_true(one_ws.t[0].data[f] == ws.t[0].data[f * ws.bp + b]);
    }
    workspace_free(&ws);
    workspace_free(&one_ws);

    /* The constant feature changes nothing; one sample at a time agrees
     * with the batch (the single-sample kernels sum in another order). */
    assert_int_equal(rw_predict(m, x, N, probs), RW_OK);
    predict_one_by_one(m, x, N, one);
    assert_true(tu_max_rel_diff(one, probs, N * C) < 1e-5);
    for (int i = 0; i < N; i++) x[i * F + 2] += 100.0f;
    assert_int_equal(rw_predict(m, x, N, one), RW_OK);
    assert_memory_equal(probs, one, sizeof probs);

    /* Saved and loaded: the same statistics and predictions. */
    const char *path = tu_temp_path("feature.safetensors");
    assert_int_equal(rw_model_save(m, path), RW_OK);
    rw_model *back;
    assert_int_equal(rw_model_load(path, &back), RW_OK);
    unlink(path);
    assert_int_equal(rw_model_normalization(back, got_mean, got_std), RW_NORMALIZE_FEATURE);
    assert_memory_equal(mean, got_mean, sizeof mean);
    assert_memory_equal(std, got_std, sizeof std);
    assert_int_equal(rw_predict(back, x, N, one), RW_OK);
    assert_memory_equal(probs, one, sizeof probs);

    /* Back to the global form. */
    rw_model_set_normalization(back, 0.5f, 2.0f);
    assert_int_equal(rw_model_normalization(back, got_mean, got_std), RW_NORMALIZE_GLOBAL);
    assert_true(got_mean[3] == 0.5f && got_std[7] == 2.0f);
    rw_model_free(back);

    /* Bad statistics change nothing. */
    std[4] = -1.0f;
    assert_int_equal(rw_model_set_feature_normalization(m, mean, std), RW_ERR_INVALID_ARGUMENT);
    std[4] = 1.0f;
    mean[5] = NAN;
    assert_int_equal(rw_model_set_feature_normalization(m, mean, std), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_model_normalization(m, got_mean, NULL), RW_NORMALIZE_FEATURE);
    assert_true(got_mean[5] == 0.1f * 5 - 0.2f);
    rw_model_free(m);
}

/* The model keeps inputs 1, 4, 5, 7: predictions on samples whose other
 * features feed 0 (x = their mean) are the original model's, whatever the
 * removed features hold afterwards; the choice survives a file. */
static void check_keep_inputs(int feature, int dense_first)
{
    rw_model *m = make_model(dense_first);
    float mean[F], std[F];
    stats(mean, std);
    std[2] = 1.0f;
    if (feature)
        assert_int_equal(rw_model_set_feature_normalization(m, mean, std), RW_OK);
    else
        rw_model_set_normalization(m, 0.25f, 0.5f);
    const int32_t keep[] = {1, 4, 5, 7};
    float x[N * F], before[N * C], after[N * C], one[N * C];
    samples(x, N, 7);
    for (int i = 0; i < N; i++)
        for (int f = 0; f < F; f++)
            if (f != 1 && f != 4 && f != 5 && f != 7) x[i * F + f] = feature ? mean[f] : 0.25f;
    assert_int_equal(rw_predict(m, x, N, before), RW_OK);
    int32_t conn_before[F], conn[F];
    float mass_before[F], mass[F];
    assert_int_equal(rw_model_input_importance(m, conn_before, mass_before), RW_OK);

    assert_int_equal(rw_model_keep_inputs(m, keep, 4), RW_OK);
    assert_int_equal(rw_model_inputs(m), F);
    int32_t kept[F];
    assert_int_equal(rw_model_kept_inputs(m, kept), 4);
    assert_memory_equal(kept, keep, sizeof keep);
    rw_layer_info li;
    assert_int_equal(rw_model_layer_info(m, 0, &li), RW_OK);
    assert_int_equal(li.in, 4);
    assert_int_equal(rw_model_input_importance(m, conn, mass), RW_OK);
    for (int f = 0; f < F; f++) {
        int is_kept = f == 1 || f == 4 || f == 5 || f == 7;
        assert_int_equal(conn[f], is_kept ? conn_before[f] : 0);
        assert_true(mass[f] == (is_kept ? mass_before[f] : 0.0f));
    }
    assert_int_equal(rw_predict(m, x, N, after), RW_OK);
    assert_true(tu_max_rel_diff(after, before, N * C) < 1e-6);
    for (int i = 0; i < N; i++) x[i * F + 3] = 50.0f, x[i * F + 0] = -7.0f;
    assert_int_equal(rw_predict(m, x, N, one), RW_OK);
    assert_memory_equal(after, one, sizeof after);
    predict_one_by_one(m, x, N, one);
    assert_true(tu_max_rel_diff(one, after, N * C) < 1e-5);
    rw_dataset *d;
    uint8_t y[N] = {0};
    assert_int_equal(rw_dataset_from_memory(x, y, N, F, C, &d), RW_OK);
    rw_eval_result r;
    assert_int_equal(rw_evaluate(m, d, &r), RW_OK);
    assert_int_equal(r.count, N);
    rw_dataset_free(d);

    const char *path = tu_temp_path("kept.safetensors");
    assert_int_equal(rw_model_save(m, path), RW_OK);
    rw_model *back;
    assert_int_equal(rw_model_load(path, &back), RW_OK);
    unlink(path);
    assert_int_equal(rw_model_inputs(back), F);
    assert_int_equal(rw_model_kept_inputs(back, kept), 4);
    assert_memory_equal(kept, keep, sizeof keep);
    assert_int_equal(rw_predict(back, x, N, one), RW_OK);
    assert_memory_equal(after, one, sizeof after);
    float got_mean[F];
    assert_int_equal(rw_model_normalization(back, got_mean, NULL),
                     feature ? RW_NORMALIZE_FEATURE : RW_NORMALIZE_GLOBAL);
    assert_true(got_mean[3] == 0.0f && got_mean[4] == (feature ? mean[4] : 0.25f));

    /* Keeping fewer again, from the kept ones; a removed one is refused. */
    const int32_t fewer[] = {4, 7}, removed[] = {3, 4};
    assert_int_equal(rw_model_keep_inputs(back, removed, 2), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_model_keep_inputs(back, fewer, 2), RW_OK);
    assert_int_equal(rw_model_kept_inputs(back, kept), 2);
    assert_true(kept[0] == 4 && kept[1] == 7);
    const int32_t unsorted[] = {7, 4};
    assert_int_equal(rw_model_keep_inputs(back, unsorted, 2), RW_ERR_INVALID_ARGUMENT);
    rw_model_free(back);
    rw_model_free(m);
}

static void test_keep_inputs(void **state)
{
    (void)state;
    check_keep_inputs(0, 0);
    check_keep_inputs(1, 0);
    check_keep_inputs(1, 1);
}

static void test_importance(void **state)
{
    (void)state;
    rw_model *m = make_model(0);
    int32_t conn[F];
    float mass[F];
    assert_int_equal(rw_model_input_importance(m, conn, mass), RW_OK);
    const csr_matrix *w = t_csr(m, 0);
    for (int f = 0; f < F; f++) {
        int count = 0;
        double sum = 0;
        for (int k = 0; k < w->nnz; k++)
            if (w->indices[k] == f) count++, sum += fabsf(w->values[k]);
        assert_int_equal(conn[f], count);
        assert_true(fabs(mass[f] - sum) <= 1e-6 * (1 + sum));
    }
    rw_model_free(m);
}

/* ---- Malformed "input" fields -------------------------------------------- */

static char good_path[512];

typedef struct {
    const char *meta;        /* replaces metadata "input" (NULL: keep it) */
    const char *skip;        /* a tensor left out */
    const char *patch;       /* a tensor replaced by data */
    st_dtype dtype;
    int64_t n;
    const void *data;
} variant;

static void expect_rejected(const variant *v, const char *needle)
{
    st_file f;
    assert_int_equal(st_read(good_path, &f), RW_OK);
    st_writer *w = st_writer_new();
    for (int i = 0; i < f.meta_count; i++) {
        int is_input = strcmp(f.meta_keys[i], "input") == 0;
        assert_int_equal(st_writer_meta(w, f.meta_keys[i],
                                        is_input && v->meta ? v->meta : f.meta_values[i]),
                         RW_OK);
    }
    for (int i = 0; i < f.count; i++) {
        const st_tensor *t = &f.tensors[i];
        if (v->skip && !strcmp(t->name, v->skip)) continue;
        if (v->patch && !strcmp(t->name, v->patch))
            assert_int_equal(st_writer_add(w, t->name, v->dtype, 1, &v->n, v->data), RW_OK);
        else
            assert_int_equal(st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data), RW_OK);
    }
    const char *bad = tu_temp_path("bad_input.safetensors");
    assert_int_equal(st_writer_write(w, bad), RW_OK);
    st_writer_free(w);
    st_file_free(&f);
    rw_model *m = NULL;
    rw_status st = rw_model_load(bad, &m);
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", rw_last_error());
    unlink(bad);
    if (st != RW_ERR_FORMAT || !strstr(rw_last_error(), needle))
        fail_msg("expected a format error mentioning \"%s\", got status %d: %s", needle, st,
                 rw_last_error());
    assert_null(m);
    assert_non_null(strstr(rw_last_error(), "bad_input.safetensors"));
}

static void test_file_errors(void **state)
{
    (void)state;
    rw_model *m = make_model(0);
    float mean[F], std[F];
    stats(mean, std);
    assert_int_equal(rw_model_set_feature_normalization(m, mean, std), RW_OK);
    const int32_t keep[] = {1, 4, 5, 7};
    assert_int_equal(rw_model_keep_inputs(m, keep, 4), RW_OK);
    snprintf(good_path, sizeof good_path, "%s", tu_temp_path("good_input.safetensors"));
    assert_int_equal(rw_model_save(m, good_path), RW_OK);
    rw_model_free(m);

    expect_rejected(&(variant){.meta = "[1]"}, "metadata input is not a JSON object of exactly");
    expect_rejected(&(variant){.meta = "{\"version\":1,\"normalize\":\"feature\",\"features\":8}"},
                    "exactly version, normalize, features, kept");
    expect_rejected(&(variant){.meta = "{\"version\":2,\"normalize\":\"feature\",\"features\":8,"
                                       "\"kept\":4}"},
                    "metadata input has version 2, expected 1");
    expect_rejected(&(variant){.meta = "{\"version\":1,\"normalize\":\"minmax\",\"features\":8,"
                                       "\"kept\":4}"},
                    "normalize is \"minmax\"");
    expect_rejected(&(variant){.meta = "{\"version\":1,\"normalize\":\"feature\",\"features\":3,"
                                       "\"kept\":4}"},
                    "has 3 features and keeps 4");
    expect_rejected(&(variant){.meta = "{\"version\":1,\"normalize\":\"feature\",\"features\":8,"
                                       "\"kept\":5}"},
                    "tensor input.index should be I32 of shape [5]");
    expect_rejected(&(variant){.meta = "{\"version\":1,\"normalize\":\"feature\",\"features\":4,"
                                       "\"kept\":4}"},
                    "unexpected tensor input.index (the model keeps every input)");
    expect_rejected(&(variant){.meta = "{\"version\":1,\"normalize\":\"global\",\"features\":8,"
                                       "\"kept\":4}"},
                    "unexpected tensor input.mean (the normalisation is global)");
    expect_rejected(&(variant){.skip = "input.std"}, "tensor input.std is missing");
    expect_rejected(&(variant){.skip = "input.index"}, "tensor input.index is missing");
    int32_t unsorted[4] = {1, 5, 4, 7}, outside[4] = {1, 4, 5, 8};
    expect_rejected(&(variant){.patch = "input.index", .dtype = ST_I32, .n = 4, .data = unsorted},
                    "tensor input.index: entry 2 is 4, expected increasing inputs in [0, 8)");
    expect_rejected(&(variant){.patch = "input.index", .dtype = ST_I32, .n = 4, .data = outside},
                    "entry 3 is 8");
    float bad[4] = {1, 1, -1, 1}, nan4[4] = {0, NAN, 0, 0};
    expect_rejected(&(variant){.patch = "input.std", .dtype = ST_F32, .n = 4, .data = bad},
                    "tensor input.std has -1 at 2, expected a finite value >= 0");
    expect_rejected(&(variant){.patch = "input.mean", .dtype = ST_F32, .n = 4, .data = nan4},
                    "tensor input.mean has a non-finite value at 1");
    expect_rejected(&(variant){.patch = "input.mean", .dtype = ST_F32, .n = 3, .data = nan4},
                    "tensor input.mean should be F32 of shape [4]");
    unlink(good_path);

    /* The first layer must read what the stage gives. */
    m = make_model(0);
    assert_int_equal(rw_model_keep_inputs(m, keep, 4), RW_OK);
    assert_int_equal(rw_model_save(m, good_path), RW_OK);
    rw_model_free(m);
    int32_t five[5] = {1, 2, 4, 5, 7};
    expect_rejected(&(variant){.meta = "{\"version\":1,\"normalize\":\"global\",\"features\":8,"
                                       "\"kept\":5}",
                               .patch = "input.index", .dtype = ST_I32, .n = 5, .data = five},
                    "metadata input keeps 5 of 8 features, but layer fc1 takes 4");
    unlink(good_path);
}

/* A file without "input" holding its tensors. */
static void test_stray_tensor(void **state)
{
    (void)state;
    rw_model *m = make_model(0);
    snprintf(good_path, sizeof good_path, "%s", tu_temp_path("plain.safetensors"));
    assert_int_equal(rw_model_save(m, good_path), RW_OK);
    rw_model_free(m);
    st_file f;
    assert_int_equal(st_read(good_path, &f), RW_OK);
    st_writer *w = st_writer_new();
    for (int i = 0; i < f.meta_count; i++)
        assert_int_equal(st_writer_meta(w, f.meta_keys[i], f.meta_values[i]), RW_OK);
    for (int i = 0; i < f.count; i++) {
        const st_tensor *t = &f.tensors[i];
        assert_int_equal(st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data), RW_OK);
    }
    float v[F] = {0};
    int64_t n = F;
    assert_int_equal(st_writer_add(w, "input.mean", ST_F32, 1, &n, v), RW_OK);
    assert_int_equal(st_writer_write(w, good_path), RW_OK);
    st_writer_free(w);
    st_file_free(&f);
    rw_model *back = NULL;
    assert_int_equal(rw_model_load(good_path, &back), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "unexpected tensor input.mean (no metadata input)"));
    unlink(good_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feature_normalization),
        cmocka_unit_test(test_byte_rows),
        cmocka_unit_test(test_keep_inputs),
        cmocka_unit_test(test_importance),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_stray_tensor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
