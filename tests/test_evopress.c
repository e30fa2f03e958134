/* EvoPress ("EvoPress: Towards Optimal Dynamic Model Compression via
 * Evolutionary Search"): the search keeps the levels' sum (so the
 * average sparsity) exact and never ends worse than its uniform start;
 * through a tiny GPT, the model it stitches from its database is the one
 * rw_lm_prune makes by pruning each map directly at the chosen sparsity;
 * --layerwise's per-map sparsities (map_sparsity). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "sparsity/evopress.h"
#include "testutil.h"

/* ---- The search alone, on a fitness with a known best ---- */

enum { UNITS = 12 };

typedef struct {
    int best[UNITS]; /* the profile of lowest fitness (summing to zero) */
    int calls;
    int worse_seen;  /* a parent fitness above an earlier one */
    double last;
    int sum_broken;
    const int *lo, *hi;
} toy;

/* Quadratic distance to best, plus a stage-dependent term so that the
 * early stages disagree a little with the last one, as fewer tokens do. */
static double toy_fitness(const int *level, int stage, void *user)
{
    toy *t = user;
    t->calls++;
    double f = 0;
    for (int u = 0; u < UNITS; u++) {
        double d = level[u] - t->best[u];
        f += d * d * (1 + 0.1 * u) + (stage < 2 ? 0.3 * sin(level[u] * 1.7 + u + stage) : 0);
    }
    return f;
}

static void toy_generation(int g, double fitness, const int *level, void *user)
{
    toy *t = user;
    if (g > 0 && fitness > t->last) t->worse_seen = 1;
    t->last = fitness;
    int sum = 0;
    for (int u = 0; u < UNITS; u++) {
        sum += level[u];
        if (level[u] < t->lo[u] || level[u] > t->hi[u]) t->sum_broken = 1;
    }
    if (sum != 0) t->sum_broken = 1;
}

static void search_keeps_the_sum_and_improves(void **state)
{
    (void)state;
    int lo[UNITS], hi[UNITS];
    toy t = {{0}, 0, 0, 0, 0, lo, hi};
    for (int u = 0; u < UNITS; u++) lo[u] = -3 - u % 4, hi[u] = 2 + u % 5;
    /* A best profile inside the ranges, summing to zero. */
    int b[UNITS] = {-3, 2, 1, -2, 3, 0, -1, 4, -3, 1, -2, 0};
    memcpy(t.best, b, sizeof b);
    int survivors[2] = {4, 2};
    evopress_config c = {UNITS, lo, hi, 300, 16, 3, 3, survivors, 7, toy_generation, &t};
    int level[UNITS] = {0};
    double start = toy_fitness(level, 2, &t), f;
    assert_int_equal(evopress_search(&c, toy_fitness, &t, level, &f), RW_OK);
    assert_false(t.sum_broken);
    assert_false(t.worse_seen);
    assert_true(f <= start);
    assert_true(fabs(f - toy_fitness(level, 2, &t)) < 1e-12);
    /* The quadratic's best is found exactly. */
    for (int u = 0; u < UNITS; u++) assert_int_equal(level[u], b[u]);
    /* Deterministic for a seed. */
    int again[UNITS] = {0};
    c.generations = 40;
    c.on_generation = NULL;
    double f1, f2;
    assert_int_equal(evopress_search(&c, toy_fitness, &t, again, &f1), RW_OK);
    int other[UNITS] = {0};
    assert_int_equal(evopress_search(&c, toy_fitness, &t, other, &f2), RW_OK);
    assert_memory_equal(again, other, sizeof again);
    assert_true(f1 == f2);
}

/* When no offspring is better the parent stays: a fitness whose minimum is
 * the start. */
static double start_is_best(const int *level, int stage, void *user)
{
    (void)stage, (void)user;
    double f = 1;
    for (int u = 0; u < UNITS; u++) f += fabs((double)level[u]);
    return f;
}

static void search_never_leaves_a_best_start(void **state)
{
    (void)state;
    int lo[UNITS], hi[UNITS], level[UNITS] = {0};
    for (int u = 0; u < UNITS; u++) lo[u] = -2, hi[u] = 2;
    evopress_config c = {UNITS, lo, hi, 30, 8, 2, 1, NULL, 3, NULL, NULL};
    double f;
    assert_int_equal(evopress_search(&c, start_is_best, NULL, level, &f), RW_OK);
    assert_true(f == 1.0);
    for (int u = 0; u < UNITS; u++) assert_int_equal(level[u], 0);
}

