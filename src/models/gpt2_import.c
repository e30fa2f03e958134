/* Importing a GPT-2 checkpoint in Hugging Face's layout (models/gpt2_hf.h)
 * into rewire's GPT (models/gpt.c): config.json decides the model, every
 * tensor of model.safetensors is accounted for (a parameter, a buffer
 * transformers ignores, or the tied LM head) and checked against the
 * config before anything is allocated, then the values are widened to
 * floats, checked finite and copied in, Conv1D weights transposed. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/gpt.h"
#include "models/gpt2_hf.h"
#include "nn/model.h"
#include "text/gpt2_config.h"
#include "text/tokenizer.h"

/* What a checkpoint tensor is, besides a parameter slot (>= 0). */
enum { SLOT_LM_HEAD = -1, SLOT_BUFFER = -2, SLOT_UNKNOWN = -3, SLOT_BEYOND = -4 };

#define PREFIX "transformer."

/* "N." at s, N a block number written as Python writes it (no sign, no
 * leading zero); returns the characters taken, 0 if none. */
static int parse_block(const char *s, long *b)
{
    int n = 0;
    long v = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < 9) v = 10 * v + (s[n++] - '0');
    if (n == 0 || s[n] != '.' || (s[0] == '0' && n > 1)) return 0;
    *b = v;
    return n + 1;
}

/* The slot of checkpoint tensor `name` (with or without "transformer."),
 * or one of SLOT_*; *block gets the block number of an h.N tensor. */
static int64_t classify(const char *name, int n_layer, long *block)
{
    *block = -1;
    int prefixed = strncmp(name, PREFIX, strlen(PREFIX)) == 0;
    const char *s = prefixed ? name + strlen(PREFIX) : name;
    if (!prefixed && strcmp(s, "lm_head.weight") == 0) return SLOT_LM_HEAD;
    for (int k = 0; k < GPT2_GLOBALS; k++) {
        int b;
        if (strcmp(s, gpt2_slot(k, &b)->hf) == 0) return k;
    }
    int n;
    if (strncmp(s, "h.", 2) != 0 || (n = parse_block(s + 2, block)) == 0) return SLOT_UNKNOWN;
    const char *field = s + 2 + n;
    int64_t k = -1;
    for (int j = 0; j < GPT2_PER_BLOCK; j++) {
        int b;
        if (strcmp(field, gpt2_slot(GPT2_GLOBALS + j, &b)->hf) == 0) k = j;
    }
    /* The causal mask and its fill value: buffers older transformers saved
     * and newer ones ignore when loading; rewire's attention is causal. */
    int buffer = strcmp(field, "attn.bias") == 0 || strcmp(field, "attn.masked_bias") == 0;
    if (k < 0 && !buffer) return SLOT_UNKNOWN;
    if (*block >= n_layer) return SLOT_BEYOND;
    return buffer ? SLOT_BUFFER : GPT2_GLOBALS + (int64_t)GPT2_PER_BLOCK * *block + k;
}

/* What rewire's GPT cannot be, refused before the weights are read. */
static rw_status check_representable(const char *name, const gpt2_config *c)
{
    if (c->activation != GPT2_GELU_TANH)
        return rw_fail(RW_ERR_FORMAT, "%s: activation_function \"gelu\" (the exact, erf GELU) is "
                       "not supported: rewire's GELU is the tanh approximation, \"gelu_new\"", name);
    if ((int64_t)c->n_inner != 4 * (int64_t)c->n_embd)
        return rw_fail(RW_ERR_FORMAT, "%s: n_inner is %d, but rewire's GPT blocks have an MLP of "
                       "4*n_embd = %lld", name, c->n_inner, 4 * (long long)c->n_embd);
    if ((float)c->layer_norm_epsilon < FLT_MIN)
        return rw_fail(RW_ERR_FORMAT, "%s: layer_norm_epsilon %g is below the smallest normal "
                       "float, which rewire's LayerNorm keeps it as", name, c->layer_norm_epsilon);
    if (!c->scale_attn_weights)
        return rw_fail(RW_ERR_FORMAT, "%s: scale_attn_weights is false, but rewire's attention "
                       "always divides the scores by sqrt(n_embd / n_head)", name);
    if (c->scale_attn_by_inverse_layer_idx)
        return rw_fail(RW_ERR_FORMAT, "%s: scale_attn_by_inverse_layer_idx is true, which "
                       "rewire's attention does not do", name);
    if (c->add_cross_attention)
        return rw_fail(RW_ERR_FORMAT, "%s: add_cross_attention is true: rewire's GPT has no "
                       "cross-attention (an encoder-decoder model)", name);
    return RW_OK;
}

