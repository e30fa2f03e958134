/* Checkpoints: a run stopped at any step, saved, freed and resumed from the
 * file ends with the same bytes as a run never stopped (SGD and AdamW,
 * sparse and dense layers, mid-epoch and at an epoch's end, every dynamic
 * sparse training preset around its topology updates, every N:M training
 * method, mask decay around its end); a diverged
 * state is never saved; every malformed checkpoint is refused with a
 * message naming the file; memory estimates agree with the model. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "nn/model.h"
#include "nn/trainer.h"
#include "sparsity/dst_checkpoint.h"
#include "sparsity/dst_internal.h"
#include "nn/nm_train_checkpoint.h"
#include "nn/nm_train.h"
#include "testmodel.h"
#include "testutil.h"

static rw_dataset *train_set;

static int setup(void **state)
{
    (void)state;
    /* 650 samples in batches of 64: 11 steps an epoch, the last one short. */
    return tu_small_head(0, 650, &train_set);
}

static int teardown(void **state)
{
    (void)state;
    rw_dataset_free(train_set);
    return 0;
}

typedef struct {
    int adam, dense_last;
    int dst; /* 0: none, else 1 + the rw_dst_method */
    int nm;  /* 0: none, else 1 + the rw_nm_method (nm_recipe) */
    int nm_hidden; /* N:M on the hidden layers only, not every layer */
    int inputs; /* input-level DST: 0 none, else 1 + the rw_input_criterion */
} recipe;

/* A preset on this 33-step run: the presets that update every 100 steps
 * update every 4 here (after steps 4, 8, ...), the others after each
 * epoch (steps 11 and 22); GraNet prunes from 80% to 90%. */
static rw_dst_config dst_recipe(rw_dst_method method)
{
    rw_dst_config c = rw_dst_config_preset(method);
    c.seed = 5;
    if (c.update_every > 0) c.update_every = 4;
    if (method == RW_DST_GRANET) c.final_sparsity = 0.9;
    return c;
}

/* N:M training on this 33-step run: a pattern per method (1:16 takes the
 * selection for groups over 8), SR-STE's lambda raised to matter in 33
 * steps, and the mask decay ending after step 16 (0.5 of 33 steps). */
static rw_nm_train_config nm_recipe(const recipe *r)
{
    rw_nm_train_config c = rw_nm_train_config_default();
    c.method = (rw_nm_method)(r->nm - 1);
    c.layers = r->nm_hidden ? RW_NM_HIDDEN : RW_NM_ALL;
    if (c.method == RW_NM_STE) c.n = 2, c.m = 8;
    if (c.method == RW_NM_SRSTE) c.n = 1, c.m = 16, c.srste_lambda = 2e-3f;
    if (c.method != RW_NM_SRSTE) c.srste_lambda = 0; /* as the layers report it */
    return c;
}

