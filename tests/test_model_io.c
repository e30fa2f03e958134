/* Model files: save -> load gives identical predictions, and every kind of
 * malformed model file is rejected with a message naming the problem. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/model_file.h"
#include "io/safetensors.h"
#include "nn/model.h"
#include "testmodel.h"
#include "testutil.h"

/* 6 -> 5 (sparse, 50%) -> 3 (dense), saved once for all tests. */
static char good_path[512];

static rw_model *make_model(void)
{
    int sizes[] = {6, 5, 3};
    double sp[] = {0.5, 0.0};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 2;
    c.layer_sparsity = sp;
    c.activation = RW_ACT_TANH;
    c.seed = 5;
    rw_model *m;
    assert_int_equal(rw_model_create(&c, &m), RW_OK);
    rw_model_set_normalization(m, 0.25f, 0.5f);
    return m;
}

static int setup(void **state)
{
    (void)state;
    snprintf(good_path, sizeof good_path, "%s", tu_temp_path("good.safetensors"));
    rw_model *m = make_model();
    int ok = rw_model_save(m, good_path) == RW_OK;
    rw_model_free(m);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(good_path);
    return 0;
}

static void test_round_trip_predictions(void **state)
{
    (void)state;
    rw_model *m = make_model(), *back;
    assert_int_equal(rw_model_load(good_path, &back), RW_OK);
    enum { N = 11 };
    float x[N * 6], p1[N * 3], p2[N * 3];
    rng_state r;
    rng_seed(&r, 9);
    tu_fill_uniform(x, N * 6, 0, 1, &r);
    assert_int_equal(rw_predict(m, x, N, p1), RW_OK);
    assert_int_equal(rw_predict(back, x, N, p2), RW_OK);
    assert_memory_equal(p1, p2, sizeof p1);
    float mean, std;
    rw_model_get_normalization(back, &mean, &std);
    assert_true(mean == 0.25f && std == 0.5f);
    rw_layer_info a, b;
    for (int l = 0; l < 2; l++) {
        assert_int_equal(rw_model_layer_info(m, l, &a), RW_OK);
        assert_int_equal(rw_model_layer_info(back, l, &b), RW_OK);
        assert_memory_equal(&a, &b, sizeof a);
    }
    rw_model_free(m);
    rw_model_free(back);
}

static void test_save_failure_leaves_nothing(void **state)
{
    (void)state;
    rw_model *m = make_model();
    assert_int_equal(rw_model_save(m, "/nonexistent-dir/x.safetensors"), RW_ERR_IO);
    assert_non_null(strstr(rw_last_error(), "/nonexistent-dir/x.safetensors"));
    assert_int_equal(access("/nonexistent-dir/x.safetensors.tmp", F_OK), -1);
    rw_model_free(m);
}

/* A copy of the good file with one change: `skip` tensor dropped, `patch`
 * tensor replaced (dtype, 1-D length n, data), metadata `key` set to
 * `value`, and an `extra` tensor added. */
typedef struct {
    const char *skip, *patch, *key, *value, *extra;
    st_dtype dtype;
    int64_t n;
    const void *data;
} variant;

static void expect_rejected(const variant *v, const char *needle)
{
    st_file f;
    assert_int_equal(st_read(good_path, &f), RW_OK);
    st_writer *w = st_writer_new();
    for (int i = 0; i < f.meta_count; i++)
        if (!v->key || strcmp(f.meta_keys[i], v->key) != 0)
            assert_int_equal(st_writer_meta(w, f.meta_keys[i], f.meta_values[i]), RW_OK);
    if (v->key && v->value) assert_int_equal(st_writer_meta(w, v->key, v->value), RW_OK);
    for (int i = 0; i < f.count; i++) {
        const st_tensor *t = &f.tensors[i];
        if (v->skip && !strcmp(t->name, v->skip)) continue;
        if (v->patch && !strcmp(t->name, v->patch))
            assert_int_equal(st_writer_add(w, t->name, v->dtype, 1, &v->n, v->data), RW_OK);
        else
            assert_int_equal(st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data), RW_OK);
    }
    float one = 1.0f;
    int64_t n1 = 1;
    if (v->extra) assert_int_equal(st_writer_add(w, v->extra, ST_F32, 1, &n1, &one), RW_OK);
    const char *bad = tu_temp_path("bad.safetensors");
    assert_int_equal(st_writer_write(w, bad), RW_OK);
    st_writer_free(w);
    st_file_free(&f);

    rw_model *m = (rw_model *)&one; /* must be reset to NULL on failure */
    rw_status st = rw_model_load(bad, &m);
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", rw_last_error());
    unlink(bad);
    if (st != RW_ERR_FORMAT || !strstr(rw_last_error(), needle))
        fail_msg("expected a format error mentioning \"%s\", got status %d: %s", needle, st,
                 rw_last_error());
    assert_null(m);
    assert_non_null(strstr(rw_last_error(), "bad.safetensors"));
}