static void search_bad_configs(void **state)
{
    (void)state;
    int lo[UNITS], hi[UNITS], level[UNITS] = {0};
    for (int u = 0; u < UNITS; u++) lo[u] = -2, hi[u] = 2;
    int survivors[2] = {4, 8};
    evopress_config c = {UNITS, lo, hi, 3, 8, 2, 3, survivors, 3, NULL, NULL};
    double f;
    assert_int_equal(evopress_search(&c, start_is_best, NULL, level, &f), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "survivors"));
    c.stages = 1;
    level[0] = 1;
    assert_int_equal(evopress_search(&c, start_is_best, NULL, level, &f), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "sum"));
    level[0] = 3, level[1] = -3;
    assert_int_equal(evopress_search(&c, start_is_best, NULL, level, &f), RW_ERR_INVALID_ARGUMENT);
}

/* ---- Through a GPT ---- */

static char *make_text(size_t *len)
{
    static const char *const words[] = {"to ",  "be ", "or ",       "not ", "that ",
                                        "is ",  "the ", "question. ", "\n"};
    return tu_word_text(words, 9, 9, len);
}

/* Every block map's weights of a and b, dense, are equal bit for bit. */
static void assert_same_maps(rw_model *a, rw_model *b)
{
    int maps = 0;
    for (int i = 0; i < rw_model_param_count(a); i++) {
        rw_param_view va, vb;
        assert_int_equal(rw_model_param(a, i, &va), RW_OK);
        assert_int_equal(rw_model_param(b, i, &vb), RW_OK);
        assert_string_equal(va.name, vb.name);
        if (!va.is_weight || strncmp(va.name, "blocks.", 7) != 0) continue;
        maps++;
        assert_int_equal(va.storage, RW_STORAGE_CSR);
        assert_int_equal(vb.storage, RW_STORAGE_CSR);
        assert_int_equal(va.count, vb.count);
        assert_memory_equal(va.indptr, vb.indptr, sizeof(int32_t) * (size_t)(va.rows + 1));
        assert_memory_equal(va.indices, vb.indices, sizeof(int32_t) * (size_t)va.count);
        assert_memory_equal(va.values, vb.values, sizeof(float) * (size_t)va.count);
    }
    assert_int_equal(maps, 8);
}

typedef struct {
    int generations;
    double first, last;
} gen_log;

static void log_generation(int g, double kl, void *user)
{
    gen_log *l = user;
    if (g == 0) l->first = kl;
    assert_true(g == 0 || kl <= l->last);
    l->last = kl;
    l->generations++;
}

static void check_gpt_search(rw_text *text, rw_lm_prune_method method)
{
    rw_model *a = tu_tiny_gpt(3), *b = tu_tiny_gpt(3);
    rw_lm_prune_config c = rw_lm_prune_config_default();
    c.method = method;
    c.sparsity = 0.6;
    c.calibration = text;
    c.calib_samples = 8;
    c.calib_context = 16;
    c.block = 8;
    rw_lm_evopress_config e = rw_lm_evopress_config_default();
    e.generations = 25;
    e.offspring = 8;
    e.windows = 16;
    e.seed = 4;
    gen_log log = {0, 0, 0};
    e.on_generation = log_generation;
    e.user = &log;
    double s[8];
    rw_lm_evopress_report r;
    assert_int_equal(rw_lm_prune_evopress(a, &c, &e, s, &r), RW_OK);
    assert_int_equal(log.generations, 25);
    assert_true(r.kl <= r.kl_uniform);
    assert_true(r.kl == log.last);
    assert_true(r.levels > 8);
    /* The average, weighted by each map's size, is the target exactly (up
     * to the doubles), and the profile is not the uniform one. */
    double weighted = 0, total = 0;
    int moved = 0;
    for (int i = 0; i < 8; i++) {
        rw_param_view v;
        int k = 0;
        for (; k < rw_model_param_count(a); k++) {
            assert_int_equal(rw_model_param(a, k, &v), RW_OK);
            if (v.is_weight && strcmp(v.layer, rw_lm_prune_map_name(a, i)) == 0) break;
        }
        assert_true(k < rw_model_param_count(a));
        double size = (double)v.rows * v.cols;
        weighted += s[i] * size, total += size;
        moved += fabs(s[i] - 0.6) > 1e-9;
        assert_true(s[i] >= 0.4 - 1e-12 && s[i] <= 0.8 + 1e-12);
    }
    assert_true(fabs(weighted / total - 0.6) < 1e-12);
    assert_true(moved > 0);
    /* The stitched model is each map pruned directly at its sparsity, on
     * inputs through the dense blocks. */
    c.map_sparsity = s;
    c.dense_inputs = 1;
    assert_int_equal(rw_lm_prune(b, &c), RW_OK);
    assert_same_maps(a, b);
    /* The same search again finds the same profile. */
    rw_model *d = tu_tiny_gpt(3);
    double s2[8];
    c.map_sparsity = NULL;
    c.dense_inputs = 0;
    e.on_generation = NULL;
    rw_lm_evopress_report r2;
    assert_int_equal(rw_lm_prune_evopress(d, &c, &e, s2, &r2), RW_OK);
    assert_memory_equal(s, s2, sizeof s);
    assert_true(r.kl == r2.kl);
    assert_same_maps(a, d);
    rw_model_free(a), rw_model_free(b), rw_model_free(d);
}

