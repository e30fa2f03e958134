/* Training from dense to sparse (rw_train_prune): GMP reaches the target
 * exactly while its storage only shrinks; IMP's rewind restores the saved
 * weights bit for bit; a soup is the elementwise mean of its members on
 * their shared mask; ISS-P shrinks exactly the smallest weights and ends at
 * the target; none of it depends on the thread count. */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/trainer.h"
#include "sparsity/dst.h"
#include "sparsity/train_prune.h"
#include "testmodel.h"
#include "testutil.h"

static rw_dataset *train_set; /* the first 1000 samples of the subset */

static int setup(void **state)
{
    (void)state;
    return tu_small_head(0, 1000, &train_set);
}

static int teardown(void **state)
{
    (void)state;
    rw_dataset_free(train_set);
    return 0;
}

/* 784-128-128-10, dense (stored dense: rw_train_prune makes it CSR). */
static rw_model *dense_model(uint64_t seed)
{
    int sizes[] = {784, 128, 128, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    mc.sparsity = 0;
    mc.seed = seed;
    rw_model *m;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    float mean, std;
    rw_dataset_stats(train_set, &mean, &std);
    rw_model_set_normalization(m, mean, std);
    return m;
}

static rw_train_config train_config(int epochs)
{
    rw_train_config tc = rw_train_config_default();
    tc.epochs = epochs;
    return tc;
}

static int64_t model_nnz(const rw_model *m)
{
    int64_t n = 0;
    for (int l = 0; l < m->n_layers; l++) n += t_count(m, l);
    return n;
}

static void assert_same_model(const rw_model *a, const rw_model *b)
{
    for (int l = 0; l < a->n_layers; l++) {
        const csr_matrix *x = &(*t_csr(a, l)), *y = &(*t_csr(b, l));
        assert_true(t_sparse(a, l) && t_sparse(b, l));
        assert_int_equal(x->nnz, y->nnz);
        assert_memory_equal(x->indptr, y->indptr, sizeof(int32_t) * (size_t)(x->rows + 1));
        assert_memory_equal(x->indices, y->indices, sizeof(int32_t) * (size_t)x->nnz);
        assert_memory_equal(x->values, y->values, sizeof(float) * (size_t)x->nnz);
        assert_memory_equal(t_b(a, l), t_b(b, l),
                            sizeof(float) * (size_t)a->layers[l]->out);
    }
}

/* ---- GMP ----------------------------------------------------------------- */

typedef struct {
    const rw_model *model;
    int64_t steps, last_nnz, last_bytes;
    int monotone;      /* nonzeros and bytes never grew */
    int shrunk_seen;   /* some update reported shrunk weights */
} prune_watch;

static void on_prune(const rw_topology_stats *s, void *user)
{
    prune_watch *w = user;
    int64_t nnz = 0, bytes = 0;
    for (int l = 0; l < s->n_layers; l++) {
        rw_layer_info li;
        assert_int_equal(rw_model_layer_info(w->model, l, &li), RW_OK);
        assert_int_equal(li.nonzeros, s->nonzeros[l]);
        nnz += li.nonzeros;
        bytes += li.bytes;
        if (s->shrunk && s->shrunk[l] > 0) w->shrunk_seen = 1;
        /* The arrays are exactly as long as the pattern: the transposed
         * view covers every entry once. */
        const csr_matrix *m = t_csr((const rw_model *)w->model, l);
        assert_int_equal(m->t_indptr[m->cols], m->nnz);
        /* Memory follows the pattern: the value and index arrays are
         * reallocated to the weights left, not kept at their first size. */
        if (!s->shrunk) {
            assert_true(malloc_usable_size(m->values) < sizeof(float) * (size_t)m->nnz + 128);
            assert_true(malloc_usable_size(m->indices) < sizeof(int32_t) * (size_t)m->nnz + 128);
        }
    }
    if (w->steps > 0 && (nnz > w->last_nnz || bytes > w->last_bytes)) w->monotone = 0;
    w->last_nnz = nnz;
    w->last_bytes = bytes;
    w->steps++;
}

static rw_model *run_prune(const rw_prune_schedule *s, int epochs, int threads, prune_watch *w,
                           rw_prune_epoch_fn on_epoch, void *user)
{
    rw_model *m = dense_model(7);
    rw_train_config tc = train_config(epochs);
    memset(w, 0, sizeof *w);
    w->model = m;
    w->monotone = 1;
    rw_set_num_threads(threads);
    assert_int_equal(rw_train_prune(m, &tc, s, train_set, on_epoch, on_prune,
                                    on_epoch ? user : w),
                     RW_OK);
    return m;
}

static void test_gmp_reaches_the_target_and_storage_only_shrinks(void **state)
{
    (void)state;
    rw_prune_schedule s = rw_prune_schedule_preset(RW_PRUNE_GMP, 0.75);
    s.distribution = RW_DIST_UNIFORM;
    s.update_every = 2;
    prune_watch w;
    rw_model *m = run_prune(&s, 2, 1, &w, NULL, NULL);
    assert_true(w.steps > 3);
    assert_true(w.monotone);
    assert_false(w.shrunk_seen);
    /* Uniform: every layer keeps exactly a quarter of its in·out weights. */
    int sizes[] = {784, 128, 128, 10};
    for (int l = 0; l < 3; l++) {
        assert_true(t_sparse(m, l));
        assert_int_equal(t_csr(m, l)->nnz, sizes[l] * sizes[l + 1] / 4);
        assert_int_equal(csr_validate(&(*t_csr(m, l)), "gmp"), RW_OK);
    }
    assert_true(rw_model_sparsity(m) == 0.75);
    assert_int_equal(w.last_nnz, model_nnz(m));
    rw_eval_result r;
    assert_int_equal(rw_evaluate(m, train_set, &r), RW_OK);
    print_message("gmp: %lld pruning steps, train accuracy %.3f\n", (long long)w.steps, r.accuracy);
    assert_true(r.accuracy > 0.3);
    rw_model_free(m);
}

/* ---- IMP ----------------------------------------------------------------- */

static int stop_at_step(const rw_progress *p, void *user)
{
    return p->step == *(int64_t *)user;
}

static void test_imp_rewind_restores_the_saved_weights(void **state)
{
    (void)state;
    rw_model *m = dense_model(3);
    rw_prune_config to_csr = {0.0, RW_PRUNE_MAGNITUDE, RW_PRUNE_PER_LAYER, NULL, 0};
    assert_int_equal(rw_model_prune(m, &to_csr), RW_OK);
    rw_train_config tc = train_config(2);
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    int64_t k = 5, spe = (rw_dataset_count(train_set) + tc.batch - 1) / tc.batch;
    assert_int_equal(rw_trainer_epoch(t, train_set, stop_at_step, &k, NULL), RW_OK);
    assert_int_equal(t->step, k);
    /* The test's own copy of every weight, bias and momentum at step k. */
    int n = m->n_layers;
    float *saved_w[3], *saved_m[3], *saved_b[3];
    for (int l = 0; l < n; l++) {
        const csr_matrix *w = t_csr(m, l);
        size_t nnz = (size_t)w->nnz, out = (size_t)w->rows;
        saved_w[l] = malloc(sizeof(float) * nnz);
        saved_m[l] = malloc(sizeof(float) * nnz);
        saved_b[l] = malloc(sizeof(float) * out);
        memcpy(saved_w[l], w->values, sizeof(float) * nnz);
        memcpy(saved_m[l], t->m1[m->first_param[l]], sizeof(float) * nnz);
        memcpy(saved_b[l], t_b(m, l), sizeof(float) * out);
    }
    imp_rewind *point;
    assert_int_equal(imp_rewind_save(t, &point), RW_OK);
    while (t->epoch < tc.epochs) assert_int_equal(rw_trainer_epoch(t, train_set, NULL, NULL, NULL), RW_OK);
    rw_trainer_free(t);
    /* Dense rows of the saved copy: a position's column is its index. */
    rw_prune_config pc = {0.8, RW_PRUNE_MAGNITUDE, RW_PRUNE_GLOBAL, NULL, 0};
    assert_int_equal(rw_model_prune(m, &pc), RW_OK);
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    assert_int_equal(imp_rewind_apply(t, point, spe), RW_OK);
    int64_t checked = 0, differed = 0;
    for (int l = 0; l < n; l++) {
        const csr_matrix *w = t_csr(m, l);
        const float *bias = t_b(m, l), *m1 = t->m1[m->first_param[l]];
        for (int o = 0; o < w->rows; o++)
            for (int q = w->indptr[o]; q < w->indptr[o + 1]; q++) {
                size_t dense = (size_t)o * w->cols + w->indices[q];
                assert_memory_equal(&w->values[q], &saved_w[l][dense], sizeof(float));
                assert_memory_equal(&m1[q], &saved_m[l][dense], sizeof(float));
                checked++;
            }
        assert_memory_equal(bias, saved_b[l], sizeof(float) * (size_t)w->rows);
        for (int o = 0; o < w->rows; o++) differed += bias[o] != 0;
    }
    assert_int_equal(checked, model_nnz(m));
    assert_true(differed > 0);
    /* The schedule goes on from step k, mid-epoch. */
    assert_int_equal(t->step, k);
    assert_int_equal(t->epoch, 0);
    assert_int_equal(t->epoch_step, k);
    rw_epoch_stats es;
    assert_int_equal(rw_trainer_epoch(t, train_set, NULL, NULL, &es), RW_OK);
    assert_int_equal(es.step, spe);
    rw_trainer_free(t);
    imp_rewind_free(point);
    for (int l = 0; l < n; l++) free(saved_w[l]), free(saved_m[l]), free(saved_b[l]);
    rw_model_free(m);
}

static void test_imp_runs_rounds_to_the_target(void **state)
{
    (void)state;
    rw_prune_schedule s = rw_prune_schedule_preset(RW_PRUNE_IMP, 0.9);
    s.rounds = 2;
    s.rewind_step = 3;
    prune_watch w;
    rw_model *m = run_prune(&s, 3, 1, &w, NULL, NULL);
    assert_int_equal(w.steps, 2);
    assert_true(w.monotone);
    assert_true(fabs(rw_model_sparsity(m) - 0.9) < 1e-3);
    rw_model_free(m);
}

/* ---- Soup ---------------------------------------------------------------- */

typedef struct {
    prune_watch w;
    int members;
    float *member_w[3][4]; /* [layer][member] the members' values after retraining */
    float *member_b[3][4];
    int soups_checked;
} soup_watch;

static int on_soup_epoch(const rw_prune_epoch *e, void *user)
{
    soup_watch *s = user;
    const rw_model *m = e->model;
    if (e->phase == 1 && e->member >= 0 && e->epoch == e->epochs) {
        for (int l = 0; l < m->n_layers; l++) {
            const csr_matrix *w = t_csr(m, l);
            s->member_w[l][e->member] = malloc(sizeof(float) * (size_t)w->nnz);
            s->member_b[l][e->member] = malloc(sizeof(float) * (size_t)w->rows);
            memcpy(s->member_w[l][e->member], w->values, sizeof(float) * (size_t)w->nnz);
            memcpy(s->member_b[l][e->member], t_b(m, l), sizeof(float) * (size_t)w->rows);
        }
        s->members++;
    }
    if (e->phase == 1 && e->member == -1) {
        assert_int_equal(s->members, 3);
        for (int l = 0; l < m->n_layers; l++) {
            const csr_matrix *w = t_csr(m, l);
            const float *bias = t_b(m, l);
            int64_t differs = 0;
            for (int k = 0; k < w->nnz; k++) {
                double sum = 0;
                for (int j = 0; j < 3; j++) sum += s->member_w[l][j][k];
                float mean = (float)(sum / 3);
                assert_memory_equal(&w->values[k], &mean, sizeof(float));
                differs += s->member_w[l][0][k] != s->member_w[l][1][k];
            }
            for (int o = 0; o < w->rows; o++) {
                double sum = 0;
                for (int j = 0; j < 3; j++) sum += s->member_b[l][j][o];
                float mean = (float)(sum / 3);
                assert_memory_equal(&bias[o], &mean, sizeof(float));
            }
            /* Different data orders made different members. */
            assert_true(differs > w->nnz / 2);
        }
        s->soups_checked++;
    }
    return 0;
}

static void on_soup_prune(const rw_topology_stats *st, void *user)
{
    on_prune(st, &((soup_watch *)user)->w);
}

static void test_soup_is_the_mean_of_its_members_and_keeps_the_mask(void **state)
{
    (void)state;
    rw_prune_schedule s = rw_prune_schedule_preset(RW_PRUNE_SOUP, 0.8);
    s.rounds = 1;
    s.soup_size = 3;
    soup_watch sw;
    memset(&sw, 0, sizeof sw);
    rw_model *m = dense_model(5);
    sw.w.model = m;
    sw.w.monotone = 1;
    rw_train_config tc = train_config(4);
    rw_set_num_threads(1);
    assert_int_equal(rw_train_prune(m, &tc, &s, train_set, on_soup_epoch, on_soup_prune, &sw),
                     RW_OK);
    assert_int_equal(sw.soups_checked, 1);
    assert_int_equal(sw.w.steps, 1);
    /* The soup keeps the mask the round pruned to. */
    assert_int_equal(model_nnz(m), sw.w.last_nnz);
    assert_true(fabs(rw_model_sparsity(m) - 0.8) < 1e-3);
    for (int l = 0; l < 3; l++)
        for (int j = 0; j < 3; j++) free(sw.member_w[l][j]), free(sw.member_b[l][j]);
    rw_model_free(m);
}

/* ---- ISS-P --------------------------------------------------------------- */

typedef struct {
    float v;
    int k;
} entry;

static int by_magnitude(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    float ax = fabsf(x->v), ay = fabsf(y->v);
    if (ax != ay) return ax < ay ? -1 : 1;
    return (x->k > y->k) - (x->k < y->k);
}

/* One layer, updates called by hand: at each pruning step before the end
 * exactly the (start - target) smallest weights are halved and nothing is
 * removed; at the end exactly those beyond the top quarter are removed. */
static void test_issp_shrinks_exactly_the_smallest_then_removes(void **state)
{
    (void)state;
    rw_model *m = dense_model(11);
    rw_prune_config to_csr = {0.0, RW_PRUNE_MAGNITUDE, RW_PRUNE_PER_LAYER, NULL, 0};
    assert_int_equal(rw_model_prune(m, &to_csr), RW_OK);
    rw_dst_config c = rw_dst_config_preset(RW_DST_STATIC);
    c.final_sparsity = 0.75;
    c.final_distribution = RW_DIST_UNIFORM;
    c.prune_start = 0;
    c.prune_end = 0.5;
    c.update_every = 10;
    c.shrink = 0.5;
    rw_train_config tc = rw_train_config_default();
    tc.batch = 16;
    rw_trainer *t;
    assert_int_equal(rw_trainer_create(m, &tc, &t), RW_OK);
    int n = m->n_layers;
    dst_state *d;
    assert_int_equal(dst_create(&c, m, t->ws.bp, &d), RW_OK);
    int64_t total = 100, size[3];
    for (int l = 0; l < n; l++) size[l] = (int64_t)m->layers[l]->in * m->layers[l]->out;
    for (int64_t step = 10; step <= 50; step += 10) {
        float *before[3];
        for (int l = 0; l < n; l++) {
            before[l] = malloc(sizeof(float) * (size_t)t_csr(m, l)->nnz);
            memcpy(before[l], t_csr(m, l)->values, sizeof(float) * (size_t)t_csr(m, l)->nnz);
        }
        const rw_topology_stats *st;
        trainer_step_info info = {.batch_n = 16, .step = step, .steps_per_epoch = 1000, .total_steps = total};
        assert_int_equal(dst_after_step(d, t, &info, &st), RW_OK);
        assert_non_null(st);
        double p = (double)step / 50.0;
        for (int l = 0; l < n; l++) {
            const csr_matrix *w = &(*t_csr(m, l));
            int64_t final = size[l] / 4;
            int64_t target = llround((double)final + (double)(size[l] - final) * pow(1 - p, 3));
            int64_t k = size[l] - target;
            /* The expected choice: the k smallest |w| before, ties by index. */
            entry *e = malloc(sizeof(entry) * (size_t)size[l]);
            for (int q = 0; q < (int)size[l]; q++) e[q] = (entry){before[l][q], q};
            qsort(e, (size_t)size[l], sizeof(entry), by_magnitude);
            uint8_t *chosen = calloc((size_t)size[l], 1);
            for (int64_t q = 0; q < k; q++) chosen[e[q].k] = 1;
            if (step < 50) {
                assert_int_equal(w->nnz, size[l]);
                assert_int_equal(st->shrunk[l], k);
                assert_int_equal(st->dropped[l], 0);
                for (int q = 0; q < w->nnz; q++) {
                    float want = chosen[q] ? before[l][q] * 0.5f : before[l][q];
                    assert_memory_equal(&w->values[q], &want, sizeof(float));
                }
            } else {
                /* The end: the chosen are gone, the rest kept as they were. */
                assert_int_equal(k, size[l] - final);
                assert_int_equal(w->nnz, final);
                assert_int_equal(st->shrunk[l], 0);
                int q = 0;
                for (int j = 0; j < (int)size[l]; j++) {
                    if (chosen[j]) continue;
                    assert_int_equal(w->indices[q], j % m->layers[l]->in);
                    assert_memory_equal(&w->values[q], &before[l][j], sizeof(float));
                    q++;
                }
                assert_int_equal(q, w->nnz);
            }
            free(e);
            free(chosen);
            free(before[l]);
        }
    }
    assert_true(rw_model_sparsity(m) == 0.75);
    dst_free(d);
    rw_trainer_free(t);
    rw_model_free(m);
}

static void test_issp_training_ends_at_the_target(void **state)
{
    (void)state;
    rw_prune_schedule s = rw_prune_schedule_preset(RW_PRUNE_ISSP, 0.9);
    s.update_every = 2;
    prune_watch w;
    rw_model *m = run_prune(&s, 2, 1, &w, NULL, NULL);
    assert_true(w.shrunk_seen);
    assert_true(fabs(rw_model_sparsity(m) - 0.9) < 1e-4);
    rw_eval_result r;
    assert_int_equal(rw_evaluate(m, train_set, &r), RW_OK);
    print_message("issp: train accuracy %.3f\n", r.accuracy);
    assert_true(r.accuracy > 0.3);
    rw_model_free(m);
}

/* ---- Threads and errors ------------------------------------------------- */

static void test_thread_count_does_not_change_results(void **state)
{
    (void)state;
    rw_prune_method methods[] = {RW_PRUNE_GMP, RW_PRUNE_IMP, RW_PRUNE_SOUP, RW_PRUNE_ISSP};
    for (int i = 0; i < 4; i++) {
        rw_prune_schedule s = rw_prune_schedule_preset(methods[i], 0.9);
        s.update_every = 2;
        s.rounds = 1;
        s.soup_size = 2;
        int epochs = methods[i] == RW_PRUNE_SOUP ? 3 : 2;
        prune_watch w1, w2;
        rw_model *one = run_prune(&s, epochs, 1, &w1, NULL, NULL);
        rw_model *two = run_prune(&s, epochs, 2, &w2, NULL, NULL);
        assert_int_equal(w1.steps, w2.steps);
        assert_same_model(one, two);
        rw_model_free(one);
        rw_model_free(two);
    }
}

/* A caller that drives an rw_trainer itself (rewire train, to checkpoint
 * the run) with rw_train_prune_prepare and the configuration of
 * rw_prune_schedule_dst_config trains exactly as rw_train_prune. */
static void test_gradual_pruning_is_a_dst_trainer(void **state)
{
    (void)state;
    rw_prune_method methods[] = {RW_PRUNE_GMP, RW_PRUNE_ISSP};
    rw_set_num_threads(1);
    for (int i = 0; i < 2; i++) {
        rw_prune_schedule s = rw_prune_schedule_preset(methods[i], 0.8);
        s.update_every = 4;
        rw_train_config tc = train_config(2);
        rw_model *a = dense_model(7);
        assert_int_equal(rw_train_prune(a, &tc, &s, train_set, NULL, NULL, NULL), RW_OK);
        rw_model *b = dense_model(7);
        rw_dst_config dc;
        rw_trainer *t = NULL;
        assert_int_equal(rw_train_prune_prepare(b, &s), RW_OK);
        assert_int_equal(rw_prune_schedule_dst_config(&s, &dc), RW_OK);
        assert_true(dc.shrink == (methods[i] == RW_PRUNE_ISSP ? 0.5 : 0));
        assert_int_equal(rw_trainer_create(b, &tc, &t), RW_OK);
        assert_int_equal(rw_trainer_set_dst(t, &dc), RW_OK);
        for (int e = 0; e < tc.epochs; e++) {
            rw_epoch_stats es;
            assert_int_equal(rw_trainer_epoch(t, train_set, NULL, NULL, &es), RW_OK);
        }
        rw_trainer_free(t);
        assert_same_model(a, b);
        rw_model_free(a);
        rw_model_free(b);
    }
    rw_dst_config dc;
    rw_prune_schedule imp = rw_prune_schedule_preset(RW_PRUNE_IMP, 0.8);
    assert_int_equal(rw_prune_schedule_dst_config(&imp, &dc), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "IMP"));
    /* Preparing a model already at the target is refused. */
    rw_prune_schedule gmp = rw_prune_schedule_preset(RW_PRUNE_GMP, 0.8);
    rw_model *m = dense_model(1);
    rw_prune_config pc = {0.9, RW_PRUNE_MAGNITUDE, RW_PRUNE_PER_LAYER, NULL, 0};
    assert_int_equal(rw_model_prune(m, &pc), RW_OK);
    assert_int_equal(rw_train_prune_prepare(m, &gmp), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "already at sparsity"));
    rw_model_free(m);
}

