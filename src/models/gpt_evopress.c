/* EvoPress for a GPT (rw_lm_prune_evopress): the database of every block
 * map pruned at each level, the stitched model's KL divergence from the
 * dense one as the fitness, and the search of sparsity/evopress.c
 * ("EvoPress: Towards Optimal Dynamic Model Compression via Evolutionary
 * Search", Sieberling et al. 2024).
 *
 * The database's maps are pruned on calibration inputs computed through
 * the dense model (rw_lm_prune's dense_inputs): with inputs through the
 * pruned blocks, a map's weights would depend on the levels of every map
 * before it and no finite database could hold them. The model handed back
 * is stitched from the database, exactly as the search judged it. */
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
#include "sparsity/evopress.h"
#include "text/text_api.h"

#define EVO_BATCH_TOKENS 4096
#define EVO_LOGIT_BYTES ((size_t)256 << 20)
#define EVO_MAX_SPARSITY 0.99
#define EVO_STAGES 3

typedef struct {
    int lo, hi;         /* levels */
    double size;        /* rows · cols */
    csr_matrix *level;  /* [hi - lo + 1] the map pruned at each level */
} map_levels;

typedef struct {
    rw_model *m;
    int maps;
    map_levels *db;
    int *held;           /* [maps] the level each map of the model holds; INT_MIN: dense */
    double target, unit; /* the average sparsity; one level's weights */
    /* The fitness: a workspace per stage, as wide as the stage's windows
     * (a layer computes every column of its workspace). */
    workspace ws[EVO_STAGES];
    int T, per[EVO_STAGES], V, windows;
    int stage_windows[EVO_STAGES];
    int32_t *tokens;     /* [windows][T] */
    float *logp;         /* [windows · T][V] the dense model's log-probabilities */
    rw_status error;     /* the first failure while stitching */
} evo_state;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

rw_lm_evopress_config rw_lm_evopress_config_default(void)
{
    rw_lm_evopress_config e;
    memset(&e, 0, sizeof e);
    return e;
}

static double map_sparsity_at(const evo_state *e, int u, int j)
{
    return e->target + (double)j * e->unit / e->db[u].size;
}

static void evo_free(evo_state *e)
{
    for (int u = 0; e->db && u < e->maps; u++) {
        for (int j = 0; e->db[u].level && j <= e->db[u].hi - e->db[u].lo; j++)
            csr_free(&e->db[u].level[j]);
        free(e->db[u].level);
    }
    free(e->db);
    free(e->held);
    for (int k = 0; k < EVO_STAGES; k++) workspace_free(&e->ws[k]);
    free(e->tokens);
    free(e->logp);
}

/* Each map's level range: within ±range of the target and [0, 0.99]. */
static rw_status plan_levels(evo_state *e, const rw_lm_evopress_config *s, double range)
{
    double smallest = INFINITY;
    e->db = calloc((size_t)e->maps, sizeof *e->db);
    e->held = malloc(sizeof *e->held * (size_t)e->maps);
    if (!e->db || !e->held) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for EvoPress");
    for (int u = 0; u < e->maps; u++) {
        const param *p = model_layer_params(e->m, lm_prune_map_layer(u / LM_PRUNE_MAPS,
                                                                      u % LM_PRUNE_MAPS));
        e->db[u].size = (double)p->rows * p->cols;
        if (e->db[u].size < smallest) smallest = e->db[u].size;
        e->held[u] = INT32_MIN;
    }
    e->unit = (s->step > 0 ? s->step : 0.05) * smallest;
    double down = range < e->target ? range : e->target;
    double up = e->target + range < EVO_MAX_SPARSITY ? range : EVO_MAX_SPARSITY - e->target;
    for (int u = 0; u < e->maps; u++) {
        map_levels *d = &e->db[u];
        /* A hair of slack so that a range that is a whole number of levels
         * keeps its last one despite rounding. */
        d->lo = -(int)floor(down * d->size / e->unit + 1e-9);
        d->hi = up > 0 ? (int)floor(up * d->size / e->unit + 1e-9) : 0;
        d->level = calloc((size_t)(d->hi - d->lo + 1), sizeof *d->level);
        if (!d->level) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for EvoPress's database");
    }
    return RW_OK;
}

