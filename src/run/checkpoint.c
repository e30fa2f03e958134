/* Checkpoints: the model file plus the trainer state (layout in
 * nn/checkpoint.h). Saving refuses non-finite state, so a diverged run
 * never replaces a good checkpoint; loading checks every value against
 * the model and the config before the trainer is handed out. */
#include "run/checkpoint.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "nn/model_file.h"
#include "nn/nm_train_checkpoint.h"
#include "sparsity/dst_checkpoint.h"

#define CHECKPOINT_VERSION "1"
#define NAME_CAP (PARAM_NAME_CAP + 16)

/* Other modules' state: add a line here (see checkpoint_section). */
static const checkpoint_section checkpoint_sections[] = {
    {"dst", dst_checkpoint_save, dst_checkpoint_load}, /* sparsity/dst_checkpoint.c */
    {"nm", nm_checkpoint_save, nm_checkpoint_load},    /* nn/nm_train_checkpoint.c */
    {NULL, NULL, NULL}, /* end */
};

/* "opt.fc1.values.m1" and the like. */
static void state_name(char *buf, const param *p, int moment)
{
    snprintf(buf, NAME_CAP, "opt.%s.m%d", p->tensor, moment);
}

/* The first non-finite entry of n floats, or -1. */
static int64_t first_nonfinite(const float *x, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(x[k])) return k;
    return -1;
}

/* Refuses to save a state that holds a NaN or Inf (a diverged run). Each
 * layer's values first, then its first moments, then its second. */
static rw_status check_finite(const rw_trainer *t, const char *path)
{
    const rw_model *m = t->model;
    int adam = t->cfg.optimizer == RW_OPT_ADAMW;
    for (int l = 0; l < m->n_layers; l++) {
        int p0 = m->first_param[l], p1 = m->first_param[l + 1];
        for (int part = 0; part < 3; part++)
            for (int q = p0; q < p1; q++) {
                const param *p = &m->params[q];
                const float *x = part == 0 ? param_values(p) : part == 1 ? t->m1[q]
                                                            : adam      ? t->m2[q]
                                                                        : NULL;
                if (!x) continue;
                int64_t k = first_nonfinite(x, param_count(p));
                const char *what = part ? "optimizer state" : p->is_weight ? "weights" : "biases";
                if (k >= 0)
                    return rw_fail(RW_ERR_DIVERGED,
                                   "%s: not saved: after step %lld the %s of layer %s hold a "
                                   "non-finite value (%g at %lld); the previous checkpoint is kept",
                                   path, (long long)t->step, what, p->layer_name, (double)x[k],
                                   (long long)k);
            }
    }
    return RW_OK;
}

static json_t *config_json(const rw_train_config *c)
{
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, c->seed);
    return json_pack("{s:i, s:f, s:f, s:i, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:f, s:f, s:i, "
                     "s:i, s:s}",
                     "optimizer", (int)c->optimizer, "lr", (double)c->lr, "momentum",
                     (double)c->momentum, "nesterov", c->nesterov, "beta1", (double)c->beta1,
                     "beta2", (double)c->beta2, "eps", (double)c->eps, "weight_decay",
                     (double)c->weight_decay, "schedule", (int)c->schedule, "warmup_epochs",
                     c->warmup_epochs, "step_every", c->step_every, "step_gamma",
                     (double)c->step_gamma, "clip_norm", (double)c->clip_norm, "batch", c->batch,
                     "epochs", c->epochs, "seed", seed);
}

static char *trainer_json(const rw_trainer *t)
{
    char fp[32];
    snprintf(fp, sizeof fp, "%016" PRIx64, t->data_fingerprint);
    json_t *o = json_pack("{s:o, s:i, s:I, s:I, s:I, s:f, s:f, s:I, s:s, s:i}", "config",
                          config_json(&t->cfg), "epoch", t->epoch, "step", (json_int_t)t->step,
                          "epoch_step", (json_int_t)t->epoch_step, "epoch_samples",
                          (json_int_t)t->epoch_samples, "epoch_loss_sum", t->epoch_loss_sum,
                          "epoch_seconds", t->epoch_seconds, "data_samples",
                          (json_int_t)t->data_samples, "data_fingerprint", fp,
                          "data_fingerprint_version", t->data_fingerprint_version);
    /* 17 significant digits: every double (and so every float) reads back
     * exactly. */
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(o);
    return s;
}