/* "[i, j]" or "[i]" of flat index k of a tensor of `cols` columns. */
static void index_text(char *buf, size_t cap, int ndim, int64_t k, int64_t cols)
{
    if (ndim == 1) snprintf(buf, cap, "[%lld]", (long long)k);
    else snprintf(buf, cap, "[%lld, %lld]", (long long)(k / cols), (long long)(k % cols));
}

static rw_status check_finite(const char *path, const st_tensor *t, const float *v, int64_t cols)
{
    for (int64_t k = 0; k < t->count; k++)
        if (!isfinite(v[k])) {
            char at[64];
            index_text(at, sizeof at, t->ndim, k, cols);
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value (%s) at %s", path,
                           t->name, isnan(v[k]) ? "NaN" : "Inf", at);
        }
    return RW_OK;
}

/* "[d0, d1, ...]" */
static void shape_text(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int k = 0; k < ndim && used < cap; k++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", k ? ", " : "", (long long)shape[k]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
}

/* dtype and shape of a tensor that stands for slot tensor g. */
static rw_status check_tensor(const char *path, const char *config_name, const st_tensor *t,
                              const gpt2_tensor *g, const gpt2_config *c)
{
    if (!st_dtype_is_float(t->dtype))
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has dtype %s, expected F32, F16 or BF16", path,
                       t->name, st_dtype_name(t->dtype));
    int64_t want[2];
    gpt2_tensor_shape(g, c, want);
    if (t->ndim != g->ndim || t->shape[0] != want[0] || (g->ndim > 1 && t->shape[1] != want[1])) {
        char got[256], expected[64], why[64];
        shape_text(got, sizeof got, t->ndim, t->shape);
        shape_text(expected, sizeof expected, g->ndim, want);
        gpt2_tensor_shape_text(g, why, sizeof why);
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has shape %s, expected %s (%s from %s)", path,
                       t->name, got, expected, why, config_name);
    }
    return RW_OK;
}

/* Sorts every tensor of f into slots[]: missing, extra, repeated,
 * mistyped and misshaped tensors are refused here. */
static rw_status assign_slots(const st_file *f, const char *path, const char *config_name,
                              const gpt2_config *c, const st_tensor **slots,
                              const st_tensor **lm_head)
{
    int64_t n = gpt2_slot_count(c->n_layer);
    *lm_head = NULL;
    for (int i = 0; i < f->count; i++) {
        const st_tensor *t = &f->tensors[i];
        long b;
        int64_t k = classify(t->name, c->n_layer, &b);
        if (k == SLOT_UNKNOWN)
            return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s (not part of GPT-2's layout)",
                           path, t->name);
        if (k == SLOT_BEYOND)
            return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s: %s has n_layer %d, blocks h.0 "
                           "to h.%d", path, t->name, config_name, c->n_layer, c->n_layer - 1);
        if (k == SLOT_BUFFER) continue;
        const st_tensor **dst = k == SLOT_LM_HEAD ? lm_head : &slots[k];
        if (*dst)
            return rw_fail(RW_ERR_FORMAT, "%s: tensors %s and %s are the same parameter", path,
                           (*dst)->name, t->name);
        *dst = t;
    }
    for (int64_t k = 0; k < n; k++) {
        int b;
        const gpt2_tensor *g = gpt2_slot(k, &b);
        if (!slots[k]) {
            char hf[96], rw[96];
            gpt2_slot_names(k, hf, sizeof hf, rw, sizeof rw);
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s is missing (%s has n_layer %d)", path, hf,
                           config_name, c->n_layer);
        }
        rw_status st = check_tensor(path, config_name, slots[k], g, c);
        if (st != RW_OK) return st;
    }
    int none;
    if (*lm_head) return check_tensor(path, config_name, *lm_head, gpt2_slot(0, &none), c);
    if (!c->tie_word_embeddings)
        return rw_fail(RW_ERR_FORMAT, "%s: tie_word_embeddings is false but %s has no "
                       "lm_head.weight: rewire's LM head is the token embedding", config_name, path);
    return RW_OK;
}

/* The parameter called `name`, looked for from *hint on (the slots come
 * in the model's order, so this is one step each). */