/* Every map at every level, from the dense model's calibration inputs. */
static rw_status build_database(evo_state *e, const rw_lm_prune_config *c, const rw_gpt_config *g,
                                int T, int *levels)
{
    calib_stream cs;
    rw_status st = lm_stream_open(&cs, e->m, c, T, g->n_embd);
    int want_h = c->method == RW_LM_PRUNE_SPARSEGPT || c->method == RW_LM_PRUNE_DSNOT;
    *levels = 0;
    for (int b = 0; b < g->n_layer && st == RW_OK; b++) {
        map_stats s[LM_PRUNE_MAPS];
        memset(s, 0, sizeof s);
        st = lm_collect_block(cs.x ? &cs : NULL, e->m, b, want_h, s);
        for (int k = 0; k < LM_PRUNE_MAPS && st == RW_OK; k++) {
            int u = LM_PRUNE_MAPS * b + k;
            map_levels *d = &e->db[u];
            for (int j = d->lo; j <= d->hi && st == RW_OK; j++) {
                double error, seconds;
                st = lm_prune_map_csr(e->m, &s[k], c, map_sparsity_at(e, u, j),
                                      &d->level[j - d->lo], &error, &seconds);
                *levels += st == RW_OK;
            }
        }
        lm_prune_stats_free(s);
        if (st == RW_OK && cs.x && b + 1 < g->n_layer) lm_stream_advance(&cs, e->m, b);
    }
    lm_stream_free(&cs);
    return st;
}

static rw_status csr_copy(const csr_matrix *a, csr_matrix *out)
{
    rw_status st = csr_alloc(out, a->rows, a->cols, a->nnz);
    if (st != RW_OK) return st;
    memcpy(out->indptr, a->indptr, sizeof *a->indptr * (size_t)(a->rows + 1));
    memcpy(out->indices, a->indices, sizeof *a->indices * (size_t)a->nnz);
    memcpy(out->values, a->values, sizeof *a->values * (size_t)a->nnz);
    return RW_OK;
}

/* Puts the database's maps of profile `level` in the model (those it does
 * not hold already). */
static rw_status stitch(evo_state *e, const int *level)
{
    for (int u = 0; u < e->maps; u++) {
        if (e->held[u] == level[u]) continue;
        csr_matrix w;
        rw_status st = csr_copy(&e->db[u].level[level[u] - e->db[u].lo], &w);
        if (st == RW_OK)
            st = linear_replace_csr(e->m, lm_prune_map_layer(u / LM_PRUNE_MAPS, u % LM_PRUNE_MAPS),
                                    &w);
        if (st != RW_OK) return st;
        e->held[u] = level[u];
    }
    return RW_OK;
}

/* Runs windows [w0, w0 + count) through the model as it stands, in
 * stage k's workspace. */
static const float *forward_windows(evo_state *e, int k, int w0, int count)
{
    workspace *ws = &e->ws[k];
    ws->tokens = e->tokens + (size_t)w0 * e->T;
    ws->n = count * e->T;
    ws->seq_len = e->T;
    ws->pos0 = 0;
    network_forward(e->m, ws);
    return network_logits(e->m, ws);
}

/* The dense model's log-probabilities of every fitness token. */
static void dense_log_probs(evo_state *e)
{
    int k = EVO_STAGES - 1, bp = e->ws[k].bp, V = e->V;
    for (int w0 = 0; w0 < e->windows; w0 += e->per[k]) {
        int count = e->windows - w0 < e->per[k] ? e->windows - w0 : e->per[k];
        const float *z = forward_windows(e, k, w0, count);
        for (int j = 0; j < count * e->T; j++) {
            double mx = -INFINITY, sum = 0;
            for (int v = 0; v < V; v++) mx = fmax(mx, z[(size_t)v * bp + j]);
            for (int v = 0; v < V; v++) sum += exp(z[(size_t)v * bp + j] - mx);
            double lse = mx + log(sum);
            float *out = e->logp + ((size_t)w0 * e->T + j) * V;
            for (int v = 0; v < V; v++) out[v] = (float)(z[(size_t)v * bp + j] - lse);
        }
    }
}