rw_status rw_trainer_save_checkpoint(const rw_trainer *t, const char *path, const char *note)
{
    if (!t || !path)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_trainer_save_checkpoint: NULL trainer or path");
    rw_status st = check_finite(t, path);
    if (st != RW_OK) return st;
    st_writer *w = st_writer_new();
    char *state = trainer_json(t);
    if (!w || !state) st = rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory saving", path);
    if (st == RW_OK) st = model_add_to_writer(t->model, path, w);
    if (st == RW_OK) st = st_writer_meta(w, "checkpoint", CHECKPOINT_VERSION);
    if (st == RW_OK) st = st_writer_meta(w, "trainer", state);
    if (st == RW_OK && note) st = st_writer_meta(w, "note", note);
    int moments = t->cfg.optimizer == RW_OPT_ADAMW ? 2 : 1;
    const rw_model *m = t->model;
    for (int l = 0; l < m->n_layers && st == RW_OK; l++) {
        char name[NAME_CAP];
        for (int mo = 1; mo <= moments && st == RW_OK; mo++)
            for (int q = m->first_param[l]; q < m->first_param[l + 1] && st == RW_OK; q++) {
                int64_t n = param_count(&m->params[q]);
                state_name(name, &m->params[q], mo);
                st = st_writer_add(w, name, ST_F32, 1, &n, mo == 1 ? t->m1[q] : t->m2[q]);
            }
    }
    for (const checkpoint_section *s = checkpoint_sections; s->prefix && st == RW_OK; s++)
        st = s->save(t, w, path);
    if (st == RW_OK) st = st_writer_write(w, path);
    st_writer_free(w);
    free(state);
    return st;
}

/* ---- Loading ------------------------------------------------------------ */

static rw_status parse_config(const json_t *o, const char *path, rw_train_config *c)
{
    int optimizer = 0, schedule = 0;
    double lr, momentum, beta1, beta2, eps, wd, gamma, clip;
    const char *seed;
    *c = rw_train_config_default();
    if (json_unpack((json_t *)o,
                    "{s:i, s:F, s:F, s:i, s:F, s:F, s:F, s:F, s:i, s:i, s:i, s:F, s:F, s:i, s:i, "
                    "s:s !}",
                    "optimizer", &optimizer, "lr", &lr, "momentum", &momentum, "nesterov",
                    &c->nesterov, "beta1", &beta1, "beta2", &beta2, "eps", &eps, "weight_decay",
                    &wd, "schedule", &schedule, "warmup_epochs", &c->warmup_epochs, "step_every",
                    &c->step_every, "step_gamma", &gamma, "clip_norm", &clip, "batch", &c->batch,
                    "epochs", &c->epochs, "seed", &seed) != 0)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: metadata trainer.config needs exactly optimizer, lr, momentum, "
                       "nesterov, beta1, beta2, eps, weight_decay, schedule, warmup_epochs, "
                       "step_every, step_gamma, clip_norm, batch, epochs, seed", path);
    if (optimizer != RW_OPT_SGD && optimizer != RW_OPT_ADAMW)
        return rw_fail(RW_ERR_FORMAT, "%s: trainer.config optimizer %d is unknown", path, optimizer);
    if (schedule < RW_SCHED_CONSTANT || schedule > RW_SCHED_COSINE)
        return rw_fail(RW_ERR_FORMAT, "%s: trainer.config schedule %d is unknown", path, schedule);
    double v[] = {lr, momentum, beta1, beta2, eps, wd, gamma, clip};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!isfinite(v[i]) || fabs(v[i]) > 3.0e38)
            return rw_fail(RW_ERR_FORMAT, "%s: trainer.config holds %g, not a finite float", path,
                           v[i]);
    char *end;
    unsigned long long sd = strtoull(seed, &end, 10);
    if (*seed < '0' || *seed > '9' || *end != '\0')
        return rw_fail(RW_ERR_FORMAT, "%s: trainer.config seed \"%s\" is not a decimal integer",
                       path, seed);
    c->optimizer = (rw_optimizer)optimizer;
    c->schedule = (rw_schedule)schedule;
    c->lr = (float)lr;
    c->momentum = (float)momentum;
    c->beta1 = (float)beta1;
    c->beta2 = (float)beta2;
    c->eps = (float)eps;
    c->weight_decay = (float)wd;
    c->step_gamma = (float)gamma;
    c->clip_norm = (float)clip;
    c->seed = (uint64_t)sd;
    return RW_OK;
}

