/* N:M training in checkpoints: the "nm" section of nn/checkpoint.c, so
 * that an N:M run resumed in a new process ends bit-identical to one never
 * stopped. Written only while the model trains N:M:
 *
 *   metadata "nm.config"   = JSON {n, m, method, layers, lambda, decay_end}
 *                            (rw_nm_train_config: the enums as integers,
 *                            floats with 17 significant digits)
 *   tensors  "nm.fcN.seen" U8 [out, in/m·n] per N:M-trained layer: the mask
 *                            offsets at the last rw_model_nm_mask_change
 *
 * The rest follows from what the checkpoint already holds: the model is
 * saved with its dense master weights W (kind "dense"), so the mask (top n
 * of |W| in every group) and the compressed copy are regenerated from W,
 * as after every step; the decay factor β is a function of the step and
 * the run's length (nm_decay_beta), and W_eff of W, the mask and β. Only
 * the last mask the mask-change count compares with is not: it is what
 * the logged mask change of a resumed run needs to equal the uninterrupted
 * one's. Loading checks every value against the model, and names the file
 * and the tensor or key, before the model changes. */
#include "nn/nm_train_checkpoint.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/model.h"
#include "nn/nm_train.h"
#include "nn/trainer.h"

#define NAME_CAP (LAYER_NAME_CAP + 16)

/* ---- Saving ------------------------------------------------------------ */

static char *config_text(const rw_nm_train_config *c)
{
    json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:f, s:f}", "n", c->n, "m", c->m, "method",
                          (int)c->method, "layers", (int)c->layers, "lambda",
                          (double)c->srste_lambda, "decay_end", c->decay_end);
    /* 17 significant digits: every double reads back exactly. */
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    return s;
}

rw_status nm_checkpoint_save(const rw_trainer *t, st_writer *w, const char *path)
{
    const rw_model *m = t->model;
    if (!model_nm_training(m)) return RW_OK;
    rw_nm_train_config c;
    if (!rw_model_nm_train_config(m, &c))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "%s: not saved: the model's N:M-trained layers are not those of one layer "
                       "choice (hidden, all or inner)", path);
    char *config = config_text(&c);
    rw_status st = config ? st_writer_meta(w, "nm.config", config)
                          : rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory saving", path);
    free(config);
    for (int l = 0; l < m->n_layers && st == RW_OK; l++) {
        const linear_nm_train *nt = nm_train_of_const(m->layers[l]);
        if (!nt) continue;
        char name[NAME_CAP];
        int64_t shape[2] = {nt->lin.base.out, nm_slots_per_row(&nt->nm)};
        snprintf(name, sizeof name, "nm.%s.seen", nt->lin.base.name);
        st = st_writer_add(w, name, ST_U8, 2, shape, nt->seen);
    }
    return st;
}

/* ---- Loading ----------------------------------------------------------- */

static rw_status parse_config(const char *text, const char *path, rw_nm_train_config *c)
{
    int method = -1, layers = -1;
    double lambda = 0;
    json_error_t jerr;
    /* About 80 bytes when written; anything much longer is not ours. */
    json_t *o = strlen(text) <= 4096 ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    *c = rw_nm_train_config_default();
    int ok = o && json_unpack(o, "{s:i, s:i, s:i, s:i, s:F, s:F !}", "n", &c->n, "m", &c->m,
                              "method", &method, "layers", &layers, "lambda", &lambda,
                              "decay_end", &c->decay_end) == 0;
    json_decref(o);
    if (!ok)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata nm.config is not a JSON object of exactly n, "
                       "m, method, layers, lambda, decay_end", path);
    if (c->m < 1 || c->m > NM_MAX_M || c->n < 1 || c->n > c->m)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata nm.config n %d, m %d: the pattern needs 1 <= "
                       "n <= m <= %d", path, c->n, c->m, NM_MAX_M);
    if (method < RW_NM_STE || method > RW_NM_DECAY)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata nm.config method %d is unknown (0 ste, 1 "
                       "srste, 2 decay)", path, method);
    if (layers < RW_NM_HIDDEN || layers > RW_NM_INNER)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata nm.config layers %d is unknown (0 hidden, 1 "
                       "all, 2 inner)", path, layers);
    if (!(lambda >= 0 && lambda <= FLT_MAX))
        return rw_fail(RW_ERR_FORMAT, "%s: metadata nm.config lambda %g is not a finite float >= 0",
                       path, lambda);
    /* rw_model_nm_train_config reports 0 for the other methods. */
    if (method != RW_NM_SRSTE && lambda != 0)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata nm.config lambda %g with method %d: only SR-STE "
                       "(1) has one, expected 0", path, lambda, method);
    if (!(c->decay_end > 0 && c->decay_end <= 1))
        return rw_fail(RW_ERR_FORMAT, "%s: metadata nm.config decay_end %g is outside (0, 1]", path,
                       c->decay_end);
    c->method = (rw_nm_method)method;
    c->layers = (rw_nm_layers)layers;
    c->srste_lambda = (float)lambda;
    return RW_OK;
}

