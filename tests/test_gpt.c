/* The GPT of rw_gpt_create against PyTorch (tools/make_gpt_reference.py
 * wrote tests/data/gpt/): logits, loss, every parameter's gradient and the
 * losses of ten AdamW steps of the same model in float64, without biases
 * (nanoGPT's bias=False, some targets ignored) and with them (and there
 * the parameters after the steps); a sparse model against its dense
 * equivalent; one and two threads; and finite differences through every
 * layer kind a GPT adds, on tiny models.
 *
 * Errors are measured per tensor as max |a - b| / max |b| (b the
 * reference): relative to the tensor's scale, so that entries near zero
 * neither hide nor inflate a difference. RW_TEST_SHOW=1 prints them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "kernels/team.h"
#include "nn/activation.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/loss_layer.h"
#include "nn/network.h"
#include "nn/residual.h"
#include "nn/trainer.h"
#include "testutil.h"

enum { VOCAB = 256, CONTEXT = 16, DIM = 32, BATCH = 3, SEQ = 16, N = BATCH * SEQ, STEPS = 10 };

/* The reference's float64 numbers, rounded to float32 when saved, against
 * rewire's float32: torch itself in float32 is off by about 1e-6 (the
 * files' torch_f32.* metadata). */
#define TOL 1e-4

static int show;

static void report(const char *what, double err)
{
    if (show) print_message("  %-44s %.3g\n", what, err);
}

/* max |a - b| / max |b| over n entries (NaN counts as infinitely off). */
static double rel_err(const float *a, const float *b, int64_t n)
{
    double diff = 0, scale = 0;
    for (int64_t k = 0; k < n; k++) {
        double d = fabs((double)a[k] - b[k]);
        diff = fmax(diff, isnan(d) ? INFINITY : d);
        scale = fmax(scale, fabs((double)b[k]));
    }
    return diff / fmax(scale, 1e-30);
}

/* ---- Reference files ------------------------------------------------------ */

static void open_ref(const char *name, st_file *f)
{
    char path[256];
    snprintf(path, sizeof path, "data/gpt/%s.safetensors", name);
    if (st_read(path, f) != RW_OK) fail_msg("%s", rw_last_error());
}

/* Tensor `name` of n entries of `dtype`, copied to out (the file's data
 * need not be aligned). */
static void ref_read(const st_file *f, const char *name, st_dtype dtype, int64_t n, void *out)
{
    const st_tensor *t = st_find(f, name);
    if (!t) fail_msg("reference tensor %s missing", name);
    if (t->dtype != dtype || t->count != n)
        fail_msg("reference tensor %s: %s of %lld entries, expected %s of %lld", name,
                 st_dtype_name(t->dtype), (long long)t->count, st_dtype_name(dtype), (long long)n);
    memcpy(out, t->data, t->nbytes);
}

/* A parameter's entries in its own storage order from a dense row-major
 * [rows][cols] array: all of them for a dense parameter, the stored ones
 * (in CSR order) for a sparse one. out has param_count entries. */
static void gather_stored(const param *p, const float *dense, float *out)
{
    csr_matrix pat;
    assert_int_equal(param_to_csr(p, &pat), RW_OK);
    for (int o = 0; o < p->rows; o++)
        for (int k = pat.indptr[o]; k < pat.indptr[o + 1]; k++)
            out[k] = dense[(size_t)o * p->cols + pat.indices[k]];
    csr_free(&pat);
}

/* Parameter `name`'s reference tensor (prefix + name, dense shape) at
 * the parameter's stored entries; a new array of param_count floats. */
static float *ref_param(const st_file *f, const char *prefix, const param *p)
{
    char name[PARAM_NAME_CAP + 16];
    snprintf(name, sizeof name, "%s%s", prefix, p->name);
    float *dense = malloc(sizeof(float) * (size_t)param_dense_count(p));
    float *out = malloc(sizeof(float) * (size_t)param_count(p));
    assert_non_null(dense);
    assert_non_null(out);
    ref_read(f, name, ST_F32, param_dense_count(p), dense);
    gather_stored(p, dense, out);
    free(dense);
    return out;
}

/* Sets every parameter of m from the weights file by name (a sparse map
 * takes the reference's values at its stored positions). The file may
 * hold more (the biases, for a model without them), never less. */
static void set_weights(rw_model *m, const st_file *w)
{
    for (int q = 0; q < m->n_params; q++) {
        float *v = ref_param(w, "", &m->params[q]);
        memcpy(param_values(&m->params[q]), v, sizeof(float) * (size_t)param_count(&m->params[q]));
        free(v);
    }
}