static void test_bad_schedules_are_rejected(void **state)
{
    (void)state;
    rw_model *m = dense_model(1);
    rw_train_config tc = train_config(4);
    rw_prune_schedule s = rw_prune_schedule_preset(RW_PRUNE_SOUP, 0.9);
    s.rounds = 2;
    s.soup_size = 2; /* 1 + 2·2 = 5 phases for 4 epochs */
    assert_int_equal(rw_train_prune(m, &tc, &s, train_set, NULL, NULL, NULL),
                     RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "5 phases"));
    int first, phase;
    s.soup_size = 1;
    tc.epochs = 10; /* 1 + 2 phases: 3 epochs each, the remainder to the first */
    assert_int_equal(rw_prune_phase_epochs(&tc, &s, &first, &phase), RW_OK);
    assert_int_equal(first, 4);
    assert_int_equal(phase, 3);
    s = rw_prune_schedule_preset(RW_PRUNE_IMP, 0.9);
    s.rewind_step = 1000000;
    assert_int_equal(rw_train_prune(m, &tc, &s, train_set, NULL, NULL, NULL),
                     RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "rewind step"));
    s = rw_prune_schedule_preset(RW_PRUNE_ISSP, 0.9);
    s.shrink = 1.0;
    assert_int_equal(rw_train_prune(m, &tc, &s, train_set, NULL, NULL, NULL),
                     RW_ERR_INVALID_ARGUMENT);
    s = rw_prune_schedule_preset(RW_PRUNE_GMP, 1.0);
    assert_int_equal(rw_train_prune(m, &tc, &s, train_set, NULL, NULL, NULL),
                     RW_ERR_INVALID_ARGUMENT);
    rw_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gmp_reaches_the_target_and_storage_only_shrinks),
        cmocka_unit_test(test_imp_rewind_restores_the_saved_weights),
        cmocka_unit_test(test_imp_runs_rounds_to_the_target),
        cmocka_unit_test(test_soup_is_the_mean_of_its_members_and_keeps_the_mask),
        cmocka_unit_test(test_issp_shrinks_exactly_the_smallest_then_removes),
        cmocka_unit_test(test_issp_training_ends_at_the_target),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_gradual_pruning_is_a_dst_trainer),
        cmocka_unit_test(test_bad_schedules_are_rejected),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
