/* Dynamic sparse training in checkpoints: the "dst" section of
 * nn/checkpoint.c, so that a DST run resumed in a new process ends
 * bit-identical to one never stopped. Written only when DST is attached:
 *
 *   metadata "dst.config" = JSON of rw_dst_config, every field (floats with
 *                           17 significant digits, the seed as a string)
 *            "dst.state"  = JSON {updates, total_seconds}
 *   tensors  "dst.start_nnz"        I64 [n_layers]  sizes when attached (GraNet)
 *            "dst.fcN.ever.indptr"  I32 [out + 1]   positions ever stored, per
 *            "dst.fcN.ever.indices" I32 [count]     sparse layer (ITOP)
 *   and, for momentum and Hebbian growth (the windows of recent batches):
 *            "dst.window.slot_n"    I32 [window]    valid columns of each slot
 *            "dst.fcN.window.pre"   F32 [in, window * bp]
 *            "dst.fcN.window.post"  F32 [out, window * bp]
 *   and, for input-level DST (input_budget > 0, whose four settings the
 *   config then holds; older checkpoints have none):
 *            "dst.inputs.closed"    U8  [in]       1 for each input removed
 *
 * The schedule's position is the trainer's step, already saved; each
 * update draws its randomness from (seed, updates), so no generator state
 * is needed. Loading checks every value against the model and the config
 * and names the file and the tensor when one is wrong. */
#include "sparsity/dst_checkpoint.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "nn/trainer.h"
#include "sparsity/dst_internal.h"

#define NAME_CAP (PARAM_NAME_CAP + 32)

/* ---- Saving ------------------------------------------------------------ */

static char *config_text(const rw_dst_config *c)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, c->seed);
    json_t *o = json_pack(
        "{s:i, s:i, s:i, s:f, s:i, s:f, s:i, s:i, s:f, s:f, s:i, s:f, s:f, s:f, s:f, s:s}", "drop",
        (int)c->drop, "grow", (int)c->grow, "update_every", c->update_every, "drop_fraction",
        c->drop_fraction, "drop_schedule", (int)c->drop_schedule, "update_until", c->update_until,
        "redistribute", c->redistribute, "window", c->window, "mest_lambda", (double)c->mest_lambda,
        "final_sparsity", c->final_sparsity, "final_distribution", (int)c->final_distribution,
        "prune_start", c->prune_start, "prune_end", c->prune_end, "initial_sparsity",
        c->initial_sparsity, "shrink", c->shrink, "seed", seed);
    /* Only with input selection, so that other runs' checkpoints are what
     * they were. */
    if (o && c->input_budget > 0) {
        json_object_set_new(o, "input_budget", json_integer(c->input_budget));
        json_object_set_new(o, "input_select", json_integer((int)c->input_select));
        json_object_set_new(o, "input_start", json_real(c->input_start));
        json_object_set_new(o, "input_end", json_real(c->input_end));
    }
    /* 17 significant digits: every double reads back exactly. */
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    return s;
}

static char *state_text(const dst_state *d)
{
    json_t *o = json_pack("{s:I, s:f}", "updates", (json_int_t)d->updates, "total_seconds",
                          d->total_seconds);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    return s;
}

