/* LayerNorm, the layer kind added over the layer interface: its passes
 * against torch.nn.LayerNorm (tools/make_layer_norm_reference.py), finite
 * differences through an MLP that holds it, and the rest of the library
 * (trainer, DST, checkpoints, model files) carrying it unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "data/dataset.h"
#include "io/safetensors.h"
#include "nn/activation.h"
#include "nn/layer_norm.h"
#include "nn/loss.h"
#include "nn/network.h"
#include "nn/trainer.h"
#include "testmodel.h"
#include "testutil.h"

static rw_dataset *train_set;

static int setup(void **state)
{
    (void)state;
    return tu_small_head(0, 600, &train_set);
}

static int teardown(void **state)
{
    (void)state;
    rw_dataset_free(train_set);
    return 0;
}

/* Tensors in a safetensors file need not be aligned: work on a copy. */
static void read_floats(const st_file *f, const char *name, float *out, int64_t n)
{
    const st_tensor *t = st_find(f, name);
    if (!t) fail_msg("reference tensor %s missing", name);
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->count, n);
    memcpy(out, t->data, t->nbytes);
}

static void test_matches_pytorch(void **state)
{
    (void)state;
    enum { B = 5, D = 7, BP = 8 };
    st_file ref;
    assert_int_equal(st_read("data/reference/layer_norm.ref.safetensors", &ref), RW_OK);
    float x[B * D], dy[B * D], y[B * D], dx[B * D], w[D], b[D], dw[D], db[D];
    read_floats(&ref, "x", x, B * D);
    read_floats(&ref, "dy", dy, B * D);
    read_floats(&ref, "y", y, B * D);
    read_floats(&ref, "dx", dx, B * D);
    read_floats(&ref, "weight", w, D);
    read_floats(&ref, "bias", b, D);
    read_floats(&ref, "dweight", dw, D);
    read_floats(&ref, "dbias", db, D);
    st_file_free(&ref);

    layer *ly = layer_norm_new("ln", D, 1e-5f, 0, 1);
    assert_non_null(ly);
    memcpy(t_lw(ly), w, sizeof w);
    memcpy(t_lb(ly), b, sizeof b);
    /* [D][BP] tensors, zeros in the padding columns as the workspace keeps them. */
    float in_data[D * BP] = {0}, in_grad[D * BP], out_data[D * BP], out_grad[D * BP] = {0};
    float scratch[2 * BP], gw[D], gb[D];
    for (int s = 0; s < B; s++)
        for (int i = 0; i < D; i++) {
            in_data[i * BP + s] = x[s * D + i];
            out_grad[i * BP + s] = dy[s * D + i];
        }
    tensor in = {"x", D, RW_ACT_NONE, 0.01f, in_data, in_data, in_grad};
    tensor out = {"y", D, RW_ACT_NONE, 0.01f, out_data, out_data, out_grad};
    float *grads[2] = {gw, gb};
    layer_io io = {.in = {&in}, .n_in = 1, .out = &out, .bp = BP, .n = B, .grad = grads,
                   .scratch = scratch};
    ly->ops->forward(ly, &io);
    ly->ops->backward(ly, &io);
    float got_y[B * D], got_dx[B * D];
    for (int s = 0; s < B; s++)
        for (int i = 0; i < D; i++) {
            got_y[s * D + i] = out_data[i * BP + s];
            got_dx[s * D + i] = in_grad[i * BP + s];
        }
    double ey = tu_max_rel_diff(got_y, y, B * D), edx = tu_max_rel_diff(got_dx, dx, B * D);
    double edw = tu_max_rel_diff(gw, dw, D), edb = tu_max_rel_diff(gb, db, D);
    if (ey > 1e-5 || edx > 1e-5 || edw > 1e-5 || edb > 1e-5)
        fail_msg("y off by %g, dx by %g, dweight by %g, dbias by %g", ey, edx, edw, edb);
    /* Padding columns get no gradient. */
    for (int i = 0; i < D; i++)
        for (int s = B; s < BP; s++) assert_true(in_grad[i * BP + s] == 0.0f);
    layer_free(ly);
}

