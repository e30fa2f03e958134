/* Post-training pruning of a GPT (rw_lm_prune): the layer-wise methods of
 * sparsity/prune_layer.h run block by block. The calibration windows'
 * residual stream is kept for every token as it enters the block being
 * pruned (the earlier blocks already pruned, as Wanda and SparseGPT do);
 * the block runs on it to summarise the inputs of its four maps (Σ x² per
 * input for Wanda, X Xᵀ for SparseGPT, both and Σ x for DSnoT), the maps
 * are pruned and replaced by CSR (or N:M) layers, and the pruned block
 * carries the stream on to the next (or, with dense_inputs, the dense
 * block does, before its maps are replaced). Each map may have its own
 * sparsity (map_sparsity, --layerwise). Magnitude pruning reads no
 * calibration text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "models/gpt.h"
#include "models/gpt_prune.h"
#include "nn/linear.h"
#include "nn/model.h"
#include "nn/network.h"
#include "sparsity/prune_layer.h"
#include "text/text_api.h"

/* A calibration batch stays under these (the workspace holds the logits
 * too, though the head never runs). */
#define PRUNE_BATCH_TOKENS 4096
#define PRUNE_WORKSPACE_LOGIT_BYTES ((size_t)256 << 20)

enum { MAPS = LM_PRUNE_MAPS };
/* The block's maps, as layer offsets from its first layer (gpt_layout.c):
 * attn.qkv, attn.proj, mlp.up, mlp.down. */
static const int map_offset[MAPS] = {1, 3, 6, 7};


int lm_prune_map_layer(int b, int k) { return gpt_block_first_layer(b) + map_offset[k]; }

rw_lm_prune_config rw_lm_prune_config_default(void)
{
    rw_lm_prune_config c;
    memset(&c, 0, sizeof c);
    c.method = RW_LM_PRUNE_MAGNITUDE;
    c.sparsity = 0.5;
    c.calib_samples = 128;
    c.seed = 1;
    return c;
}

int rw_lm_prune_map_count(const rw_model *model)
{
    rw_gpt_config g;
    if (!model || gpt_config_of(model, &g) != RW_OK) return 0;
    return MAPS * g.n_layer;
}