rw_status dst_checkpoint_save(const rw_trainer *t, st_writer *w, const char *path)
{
    const dst_state *d = trainer_dst(t);
    if (!d) return RW_OK;
    const rw_model *m = t->model;
    char *config = config_text(&d->cfg), *state = state_text(d);
    rw_status st = RW_OK;
    if (!config || !state) st = rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory saving", path);
    if (st == RW_OK) st = st_writer_meta(w, "dst.config", config);
    if (st == RW_OK) st = st_writer_meta(w, "dst.state", state);
    free(config);
    free(state);
    int64_t n = d->n_layers, win = d->cfg.window, cols = (int64_t)d->cfg.window * d->bp;
    if (st == RW_OK) st = st_writer_add(w, "dst.start_nnz", ST_I64, 1, &n, d->start_nnz);
    int window = dst_uses_window(&d->cfg);
    if (st == RW_OK && window) st = st_writer_add(w, "dst.window.slot_n", ST_I32, 1, &win, d->slot_n);
    /* Between updates every closed input is 1 (the writer reads the
     * array when the file is written). */
    if (st == RW_OK && d->inputs) {
        int64_t cols = dst_param(d, m, d->input_weight)->cols;
        st = st_writer_add(w, "dst.inputs.closed", ST_U8, 1, &cols, input_select_closed(d->inputs));
    }
    for (int l = 0; l < d->n_layers && st == RW_OK; l++) {
        const param *p = dst_param(d, m, l);
        if (!param_is_sparse(p)) continue;
        char name[NAME_CAP];
        int64_t rows = p->rows + 1, count = d->ever[l].nnz;
        snprintf(name, sizeof name, "dst.%s.ever.indptr", p->layer_name);
        st = st_writer_add(w, name, ST_I32, 1, &rows, d->ever[l].indptr);
        snprintf(name, sizeof name, "dst.%s.ever.indices", p->layer_name);
        if (st == RW_OK) st = st_writer_add(w, name, ST_I32, 1, &count, d->ever[l].indices);
        if (!window) continue;
        int64_t pre[2] = {p->cols, cols}, post[2] = {p->rows, cols};
        snprintf(name, sizeof name, "dst.%s.window.pre", p->layer_name);
        if (st == RW_OK) st = st_writer_add(w, name, ST_F32, 2, pre, d->win_pre[l]);
        snprintf(name, sizeof name, "dst.%s.window.post", p->layer_name);
        if (st == RW_OK) st = st_writer_add(w, name, ST_F32, 2, post, d->win_post[l]);
    }
    return st;
}

/* ---- Loading ----------------------------------------------------------- */

static rw_status parse_config(const char *text, const char *path, rw_dst_config *c)
{
    int drop = 0, grow = 0, schedule = 0, dist = 0, input_select = 0;
    double lambda = 0;
    const char *seed = "";
    json_error_t jerr;
    /* About 400 bytes when written; anything much longer is not ours. */
    json_t *o = strlen(text) <= 65536 ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    memset(c, 0, sizeof *c);
    if (!o || json_unpack(o,
                          "{s:i, s:i, s:i, s:F, s:i, s:F, s:i, s:i, s:F, s:F, s:i, s:F, s:F, s:F, "
                          "s:F, s:s, s?i, s?i, s?F, s?F !}",
                          "drop", &drop, "grow", &grow, "update_every", &c->update_every,
                          "drop_fraction", &c->drop_fraction, "drop_schedule", &schedule,
                          "update_until", &c->update_until, "redistribute", &c->redistribute,
                          "window", &c->window, "mest_lambda", &lambda, "final_sparsity",
                          &c->final_sparsity, "final_distribution", &dist, "prune_start",
                          &c->prune_start, "prune_end", &c->prune_end, "initial_sparsity",
                          &c->initial_sparsity, "shrink", &c->shrink, "seed", &seed,
                          "input_budget", &c->input_budget, "input_select", &input_select,
                          "input_start", &c->input_start, "input_end", &c->input_end) != 0) {
        json_decref(o);
        return rw_fail(RW_ERR_FORMAT,
                       "%s: metadata dst.config needs exactly drop, grow, update_every, "
                       "drop_fraction, drop_schedule, update_until, redistribute, window, "
                       "mest_lambda, final_sparsity, final_distribution, prune_start, prune_end, "
                       "initial_sparsity, shrink, seed (and input_budget, input_select, "
                       "input_start, input_end for input selection)", path);
    }
    rw_status st = RW_OK;
    char *end;
    unsigned long long sd = strtoull(seed, &end, 10);
    if (*seed < '0' || *seed > '9' || *end != '\0')
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata dst.config seed \"%s\" is not a decimal integer",
                     path, seed);
    else if (c->redistribute != 0 && c->redistribute != 1)
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata dst.config redistribute %d is not 0 or 1", path,
                     c->redistribute);
    else if (dist < RW_DIST_UNIFORM || dist > RW_DIST_ERK)
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata dst.config final_distribution %d is unknown",
                     path, dist);
    else if (!(fabs(lambda) <= 3.0e38))
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata dst.config mest_lambda %g is not a finite float",
                     path, lambda);
    else if (!(c->initial_sparsity >= 0 && c->initial_sparsity < 1))
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata dst.config initial_sparsity %g is outside [0, 1)",
                     path, c->initial_sparsity);
    else if (!(c->shrink >= 0 && c->shrink < 1))
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata dst.config shrink %g is outside [0, 1)", path,
                     c->shrink);
    else if (c->input_budget < 0 || (c->input_budget == 0 && json_object_get(o, "input_select")))
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata dst.config input_budget %d: expected above 0 "
                     "with the input settings", path, c->input_budget);
    json_decref(o);
    /* The enums are range-checked by dst_create (check_config). */
    c->drop = (rw_drop_criterion)drop;
    c->grow = (rw_grow_criterion)grow;
    c->drop_schedule = (rw_drop_schedule)schedule;
    c->final_distribution = (rw_distribution)dist;
    c->mest_lambda = (float)lambda;
    c->seed = (uint64_t)sd;
    c->input_select = (rw_input_criterion)input_select;
    return st;
}

