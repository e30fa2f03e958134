/* The mixture-of-experts layer (nn/moe.c): outputs and every gradient
 * (router through the top-k gates, balance and z-loss included) against
 * PyTorch autograd (tools/make_moe_reference.py), a finite-difference
 * check on CSR experts, one expert with k = 1 against the dense MLP bit
 * for bit, and a model file round trip of a GPT with experts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "nn/linear.h"
#include "nn/model.h"
#include "nn/moe.h"
#include "nn/network.h"
#include "testutil.h"

/* A layer with its own buffers, for direct forward and backward calls. */
typedef struct {
    layer *ly;
    int bp, n, C, n_params;
    param p[LAYER_MAX_PARAMS];
    float *grad[LAYER_MAX_PARAMS];
    float *x, *dx, *y, *dy, *scratch;
    tensor in, out;
} rig;

static void rig_init(rig *r, layer *ly, int n)
{
    memset(r, 0, sizeof *r);
    r->ly = ly;
    r->n = n;
    r->bp = rw_pad_batch(n);
    r->C = ly->in;
    r->n_params = ly->ops->params(ly, r->p);
    for (int k = 0; k < r->n_params; k++)
        r->grad[k] = rw_alloc(sizeof(float) * (size_t)param_count(&r->p[k]));
    size_t t = (size_t)r->C * r->bp;
    r->x = rw_alloc(sizeof(float) * t);
    r->dx = rw_alloc(sizeof(float) * t);
    r->y = rw_alloc(sizeof(float) * t);
    r->dy = rw_alloc(sizeof(float) * t);
    memset(r->x, 0, sizeof(float) * t);
    memset(r->dy, 0, sizeof(float) * t);
    r->scratch = rw_alloc(sizeof(float) * (size_t)ly->ops->scratch_floats(ly, r->bp));
    r->in = (tensor){"x", r->C, RW_ACT_NONE, 0.01f, r->x, r->x, r->dx};
    r->out = (tensor){"y", r->C, RW_ACT_NONE, 0.01f, r->y, r->y, r->dy};
}

static void rig_run(rig *r)
{
    layer_io io = {.in = {&r->in}, .n_in = 1, .out = &r->out, .bp = r->bp, .n = r->n,
                   .grad = r->grad, .scratch = r->scratch, .seq_len = r->n};
    r->ly->ops->forward(r->ly, &io);
    r->ly->ops->backward(r->ly, &io);
}

static void rig_free(rig *r)
{
    for (int k = 0; k < r->n_params; k++) rw_free(r->grad[k]);
    rw_free(r->x);
    rw_free(r->dx);
    rw_free(r->y);
    rw_free(r->dy);
    rw_free(r->scratch);
    layer_free(r->ly);
}

/* The gradient array of the parameter called `name`. */
static float *grad_of(rig *r, const char *name)
{
    for (int k = 0; k < r->n_params; k++)
        if (strcmp(r->p[k].name, name) == 0) return r->grad[k];
    fail_msg("no parameter %s", name);
    return NULL;
}

static void read_floats(const st_file *f, const char *name, float *out, int64_t n)
{
    const st_tensor *t = st_find(f, name);
    if (!t) fail_msg("reference tensor %s missing", name);
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->count, n);
    memcpy(out, t->data, t->nbytes);
}

/* A dense map of in → out with its bias, drawn or zero. */
static layer *dense_map(const char *name, int in, int out, rw_activation act, rng_state *rs)
{
    float *w = rw_alloc(sizeof(float) * (size_t)in * out), *b = rw_alloc(sizeof(float) * (size_t)out);
    tu_fill_uniform(w, (size_t)in * out, -0.5f, 0.5f, rs);
    tu_fill_uniform(b, (size_t)out, -0.1f, 0.1f, rs);
    return linear_dense_new(name, in, out, act, 0.01f, 0, w, b);
}