const char *rw_lm_prune_map_name(const rw_model *model, int i)
{
    if (i < 0 || i >= rw_lm_prune_map_count(model)) return NULL;
    return model->layers[lm_prune_map_layer(i / MAPS, i % MAPS)]->name;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int lm_prune_reads_calibration(rw_lm_prune_method m)
{
    return m == RW_LM_PRUNE_WANDA || m == RW_LM_PRUNE_SPARSEGPT || m == RW_LM_PRUNE_DSNOT;
}

rw_status lm_prune_check(const rw_model *m, const rw_lm_prune_config *c, const rw_gpt_config *g,
                         int *context)
{
    if ((int)c->method < RW_LM_PRUNE_MAGNITUDE || c->method > RW_LM_PRUNE_DSNOT)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: method %d is not an rw_lm_prune_method",
                       (int)c->method);
    if (c->nm_m > 0) {
        if (c->nm_m > NM_MAX_M || c->nm_n < 1 || c->nm_n >= c->nm_m)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: nm_n:nm_m %d:%d, expected 1 <= "
                           "nm_n < nm_m <= %d", c->nm_n, c->nm_m, NM_MAX_M);
        if (g->n_embd % c->nm_m != 0)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: nm_m %d does not divide the "
                           "model's width %d", c->nm_m, g->n_embd);
        if (c->method == RW_LM_PRUNE_MAGNITUDE_GLOBAL)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: N:M keeps n of every m inputs of "
                           "each row; the global magnitude threshold is for unstructured sparsity");
    } else if (c->nm_m < 0 || !(c->sparsity >= 0.0 && c->sparsity < 1.0)) {
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: sparsity %g is outside [0, 1)%s",
                       c->sparsity, c->nm_m < 0 ? " (and nm_m is negative)" : "");
    }
    if (c->map_sparsity) {
        if (c->nm_m > 0 || c->method == RW_LM_PRUNE_MAGNITUDE_GLOBAL)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: map_sparsity gives each map its "
                           "own unstructured sparsity; not with N:M or the global magnitude");
        for (int i = 0; i < MAPS * g->n_layer; i++)
            if (!(c->map_sparsity[i] >= 0.0 && c->map_sparsity[i] < 1.0))
                return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: map_sparsity[%d] (%s) is %g, "
                               "outside [0, 1)", i, rw_lm_prune_map_name(m, i), c->map_sparsity[i]);
    }
    if (model_has_after_step(m))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: the model is in the middle of N:M "
                       "training; end it first");
    int max = rw_model_context(m);
    *context = 0;
    if (!lm_prune_reads_calibration(c->method)) return RW_OK;
    if (!c->calibration)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: calibration is NULL; %s needs a "
                       "calibration text", c->method == RW_LM_PRUNE_WANDA       ? "Wanda"
                                           : c->method == RW_LM_PRUNE_SPARSEGPT ? "SparseGPT"
                                                                                : "DSnoT");
    if (c->calib_samples < 1 || c->calib_samples > (1 << 20))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: calib_samples %d, expected 1 to %d",
                       c->calib_samples, 1 << 20);
    int T = c->calib_context ? c->calib_context : (max < 256 ? max : 256);
    if (T < 1 || T > max)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: calib_context %d, expected 1 to the "
                       "model's context %d", c->calib_context, max);
    if (c->calibration->c->vocab_size > rw_model_classes(m))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: the calibration tokenizer (%s) has %d "
                       "tokens but the model predicts %d", c->calibration->tok->spec,
                       (int)c->calibration->c->vocab_size, rw_model_classes(m));
    if (corpus_split_size(c->calibration->c, CORPUS_TRAIN) < (size_t)T + 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: the calibration text's training split "
                       "has fewer than calib_context + 1 = %d tokens", T + 1);
    if (c->block < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: block %d is negative", c->block);
    if (c->cycles < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: cycles %d is negative", c->cycles);
    *context = T;
    return RW_OK;
}

void lm_prune_stats_free(map_stats *s)
{
    for (int k = 0; k < MAPS; k++) {
        free(s[k].sq);
        free(s[k].h);
        free(s[k].sum);
        s[k].sq = s[k].h = s[k].sum = NULL;
    }
}

void lm_stream_free(calib_stream *cs)
{
    workspace_free(&cs->ws);
    rw_free(cs->x);
    free(cs->windows);
    cs->x = NULL;
    cs->windows = NULL;
}

/* Sets the workspace up for windows [w0, w0 + count). */
static void stream_batch(calib_stream *cs, int w0, int count)
{
    cs->ws.tokens = cs->windows + (size_t)w0 * cs->T;
    cs->ws.n = count * cs->T;
    cs->ws.seq_len = cs->T;
    cs->ws.pos0 = 0;
}

/* Copies the stream's columns of the batch into tensor t (load 1) or tensor
 * t's into the stream (load 0). */
static void stream_copy(calib_stream *cs, int w0, int count, int t, int load)
{
    float *data = cs->ws.t[t].data;
    size_t len = sizeof(float) * (size_t)count * cs->T;
    for (int i = 0; i < cs->C; i++) {
        float *col = cs->x + (size_t)i * cs->n + (size_t)w0 * cs->T;
        float *row = data + (size_t)i * cs->ws.bp;
        if (load) memcpy(row, col, len);
        else memcpy(col, row, len);
    }
}

/* The embeddings of every window: the stream entering block 0 (cs owns
 * windows from here on, also on failure). */
static rw_status stream_init(calib_stream *cs, const rw_model *m, int32_t *windows, int samples,
                             int T, int C)
{
    size_t per_window = (size_t)T * (size_t)rw_model_classes(m) * sizeof(float);
    int per = PRUNE_BATCH_TOKENS / T;
    if ((size_t)per > PRUNE_WORKSPACE_LOGIT_BYTES / per_window)
        per = (int)(PRUNE_WORKSPACE_LOGIT_BYTES / per_window);
    if (per < 1) per = 1;
    if (per > samples) per = samples;
    *cs = (calib_stream){.T = T, .samples = samples, .per = per, .C = C,
                         .n = (int64_t)samples * T, .windows = windows};
    cs->x = rw_alloc(sizeof(float) * (size_t)C * (size_t)cs->n);
    if (!cs->x)
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for %lld calibration tokens of width %d",
                       (long long)cs->n, C);
    rw_status st = workspace_init(&cs->ws, m, per * T, 0);
    if (st != RW_OK) {
        rw_free(cs->x);
        cs->x = NULL;
        return st;
    }
    for (int w0 = 0; w0 < samples; w0 += per) {
        int count = samples - w0 < per ? samples - w0 : per;
        stream_batch(cs, w0, count);
        network_forward_layers(m, &cs->ws, 0, 0);
        stream_copy(cs, w0, count, m->layers[0]->output, 0);
    }
    return RW_OK;
}