/* 1 if `name` (an "nm." tensor) is the seen offsets of a layer c chooses. */
static int expected_tensor(const char *name, const rw_model *m, const rw_nm_train_config *c)
{
    for (int l = 0; l < m->n_layers; l++) {
        char want[NAME_CAP + 16];
        snprintf(want, sizeof want, "nm.%s.seen", m->layers[l]->name);
        if (strcmp(want, name) == 0) return nm_train_chosen_layer(c, m, l);
    }
    return 0;
}

/* Every "nm." tensor and metadata key is one the section knows; c is NULL
 * when the checkpoint holds no nm.config. */
static rw_status check_nothing_else(const st_file *f, const char *path, const rw_model *m,
                                    const rw_nm_train_config *c)
{
    for (int i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name;
        if (strncmp(name, "nm.", 3) != 0) continue;
        if (!c)
            return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s: the checkpoint holds no N:M "
                           "training settings (metadata nm.config)", path, name);
        if (!expected_tensor(name, m, c))
            return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s (not a state of this model's "
                           "N:M training)", path, name);
    }
    for (int i = 0; i < f->meta_count; i++) {
        const char *key = f->meta_keys[i];
        if (strncmp(key, "nm.", 3) == 0 && strcmp(key, "nm.config") != 0)
            return rw_fail(RW_ERR_FORMAT, "%s: unexpected metadata %s", path, key);
    }
    return RW_OK;
}

/* Layer l's seen offsets in the file: U8 [out, slots], strictly
 * increasing and below m in every group (rw_model_nm_mask_change shifts
 * by them). Checked where they lie, before the model changes. */
static const st_tensor *seen_tensor(const st_file *f, const char *path, const layer *ly,
                                    const rw_nm_train_config *c)
{
    char name[NAME_CAP];
    snprintf(name, sizeof name, "nm.%s.seen", ly->name);
    int groups = ly->in / c->m;
    int64_t slots = (int64_t)groups * c->n;
    const st_tensor *x = st_find(f, name);
    if (!x) {
        rw_fail(RW_ERR_FORMAT, "%s: tensor %s is missing", path, name);
        return NULL;
    }
    if (x->dtype != ST_U8 || x->ndim != 2 || x->shape[0] != ly->out || x->shape[1] != slots) {
        rw_fail(RW_ERR_FORMAT, "%s: tensor %s should be U8 of shape [%d, %lld]", path, name,
                ly->out, (long long)slots);
        return NULL;
    }
    const uint8_t *off = x->data;
    for (int o = 0; o < ly->out; o++)
        for (int g = 0; g < groups; g++)
            for (int j = 0; j < c->n; j++) {
                size_t k = ((size_t)o * groups + g) * c->n + j;
                if (off[k] >= c->m) {
                    rw_fail(RW_ERR_FORMAT, "%s: tensor %s: offset %d in row %d, group %d is not "
                            "below M = %d", path, name, off[k], o, g, c->m);
                    return NULL;
                }
                if (j > 0 && off[k] <= off[k - 1]) {
                    rw_fail(RW_ERR_FORMAT, "%s: tensor %s: offsets in row %d, group %d are not "
                            "strictly increasing", path, name, o, g);
                    return NULL;
                }
            }
    return x;
}