/* Mean KL(dense ‖ stitched) per token over the stage's windows. */
static double fitness(const int *level, int stage, void *user)
{
    evo_state *e = user;
    if (e->error != RW_OK) return INFINITY;
    if ((e->error = stitch(e, level)) != RW_OK) return INFINITY;
    int bp = e->ws[stage].bp, V = e->V, windows = e->stage_windows[stage], per = e->per[stage];
    double kl = 0;
    for (int w0 = 0; w0 < windows; w0 += per) {
        int count = windows - w0 < per ? windows - w0 : per;
        const float *z = forward_windows(e, stage, w0, count);
        for (int j = 0; j < count * e->T; j++) {
            double mx = -INFINITY, sum = 0;
            for (int v = 0; v < V; v++) mx = fmax(mx, z[(size_t)v * bp + j]);
            for (int v = 0; v < V; v++) sum += exp(z[(size_t)v * bp + j] - mx);
            double lse = mx + log(sum);
            const float *lp = e->logp + ((size_t)w0 * e->T + j) * V;
            double t = 0;
            for (int v = 0; v < V; v++)
                t += exp((double)lp[v]) * ((double)lp[v] - (z[(size_t)v * bp + j] - lse));
            kl += t;
        }
    }
    return kl / ((double)windows * e->T);
}

static rw_status check_search(const rw_model *m, const rw_lm_prune_config *c,
                              const rw_lm_evopress_config *s, double *map_sparsity)
{
    if (!map_sparsity || !s)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune_evopress: NULL argument");
    if (c->nm_m != 0 || c->method == RW_LM_PRUNE_MAGNITUDE_GLOBAL || c->map_sparsity)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune_evopress: the search shares an "
                       "unstructured sparsity among the maps; not with N:M, the global "
                       "magnitude or a given map_sparsity");
    if (!c->calibration)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune_evopress: calibration is NULL; the "
                       "search's fitness needs a calibration text");
    if (s->step < 0 || s->step > 1 || s->range < 0 || s->range >= 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune_evopress: step %g and range %g, "
                       "expected step in (0, 1] and range in (0, 1) (0: default)", s->step,
                       s->range);
    if (s->generations < 0 || s->offspring < 0 || s->max_mutations < 0 || s->windows < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune_evopress: generations, offspring, "
                       "max_mutations and windows must not be negative");
    if (rw_lm_prune_map_count(m) < 2)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune_evopress: the model has fewer than 2 "
                       "block maps to share sparsity among");
    return RW_OK;
}

static void relay_generation(int generation, double kl, const int *level, void *user)
{
    (void)level;
    const rw_lm_evopress_config *s = user;
    s->on_generation(generation, kl, s->user);
}

/* The fitness windows and the dense model's answers on them. */
static rw_status prepare_fitness(evo_state *e, const rw_lm_prune_config *c,
                                 const rw_lm_evopress_config *s, int T)
{
    e->T = T;
    e->V = rw_model_classes(e->m);
    e->windows = s->windows ? s->windows : 32;
    size_t tokens = (size_t)e->windows * T;
    if (tokens * (size_t)e->V * sizeof(float) > ((size_t)1 << 31))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune_evopress: %d fitness windows of %d "
                       "tokens over %d classes hold over 2 GB of dense log-probabilities; use "
                       "fewer windows", e->windows, T, e->V);
    size_t per_window = (size_t)T * (size_t)e->V * sizeof(float);
    int per = EVO_BATCH_TOKENS / T;
    if ((size_t)per > EVO_LOGIT_BYTES / per_window) per = (int)(EVO_LOGIT_BYTES / per_window);
    if (per < 1) per = 1;
    /* Multi-step selection: 1/16 and 1/4 of the windows, then all. */
    e->stage_windows[0] = e->windows / 16 > 0 ? e->windows / 16 : 1;
    e->stage_windows[1] = e->windows / 4 > 0 ? e->windows / 4 : 1;
    e->stage_windows[2] = e->windows;
    for (int k = 0; k < EVO_STAGES; k++)
        e->per[k] = per < e->stage_windows[k] ? per : e->stage_windows[k];
    int32_t *targets = malloc(sizeof *targets * tokens);
    e->tokens = malloc(sizeof *e->tokens * tokens);
    e->logp = malloc(sizeof *e->logp * tokens * (size_t)e->V);
    rw_status st = targets && e->tokens && e->logp
                       ? corpus_sample_batch(c->calibration->c, CORPUS_TRAIN, T, e->windows,
                                             s->seed, 1, e->tokens, targets)
                       : rw_fail(RW_ERR_NO_MEMORY, "out of memory for %d fitness windows",
                                 e->windows);
    free(targets);
    for (int k = 0; k < EVO_STAGES && st == RW_OK; k++)
        st = workspace_init(&e->ws[k], e->m, e->per[k] * T, 0);
    if (st != RW_OK) return st;
    dense_log_probs(e);
    return RW_OK;
}