static rw_status parse_state(const char *text, const char *path, const rw_trainer *t,
                             dst_state *d)
{
    json_int_t updates = 0;
    double seconds = 0;
    json_error_t jerr;
    json_t *o = text && strlen(text) <= 4096 ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    int ok = o && json_unpack(o, "{s:I, s:F !}", "updates", &updates, "total_seconds", &seconds) == 0;
    json_decref(o);
    if (!text) return rw_fail(RW_ERR_FORMAT, "%s: metadata dst.state is missing", path);
    if (!ok)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata dst.state is not a JSON object of exactly "
                       "updates, total_seconds", path);
    /* At most one update after each step. */
    if (updates < 0 || updates > t->step || !(seconds >= 0) || !isfinite(seconds))
        return rw_fail(RW_ERR_FORMAT,
                       "%s: metadata dst.state is out of range (%lld updates after %lld steps, "
                       "%g seconds)", path, (long long)updates, (long long)t->step, seconds);
    d->updates = updates;
    d->total_seconds = seconds;
    return RW_OK;
}

/* The tensor `name`, of this dtype and shape; NULL (message set) if it is
 * missing or differs. */
static const st_tensor *expect_tensor(const st_file *f, const char *path, const char *name,
                                      st_dtype dtype, int ndim, const int64_t *shape)
{
    const st_tensor *x = st_find(f, name);
    if (!x) {
        rw_fail(RW_ERR_FORMAT, "%s: tensor %s is missing", path, name);
        return NULL;
    }
    int same = x->dtype == dtype && x->ndim == ndim;
    for (int k = 0; k < ndim && same; k++) same = x->shape[k] == shape[k];
    if (!same) {
        char dims[64];
        if (ndim == 1)
            snprintf(dims, sizeof dims, "[%lld]", (long long)shape[0]);
        else
            snprintf(dims, sizeof dims, "[%lld, %lld]", (long long)shape[0], (long long)shape[1]);
        rw_fail(RW_ERR_FORMAT, "%s: tensor %s should be %s of shape %s", path, name,
                st_dtype_name(dtype), dims);
        return NULL;
    }
    return x;
}

static rw_status load_start_nnz(const st_file *f, const char *path, const rw_model *m, dst_state *d)
{
    int64_t n = d->n_layers;
    const st_tensor *x = expect_tensor(f, path, "dst.start_nnz", ST_I64, 1, &n);
    if (!x) return RW_ERR_FORMAT;
    memcpy(d->start_nnz, x->data, x->nbytes);
    for (int l = 0; l < d->n_layers; l++) {
        const param *p = dst_param(d, m, l);
        int64_t size = param_dense_count(p);
        if (d->start_nnz[l] < 0 || d->start_nnz[l] > size)
            return rw_fail(RW_ERR_FORMAT,
                           "%s: tensor dst.start_nnz gives layer %s %lld weights, outside [0, "
                           "%lld]", path, p->layer_name, (long long)d->start_nnz[l], (long long)size);
    }
    return RW_OK;
}

/* Layer l's ever-stored pattern: a valid CSR pattern of the layer's shape
 * that holds every position the layer stores now. */