static void make_run(const recipe *r, rw_model **m, rw_trainer **t)
{
    int sizes[] = {784, 48, 32, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    mc.sparsity = r->nm ? 0 : 0.8;
    mc.dense_last = r->dense_last;
    mc.seed = 4;
    assert_int_equal(rw_model_create(&mc, m), RW_OK);
    if (r->nm) {
        rw_nm_train_config c = nm_recipe(r);
        assert_int_equal(rw_model_nm_train_begin(*m, &c), RW_OK);
    }
    float mean, std;
    rw_dataset_stats(train_set, &mean, &std);
    rw_model_set_normalization(*m, mean, std);
    if (r->inputs) {
        float fm[784], fs[784];
        assert_int_equal(rw_dataset_feature_stats(train_set, fm, fs), RW_OK);
        assert_int_equal(rw_model_set_feature_normalization(*m, fm, fs), RW_OK);
    }
    rw_train_config tc = rw_train_config_default();
    tc.batch = 64;
    tc.epochs = 3;
    tc.seed = 11;
    if (r->adam) {
        tc.optimizer = RW_OPT_ADAMW;
        tc.lr = 0.002f;
        tc.weight_decay = 0.01f;
        tc.warmup_epochs = 1;
        tc.clip_norm = 1.0f;
    } else {
        tc.nesterov = 1;
        tc.weight_decay = 1e-4f;
    }
    assert_int_equal(rw_trainer_create(*m, &tc, t), RW_OK);
    if (r->dst) {
        rw_dst_config c = dst_recipe((rw_dst_method)(r->dst - 1));
        /* 784 inputs down to 100 between steps 3.3 and 16.5 of 33: removals
         * at the updates after steps 4, 8, 12 and 16, the last at 20. */
        if (r->inputs) {
            c.input_budget = 100;
            c.input_select = (rw_input_criterion)(r->inputs - 1);
        }
        assert_int_equal(rw_trainer_set_dst(*t, &c), RW_OK);
    }
}

/* Stops the epoch once the run has done `at` steps. */
static int stop_at(const rw_progress *p, void *user) { return p->step == *(int64_t *)user; }

/* Trains to the end; with stop > 0, stops after that many steps, saves a
 * checkpoint, frees everything, loads it and goes on. An N:M run records
 * its mask change at the end of each epoch in changes[epoch], before the
 * checkpoint, as rewire train logs it. */
static void run_nm(const recipe *r, int64_t stop, rw_model **m_out, rw_trainer **t_out,
                   double *changes)
{
    rw_model *m;
    rw_trainer *t;
    make_run(r, &m, &t);
    const char *path = tu_temp_path("resume.safetensors");
    int saved = 0;
    rw_progress pos;
    for (rw_trainer_position(t, &pos); pos.epoch < 3; rw_trainer_position(t, &pos)) {
        rw_epoch_stats s;
        assert_int_equal(rw_trainer_epoch(t, train_set, stop > 0 && !saved ? stop_at : NULL, &stop,
                                          &s), RW_OK);
        if (r->nm && s.finished) changes[pos.epoch] = rw_model_nm_mask_change(m);
        rw_trainer_position(t, &pos);
        if (stop > 0 && !saved && pos.step == stop) {
            assert_int_equal(rw_trainer_save_checkpoint(t, path, "a note"), RW_OK);
            rw_trainer_free(t);
            rw_model_free(m);
            char *note = NULL;
            assert_int_equal(rw_trainer_load_checkpoint(path, 0, &m, &t, &note), RW_OK);
            assert_string_equal(note, "a note");
            free(note);
            rw_progress back;
            rw_trainer_position(t, &back);
            assert_int_equal(back.step, stop);
            assert_int_equal(back.epoch, pos.epoch);
            assert_true(back.loss == pos.loss);
            /* DST comes back attached with the config it was saved with. */
            rw_dst_config c;
            assert_int_equal(rw_trainer_dst(t, &c, NULL), r->dst != 0);
            if (r->dst) {
                rw_dst_config want = dst_recipe((rw_dst_method)(r->dst - 1));
                assert_int_equal(c.grow, want.grow);
                assert_true(c.drop_fraction == want.drop_fraction);
                assert_true(c.final_sparsity == want.final_sparsity);
                assert_int_equal(c.seed, want.seed);
            }
            /* So does N:M training. */
            rw_nm_train_config nc;
            assert_int_equal(rw_model_nm_train_config(m, &nc), r->nm != 0);
            if (r->nm) {
                rw_nm_train_config want = nm_recipe(r);
                assert_int_equal(nc.n, want.n);
                assert_int_equal(nc.m, want.m);
                assert_int_equal(nc.method, want.method);
                assert_int_equal(nc.layers, want.layers);
                assert_true(nc.srste_lambda == want.srste_lambda);
                assert_true(nc.decay_end == want.decay_end);
            }
            saved = 1;
        }
    }
    assert_int_equal(saved, stop > 0);
    unlink(path);
    *m_out = m;
    *t_out = t;
}

static void run(const recipe *r, int64_t stop, rw_model **m_out, rw_trainer **t_out)
{
    double changes[3];
    run_nm(r, stop, m_out, t_out, changes);
}

/* The memory limit a checkpoint needs, from the refusal at 1 byte: one
 * byte less is refused and exactly that much loads. */
static long long exact_memory_limit(const char *path)
{
    rw_model *m;
    rw_trainer *t;
    assert_int_equal(rw_trainer_load_checkpoint(path, 1, &m, &t, NULL), RW_ERR_NO_MEMORY);
    long long need = 0;
    const char *at = strstr(rw_last_error(), " need ");
    assert_non_null(at);
    assert_int_equal(sscanf(at, " need %lld bytes", &need), 1);
    assert_int_equal(rw_trainer_load_checkpoint(path, need - 1, &m, &t, NULL), RW_ERR_NO_MEMORY);
    assert_int_equal(rw_trainer_load_checkpoint(path, need, &m, &t, NULL), RW_OK);
    rw_trainer_free(t);
    rw_model_free(m);
    return need;
}

static void expect_identical(const rw_trainer *a, const rw_trainer *b)
{
    const rw_model *ma = a->model, *mb = b->model;
    const dst_state *da = trainer_dst(a), *db = trainer_dst(b);
    assert_int_equal(a->step, b->step);
    assert_int_equal(a->epoch, b->epoch);
    for (int l = 0; l < ma->n_layers; l++) {
        int q = ma->first_param[l];
        size_t wn = (size_t)t_count(ma, l);
        assert_int_equal(t_count(mb, l), wn);
        assert_memory_equal(t_w(ma, l), t_w(mb, l), 4 * wn);
        assert_memory_equal(t_b(ma, l), t_b(mb, l), 4 * (size_t)ma->layers[l]->out);
        assert_memory_equal(a->m1[q], b->m1[q], 4 * wn);
        if (a->m2[q]) assert_memory_equal(a->m2[q], b->m2[q], 4 * wn);
        const linear_nm_train *p = nm_train_of_const(ma->layers[l]);
        const linear_nm_train *r = nm_train_of_const(mb->layers[l]);
        if (p) {
            /* The masks, the compressed copy, W_eff and the decay factor,
             * and the masks the next mask-change count compares with. */
            assert_non_null(r);
            size_t slots = (size_t)ma->layers[l]->out * nm_slots_per_row(&p->nm);
            assert_memory_equal(p->nm.offsets, r->nm.offsets, slots);
            assert_memory_equal(p->nm.values, r->nm.values, 4 * slots);
            assert_memory_equal(p->seen, r->seen, slots);
            assert_true(p->beta == r->beta);
            assert_int_equal(p->eff != NULL, r->eff != NULL);
            if (p->eff) assert_memory_equal(p->eff, r->eff, 4 * wn);
        }
        assert_int_equal(p == NULL, r == NULL);
        if (!t_sparse(ma, l)) continue;
        /* The topology too, and under DST every connection ever stored. */
        const csr_matrix *x = t_csr(ma, l), *y = t_csr(mb, l);
        assert_memory_equal(x->indptr, y->indptr, 4 * ((size_t)x->rows + 1));
        assert_memory_equal(x->indices, y->indices, 4 * wn);
        if (!da) continue;
        const pattern *ea = &da->ever[l], *eb = &db->ever[l];
        assert_int_equal(ea->nnz, eb->nnz);
        assert_memory_equal(ea->indptr, eb->indptr, 4 * ((size_t)x->rows + 1));
        assert_memory_equal(ea->indices, eb->indices, 4 * (size_t)ea->nnz);
    }
    assert_int_equal(da != NULL, db != NULL);
    if (da) assert_int_equal(da->updates, db->updates);
    if (da && da->inputs) {
        assert_non_null(db->inputs);
        assert_int_equal(input_select_kept(da->inputs), input_select_kept(db->inputs));
        assert_memory_equal(input_select_closed(da->inputs), input_select_closed(db->inputs), 784);
    }
}

/* Runs stopped at each of `stops` (with `threads` threads) end as t0, and
 * an N:M run counts the mask changes `changes` of t0's run. */
static void check_stops(const recipe *r, const rw_trainer *t0, const double *changes,
                        const int64_t *stops, size_t n_stops, int threads)
{
    int before = rw_get_num_threads();
    rw_set_num_threads(threads);
    for (size_t i = 0; i < n_stops; i++) {
        rw_model *m1;
        rw_trainer *t1;
        double got[3];
        run_nm(r, stops[i], &m1, &t1, got);
        expect_identical(t0, t1);
        if (r->nm) assert_memory_equal(got, changes, sizeof got);
        rw_trainer_free(t1);
        rw_model_free(m1);
    }
    rw_set_num_threads(before);
}

static void check_resume(const recipe *r)
{
    rw_model *m0;
    rw_trainer *t0;
    double changes[3];
    run_nm(r, 0, &m0, &t0, changes);
    assert_int_equal(t0->step, 33);
    /* Mid-epoch, an epoch's last step, the first step, the last. */
    const int64_t stops[] = {5, 11, 1, 27, 33};
    check_stops(r, t0, changes, stops, sizeof stops / sizeof stops[0], rw_get_num_threads());
    rw_trainer_free(t0);
    rw_model_free(m0);
}

/* Each preset stopped just before, at and just after a topology update
 * (steps 3, 4, 5 for the 4-step ones; 10, 11, 12 for the per-epoch ones:
 * at 10, the window holds a batch for the update after step 11), and at
 * the end, with 1 thread; then around the updates with 2 (sparse layers
 * give the same bytes for any count, so one reference serves both). */
static void check_dst_resume(rw_dst_method method, int adam)
{
    recipe r = {adam, 0, 1 + (int)method, 0, 0, 0};
    rw_model *m0;
    rw_trainer *t0;
    int before = rw_get_num_threads();
    rw_set_num_threads(1);
    run(&r, 0, &m0, &t0);
    rw_set_num_threads(before);
    assert_int_equal(t0->step, 33);
    /* Not vacuous: every preset but static changes the topology. */
    if (method != RW_DST_STATIC) assert_true(trainer_dst(t0)->updates >= 2);
    const int64_t one[] = {3, 4, 5, 10, 11, 12, 33}, two[] = {4, 10, 12};
    check_stops(&r, t0, NULL, one, sizeof one / sizeof one[0], 1);
    check_stops(&r, t0, NULL, two, sizeof two / sizeof two[0], 2);
    rw_trainer_free(t0);
    rw_model_free(m0);
}

/* Input-level DST resumed around its removals (after steps 4, 8, 12, 16,
 * 20): the inputs closed, the connections left and their state, with each
 * criterion and two DST presets. */
static void check_inputs_resume(rw_dst_method method, rw_input_criterion criterion)
{
    recipe r = {0, 0, 1 + (int)method, 0, 0, 1 + (int)criterion};
    rw_model *m0;
    rw_trainer *t0;
    run(&r, 0, &m0, &t0);
    assert_int_equal(input_select_kept(trainer_dst(t0)->inputs), 100);
    /* Every connection of the first layer reads an open input. */
    const csr_matrix *w = t_csr(m0, 0);
    for (int k = 0; k < w->nnz; k++) assert_false(input_select_closed(trainer_dst(t0)->inputs)[w->indices[k]]);
    const int64_t one[] = {3, 4, 9, 16, 20, 21}, two[] = {8, 12};
    check_stops(&r, t0, NULL, one, sizeof one / sizeof one[0], 1);
    check_stops(&r, t0, NULL, two, sizeof two / sizeof two[0], 2);
    rw_trainer_free(t0);
    rw_model_free(m0);
}

static void test_resume_inputs(void **state)
{
    (void)state;
    check_inputs_resume(RW_DST_RIGL, RW_INPUT_IMPORTANCE);
    check_inputs_resume(RW_DST_STATIC, RW_INPUT_RANDOM);
    check_inputs_resume(RW_DST_SET, RW_INPUT_VARIANCE);
}

static void test_resume_dst_static(void **state) { (void)state; check_dst_resume(RW_DST_STATIC, 0); }
static void test_resume_dst_set(void **state) { (void)state; check_dst_resume(RW_DST_SET, 0); }
static void test_resume_dst_rigl(void **state) { (void)state; check_dst_resume(RW_DST_RIGL, 1); }
static void test_resume_dst_snfs(void **state) { (void)state; check_dst_resume(RW_DST_SNFS, 0); }
static void test_resume_dst_mest(void **state) { (void)state; check_dst_resume(RW_DST_MEST, 1); }
static void test_resume_dst_granet(void **state) { (void)state; check_dst_resume(RW_DST_GRANET, 0); }
static void test_resume_dst_hebbian(void **state) { (void)state; check_dst_resume(RW_DST_HEBBIAN, 1); }

/* Each N:M method with every layer N:M, stopped after the first step,
 * mid-epoch, at an epoch's end, around the end of the mask decay (β > 0
 * after step 16, 0 from step 17 on) and at the end, with 1 thread; then
 * some with 2 (every layer N:M: the bytes do not depend on the thread
 * count, so one reference serves both). The mask change counted at each
 * epoch's end is the same too. */
static void check_nm_resume(rw_nm_method method, int adam)
{
    recipe r = {adam, 0, 0, 1 + (int)method, 0, 0};
    rw_model *m0;
    rw_trainer *t0;
    double changes[3];
    int before = rw_get_num_threads();
    rw_set_num_threads(1);
    run_nm(&r, 0, &m0, &t0, changes);
    rw_set_num_threads(before);
    assert_int_equal(t0->step, 33);
    /* Not vacuous: the masks move, and the decay ends inside the run. */
    assert_true(changes[0] > 0);
    assert_true(nm_decay_beta(0.5, 16, 33) > 0 && nm_decay_beta(0.5, 17, 33) == 0);
    const int64_t one[] = {1, 5, 11, 16, 17, 18, 33}, two[] = {5, 16, 17};
    check_stops(&r, t0, changes, one, sizeof one / sizeof one[0], 1);
    check_stops(&r, t0, changes, two, sizeof two / sizeof two[0], 2);
    rw_trainer_free(t0);
    rw_model_free(m0);
}

static void test_resume_nm_ste(void **state) { (void)state; check_nm_resume(RW_NM_STE, 0); }
static void test_resume_nm_srste(void **state) { (void)state; check_nm_resume(RW_NM_SRSTE, 1); }
static void test_resume_nm_decay(void **state) { (void)state; check_nm_resume(RW_NM_DECAY, 0); }

/* N:M on the hidden layers, the output layer dense (OpenBLAS: a reference
 * per thread count). */
static void test_resume_nm_hidden(void **state)
{
    (void)state;
    check_resume(&(recipe){1, 0, 0, 1 + RW_NM_DECAY, 1, 0});
}

static void test_resume_sgd_bit_identical(void **state)
{
    (void)state;
    check_resume(&(recipe){0, 0, 0, 0, 0, 0});
}

static void test_resume_adamw_dense_bit_identical(void **state)
{
    (void)state;
    check_resume(&(recipe){1, 1, 0, 0, 0, 0});
}

/* A checkpoint is a model file: rw_model_load reads its model. */
static void test_checkpoint_is_a_model_file(void **state)
{
    (void)state;
    rw_model *m, *back;
    rw_trainer *t;
    make_run(&(recipe){1, 1, 0, 0, 0, 0}, &m, &t);
    const char *path = tu_temp_path("as-model.safetensors");
    assert_int_equal(rw_trainer_save_checkpoint(t, path, NULL), RW_OK);
    assert_int_equal(rw_model_load(path, &back), RW_OK);
    for (int l = 0; l < m->n_layers; l++)
        assert_memory_equal(t_w(m, l), t_w(back, l),
                            4 * (size_t)t_count(m, l));
    rw_model_free(back);
    /* And a model file is not a checkpoint. */
    assert_int_equal(rw_model_save(m, path), RW_OK);
    rw_model *m2;
    rw_trainer *t2;
    assert_int_equal(rw_trainer_load_checkpoint(path, 0, &m2, &t2, NULL), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "not a checkpoint"));
    assert_null(m2);
    assert_null(t2);
    unlink(path);
    rw_trainer_free(t);
    rw_model_free(m);
}