/* The model the reference describes: 2 blocks, 2 heads, 32 wide, bytes. */
static rw_model *ref_model(int bias, double sparsity)
{
    rw_gpt_config c = rw_gpt_config_default();
    c.vocab = VOCAB;
    c.context = CONTEXT;
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = DIM;
    c.bias = bias;
    c.sparsity = sparsity;
    c.seed = 3;
    rw_model *m;
    if (rw_gpt_create(&c, &m) != RW_OK) fail_msg("%s", rw_last_error());
    return m;
}

/* ---- Passes --------------------------------------------------------------- */

/* The mean loss over the counted targets of the logits as they are (no
 * forward pass); with `grad` the loss layer also writes the logits'
 * gradient, without it no gradient of the workspace changes. */
static double loss_now(const rw_model *m, workspace *ws, const int32_t *targets, int n, int grad)
{
    tensor logits = ws->t[model_logits_tensor(m)];
    if (!grad) logits.grad = NULL;
    layer_io io = {.in = {&logits}, .n_in = 1, .bp = ws->bp, .n = n, .targets = targets,
                   .loss = ws->loss};
    m->loss->ops->forward(m->loss, &io);
    double total = 0;
    int counted = 0;
    for (int j = 0; j < n; j++) total += ws->loss[j], counted += targets[j] >= 0;
    return total / (counted ? counted : 1);
}

/* One pass over `n` tokens in sequences of seq_len: forward, the loss
 * and, with `backward`, every gradient. Returns the loss. */
static double lm_pass(const rw_model *m, workspace *ws, const int32_t *tokens,
                      const int32_t *targets, int n, int seq_len, int backward)
{
    ws->tokens = tokens;
    ws->n = n;
    ws->seq_len = seq_len;
    ws->pos0 = 0;
    network_forward(m, ws);
    double loss = loss_now(m, ws, targets, n, backward);
    if (backward) network_backward(m, ws);
    return loss;
}

/* The rest of a forward pass, from layer l0 on (the tensors before it as
 * they are). */
static void forward_from(const rw_model *m, workspace *ws, int l0)
{
    for (int l = l0; l < m->n_layers; l++) team_phase(phase_forward(m, ws, l));
}

/* Logits [vocab][bp] as [n][vocab], the reference's layout. */
static void logits_by_token(const rw_model *m, const workspace *ws, int n, float *out)
{
    const float *z = network_logits(m, ws);
    for (int j = 0; j < n; j++)
        for (int v = 0; v < VOCAB; v++) out[(size_t)j * VOCAB + v] = z[(size_t)v * ws->bp + j];
}

/* The keys' bias (rows DIM..2 DIM of a block's attn.qkv.bias) adds the
 * same q · b to every score of a query, which softmax ignores: its
 * gradient is exactly 0 and a float computes rounding noise, which AdamW
 * (dividing by the noise's own size) turns into steps of about lr. Its
 * trained values are noise in any float32 run, torch's too, so they are
 * held to the learning rate rather than to the reference (its gradient is
 * still checked, against the tensor's scale, with the others). */
static int is_key_bias(const param *p, int64_t k)
{
    const char *qkv_bias = "attn.qkv.bias";
    size_t n = strlen(p->name), tail = strlen(qkv_bias);
    return n > tail && strcmp(p->name + n - tail, qkv_bias) == 0 && k >= DIM && k < 2 * DIM;
}

/* rel_err over a parameter's entries but the keys' bias. */
static double rel_err_but_key_bias(const param *p, const float *a, const float *b)
{
    int64_t n = param_count(p), kept = 0;
    float *ka = malloc(sizeof(float) * (size_t)n), *kb = malloc(sizeof(float) * (size_t)n);
    assert_non_null(ka);
    assert_non_null(kb);
    for (int64_t k = 0; k < n; k++)
        if (!is_key_bias(p, k)) ka[kept] = a[k], kb[kept++] = b[k];
    double e = rel_err(ka, kb, kept);
    free(ka);
    free(kb);
    return e;
}

/* ---- Against PyTorch ------------------------------------------------------ */

/* Logits, loss and every gradient of one batch, and the logits of the
 * one-token path (generation's KV cache) for the first sequence. */
