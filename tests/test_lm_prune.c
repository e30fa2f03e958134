/* Post-training pruning of language models: the layer-wise methods
 * against numpy references written from the papers
 * (tools/make_sparsegpt_reference.py, its output in tests/data/prune),
 * and rw_lm_prune through a small GPT. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/linear.h"
#include "nn/model.h"
#include "nn/network.h"
#include "sparsity/prune_layer.h"
#include "testutil.h"
#include "text/text_api.h"

enum { ROWS = 8, COLS = 136, TOKENS = 200 };

/* The reference layer (see the tool): exact in float32 on both sides. */
static float hash_unit(uint64_t k, uint64_t s)
{
    uint64_t h = (k * 2654435761ull + s * 40503ull + 12345ull) % (1ull << 32);
    return (float)((double)(h >> 8) / (double)(1 << 24) - 0.5);
}

static void reference_layer(float *w, float *x)
{
    const float scale[4] = {1.0f, 2.0f, 4.0f, 0.5f};
    for (int k = 0; k < ROWS * COLS; k++) w[k] = 2 * hash_unit((uint64_t)k, 1);
    for (int i = 0; i < COLS; i++)
        for (int j = 0; j < TOKENS; j++)
            x[i * TOKENS + j] = i == 7 ? 0.0f : hash_unit((uint64_t)i * TOKENS + j, 2) * scale[i % 4];
}