static layer *csr_map(const char *name, int in, int out, rw_activation act, rng_state *rs)
{
    csr_matrix w;
    tu_random_csr(&w, out, in, 0.6, rs);
    float *b = rw_alloc(sizeof(float) * (size_t)out);
    tu_fill_uniform(b, (size_t)out, -0.1f, 0.1f, rs);
    return linear_csr_new(name, in, out, act, 0.01f, 0, &w, b);
}

static layer *make_moe(const moe_config *c, int C, int sparse, uint64_t seed)
{
    rng_state rs;
    rng_seed(&rs, seed);
    layer *maps[2 * MOE_MAX_EXPERTS];
    for (int k = 0; k < 2 * c->experts; k++) {
        char name[64];
        snprintf(name, sizeof name, "moe.e%d.%s", k / 2, k % 2 ? "down" : "up");
        int up = k % 2 == 0;
        maps[k] = (sparse ? csr_map : dense_map)(name, up ? C : c->hidden, up ? c->hidden : C,
                                                 up ? RW_ACT_GELU : RW_ACT_NONE, &rs);
    }
    float *gate = rw_alloc(sizeof(float) * (size_t)c->experts * C);
    tu_fill_uniform(gate, (size_t)c->experts * C, -1.0f, 1.0f, &rs);
    layer *ly = moe_new("moe", C, c, maps, gate, 0, 0);
    assert_non_null(ly);
    return ly;
}

/* x and dy in, sample-major [n][C] from the fixture. */
static void load_columns(rig *r, const float *src, float *dst)
{
    for (int j = 0; j < r->n; j++)
        for (int c = 0; c < r->C; c++) dst[(size_t)c * r->bp + j] = src[(size_t)j * r->C + c];
}

static double diff_columns(const rig *r, const float *got, const float *want)
{
    double worst = 0;
    for (int j = 0; j < r->n; j++)
        for (int c = 0; c < r->C; c++) {
            double d = fabs((double)got[(size_t)c * r->bp + j] - want[(size_t)j * r->C + c]) /
                       fmax(1.0, fabs((double)want[(size_t)j * r->C + c]));
            worst = d > worst || isnan(d) ? d : worst;
        }
    return worst;
}

enum { N = 13, C = 6, H = 5 };