static void check_pass(const rw_model *m, const st_file *ref, const char *variant)
{
    int32_t tokens[N], targets[N];
    ref_read(ref, "tokens", ST_I32, N, tokens);
    ref_read(ref, "targets", ST_I32, N, targets);
    float *want_logits = malloc(sizeof(float) * N * VOCAB);
    float *logits = malloc(sizeof(float) * N * VOCAB);
    float want_loss;
    ref_read(ref, "logits", ST_F32, (int64_t)N * VOCAB, want_logits);
    ref_read(ref, "loss", ST_F32, 1, &want_loss);
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, N, 1), RW_OK);
    double loss = lm_pass(m, &ws, tokens, targets, N, SEQ, 1);
    logits_by_token(m, &ws, N, logits);
    double e = rel_err(logits, want_logits, (int64_t)N * VOCAB);
    report("logits", e);
    assert_true(e < TOL);
    float got_loss = (float)loss;
    e = rel_err(&got_loss, &want_loss, 1);
    report("loss", e);
    assert_true(e < TOL);
    double worst = 0;
    for (int q = 0; q < m->n_params; q++) {
        const param *p = &m->params[q];
        float *want = ref_param(ref, "grad.", p);
        e = rel_err(ws.grad[q], want, param_count(p));
        if (e >= TOL) fail_msg("%s: gradient of %s off by %g", variant, p->name, e);
        worst = fmax(worst, e);
        free(want);
    }
    report("gradients (worst parameter)", worst);
    workspace_free(&ws);

    assert_int_equal(workspace_init_vector(&ws, m), RW_OK);
    worst = 0;
    for (int t = 0; t < SEQ; t++) {
        ws.tokens = tokens + t;
        ws.n = ws.seq_len = 1;
        ws.pos0 = t;
        for (int l = 0; l < m->n_layers; l++) phase_forward_vector(m, &ws, l);
        const float *want = want_logits + (size_t)t * VOCAB;
        worst = fmax(worst, rel_err(network_logits(m, &ws), want, VOCAB));
    }
    report("logits, one token at a time (worst)", worst);
    assert_true(worst < TOL);
    workspace_free(&ws);
    free(want_logits);
    free(logits);
}

/* The parameters after training against the reference's final.*, and
 * what the steps changed (final - start, the part the trainer computed):
 * torch's own float32 run is off by up to 2.7e-4 in those updates (the
 * files' torch_f32.final_update), so they are held to 1e-3. */
static void check_final(const rw_model *m, const st_file *w, const st_file *ref, double lr_sum)
{
    double worst_final = 0, worst_update = 0, key_bias = 0;
    for (int q = 0; q < m->n_params; q++) {
        const param *p = &m->params[q];
        int64_t n = param_count(p);
        float *start = ref_param(w, "", p), *want = ref_param(ref, "final.", p);
        const float *got = param_values(p);
        float *du = malloc(sizeof(float) * (size_t)n), *dw = malloc(sizeof(float) * (size_t)n);
        for (int64_t k = 0; k < n; k++) {
            du[k] = got[k] - start[k];
            dw[k] = want[k] - start[k];
            if (is_key_bias(p, k)) key_bias = fmax(key_bias, fabs((double)du[k]));
        }
        double ef = rel_err_but_key_bias(p, got, want), eu = rel_err_but_key_bias(p, du, dw);
        if (ef >= TOL || eu >= 1e-3)
            fail_msg("%s after 10 steps off by %g (its update by %g)", p->name, ef, eu);
        worst_final = fmax(worst_final, ef);
        worst_update = fmax(worst_update, eu);
        free(start);
        free(want);
        free(du);
        free(dw);
    }
    report("AdamW: parameters after 10 steps (worst)", worst_final);
    report("AdamW: their updates (worst)", worst_update);
    report("AdamW: the keys' bias moved at most", key_bias);
    assert_true(key_bias <= 2 * lr_sum);
}

/* Ten AdamW steps, a new batch each, in a trainer whose batch has padding
 * columns past the tokens: each step's loss, and the parameters after
 * them when the file has them (the bias variant). */