static const param *find_param(const rw_model *m, const char *name, int *hint)
{
    for (int j = 0; j < m->n_params; j++) {
        int i = (*hint + j) % m->n_params;
        if (strcmp(m->params[i].name, name) == 0) {
            *hint = i + 1;
            return &m->params[i];
        }
    }
    return NULL;
}

/* dst[o][i] = src[i][o]: a Conv1D weight [in][out] to rewire's [out][in],
 * in tiles that stay in cache. */
static void transpose(const float *src, float *dst, int64_t in, int64_t out)
{
    enum { TILE = 32 };
    for (int64_t i0 = 0; i0 < in; i0 += TILE)
        for (int64_t o0 = 0; o0 < out; o0 += TILE)
            for (int64_t i = i0; i < in && i < i0 + TILE; i++)
                for (int64_t o = o0; o < out && o < o0 + TILE; o++)
                    dst[o * in + i] = src[i * out + o];
}

/* Copies every slot into the model's parameters; tmp holds the largest
 * tensor. */
static rw_status fill_params(rw_model *m, const char *path, const gpt2_config *c,
                             const st_tensor **slots, const st_tensor *lm_head, float *tmp)
{
    int hint = 0;
    for (int64_t k = 0; k < gpt2_slot_count(c->n_layer); k++) {
        int b;
        const gpt2_tensor *g = gpt2_slot(k, &b);
        const st_tensor *t = slots[k];
        char hf[96], rw[96];
        gpt2_slot_names(k, hf, sizeof hf, rw, sizeof rw);
        const param *p = find_param(m, rw, &hint);
        RW_ASSERT(p && param_count(p) == t->count && param_count(p) == param_dense_count(p),
                  "the GPT built for %s has no dense parameter %s of %lld values", path, rw,
                  (long long)t->count);
        float *dst = param_values(p);
        int64_t cols = t->ndim > 1 ? t->shape[1] : 1;
        float *v = g->conv1d ? tmp : dst;
        st_tensor_to_f32(t, v);
        rw_status st = check_finite(path, t, v, cols);
        if (st != RW_OK) return st;
        if (g->conv1d) transpose(tmp, dst, t->shape[0], t->shape[1]);
    }
    if (!lm_head) return RW_OK;
    /* The head must be wte itself: rewire's LM head is tied. */
    hint = 0;
    const param *embed = find_param(m, "embed.wte", &hint);
    RW_ASSERT(embed, "the GPT built for %s has no embed.wte", path);
    const float *wte = param_values(embed);
    st_tensor_to_f32(lm_head, tmp);
    for (int64_t k = 0; k < lm_head->count; k++)
        if (!(tmp[k] == wte[k])) {
            char at[64];
            index_text(at, sizeof at, 2, k, lm_head->shape[1]);
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s differs from %s at %s (%g, not %g): "
                           "rewire's LM head is the token embedding (tied)", path, lm_head->name,
                           slots[0]->name, at, (double)tmp[k], (double)wte[k]);
        }
    return RW_OK;
}

/* The model from a parsed config and checkpoint. */
static rw_status import_parsed(const gpt2_config *c, const char *config_name, const st_file *f,
                               const char *path, rw_model **out)
{
    rw_status st = check_representable(config_name, c);
    if (st != RW_OK) return st;
    int64_t n = gpt2_slot_count(c->n_layer);
    const st_tensor **slots = calloc((size_t)n, sizeof *slots), *lm_head = NULL;
    if (!slots) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    st = assign_slots(f, path, config_name, c, slots, &lm_head);
    /* Every tensor is there with its shape, so the model is no larger
     * than the file: only now is it allocated. */
    size_t largest = 0;
    for (int64_t k = 0; k < n && st == RW_OK; k++)
        if ((size_t)slots[k]->count > largest) largest = (size_t)slots[k]->count;
    float *tmp = NULL;
    rw_model *m = NULL;
    if (st == RW_OK && !(tmp = malloc(sizeof(float) * largest)))
        st = rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for a tensor of %zu values", path, largest);
    if (st == RW_OK) {
        rw_gpt_config g = rw_gpt_config_default();
        g.vocab = c->vocab_size;
        g.context = c->n_positions;
        g.n_layer = c->n_layer;
        g.n_head = c->n_head;
        g.n_embd = c->n_embd;
        g.bias = 1;
        g.sparsity = 0;
        g.layer_norm_eps = c->layer_norm_epsilon;
        st = gpt_build(&g, 0, &m);
    }
    if (st == RW_OK) st = fill_params(m, path, c, slots, lm_head, tmp);
    free(tmp);
    free(slots);
    if (st != RW_OK) {
        rw_model_free(m);
        return st;
    }
    *out = m;
    return RW_OK;
}