/* Reads a reference file: rows, cols, the error and rows · cols numbers. */
static double *read_reference(const char *name, double *error)
{
    char path[256];
    snprintf(path, sizeof path, "data/prune/%s", name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int rows = 0, cols = 0;
    assert_int_equal(fscanf(f, "%d %d %lf", &rows, &cols, error), 3);
    assert_int_equal(rows, ROWS);
    assert_int_equal(cols, COLS);
    double *v = malloc(sizeof *v * ROWS * COLS);
    assert_non_null(v);
    for (int k = 0; k < ROWS * COLS; k++) assert_int_equal(fscanf(f, "%lf", &v[k]), 1);
    fclose(f);
    return v;
}

static double *hessian_of(const float *x)
{
    double *h = calloc((size_t)COLS * COLS, sizeof *h);
    assert_non_null(h);
    assert_int_equal(prune_add_hessian(h, x, COLS, TOKENS, TOKENS), RW_OK);
    return h;
}

static void check_sparsegpt(const char *file, prune_target t, int block)
{
    float *w = malloc(sizeof(float) * ROWS * COLS), *w0 = malloc(sizeof(float) * ROWS * COLS);
    float *x = malloc(sizeof(float) * COLS * TOKENS);
    uint8_t *keep = malloc(ROWS * COLS);
    assert_true(w && w0 && x && keep);
    reference_layer(w, x);
    memcpy(w0, w, sizeof(float) * ROWS * COLS);
    double *h = hessian_of(x);
    assert_int_equal(prune_sparsegpt(w, ROWS, COLS, h, &t, block, keep), RW_OK);
    double ref_error;
    double *ref = read_reference(file, &ref_error);
    double worst = 0;
    for (int k = 0; k < ROWS * COLS; k++) {
        double d = fabs(w[k] - ref[k]);
        if (d > worst) worst = d;
        assert_int_equal(keep[k], ref[k] != 0);
    }
    assert_true(worst < 1e-4);
    double e = prune_reconstruction_error(w0, w, ROWS, COLS, h);
    assert_true(fabs(e - ref_error) <= 1e-4 * fmax(1.0, ref_error));
    free(w), free(w0), free(x), free(keep), free(h), free(ref);
}

static void sparsegpt_matches_numpy(void **state)
{
    (void)state;
    check_sparsegpt("sparsegpt_50_b128.txt", (prune_target){0.5, 0, 0}, 128);
    check_sparsegpt("sparsegpt_50_b32.txt", (prune_target){0.5, 0, 0}, 32);
    check_sparsegpt("sparsegpt_70_b128.txt", (prune_target){0.7, 0, 0}, 128);
    /* N:M chooses per group, so the lazy blocks change nothing. */
    check_sparsegpt("sparsegpt_2_4.txt", (prune_target){0, 2, 4}, 128);
    check_sparsegpt("sparsegpt_2_4.txt", (prune_target){0, 2, 4}, 8);
}

static void check_wanda(const char *file, prune_target t)
{
    float *w = malloc(sizeof(float) * ROWS * COLS), *x = malloc(sizeof(float) * COLS * TOKENS);
    uint8_t *keep = malloc(ROWS * COLS);
    double sq[COLS] = {0};
    float norm[COLS];
    assert_true(w && x && keep);
    reference_layer(w, x);
    prune_add_sq_norms(sq, x, COLS, TOKENS, TOKENS);
    for (int j = 0; j < COLS; j++) norm[j] = (float)sqrt(sq[j]);
    assert_int_equal(prune_wanda(w, ROWS, COLS, norm, &t, keep), RW_OK);
    double ref_error;
    double *ref = read_reference(file, &ref_error);
    for (int k = 0; k < ROWS * COLS; k++) {
        assert_int_equal(keep[k], (int)ref[k]);
        if (!keep[k]) assert_true(w[k] == 0.0f);
    }
    free(w), free(x), free(keep), free(ref);
}

static void wanda_mask_matches_numpy(void **state)
{
    (void)state;
    check_wanda("wanda_50.txt", (prune_target){0.5, 0, 0});
    check_wanda("wanda_2_4.txt", (prune_target){0, 2, 4});
}

/* SparseGPT's weight update lowers the error below Wanda's and
 * magnitude's masks at the same sparsity. */
static void sparsegpt_beats_masks_alone(void **state)
{
    (void)state;
    double e_sgpt, e_wanda;
    free(read_reference("sparsegpt_50_b128.txt", &e_sgpt));
    free(read_reference("wanda_50.txt", &e_wanda));
    assert_true(e_sgpt < e_wanda);
}

static void magnitude_rows_and_global(void **state)
{
    (void)state;
    float w[4 * 8], *wp[2];
    uint8_t keep[4 * 8], keep2[2 * 8], *kp[2];
    for (int k = 0; k < 32; k++) w[k] = (float)((k * 7) % 32) - 15.5f;
    prune_target t = {0.75, 0, 0};
    assert_int_equal(prune_magnitude_rows(w, 4, 8, &t, keep), RW_OK);
    for (int o = 0; o < 4; o++) {
        int kept = 0;
        for (int j = 0; j < 8; j++) kept += keep[o * 8 + j];
        assert_int_equal(kept, 2);
    }
    float a[8] = {1, -2, 3, -4, 5, -6, 7, -8}, b[16];
    for (int k = 0; k < 16; k++) b[k] = 0.5f * (float)k + 0.25f;
    wp[0] = a, wp[1] = b;
    kp[0] = keep, kp[1] = keep2;
    int rows[2] = {1, 2}, cols[2] = {8, 8};
    assert_int_equal(prune_magnitude_global(wp, rows, cols, 2, 0.5, kp), RW_OK);
    /* the 12 largest of 24 magnitudes: |a| >= 5 (4 of them) and b > 4 (8) */
    int kept_a = 0, kept_b = 0;
    for (int k = 0; k < 8; k++) kept_a += keep[k];
    for (int k = 0; k < 16; k++) kept_b += keep2[k];
    assert_int_equal(kept_a, 4);
    assert_int_equal(kept_b, 8);
    assert_true(a[0] == 0 && a[7] == -8);
}

/* DSnoT from Wanda's and magnitude's masks, on the reference layer and on
 * random ones: each row keeps its count (each group its n), and the
 * error never rises. */
static void check_dsnot(const float *w, const float *x, int rows, int cols, int tokens,
                        prune_target t, int from_wanda, int64_t *swaps, double *gain)
{
    size_t count = (size_t)rows * cols;
    float *wm = malloc(sizeof(float) * count), *w1 = malloc(sizeof(float) * count);
    uint8_t *keep = malloc(count), *keep0 = malloc(count);
    double *h = calloc((size_t)cols * cols, sizeof *h), *sq = calloc((size_t)cols, sizeof *sq);
    double *mu = calloc((size_t)cols, sizeof *mu);
    float *norm = malloc(sizeof(float) * (size_t)cols);
    assert_true(wm && w1 && keep && keep0 && h && sq && mu && norm);
    assert_int_equal(prune_add_hessian(h, x, cols, tokens, tokens), RW_OK);
    prune_add_sq_norms(sq, x, cols, tokens, tokens);
    prune_add_sums(mu, x, cols, tokens, tokens);
    for (int j = 0; j < cols; j++) norm[j] = (float)sqrt(sq[j]), mu[j] /= tokens;
    memcpy(wm, w, sizeof(float) * count);
    if (from_wanda) assert_int_equal(prune_wanda(wm, rows, cols, norm, &t, keep0), RW_OK);
    else assert_int_equal(prune_magnitude_rows(wm, rows, cols, &t, keep0), RW_OK);
    double e0 = prune_reconstruction_error(w, wm, rows, cols, h);
    memcpy(keep, keep0, count);
    int64_t n = 0;
    assert_int_equal(prune_dsnot(w, rows, cols, h, mu, norm, &t, 50, keep, &n), RW_OK);
    for (size_t k = 0; k < count; k++) w1[k] = keep[k] ? w[k] : 0.0f;
    double e1 = prune_reconstruction_error(w, w1, rows, cols, h);
    assert_true(e1 <= e0);
    int group = t.m > 0 ? t.m : cols;
    for (int r = 0; r < rows; r++)
        for (int g = 0; g < cols; g += group) {
            int a = 0, b = 0;
            for (int j = g; j < g + group; j++) a += keep[r * cols + j], b += keep0[r * cols + j];
            assert_int_equal(a, b);
        }
    *swaps += n;
    *gain += e0 - e1;
    free(wm), free(w1), free(keep), free(keep0), free(h), free(sq), free(mu), free(norm);
}

static void dsnot_never_increases_the_error(void **state)
{
    (void)state;
    float *w = malloc(sizeof(float) * ROWS * COLS), *x = malloc(sizeof(float) * COLS * TOKENS);
    assert_true(w && x);
    reference_layer(w, x);
    int64_t swaps = 0;
    double gain = 0;
    const prune_target targets[3] = {{0.5, 0, 0}, {0.7, 0, 0}, {0, 2, 4}};
    for (int i = 0; i < 3; i++)
        for (int from_wanda = 0; from_wanda < 2; from_wanda++)
            check_dsnot(w, x, ROWS, COLS, TOKENS, targets[i], from_wanda, &swaps, &gain);
    assert_true(swaps > 0 && gain > 0);
    print_message("DSnoT: %lld swaps over all the layers lowered their error by %.4g in all\n",
                  (long long)swaps, gain);
    /* Random layers whose inputs share a common part (correlated, with a
     * nonzero mean, as activations are). */
    rng_state r;
    rng_seed(&r, 11);
    for (int trial = 0; trial < 10; trial++) {
        int rows = 4 + trial, cols = 24 + 4 * trial, tokens = 40 + 7 * trial;
        float *wt = malloc(sizeof(float) * (size_t)rows * cols);
        float *xt = malloc(sizeof(float) * (size_t)cols * tokens);
        float *common = malloc(sizeof(float) * (size_t)tokens);
        assert_true(wt && xt && common);
        tu_fill_uniform(wt, (size_t)rows * cols, -1, 1, &r);
        tu_fill_uniform(xt, (size_t)cols * tokens, -1, 1, &r);
        tu_fill_uniform(common, (size_t)tokens, 0, 2, &r);
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < tokens; j++) xt[i * tokens + j] += common[j] * (float)(i % 3);
        for (int i = 0; i < 3; i++)
            check_dsnot(wt, xt, rows, cols, tokens, targets[i], trial % 2, &swaps, &gain);
        free(wt), free(xt), free(common);
    }
    free(w), free(x);
}