static rw_status load_ever(const st_file *f, const char *path, const param *wp, pattern *p)
{
    char ptr_name[NAME_CAP], idx_name[NAME_CAP];
    snprintf(ptr_name, sizeof ptr_name, "dst.%s.ever.indptr", wp->layer_name);
    snprintf(idx_name, sizeof idx_name, "dst.%s.ever.indices", wp->layer_name);
    struct {
        int in, out;
    } dims = {wp->cols, wp->rows}, *ly = &dims;
    int64_t rows = ly->out + 1;
    const st_tensor *xp = expect_tensor(f, path, ptr_name, ST_I32, 1, &rows);
    if (!xp) return RW_ERR_FORMAT;
    int32_t *ptr = malloc(xp->nbytes);
    if (!ptr) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, ptr_name);
    memcpy(ptr, xp->data, xp->nbytes);
    rw_status st = RW_OK;
    if (ptr[0] != 0)
        st = rw_fail(RW_ERR_FORMAT, "%s: tensor %s starts at %d, expected 0", path, ptr_name, ptr[0]);
    /* Rows of at most `in` entries: the count cannot pass in · out. */
    for (int r = 0; r < ly->out && st == RW_OK; r++)
        if (ptr[r + 1] < ptr[r] || ptr[r + 1] - ptr[r] > ly->in)
            st = rw_fail(RW_ERR_FORMAT,
                         "%s: tensor %s is not a row pointer of %d columns at row %d (%d then %d)",
                         path, ptr_name, ly->in, r, ptr[r], ptr[r + 1]);
    int64_t count = st == RW_OK ? ptr[ly->out] : 0;
    const st_tensor *xi = st == RW_OK ? expect_tensor(f, path, idx_name, ST_I32, 1, &count) : NULL;
    if (st == RW_OK && !xi) st = RW_ERR_FORMAT;
    int32_t *idx = st == RW_OK ? malloc(xi->nbytes + sizeof(int32_t)) : NULL;
    if (st == RW_OK && !idx) st = rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, idx_name);
    if (st == RW_OK) memcpy(idx, xi->data, xi->nbytes);
    const csr_matrix *w = wp->csr;
    for (int r = 0; r < ly->out && st == RW_OK; r++) {
        for (int k = ptr[r]; k < ptr[r + 1] && st == RW_OK; k++)
            if (idx[k] < 0 || idx[k] >= ly->in || (k > ptr[r] && idx[k] <= idx[k - 1]))
                st = rw_fail(RW_ERR_FORMAT,
                             "%s: tensor %s: index %d in row %d is outside [0, %d) or not above "
                             "the one before", path, idx_name, idx[k], r, ly->in);
        /* Both rows are sorted: walk them together. */
        int k = ptr[r];
        for (int j = w->indptr[r]; j < w->indptr[r + 1] && st == RW_OK; j++) {
            while (k < ptr[r + 1] && idx[k] < w->indices[j]) k++;
            if (k == ptr[r + 1] || idx[k] != w->indices[j])
                st = rw_fail(RW_ERR_FORMAT,
                             "%s: tensor %s lacks position (row %d, column %d), which layer %s "
                             "stores: the ever-stored record must hold the current pattern",
                             path, idx_name, r, w->indices[j], wp->layer_name);
        }
    }
    if (st != RW_OK) {
        free(ptr);
        free(idx);
        return st;
    }
    pattern_free(p);
    p->rows = ly->out;
    p->nnz = count;
    p->indptr = ptr;
    p->indices = idx;
    return RW_OK;
}

/* A window tensor [rows][window·bp]: finite, and 0 in every column that no
 * batch filled (a slot's columns from slot_n on), as window_capture and
 * window_clear leave them. */
static rw_status load_window(const st_file *f, const char *path, const char *name, int rows,
                             const dst_state *d, float *dst)
{
    int64_t stride = (int64_t)d->cfg.window * d->bp, shape[2] = {rows, stride};
    const st_tensor *x = expect_tensor(f, path, name, ST_F32, 2, shape);
    if (!x) return RW_ERR_FORMAT;
    memcpy(dst, x->data, x->nbytes);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < stride; c++) {
            float v = dst[r * stride + c];
            if (!isfinite(v))
                return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value at [%lld, %lld]",
                               path, name, (long long)r, (long long)c);
            if (v != 0.0f && c % d->bp >= d->slot_n[c / d->bp])
                return rw_fail(RW_ERR_FORMAT,
                               "%s: tensor %s has %g at [%lld, %lld], a column no batch filled "
                               "(slot %lld holds %d)", path, name, (double)v, (long long)r,
                               (long long)c, (long long)(c / d->bp), d->slot_n[c / d->bp]);
        }
    return RW_OK;
}