/* The good file's fc1 (5 x 6 sparse) tensors, read back for patching. */
static int fc1_nnz(void)
{
    rw_model *m;
    assert_int_equal(rw_model_load(good_path, &m), RW_OK);
    int nnz = t_csr(m, 0)->nnz;
    rw_model_free(m);
    return nnz;
}

static void test_metadata_errors(void **state)
{
    (void)state;
    expect_rejected(&(variant){.key = "format"}, "format is missing");
    expect_rejected(&(variant){.key = "format", .value = "other"}, "expected \"rewire\"");
    expect_rejected(&(variant){.key = "format_version", .value = "3"}, "format_version");
    expect_rejected(&(variant){.key = "layers"}, "layers is missing");
    expect_rejected(&(variant){.key = "layers", .value = "{not json"}, "not a JSON array");
    expect_rejected(&(variant){.key = "layers", .value = "[]"}, "not a JSON array");
    expect_rejected(&(variant){.key = "layers", .value = "[{\"name\":\"fc1\"}]"}, "needs name, kind");
    expect_rejected(
        &(variant){.key = "layers",
                   .value = "[{\"name\":\"fc1\",\"kind\":\"sparse\",\"in\":6,\"out\":5,"
                            "\"activation\":\"tanh\"},{\"name\":\"fc2\",\"kind\":\"dense\","
                            "\"in\":4,\"out\":3,\"activation\":\"none\"}]"},
        "takes 4 inputs but the layer before gives 5");
    expect_rejected(
        &(variant){.key = "layers",
                   .value = "[{\"name\":\"fc1\",\"kind\":\"sparse\",\"in\":6,\"out\":5,"
                            "\"activation\":\"swish\"},{\"name\":\"fc2\",\"kind\":\"dense\","
                            "\"in\":5,\"out\":3,\"activation\":\"none\"}]"},
        "unknown activation \"swish\"");
    expect_rejected(
        &(variant){.key = "layers",
                   .value = "[{\"name\":\"fc1\",\"kind\":\"blocked\",\"in\":6,\"out\":5,"
                            "\"activation\":\"tanh\"},{\"name\":\"fc2\",\"kind\":\"dense\","
                            "\"in\":5,\"out\":3,\"activation\":\"none\"}]"},
        "kind \"blocked\"");
    expect_rejected(
        &(variant){.key = "layers",
                   .value = "[{\"name\":\"fc1\",\"kind\":\"nm\",\"in\":6,\"out\":5,"
                            "\"activation\":\"tanh\",\"n\":2,\"m\":4},{\"name\":\"fc2\","
                            "\"kind\":\"dense\",\"in\":5,\"out\":3,\"activation\":\"none\"}]"},
        "m dividing its 6 inputs");
    expect_rejected(
        &(variant){.key = "layers",
                   .value = "[{\"name\":\"fc1\",\"kind\":\"sparse\",\"in\":0,\"out\":5,"
                            "\"activation\":\"tanh\"},{\"name\":\"fc2\",\"kind\":\"dense\","
                            "\"in\":5,\"out\":3,\"activation\":\"none\"}]"},
        "expected sizes");
    /* A few bytes could declare any width: more than RW_MAX_WIDTH is refused. */
    expect_rejected(
        &(variant){.key = "layers",
                   .value = "[{\"name\":\"fc1\",\"kind\":\"sparse\",\"in\":16777217,\"out\":5,"
                            "\"activation\":\"tanh\"},{\"name\":\"fc2\",\"kind\":\"dense\","
                            "\"in\":5,\"out\":3,\"activation\":\"none\"}]"},
        "layer fc1 has shape 5 x 16777217, expected sizes in [1, 16777216]");
    expect_rejected(&(variant){.key = "input_std", .value = "0"}, "input_std");
    expect_rejected(&(variant){.key = "input_mean", .value = "abc"}, "input_mean");
    expect_rejected(&(variant){.key = "input_mean", .value = "nan"}, "input_mean");
}