static void check_case(const char *prefix, int experts, int k, double capacity, moe_gate gate)
{
    st_file ref;
    assert_int_equal(st_read("data/reference/moe.ref.safetensors", &ref), RW_OK);
    moe_config c = {experts, k, H, gate, capacity, 0.1f, 0.01f, 0.1f};
    layer *ly = make_moe(&c, C, 0, 1);
    rig r;
    rig_init(&r, ly, N);
    char name[64];
    float buf[N * C], want[64 * 64];
    for (int e = 0; e < experts; e++) {
        param p[2];
        layer *up = moe_map(ly, e, 0), *down = moe_map(ly, e, 1);
        up->ops->params(up, p);
        snprintf(name, sizeof name, "%s.w1.%d", prefix, e);
        read_floats(&ref, name, param_values(&p[0]), H * C);
        snprintf(name, sizeof name, "%s.b1.%d", prefix, e);
        read_floats(&ref, name, param_values(&p[1]), H);
        down->ops->params(down, p);
        snprintf(name, sizeof name, "%s.w2.%d", prefix, e);
        read_floats(&ref, name, param_values(&p[0]), C * H);
        snprintf(name, sizeof name, "%s.b2.%d", prefix, e);
        read_floats(&ref, name, param_values(&p[1]), C);
    }
    snprintf(name, sizeof name, "%s.gate_w", prefix);
    read_floats(&ref, name, moe_gate_weights(ly), experts * C);
    snprintf(name, sizeof name, "%s.x", prefix);
    read_floats(&ref, name, buf, N * C);
    load_columns(&r, buf, r.x);
    snprintf(name, sizeof name, "%s.dy", prefix);
    read_floats(&ref, name, buf, N * C);
    load_columns(&r, buf, r.dy);
    rig_run(&r);

    snprintf(name, sizeof name, "%s.y", prefix);
    read_floats(&ref, name, buf, N * C);
    double ey = diff_columns(&r, r.y, buf);
    snprintf(name, sizeof name, "%s.dx", prefix);
    read_floats(&ref, name, buf, N * C);
    double edx = diff_columns(&r, r.dx, buf);
    if (ey > 1e-4 || edx > 1e-4) fail_msg("%s: y off by %g, dx by %g", prefix, ey, edx);
    static const char *const fields[4] = {"dw1", "db1", "dw2", "db2"};
    static const char *const params[4] = {"up.weight", "up.bias", "down.weight", "down.bias"};
    const int sizes[4] = {H * C, H, C * H, C};
    for (int e = 0; e < experts; e++)
        for (int f = 0; f < 4; f++) {
            snprintf(name, sizeof name, "%s.%s.%d", prefix, fields[f], e);
            read_floats(&ref, name, want, sizes[f]);
            char pn[64];
            snprintf(pn, sizeof pn, "moe.e%d.%s", e, params[f]);
            double d = tu_max_rel_diff(grad_of(&r, pn), want, (size_t)sizes[f]);
            if (d > 1e-4) fail_msg("%s: gradient of %s off by %g", prefix, pn, d);
        }
    moe_stats st;
    moe_stats_take(ly, &st);
    snprintf(name, sizeof name, "%s.dropped", prefix);
    read_floats(&ref, name, want, 1);
    assert_int_equal(st.dropped, (int64_t)want[0]);
    if (gate == MOE_GATE_SOFTMAX) {
        snprintf(name, sizeof name, "%s.dgate_w", prefix);
        read_floats(&ref, name, want, experts * C);
        double d = tu_max_rel_diff(grad_of(&r, "moe.router.weight"), want, (size_t)experts * C);
        if (d > 1e-4) fail_msg("%s: router gradient off by %g", prefix, d);
    } else { /* one k-means step moves the centroids to the reference's */
        assert_int_equal(r.n_params, 4 * experts); /* centroids are not a parameter */
        assert_int_equal(ly->ops->after_step(ly, 1, 1), experts);
        snprintf(name, sizeof name, "%s.centroids_after", prefix);
        read_floats(&ref, name, want, experts * C);
        double d = tu_max_rel_diff(moe_gate_weights(ly), want, (size_t)experts * C);
        if (d > 1e-5) fail_msg("%s: centroids after a k-means step off by %g", prefix, d);
    }
    /* No gradient reaches the padding columns. */
    for (int f = 0; f < C; f++)
        for (int j = N; j < r.bp; j++) assert_true(r.dx[(size_t)f * r.bp + j] == 0.0f);
    rig_free(&r);
    st_file_free(&ref);
}

static void test_top2_dropless_matches_pytorch(void **state)
{
    (void)state;
    check_case("k2", 4, 2, 0.0, MOE_GATE_SOFTMAX);
}

static void test_top1_capacity_matches_pytorch(void **state)
{
    (void)state;
    check_case("k1", 3, 1, 1.0, MOE_GATE_SOFTMAX);
}

static void test_kmeans_matches_pytorch(void **state)
{
    (void)state;
    check_case("km", 3, 1, 0.0, MOE_GATE_KMEANS);
}

/* The loss the finite differences see: sum(y · dy) plus the auxiliary
 * losses as the layer weighs them. */
static double rig_loss(rig *r, const moe_config *c)
{
    rig_run(r);
    double s = 0;
    for (int f = 0; f < r->C; f++)
        for (int j = 0; j < r->n; j++) s += (double)r->y[(size_t)f * r->bp + j] * r->dy[(size_t)f * r->bp + j];
    moe_stats st;
    moe_stats_take(r->ly, &st);
    return s + c->balance * st.balance_loss + c->zloss * st.z_loss;
}

/* Central differences over inputs, router weights and CSR expert weights
 * of a top-2 layer with both auxiliary losses. */