/* ---- Through a GPT ---- */

static char *make_text(size_t *len)
{
    static const char *const words[] = {"the ",   "rain ", "in ",     "spain ", "falls ",
                                        "mainly ", "on ",  "plain. ", "\n"};
    return tu_word_text(words, 9, 5, len);
}

static rw_model *tiny_gpt(void) { return tu_tiny_gpt(rw_gpt_config_default().seed); }

typedef struct {
    int maps;
    double worst_error;
} map_log;

static void log_map(const rw_lm_prune_map *r, void *user)
{
    map_log *l = user;
    l->maps++;
    assert_true(r->kept <= (int64_t)r->rows * r->cols);
    if (!isnan(r->error)) {
        assert_true(r->error >= 0 && r->error <= 1.5);
        if (r->error > l->worst_error) l->worst_error = r->error;
    }
}

/* Prunes a fresh tiny GPT; checks every block map's stored count and
 * kind, then that the model evaluates and generates. */
static void prune_and_check(rw_text *text, rw_lm_prune_method method, double sparsity, int n, int m)
{
    rw_model *model = tiny_gpt();
    rw_lm_prune_config c = rw_lm_prune_config_default();
    c.method = method;
    c.sparsity = sparsity;
    c.nm_n = n, c.nm_m = m;
    c.calibration = text;
    c.calib_samples = 12;
    c.calib_context = 16;
    c.block = 8; /* several lazy blocks in a 16- and 64-input map */
    map_log log = {0, 0};
    c.on_map = log_map;
    c.user = &log;
    assert_int_equal(rw_lm_prune(model, &c), RW_OK);
    assert_int_equal(log.maps, 8);
    int weights = 0;
    for (int i = 0; i < rw_model_param_count(model); i++) {
        rw_param_view v;
        assert_int_equal(rw_model_param(model, i, &v), RW_OK);
        if (!v.is_weight || !strstr(v.name, "blocks.")) continue;
        weights++;
        int64_t dense = (int64_t)v.rows * v.cols;
        if (m > 0) {
            assert_int_equal(v.storage, RW_STORAGE_NM);
            assert_int_equal(v.count, dense * n / m);
        } else {
            assert_int_equal(v.storage, RW_STORAGE_CSR);
            /* 50% of even sizes is exact for every rounding the methods use */
            assert_true(v.count <= dense / 2 && v.count >= dense / 2 - 2);
        }
    }
    assert_int_equal(weights, 8);
    rw_lm_eval e;
    assert_int_equal(rw_lm_evaluate(model, text, 1, 16, 4, &e), RW_OK);
    assert_true(isfinite(e.loss) && e.tokens > 0);
    int32_t prompt[3] = {116, 104, 101}, out[10];
    assert_int_equal(rw_lm_generate(model, prompt, 3, 10, 0.0f, 0, 1, out), RW_OK);
    for (int k = 0; k < 10; k++) assert_true(out[k] >= 0 && out[k] < 256);
    rw_model_free(model);
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

static void gpt_every_method(void **state)
{
    (void)state;
    rw_tokenizer *tok;
    char *s;
    rw_text *text = made_text(&tok, &s);
    prune_and_check(text, RW_LM_PRUNE_MAGNITUDE, 0.5, 0, 0);
    prune_and_check(text, RW_LM_PRUNE_WANDA, 0.5, 0, 0);
    prune_and_check(text, RW_LM_PRUNE_SPARSEGPT, 0.5, 0, 0);
    prune_and_check(text, RW_LM_PRUNE_MAGNITUDE, 0, 2, 4);
    prune_and_check(text, RW_LM_PRUNE_WANDA, 0, 2, 4);
    prune_and_check(text, RW_LM_PRUNE_SPARSEGPT, 0, 2, 4);
    prune_and_check(text, RW_LM_PRUNE_DSNOT, 0.5, 0, 0);
    prune_and_check(text, RW_LM_PRUNE_DSNOT, 0, 2, 4);
    /* One threshold over all maps: the total is what was asked. */
    rw_model *model = tiny_gpt();
    rw_lm_prune_config c = rw_lm_prune_config_default();
    c.method = RW_LM_PRUNE_MAGNITUDE_GLOBAL;
    c.sparsity = 0.75;
    assert_int_equal(rw_lm_prune(model, &c), RW_OK);
    int64_t kept = 0, dense = 0;
    for (int i = 0; i < rw_model_param_count(model); i++) {
        rw_param_view v;
        assert_int_equal(rw_model_param(model, i, &v), RW_OK);
        if (!v.is_weight || !strstr(v.name, "blocks.")) continue;
        kept += v.count;
        dense += (int64_t)v.rows * v.cols;
    }
    assert_int_equal(kept, dense / 4);
    rw_model_free(model);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    free(s);
}

static void gpt_bad_configs(void **state)
{
    (void)state;
    rw_tokenizer *tok;
    char *s;
    rw_text *text = made_text(&tok, &s);
    rw_model *model = tiny_gpt();
    rw_lm_prune_config c = rw_lm_prune_config_default();
    c.calibration = text;
    c.calib_context = 16;
    c.sparsity = 1.0;
    assert_int_equal(rw_lm_prune(model, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "sparsity"));
    c.sparsity = 0.5;
    c.method = RW_LM_PRUNE_WANDA;
    c.calibration = NULL;
    assert_int_equal(rw_lm_prune(model, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "calibration"));
    c.calibration = text;
    c.calib_samples = 0;
    assert_int_equal(rw_lm_prune(model, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "calib_samples"));
    c.calib_samples = 4;
    c.calib_context = 17;
    assert_int_equal(rw_lm_prune(model, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "calib_context"));
    c.calib_context = 16;
    c.nm_n = 2, c.nm_m = 5;
    assert_int_equal(rw_lm_prune(model, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "nm_m"));
    c.nm_n = 4, c.nm_m = 4;
    assert_int_equal(rw_lm_prune(model, &c), RW_ERR_INVALID_ARGUMENT);
    c.nm_n = 0, c.nm_m = 0;
    c.method = (rw_lm_prune_method)42;
    assert_int_equal(rw_lm_prune(model, &c), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "method"));
    /* Nothing was changed by a refused call. */
    for (int i = 0; i < rw_model_param_count(model); i++) {
        rw_param_view v;
        assert_int_equal(rw_model_param(model, i, &v), RW_OK);
        if (v.is_weight && strstr(v.name, "blocks.")) assert_int_equal(v.storage, RW_STORAGE_DENSE);
    }
    rw_model_free(model);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    free(s);
}