static void check_training(rw_model *m, const st_file *w, const st_file *ref, int with_final)
{
    int32_t tokens[STEPS * N], targets[STEPS * N];
    float lr[STEPS], want_losses[STEPS], losses[STEPS];
    ref_read(ref, "train.tokens", ST_I32, STEPS * N, tokens);
    ref_read(ref, "train.targets", ST_I32, STEPS * N, targets);
    ref_read(ref, "train.lr", ST_F32, STEPS, lr);
    ref_read(ref, "train.loss", ST_F32, STEPS, want_losses);
    rw_train_config tc = rw_train_config_default();
    tc.optimizer = RW_OPT_ADAMW;
    tc.lr = lr[STEPS - 1];
    tc.beta1 = 0.9f;
    tc.beta2 = 0.99f;
    tc.eps = 1e-8f;
    tc.weight_decay = 0.1f;
    tc.clip_norm = 1.0f;
    tc.batch = N + 5;
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    assert_true(t->ws.bp > N);
    double worst = 0, lr_sum = 0;
    for (int s = 0; s < STEPS; s++) {
        double l;
        rw_status st = trainer_lm_step(t, tokens + s * N, targets + s * N, BATCH, SEQ, s + 1, STEPS,
                                       lr[s], &l);
        if (st != RW_OK) fail_msg("%s", rw_last_error());
        losses[s] = (float)l;
        worst = fmax(worst, rel_err(&losses[s], &want_losses[s], 1));
        lr_sum += lr[s];
    }
    report("AdamW: losses of 10 steps (worst)", worst);
    assert_true(worst < TOL);
    assert_true((st_find(ref, "final.embed.wte") != NULL) == with_final);
    if (with_final) check_final(m, w, ref, lr_sum);
    rw_trainer_free(t);
}

static void check_variant(const char *variant, int bias)
{
    st_file w, ref;
    open_ref("weights", &w);
    open_ref(variant, &ref);
    if (show)
        print_message("%s (torch float32 vs float64: logits %s, gradients %s, updates %s)\n",
                      variant, st_meta(&ref, "torch_f32.logits"), st_meta(&ref, "torch_f32.grad"),
                      st_meta(&ref, "torch_f32.final_update"));
    rw_model *m = ref_model(bias, 0);
    assert_int_equal(m->n_params, bias ? 28 : 15); /* wte, wpe, 2 x (2 LN + 4 maps), ln_f; biases */
    set_weights(m, &w);
    check_pass(m, &ref, variant);
    check_training(m, &w, &ref, bias);
    rw_model_free(m);
    st_file_free(&w);
    st_file_free(&ref);
}

static void test_no_bias_matches_pytorch(void **state)
{
    (void)state;
    check_variant("nobias", 0);
}

static void test_bias_matches_pytorch(void **state)
{
    (void)state;
    check_variant("bias", 1);
}

/* ---- Sparse against dense --------------------------------------------------
 * A model whose four maps per block are CSR, against the dense model
 * holding the same weights at the stored positions and zeros elsewhere
 * (dense x mask). The dense model's path is the one held to PyTorch
 * above, so this holds the sparse kernels to PyTorch's dense x mask
 * without a reference file per pattern: the logits and loss agree, and
 * so do the gradients at the stored entries (the dense gradient gathered
 * there) and of every dense parameter, to 1e-5 (the two sum in other
 * orders; they differ by about 5e-7). */