typedef struct {
    int epoch;
    json_int_t step, epoch_step, epoch_samples, data_samples;
    double loss_sum, seconds;
    uint64_t fingerprint;
    int fingerprint_version; /* 1 when the file names none (written before version 2) */
} position;

/* Parses "trainer" into *c and *p; the position is checked against the
 * config once the trainer exists. */
static rw_status parse_trainer(const st_file *f, const char *path, rw_train_config *c, position *p)
{
    const char *text = st_meta(f, "trainer");
    if (!text) return rw_fail(RW_ERR_FORMAT, "%s: metadata trainer is missing", path);
    if (strlen(text) > 65536) /* about 600 bytes when written */
        return rw_fail(RW_ERR_FORMAT, "%s: metadata trainer is %zu bytes, more than 65536", path,
                       strlen(text));
    json_error_t jerr;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    json_t *cfg = NULL;
    const char *fp = NULL;
    rw_status st = RW_OK;
    p->fingerprint_version = 1;
    if (!o || json_unpack(o, "{s:o, s:i, s:I, s:I, s:I, s:F, s:F, s:I, s:s, s?i !}", "config", &cfg,
                          "epoch", &p->epoch, "step", &p->step, "epoch_step", &p->epoch_step,
                          "epoch_samples", &p->epoch_samples, "epoch_loss_sum", &p->loss_sum,
                          "epoch_seconds", &p->seconds, "data_samples", &p->data_samples,
                          "data_fingerprint", &fp, "data_fingerprint_version",
                          &p->fingerprint_version) != 0)
        st = rw_fail(RW_ERR_FORMAT,
                     "%s: metadata trainer is not a JSON object of exactly config, epoch, step, "
                     "epoch_step, epoch_samples, epoch_loss_sum, epoch_seconds, data_samples, "
                     "data_fingerprint and optionally data_fingerprint_version", path);
    if (st == RW_OK && (p->fingerprint_version < 1 ||
                        p->fingerprint_version > DATASET_FINGERPRINT_VERSION))
        st = rw_fail(RW_ERR_FORMAT, "%s: trainer data_fingerprint_version %d is not 1 to %d", path,
                     p->fingerprint_version, DATASET_FINGERPRINT_VERSION);
    if (st == RW_OK) st = parse_config(cfg, path, c);
    if (st == RW_OK) {
        char *end;
        p->fingerprint = strtoull(fp, &end, 16);
        if (strlen(fp) != 16 || *end != '\0')
            st = rw_fail(RW_ERR_FORMAT, "%s: trainer data_fingerprint \"%s\" is not 16 hex digits",
                         path, fp);
    }
    json_decref(o);
    return st;
}