static long file_bytes(const char *path, unsigned char **out)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc((size_t)n);
    assert_int_equal(fread(*out, 1, (size_t)n, f), n);
    fclose(f);
    return n;
}

/* A NaN anywhere in the state: not saved, the previous checkpoint stays. */
static void test_diverged_state_is_not_saved(void **state)
{
    (void)state;
    rw_model *m;
    rw_trainer *t;
    make_run(&(recipe){0, 0, 0, 0, 0, 0}, &m, &t);
    const char *path = tu_temp_path("good.ckpt");
    char keep[600];
    snprintf(keep, sizeof keep, "%s", path);
    assert_int_equal(rw_trainer_save_checkpoint(t, keep, NULL), RW_OK);
    unsigned char *before, *after;
    long n0 = file_bytes(keep, &before);

    t_csr(m, 1)->values[3] = NAN;
    assert_int_equal(rw_trainer_save_checkpoint(t, keep, NULL), RW_ERR_DIVERGED);
    assert_non_null(strstr(rw_last_error(), "weights of layer fc2"));
    assert_non_null(strstr(rw_last_error(), "previous checkpoint is kept"));
    t_csr(m, 1)->values[3] = 0.5f;
    t->m1[m->first_param[2] + 1][0] = INFINITY;
    assert_int_equal(rw_trainer_save_checkpoint(t, keep, NULL), RW_ERR_DIVERGED);
    assert_non_null(strstr(rw_last_error(), "optimizer state of layer fc3"));

    long n1 = file_bytes(keep, &after);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, (size_t)n0);
    free(before);
    free(after);
    unlink(keep);
    rw_trainer_free(t);
    rw_model_free(m);
}

static void test_other_data_is_refused(void **state)
{
    (void)state;
    rw_model *m;
    rw_trainer *t;
    make_run(&(recipe){0, 0, 0, 0, 0, 0}, &m, &t);
    int64_t stop = 3;
    assert_int_equal(rw_trainer_epoch(t, train_set, stop_at, &stop, NULL), RW_OK);
    const char *path = tu_temp_path("data.ckpt");
    assert_int_equal(rw_trainer_save_checkpoint(t, path, NULL), RW_OK);
    rw_trainer_free(t);
    rw_model_free(m);
    assert_int_equal(rw_trainer_load_checkpoint(path, 0, &m, &t, NULL), RW_OK);
    rw_dataset *fewer;
    assert_int_equal(rw_dataset_head(train_set, 600, &fewer), RW_OK);
    assert_int_equal(rw_trainer_epoch(t, fewer, NULL, NULL, NULL), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "not the one the checkpoint was made on"));
    assert_int_equal(rw_trainer_epoch(t, train_set, stop_at, &(int64_t){5}, NULL), RW_OK);
    /* Mid-epoch, a fresh trainer's data cannot change either. */
    assert_int_equal(rw_trainer_epoch(t, fewer, NULL, NULL, NULL), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "not the one the epoch in progress was made on"));
    rw_dataset_free(fewer);
    assert_int_equal(rw_trainer_epoch(t, train_set, NULL, NULL, NULL), RW_OK);
    unlink(path);
    rw_trainer_free(t);
    rw_model_free(m);
}

