/* rewire against PyTorch: forward logits, loss and every gradient of a small
 * sparse MLP per activation, from vectors written by tools/make_reference.py
 * (float64 PyTorch). Tolerance 1e-5 relative to max(1, |reference|). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "nn/loss.h"
#include "nn/network.h"
#include "testmodel.h"
#include "testutil.h"

static const st_tensor *need(const st_file *f, const char *name)
{
    const st_tensor *t = st_find(f, name);
    if (!t) fail_msg("reference tensor %s missing", name);
    return t;
}

/* Tensors in a safetensors file need not be aligned: work on a copy. */
static float *floats(const st_file *f, const char *name, int64_t *count)
{
    const st_tensor *t = need(f, name);
    assert_int_equal(t->dtype, ST_F32);
    float *copy = test_malloc(t->nbytes + sizeof(float));
    memcpy(copy, t->data, t->nbytes);
    if (count) *count = t->count;
    return copy;
}

static void check_activation(const char *act)
{
    char path[256];
    snprintf(path, sizeof path, "data/reference/%s.model.safetensors", act);
    rw_model *m;
    assert_int_equal(rw_model_load(path, &m), RW_OK);
    snprintf(path, sizeof path, "data/reference/%s.ref.safetensors", act);
    st_file ref;
    assert_int_equal(st_read(path, &ref), RW_OK);

    const st_tensor *xt = need(&ref, "x"), *labels = need(&ref, "labels");
    int n = (int)xt->shape[0], features = (int)xt->shape[1];
    float *x = floats(&ref, "x", NULL), *logits = floats(&ref, "logits", NULL);
    float *want_loss = floats(&ref, "loss", NULL);
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, n, 1), RW_OK);
    network_load_batch(m, &ws, (sample_rows){.x = x, .features = features}, NULL, n);
    network_forward(m, &ws);

    int classes = rw_model_classes(m), L = m->n_layers;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < classes; c++) {
            float got = ws.t[L].data[(size_t)c * ws.bp + b];
            assert_true(tu_max_rel_diff(&got, &logits[b * classes + c], 1) < 1e-5);
        }
    float loss = (float)(softmax_xent(ws.t[L].data, labels->data, classes, n, ws.bp, ws.t[L].grad, NULL) / n);
    assert_true(tu_max_rel_diff(&loss, want_loss, 1) < 1e-5);

    network_backward(m, &ws);
    for (int l = 0; l < L; l++) {
        char name[64];
        snprintf(name, sizeof name, "grad.fc%d.%s", l + 1, t_sparse(m, l) ? "values" : "weight");
        int64_t nw, nb;
        float *gw = floats(&ref, name, &nw);
        assert_int_equal(nw, t_count(m, l));
        double dw = tu_max_rel_diff(t_gw(&ws, m, l), gw, (size_t)nw);
        snprintf(name, sizeof name, "grad.fc%d.bias", l + 1);
        float *gb = floats(&ref, name, &nb);
        assert_int_equal(nb, m->layers[l]->out);
        double db = tu_max_rel_diff(t_gb(&ws, m, l), gb, (size_t)nb);
        test_free(gw);
        test_free(gb);
        if (dw >= 1e-5 || db >= 1e-5)
            fail_msg("%s layer %d: weight gradient off by %g, bias gradient by %g", act, l, dw, db);
    }
    test_free(x);
    test_free(logits);
    test_free(want_loss);
    workspace_free(&ws);
    st_file_free(&ref);
    rw_model_free(m);
}

static void test_relu(void **state) { (void)state; check_activation("relu"); }
static void test_leaky_relu(void **state) { (void)state; check_activation("leaky_relu"); }
static void test_tanh(void **state) { (void)state; check_activation("tanh"); }
static void test_gelu(void **state) { (void)state; check_activation("gelu"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_leaky_relu),
        cmocka_unit_test(test_tanh),
        cmocka_unit_test(test_gelu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