static rw_status check_position(const position *p, const rw_train_config *c, const char *path)
{
    if (p->epoch < 0 || p->epoch > c->epochs || p->step < 0 || p->epoch_step < 0 ||
        p->epoch_samples < 0 || p->data_samples < 0 || p->data_samples > INT32_MAX ||
        p->step < p->epoch_step || !(p->loss_sum >= 0) || !isfinite(p->loss_sum) ||
        !(p->seconds >= 0) || !isfinite(p->seconds))
        return rw_fail(RW_ERR_FORMAT,
                       "%s: trainer position is out of range (epoch %d of %d, step %lld, "
                       "epoch_step %lld, epoch_samples %lld, data_samples %lld)",
                       path, p->epoch, c->epochs, (long long)p->step, (long long)p->epoch_step,
                       (long long)p->epoch_samples, (long long)p->data_samples);
    if (p->data_samples == 0) {
        if (p->epoch_step || p->epoch_samples || p->fingerprint)
            return rw_fail(RW_ERR_FORMAT, "%s: trainer has made steps but records no training set",
                           path);
        return RW_OK;
    }
    int64_t per_epoch = (p->data_samples + c->batch - 1) / c->batch;
    if (p->epoch_step >= per_epoch || p->epoch_samples > p->epoch_step * (int64_t)c->batch ||
        p->fingerprint == 0 || (p->epoch == c->epochs && p->epoch_step > 0))
        return rw_fail(RW_ERR_FORMAT,
                       "%s: trainer position (epoch_step %lld, epoch_samples %lld) does not fit "
                       "an epoch of %lld samples in batches of %d",
                       path, (long long)p->epoch_step, (long long)p->epoch_samples,
                       (long long)p->data_samples, c->batch);
    return RW_OK;
}

/* Copies one optimizer state tensor: F32, [n], finite. */
static rw_status load_state(const st_file *f, const char *path, const char *name, float *dst,
                            int64_t n)
{
    const st_tensor *t = st_find(f, name);
    if (!t) return rw_fail(RW_ERR_FORMAT, "%s: tensor %s is missing", path, name);
    if (t->dtype != ST_F32 || t->ndim != 1 || t->shape[0] != n)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s should be F32 of shape [%lld]", path, name,
                       (long long)n);
    memcpy(dst, t->data, t->nbytes);
    int64_t k = first_nonfinite(dst, n);
    if (k >= 0)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value at %lld", path, name,
                       (long long)k);
    return RW_OK;
}

/* Every tensor is the model's, the optimizer's (opt.*, counted) or a
 * section's. */
static rw_status check_claimed(const st_file *f, const char *path, const rw_model *m,
                               int opt_expected)
{
    int opt = 0;
    for (int i = 0; i < f->count; i++) {
        const char *name = f->tensors[i].name;
        if (model_owns_tensor(m, name)) continue; /* checked by the model */
        if (strncmp(name, "opt.", 4) == 0) {
            opt++;
            continue;
        }
        int claimed = 0;
        for (const checkpoint_section *s = checkpoint_sections; s->prefix && !claimed; s++) {
            size_t n = strlen(s->prefix);
            claimed = strncmp(name, s->prefix, n) == 0 && name[n] == '.';
        }
        if (!claimed) return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s", path, name);
    }
    if (opt != opt_expected)
        return rw_fail(RW_ERR_FORMAT, "%s: %d optimizer tensors (opt.*), expected %d for this "
                       "model and optimizer", path, opt, opt_expected);
    return RW_OK;
}

static rw_status load_trainer_state(const st_file *f, const char *path, rw_trainer *t,
                                    const position *p)
{
    int moments = t->cfg.optimizer == RW_OPT_ADAMW ? 2 : 1;
    rw_status st = RW_OK;
    const rw_model *m = t->model;
    for (int l = 0; l < m->n_layers && st == RW_OK; l++) {
        char name[NAME_CAP];
        for (int mo = 1; mo <= moments && st == RW_OK; mo++)
            for (int q = m->first_param[l]; q < m->first_param[l + 1] && st == RW_OK; q++) {
                state_name(name, &m->params[q], mo);
                st = load_state(f, path, name, mo == 1 ? t->m1[q] : t->m2[q],
                                param_count(&m->params[q]));
            }
    }
    if (st == RW_OK) st = check_claimed(f, path, m, moments * m->n_params);
    if (st != RW_OK) return st;
    t->epoch = p->epoch;
    t->step = p->step;
    t->epoch_step = p->epoch_step;
    t->epoch_samples = p->epoch_samples;
    t->epoch_loss_sum = p->loss_sum;
    t->epoch_seconds = p->seconds;
    t->data_samples = p->data_samples;
    t->data_fingerprint = p->fingerprint;
    t->data_fingerprint_version = p->fingerprint_version;
    for (const checkpoint_section *s = checkpoint_sections; s->prefix && st == RW_OK; s++)
        st = s->load(t, f, path);
    return st;
}