static void test_sparse_matches_dense_masked(void **state)
{
    (void)state;
    st_file w, ref;
    open_ref("weights", &w);
    open_ref("bias", &ref);
    int32_t tokens[N], targets[N];
    ref_read(&ref, "tokens", ST_I32, N, tokens);
    ref_read(&ref, "targets", ST_I32, N, targets);
    targets[7] = targets[30] = -1; /* ignored columns too */
    rw_model *sparse = ref_model(1, 0.6), *dense = ref_model(1, 0);
    set_weights(sparse, &w);
    set_weights(dense, &w);
    assert_int_equal(sparse->n_params, dense->n_params);
    int maps = 0;
    for (int q = 0; q < dense->n_params; q++) {
        param *ps = &sparse->params[q], *pd = &dense->params[q];
        assert_string_equal(ps->name, pd->name);
        if (param_count(ps) == param_count(pd)) continue;
        /* The dense weight keeps only the sparse map's stored entries. */
        maps++;
        size_t all = (size_t)param_dense_count(pd);
        float *masked = calloc(all, sizeof(float));
        param_to_dense(ps, masked);
        memcpy(param_values(pd), masked, sizeof(float) * all);
        free(masked);
    }
    assert_int_equal(maps, 8);
    assert_true(rw_model_sparsity(sparse) > 0.55);

    workspace ws_s, ws_d;
    assert_int_equal(workspace_init(&ws_s, sparse, N, 1), RW_OK);
    assert_int_equal(workspace_init(&ws_d, dense, N, 1), RW_OK);
    double ls = lm_pass(sparse, &ws_s, tokens, targets, N, SEQ, 1);
    double ld = lm_pass(dense, &ws_d, tokens, targets, N, SEQ, 1);
    float *zs = malloc(sizeof(float) * N * VOCAB), *zd = malloc(sizeof(float) * N * VOCAB);
    logits_by_token(sparse, &ws_s, N, zs);
    logits_by_token(dense, &ws_d, N, zd);
    double e = rel_err(zs, zd, (int64_t)N * VOCAB);
    if (show) print_message("sparse (%.2f) against dense x mask\n", rw_model_sparsity(sparse));
    report("logits", e);
    assert_true(e < 1e-5);
    e = fabs(ls - ld) / ld;
    report("loss", e);
    assert_true(e < 1e-5);
    double worst = 0;
    for (int q = 0; q < dense->n_params; q++) {
        const param *ps = &sparse->params[q];
        float *want = malloc(sizeof(float) * (size_t)param_count(ps));
        gather_stored(ps, ws_d.grad[q], want);
        e = rel_err(ws_s.grad[q], want, param_count(ps));
        if (e >= 1e-5) fail_msg("sparse model: gradient of %s off by %g", ps->name, e);
        worst = fmax(worst, e);
        free(want);
    }
    report("gradients at the stored entries (worst)", worst);
    /* What RigL grows by: the dense gradient dY · Xᵀ from the tensors the
     * parameter names, at every position, stored or not. */
    worst = 0;
    for (int q = 0; q < sparse->n_params; q++) {
        const param *ps = &sparse->params[q];
        if (!param_is_sparse(ps)) continue;
        const float *dy = ws_s.t[ps->y_tensor].grad, *x = ws_s.t[ps->x_tensor].data;
        int64_t all = (int64_t)ps->rows * ps->cols;
        float *g = calloc((size_t)all, sizeof(float));
        for (int o = 0; o < ps->rows; o++)
            for (int i = 0; i < ps->cols; i++) {
                double acc = 0;
                for (int c = 0; c < ws_s.bp; c++)
                    acc += (double)dy[(size_t)o * ws_s.bp + c] * x[(size_t)i * ws_s.bp + c];
                g[(size_t)o * ps->cols + i] = (float)acc;
            }
        e = rel_err(g, ws_d.grad[q], all);
        if (e >= 1e-5) fail_msg("sparse model: dY x X^T of %s off by %g", ps->name, e);
        worst = fmax(worst, e);
        free(g);
    }
    report("growth's dense gradients dY x X^T (worst)", worst);
    free(zs);
    free(zd);
    workspace_free(&ws_s);
    workspace_free(&ws_d);
    rw_model_free(sparse);
    rw_model_free(dense);
    st_file_free(&w);
    st_file_free(&ref);
}

/* ---- Threads ---------------------------------------------------------------
 * Every pass of every layer splits its work so that no sum depends on the
 * threads: with CSR maps, one and two threads give the same bytes for a
 * forward and backward pass and for three training steps (the optimizer
 * and the clipping norm too). Dense maps are OpenBLAS's products split
 * among the threads (linear_dense.c), whose sums OpenBLAS orders by the
 * shape of each call: rewire.h says their results can depend on the
 * thread count, so the dense model is held to rounding, not to bytes. */
typedef struct {
    float *logits, **grad, **params;
    double losses[3];
    int n_params;
} run_bytes;

static void run_threads(int threads, double sparsity, run_bytes *out)
{
    int before = rw_get_num_threads();
    rw_set_num_threads(threads);
    st_file w, ref;
    open_ref("weights", &w);
    open_ref("nobias", &ref);
    int32_t tokens[STEPS * N], targets[STEPS * N]; /* the first three batches are used */
    ref_read(&ref, "train.tokens", ST_I32, STEPS * N, tokens);
    ref_read(&ref, "train.targets", ST_I32, STEPS * N, targets);
    rw_model *m = ref_model(1, sparsity);
    set_weights(m, &w);
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, N, 1), RW_OK);
    assert_true(threads == 1 || network_worth_threading(m, ws.bp)); /* two threads do run */
    lm_pass(m, &ws, tokens, targets, N, SEQ, 1);
    out->n_params = m->n_params;
    out->logits = malloc(sizeof(float) * N * VOCAB);
    out->grad = calloc((size_t)m->n_params, sizeof(float *));
    out->params = calloc((size_t)m->n_params, sizeof(float *));
    logits_by_token(m, &ws, N, out->logits);
    for (int q = 0; q < m->n_params; q++) {
        size_t bytes = sizeof(float) * (size_t)param_count(&m->params[q]);
        out->grad[q] = malloc(bytes);
        memcpy(out->grad[q], ws.grad[q], bytes);
    }
    workspace_free(&ws);
    rw_train_config tc = rw_train_config_default();
    tc.optimizer = RW_OPT_ADAMW;
    tc.lr = 1e-3f;
    tc.beta2 = 0.99f;
    tc.weight_decay = 0.1f;
    tc.clip_norm = 1.0f;
    tc.batch = N;
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    for (int s = 0; s < 3; s++)
        assert_int_equal(trainer_lm_step(t, tokens + s * N, targets + s * N, BATCH, SEQ, s + 1, 3,
                                         1e-3f, &out->losses[s]),
                         RW_OK);
    for (int q = 0; q < m->n_params; q++) {
        size_t bytes = sizeof(float) * (size_t)param_count(&m->params[q]);
        out->params[q] = malloc(bytes);
        memcpy(out->params[q], param_values(&m->params[q]), bytes);
    }
    rw_trainer_free(t);
    rw_model_free(m);
    st_file_free(&w);
    st_file_free(&ref);
    rw_set_num_threads(before);
}

