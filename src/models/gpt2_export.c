/* Exporting rewire's GPT as a GPT-2 checkpoint in Hugging Face's layout
 * (models/gpt2_hf.h): config.json and model.safetensors (F32), which
 * transformers' GPT2LMHeadModel.from_pretrained and rw_gpt2_import read.
 * Sparse and N:M maps are written dense (zeros where nothing is stored);
 * a model without biases gets zero biases, which computes the same.
 *
 * Both files are written whole under temporary names first, then renamed
 * over the old ones: a failure leaves the folder as it was, and a crash
 * can only fall between the two renames (the new weights beside the old
 * config, which the import refuses when their shapes disagree). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/file_atomic.h"
#include "io/safetensors.h"
#include "models/gpt.h"
#include "models/gpt2_hf.h"
#include "nn/model.h"

/* The shortest decimal that reads back as x (1e-05 rather than
 * 9.99999975e-06 for the float 1e-5f). */
static double shortest(float x)
{
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)x);
        if (strtof(buf, NULL) == x) return strtod(buf, NULL);
    }
    return x;
}

/* config.json as transformers writes GPT-2's (a new malloc'ed string). */
static char *config_json(const rw_gpt_config *c)
{
    json_t *o = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:n, s:s, s:f, s:b, s:b, "
                          "s:b, s:b, s:s}",
                          "architectures", "GPT2LMHeadModel", "model_type", "gpt2", "vocab_size",
                          c->vocab, "n_positions", c->context, "n_ctx", c->context, "n_embd",
                          c->n_embd, "n_layer", c->n_layer, "n_head", c->n_head, "n_inner",
                          "activation_function", "gelu_new", "layer_norm_epsilon",
                          shortest((float)c->layer_norm_eps), "scale_attn_weights", 1,
                          "scale_attn_by_inverse_layer_idx", 0, "reorder_and_upcast_attn", 0,
                          "tie_word_embeddings", 1, "torch_dtype", "float32");
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(o);
    return s;
}

static rw_status check_finite(const char *dir, const char *name, const float *v, int64_t rows,
                              int64_t cols)
{
    for (int64_t k = 0; k < rows * cols; k++)
        if (!isfinite(v[k]))
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: parameter %s has a non-finite value at "
                           "[%lld, %lld]: GPT-2 checkpoints hold finite weights", dir, name,
                           (long long)(k / cols), (long long)(k % cols));
    return RW_OK;
}

static const param *find_param(const rw_model *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}

/* Every slot's values in checkpoint layout, in one array (*arena, slots
 * back to back), added to w under their checkpoint names. */
static rw_status add_tensors(const rw_model *m, const rw_gpt_config *c, const char *dir,
                             st_writer *w, float **arena)
{
    gpt2_config g = {.vocab_size = c->vocab, .n_positions = c->context, .n_embd = c->n_embd,
                     .n_inner = 4 * c->n_embd, .n_layer = c->n_layer};
    int64_t n = gpt2_slot_count(c->n_layer), total = 0, largest = 0;
    for (int64_t k = 0; k < n; k++) {
        int b;
        int64_t shape[2];
        gpt2_tensor_shape(gpt2_slot(k, &b), &g, shape);
        total += shape[0] * shape[1];
        if (shape[0] * shape[1] > largest) largest = shape[0] * shape[1];
    }
    *arena = calloc((size_t)total, sizeof(float));
    float *tmp = malloc(sizeof(float) * (size_t)largest);
    rw_status st = *arena && tmp ? RW_OK
                                 : rw_fail(RW_ERR_NO_MEMORY, "out of memory for %lld weights",
                                           (long long)total);
    float *at = *arena;
    for (int64_t k = 0; k < n && st == RW_OK; k++) {
        int b;
        const gpt2_tensor *t = gpt2_slot(k, &b);
        int64_t shape[2];
        gpt2_tensor_shape(t, &g, shape);
        char hf[96], rw[96];
        gpt2_slot_names(k, hf, sizeof hf, rw, sizeof rw);
        const param *p = find_param(m, rw);
        /* A bias-free model's biases stay zero; every other slot is there
         * (gpt_config_of checked the layers). */
        RW_ASSERT(p || (t->is_bias && !c->bias), "a GPT has no parameter %s", rw);
        if (p) {
            RW_ASSERT(param_dense_count(p) == shape[0] * shape[1], "%s has %lld values, not %lld",
                      rw, (long long)param_dense_count(p), (long long)(shape[0] * shape[1]));
            param_to_dense(p, t->conv1d ? tmp : at);
            st = check_finite(dir, rw, t->conv1d ? tmp : at, p->rows, p->cols);
            /* rewire's [out][in] to Conv1D's [in][out] */
            for (int64_t o = 0; t->conv1d && o < p->rows; o++)
                for (int64_t i = 0; i < p->cols; i++) at[i * p->rows + o] = tmp[o * p->cols + i];
        }
        if (st == RW_OK) st = st_writer_add(w, hf, ST_F32, t->ndim, shape, at);
        at += shape[0] * shape[1];
    }
    free(tmp);
    return st;
}