/* ---- malformed checkpoints ---------------------------------------------- */

static char good_ckpt[600];

/* A tensor replaced by data of any dtype and shape (1-D or 2-D). */
typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[2];
    const void *data;
} replacement;

/* A copy of good_ckpt with tensor `skip` dropped, tensor `patch` replaced
 * by 1-D F32 data, tensors rep[] replaced, metadata `key` set to `value`
 * (or dropped when NULL), and an extra tensor. */
typedef struct {
    const char *skip, *patch, *key, *value, *extra;
    int64_t n;
    const float *data;
    replacement rep[2];
} variant;

static void expect_rejected(const variant *v, rw_status want, const char *needle)
{
    st_file f;
    assert_int_equal(st_read(good_ckpt, &f), RW_OK);
    st_writer *w = st_writer_new();
    for (int i = 0; i < f.meta_count; i++)
        if (!v->key || strcmp(f.meta_keys[i], v->key) != 0)
            assert_int_equal(st_writer_meta(w, f.meta_keys[i], f.meta_values[i]), RW_OK);
    if (v->key && v->value) assert_int_equal(st_writer_meta(w, v->key, v->value), RW_OK);
    for (int i = 0; i < f.count; i++) {
        const st_tensor *t = &f.tensors[i];
        if (v->skip && !strcmp(t->name, v->skip)) continue;
        const replacement *r = NULL;
        for (int k = 0; k < 2; k++)
            if (v->rep[k].name && !strcmp(t->name, v->rep[k].name)) r = &v->rep[k];
        if (v->patch && !strcmp(t->name, v->patch))
            assert_int_equal(st_writer_add(w, t->name, ST_F32, 1, &v->n, v->data), RW_OK);
        else if (r)
            assert_int_equal(st_writer_add(w, t->name, r->dtype, r->ndim, r->shape, r->data), RW_OK);
        else
            assert_int_equal(st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data), RW_OK);
    }
    float one = 1;
    int64_t n1 = 1;
    if (v->extra) assert_int_equal(st_writer_add(w, v->extra, ST_F32, 1, &n1, &one), RW_OK);
    const char *bad = tu_temp_path("bad.ckpt");
    assert_int_equal(st_writer_write(w, bad), RW_OK);
    st_writer_free(w);
    st_file_free(&f);
    rw_model *m = (rw_model *)&one;
    rw_trainer *t = (rw_trainer *)&one;
    rw_status st = rw_trainer_load_checkpoint(bad, 0, &m, &t, NULL);
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", rw_last_error());
    unlink(bad);
    if (st != want || !strstr(rw_last_error(), needle) || !strstr(rw_last_error(), "bad.ckpt"))
        fail_msg("expected %s mentioning \"%s\", got %s: %s", rw_status_string(want), needle,
                 rw_status_string(st), rw_last_error());
    assert_null(m);
    assert_null(t);
}

static void test_malformed_checkpoints(void **state)
{
    (void)state;
    rw_model *m;
    rw_trainer *t;
    make_run(&(recipe){1, 0, 0, 0, 0, 0}, &m, &t);
    int64_t stop = 4;
    assert_int_equal(rw_trainer_epoch(t, train_set, stop_at, &stop, NULL), RW_OK);
    snprintf(good_ckpt, sizeof good_ckpt, "%s", tu_temp_path("good.ckpt"));
    assert_int_equal(rw_trainer_save_checkpoint(t, good_ckpt, NULL), RW_OK);
    int64_t nnz = t_csr(m, 0)->nnz;
    float *vals = calloc((size_t)nnz, sizeof(float));
    rw_trainer_free(t);
    rw_model_free(m);

    expect_rejected(&(variant){.key = "checkpoint"}, RW_ERR_FORMAT, "not a checkpoint");
    expect_rejected(&(variant){.key = "checkpoint", .value = "7"}, RW_ERR_FORMAT,
                    "checkpoint version \"7\"");
    expect_rejected(&(variant){.key = "trainer"}, RW_ERR_FORMAT, "metadata trainer is missing");
    expect_rejected(&(variant){.key = "trainer", .value = "[1]"}, RW_ERR_FORMAT,
                    "metadata trainer is not a JSON object");
    const char *cfg = "{\"optimizer\":1,\"lr\":0.002,\"momentum\":0.9,\"nesterov\":0,\"beta1\":0.9,"
                      "\"beta2\":0.999,\"eps\":1e-08,\"weight_decay\":0.01,\"schedule\":2,"
                      "\"warmup_epochs\":1,\"step_every\":1,\"step_gamma\":0.1,\"clip_norm\":1,"
                      "\"batch\":%d,\"epochs\":3,\"seed\":\"11\"}";
    char text[1024], config[512];
    snprintf(config, sizeof config, cfg, 64);
    snprintf(text, sizeof text,
             "{\"config\":%s,\"epoch\":5,\"step\":4,\"epoch_step\":4,\"epoch_samples\":256,"
             "\"epoch_loss_sum\":1,\"epoch_seconds\":1,\"data_samples\":650,"
             "\"data_fingerprint\":\"00000000000000ff\"}", config);
    expect_rejected(&(variant){.key = "trainer", .value = text}, RW_ERR_FORMAT,
                    "position is out of range (epoch 5 of 3");
    snprintf(text, sizeof text,
             "{\"config\":%s,\"epoch\":0,\"step\":40,\"epoch_step\":40,\"epoch_samples\":256,"
             "\"epoch_loss_sum\":1,\"epoch_seconds\":1,\"data_samples\":650,"
             "\"data_fingerprint\":\"00000000000000ff\"}", config);
    expect_rejected(&(variant){.key = "trainer", .value = text}, RW_ERR_FORMAT,
                    "does not fit an epoch of 650 samples in batches of 64");
    snprintf(config, sizeof config, cfg, 0);
    snprintf(text, sizeof text,
             "{\"config\":%s,\"epoch\":0,\"step\":4,\"epoch_step\":4,\"epoch_samples\":256,"
             "\"epoch_loss_sum\":1,\"epoch_seconds\":1,\"data_samples\":650,"
             "\"data_fingerprint\":\"00000000000000ff\"}", config);
    expect_rejected(&(variant){.key = "trainer", .value = text}, RW_ERR_FORMAT,
                    "trainer config: batch size 0");
    snprintf(text, sizeof text,
             "{\"config\":{\"optimizer\":1},\"epoch\":0,\"step\":4,\"epoch_step\":4,"
             "\"epoch_samples\":256,\"epoch_loss_sum\":1,\"epoch_seconds\":1,\"data_samples\":650,"
             "\"data_fingerprint\":\"00000000000000ff\"}");
    expect_rejected(&(variant){.key = "trainer", .value = text}, RW_ERR_FORMAT,
                    "trainer.config needs exactly");

    expect_rejected(&(variant){.skip = "opt.fc2.values.m2"}, RW_ERR_FORMAT,
                    "tensor opt.fc2.values.m2 is missing");
    expect_rejected(&(variant){.patch = "opt.fc1.values.m1", .n = nnz - 1, .data = vals},
                    RW_ERR_FORMAT, "opt.fc1.values.m1 should be F32 of shape");
    vals[2] = NAN;
    expect_rejected(&(variant){.patch = "opt.fc1.values.m1", .n = nnz, .data = vals},
                    RW_ERR_FORMAT, "opt.fc1.values.m1 has a non-finite value at 2");
    expect_rejected(&(variant){.extra = "opt.fc9.values.m1"}, RW_ERR_FORMAT,
                    "optimizer tensors (opt.*)");
    expect_rejected(&(variant){.extra = "dst.mask"}, RW_ERR_FORMAT, "unexpected tensor dst.mask");
    expect_rejected(&(variant){.extra = "opt2.x"}, RW_ERR_FORMAT, "unexpected tensor opt2.x");
    expect_rejected(&(variant){.skip = "fc2.values"}, RW_ERR_FORMAT, "tensor fc2.values is missing");
    free(vals);

    /* Memory: refused with both numbers before anything is allocated. */
    rw_status st = rw_trainer_load_checkpoint(good_ckpt, 1000, &m, &t, NULL);
    assert_int_equal(st, RW_ERR_NO_MEMORY);
    assert_non_null(strstr(rw_last_error(), "more than the limit of 1000"));
    assert_int_equal(rw_trainer_load_checkpoint(good_ckpt, (int64_t)1 << 40, &m, &t, NULL), RW_OK);
    rw_trainer_free(t);
    rw_model_free(m);
    unlink(good_ckpt);
}