/* An MLP with a LayerNorm after each hidden layer. */
static rw_model *ln_mlp(rw_activation act, double sparsity, uint64_t seed)
{
    int sizes[] = {9, 8, 6, 4};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    mc.sparsity = sparsity;
    mc.activation = act;
    mc.layer_norm = 1;
    mc.seed = seed;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    assert_int_equal(m->n_layers, 5);
    /* γ and β away from their start, so their gradients are tested too. */
    rng_state r;
    rng_seed(&r, seed + 100);
    for (int l = 1; l < 5; l += 2) {
        tu_fill_uniform(t_w(m, l), (size_t)m->layers[l]->in, 0.5f, 1.5f, &r);
        tu_fill_uniform(t_b(m, l), (size_t)m->layers[l]->in, -0.5f, 0.5f, &r);
    }
    return m;
}

static void test_gradients_by_finite_differences(void **state)
{
    (void)state;
    enum { N = 6 };
    /* ReLU writes its output over its input, so how near 0 a negative
     * pre-activation lies is not known here; leaky ReLU's is (a / slope),
     * and both share the derivative code this test reaches. */
    const rw_activation acts[] = {RW_ACT_NONE, RW_ACT_LEAKY_RELU, RW_ACT_TANH, RW_ACT_GELU};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        float x[N * 9];
        uint8_t y[N] = {0, 1, 2, 3, 1, 2};
        rng_state r;
        rng_seed(&r, 11);
        tu_fill_uniform(x, N * 9, 0, 1, &r);
        /* A model whose ReLU-family pre-activations all stay clear of the
         * kink at 0 by more than a step moves them: a difference across
         * the kink is no derivative. */
        rw_model *m = NULL;
        workspace ws;
        int logits = 0;
        for (uint64_t seed = 1; seed < 400; seed++) {
            m = ln_mlp(acts[a], 0.4, seed);
            assert_int_equal(workspace_init(&ws, m, N, 1), RW_OK);
            logits = model_logits_tensor(m);
            network_load_batch(m, &ws, (sample_rows){.x = x, .features = 9}, NULL, N);
            network_forward(m, &ws);
            float nearest = INFINITY;
            for (int l = 0; l < m->n_layers; l += 2)
                for (int o = 0; o < m->layers[l]->out && m->layers[l]->act != RW_ACT_NONE; o++)
                    for (int b = 0; b < N; b++) {
                        float v = ws.t[l + 1].pre[(size_t)o * ws.bp + b];
                        nearest = fminf(nearest, v > 0 ? v : -v / 0.01f); /* leaky: z = a / slope */
                    }
            if (acts[a] == RW_ACT_TANH || acts[a] == RW_ACT_GELU || nearest > 0.01f) break; /* smooth */
            workspace_free(&ws);
            rw_model_free(m);
            m = NULL;
        }
        assert_non_null(m);
        softmax_xent(ws.t[logits].data, y, 4, N, ws.bp, ws.t[logits].grad, NULL);
        network_backward(m, &ws);
        /* Small steps: a step across a leaky ReLU's kink is not a derivative. */
        const double h = 2e-3;
        int checked = 0;
        for (int q = 0; q < m->n_params; q++) {
            float *v = param_values(&m->params[q]);
            for (int64_t k = 0; k < param_count(&m->params[q]); k++) {
                float keep = v[k];
                v[k] = (float)(keep + h);
                network_forward(m, &ws);
                double up = softmax_xent(ws.t[logits].data, y, 4, N, ws.bp, NULL, NULL) / N;
                v[k] = (float)(keep - h);
                network_forward(m, &ws);
                double down = softmax_xent(ws.t[logits].data, y, 4, N, ws.bp, NULL, NULL) / N;
                v[k] = keep;
                double numeric = (up - down) / (2 * h), analytic = ws.grad[q][k];
                if (fabs(analytic - numeric) > 2e-2 * fmax(1e-2, fabs(analytic) + fabs(numeric)))
                    fail_msg("%s, %s[%lld]: analytic %g, numeric %g", activation_name(acts[a]),
                             m->params[q].name, (long long)k, analytic, numeric);
                checked++;
            }
        }
        assert_true(checked > 100);
        workspace_free(&ws);
        rw_model_free(m);
    }
}

/* The other pieces take the new kind as they are: a RigL run with the
 * LayerNorms, stopped, checkpointed, loaded and finished, ends as one
 * never stopped; the model file holds the LayerNorms and predicts the
 * same after loading. */
