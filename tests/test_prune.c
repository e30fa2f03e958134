/* One-shot pruning (magnitude per layer and global, Wanda per row) and N:M
 * layers: conversion, training gradients, files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "data/dataset.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/network.h"
#include "testmodel.h"
#include "testutil.h"

static rw_model *dense_model(int in, int hidden, int out, uint64_t seed)
{
    int sizes[] = {in, hidden, out};
    double sp[] = {0.0, 0.0};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 2;
    c.layer_sparsity = sp;
    c.seed = seed;
    rw_model *m;
    assert_int_equal(rw_model_create(&c, &m), RW_OK);
    return m;
}

/* |w| of every stored weight of layer l, and the smallest kept / largest
 * pruned compared with the original dense weights. */
static void check_threshold(const float *orig, const csr_matrix *w, double *min_kept,
                            double *max_gone)
{
    uint8_t *kept = calloc((size_t)w->cols * w->rows, 1);
    *min_kept = INFINITY;
    *max_gone = 0;
    for (int o = 0; o < w->rows; o++)
        for (int k = w->indptr[o]; k < w->indptr[o + 1]; k++) {
            size_t i = (size_t)o * w->cols + w->indices[k];
            assert_true(w->values[k] == orig[i]); /* kept weights are unchanged */
            kept[i] = 1;
            *min_kept = fmin(*min_kept, fabsf(orig[i]));
        }
    for (size_t i = 0; i < (size_t)w->cols * w->rows; i++)
        if (!kept[i]) *max_gone = fmax(*max_gone, fabsf(orig[i]));
    free(kept);
}

static void test_magnitude_per_layer(void **state)
{
    (void)state;
    rw_model *m = dense_model(40, 30, 5, 1);
    float *orig[2];
    for (int l = 0; l < 2; l++) {
        size_t n = (size_t)m->layers[l]->in * m->layers[l]->out;
        orig[l] = malloc(sizeof(float) * n);
        memcpy(orig[l], t_w(m, l), sizeof(float) * n);
    }
    rw_prune_config pc = {0.75, RW_PRUNE_MAGNITUDE, RW_PRUNE_PER_LAYER, NULL, 0};
    assert_int_equal(rw_model_prune(m, &pc), RW_OK);
    for (int l = 0; l < 2; l++) {
        const csr_matrix *w = t_csr(m, l);
        assert_true(t_sparse(m, l));
        assert_int_equal(w->nnz, (int)llround(0.25 * w->cols * w->rows));
        assert_int_equal(csr_validate(w, "pruned"), RW_OK);
        double min_kept, max_gone;
        check_threshold(orig[l], w, &min_kept, &max_gone);
        assert_true(min_kept >= max_gone);
        free(orig[l]);
    }
    /* Pruning to a lower sparsity than the layer has changes nothing. */
    int before = t_csr(m, 0)->nnz;
    pc.sparsity = 0.5;
    assert_int_equal(rw_model_prune(m, &pc), RW_OK);
    assert_int_equal(t_csr(m, 0)->nnz, before);
    rw_model_free(m);
}

static void test_magnitude_global(void **state)
{
    (void)state;
    rw_model *m = dense_model(40, 30, 5, 2);
    /* Make layer 2's weights large: a global threshold keeps more of them. */
    for (int k = 0; k < 30 * 5; k++) t_w(m, 1)[k] *= 10.0f;
    float *orig0 = malloc(sizeof(float) * 1200), *orig1 = malloc(sizeof(float) * 150);
    memcpy(orig0, t_w(m, 0), sizeof(float) * 1200);
    memcpy(orig1, t_w(m, 1), sizeof(float) * 150);
    rw_prune_config pc = {0.8, RW_PRUNE_MAGNITUDE, RW_PRUNE_GLOBAL, NULL, 0};
    assert_int_equal(rw_model_prune(m, &pc), RW_OK);
    assert_int_equal(t_csr(m, 0)->nnz + t_csr(m, 1)->nnz, (int)llround(0.2 * 1350));
    assert_true(t_csr(m, 1)->nnz > llround(0.2 * 150)); /* not the same share per layer */
    double k0, g0, k1, g1;
    check_threshold(orig0, t_csr(m, 0), &k0, &g0);
    check_threshold(orig1, t_csr(m, 1), &k1, &g1);
    assert_true(fmin(k0, k1) >= fmax(g0, g1)); /* one threshold for both */
    free(orig0);
    free(orig1);
    rw_model_free(m);
}