/* Writes both files under ".new" names, then renames them into place. */
static rw_status write_folder(const char *dir, const st_writer *w, const char *config)
{
    char *weights = gpt2_path_join(dir, "model.safetensors"), *weights_new = gpt2_path_join(dir, "model.safetensors.new");
    char *conf = gpt2_path_join(dir, "config.json"), *conf_new = gpt2_path_join(dir, "config.json.new");
    rw_status st = weights && weights_new && conf && conf_new
                       ? RW_OK
                       : rw_fail(RW_ERR_NO_MEMORY, "out of memory");
    if (st == RW_OK && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        char msg[128];
        if (strerror_r(errno, msg, sizeof msg) != 0) snprintf(msg, sizeof msg, "error %d", errno);
        st = rw_fail(RW_ERR_IO, "%s: cannot create the folder: %s", dir, msg);
    }
    int staged = 0;
    if (st == RW_OK && (st = st_writer_write(w, weights_new)) == RW_OK) staged = 1;
    if (st == RW_OK && (st = file_write_atomic(conf_new, config, strlen(config))) == RW_OK) staged = 2;
    if (st == RW_OK) st = file_rename_durable(weights_new, weights);
    if (st == RW_OK) st = file_rename_durable(conf_new, conf);
    if (st != RW_OK && staged) { /* keep the message of the failure */
        unlink(weights_new);
        if (staged == 2) unlink(conf_new);
    }
    free(weights);
    free(weights_new);
    free(conf);
    free(conf_new);
    return st;
}

rw_status rw_gpt2_export(const rw_model *model, const char *dir)
{
    if (!model || !dir) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_gpt2_export: NULL argument");
    rw_gpt_config c;
    rw_status st = gpt_config_of(model, &c);
    if (st != RW_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", rw_last_error());
        return rw_fail(st, "%s: cannot export to GPT-2's layout: %s", dir, why);
    }
    char pattern[64];
    if (rw_model_attention(model, pattern, sizeof pattern) && strcmp(pattern, "dense") != 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: cannot export a model with %s attention: "
                       "GPT-2 attends densely (set --attention dense, or rw_model_set_attention, "
                       "first)", dir, pattern);
    if (model_has_after_step(model))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: cannot export a model in the middle of N:M "
                       "training (its weights are the dense masters): end it first with "
                       "rw_model_nm_train_end", dir);
    st_writer *w = st_writer_new();
    float *arena = NULL;
    char *config = config_json(&c);
    if (!w || !config) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory");
    /* transformers refuses safetensors files without this. */
    if (st == RW_OK) st = st_writer_meta(w, "format", "pt");
    if (st == RW_OK) st = add_tensors(model, &c, dir, w, &arena);
    if (st == RW_OK) st = write_folder(dir, w, config);
    st_writer_free(w);
    free(arena);
    free(config);
    if (st == RW_OK) rw_clear_error();
    return st;
}
