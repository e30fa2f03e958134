/* Dynamic sparse training: one update checked weight by weight, schedules,
 * the SNFS share, GraNet's pruning, and short training runs on the shipped
 * Fashion-MNIST subset (sparsity exact, thread count irrelevant). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/trainer.h"
#include "sparsity/dst.h"
#include "sparsity/grow.h"
#include "sparsity/topology.h"
#include "sparsity/topology_stats.h"
#include "testmodel.h"
#include "testutil.h"

static rw_dataset *train_set; /* the first 1500 samples of the subset */

static int setup(void **state)
{
    (void)state;
    return tu_small_head(0, 1500, &train_set);
}

static int teardown(void **state)
{
    (void)state;
    rw_dataset_free(train_set);
    return 0;
}

static rw_model *small_model(double sparsity, uint64_t seed)
{
    int sizes[] = {64, 48, 32, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    mc.sparsity = sparsity;
    mc.seed = seed;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    return m;
}

static float value_at(const csr_matrix *m, const float *arr, int row, int col)
{
    for (int k = m->indptr[row]; k < m->indptr[row + 1]; k++)
        if (m->indices[k] == col) return arr[k];
    return NAN;
}

/* One RigL update by hand: kept weights keep their value and state, the k
 * smallest are gone, the k grown are the largest dense-gradient entries and
 * start at zero with zero state. */
static void test_one_rigl_update_weight_by_weight(void **state)
{
    (void)state;
    rw_model *m = small_model(0.8, 5);
    /* A trainer holds the workspace and the optimizer state (AdamW: two
     * moments) the update must carry along. */
    rw_train_config tc = rw_train_config_default();
    tc.batch = 16;
    tc.optimizer = RW_OPT_ADAMW;
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    workspace ws = t->ws; /* the same buffers, by value for brevity */
    rng_state r;
    rng_seed(&r, 9);
    tu_fill_uniform(ws.t[0].data, (size_t)64 * ws.bp, -1, 1, &r);
    network_forward(m, &ws);
    tu_fill_uniform(ws.t[3].grad, (size_t)10 * ws.bp, -0.1f, 0.1f, &r);
    network_backward(m, &ws);
    int n = m->n_layers;
    csr_matrix before[3];
    for (int l = 0; l < n; l++) {
        csr_matrix *w = &(*t_csr(m, l));
        int q = m->first_param[l];
        for (int k = 0; k < w->nnz; k++) {
            t->m1[q][k] = 2 * w->values[k];
            t->m2[q][k] = 3 * w->values[k];
            t->ws.grad[q][k] = 5 * w->values[k];
        }
        assert_int_equal(csr_alloc(&before[l], w->rows, w->cols, w->nnz), RW_OK);
        memcpy(before[l].indptr, w->indptr, sizeof(int32_t) * (size_t)(w->rows + 1));
        memcpy(before[l].indices, w->indices, sizeof(int32_t) * (size_t)w->nnz);
        memcpy(before[l].values, w->values, sizeof(float) * (size_t)w->nnz);
    }
    rw_dst_config c = rw_dst_config_preset(RW_DST_RIGL);
    c.update_every = 1;
    c.drop_schedule = RW_DROP_SCHEDULE_CONSTANT;
    dst_state *d;
    assert_int_equal(dst_create(&c, m, ws.bp, &d), RW_OK);
    trainer_step_info info = {.batch_n = 16, .step = 1, .steps_per_epoch = 10, .total_steps = 10};
    const rw_topology_stats *s;
    assert_int_equal(dst_after_step(d, t, &info, &s), RW_OK);
    assert_non_null(s);
    int64_t sad = 0;
    for (int l = 0; l < n; l++) {
        csr_matrix *w = &(*t_csr(m, l));
        int q = m->first_param[l];
        const float *wm1 = t->m1[q], *wm2 = t->m2[q], *gw = t->ws.grad[q];
        int64_t size = (int64_t)w->rows * w->cols;
        int absent = (int)(size - before[l].nnz);
        int k = (int)llround(0.3 * before[l].nnz);
        if (k > absent) k = absent;
        assert_int_equal(csr_validate(w, "after"), RW_OK);
        assert_int_equal(w->nnz, before[l].nnz);
        assert_int_equal(s->dropped[l], k);
        assert_int_equal(s->grown[l], k);
        sad += 2 * k;
        /* The patterns before and after do differ in exactly those. */
        pattern was = {0};
        assert_int_equal(pattern_copy(&was, &before[l]), RW_OK);
        assert_int_equal(pattern_difference(&was, w), 2 * k);
        pattern_free(&was);
        float max_dropped = 0, min_kept = INFINITY;
        for (int o = 0; o < w->rows; o++)
            for (int p = before[l].indptr[o]; p < before[l].indptr[o + 1]; p++) {
                float v = before[l].values[p], now = value_at(w, w->values, o, before[l].indices[p]);
                if (isnan(now)) max_dropped = fmaxf(max_dropped, fabsf(v));
                else min_kept = fminf(min_kept, fabsf(v));
            }
        assert_true(max_dropped <= min_kept);
        /* Grown positions: absent before, zero weight and state; and each
         * has a dense gradient at least as large as any absent position
         * not grown. */
        float min_grown = INFINITY, max_not_grown = 0;
        for (int o = 0; o < w->rows; o++)
            for (int i = 0; i < w->cols; i++) {
                float was = value_at(&before[l], before[l].values, o, i);
                float v = value_at(w, w->values, o, i);
                double g = 0;
                for (int b = 0; b < ws.bp; b++)
                    g += (double)ws.t[l + 1].grad[(size_t)o * ws.bp + b] * ws.t[l].data[(size_t)i * ws.bp + b];
                if (!isnan(was) && !isnan(v)) {
                    assert_true(v == was);
                    assert_true(value_at(w, wm1, o, i) == 2 * was);
                    assert_true(value_at(w, wm2, o, i) == 3 * was);
                    assert_true(value_at(w, gw, o, i) == 5 * was);
                } else if (isnan(was) && !isnan(v)) {
                    assert_true(v == 0.0f && value_at(w, wm1, o, i) == 0.0f &&
                                value_at(w, wm2, o, i) == 0.0f && value_at(w, gw, o, i) == 0.0f);
                    min_grown = fminf(min_grown, (float)fabs(g));
                } else if (isnan(was)) {
                    max_not_grown = fmaxf(max_not_grown, (float)fabs(g));
                }
            }
        if (k > 0) assert_true(min_grown >= max_not_grown * (1 - 1e-5f));
        csr_free(&before[l]);
    }
    assert_int_equal(s->sad, sad);
    assert_true(s->itop_rate > 0.2 && s->itop_rate < 1);
    assert_int_equal(s->update, 1);
    dst_free(d);
    rw_trainer_free(t);
    rw_model_free(m);
}

static void test_schedules(void **state)
{
    (void)state;
    rw_dst_config c = rw_dst_config_preset(RW_DST_RIGL);
    /* Cosine from 0.3 to 0 at 75% of 1000 steps. */
    assert_true(fabs(dst_drop_fraction(&c, 0, 1000) - 0.3) < 1e-12);
    assert_true(fabs(dst_drop_fraction(&c, 375, 1000) - 0.15) < 1e-12);
    assert_true(dst_drop_fraction(&c, 750, 1000) == 0);
    c.drop_schedule = RW_DROP_SCHEDULE_CONSTANT;
    assert_true(dst_drop_fraction(&c, 700, 1000) == 0.3);

    rw_model *m = small_model(0.8, 1);
    dst_state *d;
    c = rw_dst_config_preset(RW_DST_RIGL);
    assert_int_equal(dst_create(&c, m, 8, &d), RW_OK);
    assert_false(dst_update_due(d, 50, 10, 1000));
    assert_true(dst_update_due(d, 100, 10, 1000));
    assert_true(dst_update_due(d, 700, 10, 1000));
    assert_false(dst_update_due(d, 800, 10, 1000)); /* past update_until */
    dst_free(d);
    c = rw_dst_config_preset(RW_DST_SET);
    c.update_every = 0; /* every epoch, never at the very end */
    c.drop_schedule = RW_DROP_SCHEDULE_CONSTANT;
    c.update_until = 1;
    assert_int_equal(dst_create(&c, m, 8, &d), RW_OK);
    assert_true(dst_update_due(d, 24, 24, 240));
    assert_false(dst_update_due(d, 25, 24, 240));
    assert_false(dst_update_due(d, 240, 24, 240));
    dst_free(d);
    c = rw_dst_config_preset(RW_DST_STATIC);
    assert_int_equal(dst_create(&c, m, 8, &d), RW_OK);
    assert_false(dst_update_due(d, 100, 10, 1000));
    dst_free(d);
    rw_model_free(m);
}

static void test_share_fills_caps_and_keeps_the_total(void **state)
{
    (void)state;
    double w[] = {1, 1, 2, 0};
    int64_t cap[] = {100, 5, 100, 100}, share[4];
    /* 5 : 5 : 10 of 20 -> layer 1 capped at 5 (its part is exactly 5). */
    assert_int_equal(dst_share(4, w, cap, 20, share), 20);
    assert_int_equal(share[0] + share[1] + share[2] + share[3], 20);
    assert_int_equal(share[1], 5);
    assert_int_equal(share[3], 0);
    /* 40: layer 1 wants 10 but holds 5; the rest is 1 : 2. */
    assert_int_equal(dst_share(4, w, cap, 40, share), 40);
    assert_int_equal(share[1], 5);
    assert_int_equal(share[0], 12);
    assert_int_equal(share[2], 23);
    /* More than every cap together: all caps filled. */
    int64_t small[] = {1, 2, 3, 0};
    assert_int_equal(dst_share(4, w, small, 40, share), 6);
    /* No weight at all: equal parts. */
    double zero[] = {0, 0, 0, 0};
    assert_int_equal(dst_share(4, zero, cap, 12, share), 12);
    assert_int_equal(share[0], 3);
}

static void test_bad_configs_are_rejected(void **state)
{
    (void)state;
    rw_model *m = small_model(0.8, 1);
    rw_train_config tc = rw_train_config_default();
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    rw_dst_config c = rw_dst_config_preset(RW_DST_RIGL);
    c.drop_fraction = 1.5;
    assert_int_equal(rw_trainer_set_dst(t, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "drop fraction 1.5"));
    c = rw_dst_config_preset(RW_DST_SNFS);
    c.window = 0;
    assert_int_equal(rw_trainer_set_dst(t, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "window"));
    c = rw_dst_config_preset(RW_DST_GRANET);
    c.final_sparsity = 0.9;
    c.prune_end = 0;
    assert_int_equal(rw_trainer_set_dst(t, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "pruning must start and end"));
    c.prune_end = 0.5;
    assert_int_equal(rw_trainer_set_dst(t, &c), RW_OK);
    assert_int_equal(rw_trainer_set_dst(t, NULL), RW_OK);
    rw_trainer_free(t);
    rw_model_free(m);
}

/* Training on the subset with a topology callback that checks each update. */
typedef struct {
    int64_t updates, first_total, last_total;
    int64_t changed_layers; /* updates where some layer changed size */
    double itop;
} watch;

static void on_update(const rw_topology_stats *s, void *user)
{
    watch *w = user;
    int64_t total = 0;
    for (int l = 0; l < s->n_layers; l++) total += s->nonzeros[l];
    if (w->updates == 0) w->first_total = total;
    w->last_total = total;
    for (int l = 0; l < s->n_layers; l++) w->changed_layers += s->dropped[l] != s->grown[l];
    w->itop = s->itop_rate;
    w->updates++;
}

static rw_model *train_dst(const rw_dst_config *c, double sparsity, int epochs, int threads,
                           watch *seen, double *accuracy)
{
    int sizes[] = {784, 128, 128, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    mc.sparsity = sparsity;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    float mean, std;
    rw_dataset_stats(train_set, &mean, &std);
    rw_model_set_normalization(m, mean, std);
    rw_train_config tc = rw_train_config_default();
    tc.epochs = epochs;
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    assert_int_equal(rw_trainer_set_dst(t, c), RW_OK);
    memset(seen, 0, sizeof *seen);
    rw_trainer_set_topology_callback(t, on_update, seen);
    rw_set_num_threads(threads);
    for (int e = 0; e < epochs; e++)
        assert_int_equal(rw_trainer_epoch(t, train_set, NULL, NULL, NULL), RW_OK);
    rw_trainer_free(t);
    for (int l = 0; l < m->n_layers; l++)
        assert_int_equal(csr_validate(&(*t_csr(m, l)), "trained"), RW_OK);
    if (accuracy) {
        rw_eval_result r;
        assert_int_equal(rw_evaluate(m, train_set, &r), RW_OK);
        *accuracy = r.accuracy;
    }
    return m;
}

static void test_short_runs_keep_sparsity_exact(void **state)
{
    (void)state;
    rw_dst_method methods[] = {RW_DST_SET, RW_DST_RIGL, RW_DST_SNFS, RW_DST_MEST, RW_DST_HEBBIAN};
    for (int i = 0; i < 5; i++) {
        rw_dst_config c = rw_dst_config_preset(methods[i]);
        if (c.update_every > 0) c.update_every = 3;
        watch w;
        double acc;
        rw_model *m = train_dst(&c, 0.9, 2, 1, &w, &acc);
        int64_t nnz = 0;
        for (int l = 0; l < m->n_layers; l++) nnz += t_csr(m, l)->nnz;
        print_message("dst %d: %lld updates, itop %.3f, train accuracy %.3f\n", (int)methods[i],
                      (long long)w.updates, w.itop, acc);
        assert_true(w.updates >= 1);
        /* The same number of weights as at the start, after every update. */
        assert_int_equal(nnz, w.first_total);
        assert_int_equal(nnz, w.last_total);
        assert_true(fabs((double)nnz / (784 * 128 + 128 * 128 + 128 * 10) - 0.1) < 1e-4);
        assert_true(w.itop > 0.1);
        assert_true(acc > 0.3); /* chance is 0.1; 24 steps */
        /* SNFS moves weights between layers; the others never do. */
        if (methods[i] == RW_DST_SNFS) assert_true(w.changed_layers > 0);
        else assert_int_equal(w.changed_layers, 0);
        rw_model_free(m);
    }
}

static void test_granet_prunes_to_the_target(void **state)
{
    (void)state;
    rw_dst_config c = rw_dst_config_preset(RW_DST_GRANET);
    c.update_every = 2;
    c.final_sparsity = 0.95;
    watch w;
    double acc;
    rw_model *m = train_dst(&c, 0.5, 2, 1, &w, &acc);
    int64_t nnz = 0, all = 784 * 128 + 128 * 128 + 128 * 10;
    for (int l = 0; l < m->n_layers; l++) nnz += t_csr(m, l)->nnz;
    print_message("granet: %lld updates, sparsity %.4f, train accuracy %.3f\n",
                  (long long)w.updates, 1.0 - (double)nnz / all, acc);
    assert_true(fabs(1.0 - (double)nnz / all - 0.95) < 1e-4);
    assert_int_equal(nnz, w.last_total);
    assert_true(acc > 0.3);
    rw_model_free(m);
}

static void test_thread_count_does_not_change_dst(void **state)
{
    (void)state;
    rw_dst_method methods[] = {RW_DST_RIGL, RW_DST_SNFS, RW_DST_HEBBIAN, RW_DST_SET};
    for (int i = 0; i < 4; i++) {
        rw_dst_config c = rw_dst_config_preset(methods[i]);
        c.update_every = 2;
        watch w1, w2;
        rw_model *one = train_dst(&c, 0.9, 1, 1, &w1, NULL);
        rw_model *two = train_dst(&c, 0.9, 1, 2, &w2, NULL);
        assert_true(w1.updates > 3 && w1.updates == w2.updates);
        for (int l = 0; l < one->n_layers; l++) {
            const csr_matrix *a = &(*t_csr(one, l)), *b = &(*t_csr(two, l));
            assert_int_equal(a->nnz, b->nnz);
            assert_memory_equal(a->indptr, b->indptr, sizeof(int32_t) * (size_t)(a->rows + 1));
            assert_memory_equal(a->indices, b->indices, sizeof(int32_t) * (size_t)a->nnz);
            assert_memory_equal(a->values, b->values, sizeof(float) * (size_t)a->nnz);
        }
        rw_model_free(one);
        rw_model_free(two);
    }
}

/* Input-level DST in short runs (24 steps, updates every 3, inputs going
 * between steps 2.4 and 14.4, 200 left): the first layer ends reading exactly the
 * budget, every connection on an open input, the weights as many as at
 * the start (removed connections regrown), for every grow criterion
 * (SNFS's shared regrowth included), with 1 and 2 threads alike. */
static rw_model *train_inputs(rw_dst_config *c, int threads, int32_t *kept, int *n_kept, watch *w)
{
    int sizes[] = {784, 128, 128, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    mc.sparsity = 0.9;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    float fm[784], fs[784];
    assert_int_equal(rw_dataset_feature_stats(train_set, fm, fs), RW_OK);
    assert_int_equal(rw_model_set_feature_normalization(m, fm, fs), RW_OK);
    rw_train_config tc = rw_train_config_default();
    tc.epochs = 2;
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    c->update_every = 3;
    c->input_budget = 200;
    c->input_end = 0.6;
    assert_int_equal(rw_trainer_set_dst(t, c), RW_OK);
    memset(w, 0, sizeof *w);
    rw_trainer_set_topology_callback(t, on_update, w);
    rw_set_num_threads(threads);
    for (int e = 0; e < 2; e++) assert_int_equal(rw_trainer_epoch(t, train_set, NULL, NULL, NULL), RW_OK);
    *n_kept = dst_kept_inputs(t, kept);
    rw_dst_totals totals;
    assert_int_equal(rw_trainer_dst(t, NULL, &totals), 1);
    assert_int_equal(totals.inputs_kept, *n_kept);
    rw_trainer_free(t);
    return m;
}

static void test_input_selection_short_runs(void **state)
{
    (void)state;
    rw_dst_method methods[] = {RW_DST_STATIC, RW_DST_RIGL, RW_DST_SNFS, RW_DST_HEBBIAN, RW_DST_SET};
    rw_input_criterion by[] = {RW_INPUT_RANDOM, RW_INPUT_IMPORTANCE, RW_INPUT_VARIANCE,
                               RW_INPUT_IMPORTANCE, RW_INPUT_IMPORTANCE};
    for (int i = 0; i < 6; i++) {
        rw_dst_config c = rw_dst_config_preset(methods[i < 5 ? i : 4]);
        c.input_select = by[i < 5 ? i : 4];
        if (i == 5) c.grow = RW_GROW_UNFIRED;
        int32_t kept[784];
        int n_kept;
        watch w;
        rw_model *m = train_inputs(&c, 1, kept, &n_kept, &w);
        assert_int_equal(n_kept, 200);
        assert_true(w.updates >= 5);
        int64_t nnz = 0;
        for (int l = 0; l < m->n_layers; l++) nnz += t_csr(m, l)->nnz;
        assert_int_equal(nnz, w.first_total);
        assert_int_equal(nnz, w.last_total);
        uint8_t open[784] = {0};
        for (int j = 0; j < n_kept; j++) open[kept[j]] = 1;
        const csr_matrix *fc1 = t_csr(m, 0);
        for (int k = 0; k < fc1->nnz; k++) assert_true(open[fc1->indices[k]]);
        if (methods[i < 5 ? i : 4] != RW_DST_SNFS) assert_int_equal(w.changed_layers, 0);
        /* The same run on 2 threads: the same inputs and weights. */
        if (i == 1 || i == 2) {
            int32_t kept2[784];
            int n2;
            watch w2;
            rw_model *two = train_inputs(&c, 2, kept2, &n2, &w2);
            assert_int_equal(n2, n_kept);
            assert_memory_equal(kept, kept2, sizeof(int32_t) * (size_t)n_kept);
            for (int l = 0; l < m->n_layers; l++) {
                const csr_matrix *a = t_csr(m, l), *b = t_csr(two, l);
                assert_int_equal(a->nnz, b->nnz);
                assert_memory_equal(a->indices, b->indices, sizeof(int32_t) * (size_t)a->nnz);
                assert_memory_equal(a->values, b->values, sizeof(float) * (size_t)a->nnz);
            }
            rw_model_free(two);
        }
        rw_model_free(m);
    }
    /* Refused: a budget not below the inputs, variance without
     * per-feature statistics, a dense first layer. */
    rw_model *m = small_model(0.9, 3);
    rw_train_config tc = rw_train_config_default();
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    rw_dst_config c = rw_dst_config_preset(RW_DST_RIGL);
    c.input_budget = 64;
    assert_int_equal(rw_trainer_set_dst(t, &c), RW_ERR_INVALID_ARGUMENT);
    c.input_budget = 10;
    c.input_select = RW_INPUT_VARIANCE;
    assert_int_equal(rw_trainer_set_dst(t, &c), RW_ERR_INVALID_ARGUMENT);
    c.input_select = RW_INPUT_IMPORTANCE;
    c.input_start = 0.7;
    assert_int_equal(rw_trainer_set_dst(t, &c), RW_ERR_INVALID_ARGUMENT);
    rw_trainer_free(t);
    rw_model_free(m);
    int sizes[] = {16, 64, 64, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    mc.sparsity = 0.3;
    mc.dense_first = 1;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    c.input_start = 0.1;
    assert_int_equal(rw_trainer_set_dst(t, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "input selection needs the first layer fc1 sparse (CSR)"));
    rw_trainer_free(t);
    rw_model_free(m);
}

/* A whole run (rw_run_train) leaves the model reading only the inputs
 * kept, and it evaluates as the run's last evaluation did. */
static void test_run_keeps_selected_inputs(void **state)
{
    (void)state;
    int sizes[] = {784, 64, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 2;
    mc.sparsity = 0.9;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    float fm[784], fs[784];
    assert_int_equal(rw_dataset_feature_stats(train_set, fm, fs), RW_OK);
    assert_int_equal(rw_model_set_feature_normalization(m, fm, fs), RW_OK);
    rw_dst_config c = rw_dst_config_preset(RW_DST_RIGL);
    c.update_every = 3;
    c.input_budget = 40;
    rw_run_config rc = rw_run_config_default();
    rc.train.epochs = 2;
    rc.dst = &c;
    rw_run *run;
    assert_int_equal(rw_run_new(m, &rc, &run), RW_OK);
    rw_run_result res;
    assert_int_equal(rw_run_train(run, train_set, NULL, train_set, &res), RW_OK);
    assert_int_equal(res.inputs_kept, 40);
    rw_run_free(run);
    assert_int_equal(rw_model_inputs(m), 784);
    assert_int_equal(rw_model_kept_inputs(m, NULL), 40);
    rw_layer_info li;
    assert_int_equal(rw_model_layer_info(m, 0, &li), RW_OK);
    assert_int_equal(li.in, 40);
    rw_eval_result r;
    assert_int_equal(rw_evaluate(m, train_set, &r), RW_OK);
    assert_true(r.accuracy == res.test.accuracy);
    assert_true(fabs(r.loss - res.test.loss) <= 1e-6 * r.loss);
    rw_model_free(m);
}

/* Unfired growth: the k new connections go to the quietest quarter of the
 * output neurons (fewest outputs above 0 on the batch), round-robin, at
 * absent positions, all distinct. */
static void test_unfired_growth_goes_to_quiet_neurons(void **state)
{
    (void)state;
    enum { ROWS = 12, COLS = 30, BP = 8, N = 6 };
    rng_state r;
    rng_seed(&r, 4);
    csr_matrix w;
    tu_random_csr(&w, ROWS, COLS, 0.3, &r);
    /* Row o fires on (o * 5) % 7 of the samples: rows 0 and 7 never, then
     * rows 3 and 10 once, ... */
    float y[ROWS * BP] = {0};
    for (int o = 0; o < ROWS; o++)
        for (int b = 0; b < (o * 5) % 7 && b < N; b++) y[o * BP + b] = 1.0f + (float)b;
    param p = {.rows = ROWS, .cols = COLS, .storage = PARAM_CSR, .csr = &w, .values = &w.values};
    const grow_criterion *g = grow_criterion_get(RW_GROW_UNFIRED);
    assert_non_null(g);
    assert_string_equal(rw_grow_name(RW_GROW_UNFIRED), "unfired");
    grow_input in = {.p = &p, .y = y, .bp = BP, .n = N, .rng = &r};
    int64_t pos[40];
    int k = 7, got = g->choose(&in, k, pos);
    assert_int_equal(got, k);
    /* The quiet quarter: firing counts 0, 0, 1, 1 (rows 0, 7, 3, 10) hold 3
     * rows; the tie at count 1 brings in row 10 too: rows 0, 7, 3, 10 take
     * 2, 2, 2, 1 in that order. */
    int per_row[ROWS] = {0};
    for (int i = 0; i < got; i++) {
        int o = (int)(pos[i] / COLS), c = (int)(pos[i] % COLS);
        assert_false(topology_contains(&w, o, c));
        for (int j = 0; j < i; j++) assert_true(pos[j] != pos[i]);
        per_row[o]++;
    }
    assert_int_equal(per_row[0], 2);
    assert_int_equal(per_row[7], 2);
    assert_int_equal(per_row[3], 2);
    assert_int_equal(per_row[10], 1);
    /* Asking more than the quiet rows can hold fills them, then the next
     * quietest, up to every absent position. */
    int64_t *many = malloc(sizeof(int64_t) * ROWS * COLS);
    int want = 4 * COLS;
    assert_int_equal(g->choose(&in, want, many), want);
    int filled[ROWS] = {0};
    for (int i = 0; i < want; i++) filled[many[i] / COLS]++;
    const int quiet[] = {0, 7, 3, 10};
    for (int j = 0; j < 4; j++)
        assert_int_equal(filled[quiet[j]], COLS - (w.indptr[quiet[j] + 1] - w.indptr[quiet[j]]));
    assert_int_equal(g->choose(&in, ROWS * COLS, many), ROWS * COLS - w.nnz);
    free(many);
    csr_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_rigl_update_weight_by_weight),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_share_fills_caps_and_keeps_the_total),
        cmocka_unit_test(test_bad_configs_are_rejected),
        cmocka_unit_test(test_short_runs_keep_sparsity_exact),
        cmocka_unit_test(test_granet_prunes_to_the_target),
        cmocka_unit_test(test_thread_count_does_not_change_dst),
        cmocka_unit_test(test_unfired_growth_goes_to_quiet_neurons),
        cmocka_unit_test(test_input_selection_short_runs),
        cmocka_unit_test(test_run_keeps_selected_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