rw_status lm_stream_open(calib_stream *cs, const rw_model *m, const rw_lm_prune_config *c, int T,
                         int C)
{
    memset(cs, 0, sizeof *cs);
    if (!lm_prune_reads_calibration(c->method)) return RW_OK;
    size_t n = (size_t)c->calib_samples * T;
    int32_t *windows = malloc(sizeof *windows * n), *targets = malloc(sizeof *targets * n);
    rw_status st = windows && targets
                       ? corpus_sample_batch(c->calibration->c, CORPUS_TRAIN, T, c->calib_samples,
                                             c->seed, 0, windows, targets)
                       : rw_fail(RW_ERR_NO_MEMORY, "out of memory for %d calibration windows of "
                                 "%d tokens", c->calib_samples, T);
    free(targets);
    if (st != RW_OK) {
        free(windows);
        return st;
    }
    return stream_init(cs, m, windows, c->calib_samples, T, C);
}

void lm_stream_advance(calib_stream *cs, const rw_model *m, int b)
{
    int a = gpt_block_first_layer(b), last = a + GPT_BLOCK_LAYERS - 1; /* mlp_residual */
    for (int w0 = 0; w0 < cs->samples; w0 += cs->per) {
        int count = cs->samples - w0 < cs->per ? cs->samples - w0 : cs->per;
        stream_batch(cs, w0, count);
        stream_copy(cs, w0, count, m->layers[a]->inputs[0], 1);
        network_forward_layers(m, &cs->ws, a, last);
        stream_copy(cs, w0, count, m->layers[last]->output, 0);
    }
}

rw_status lm_collect_block(calib_stream *cs, const rw_model *m, int b, int want_h, map_stats *s)
{
    int a = gpt_block_first_layer(b);
    rw_status st = RW_OK;
    for (int k = 0; k < MAPS; k++) {
        const param *p = model_layer_params(m, a + map_offset[k]);
        s[k] = (map_stats){a + map_offset[k], p->rows, p->cols, NULL, NULL, NULL, 0};
    }
    if (!cs) return RW_OK;
    for (int k = 0; k < MAPS && st == RW_OK; k++) {
        const param *p = model_layer_params(m, a + map_offset[k]);
        s[k].sq = calloc((size_t)p->cols, sizeof(double));
        s[k].sum = calloc((size_t)p->cols, sizeof(double));
        if (want_h) s[k].h = calloc((size_t)p->cols * p->cols, sizeof(double));
        if (!s[k].sq || !s[k].sum || (want_h && !s[k].h))
            st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for the calibration statistics of %s",
                         m->layers[s[k].layer]->name);
    }
    for (int w0 = 0; w0 < cs->samples && st == RW_OK; w0 += cs->per) {
        int count = cs->samples - w0 < cs->per ? cs->samples - w0 : cs->per;
        stream_batch(cs, w0, count);
        stream_copy(cs, w0, count, m->layers[a]->inputs[0], 1);
        network_forward_layers(m, &cs->ws, a, a + map_offset[MAPS - 1] - 1);
        for (int k = 0; k < MAPS && st == RW_OK; k++) {
            const param *p = model_layer_params(m, s[k].layer);
            const float *x = cs->ws.t[p->x_tensor].data;
            int n = count * cs->T;
            prune_add_sq_norms(s[k].sq, x, p->cols, n, cs->ws.bp);
            prune_add_sums(s[k].sum, x, p->cols, n, cs->ws.bp);
            s[k].tokens += n;
            if (want_h) st = prune_add_hessian(s[k].h, x, p->cols, n, cs->ws.bp);
        }
    }
    if (st != RW_OK) lm_prune_stats_free(s);
    return st;
}

/* w where keep says as CSR (dropping kept entries that are zero, unless
 * N:M slots are asked for). */
static rw_status weights_to_csr(const float *w, const uint8_t *keep, int rows, int cols, int nm,
                                csr_matrix *out)
{
    int64_t nnz = 0;
    for (int64_t k = 0; k < (int64_t)rows * cols; k++) nnz += keep[k] && (nm || w[k] != 0);
    rw_status st = csr_alloc(out, rows, cols, (int)nnz);
    if (st != RW_OK) return st;
    int q = 0;
    for (int o = 0; o < rows; o++) {
        for (int j = 0; j < cols; j++) {
            size_t k = (size_t)o * cols + j;
            if (keep[k] && (nm || w[k] != 0)) out->indices[q] = j, out->values[q++] = w[k];
        }
        out->indptr[o + 1] = q;
    }
    return RW_OK;
}