/* Builds the model and trainer from a parsed checkpoint. */
static rw_status load_parsed(const st_file *f, const char *path, int64_t max_memory,
                             rw_model **model, rw_trainer **trainer, char **note)
{
    const char *version = st_meta(f, "checkpoint");
    rw_model *m = NULL;
    rw_trainer *t = NULL;
    rw_train_config c;
    position p;
    rw_status st = RW_OK;
    if (!version)
        st = rw_fail(RW_ERR_FORMAT, "%s: not a checkpoint (no \"checkpoint\" metadata): a model "
                     "file cannot be resumed", path);
    else if (strcmp(version, CHECKPOINT_VERSION) != 0)
        st = rw_fail(RW_ERR_FORMAT, "%s: checkpoint version \"%s\", expected \"%s\"", path,
                     version, CHECKPOINT_VERSION);
    if (st == RW_OK) st = parse_trainer(f, path, &c, &p);
    if (st == RW_OK) st = model_skeleton(f, path, &m);
    if (st == RW_OK && max_memory > 0) {
        rw_memory_estimate est;
        st = model_file_memory(m, f, &c, &est);
        int64_t dst = st == RW_OK ? dst_checkpoint_memory(f, m, &c) : 0;
        int64_t nm = st == RW_OK ? nm_checkpoint_memory(f, m) : 0;
        int64_t need = est.total > INT64_MAX - dst - nm ? INT64_MAX : est.total + dst + nm;
        if (st == RW_OK && need > max_memory)
            st = rw_fail(RW_ERR_NO_MEMORY,
                         "%s: the model and trainer need %lld bytes of memory, more than the "
                         "limit of %lld", path, (long long)need, (long long)max_memory);
    }
    if (st == RW_OK) st = model_fill(f, path, m);
    if (st == RW_OK) {
        st = rw_trainer_create(m, &c, &t);
        if (st == RW_ERR_INVALID_ARGUMENT) {
            char why[512];
            snprintf(why, sizeof why, "%s", rw_last_error());
            st = rw_fail(RW_ERR_FORMAT, "%s: trainer config: %s", path, why);
        }
    }
    if (st == RW_OK) st = check_position(&p, &c, path);
    if (st == RW_OK) st = load_trainer_state(f, path, t, &p);
    if (st == RW_OK && note && st_meta(f, "note")) {
        *note = strdup(st_meta(f, "note"));
        if (!*note) st = rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for the note", path);
    }
    if (st != RW_OK) {
        rw_trainer_free(t);
        rw_model_free(m);
        return st;
    }
    t->data_must_match = t->data_fingerprint != 0;
    *model = m;
    *trainer = t;
    return RW_OK;
}

rw_status rw_trainer_load_checkpoint(const char *path, int64_t max_memory, rw_model **model,
                                     rw_trainer **trainer, char **note)
{
    if (!model || !trainer)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_trainer_load_checkpoint: NULL output");
    *model = NULL;
    *trainer = NULL;
    if (note) *note = NULL;
    if (!path) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_trainer_load_checkpoint: NULL path");
    st_file f;
    rw_status st = st_read(path, &f);
    if (st != RW_OK) return st;
    st = load_parsed(&f, path, max_memory, model, trainer, note);
    st_file_free(&f);
    if (st == RW_OK) rw_clear_error();
    return st;
}

rw_status checkpoint_load_memory(const char *name, const void *bytes, size_t size,
                                 int64_t max_memory, rw_model **model, rw_trainer **trainer)
{
    *model = NULL;
    *trainer = NULL;
    st_file f;
    rw_status st = st_read_memory(name, bytes, size, &f);
    if (st != RW_OK) return st;
    st = load_parsed(&f, name, max_memory, model, trainer, NULL);
    st_file_free(&f);
    return st;
}

int rw_is_checkpoint(const char *path)
{
    st_file f;
    if (!path || st_read(path, &f) != RW_OK) return 0;
    int yes = st_meta(&f, "checkpoint") != NULL;
    st_file_free(&f);
    rw_clear_error();
    return yes;
}