static rw_status load_windows(const st_file *f, const char *path, const rw_trainer *t, dst_state *d)
{
    int64_t win = d->cfg.window;
    const st_tensor *x = expect_tensor(f, path, "dst.window.slot_n", ST_I32, 1, &win);
    if (!x) return RW_ERR_FORMAT;
    memcpy(d->slot_n, x->data, x->nbytes);
    int most = t->cfg.batch < d->bp ? t->cfg.batch : d->bp;
    for (int j = 0; j < d->cfg.window; j++)
        if (d->slot_n[j] < 0 || d->slot_n[j] > most)
            return rw_fail(RW_ERR_FORMAT, "%s: tensor dst.window.slot_n gives slot %d %d columns, "
                           "outside [0, %d]", path, j, d->slot_n[j], most);
    rw_status st = RW_OK;
    for (int l = 0; l < d->n_layers && st == RW_OK; l++) {
        const param *p = dst_param(d, t->model, l);
        if (!param_is_sparse(p)) continue;
        char name[NAME_CAP];
        snprintf(name, sizeof name, "dst.%s.window.pre", p->layer_name);
        st = load_window(f, path, name, p->cols, d, d->win_pre[l]);
        snprintf(name, sizeof name, "dst.%s.window.post", p->layer_name);
        if (st == RW_OK) st = load_window(f, path, name, p->rows, d, d->win_post[l]);
    }
    return st;
}

/* The inputs closed so far: 0 or 1 each, at least the budget open, and
 * no connection from a closed one (the removal took them all). */
static rw_status load_inputs(const st_file *f, const char *path, const rw_model *m, dst_state *d)
{
    const param *p = dst_param(d, m, d->input_weight);
    int64_t cols = p->cols;
    const st_tensor *x = expect_tensor(f, path, "dst.inputs.closed", ST_U8, 1, &cols);
    if (!x) return RW_ERR_FORMAT;
    const uint8_t *closed = x->data;
    int open = 0;
    for (int64_t i = 0; i < cols; i++) {
        if (closed[i] > 1)
            return rw_fail(RW_ERR_FORMAT, "%s: tensor dst.inputs.closed has %d at %lld, expected 0 "
                           "or 1", path, closed[i], (long long)i);
        open += !closed[i];
    }
    if (open < d->cfg.input_budget)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor dst.inputs.closed leaves %d inputs open, fewer "
                       "than the budget of %d", path, open, d->cfg.input_budget);
    const csr_matrix *w = p->csr;
    for (int q = 0; q < w->nnz; q++)
        if (closed[w->indices[q]])
            return rw_fail(RW_ERR_FORMAT, "%s: tensor dst.inputs.closed closes input %d, which "
                           "layer %s still connects", path, w->indices[q], p->layer_name);
    input_select_restore(d->inputs, closed);
    return RW_OK;
}

/* 1 if `name` (a "dst." tensor) is one this config and model have. */
static int expected_tensor(const char *name, const rw_model *m, int window, int inputs)
{
    if (strcmp(name, "dst.start_nnz") == 0) return 1;
    if (strcmp(name, "dst.inputs.closed") == 0) return inputs;
    if (strcmp(name, "dst.window.slot_n") == 0) return window;
    static const char *const always[] = {"ever.indptr", "ever.indices"};
    static const char *const windowed[] = {"window.pre", "window.post"};
    for (int q = 0; q < m->n_params; q++) {
        const param *p = &m->params[q];
        if (!p->is_weight || !param_is_sparse(p)) continue;
        for (int k = 0; k < 2; k++) {
            char want[2 * NAME_CAP];
            snprintf(want, sizeof want, "dst.%s.%s", p->layer_name, always[k]);
            if (strcmp(want, name) == 0) return 1;
            snprintf(want, sizeof want, "dst.%s.%s", p->layer_name, windowed[k]);
            if (strcmp(want, name) == 0) return window;
        }
    }
    return 0;
}