/* Replaces layer l's weights by w (taken). */
static rw_status store_map(rw_model *m, int l, csr_matrix *w, const rw_lm_prune_config *c,
                           int64_t *kept)
{
    rw_status st = linear_replace_csr(m, l, w);
    /* The CSR holds exactly the n kept of every group: N:M keeps them. */
    if (st == RW_OK && c->nm_m > 0) st = linear_replace_nm(m, l, c->nm_n, c->nm_m);
    if (st == RW_OK) *kept = param_count(model_layer_params(m, l));
    return st;
}

/* ‖W X − Ŵ X‖² / ‖W X‖² from X Xᵀ. */
static double relative_error(const float *w0, const float *w, int rows, int cols, const double *h)
{
    float *zero = calloc((size_t)rows * cols, sizeof *zero);
    if (!zero) return NAN;
    double total = prune_reconstruction_error(w0, zero, rows, cols, h);
    free(zero);
    return total > 0 ? prune_reconstruction_error(w0, w, rows, cols, h) / total : 0;
}

/* DSnoT from Wanda's mask: w gets the pruned weights, w0 holds the dense
 * ones; norm is room for cols floats. */
static rw_status prune_with_dsnot(float *w, const float *w0, int rows, int cols, const map_stats *s,
                                  const prune_target *t, int cycles, float *norm, uint8_t *keep)
{
    double *mu = malloc(sizeof *mu * (size_t)cols);
    if (!mu) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for DSnoT");
    for (int j = 0; j < cols; j++) {
        norm[j] = (float)sqrt(s->sq[j]);
        mu[j] = s->tokens ? s->sum[j] / (double)s->tokens : 0;
    }
    rw_status st = prune_wanda(w, rows, cols, norm, t, keep);
    if (st == RW_OK) st = prune_dsnot(w0, rows, cols, s->h, mu, norm, t, cycles, keep, NULL);
    if (st == RW_OK)
        for (size_t k = 0; k < (size_t)rows * cols; k++) w[k] = keep[k] ? w0[k] : 0.0f;
    free(mu);
    return st;
}

rw_status lm_prune_map_csr(const rw_model *m, const map_stats *s, const rw_lm_prune_config *c,
                           double sparsity, csr_matrix *out, double *error, double *seconds)
{
    int rows = s->rows, cols = s->cols;
    size_t count = (size_t)rows * cols;
    float *w = malloc(sizeof *w * count), *w0 = s->h ? malloc(sizeof *w0 * count) : NULL;
    float *norm = malloc(sizeof *norm * (size_t)cols);
    uint8_t *keep = malloc(count);
    if (!w || !keep || !norm || (s->h && !w0)) {
        free(w), free(w0), free(norm), free(keep);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory pruning %s", m->layers[s->layer]->name);
    }
    param_to_dense(model_layer_params(m, s->layer), w);
    if (w0) memcpy(w0, w, sizeof *w * count);
    prune_target t = {sparsity, c->nm_m > 0 ? c->nm_n : 0, c->nm_m > 0 ? c->nm_m : 0};
    double t0 = now_seconds();
    rw_status st;
    if (c->method == RW_LM_PRUNE_SPARSEGPT) {
        st = prune_sparsegpt(w, rows, cols, s->h, &t, c->block ? c->block : 128, keep);
    } else if (c->method == RW_LM_PRUNE_WANDA) {
        for (int j = 0; j < cols; j++) norm[j] = (float)sqrt(s->sq[j]);
        st = prune_wanda(w, rows, cols, norm, &t, keep);
    } else if (c->method == RW_LM_PRUNE_DSNOT) {
        st = prune_with_dsnot(w, w0, rows, cols, s, &t, c->cycles ? c->cycles : 50, norm, keep);
    } else {
        st = prune_magnitude_rows(w, rows, cols, &t, keep);
    }
    *seconds = now_seconds() - t0;
    *error = w0 ? relative_error(w0, w, rows, cols, s->h) : NAN;
    if (st == RW_OK) st = weights_to_csr(w, keep, rows, cols, c->nm_m > 0, out);
    free(w), free(w0), free(norm), free(keep);
    return st;
}