/* A copy of tensor `name` of good_ckpt (malloc'ed), its count in *n. */
static void *tensor_copy(const char *name, int64_t *n)
{
    st_file f;
    assert_int_equal(st_read(good_ckpt, &f), RW_OK);
    const st_tensor *t = st_find(&f, name);
    assert_non_null(t);
    void *x = malloc(t->nbytes + 4);
    memcpy(x, t->data, t->nbytes);
    *n = t->count;
    st_file_free(&f);
    return x;
}

/* The saved text of metadata `key` with `from` replaced by `to`. */
static void meta_edit(const char *key, const char *from, const char *to, char *out, size_t size)
{
    st_file f;
    assert_int_equal(st_read(good_ckpt, &f), RW_OK);
    const char *text = st_meta(&f, key), *at = strstr(text, from);
    assert_non_null(at);
    snprintf(out, size, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    st_file_free(&f);
}

/* Hostile dynamic-sparse-training state: each refused with a message
 * naming the file and the tensor or key. The run (Hebbian growth with a
 * window of 2 batches and GraNet's pruning, updates every 4 steps) stops
 * after step 7, when the window holds one batch for the update after 8. */
static void test_malformed_dst_checkpoints(void **state)
{
    (void)state;
    rw_model *m;
    rw_trainer *t;
    make_run(&(recipe){0, 0, 0, 0, 0, 0}, &m, &t);
    rw_dst_config c = dst_recipe(RW_DST_GRANET);
    c.grow = RW_GROW_HEBBIAN;
    c.window = 2;
    assert_int_equal(rw_trainer_set_dst(t, &c), RW_OK);
    int64_t stop = 7;
    assert_int_equal(rw_trainer_epoch(t, train_set, stop_at, &stop, NULL), RW_OK);
    assert_int_equal(trainer_dst(t)->updates, 1);
    assert_int_equal(trainer_dst(t)->slot_n[0], 64);
    assert_int_equal(trainer_dst(t)->slot_n[1], 0);
    int bp = t->ws.bp;
    snprintf(good_ckpt, sizeof good_ckpt, "%s", tu_temp_path("good-dst.ckpt"));
    assert_int_equal(rw_trainer_save_checkpoint(t, good_ckpt, NULL), RW_OK);
    rw_trainer_free(t);
    rw_model_free(m);
    rw_model *m2;
    rw_trainer *t2;
    assert_int_equal(rw_trainer_load_checkpoint(good_ckpt, 0, &m2, &t2, NULL), RW_OK);
    assert_int_equal(rw_trainer_dst(t2, NULL, NULL), 1);
    /* The memory limit counts the DST state: the windows of 2 batches of
     * bp columns for every sparse layer's inputs and outputs, and the
     * ever-stored records. */
    rw_memory_estimate est;
    rw_train_config tc = rw_trainer_config(t2);
    assert_int_equal(rw_estimate_trainer_memory(m2, &tc, &est), RW_OK);
    st_file sf;
    assert_int_equal(st_read(good_ckpt, &sf), RW_OK);
    int64_t dst_bytes = dst_checkpoint_memory(&sf, m2, &tc);
    st_file_free(&sf);
    int64_t windows = 4 * (int64_t)(784 + 48 + 48 + 32 + 32 + 10) * 2 * bp;
    assert_true(dst_bytes > windows && dst_bytes < windows + 200000);
    rw_trainer_free(t2);
    rw_model_free(m2);
    /* The limit the file needs counts the DST bytes. */
    assert_true(exact_memory_limit(good_ckpt) >= est.total + dst_bytes);

    /* Settings and position. */
    char text[1024];
    expect_rejected(&(variant){.key = "dst.config"}, RW_ERR_FORMAT,
                    "unexpected tensor dst.start_nnz: the checkpoint holds no dynamic-sparse-"
                    "training settings (metadata dst.config)");
    expect_rejected(&(variant){.key = "dst.config", .value = "{\"drop\":0}"}, RW_ERR_FORMAT,
                    "metadata dst.config needs exactly drop, grow");
    meta_edit("dst.config", "\"window\":2", "\"window\":99", text, sizeof text);
    expect_rejected(&(variant){.key = "dst.config", .value = text}, RW_ERR_FORMAT,
                    "metadata dst.config: window of 99 batches is outside [1, 64]");
    meta_edit("dst.config", "\"grow\":3", "\"grow\":9", text, sizeof text);
    expect_rejected(&(variant){.key = "dst.config", .value = text}, RW_ERR_FORMAT,
                    "metadata dst.config: unknown grow criterion 9");
    meta_edit("dst.config", "\"drop_fraction\":0.5", "\"drop_fraction\":1.5", text, sizeof text);
    expect_rejected(&(variant){.key = "dst.config", .value = text}, RW_ERR_FORMAT,
                    "metadata dst.config: drop fraction 1.5 is outside [0, 1)");
    expect_rejected(&(variant){.key = "dst.state"}, RW_ERR_FORMAT, "metadata dst.state is missing");
    expect_rejected(&(variant){.key = "dst.state", .value = "{\"updates\":99,\"total_seconds\":0}"},
                    RW_ERR_FORMAT, "dst.state is out of range (99 updates after 7 steps");
    expect_rejected(&(variant){.key = "dst.state", .value = "{\"updates\":1}"}, RW_ERR_FORMAT,
                    "metadata dst.state is not a JSON object of exactly updates, total_seconds");
    expect_rejected(&(variant){.key = "dst.extra", .value = "1"}, RW_ERR_FORMAT,
                    "unexpected metadata dst.extra");

    /* Tensors: missing, wrong dtype or shape (another model's), extra. */
    expect_rejected(&(variant){.skip = "dst.fc2.ever.indices"}, RW_ERR_FORMAT,
                    "tensor dst.fc2.ever.indices is missing");
    expect_rejected(&(variant){.skip = "dst.fc3.window.post"}, RW_ERR_FORMAT,
                    "tensor dst.fc3.window.post is missing");
    int64_t n;
    int64_t *start = tensor_copy("dst.start_nnz", &n);
    assert_int_equal(n, 3);
    expect_rejected(&(variant){.patch = "dst.start_nnz", .n = 3, .data = (const float *)start},
                    RW_ERR_FORMAT, "tensor dst.start_nnz should be I64 of shape [3]");
    expect_rejected(&(variant){.rep = {{"dst.start_nnz", ST_I64, 1, {2}, start}}}, RW_ERR_FORMAT,
                    "tensor dst.start_nnz should be I64 of shape [3]");
    int32_t *ptr2 = tensor_copy("dst.fc2.ever.indptr", &n);
    assert_int_equal(n, 33);
    expect_rejected(&(variant){.rep = {{"dst.fc1.ever.indptr", ST_I32, 1, {33}, ptr2}}},
                    RW_ERR_FORMAT, "tensor dst.fc1.ever.indptr should be I32 of shape [49]");
    expect_rejected(&(variant){.extra = "dst.fc4.ever.indptr"}, RW_ERR_FORMAT,
                    "unexpected tensor dst.fc4.ever.indptr");
    expect_rejected(&(variant){.extra = "dst.fc1.ever.mask"}, RW_ERR_FORMAT,
                    "unexpected tensor dst.fc1.ever.mask");

    /* Values out of range. */
    int64_t saved = start[0];
    start[0] = 784 * 48 + 1;
    expect_rejected(&(variant){.rep = {{"dst.start_nnz", ST_I64, 1, {3}, start}}}, RW_ERR_FORMAT,
                    "tensor dst.start_nnz gives layer fc1 37633 weights, outside [0, 37632]");
    start[0] = saved;
    int64_t count;
    int32_t *idx2 = tensor_copy("dst.fc2.ever.indices", &count);
    int32_t keep = idx2[0];
    idx2[0] = 48;
    expect_rejected(&(variant){.rep = {{"dst.fc2.ever.indices", ST_I32, 1, {count}, idx2}}},
                    RW_ERR_FORMAT, "tensor dst.fc2.ever.indices: index 48 in row 0 is outside [0, 48)");
    idx2[0] = keep;
    ptr2[0] = 1;
    expect_rejected(&(variant){.rep = {{"dst.fc2.ever.indptr", ST_I32, 1, {33}, ptr2}}},
                    RW_ERR_FORMAT, "tensor dst.fc2.ever.indptr starts at 1, expected 0");
    ptr2[0] = 0;
    ptr2[5] = ptr2[4] - 1;
    expect_rejected(&(variant){.rep = {{"dst.fc2.ever.indptr", ST_I32, 1, {33}, ptr2}}},
                    RW_ERR_FORMAT, "tensor dst.fc2.ever.indptr is not a row pointer of 48 columns");
    /* An empty record: it must hold at least what the layer stores. */
    memset(ptr2, 0, 33 * sizeof(int32_t));
    expect_rejected(&(variant){.rep = {{"dst.fc2.ever.indptr", ST_I32, 1, {33}, ptr2},
                                       {"dst.fc2.ever.indices", ST_I32, 1, {0}, idx2}}},
                    RW_ERR_FORMAT, "tensor dst.fc2.ever.indices lacks position (row 0, column");
    int32_t *slots = tensor_copy("dst.window.slot_n", &n);
    slots[1] = 65;
    expect_rejected(&(variant){.rep = {{"dst.window.slot_n", ST_I32, 1, {2}, slots}}},
                    RW_ERR_FORMAT, "tensor dst.window.slot_n gives slot 1 65 columns, outside [0, 64]");
    float *pre = tensor_copy("dst.fc1.window.pre", &n);
    assert_int_equal(n, (int64_t)784 * 2 * bp);
    pre[2 * bp + 3] = NAN;
    expect_rejected(&(variant){.rep = {{"dst.fc1.window.pre", ST_F32, 2, {784, 2 * bp}, pre}}},
                    RW_ERR_FORMAT, "tensor dst.fc1.window.pre has a non-finite value at [1, 3]");
    pre[2 * bp + 3] = 0;
    pre[bp + 5] = 1; /* slot 1 is empty */
    expect_rejected(&(variant){.rep = {{"dst.fc1.window.pre", ST_F32, 2, {784, 2 * bp}, pre}}},
                    RW_ERR_FORMAT, "tensor dst.fc1.window.pre has 1 at [0, 69], a column no batch filled");
    free(start);
    free(ptr2);
    free(idx2);
    free(slots);
    free(pre);
    unlink(good_ckpt);
}

/* Hostile input-selection state: a RigL run with a budget of 100 inputs
 * stopped after step 12 (three removals). */
static void test_malformed_input_checkpoints(void **state)
{
    (void)state;
    rw_model *m;
    rw_trainer *t;
    make_run(&(recipe){0, 0, 1 + RW_DST_RIGL, 0, 0, 1}, &m, &t);
    int64_t stop = 12;
    assert_int_equal(rw_trainer_epoch(t, train_set, stop_at, &stop, NULL), RW_OK);
    assert_int_equal(rw_trainer_epoch(t, train_set, stop_at, &stop, NULL), RW_OK);
    int kept = input_select_kept(trainer_dst(t)->inputs);
    assert_true(kept > 100 && kept < 784);
    snprintf(good_ckpt, sizeof good_ckpt, "%s", tu_temp_path("good-inputs.ckpt"));
    assert_int_equal(rw_trainer_save_checkpoint(t, good_ckpt, NULL), RW_OK);
    rw_trainer_free(t);
    rw_model_free(m);
    char text[1024];
    meta_edit("dst.config", "\"input_budget\":100", "\"input_budget\":784", text, sizeof text);
    expect_rejected(&(variant){.key = "dst.config", .value = text}, RW_ERR_FORMAT,
                    "metadata dst.config: an input budget of 784: expected 1 to 783");
    meta_edit("dst.config", "\"input_budget\":100", "\"input_budget\":0", text, sizeof text);
    expect_rejected(&(variant){.key = "dst.config", .value = text}, RW_ERR_FORMAT,
                    "metadata dst.config input_budget 0: expected above 0 with the input settings");
    meta_edit("dst.config", "\"input_select\":0", "\"input_select\":7", text, sizeof text);
    expect_rejected(&(variant){.key = "dst.config", .value = text}, RW_ERR_FORMAT,
                    "metadata dst.config: unknown input criterion 7");
    meta_edit("dst.config", "\"input_end\":0.5", "\"input_end\":0.05", text, sizeof text);
    expect_rejected(&(variant){.key = "dst.config", .value = text}, RW_ERR_FORMAT,
                    "inputs must go within training (0 <= start 0.1 <= end 0.05 <= 1)");
    expect_rejected(&(variant){.skip = "dst.inputs.closed"}, RW_ERR_FORMAT,
                    "tensor dst.inputs.closed is missing");
    int64_t n;
    uint8_t *closed = tensor_copy("dst.inputs.closed", &n);
    assert_int_equal(n, 784);
    expect_rejected(&(variant){.rep = {{"dst.inputs.closed", ST_U8, 1, {783}, closed}}},
                    RW_ERR_FORMAT, "tensor dst.inputs.closed should be U8 of shape [784]");
    int open = 0;
    while (closed[open]) open++;
    closed[open] = 3;
    expect_rejected(&(variant){.rep = {{"dst.inputs.closed", ST_U8, 1, {784}, closed}}},
                    RW_ERR_FORMAT, "tensor dst.inputs.closed has 3 at");
    /* Closing an input the first layer still reads. */
    closed[open] = 1;
    expect_rejected(&(variant){.rep = {{"dst.inputs.closed", ST_U8, 1, {784}, closed}}},
                    RW_ERR_FORMAT, "which layer fc1 still connects");
    memset(closed, 1, 784);
    memset(closed, 0, 50);
    expect_rejected(&(variant){.rep = {{"dst.inputs.closed", ST_U8, 1, {784}, closed}}},
                    RW_ERR_FORMAT, "tensor dst.inputs.closed leaves 50 inputs open, fewer than the "
                                   "budget of 100");
    free(closed);
    unlink(good_ckpt);
    /* Without input selection the tensor is another run's. */
    make_run(&(recipe){0, 0, 1 + RW_DST_RIGL, 0, 0, 0}, &m, &t);
    snprintf(good_ckpt, sizeof good_ckpt, "%s", tu_temp_path("good-noinputs.ckpt"));
    assert_int_equal(rw_trainer_save_checkpoint(t, good_ckpt, NULL), RW_OK);
    rw_trainer_free(t);
    rw_model_free(m);
    expect_rejected(&(variant){.extra = "dst.inputs.closed"}, RW_ERR_FORMAT,
                    "unexpected tensor dst.inputs.closed");
    unlink(good_ckpt);
}

/* The saved metadata `trainer` as if its steps had been made on no
 * training set (a position check_position lets through). */
static void trainer_without_data(char *out, size_t size)
{
    st_file f;
    assert_int_equal(st_read(good_ckpt, &f), RW_OK);
    json_error_t err;
    json_t *o = json_loads(st_meta(&f, "trainer"), 0, &err);
    assert_non_null(o);
    json_object_set_new(o, "epoch_step", json_integer(0));
    json_object_set_new(o, "epoch_samples", json_integer(0));
    json_object_set_new(o, "data_samples", json_integer(0));
    json_object_set_new(o, "data_fingerprint", json_string("0000000000000000"));
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    snprintf(out, size, "%s", text);
    free(text);
    json_decref(o);
    st_file_free(&f);
}

/* Hostile N:M training state: each refused with a message naming the
 * file and the tensor or key. The run (mask decay 2:4 on the hidden
 * layers fc1 and fc2, fc3 dense) stops after step 7, β still above 0. */
static void test_malformed_nm_checkpoints(void **state)
{
    (void)state;
    recipe r = {0, 0, 0, 1 + RW_NM_DECAY, 1, 0};
    rw_model *m;
    rw_trainer *t;
    make_run(&r, &m, &t);
    /* A checkpoint before the first step comes back with β = 1. */
    snprintf(good_ckpt, sizeof good_ckpt, "%s", tu_temp_path("good-nm.ckpt"));
    assert_int_equal(rw_trainer_save_checkpoint(t, good_ckpt, NULL), RW_OK);
    rw_model *m2;
    rw_trainer *t2;
    assert_int_equal(rw_trainer_load_checkpoint(good_ckpt, 0, &m2, &t2, NULL), RW_OK);
    assert_true(rw_model_nm_decay_beta(m2) == 1.0);
    rw_trainer_free(t2);
    rw_model_free(m2);
    int64_t stop = 7;
    assert_int_equal(rw_trainer_epoch(t, train_set, stop_at, &stop, NULL), RW_OK);
    float beta = nm_train_of(m->layers[0])->beta;
    assert_true(beta > 0 && beta < 1);
    assert_int_equal(rw_trainer_save_checkpoint(t, good_ckpt, NULL), RW_OK);
    rw_trainer_free(t);
    rw_model_free(m);
    assert_int_equal(rw_trainer_load_checkpoint(good_ckpt, 0, &m2, &t2, NULL), RW_OK);
    assert_true(nm_train_of(m2->layers[0])->beta == beta);
    /* The memory limit counts the N:M state: the compressed copies and
     * last masks (6 bytes a slot) and W_eff (4 bytes a weight). */
    int64_t nm_bytes = (48 * 784 / 2 + 32 * 48 / 2) * 6 + (784 * 48 + 48 * 32) * 4;
    assert_int_equal(nm_train_bytes(m2), nm_bytes);
    st_file sf;
    assert_int_equal(st_read(good_ckpt, &sf), RW_OK);
    assert_int_equal(nm_checkpoint_memory(&sf, m2), nm_bytes);
    st_file_free(&sf);
    rw_memory_estimate est;
    rw_train_config tc = rw_trainer_config(t2);
    assert_int_equal(rw_estimate_trainer_memory(m2, &tc, &est), RW_OK);
    rw_trainer_free(t2);
    rw_model_free(m2);
    /* The loaded model's estimate counts the N:M state too. */
    assert_int_equal(exact_memory_limit(good_ckpt), est.total);

    /* Settings: missing, malformed, out of range, not this model's. */
    char text[1024];
    expect_rejected(&(variant){.key = "nm.config"}, RW_ERR_FORMAT,
                    "unexpected tensor nm.fc1.seen: the checkpoint holds no N:M training "
                    "settings (metadata nm.config)");
    expect_rejected(&(variant){.key = "nm.config", .value = "{\"n\":2}"}, RW_ERR_FORMAT,
                    "metadata nm.config is not a JSON object of exactly n, m, method, layers, "
                    "lambda, decay_end");
    expect_rejected(&(variant){.key = "nm.config", .value = "not json"}, RW_ERR_FORMAT,
                    "metadata nm.config is not a JSON object");
    meta_edit("nm.config", "\"n\":2", "\"n\":2,\"beta\":1", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config is not a JSON object of exactly");
    meta_edit("nm.config", "\"n\":2", "\"n\":\"2\"", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config is not a JSON object of exactly");
    meta_edit("nm.config", "\"n\":2", "\"n\":5", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config n 5, m 4: the pattern needs 1 <= n <= m <= 64");
    meta_edit("nm.config", "\"m\":4", "\"m\":128", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config n 2, m 128");
    meta_edit("nm.config", "\"method\":2", "\"method\":7", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config method 7 is unknown");
    meta_edit("nm.config", "\"layers\":0", "\"layers\":-1", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config layers -1 is unknown");
    meta_edit("nm.config", "\"lambda\":0.0", "\"lambda\":-1", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config lambda -1 is not a finite float >= 0");
    meta_edit("nm.config", "\"lambda\":0.0", "\"lambda\":1e39", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config lambda 1e+39 is not a finite float >= 0");
    meta_edit("nm.config", "\"lambda\":0.0", "\"lambda\":0.5", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config lambda 0.5 with method 2: only SR-STE (1) has one");
    meta_edit("nm.config", "\"decay_end\":0.5", "\"decay_end\":1.5", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config decay_end 1.5 is outside (0, 1]");
    meta_edit("nm.config", "\"decay_end\":0.5", "\"decay_end\":0", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config decay_end 0 is outside (0, 1]");
    /* M = 5 divides no layer's inputs; M = 8 fits them, but not the saved
     * masks; "all" adds fc3, whose masks are missing; "inner" drops fc1. */
    meta_edit("nm.config", "\"m\":4", "\"m\":5", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "metadata nm.config: layer fc1 has 784 inputs, not a multiple of M = 5");
    meta_edit("nm.config", "\"m\":4", "\"m\":8", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "tensor nm.fc1.seen should be U8 of shape [48, 196]");
    meta_edit("nm.config", "\"layers\":0", "\"layers\":1", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "tensor nm.fc3.seen is missing");
    meta_edit("nm.config", "\"layers\":0", "\"layers\":2", text, sizeof text);
    expect_rejected(&(variant){.key = "nm.config", .value = text}, RW_ERR_FORMAT,
                    "unexpected tensor nm.fc1.seen (not a state of this model's N:M training)");
    expect_rejected(&(variant){.key = "nm.state", .value = "{}"}, RW_ERR_FORMAT,
                    "unexpected metadata nm.state");
    /* The decay's place needs the run's length: steps without a training
     * set cannot give it. */
    trainer_without_data(text, sizeof text);
    expect_rejected(&(variant){.key = "trainer", .value = text}, RW_ERR_FORMAT,
                    "metadata trainer records 7 steps but no training set, so the N:M mask decay "
                    "(metadata nm.config) cannot be placed");

    /* Tensors: missing, extra, wrong dtype or shape, bad offsets. */
    expect_rejected(&(variant){.skip = "nm.fc2.seen"}, RW_ERR_FORMAT, "tensor nm.fc2.seen is missing");
    expect_rejected(&(variant){.extra = "nm.fc3.seen"}, RW_ERR_FORMAT,
                    "unexpected tensor nm.fc3.seen (not a state of this model's N:M training)");
    expect_rejected(&(variant){.extra = "nm.fc1.mask"}, RW_ERR_FORMAT, "unexpected tensor nm.fc1.mask");
    expect_rejected(&(variant){.extra = "nm.fc01.seen"}, RW_ERR_FORMAT,
                    "unexpected tensor nm.fc01.seen");
    expect_rejected(&(variant){.extra = "nm.beta"}, RW_ERR_FORMAT, "unexpected tensor nm.beta");
    int64_t n;
    uint8_t *seen1 = tensor_copy("nm.fc1.seen", &n);
    assert_int_equal(n, 48 * 392);
    float *as_f32 = calloc((size_t)n, sizeof(float));
    expect_rejected(&(variant){.patch = "nm.fc1.seen", .n = n, .data = as_f32}, RW_ERR_FORMAT,
                    "tensor nm.fc1.seen should be U8 of shape [48, 392]");
    expect_rejected(&(variant){.rep = {{"nm.fc1.seen", ST_U8, 1, {n}, seen1}}}, RW_ERR_FORMAT,
                    "tensor nm.fc1.seen should be U8 of shape [48, 392]");
    uint8_t *seen2 = tensor_copy("nm.fc2.seen", &n);
    assert_int_equal(n, 32 * 24);
    expect_rejected(&(variant){.rep = {{"nm.fc1.seen", ST_U8, 2, {32, 24}, seen2}}}, RW_ERR_FORMAT,
                    "tensor nm.fc1.seen should be U8 of shape [48, 392]");
    uint8_t keep0 = seen2[0], keep1 = seen2[1];
    seen2[1] = 4; /* row 0, group 0 */
    expect_rejected(&(variant){.rep = {{"nm.fc2.seen", ST_U8, 2, {32, 24}, seen2}}}, RW_ERR_FORMAT,
                    "tensor nm.fc2.seen: offset 4 in row 0, group 0 is not below M = 4");
    seen2[1] = 200; /* would shift a 64-bit mask out of range */
    expect_rejected(&(variant){.rep = {{"nm.fc2.seen", ST_U8, 2, {32, 24}, seen2}}}, RW_ERR_FORMAT,
                    "tensor nm.fc2.seen: offset 200 in row 0, group 0 is not below M = 4");
    seen2[0] = seen2[1] = 1;
    expect_rejected(&(variant){.rep = {{"nm.fc2.seen", ST_U8, 2, {32, 24}, seen2}}}, RW_ERR_FORMAT,
                    "tensor nm.fc2.seen: offsets in row 0, group 0 are not strictly increasing");
    seen2[0] = keep1;
    seen2[1] = keep0;
    expect_rejected(&(variant){.rep = {{"nm.fc2.seen", ST_U8, 2, {32, 24}, seen2}}}, RW_ERR_FORMAT,
                    "tensor nm.fc2.seen: offsets in row 0, group 0 are not strictly increasing");
    free(seen1);
    free(seen2);
    free(as_f32);
    unlink(good_ckpt);
}

/* The estimate from the configs equals the one from the model built from
 * them, and both grow as they should. */
static void test_memory_estimates(void **state)
{
    (void)state;
    int sizes[] = {784, 300, 100, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    mc.sparsity = 0.9;
    mc.dense_last = 1;
    rw_train_config tc = rw_train_config_default();
    tc.optimizer = RW_OPT_ADAMW;
    rw_memory_estimate a, b, sgd, bigger;
    assert_int_equal(rw_estimate_memory(&mc, &tc, &a), RW_OK);
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    assert_int_equal(rw_estimate_trainer_memory(m, &tc, &b), RW_OK);
    assert_memory_equal(&a, &b, sizeof a);
    int64_t params = 0;
    for (int l = 0; l < 3; l++) params += t_count(m, l) + m->layers[l]->out;
    assert_int_equal(a.optimizer, 8 * params);
    assert_int_equal(a.gradients, 4 * params);
    assert_int_equal(a.total, a.model + a.optimizer + a.gradients + a.activations);
    tc.optimizer = RW_OPT_SGD;
    assert_int_equal(rw_estimate_memory(&mc, &tc, &sgd), RW_OK);
    assert_int_equal(sgd.optimizer, 4 * params);
    tc.batch = 1024;
    assert_int_equal(rw_estimate_memory(&mc, &tc, &bigger), RW_OK);
    assert_true(bigger.activations > 3 * sgd.activations); /* the evaluation batch is fixed */
    rw_model_free(m);

    /* A width nobody can afford is estimated, not allocated. */
    int wide[] = {784, 16000000, 10};
    mc.sizes = wide;
    mc.n_layers = 2;
    mc.dense_last = 0;
    mc.sparsity = 0.5;
    assert_int_equal(rw_estimate_memory(&mc, &tc, &a), RW_OK);
    assert_true(a.total > ((int64_t)1 << 36));
    wide[1] = RW_MAX_WIDTH + 1;
    assert_int_equal(rw_estimate_memory(&mc, &tc, &a), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "expected 1 to 16777216"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_sgd_bit_identical),
        cmocka_unit_test(test_resume_adamw_dense_bit_identical),
        cmocka_unit_test(test_resume_dst_static),
        cmocka_unit_test(test_resume_inputs),
        cmocka_unit_test(test_resume_dst_set),
        cmocka_unit_test(test_resume_dst_rigl),
        cmocka_unit_test(test_resume_dst_snfs),
        cmocka_unit_test(test_resume_dst_mest),
        cmocka_unit_test(test_resume_dst_granet),
        cmocka_unit_test(test_resume_dst_hebbian),
        cmocka_unit_test(test_resume_nm_ste),
        cmocka_unit_test(test_resume_nm_srste),
        cmocka_unit_test(test_resume_nm_decay),
        cmocka_unit_test(test_resume_nm_hidden),
        cmocka_unit_test(test_checkpoint_is_a_model_file),
        cmocka_unit_test(test_diverged_state_is_not_saved),
        cmocka_unit_test(test_other_data_is_refused),
        cmocka_unit_test(test_malformed_checkpoints),
        cmocka_unit_test(test_malformed_dst_checkpoints),
        cmocka_unit_test(test_malformed_input_checkpoints),
        cmocka_unit_test(test_malformed_nm_checkpoints),
        cmocka_unit_test(test_memory_estimates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