static void free_run(run_bytes *r)
{
    for (int q = 0; q < r->n_params; q++) free(r->grad[q]), free(r->params[q]);
    free(r->grad);
    free(r->params);
    free(r->logits);
}

/* The largest difference between the runs, 0 when every byte is the same. */
static double compare_runs(const rw_model *m, const run_bytes *a, const run_bytes *b)
{
    double worst = rel_err(a->logits, b->logits, (int64_t)N * VOCAB);
    assert_int_equal(a->n_params, m->n_params);
    assert_int_equal(b->n_params, m->n_params);
    for (int q = 0; q < m->n_params; q++) {
        int64_t n = param_count(&m->params[q]);
        double eg = rel_err(a->grad[q], b->grad[q], n);
        double ep = rel_err_but_key_bias(&m->params[q], a->params[q], b->params[q]);
        if (show && (eg > 0 || ep > 0))
            print_message("  %s: gradient %.3g, after 3 steps %.3g\n", m->params[q].name, eg, ep);
        worst = fmax(worst, fmax(eg, ep));
    }
    for (int s = 0; s < 3; s++)
        worst = fmax(worst, fabs(a->losses[s] - b->losses[s]) / b->losses[s]);
    return worst;
}

static void test_threads(void **state)
{
    (void)state;
    const double sparsity[] = {0.6, 0};
    for (int k = 0; k < 2; k++) {
        run_bytes one, two;
        run_threads(1, sparsity[k], &one);
        run_threads(2, sparsity[k], &two);
        rw_model *m = ref_model(1, sparsity[k]); /* for the names and counts */
        double e = compare_runs(m, &one, &two);
        if (show) print_message("1 against 2 threads, sparsity %g: %.3g\n", sparsity[k], e);
        if (sparsity[k] > 0 && e != 0)
            fail_msg("sparse model: 1 and 2 threads differ (by %g)", e);
        if (e > 1e-5) fail_msg("dense model: 1 and 2 threads differ by %g", e);
        rw_model_free(m);
        free_run(&one);
        free_run(&two);
    }
}

/* ---- Finite differences ----------------------------------------------------
 * A tiny GPT (11 tokens, 6 positions, 1 block of width 4 with 2 heads,
 * biases) on 2 sequences of 5 tokens, some targets ignored, in a batch
 * padded to 16 columns, every value re-drawn wide, so that no layer
 * works near its linear regime. Central differences of the loss against
 * the analytic gradients: of every parameter (wte gets the head's part and
 * the embedding's), and of every tensor of the graph at the valid columns
 * (the input gradient each layer kind writes: the embedding's output, the
 * attention's input qkv, the residual's inputs, the head's input, the
 * logits of the token cross-entropy). */
enum { FD_VOCAB = 11, FD_CONTEXT = 6, FD_SEQ = 5, FD_N = 2 * FD_SEQ };

/* Tokens repeat within and across the sequences: the embedding adds their
 * rows of wte's gradient. */
static const int32_t fd_tokens[FD_N] = {3, 7, 7, 0, 10, 5, 1, 9, 3, 2};
static const int32_t fd_targets[FD_N] = {7, -1, 0, 10, 5, 1, 9, -1, 2, 4};

static rw_model *tiny_gpt(void)
{
    rw_gpt_config c = rw_gpt_config_default();
    c.vocab = FD_VOCAB;
    c.context = FD_CONTEXT;
    c.n_layer = 1;
    c.n_head = 2;
    c.n_embd = 4;
    c.bias = 1;
    rw_model *m;
    assert_int_equal(rw_gpt_create(&c, &m), RW_OK);
    rng_state r;
    rng_seed(&r, 29);
    for (int q = 0; q < m->n_params; q++) {
        const param *p = &m->params[q];
        int gain = p->cols == 1 && strstr(p->name, "ln") && strstr(p->name, ".weight");
        tu_fill_uniform(param_values(p), (size_t)param_count(p), gain ? 0.5f : -1.0f,
                        gain ? 1.5f : 1.0f, &r);
    }
    return m;
}