/* Prunes one map with the per-map methods, its statistics in s, and puts
 * it in the model. */
static rw_status prune_map(rw_model *m, const map_stats *s, const rw_lm_prune_config *c,
                           double sparsity)
{
    csr_matrix w;
    rw_lm_prune_map r = {NULL, s->rows, s->cols, 0, NAN, 0};
    rw_status st = lm_prune_map_csr(m, s, c, sparsity, &w, &r.error, &r.seconds);
    if (st == RW_OK) st = store_map(m, s->layer, &w, c, &r.kept);
    if (st == RW_OK && c->on_map) {
        r.name = m->layers[s->layer]->name;
        c->on_map(&r, c->user);
    }
    return st;
}

/* One magnitude threshold over every block map. */
static rw_status prune_global(rw_model *m, int n_layer, const rw_lm_prune_config *c)
{
    int maps = MAPS * n_layer;
    float **w = calloc((size_t)maps, sizeof *w);
    uint8_t **keep = calloc((size_t)maps, sizeof *keep);
    int *rows = calloc((size_t)maps, sizeof *rows), *cols = calloc((size_t)maps, sizeof *cols);
    rw_status st = w && keep && rows && cols ? RW_OK
                                             : rw_fail(RW_ERR_NO_MEMORY, "out of memory pruning");
    for (int i = 0; i < maps && st == RW_OK; i++) {
        const param *p = model_layer_params(m, gpt_block_first_layer(i / MAPS) + map_offset[i % MAPS]);
        rows[i] = p->rows, cols[i] = p->cols;
        w[i] = malloc(sizeof(float) * (size_t)p->rows * p->cols);
        keep[i] = malloc((size_t)p->rows * p->cols);
        if (!w[i] || !keep[i]) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory pruning");
        else param_to_dense(p, w[i]);
    }
    double t0 = now_seconds();
    if (st == RW_OK) st = prune_magnitude_global(w, rows, cols, maps, c->sparsity, keep);
    double seconds = (now_seconds() - t0) / (maps > 0 ? maps : 1);
    for (int i = 0; i < maps && st == RW_OK; i++) {
        int l = gpt_block_first_layer(i / MAPS) + map_offset[i % MAPS];
        rw_lm_prune_map r = {NULL, rows[i], cols[i], 0, NAN, seconds};
        csr_matrix csr;
        st = weights_to_csr(w[i], keep[i], rows[i], cols[i], 0, &csr);
        if (st == RW_OK) st = store_map(m, l, &csr, c, &r.kept);
        r.name = m->layers[l]->name;
        if (st == RW_OK && c->on_map) c->on_map(&r, c->user);
    }
    for (int i = 0; i < maps; i++) {
        if (w) free(w[i]);
        if (keep) free(keep[i]);
    }
    free(w), free(keep), free(rows), free(cols);
    return st;
}

rw_status rw_lm_prune(rw_model *model, const rw_lm_prune_config *c)
{
    if (!model || !c) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune: NULL argument");
    rw_gpt_config g;
    rw_status st = gpt_config_of(model, &g);
    if (st != RW_OK) return st;
    int T = 0;
    if ((st = lm_prune_check(model, c, &g, &T)) != RW_OK) return st;
    if (c->method == RW_LM_PRUNE_MAGNITUDE_GLOBAL) return prune_global(model, g.n_layer, c);

    calib_stream cs;
    st = lm_stream_open(&cs, model, c, T, g.n_embd);
    int want_h = c->method == RW_LM_PRUNE_SPARSEGPT || c->method == RW_LM_PRUNE_DSNOT;
    for (int b = 0; b < g.n_layer && st == RW_OK; b++) {
        map_stats s[MAPS];
        memset(s, 0, sizeof s);
        st = lm_collect_block(cs.x ? &cs : NULL, model, b, want_h, s);
        int advance = st == RW_OK && cs.x && b + 1 < g.n_layer;
        /* The next block sees this one dense, when asked, or pruned. */
        if (advance && c->dense_inputs) lm_stream_advance(&cs, model, b);
        for (int k = 0; k < MAPS && st == RW_OK; k++)
            st = prune_map(model, &s[k], c,
                           c->map_sparsity ? c->map_sparsity[MAPS * b + k] : c->sparsity);
        lm_prune_stats_free(s);
        if (advance && !c->dense_inputs && st == RW_OK) lm_stream_advance(&cs, model, b);
    }
    lm_stream_free(&cs);
    return st;
}