rw_status gpt2_import_memory(const char *config_name, const void *config, size_t config_len,
                             const char *weights_name, const void *weights, size_t weights_len,
                             rw_model **out)
{
    *out = NULL;
    gpt2_config c;
    rw_status st = gpt2_config_parse(config_name, config, config_len, &c);
    if (st != RW_OK) return st;
    st_file f;
    if ((st = st_read_memory(weights_name, weights, weights_len, &f)) != RW_OK) return st;
    st = import_parsed(&c, config_name, &f, weights_name, out);
    st_file_free(&f);
    return st;
}

/* ---- The folder ---------------------------------------------------------- */

static int exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0;
}

/* "bpe:DIR" when DIR has GPT-2's tokenizer files (checked to load and to
 * fit the vocabulary), else "bytes" for a vocabulary of 256, else none. */
static rw_status attach_tokenizer(rw_model *m, const char *dir, const char *config_name, int vocab)
{
    char *vj = gpt2_path_join(dir, "vocab.json"), *mt = gpt2_path_join(dir, "merges.txt");
    size_t spec_len = strlen(dir) + 5;
    char *spec = malloc(spec_len);
    if (spec) snprintf(spec, spec_len, "bpe:%s", dir);
    rw_status st = vj && mt && spec ? RW_OK : rw_fail(RW_ERR_NO_MEMORY, "out of memory");
    int has_vocab = st == RW_OK && exists(vj), has_merges = st == RW_OK && exists(mt);
    if (st == RW_OK && has_vocab != has_merges)
        st = rw_fail(RW_ERR_FORMAT, "%s is missing beside %s: GPT-2's tokenizer needs both",
                     has_vocab ? mt : vj, has_vocab ? vj : mt);
    if (st == RW_OK && has_vocab) {
        tokenizer *t = NULL;
        st = tokenizer_bpe_load(dir, &t);
        if (st == RW_OK && tokenizer_vocab_size(t) > vocab)
            st = rw_fail(RW_ERR_FORMAT, "%s: %d tokens, but %s has vocab_size %d: the model cannot "
                         "predict them all", vj, tokenizer_vocab_size(t), config_name, vocab);
        tokenizer_free(t);
        if (st == RW_OK) st = rw_model_set_info(m, "tokenizer", spec);
    } else if (st == RW_OK && vocab == 256) {
        st = rw_model_set_info(m, "tokenizer", "bytes");
    }
    free(vj);
    free(mt);
    free(spec);
    return st;
}

rw_status rw_gpt2_import(const char *dir, rw_model **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_gpt2_import: out is NULL");
    *out = NULL;
    if (!dir) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_gpt2_import: dir is NULL");
    char *config_path = gpt2_path_join(dir, "config.json"), *weights_path = gpt2_path_join(dir, "model.safetensors");
    char *index_path = gpt2_path_join(dir, "model.safetensors.index.json"), *bin_path = gpt2_path_join(dir, "pytorch_model.bin");
    rw_status st = config_path && weights_path && index_path && bin_path
                       ? RW_OK
                       : rw_fail(RW_ERR_NO_MEMORY, "out of memory");
    gpt2_config c;
    if (st == RW_OK) st = gpt2_config_read(config_path, &c);
    if (st == RW_OK) st = check_representable(config_path, &c);
    /* Say what would have worked when the weights are in another form. */
    if (st == RW_OK && !exists(weights_path) && (exists(index_path) || exists(bin_path)))
        st = rw_fail(RW_ERR_IO, "%s does not exist: %s", weights_path,
                     exists(index_path) ? "checkpoints sharded over several files are not "
                                          "supported, only one model.safetensors"
                                        : "only safetensors checkpoints are read, not "
                                          "pytorch_model.bin");
    st_file f = {0};
    if (st == RW_OK) st = st_read(weights_path, &f);
    rw_model *m = NULL;
    if (st == RW_OK) st = import_parsed(&c, config_path, &f, weights_path, &m);
    st_file_free(&f);
    if (st == RW_OK) st = attach_tokenizer(m, dir, config_path, c.vocab_size);
    free(config_path);
    free(weights_path);
    free(index_path);
    free(bin_path);
    if (st != RW_OK) {
        rw_model_free(m);
        return st;
    }
    rw_clear_error();
    *out = m;
    return RW_OK;
}