/* Block 1's calibration inputs come through block 0 already pruned: the
 * same masks by hand, a full forward pass of the partly pruned model per
 * block, all four maps' norms from one pass before any is replaced. */
static void calibration_goes_through_pruned_blocks(void **state)
{
    (void)state;
    rw_tokenizer *tok;
    char *s;
    rw_text *text = made_text(&tok, &s);
    rw_model *a = tiny_gpt(), *b = tiny_gpt();
    rw_lm_prune_config c = rw_lm_prune_config_default();
    c.method = RW_LM_PRUNE_WANDA;
    c.calibration = text;
    c.calib_samples = 6;
    c.calib_context = 16;
    assert_int_equal(rw_lm_prune(a, &c), RW_OK);

    enum { N = 6 * 16 };
    int32_t win[N], tg[N];
    assert_int_equal(corpus_sample_batch(text->c, CORPUS_TRAIN, 16, 6, 1, 0, win, tg), RW_OK);
    const int offset[4] = {1, 3, 6, 7};
    for (int blk = 0; blk < 2; blk++) {
        workspace ws;
        assert_int_equal(workspace_init(&ws, b, N, 0), RW_OK);
        ws.tokens = win, ws.n = N, ws.seq_len = 16, ws.pos0 = 0;
        network_forward(b, &ws);
        float *w[4];
        uint8_t *keep[4];
        for (int k = 0; k < 4; k++) {
            const param *p = model_layer_params(b, 1 + 9 * blk + offset[k]);
            double sq[64] = {0};
            float norm[64];
            assert_true(p->cols <= 64);
            prune_add_sq_norms(sq, ws.t[p->x_tensor].data, p->cols, N, ws.bp);
            for (int j = 0; j < p->cols; j++) norm[j] = (float)sqrt(sq[j]);
            w[k] = malloc(sizeof(float) * (size_t)p->rows * p->cols);
            keep[k] = malloc((size_t)p->rows * p->cols);
            assert_true(w[k] && keep[k]);
            param_to_dense(p, w[k]);
            prune_target t = {0.5, 0, 0};
            assert_int_equal(prune_wanda(w[k], p->rows, p->cols, norm, &t, keep[k]), RW_OK);
        }
        workspace_free(&ws);
        for (int k = 0; k < 4; k++) {
            int l = 1 + 9 * blk + offset[k];
            const param *p = model_layer_params(b, l);
            int rows = p->rows, cols = p->cols, nnz = 0;
            for (int q = 0; q < rows * cols; q++) nnz += keep[k][q] && w[k][q] != 0;
            csr_matrix m;
            assert_int_equal(csr_alloc(&m, rows, cols, nnz), RW_OK);
            int q = 0;
            for (int o = 0; o < rows; o++) {
                for (int j = 0; j < cols; j++)
                    if (keep[k][o * cols + j] && w[k][o * cols + j] != 0)
                        m.indices[q] = j, m.values[q++] = w[k][o * cols + j];
                m.indptr[o + 1] = q;
            }
            assert_int_equal(linear_replace_csr(b, l, &m), RW_OK);
            free(w[k]);
            free(keep[k]);
        }
    }
    int compared = 0;
    for (int i = 0; i < rw_model_param_count(a); i++) {
        rw_param_view va, vb;
        assert_int_equal(rw_model_param(a, i, &va), RW_OK);
        assert_int_equal(rw_model_param(b, i, &vb), RW_OK);
        assert_string_equal(va.name, vb.name);
        if (!va.is_weight || !strstr(va.name, "blocks.")) continue;
        assert_int_equal(va.storage, RW_STORAGE_CSR);
        assert_int_equal(va.count, vb.count);
        assert_memory_equal(va.indptr, vb.indptr, sizeof(int32_t) * (size_t)(va.rows + 1));
        assert_memory_equal(va.indices, vb.indices, sizeof(int32_t) * (size_t)va.count);
        assert_memory_equal(va.values, vb.values, sizeof(float) * (size_t)va.count);
        compared++;
    }
    assert_int_equal(compared, 8);
    rw_model_free(a);
    rw_model_free(b);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gpt_every_method),
        cmocka_unit_test(gpt_bad_configs),
        cmocka_unit_test(calibration_goes_through_pruned_blocks),
        cmocka_unit_test(sparsegpt_matches_numpy),
        cmocka_unit_test(wanda_mask_matches_numpy),
        cmocka_unit_test(sparsegpt_beats_masks_alone),
        cmocka_unit_test(magnitude_rows_and_global),
        cmocka_unit_test(dsnot_never_increases_the_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