static rw_text *made_text(rw_tokenizer **tok, char **s)
{
    size_t len;
    *s = make_text(&len);
    rw_text *text = NULL;
    assert_int_equal(rw_tokenizer_bytes(tok), RW_OK);
    assert_int_equal(rw_text_from_memory("made.txt", *s, len, *tok, 0.1, 16, &text), RW_OK);
    return text;
}

static void gpt_search_stitches_the_direct_prune(void **state)
{
    (void)state;
    rw_tokenizer *tok;
    char *s;
    rw_text *text = made_text(&tok, &s);
    check_gpt_search(text, RW_LM_PRUNE_WANDA);
    check_gpt_search(text, RW_LM_PRUNE_SPARSEGPT);
    check_gpt_search(text, RW_LM_PRUNE_MAGNITUDE);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    free(s);
}

/* map_sparsity alone (--layerwise): each map gets its own count. */
static void gpt_map_sparsity(void **state)
{
    (void)state;
    rw_tokenizer *tok;
    char *s;
    rw_text *text = made_text(&tok, &s);
    rw_model *m = tu_tiny_gpt(5);
    assert_int_equal(rw_lm_prune_map_count(m), 8);
    assert_string_equal(rw_lm_prune_map_name(m, 0), "blocks.0.attn.qkv");
    assert_string_equal(rw_lm_prune_map_name(m, 7), "blocks.1.mlp.down");
    assert_null(rw_lm_prune_map_name(m, 8));
    double sp[8] = {0.25, 0.5, 0.75, 0.0, 0.5, 0.5, 0.875, 0.5};
    rw_lm_prune_config c = rw_lm_prune_config_default();
    c.method = RW_LM_PRUNE_WANDA;
    c.calibration = text;
    c.calib_samples = 4;
    c.calib_context = 16;
    c.map_sparsity = sp;
    sp[3] = 1.0;
    assert_int_equal(rw_lm_prune(m, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "blocks.0.mlp.down"));
    sp[3] = 0.0;
    c.nm_n = 2, c.nm_m = 4;
    assert_int_equal(rw_lm_prune(m, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "map_sparsity"));
    c.nm_n = 0, c.nm_m = 0;
    assert_int_equal(rw_lm_prune(m, &c), RW_OK);
    int i = 0;
    for (int k = 0; k < rw_model_param_count(m); k++) {
        rw_param_view v;
        assert_int_equal(rw_model_param(m, k, &v), RW_OK);
        if (!v.is_weight || strncmp(v.name, "blocks.", 7) != 0) continue;
        /* Every row keeps llround((1 - s) · cols), and these are whole. */
        int64_t want = (int64_t)v.rows * llround((1 - sp[i]) * v.cols);
        assert_true(v.count <= want && v.count >= want - 2);
        i++;
    }
    assert_int_equal(i, 8);
    rw_model_free(m);
    /* The search refuses what it cannot share. */
    m = tu_tiny_gpt(5);
    rw_lm_evopress_config e = rw_lm_evopress_config_default();
    c.map_sparsity = NULL;
    c.nm_n = 2, c.nm_m = 4;
    assert_int_equal(rw_lm_prune_evopress(m, &c, &e, sp, NULL), RW_ERR_INVALID_ARGUMENT);
    c.nm_n = 0, c.nm_m = 0;
    c.calibration = NULL;
    assert_int_equal(rw_lm_prune_evopress(m, &c, &e, sp, NULL), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "calibration"));
    rw_model_free(m);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(search_keeps_the_sum_and_improves),
        cmocka_unit_test(search_never_leaves_a_best_start),
        cmocka_unit_test(search_bad_configs),
        cmocka_unit_test(gpt_search_stitches_the_direct_prune),
        cmocka_unit_test(gpt_map_sparsity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