static int stop_at(const rw_progress *p, void *user) { return p->step == *(int64_t *)user; }

static rw_model *train_ln(int64_t stop, rw_trainer **t_out)
{
    int sizes[] = {784, 64, 32, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    mc.sparsity = 0.9;
    mc.layer_norm = 1;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    rw_train_config tc = rw_train_config_default();
    tc.batch = 32;
    tc.epochs = 2;
    tc.optimizer = RW_OPT_ADAMW;
    tc.lr = 3e-3f;
    tc.weight_decay = 1e-2f;
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    rw_dst_config dc = rw_dst_config_preset(RW_DST_RIGL);
    dc.update_every = 5;
    assert_int_equal(rw_trainer_set_dst(t, &dc), RW_OK);
    const char *path = tu_temp_path("ln.ckpt");
    rw_progress pos;
    for (rw_trainer_position(t, &pos); pos.epoch < tc.epochs; rw_trainer_position(t, &pos)) {
        assert_int_equal(rw_trainer_epoch(t, train_set, stop > 0 ? stop_at : NULL, &stop, NULL),
                         RW_OK);
        rw_trainer_position(t, &pos);
        if (stop > 0 && pos.step == stop) {
            assert_int_equal(rw_trainer_save_checkpoint(t, path, NULL), RW_OK);
            rw_trainer_free(t);
            rw_model_free(m);
            assert_int_equal(rw_trainer_load_checkpoint(path, 0, &m, &t, NULL), RW_OK);
            stop = -1;
        }
    }
    remove(path);
    *t_out = t;
    return m;
}

static void test_trains_resumes_and_saves(void **state)
{
    (void)state;
    rw_trainer *t0, *t1;
    rw_model *m0 = train_ln(0, &t0), *m1 = train_ln(23, &t1);
    rw_dst_totals totals;
    assert_true(rw_trainer_dst(t0, NULL, &totals) && totals.updates >= 4);
    assert_int_equal(m0->n_params, m1->n_params);
    for (int q = 0; q < m0->n_params; q++) {
        assert_int_equal(param_count(&m0->params[q]), param_count(&m1->params[q]));
        assert_memory_equal(param_values(&m0->params[q]), param_values(&m1->params[q]),
                            sizeof(float) * (size_t)param_count(&m0->params[q]));
        assert_memory_equal(t0->m2[q], t1->m2[q], sizeof(float) * (size_t)param_count(&m0->params[q]));
    }
    /* LayerNorm's parameters trained, and no weight decay pulled them. */
    assert_true(t_w(m0, 1)[0] != 1.0f);
    /* A model file keeps the kind, its eps and its values. */
    const char *path = tu_temp_path("ln.safetensors");
    assert_int_equal(rw_model_save(m0, path), RW_OK);
    rw_model *back;
    assert_int_equal(rw_model_load(path, &back), RW_OK);
    rw_layer_info li;
    assert_int_equal(rw_model_layer_info(back, 1, &li), RW_OK);
    assert_string_equal(li.kind, "layer_norm");
    assert_string_equal(li.name, "ln1");
    assert_false(li.has_weights);
    enum { N = 40 };
    const float *xs; /* the IDX set's bytes as floats */
    rw_dataset_arrays(train_set, &xs, NULL);
    float *p0 = malloc(sizeof(float) * N * 10), *p1 = malloc(sizeof(float) * N * 10);
    assert_int_equal(rw_predict(m0, xs, N, p0), RW_OK);
    assert_int_equal(rw_predict(back, xs, N, p1), RW_OK);
    assert_memory_equal(p0, p1, sizeof(float) * N * 10);
    /* One sample takes the vector path through the LayerNorms too. */
    assert_int_equal(rw_predict(back, xs, 1, p1), RW_OK);
    assert_true(tu_max_rel_diff(p0, p1, 10) < 1e-5);
    free(p0);
    free(p1);
    remove(path);
    rw_model_free(back);
    rw_trainer_free(t0);
    rw_trainer_free(t1);
    rw_model_free(m0);
    rw_model_free(m1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_pytorch),
        cmocka_unit_test(test_gradients_by_finite_differences),
        cmocka_unit_test(test_trains_resumes_and_saves),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