static void test_finite_differences(void **state)
{
    (void)state;
    enum { FC = 8, FH = 12, FN = 20 };
    moe_config c = {4, 2, FH, MOE_GATE_SOFTMAX, 0.0, 0.5f, 0.05f, 0.1f};
    layer *ly = make_moe(&c, FC, 1, 7);
    rig r;
    rig_init(&r, ly, FN);
    rng_state rs;
    rng_seed(&rs, 8);
    for (int f = 0; f < FC; f++) {
        tu_fill_uniform(r.x + (size_t)f * r.bp, FN, -1.5f, 1.5f, &rs);
        tu_fill_uniform(r.dy + (size_t)f * r.bp, FN, -1.0f, 1.0f, &rs);
    }
    rig_loss(&r, &c);
    /* What the analytic pass says, copied before the probes overwrite it. */
    float *targets[3] = {r.x, moe_gate_weights(ly), param_values(&r.p[2])};
    int64_t counts[3] = {(int64_t)FC * r.bp, 4 * FC, param_count(&r.p[2])};
    float *analytic[3];
    analytic[0] = malloc(sizeof(float) * counts[0]);
    memcpy(analytic[0], r.dx, sizeof(float) * counts[0]);
    analytic[1] = malloc(sizeof(float) * counts[1]);
    memcpy(analytic[1], grad_of(&r, "moe.router.weight"), sizeof(float) * counts[1]);
    analytic[2] = malloc(sizeof(float) * counts[2]);
    memcpy(analytic[2], r.grad[2], sizeof(float) * counts[2]);
    assert_string_equal(r.p[2].name, "moe.e0.down.weight");
    int checked = 0;
    for (int t = 0; t < 3; t++)
        for (int64_t i = 0; i < counts[t]; i += 1 + counts[t] / 23) {
            if (t == 0 && (int)(i % r.bp) >= FN) continue;
            float keep = targets[t][i], h = 2e-3f;
            targets[t][i] = keep + h;
            double up = rig_loss(&r, &c);
            targets[t][i] = keep - h;
            double down = rig_loss(&r, &c);
            targets[t][i] = keep;
            double fd = (up - down) / (2.0 * h), an = analytic[t][i];
            if (fabs(fd - an) > 2e-2 * fmax(1.0, fabs(an)))
                fail_msg("tensor %d entry %lld: finite difference %g, backward %g", t, (long long)i,
                         fd, an);
            checked++;
        }
    assert_true(checked > 40);
    for (int t = 0; t < 3; t++) free(analytic[t]);
    rig_free(&r);
}

/* One expert with k = 1 gates every token with probability 1: the output,
 * the input gradient and the maps' gradients equal the dense MLP's (the
 * same two layers run directly), bit for bit. */