static void test_wanda_per_row(void **state)
{
    (void)state;
    enum { N = 64, F = 12 };
    rw_model *m = dense_model(F, 8, 3, 3);
    /* Inputs whose feature f has scale f+1: Wanda favours large inputs. */
    float x[N * F];
    uint8_t y[N] = {0};
    rng_state r;
    rng_seed(&r, 5);
    for (int s = 0; s < N; s++)
        for (int f = 0; f < F; f++) x[s * F + f] = (float)rng_uniform(&r) * (float)(f + 1) / F;
    rw_dataset *d;
    assert_int_equal(rw_dataset_from_memory(x, y, N, F, 3, &d), RW_OK);
    float orig[8 * F];
    memcpy(orig, t_w(m, 0), sizeof orig);
    /* The exact Wanda score of layer 0: |w| times the raw input norm after
     * normalisation (mean 0, std 1 here, so the data itself). */
    double norm[F] = {0};
    for (int s = 0; s < N; s++)
        for (int f = 0; f < F; f++) norm[f] += (double)x[s * F + f] * x[s * F + f];
    rw_prune_config pc = {0.5, RW_PRUNE_WANDA, RW_PRUNE_PER_LAYER, d, 0};
    assert_int_equal(rw_model_prune(m, &pc), RW_OK);
    const csr_matrix *pw = t_csr(m, 0);
    for (int o = 0; o < 8; o++) {
        assert_int_equal(pw->indptr[o + 1] - pw->indptr[o], F / 2);
        double min_kept = INFINITY, max_gone = 0;
        uint8_t kept[F] = {0};
        for (int k = pw->indptr[o]; k < pw->indptr[o + 1]; k++) kept[pw->indices[k]] = 1;
        for (int f = 0; f < F; f++) {
            double score = fabsf(orig[o * F + f]) * sqrt(norm[f]);
            if (kept[f]) min_kept = fmin(min_kept, score);
            else max_gone = fmax(max_gone, score);
        }
        assert_true(min_kept >= max_gone * (1 - 1e-6));
    }
    pc.scope = RW_PRUNE_GLOBAL;
    assert_int_equal(rw_model_prune(m, &pc), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "within each output row"));
    pc = (rw_prune_config){0.5, RW_PRUNE_WANDA, RW_PRUNE_PER_LAYER, NULL, 0};
    assert_int_equal(rw_model_prune(m, &pc), RW_ERR_INVALID_ARGUMENT);
    pc = (rw_prune_config){1.0, RW_PRUNE_MAGNITUDE, RW_PRUNE_PER_LAYER, NULL, 0};
    assert_int_equal(rw_model_prune(m, &pc), RW_ERR_INVALID_ARGUMENT);
    rw_dataset_free(d);
    rw_model_free(m);
}

