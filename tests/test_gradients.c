/* Finite-difference checks: each activation's derivative, the softmax
 * cross-entropy gradient, and the weight and bias gradients of sparse and
 * dense layers through a whole network, for every activation. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/activation.h"
#include "nn/loss.h"
#include "nn/network.h"
#include "testmodel.h"
#include "testutil.h"

static int close_enough(double analytic, double numeric, double tol)
{
    return fabs(analytic - numeric) <= tol * fmax(1e-2, fabs(analytic) + fabs(numeric));
}

static void test_activation_derivatives(void **state)
{
    (void)state;
    const float points[] = {-2.5f, -0.7f, -0.1f, 0.05f, 0.3f, 1.1f, 3.0f};
    const int n = sizeof points / sizeof points[0];
    for (int act = RW_ACT_RELU; act <= RW_ACT_NONE; act++)
        for (int i = 0; i < n; i++) {
            float z = points[i], a, g = 1.0f;
            const double h = 1e-3;
            float zp = (float)(z + h), zm = (float)(z - h), ap, am;
            activation_forward((rw_activation)act, 0.01f, &z, &a, 1);
            activation_forward((rw_activation)act, 0.01f, &zp, &ap, 1);
            activation_forward((rw_activation)act, 0.01f, &zm, &am, 1);
            activation_backward((rw_activation)act, 0.01f, &z, &a, &g, 1);
            double numeric = ((double)ap - am) / (2 * h);
            if (!close_enough(g, numeric, 2e-3))
                fail_msg("%s'(%g): analytic %g, numeric %g", activation_name(act), z, g, numeric);
        }
}

static void test_softmax_xent_gradient(void **state)
{
    (void)state;
    enum { C = 5, N = 3, BP = 8 };
    float logits[C * BP] = {0}, grad[C * BP];
    uint8_t labels[N] = {2, 0, 4};
    rng_state r;
    rng_seed(&r, 7);
    for (int c = 0; c < C; c++) tu_fill_uniform(logits + c * BP, N, -2, 2, &r);
    softmax_xent(logits, labels, C, N, BP, grad, NULL);
    for (int i = 0; i < C * BP; i++) {
        if (i % BP >= N) {
            assert_true(grad[i] == 0.0f); /* padding columns carry no gradient */
            continue;
        }
        float keep = logits[i];
        const float h = 1e-2f;
        logits[i] = keep + h;
        double up = softmax_xent(logits, labels, C, N, BP, NULL, NULL) / N;
        logits[i] = keep - h;
        double down = softmax_xent(logits, labels, C, N, BP, NULL, NULL) / N;
        logits[i] = keep;
        double numeric = (up - down) / (2.0 * h);
        if (!close_enough(grad[i], numeric, 1e-3))
            fail_msg("dlogits[%d]: analytic %g, numeric %g", i, grad[i], numeric);
    }
}

/* Mean loss of the batch already loaded into ws. */
static double batch_loss(const rw_model *m, workspace *ws, const uint8_t *y, int n)
{
    network_forward(m, ws);
    int L = m->n_layers;
    return softmax_xent(ws->t[L].data, y, m->layers[L - 1]->out, n, ws->bp, NULL, NULL) / n;
}

static void check_network_nm(rw_activation act, int nm_layer)
{
    /* 7 -> 6 (sparse) -> 5 (dense) -> 4 (sparse), batch 3: not a multiple
     * of 8, so padding columns are exercised too. */
    int sizes[] = {7, 6, 5, 4};
    double layer_sparsity[] = {0.5, 0.0, 0.3};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 3;
    c.layer_sparsity = layer_sparsity;
    c.activation = act;
    c.seed = 11;
    rw_model *m;
    assert_int_equal(rw_model_create(&c, &m), RW_OK);
    assert_true(t_sparse(m, 0) && !t_sparse(m, 1) && t_sparse(m, 2));
    /* Optionally the dense middle layer (6 inputs) as 1:2 N:M. */
    if (nm_layer >= 0) {
        assert_int_equal(rw_model_to_nm(m, nm_layer, 1, 2), RW_OK);
        assert_true(t_nm(m, nm_layer));
    }

    enum { N = 3 };
    float x[N * 7];
    uint8_t y[N] = {1, 3, 0};
    rng_state r;
    rng_seed(&r, 3);
    tu_fill_uniform(x, N * 7, 0, 1, &r);
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, N, 1), RW_OK);
    network_load_batch(m, &ws, (sample_rows){.x = x, .features = 7}, NULL, N);
    network_forward(m, &ws);
    softmax_xent(ws.t[3].data, y, 4, N, ws.bp, ws.t[3].grad, NULL);
    network_backward(m, &ws);

    const double h = 1e-2;
    for (int l = 0; l < 3; l++) {
        float *params[2] = {t_w(m, l), t_b(m, l)};
        float *grads[2] = {t_gw(&ws, m, l), t_gb(&ws, m, l)};
        int64_t counts[2] = {t_count(m, l), m->layers[l]->out};
        for (int p = 0; p < 2; p++)
            for (int64_t k = 0; k < counts[p]; k++) {
                float keep = params[p][k];
                params[p][k] = (float)(keep + h);
                double up = batch_loss(m, &ws, y, N);
                params[p][k] = (float)(keep - h);
                double down = batch_loss(m, &ws, y, N);
                params[p][k] = keep;
                double numeric = (up - down) / (2 * h);
                if (!close_enough(grads[p][k], numeric, 2e-2))
                    fail_msg("%s layer %d %s[%lld]: analytic %g, numeric %g", activation_name(act),
                             l, p ? "bias" : "weight", (long long)k, grads[p][k], numeric);
            }
    }
    workspace_free(&ws);
    rw_model_free(m);
}

static void check_network(rw_activation act) { check_network_nm(act, -1); }

/* Smooth activations only: after the N:M pruning a ReLU unit sits within
 * the finite-difference step of its kink. */
static void test_network_nm(void **state)
{
    (void)state;
    check_network_nm(RW_ACT_TANH, 1);
    check_network_nm(RW_ACT_GELU, 1);
}

static void test_network_relu(void **state) { (void)state; check_network(RW_ACT_RELU); }
static void test_network_leaky_relu(void **state) { (void)state; check_network(RW_ACT_LEAKY_RELU); }
static void test_network_tanh(void **state) { (void)state; check_network(RW_ACT_TANH); }
static void test_network_gelu(void **state) { (void)state; check_network(RW_ACT_GELU); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_derivatives),
        cmocka_unit_test(test_softmax_xent_gradient),
        cmocka_unit_test(test_network_relu),
        cmocka_unit_test(test_network_leaky_relu),
        cmocka_unit_test(test_network_tanh),
        cmocka_unit_test(test_network_gelu),
        cmocka_unit_test(test_network_nm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