/* Every "dst." tensor and metadata key is one the section knows. */
static rw_status check_nothing_else(const st_file *f, const char *path, const rw_model *m,
                                    int have_config, int window, int inputs)
{
    for (int i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name;
        if (strncmp(name, "dst.", 4) != 0) continue;
        if (!have_config)
            return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s: the checkpoint holds no "
                           "dynamic-sparse-training settings (metadata dst.config)", path, name);
        if (!expected_tensor(name, m, window, inputs))
            return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s (not a state of this model's "
                           "dynamic sparse training)", path, name);
    }
    for (int i = 0; i < f->meta_count; i++) {
        const char *key = f->meta_keys[i];
        if (strncmp(key, "dst.", 4) != 0) continue;
        if (strcmp(key, "dst.config") != 0 && strcmp(key, "dst.state") != 0)
            return rw_fail(RW_ERR_FORMAT, "%s: unexpected metadata %s", path, key);
        if (!have_config)
            return rw_fail(RW_ERR_FORMAT, "%s: metadata %s without metadata dst.config", path, key);
    }
    return RW_OK;
}

rw_status dst_checkpoint_load(rw_trainer *t, const st_file *f, const char *path)
{
    const char *text = st_meta(f, "dst.config");
    const rw_model *m = t->model;
    if (!text) return check_nothing_else(f, path, m, 0, 0, 0); /* the run had no DST */
    rw_dst_config c;
    dst_state *d = NULL;
    rw_status st = parse_config(text, path, &c);
    if (st == RW_OK) st = dst_create(&c, m, trainer_batch_bp(t), &d); /* checks the settings */
    if (st == RW_ERR_INVALID_ARGUMENT || st == RW_ERR_NO_MEMORY) {
        char why[512];
        snprintf(why, sizeof why, "%s", rw_last_error());
        st = rw_fail(st == RW_ERR_NO_MEMORY ? st : RW_ERR_FORMAT, "%s: metadata dst.config: %s",
                     path, why);
    }
    if (st == RW_OK) st = check_nothing_else(f, path, m, 1, dst_uses_window(&c), c.input_budget > 0);
    if (st == RW_OK) st = parse_state(st_meta(f, "dst.state"), path, t, d);
    if (st == RW_OK) st = load_start_nnz(f, path, m, d);
    /* GraNet's targets follow from the starting sizes, not from the
     * model as it is now (dst_create's guess). */
    if (st == RW_OK && c.final_sparsity > 0) st = dst_granet_targets(d, m);
    for (int l = 0; st == RW_OK && l < d->n_layers; l++)
        if (param_is_sparse(dst_param(d, m, l)))
            st = load_ever(f, path, dst_param(d, m, l), &d->ever[l]);
    if (st == RW_OK && dst_uses_window(&c)) st = load_windows(f, path, t, d);
    if (st == RW_OK && d->inputs) st = load_inputs(f, path, m, d);
    if (st != RW_OK) {
        dst_free(d);
        return st;
    }
    /* As the last update left it: the model has not changed since. */
    d->pruning_done = d->updates > 0 && c.final_sparsity > 0;
    for (int l = 0; l < d->n_layers && d->pruning_done; l++) {
        const param *p = dst_param(d, m, l);
        if (param_is_sparse(p) && param_count(p) > d->final_nnz[l]) d->pruning_done = 0;
    }
    return dst_attach(t, d);
}

int64_t dst_checkpoint_memory(const st_file *f, const rw_model *m, const rw_train_config *tc)
{
    const char *text = st_meta(f, "dst.config");
    rw_dst_config c;
    if (!text || parse_config(text, "", &c) != RW_OK) {
        rw_clear_error(); /* the load itself reports it */
        return 0;
    }
    int window = dst_uses_window(&c) && c.window >= 1 && c.window <= DST_MAX_WINDOW ? c.window : 0;
    double bp = (double)rw_pad_batch(tc->batch > 0 ? tc->batch : 1), bytes = 0;
    int weights = 0;
    for (int q = 0; q < m->n_params; q++) {
        const param *p = &m->params[q];
        weights += p->is_weight;
        if (!p->is_weight || !param_is_sparse(p)) continue;
        /* The ever-stored record as the file gives it (m may be a
         * skeleton, its patterns not read yet) and the windows; a hostile
         * count saturates instead of overflowing. */
        char name[NAME_CAP];
        snprintf(name, sizeof name, "dst.%s.ever.indices", p->layer_name);
        const st_tensor *ever = st_find(f, name);
        bytes += 4.0 * ((double)p->rows + 1 + (ever ? (double)ever->count : 0));
        bytes += 4.0 * ((double)p->cols + p->rows) * window * bp;
    }
    bytes += 8.0 * 8 * weights; /* the per-layer counts */
    return bytes < 9.0e18 ? (int64_t)bytes : INT64_MAX;
}