/* β after the trainer's step, as phase_nm_refresh set it: 1 before the
 * first step (rw_model_nm_train_begin), then nm_decay_beta over the run's
 * steps, which follow from the training set's size (the trainer refuses
 * another set on resume). */
static rw_status decay_beta(const rw_trainer *t, const char *path, double decay_end, float *beta)
{
    if (t->step == 0) {
        *beta = 1.0f;
        return RW_OK;
    }
    if (t->data_samples == 0)
        return rw_fail(RW_ERR_FORMAT, "%s: metadata trainer records %lld steps but no training "
                       "set, so the N:M mask decay (metadata nm.config) cannot be placed", path,
                       (long long)t->step);
    int64_t per_epoch = (t->data_samples + t->cfg.batch - 1) / t->cfg.batch;
    *beta = nm_decay_beta(decay_end, t->step, per_epoch * t->cfg.epochs);
    return RW_OK;
}

rw_status nm_checkpoint_load(rw_trainer *t, const st_file *f, const char *path)
{
    const char *text = st_meta(f, "nm.config");
    rw_model *m = t->model;
    if (!text) return check_nothing_else(f, path, m, NULL); /* the run had no N:M training */
    rw_nm_train_config c;
    rw_status st = parse_config(text, path, &c);
    if (st == RW_OK) {
        /* Against the model: chosen layers dense, inputs a multiple of m. */
        st = nm_train_check_config(m, &c);
        if (st == RW_ERR_INVALID_ARGUMENT) {
            char why[512];
            snprintf(why, sizeof why, "%s", rw_last_error());
            st = rw_fail(RW_ERR_FORMAT, "%s: metadata nm.config: %s", path, why);
        }
    }
    if (st == RW_OK) st = check_nothing_else(f, path, m, &c);
    float beta = 0.0f;
    if (st == RW_OK && c.method == RW_NM_DECAY) st = decay_beta(t, path, c.decay_end, &beta);
    const st_tensor **seen = st == RW_OK ? calloc((size_t)m->n_layers, sizeof *seen) : NULL;
    if (st == RW_OK && !seen) st = rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    for (int l = 0; l < m->n_layers && st == RW_OK; l++)
        if (nm_train_chosen_layer(&c, m, l) && !(seen[l] = seen_tensor(f, path, m->layers[l], &c)))
            st = RW_ERR_FORMAT;
    /* Everything checked: only memory can fail from here. */
    if (st == RW_OK) st = rw_model_nm_train_begin(m, &c);
    for (int l = 0; l < m->n_layers && st == RW_OK; l++) {
        linear_nm_train *nt = nm_train_of(m->layers[l]);
        if (!nt) continue;
        memcpy(nt->seen, seen[l]->data, seen[l]->nbytes);
        nt->beta = beta;
        nm_train_refresh_rows(nt, beta, 0, nt->lin.base.out);
    }
    free(seen);
    return st;
}

int64_t nm_checkpoint_memory(const st_file *f, const rw_model *m)
{
    const char *text = st_meta(f, "nm.config");
    rw_nm_train_config c;
    int *sizes = text ? malloc(sizeof(int) * ((size_t)m->n_layers + 1)) : NULL;
    int64_t bytes = 0;
    if (sizes && parse_config(text, "", &c) == RW_OK) {
        for (int l = 0; l < m->n_layers; l++) sizes[l] = m->layers[l]->in;
        sizes[m->n_layers] = m->layers[m->n_layers - 1]->out;
        rw_model_config mc = rw_model_config_default();
        mc.sizes = sizes;
        mc.n_layers = m->n_layers;
        if (rw_estimate_nm_train_memory(&mc, &c, &bytes) != RW_OK) bytes = 0;
    }
    rw_clear_error(); /* the load itself reports a bad config */
    free(sizes);
    return bytes;
}