/* |analytic - numeric| / max(2e-2, |analytic| + |numeric|): against the
 * gradient's size, with a floor for gradients near 0, as float32 losses
 * differenced over 2h = 2e-2 carry about 1e-5 of rounding noise. Correct
 * gradients stay under 3e-3 here; 5e-3 fails a position embedding's
 * gradient 2% short. */
static double fd_error(double analytic, double numeric)
{
    return fabs(analytic - numeric) / fmax(2e-2, fabs(analytic) + fabs(numeric));
}

static int fd_close(double analytic, double numeric) { return fd_error(analytic, numeric) <= 5e-3; }

/* Central differences against the analytic gradients of the model's
 * parameters and of every tensor of its graph at the valid columns (a
 * tensor is moved and the layers after it run again; a fused GELU's
 * gradient is the pre-activation's: that is moved and activated). Returns
 * how many parameter entries it checked; *worst gets the largest
 * |a - n| / max(2e-2, |a| + |n|). */
static int check_by_differences(rw_model *m, const int32_t *tokens, const int32_t *targets, int n,
                                int seq_len, double *worst)
{
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, n, 1), RW_OK);
    assert_true(ws.bp > n); /* padding columns too */
    lm_pass(m, &ws, tokens, targets, n, seq_len, 1);
    const double h = 1e-2;
    int checked = 0;
    for (int q = 0; q < m->n_params; q++) {
        const param *p = &m->params[q];
        float *v = param_values(p);
        for (int64_t k = 0; k < param_count(p); k++) {
            float keep = v[k];
            v[k] = (float)(keep + h);
            double up = lm_pass(m, &ws, tokens, targets, n, seq_len, 0);
            v[k] = (float)(keep - h);
            double down = lm_pass(m, &ws, tokens, targets, n, seq_len, 0);
            v[k] = keep;
            double numeric = (up - down) / (2 * h), analytic = ws.grad[q][k];
            if (!fd_close(analytic, numeric))
                fail_msg("%s[%lld]: analytic %g, numeric %g", p->name, (long long)k, analytic,
                         numeric);
            *worst = fmax(*worst, fd_error(analytic, numeric));
            checked++;
        }
    }
    lm_pass(m, &ws, tokens, targets, n, seq_len, 1);
    for (int l = 0; l < m->n_layers; l++) {
        tensor *t = &ws.t[m->layers[l]->output];
        for (int r = 0; r < t->rows; r++)
            for (int j = 0; j < n; j++) {
                size_t k = (size_t)r * ws.bp + j;
                float keep = t->pre[k];
                double sum[2];
                for (int side = 0; side < 3; side++) { /* +h, -h, then back */
                    t->pre[k] = side == 2 ? keep : (float)(keep + (side ? -h : h));
                    if (t->pre != t->data)
                        activation_forward_range(t->act, t->slope, t->pre + k, t->data + k, 1);
                    forward_from(m, &ws, l + 1);
                    if (side < 2) sum[side] = loss_now(m, &ws, targets, n, 0);
                }
                double numeric = (sum[0] - sum[1]) / (2 * h), analytic = t->grad[k];
                if (!fd_close(analytic, numeric))
                    fail_msg("tensor %s [%d][%d]: analytic %g, numeric %g", t->name, r, j, analytic,
                             numeric);
                *worst = fmax(*worst, fd_error(analytic, numeric));
            }
    }
    workspace_free(&ws);
    return checked;
}

static void test_finite_differences(void **state)
{
    (void)state;
    rw_model *m = tiny_gpt();
    double worst = 0;
    /* wte 44, wpe 24, 3 LayerNorms of 2 x 4, qkv 48 + 12, proj 16 + 4, up 64 + 16, down 64 + 4 */
    assert_int_equal(check_by_differences(m, fd_tokens, fd_targets, FD_N, FD_SEQ, &worst), 320);
    /* Positions past the sequences' length get nothing. */
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, FD_N, 1), RW_OK);
    lm_pass(m, &ws, fd_tokens, fd_targets, FD_N, FD_SEQ, 1);
    assert_string_equal(m->params[1].name, "embed.wpe");
    for (int k = FD_SEQ * 4; k < FD_CONTEXT * 4; k++) assert_true(ws.grad[1][k] == 0.0f);
    workspace_free(&ws);
    rw_model_free(m);
    if (show) print_message("finite differences, tiny GPT: worst %.3g\n", worst);
}