static void test_nm_conversion_and_files(void **state)
{
    (void)state;
    rw_model *m = dense_model(16, 12, 4, 4);
    float dense0[12 * 16];
    memcpy(dense0, t_w(m, 0), sizeof dense0);
    assert_int_equal(rw_model_to_nm(m, 1, 2, 8), RW_ERR_INVALID_ARGUMENT); /* 12 inputs */
    assert_non_null(strstr(rw_last_error(), "not a multiple of M = 8"));
    assert_int_equal(rw_model_to_nm(m, -1, 2, 8), RW_OK); /* only layer 0 qualifies */
    assert_true(t_nm(m, 0) && !t_nm(m, 1));
    rw_layer_info li;
    assert_int_equal(rw_model_layer_info(m, 0, &li), RW_OK);
    assert_true(li.nm_n == 2 && li.nm_m == 8 && li.nonzeros == 12 * 4);
    assert_true(li.bytes < 12 * 4 * 8); /* smaller than CSR's 8 bytes per weight */
    /* Each group kept its two largest. */
    float back[12 * 16];
    nm_to_dense(&(*t_nmw(m, 0)), back);
    for (int o = 0; o < 12; o++)
        for (int g = 0; g < 2; g++) {
            double min_kept = INFINITY, max_gone = 0;
            for (int i = g * 8; i < g * 8 + 8; i++) {
                float v = back[o * 16 + i];
                if (v != 0) min_kept = fmin(min_kept, fabsf(v)), assert_true(v == dense0[o * 16 + i]);
                else max_gone = fmax(max_gone, fabsf(dense0[o * 16 + i]));
            }
            assert_true(min_kept >= max_gone);
        }
    /* Save -> load -> identical predictions. */
    const char *path = tu_temp_path("nm.safetensors");
    assert_int_equal(rw_model_save(m, path), RW_OK);
    rw_model *back_m;
    assert_int_equal(rw_model_load(path, &back_m), RW_OK);
    float x[3 * 16], p1[3 * 4], p2[3 * 4];
    rng_state r;
    rng_seed(&r, 8);
    tu_fill_uniform(x, 48, 0, 1, &r);
    assert_int_equal(rw_predict(m, x, 3, p1), RW_OK);
    assert_int_equal(rw_predict(back_m, x, 3, p2), RW_OK);
    assert_memory_equal(p1, p2, sizeof p1);
    /* Pruning an N:M layer goes back to CSR. */
    rw_prune_config pc = {0.9, RW_PRUNE_MAGNITUDE, RW_PRUNE_PER_LAYER, NULL, 0};
    assert_int_equal(rw_model_prune(back_m, &pc), RW_OK);
    assert_true(t_sparse(back_m, 0) && !t_nm(back_m, 0));
    unlink(path);
    rw_model_free(back_m);
    rw_model_free(m);
}

/* Finite differences through an N:M layer (weights and the input gradient
 * it passes back). */
static void test_nm_gradients(void **state)
{
    (void)state;
    rw_model *m = dense_model(8, 8, 3, 9);
    assert_int_equal(rw_model_to_nm(m, -1, 2, 4), RW_OK);
    enum { N = 3 };
    float x[N * 8];
    uint8_t y[N] = {2, 0, 1};
    rng_state r;
    rng_seed(&r, 4);
    tu_fill_uniform(x, N * 8, 0, 1, &r);
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, N, 1), RW_OK);
    network_load_batch(m, &ws, (sample_rows){.x = x, .features = 8}, NULL, N);
    network_forward(m, &ws);
    softmax_xent(ws.t[2].data, y, 3, N, ws.bp, ws.t[2].grad, NULL);
    network_backward(m, &ws);
    for (int l = 0; l < 2; l++) {
        float *w = t_w(m, l);
        for (int64_t k = 0; k < t_count(m, l); k++) {
            float keep = w[k];
            const float h = 1e-2f;
            w[k] = keep + h;
            network_forward(m, &ws);
            double up = softmax_xent(ws.t[2].data, y, 3, N, ws.bp, NULL, NULL) / N;
            w[k] = keep - h;
            network_forward(m, &ws);
            double down = softmax_xent(ws.t[2].data, y, 3, N, ws.bp, NULL, NULL) / N;
            w[k] = keep;
            double numeric = (up - down) / (2 * h), analytic = t_gw(&ws, m, l)[k];
            if (fabs(analytic - numeric) > 2e-2 * fmax(1e-2, fabs(analytic) + fabs(numeric)))
                fail_msg("layer %d slot %lld: analytic %g, numeric %g", l, (long long)k, analytic,
                         numeric);
        }
    }
    workspace_free(&ws);
    rw_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magnitude_per_layer),
        cmocka_unit_test(test_magnitude_global),
        cmocka_unit_test(test_wanda_per_row),
        cmocka_unit_test(test_nm_conversion_and_files),
        cmocka_unit_test(test_nm_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