static void test_tensor_errors(void **state)
{
    (void)state;
    int nnz = fc1_nnz();
    int32_t ptr[6], idx[30];
    float vals[30], fbad[30];
    expect_rejected(&(variant){.skip = "fc1.indices"}, "tensor fc1.indices is missing");
    expect_rejected(&(variant){.skip = "fc2.bias"}, "tensor fc2.bias is missing");
    expect_rejected(&(variant){.skip = "fc2.weight"}, "tensor fc2.weight is missing");
    expect_rejected(&(variant){.extra = "fc3.values"}, "unexpected tensor fc3.values");
    expect_rejected(&(variant){.extra = "fc2.values"}, "unexpected tensor fc2.values");
    expect_rejected(&(variant){.extra = "fc01.bias"}, "unexpected tensor fc01.bias");

    for (int i = 0; i < 30; i++) fbad[i] = 0.5f;
    expect_rejected(&(variant){.patch = "fc1.indices", .dtype = ST_F32, .n = nnz, .data = fbad},
                    "dtype F32, expected I32");
    expect_rejected(&(variant){.patch = "fc1.indptr", .dtype = ST_I32, .n = 5, .data = idx},
                    "fc1.indptr should have shape [6]");
    expect_rejected(&(variant){.patch = "fc2.bias", .dtype = ST_F32, .n = 2, .data = fbad},
                    "fc2.bias should have shape [3]");
    expect_rejected(&(variant){.patch = "fc1.values", .dtype = ST_F32, .n = nnz - 1, .data = fbad},
                    "fc1.values has");

    /* indptr that ends short of the entries. */
    for (int o = 0; o < 6; o++) ptr[o] = o;
    expect_rejected(&(variant){.patch = "fc1.indptr", .dtype = ST_I32, .n = 6, .data = ptr},
                    "indptr says 5");
    /* Not monotone but ending right. */
    int32_t wobble[6] = {0, 3, 1, 4, 5, nnz};
    expect_rejected(&(variant){.patch = "fc1.indptr", .dtype = ST_I32, .n = 6, .data = wobble},
                    "not monotone");
    int32_t first[6] = {1, 2, 3, 4, 5, nnz};
    expect_rejected(&(variant){.patch = "fc1.indptr", .dtype = ST_I32, .n = 6, .data = first},
                    "indptr[0] is 1");

    /* Index out of range, unsorted, duplicated: one row holds all entries. */
    rw_model *m;
    assert_int_equal(rw_model_load(good_path, &m), RW_OK);
    memcpy(idx, t_csr(m, 0)->indices, sizeof(int32_t) * (size_t)nnz);
    memcpy(ptr, t_csr(m, 0)->indptr, sizeof ptr);
    memcpy(vals, t_csr(m, 0)->values, sizeof(float) * (size_t)nnz);
    rw_model_free(m);
    int row = 0;
    while (ptr[row + 1] - ptr[row] < 2) row++; /* a row with two entries */
    int k = ptr[row];
    int32_t save0 = idx[k], save1 = idx[k + 1];
    idx[k] = 6;
    expect_rejected(&(variant){.patch = "fc1.indices", .dtype = ST_I32, .n = nnz, .data = idx},
                    "outside [0, 6)");
    idx[k] = -1;
    expect_rejected(&(variant){.patch = "fc1.indices", .dtype = ST_I32, .n = nnz, .data = idx},
                    "outside [0, 6)");
    idx[k] = save1;
    idx[k + 1] = save0;
    expect_rejected(&(variant){.patch = "fc1.indices", .dtype = ST_I32, .n = nnz, .data = idx},
                    "not strictly increasing");
    idx[k] = idx[k + 1] = save0;
    expect_rejected(&(variant){.patch = "fc1.indices", .dtype = ST_I32, .n = nnz, .data = idx},
                    "not strictly increasing");

    vals[nnz - 1] = NAN;
    expect_rejected(&(variant){.patch = "fc1.values", .dtype = ST_F32, .n = nnz, .data = vals},
                    "not finite");
    float bias[3] = {0, INFINITY, 0};
    expect_rejected(&(variant){.patch = "fc2.bias", .dtype = ST_F32, .n = 3, .data = bias},
                    "non-finite");
}