/* A GPT's residual is the last reader of its stream, so it never adds to
 * a gradient another layer wrote. A graph where it does: the embedding's
 * output e is read by a LayerNorm, by a = e + ln(e), and by b = a + e,
 * then the tied head reads b. Backward: b writes e's gradient, a and the
 * LayerNorm add theirs. */
static void test_finite_differences_shared_inputs(void **state)
{
    (void)state;
    rw_model *m = model_alloc(5);
    assert_non_null(m);
    layer_free(m->loss);
    m->loss = loss_token_xent_new();
    m->inputs = 0;
    m->layers[0] = embedding_new("embed", FD_VOCAB, FD_CONTEXT, 4);
    m->layers[1] = layer_norm_new("ln", 4, 1e-5f, 1, 1);
    m->layers[2] = residual_new("a", 4, 1, 2, 2);
    m->layers[3] = residual_new("b", 4, 3, 1, 3);
    m->layers[4] = lm_head_new("lm_head", "embed", FD_VOCAB, 4, 4, 4);
    for (int l = 0; l < 5; l++) assert_non_null(m->layers[l]);
    assert_int_equal(model_gather_params(m), RW_OK);
    assert_true(m->layers[2]->accumulate[0] && !m->layers[3]->accumulate[1]);
    rng_state r;
    rng_seed(&r, 31);
    for (int q = 0; q < m->n_params; q++)
        tu_fill_uniform(param_values(&m->params[q]), (size_t)param_count(&m->params[q]), -1, 1, &r);
    double worst = 0;
    assert_int_equal(check_by_differences(m, fd_tokens, fd_targets, FD_N, FD_SEQ, &worst),
                     (FD_VOCAB + FD_CONTEXT) * 4 + 2 * 4);
    if (show) print_message("finite differences, shared inputs: worst %.3g\n", worst);
    rw_model_free(m);
}

/* The token cross-entropy alone: its loss is the mean over the counted
 * targets of -log softmax (in double here), its gradient (softmax -
 * onehot) / count there and 0 at ignored and padding columns. */
static void test_token_cross_entropy(void **state)
{
    (void)state;
    enum { V = 7, NC = 10, BP = 16 };
    const int32_t targets[NC] = {3, -1, 0, 6, -1, -1, 2, 5, 1, 4};
    float z[V * BP] = {0}, g[V * BP];
    rng_state r;
    rng_seed(&r, 5);
    for (int v = 0; v < V; v++) tu_fill_uniform(z + v * BP, NC, -3, 3, &r);
    rw_model *m = tiny_gpt(); /* for its loss layer */
    layer *ly = m->loss;
    tensor logits = {"logits", V, RW_ACT_NONE, 0.01f, z, z, g};
    double loss[BP];
    layer_io io = {.in = {&logits}, .n_in = 1, .bp = BP, .n = NC, .targets = targets, .loss = loss};
    memset(g, 0x7f, sizeof g); /* every entry must be written */
    ly->ops->forward(ly, &io);
    double want = 0;
    int count = 0;
    for (int j = 0; j < NC; j++) {
        double best = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) best = fmax(best, z[v * BP + j]);
        for (int v = 0; v < V; v++) sum += exp(z[v * BP + j] - best);
        for (int v = 0; v < V; v++) {
            double p = exp(z[v * BP + j] - best) / sum;
            double want_g = targets[j] < 0 ? 0 : (p - (v == targets[j])) / 7; /* 7 counted */
            if (fabs(g[v * BP + j] - want_g) > 1e-6)
                fail_msg("dlogits[%d][%d] = %g, expected %g", v, j, g[v * BP + j], want_g);
        }
        if (targets[j] < 0) {
            assert_true(loss[j] == 0.0);
            continue;
        }
        double lj = log(sum) + best - z[targets[j] * BP + j];
        assert_true(fabs(loss[j] - lj) < 1e-5);
        want += lj;
        count++;
    }
    assert_int_equal(count, 7);
    for (int v = 0; v < V; v++)
        for (int j = NC; j < BP; j++) assert_true(g[v * BP + j] == 0.0f);
    double got = 0;
    for (int j = 0; j < NC; j++) got += loss[j];
    assert_true(fabs(got / count - want / count) < 1e-6);
    rw_model_free(m);
}

int main(void)
{
    show = getenv("RW_TEST_SHOW") != NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_bias_matches_pytorch),
        cmocka_unit_test(test_bias_matches_pytorch),
        cmocka_unit_test(test_sparse_matches_dense_masked),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_finite_differences_shared_inputs),
        cmocka_unit_test(test_token_cross_entropy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