rw_status rw_lm_prune_evopress(rw_model *model, const rw_lm_prune_config *c,
                               const rw_lm_evopress_config *s, double *map_sparsity,
                               rw_lm_evopress_report *report)
{
    if (!model || !c) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_prune_evopress: NULL argument");
    rw_gpt_config g;
    rw_status st = gpt_config_of(model, &g);
    if (st != RW_OK) return st;
    if ((st = check_search(model, c, s, map_sparsity)) != RW_OK) return st;
    /* The pruning's own checks; magnitude reads no text but the fitness
     * does, so the text is checked as Wanda's would be. */
    rw_lm_prune_config cc = *c;
    if (!lm_prune_reads_calibration(cc.method)) cc.method = RW_LM_PRUNE_WANDA;
    int T = 0;
    if ((st = lm_prune_check(model, &cc, &g, &T)) != RW_OK) return st;

    evo_state e;
    memset(&e, 0, sizeof e);
    e.m = model;
    e.maps = LM_PRUNE_MAPS * g.n_layer;
    e.target = c->sparsity;
    rw_lm_evopress_report r = {0, 0, 0, 0, 0};
    int *level = calloc((size_t)e.maps, sizeof *level), *lo = NULL, *hi = NULL;
    if (!level) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for EvoPress");
    double t0 = now_seconds();
    st = plan_levels(&e, s, s->range > 0 ? s->range : 0.3);
    if (st == RW_OK) st = prepare_fitness(&e, c, s, T);
    if (st == RW_OK) st = build_database(&e, c, &g, T, &r.levels);
    r.database_seconds = now_seconds() - t0;
    lo = malloc(sizeof *lo * (size_t)e.maps);
    hi = malloc(sizeof *hi * (size_t)e.maps);
    if (st == RW_OK && (!lo || !hi)) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for EvoPress");
    if (st == RW_OK) {
        for (int u = 0; u < e.maps; u++) lo[u] = e.db[u].lo, hi[u] = e.db[u].hi;
        int offspring = s->offspring ? s->offspring : 16;
        int survivors[EVO_STAGES - 1] = {offspring / 4 > 0 ? offspring / 4 : 1, 2};
        if (survivors[1] > survivors[0]) survivors[1] = survivors[0];
        evopress_config ec = {e.maps, lo, hi, s->generations ? s->generations : 200, offspring,
                              s->max_mutations ? s->max_mutations : 3, EVO_STAGES, survivors,
                              s->seed, s->on_generation ? relay_generation : NULL, (void *)s};
        t0 = now_seconds();
        r.kl_uniform = fitness(level, EVO_STAGES - 1, &e);
        st = evopress_search(&ec, fitness, &e, level, &r.kl);
        if (st == RW_OK) st = e.error;
        /* The model holds the best profile's maps. */
        if (st == RW_OK) st = stitch(&e, level);
        r.search_seconds = now_seconds() - t0;
    }
    if (st == RW_OK) {
        for (int u = 0; u < e.maps; u++) map_sparsity[u] = map_sparsity_at(&e, u, level[u]);
        if (report) *report = r;
    }
    free(level), free(lo), free(hi);
    evo_free(&e);
    return st;
}