/* Dense weights are checked for NaN too (patched in place: the tensor is
 * 2-D). */
static void test_dense_nan(void **state)
{
    (void)state;
    st_file f;
    assert_int_equal(st_read(good_path, &f), RW_OK);
    const st_tensor *w = st_find(&f, "fc2.weight");
    assert_non_null(w);
    float nan = NAN;
    memcpy((char *)w->data + 4 * 7, &nan, 4);
    st_writer *wr = st_writer_new();
    for (int i = 0; i < f.meta_count; i++)
        assert_int_equal(st_writer_meta(wr, f.meta_keys[i], f.meta_values[i]), RW_OK);
    for (int i = 0; i < f.count; i++)
        assert_int_equal(st_writer_add(wr, f.tensors[i].name, f.tensors[i].dtype, f.tensors[i].ndim,
                                       f.tensors[i].shape, f.tensors[i].data), RW_OK);
    const char *bad = tu_temp_path("dense-nan.safetensors");
    assert_int_equal(st_writer_write(wr, bad), RW_OK);
    st_writer_free(wr);
    st_file_free(&f);
    rw_model *m;
    assert_int_equal(rw_model_load(bad, &m), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "dense-nan.safetensors: tensor fc2.weight has a non-finite value at 7"));
    unlink(bad);
}

/* More layers than any model has: refused before anything is built. */
static void test_too_many_layers(void **state)
{
    (void)state;
    size_t cap = 5000 * 80 + 16;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t used = (size_t)snprintf(text, cap, "[");
    for (int l = 0; l < 5000; l++)
        used += (size_t)snprintf(text + used, cap - used,
                                 "%s{\"name\":\"fc%d\",\"kind\":\"dense\",\"in\":1,\"out\":1,"
                                 "\"activation\":\"none\"}", l ? "," : "", l + 1);
    snprintf(text + used, cap - used, "]");
    expect_rejected(&(variant){.key = "layers", .value = text}, "not a JSON array of 1 to 4096 layers");
    free(text);
    /* A layers text longer than 4096 layers need is not parsed at all. */
    size_t n = (1 << 20) + 2;
    text = malloc(n + 1);
    assert_non_null(text);
    for (size_t k = 0; k < n; k++) text[k] = "[],"[k % 3];
    text[n] = '\0';
    expect_rejected(&(variant){.key = "layers", .value = text},
                    "metadata layers is 1048578 bytes, more than the 1048576 that 4096 layers need");
    free(text);
}

/* A small file that declares a huge layer: with a limit, refused before
 * anything of that size is allocated (what the fuzz harness relies on). */
static void test_declared_size_limit(void **state)
{
    (void)state;
    FILE *in = fopen(good_path, "rb");
    assert_non_null(in);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    rw_model *m;
    assert_int_equal(model_load_memory("mem.safetensors", buf, n, 100, &m), RW_ERR_NO_MEMORY);
    assert_non_null(strstr(rw_last_error(), "mem.safetensors: the model needs"));
    assert_non_null(strstr(rw_last_error(), "more than the limit of 100"));
    assert_null(m);
    assert_int_equal(model_load_memory("mem.safetensors", buf, n, 1 << 20, &m), RW_OK);
    rw_model_free(m);
}

static void test_container_errors_pass_through(void **state)
{
    (void)state;
    const char *p = tu_temp_path("truncated.safetensors");
    FILE *in = fopen(good_path, "rb"), *out = fopen(p, "wb");
    char buf[64];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    rw_model *m;
    assert_int_equal(rw_model_load(p, &m), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "truncated.safetensors"));
    unlink(p);
    assert_int_equal(rw_model_load("/nonexistent/model.safetensors", &m), RW_ERR_IO);
    assert_non_null(strstr(rw_last_error(), "/nonexistent/model.safetensors"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_predictions),
        cmocka_unit_test(test_save_failure_leaves_nothing),
        cmocka_unit_test(test_metadata_errors),
        cmocka_unit_test(test_tensor_errors),
        cmocka_unit_test(test_container_errors_pass_through),
        cmocka_unit_test(test_dense_nan),
        cmocka_unit_test(test_too_many_layers),
        cmocka_unit_test(test_declared_size_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