static void one_expert(int sparse)
{
    enum { OC = 16, OH = 40, ON = 24 };
    moe_config c = {1, 1, OH, MOE_GATE_SOFTMAX, 0.0, 0.01f, 0.0f, 0.1f};
    layer *ly = make_moe(&c, OC, sparse, 3);
    rig r;
    rig_init(&r, ly, ON);
    rng_state rs;
    rng_seed(&rs, 4);
    for (int f = 0; f < OC; f++) {
        tu_fill_uniform(r.x + (size_t)f * r.bp, ON, -1.5f, 1.5f, &rs);
        tu_fill_uniform(r.dy + (size_t)f * r.bp, ON, -1.0f, 1.0f, &rs);
    }
    rig_run(&r);
    /* The dense MLP: the same maps over the whole batch. */
    layer *up = moe_map(ly, 0, 0), *down = moe_map(ly, 0, 1);
    size_t th = (size_t)OH * r.bp, tc = (size_t)OC * r.bp;
    float *hpre = rw_alloc(sizeof(float) * th), *h = rw_alloc(sizeof(float) * th);
    float *dh = rw_alloc(sizeof(float) * th), *y = rw_alloc(sizeof(float) * tc);
    float *dx = rw_alloc(sizeof(float) * tc);
    tensor tx = {"x", OC, RW_ACT_NONE, 0.01f, r.x, r.x, dx};
    tensor thid = {"h", OH, RW_ACT_GELU, 0.01f, h, hpre, dh};
    tensor ty = {"y", OC, RW_ACT_NONE, 0.01f, y, y, r.dy};
    param pu[2], pd[2];
    up->ops->params(up, pu);
    down->ops->params(down, pd);
    float *gu[2] = {rw_alloc(sizeof(float) * param_count(&pu[0])), rw_alloc(sizeof(float) * OH)};
    float *gd[2] = {rw_alloc(sizeof(float) * param_count(&pd[0])), rw_alloc(sizeof(float) * OC)};
    layer_io iu = {.in = {&tx}, .n_in = 1, .out = &thid, .bp = r.bp, .n = ON, .grad = gu};
    layer_io id = {.in = {&thid}, .n_in = 1, .out = &ty, .bp = r.bp, .n = ON, .grad = gd};
    up->ops->forward(up, &iu);
    down->ops->forward(down, &id);
    down->ops->backward(down, &id);
    up->ops->backward(up, &iu);
    for (int f = 0; f < OC; f++)
        for (int j = 0; j < ON; j++) {
            size_t at = (size_t)f * r.bp + j;
            if (r.y[at] != y[at] || r.dx[at] != dx[at])
                fail_msg("feature %d token %d: y %a vs %a, dx %a vs %a", f, j, r.y[at], y[at],
                         r.dx[at], dx[at]);
        }
    assert_memory_equal(grad_of(&r, "moe.e0.up.weight"), gu[0], sizeof(float) * param_count(&pu[0]));
    assert_memory_equal(grad_of(&r, "moe.e0.up.bias"), gu[1], sizeof(float) * OH);
    assert_memory_equal(grad_of(&r, "moe.e0.down.weight"), gd[0], sizeof(float) * param_count(&pd[0]));
    assert_memory_equal(grad_of(&r, "moe.e0.down.bias"), gd[1], sizeof(float) * OC);
    /* The router learns nothing from a choice of one. */
    float *gr = grad_of(&r, "moe.router.weight");
    for (int f = 0; f < OC; f++) assert_true(gr[f] == 0.0f);
    for (int k = 0; k < 2; k++) rw_free(gu[k]), rw_free(gd[k]);
    rw_free(hpre), rw_free(h), rw_free(dh), rw_free(y), rw_free(dx);
    rig_free(&r);
}

static void test_one_expert_is_the_dense_mlp(void **state)
{
    (void)state;
    one_expert(0);
    one_expert(1);
}

/* Sparse training grows from the batch an expert's map saw: its input
 * and output gradient there give the same weight gradient (dy · xᵀ on
 * the pattern) as the layer's backward pass wrote. */
static void test_expert_batches_give_the_weight_gradient(void **state)
{
    (void)state;
    enum { BC = 8, BH = 12, BN = 21 };
    moe_config c = {4, 2, BH, MOE_GATE_SOFTMAX, 1.0, 0.01f, 0.001f, 0.1f};
    layer *ly = make_moe(&c, BC, 1, 11);
    rig r;
    rig_init(&r, ly, BN);
    rng_state rs;
    rng_seed(&rs, 12);
    for (int f = 0; f < BC; f++) {
        tu_fill_uniform(r.x + (size_t)f * r.bp, BN, -1.5f, 1.5f, &rs);
        tu_fill_uniform(r.dy + (size_t)f * r.bp, BN, -1.0f, 1.0f, &rs);
    }
    rig_run(&r);
    int seen = 0;
    for (int k = 0; k < r.n_params; k++) {
        const param *p = &r.p[k];
        if (!p->is_weight) continue;
        assert_int_equal(p->x_tensor, -1);
        param_batch b;
        ly->ops->param_batch(ly, r.scratch, r.bp, k, &b);
        assert_true(b.n <= BN && b.bp % 8 == 0 && b.n <= b.bp);
        seen += b.n;
        const csr_matrix *w = p->csr;
        for (int o = 0; o < w->rows; o++)
            for (int q = w->indptr[o]; q < w->indptr[o + 1]; q++) {
                double g = 0;
                for (int j = 0; j < b.bp; j++)
                    g += (double)b.dy[(size_t)o * b.bp + j] * b.x[(size_t)w->indices[q] * b.bp + j];
                if (fabs(g - r.grad[k][q]) > 1e-4 * fmax(1.0, fabs(g)))
                    fail_msg("%s entry %d: dy x^T %g, backward %g", p->name, q, g, r.grad[k][q]);
            }
    }
    /* Each token reaches two experts, through their two maps, unless dropped. */
    moe_stats st;
    moe_stats_take(ly, &st);
    assert_int_equal(seen, 2 * (2 * BN - st.dropped));
    rig_free(&r);
}

/* A GPT with experts (sparse, top-2, dropless) saved and loaded computes
 * the same logits, and one token at a time (generation's path) the same
 * as the batch. */
static void test_gpt_file_round_trip(void **state)
{
    (void)state;
    rw_gpt_config g = rw_gpt_config_default();
    g.vocab = 32;
    g.context = 8;
    g.n_layer = 2;
    g.n_head = 2;
    g.n_embd = 16;
    g.sparsity = 0.5;
    g.moe_experts = 4;
    g.moe_top_k = 2;
    g.moe_every = 2;
    g.moe_gate = RW_MOE_SOFTMAX;
    rw_model *m, *back;
    assert_int_equal(rw_gpt_create(&g, &m), RW_OK);
    assert_int_equal(m->n_layers, 3 + 9 + 8);
    assert_true(is_moe(m->layers[1 + 9 + 6]));
    const char *path = tu_temp_path("moe.safetensors");
    assert_int_equal(rw_model_save(m, path), RW_OK);
    assert_int_equal(rw_model_load(path, &back), RW_OK);
    assert_int_equal(back->n_params, m->n_params);
    for (int p = 0; p < m->n_params; p++) {
        assert_string_equal(back->params[p].name, m->params[p].name);
        assert_int_equal(param_count(&back->params[p]), param_count(&m->params[p]));
        assert_memory_equal(param_values(&back->params[p]), param_values(&m->params[p]),
                            sizeof(float) * param_count(&m->params[p]));
    }
    workspace a, b;
    assert_int_equal(workspace_init(&a, m, 16, 0), RW_OK);
    assert_int_equal(workspace_init(&b, back, 16, 0), RW_OK);
    int32_t tokens[16];
    for (int j = 0; j < 16; j++) tokens[j] = (j * 7 + 3) % 32;
    a.tokens = b.tokens = tokens;
    a.n = b.n = 16;
    a.seq_len = b.seq_len = 8;
    network_forward(m, &a);
    network_forward(back, &b);
    const float *la = network_logits(m, &a), *lb = network_logits(back, &b);
    assert_memory_equal(la, lb, sizeof(float) * 32 * (size_t)a.bp);
    workspace v;
    assert_int_equal(workspace_init_vector(&v, m), RW_OK);
    double worst = 0;
    for (int t = 0; t < 8; t++) {
        v.tokens = tokens + t;
        v.n = v.seq_len = 1;
        v.pos0 = t;
        for (int l = 0; l < m->n_layers; l++) phase_forward_vector(m, &v, l);
        const float *one = network_logits(m, &v);
        for (int k = 0; k < 32; k++)
            worst = fmax(worst, fabs((double)one[k] - la[(size_t)k * a.bp + t]));
    }
    if (worst > 1e-5) fail_msg("one token at a time off by %g", worst);
    workspace_free(&v);
    workspace_free(&a);
    workspace_free(&b);
    rw_model_free(m);
    rw_model_free(back);
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top2_dropless_matches_pytorch),
        cmocka_unit_test(test_top1_capacity_matches_pytorch),
        cmocka_unit_test(test_kmeans_matches_pytorch),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_one_expert_is_the_dense_mlp),
        cmocka_unit_test(test_expert_batches_give_the_weight_gradient),
        cmocka_unit_test(test_gpt_file_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
