/* GPT-2 checkpoints in Hugging Face's layout (rw_gpt2_import,
 * rw_gpt2_export; src/models/gpt2_*.c).
 *
 * The reference is tools/make_gpt2_checkpoint.py: a random GPT-2 (2
 * blocks, n_embd 64, 4 heads, 64 positions, 50257 tokens) whose weights
 * come from a counter-based generator that this file implements too, so
 * the 13 MB checkpoint is rebuilt here (its tensors' hashes checked
 * against tests/data/gpt2/reference.json) rather than committed; and
 * logits from the script's PyTorch reimplementation of GPT-2's forward
 * pass (tests/data/gpt2/logits.safetensors), for token ids that the
 * Python BPE (tools/gpt2_bpe_reference.py) gave on the shared test
 * vocabulary (testbpe.h). Then: export and re-import, F16 and BF16
 * checkpoints, the "transformer." prefix and the buffers transformers
 * ignores, sparse, N:M and bias-free models exported densified, and
 * hostile folders, each refused with a message naming the file and the
 * tensor or field. Runs from the tests folder. */
#include "testbpe.h"
#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "models/gpt.h"
#include "nn/attention.h"
#include "nn/layer_norm.h"
#include "nn/model.h"
#include "nn/network.h"
#include "text/tokenizer.h"

#define REFERENCE_JSON "data/gpt2/reference.json"
#define LOGITS_ST "data/gpt2/logits.safetensors"

/* ---- the generator (tools/make_gpt2_checkpoint.py) ------------------------ */

static uint64_t fnv1a64(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001B3ull;
    return h;
}

/* "Fast Splittable Pseudorandom Number Generators", Steele, Lea and Flood
 * 2014: the splitmix64 finaliser. */
static uint64_t splitmix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void generate(const char *name, int64_t n, int log2_amp, float offset, float *out)
{
    uint64_t h = fnv1a64(name, strlen(name));
    float scale = ldexpf(1.0f, log2_amp - 23); /* k · scale is exact */
    for (int64_t i = 0; i < n; i++) {
        uint64_t z = splitmix64(h + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull);
        float v = (float)((int64_t)(z >> 40) - (1 << 23)) * scale;
        out[i] = v + offset;
    }
}

/* ---- checkpoints as lists of tensors ---------------------------------------- */

typedef struct {
    int V, P, C, H, L;
    double eps;
} gcfg;

typedef struct {
    char name[96];
    st_dtype dtype;
    int ndim;
    int64_t shape[4];
    void *data; /* owned */
    size_t nbytes;
} ck_tensor;

typedef struct {
    ck_tensor t[128];
    int n;
} ckpt;

/* The script's table: amplitude 2^e and offset per tensor kind. */
static const struct {
    const char *field;
    int e;
    float offset;
} FIELDS[] = {
    {"wte.weight", -3, 0}, {"wpe.weight", -3, 0}, {"ln_f.weight", -2, 1}, {"ln_f.bias", -3, 0},
    {"ln_1.weight", -2, 1}, {"ln_1.bias", -3, 0}, {"attn.c_attn.weight", -2, 0},
    {"attn.c_attn.bias", -3, 0}, {"attn.c_proj.weight", -3, 0}, {"attn.c_proj.bias", -4, 0},
    {"ln_2.weight", -2, 1}, {"ln_2.bias", -3, 0}, {"mlp.c_fc.weight", -2, 0},
    {"mlp.c_fc.bias", -3, 0}, {"mlp.c_proj.weight", -4, 0}, {"mlp.c_proj.bias", -4, 0},
};

static void field_shape(const gcfg *c, const char *f, int *ndim, int64_t shape[2])
{
    int64_t C = c->C;
    *ndim = 1;
    shape[1] = 1;
    if (!strcmp(f, "wte.weight")) *ndim = 2, shape[0] = c->V, shape[1] = C;
    else if (!strcmp(f, "wpe.weight")) *ndim = 2, shape[0] = c->P, shape[1] = C;
    else if (!strcmp(f, "attn.c_attn.weight")) *ndim = 2, shape[0] = C, shape[1] = 3 * C;
    else if (!strcmp(f, "attn.c_attn.bias")) shape[0] = 3 * C;
    else if (!strcmp(f, "attn.c_proj.weight")) *ndim = 2, shape[0] = C, shape[1] = C;
    else if (!strcmp(f, "mlp.c_fc.weight")) *ndim = 2, shape[0] = C, shape[1] = 4 * C;
    else if (!strcmp(f, "mlp.c_fc.bias")) shape[0] = 4 * C;
    else if (!strcmp(f, "mlp.c_proj.weight")) *ndim = 2, shape[0] = 4 * C, shape[1] = C;
    else shape[0] = C;
}

static ck_tensor *ck_add(ckpt *k, const char *name, st_dtype dtype, int ndim, const int64_t *shape)
{
    assert_true(k->n < 128);
    ck_tensor *t = &k->t[k->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->ndim = ndim;
    int64_t count = 1;
    for (int d = 0; d < ndim; d++) count *= (t->shape[d] = shape[d]);
    t->nbytes = (size_t)count * st_dtype_size(dtype);
    t->data = calloc(1, t->nbytes ? t->nbytes : 1);
    assert_non_null(t->data);
    return t;
}

static ck_tensor *ck_find(ckpt *k, const char *name)
{
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->t[i].name, name)) return &k->t[i];
    fail_msg("no tensor %s", name);
    return NULL;
}

static void ck_drop(ckpt *k, const char *name)
{
    ck_tensor *t = ck_find(k, name);
    free(t->data);
    *t = k->t[--k->n];
}

static void ck_free(ckpt *k)
{
    for (int i = 0; i < k->n; i++) free(k->t[i].data);
    k->n = 0;
}

/* Every tensor of config c from the generator, F32, in the script's order. */
static void ck_build(ckpt *k, const gcfg *c)
{
    k->n = 0;
    for (int b = -1; b < c->L; b++)
        for (size_t f = b < 0 ? 0 : 4; f < (b < 0 ? 4 : sizeof FIELDS / sizeof *FIELDS); f++) {
            char name[96];
            if (b < 0) snprintf(name, sizeof name, "%s", FIELDS[f].field);
            else snprintf(name, sizeof name, "h.%d.%s", b, FIELDS[f].field);
            int ndim;
            int64_t shape[2];
            field_shape(c, FIELDS[f].field, &ndim, shape);
            ck_tensor *t = ck_add(k, name, ST_F32, ndim, shape);
            generate(name, (int64_t)(t->nbytes / 4), FIELDS[f].e, FIELDS[f].offset, t->data);
        }
}

static void ck_write(const ckpt *k, const char *path)
{
    st_writer *w = st_writer_new();
    assert_non_null(w);
    for (int i = 0; i < k->n; i++)
        assert_int_equal(st_writer_add(w, k->t[i].name, k->t[i].dtype, k->t[i].ndim, k->t[i].shape,
                                       k->t[i].data), RW_OK);
    assert_int_equal(st_writer_write(w, path), RW_OK);
    st_writer_free(w);
}

/* ---- folders ------------------------------------------------------------------ */

static char *join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static char *new_dir(const char *name)
{
    const char *p = tu_temp_path(name);
    char *d = malloc(strlen(p) + 1);
    assert_non_null(d);
    strcpy(d, p);
    mkdir(d, 0700);
    return d;
}

/* Removes a folder of files (the tests make no deeper ones). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = join(dir, e->d_name);
        remove(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char *p = join(dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    free(p);
}

static int file_exists(const char *dir, const char *name)
{
    char *p = join(dir, name);
    struct stat s;
    int r = stat(p, &s) == 0;
    free(p);
    return r;
}

/* config.json for c, with `extra` (",\"key\": value, ...") appended. */
static void write_config(const char *dir, const gcfg *c, const char *extra)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"vocab_size\": %d, \"n_positions\": %d, \"n_embd\": %d, "
             "\"n_layer\": %d, \"n_head\": %d, \"layer_norm_epsilon\": %.17g%s}\n",
             c->V, c->P, c->C, c->L, c->H, c->eps, extra ? extra : "");
    write_text(dir, "config.json", text);
}

/* ---- the model's passes ------------------------------------------------------------ */

/* Logits [T][vocab] of one sequence. */
static float *forward(const rw_model *m, const int32_t *ids, int T)
{
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, T, 0), RW_OK);
    ws.tokens = ids;
    ws.n = T;
    ws.seq_len = T;
    ws.pos0 = 0;
    network_forward(m, &ws);
    int V = rw_model_classes(m);
    const float *lg = network_logits(m, &ws);
    float *out = malloc(sizeof(float) * (size_t)T * V);
    assert_non_null(out);
    for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) out[(size_t)t * V + v] = lg[(size_t)v * ws.bp + t];
    workspace_free(&ws);
    return out;
}

static const param *param_named(const rw_model *m, const char *name)
{
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    fail_msg("no parameter %s", name);
    return NULL;
}

/* Every parameter of b equals a's, densified (b dense). When a has no
 * biases, b's must be zero. */
static void expect_same_weights(const rw_model *a, const rw_model *b)
{
    for (int i = 0; i < b->n_params; i++) {
        const param *q = &b->params[i];
        const param *p = NULL;
        for (int j = 0; j < a->n_params; j++)
            if (!strcmp(a->params[j].name, q->name)) p = &a->params[j];
        size_t n = (size_t)param_dense_count(q);
        float *d = calloc(n, sizeof(float));
        assert_non_null(d);
        if (p) {
            assert_int_equal(p->rows, q->rows);
            assert_int_equal(p->cols, q->cols);
            param_to_dense(p, d);
        }
        if (memcmp(d, param_values(q), n * sizeof(float)) != 0)
            fail_msg("parameter %s differs after the round trip", q->name);
        free(d);
    }
}

/* Max over tokens of max |a - b| / max |b| of two logit arrays [T][V]. */
static double logit_diff(const float *a, const float *b, int T, int V)
{
    double worst = 0;
    for (int t = 0; t < T; t++) {
        double big = 0, d = 0;
        for (int v = 0; v < V; v++) {
            big = fmax(big, fabs(b[(size_t)t * V + v]));
            d = fmax(d, fabs((double)a[(size_t)t * V + v] - b[(size_t)t * V + v]));
        }
        worst = fmax(worst, d / big);
    }
    return worst;
}

/* ---- the reference checkpoint ------------------------------------------------------ */

static json_t *ref;        /* reference.json */
static gcfg ref_cfg;
static ckpt ref_ck;        /* its tensors as the generator gives them */
static char *ref_dir;      /* config.json, model.safetensors, vocab.json, merges.txt */

static int group_setup(void **state)
{
    (void)state;
    json_error_t err;
    if (!(ref = json_load_file(REFERENCE_JSON, 0, &err))) {
        fprintf(stderr, "%s: %s\n", REFERENCE_JSON, err.text);
        return -1;
    }
    json_t *c = json_object_get(ref, "config");
    ref_cfg = (gcfg){(int)json_integer_value(json_object_get(c, "vocab_size")),
                     (int)json_integer_value(json_object_get(c, "n_positions")),
                     (int)json_integer_value(json_object_get(c, "n_embd")),
                     (int)json_integer_value(json_object_get(c, "n_head")),
                     (int)json_integer_value(json_object_get(c, "n_layer")),
                     json_number_value(json_object_get(c, "layer_norm_epsilon"))};
    ck_build(&ref_ck, &ref_cfg);
    ref_dir = new_dir("gpt2-reference");
    char *p = join(ref_dir, "config.json");
    int bad = json_dump_file(c, p, JSON_INDENT(2));
    free(p);
    p = join(ref_dir, "model.safetensors");
    ck_write(&ref_ck, p);
    free(p);
    tu_write_test_bpe(ref_dir);
    return bad;
}

static int group_teardown(void **state)
{
    (void)state;
    remove_tree(ref_dir);
    free(ref_dir);
    ck_free(&ref_ck);
    json_decref(ref);
    return 0;
}

/* The C generator gives the bytes the script's did, tensor for tensor. */
static void test_generator_matches_script(void **state)
{
    (void)state;
    json_t *tensors = json_object_get(ref, "tensors");
    assert_int_equal(json_array_size(tensors), ref_ck.n);
    for (int i = 0; i < ref_ck.n; i++) {
        json_t *e = json_array_get(tensors, (size_t)i);
        const ck_tensor *t = &ref_ck.t[i];
        assert_string_equal(json_string_value(json_object_get(e, "name")), t->name);
        json_t *shape = json_object_get(e, "shape");
        assert_int_equal(json_array_size(shape), t->ndim);
        for (int d = 0; d < t->ndim; d++)
            assert_int_equal(json_integer_value(json_array_get(shape, (size_t)d)), t->shape[d]);
        char hash[17];
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a64(t->data, t->nbytes));
        if (strcmp(hash, json_string_value(json_object_get(e, "fnv1a64"))) != 0)
            fail_msg("%s: hash %s, the script's %s", t->name, hash,
                     json_string_value(json_object_get(e, "fnv1a64")));
    }
}

/* rewire's BPE gives the Python reference's ids and decodes them back to
 * the same bytes. */
static void test_tokenizer_matches_script(void **state)
{
    (void)state;
    tokenizer *tok;
    assert_int_equal(tokenizer_bpe_load(ref_dir, &tok), RW_OK);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(ref, "cases"), i, c) {
        const char *hex = json_string_value(json_object_get(c, "hex"));
        size_t len = strlen(hex) / 2;
        uint8_t *text = malloc(len + 1);
        for (size_t k = 0; k < len; k++) {
            unsigned v;
            assert_int_equal(sscanf(hex + 2 * k, "%2x", &v), 1);
            text[k] = (uint8_t)v;
        }
        token_array a = {0};
        assert_int_equal(tokenizer_encode(tok, text, len, &a), RW_OK);
        json_t *ids = json_object_get(c, "ids");
        assert_int_equal(a.count, json_array_size(ids));
        for (size_t k = 0; k < a.count; k++)
            assert_int_equal(a.ids[k], json_integer_value(json_array_get(ids, k)));
        uint8_t *back;
        size_t blen;
        assert_int_equal(tokenizer_decode(tok, a.ids, a.count, &back, &blen), RW_OK);
        assert_int_equal(blen, len);
        assert_memory_equal(back, text, len);
        free(back);
        free(text);
        token_array_free(&a);
    }
    tokenizer_free(tok);
}

static int32_t *case_ids(json_t *c, int *T)
{
    json_t *ids = json_object_get(c, "ids");
    *T = (int)json_integer_value(json_object_get(c, "logit_tokens"));
    int32_t *out = malloc(sizeof(int32_t) * (size_t)*T);
    for (int k = 0; k < *T; k++) out[k] = (int32_t)json_integer_value(json_array_get(ids, (size_t)k));
    return out;
}

/* The imported model's logits are the reference's within 1e-4 of each
 * token's max |logit|, at the stored columns, for the maximum and its
 * position, and for the log-sum-exp over the whole vocabulary. */
static void test_import_logits(void **state)
{
    (void)state;
    rw_model *m;
    if (rw_gpt2_import(ref_dir, &m) != RW_OK) fail_msg("%s", rw_last_error());
    char spec[600];
    snprintf(spec, sizeof spec, "bpe:%s", ref_dir);
    assert_string_equal(rw_model_get_info(m, "tokenizer"), spec);
    assert_int_equal(rw_model_context(m), ref_cfg.P);
    assert_int_equal(rw_model_classes(m), ref_cfg.V);
    rw_gpt_config g;
    assert_int_equal(gpt_config_of(m, &g), RW_OK);
    assert_int_equal(g.n_layer, ref_cfg.L);
    assert_int_equal(g.n_head, ref_cfg.H);
    assert_int_equal(g.bias, 1);
    assert_true((float)g.layer_norm_eps == 1e-5f);

    /* A Conv1D weight arrives transposed; a vector as it is. */
    const ck_tensor *w = ck_find(&ref_ck, "h.1.attn.c_attn.weight");
    const param *p = param_named(m, "blocks.1.attn.qkv.weight");
    const float *src = w->data;
    for (int o = 0; o < p->rows; o++)
        for (int i = 0; i < p->cols; i++)
            assert_true(param_values(p)[(size_t)o * p->cols + i] == src[(size_t)i * p->rows + o]);
    assert_memory_equal(param_values(param_named(m, "blocks.0.mlp.up.bias")),
                        ck_find(&ref_ck, "h.0.mlp.c_fc.bias")->data, sizeof(float) * 4 * ref_cfg.C);

    st_file lf;
    assert_int_equal(st_read(LOGITS_ST, &lf), RW_OK);
    const st_tensor *cols = st_find(&lf, "columns"), *lg = st_find(&lf, "logits");
    const st_tensor *lse = st_find(&lf, "logsumexp"), *mabs = st_find(&lf, "max_abs");
    const st_tensor *amax = st_find(&lf, "argmax"), *mx = st_find(&lf, "max");
    assert_true(cols && lg && lse && mabs && amax && mx);
    int K = (int)cols->count, row = 0, V = ref_cfg.V;
    int32_t *col = malloc(sizeof(int32_t) * (size_t)K);
    memcpy(col, cols->data, sizeof(int32_t) * (size_t)K);
    double worst = 0, worst_lse = 0;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(ref, "cases"), i, c) {
        int T;
        int32_t *ids = case_ids(c, &T);
        float *out = forward(m, ids, T);
        for (int t = 0; t < T; t++, row++) {
            const float *o = out + (size_t)t * V;
            float r[1024];
            double ref_lse, ref_abs;
            float ref_max;
            int32_t ref_arg;
            assert_true(K <= 1024 && row < lg->shape[0]);
            memcpy(r, (const float *)lg->data + (size_t)row * K, sizeof(float) * (size_t)K);
            memcpy(&ref_lse, (const double *)lse->data + row, sizeof ref_lse);
            memcpy(&ref_abs, (const double *)mabs->data + row, sizeof ref_abs);
            memcpy(&ref_max, (const float *)mx->data + row, sizeof ref_max);
            memcpy(&ref_arg, (const int32_t *)amax->data + row, sizeof ref_arg);
            for (int k = 0; k < K; k++) worst = fmax(worst, fabs(o[col[k]] - r[k]) / ref_abs);
            double best = -INFINITY, sum = 0, big = 0;
            int arg = 0;
            for (int v = 0; v < V; v++) {
                if (o[v] > best) best = o[v], arg = v;
                big = fmax(big, fabs(o[v]));
            }
            for (int v = 0; v < V; v++) sum += exp(o[v] - best);
            worst = fmax(worst, fabs(best - ref_max) / ref_abs);
            worst = fmax(worst, fabs(big - ref_abs) / ref_abs);
            worst_lse = fmax(worst_lse, fabs(best + log(sum) - ref_lse) / ref_abs);
            assert_int_equal(arg, ref_arg);
        }
        free(out);
        free(ids);
    }
    assert_int_equal(row, lg->shape[0]);
    printf("gpt2 import: %d tokens, max |logit error| / max |logit| = %.3g at %d columns, "
           "%.3g for the log-sum-exp\n", row, worst, K, worst_lse);
    assert_true(worst <= 1e-4);
    assert_true(worst_lse <= 1e-4);
    free(col);
    st_file_free(&lf);

    /* One token at a time with the KV cache: the reference's greedy continuation. */
    json_t *gen = json_object_get(ref, "generate"), *prompt = json_object_get(gen, "prompt"),
           *greedy = json_object_get(gen, "greedy");
    int np = (int)json_array_size(prompt), ng = (int)json_array_size(greedy);
    int32_t pr[64], got[64];
    for (int k = 0; k < np; k++) pr[k] = (int32_t)json_integer_value(json_array_get(prompt, (size_t)k));
    assert_int_equal(rw_lm_generate(m, pr, np, ng, 0.0f, 0, 1, got), RW_OK);
    for (int k = 0; k < ng; k++)
        assert_int_equal(got[k], json_integer_value(json_array_get(greedy, (size_t)k)));

    /* A rewire model file keeps all of it. */
    char *path = join(ref_dir, "imported.safetensors");
    assert_int_equal(rw_model_save(m, path), RW_OK);
    rw_model *back;
    assert_int_equal(rw_model_load(path, &back), RW_OK);
    expect_same_weights(m, back);
    assert_string_equal(rw_model_get_info(back, "tokenizer"), spec);
    assert_int_equal(gpt_config_of(back, &g), RW_OK);
    assert_true((float)g.layer_norm_eps == 1e-5f);
    unlink(path);
    free(path);
    rw_model_free(back);
    rw_model_free(m);
}

/* Export, then import: the same weights, files transformers reads. */
static void test_export_round_trip(void **state)
{
    (void)state;
    rw_model *m, *back;
    assert_int_equal(rw_gpt2_import(ref_dir, &m), RW_OK);
    char *out = new_dir("gpt2-export");
    if (rw_gpt2_export(m, out) != RW_OK) fail_msg("%s", rw_last_error());
    assert_true(file_exists(out, "config.json") && file_exists(out, "model.safetensors"));
    assert_false(file_exists(out, "config.json.new") || file_exists(out, "model.safetensors.new") ||
                 file_exists(out, "config.json.tmp") || file_exists(out, "model.safetensors.tmp"));
    assert_int_equal(rw_gpt2_import(out, &back), RW_OK);
    expect_same_weights(m, back);
    assert_null(rw_model_get_info(back, "tokenizer")); /* the tokenizer files are not copied */

    /* The files: GPT-2's names and F32, config.json as transformers writes it. */
    char *p = join(out, "model.safetensors");
    st_file f;
    assert_int_equal(st_read(p, &f), RW_OK);
    assert_int_equal(f.count, ref_ck.n);
    for (int i = 0; i < ref_ck.n; i++) {
        const st_tensor *t = st_find(&f, ref_ck.t[i].name);
        assert_non_null(t);
        assert_int_equal(t->dtype, ST_F32);
        assert_int_equal(t->nbytes, ref_ck.t[i].nbytes);
        assert_memory_equal(t->data, ref_ck.t[i].data, t->nbytes);
    }
    assert_string_equal(st_meta(&f, "format"), "pt");
    st_file_free(&f);
    free(p);
    p = join(out, "config.json");
    json_error_t err;
    json_t *c = json_load_file(p, 0, &err);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "model_type")), "gpt2");
    assert_string_equal(json_string_value(json_object_get(c, "activation_function")), "gelu_new");
    assert_int_equal(json_integer_value(json_object_get(c, "n_embd")), ref_cfg.C);
    assert_int_equal(json_integer_value(json_object_get(c, "n_positions")), ref_cfg.P);
    assert_true(json_real_value(json_object_get(c, "layer_norm_epsilon")) == 1e-5);
    json_decref(c);
    FILE *fp = fopen(p, "rb");
    char text[2048] = {0};
    assert_true(fread(text, 1, sizeof text - 1, fp) > 0);
    fclose(fp);
    assert_non_null(strstr(text, "\"layer_norm_epsilon\": 1e-5,")); /* not 9.99999975e-06 */
    free(p);

    /* Exporting again over the folder replaces both files. */
    assert_int_equal(rw_gpt2_export(back, out), RW_OK);
    rw_model_free(back);
    rw_model_free(m);
    remove_tree(out);
    free(out);
}

/* ---- small models ------------------------------------------------------------------- */

static const gcfg SMALL = {256, 8, 8, 2, 2, 1e-5};

static const char *token_seq(void)
{
    static const char s[] = "an import";
    return s;
}

static int32_t small_ids[8];

static void fill_small_ids(void)
{
    for (int k = 0; k < 8; k++) small_ids[k] = (int32_t)(unsigned char)token_seq()[k];
}

/* Writes the small checkpoint (config, weights as given) into a fresh folder. */
static char *small_folder(const char *name, const gcfg *c, const char *extra, const ckpt *k)
{
    char *d = new_dir(name);
    write_config(d, c, extra);
    char *p = join(d, "model.safetensors");
    ck_write(k, p);
    free(p);
    return d;
}

/* Importing the folder fails with `want`, *out NULL, and a message that
 * begins with the folder's `file` and holds every needle. */
static void expect_import_fail(const char *dir, rw_status want, const char *file, ...)
{
    rw_model *m = (rw_model *)1;
    rw_status st = rw_gpt2_import(dir, &m);
    const char *msg = rw_last_error();
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", msg);
    if (st != want) fail_msg("import of %s: status %d (%s), expected %d", dir, st, msg, want);
    assert_null(m);
    char *path = join(dir, file);
    if (strncmp(msg, path, strlen(path)) != 0) fail_msg("message does not begin with %s: %s", path, msg);
    free(path);
    va_list ap;
    va_start(ap, file);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        if (!strstr(msg, needle)) fail_msg("message lacks \"%s\": %s", needle, msg);
    va_end(ap);
}

/* Checkpoint changes: each run on a fresh copy of the small one. */
typedef void (*edit_fn)(ckpt *k);

static void hostile(const char *name, edit_fn edit, const gcfg *c, const char *extra,
                    const char *file, ...)
{
    ckpt k;
    ck_build(&k, &SMALL);
    if (edit) edit(&k);
    char *d = small_folder(name, c ? c : &SMALL, extra, &k);
    rw_model *m = (rw_model *)1;
    rw_status st = rw_gpt2_import(d, &m);
    const char *msg = rw_last_error();
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", msg);
    if (st != RW_ERR_FORMAT) fail_msg("%s: status %d (%s), expected a format error", name, st, msg);
    assert_null(m);
    char *path = join(d, file);
    if (strncmp(msg, path, strlen(path)) != 0) fail_msg("%s: message does not begin with %s: %s", name, path, msg);
    va_list ap;
    va_start(ap, file);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        if (!strstr(msg, needle)) fail_msg("%s: message lacks \"%s\": %s", name, needle, msg);
    va_end(ap);
    free(path);
    remove_tree(d);
    free(d);
    ck_free(&k);
}

static void drop_fc_bias(ckpt *k) { ck_drop(k, "h.1.mlp.c_fc.bias"); }
static void add_extra(ckpt *k) { ck_add(k, "h.0.attn.extra", ST_F32, 1, (int64_t[]){8}); }
static void add_block_2(ckpt *k) { ck_add(k, "h.2.ln_1.weight", ST_F32, 1, (int64_t[]){8}); }
static void add_rotary(ckpt *k) { ck_add(k, "transformer.rotary.inv_freq", ST_F32, 1, (int64_t[]){4}); }
static void add_prefixed_twin(ckpt *k) { ck_add(k, "transformer.wte.weight", ST_F32, 2, (int64_t[]){256, 8}); }
static void qkv_as_linear(ckpt *k)
{
    ck_tensor *t = ck_find(k, "h.0.attn.c_attn.weight");
    t->shape[0] = 24, t->shape[1] = 8; /* nn.Linear's [out][in] */
}
static void wte_i32(ckpt *k) { ck_find(k, "wte.weight")->dtype = ST_I32; }
static void ln_f64(ckpt *k)
{
    ck_drop(k, "ln_f.weight");
    ck_add(k, "ln_f.weight", ST_F64, 1, (int64_t[]){8});
}
static void nan_in_proj(ckpt *k)
{
    ((float *)ck_find(k, "h.1.mlp.c_proj.weight")->data)[3 * 8 + 5] = NAN;
}
static void inf_f16_bias(ckpt *k)
{
    ck_drop(k, "ln_f.bias");
    uint16_t *h = ck_add(k, "ln_f.bias", ST_F16, 1, (int64_t[]){8})->data;
    h[2] = 0xfc00; /* -Inf */
}
static void lm_head_differs(ckpt *k)
{
    ck_tensor *h = ck_add(k, "lm_head.weight", ST_F32, 2, (int64_t[]){256, 8});
    memcpy(h->data, ck_find(k, "wte.weight")->data, h->nbytes);
    ((float *)h->data)[7 * 8 + 1] += 1.0f;
}
static void scalar_shape(ckpt *k)
{
    ck_tensor *t = ck_find(k, "h.0.ln_1.weight");
    t->ndim = 2, t->shape[0] = 1, t->shape[1] = 8;
}

static void test_hostile_checkpoints(void **state)
{
    (void)state;
    const char *ST = "model.safetensors", *CF = "config.json";
    hostile("gpt2-missing", drop_fc_bias, NULL, NULL, ST, ": tensor h.1.mlp.c_fc.bias is missing",
            "config.json has n_layer 2", NULL);
    hostile("gpt2-extra", add_extra, NULL, NULL, ST, ": unexpected tensor h.0.attn.extra", NULL);
    hostile("gpt2-extra-block", add_block_2, NULL, NULL, ST, ": unexpected tensor h.2.ln_1.weight",
            "n_layer 2, blocks h.0 to h.1", NULL);
    hostile("gpt2-extra-prefixed", add_rotary, NULL, NULL, ST,
            ": unexpected tensor transformer.rotary.inv_freq", NULL);
    hostile("gpt2-twin", add_prefixed_twin, NULL, NULL, ST,
            ": tensors wte.weight and transformer.wte.weight are the same parameter", NULL);
    hostile("gpt2-linear-layout", qkv_as_linear, NULL, NULL, ST,
            ": tensor h.0.attn.c_attn.weight has shape [24, 8], expected [8, 24] "
            "([n_embd, 3*n_embd] from ", "config.json)", NULL);
    hostile("gpt2-2d-vector", scalar_shape, NULL, NULL, ST,
            ": tensor h.0.ln_1.weight has shape [1, 8], expected [8] ([n_embd]", NULL);
    hostile("gpt2-i32", wte_i32, NULL, NULL, ST,
            ": tensor wte.weight has dtype I32, expected F32, F16 or BF16", NULL);
    hostile("gpt2-f64", ln_f64, NULL, NULL, ST, ": tensor ln_f.weight has dtype F64", NULL);
    hostile("gpt2-nan", nan_in_proj, NULL, NULL, ST,
            ": tensor h.1.mlp.c_proj.weight has a non-finite value (NaN) at [3, 5]", NULL);
    hostile("gpt2-inf", inf_f16_bias, NULL, NULL, ST,
            ": tensor ln_f.bias has a non-finite value (Inf) at [2]", NULL);
    hostile("gpt2-head", lm_head_differs, NULL, NULL, ST,
            ": tensor lm_head.weight differs from wte.weight at [7, 1]", "tied", NULL);

    /* config.json and the tensors disagree. */
    gcfg wide = SMALL, deep = SMALL, shallow = SMALL, vocab = SMALL, ctx = SMALL;
    wide.C = 16, deep.L = 3, shallow.L = 1, vocab.V = 300, ctx.P = 16;
    hostile("gpt2-wide", NULL, &wide, NULL, ST,
            ": tensor wte.weight has shape [256, 8], expected [256, 16] ([vocab_size, n_embd]", NULL);
    hostile("gpt2-deep", NULL, &deep, NULL, ST, ": tensor h.2.ln_1.weight is missing",
            "n_layer 3", NULL);
    hostile("gpt2-shallow", NULL, &shallow, NULL, ST, ": unexpected tensor h.1.", "n_layer 1", NULL);
    hostile("gpt2-vocab", NULL, &vocab, NULL, ST,
            ": tensor wte.weight has shape [256, 8], expected [300, 8]", NULL);
    hostile("gpt2-context", NULL, &ctx, NULL, ST,
            ": tensor wpe.weight has shape [8, 8], expected [16, 8] ([n_positions, n_embd]", NULL);

    /* What rewire's GPT cannot compute. */
    hostile("gpt2-erf", NULL, NULL, ", \"activation_function\": \"gelu\"", CF,
            ": activation_function \"gelu\" (the exact, erf GELU) is not supported", NULL);
    hostile("gpt2-inner", NULL, NULL, ", \"n_inner\": 16", CF, ": n_inner is 16", "4*n_embd = 32",
            NULL);
    hostile("gpt2-unscaled", NULL, NULL, ", \"scale_attn_weights\": false", CF,
            ": scale_attn_weights is false", NULL);
    hostile("gpt2-inverse", NULL, NULL, ", \"scale_attn_by_inverse_layer_idx\": true", CF,
            ": scale_attn_by_inverse_layer_idx is true", NULL);
    hostile("gpt2-cross", NULL, NULL, ", \"add_cross_attention\": true", CF,
            ": add_cross_attention is true", NULL);
    hostile("gpt2-untied", NULL, NULL, ", \"tie_word_embeddings\": false", CF,
            ": tie_word_embeddings is false but ", "has no lm_head.weight", NULL);
    hostile("gpt2-flag-type", NULL, NULL, ", \"tie_word_embeddings\": 1", CF,
            ": field \"tie_word_embeddings\" is an integer, expected true or false", NULL);
    gcfg tiny = SMALL;
    tiny.eps = 1e-40;
    hostile("gpt2-eps", NULL, &tiny, NULL, CF, ": layer_norm_epsilon 1e-40 is below the smallest "
            "normal float", NULL);
    hostile("gpt2-model-type", NULL, NULL, ", \"architectures\": 1, \"model_type\": \"gpt_neo\"",
            CF, "model_type is \"gpt_neo\", expected \"gpt2\"", NULL);
}

/* Broken files and folders: the containers' own readers name them. */
static void test_hostile_files(void **state)
{
    (void)state;
    ckpt k;
    ck_build(&k, &SMALL);
    char *d = small_folder("gpt2-files", &SMALL, NULL, &k);
    char *st = join(d, "model.safetensors");

    /* Truncated, then with a dtype the reader does not know. */
    FILE *f = fopen(st, "r+b");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), 1000), 0);
    fclose(f);
    expect_import_fail(d, RW_ERR_FORMAT, "model.safetensors", "header length", NULL);
    f = fopen(st, "wb");
    static const char head[] = "{\"wte.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    uint64_t n = sizeof head - 1;
    fwrite(&n, 8, 1, f);
    fwrite(head, 1, n, f);
    fputc(0, f);
    fclose(f);
    expect_import_fail(d, RW_ERR_FORMAT, "model.safetensors", "tensor wte.weight: unknown dtype \"F8_E4M3\"",
                       NULL);

    /* No weights at all; only pytorch_model.bin; a sharded checkpoint. */
    unlink(st);
    expect_import_fail(d, RW_ERR_IO, "model.safetensors", NULL);
    write_text(d, "pytorch_model.bin", "PK");
    expect_import_fail(d, RW_ERR_IO, "model.safetensors", "not pytorch_model.bin", NULL);
    write_text(d, "model.safetensors.index.json", "{}");
    expect_import_fail(d, RW_ERR_IO, "model.safetensors", "sharded", NULL);

    /* config.json missing or malformed. */
    ck_write(&k, st);
    write_text(d, "config.json", "{\"n_layer\": 2}");
    expect_import_fail(d, RW_ERR_FORMAT, "config.json", "field \"n_head\" is missing", NULL);
    char *cf = join(d, "config.json");
    unlink(cf);
    expect_import_fail(d, RW_ERR_IO, "config.json", NULL);

    /* The tokenizer: half of it, or more tokens than the model predicts. */
    write_config(d, &SMALL, NULL);
    write_text(d, "vocab.json", "{}");
    expect_import_fail(d, RW_ERR_FORMAT, "merges.txt", "is missing beside", "vocab.json", NULL);
    tu_write_test_bpe(d);
    expect_import_fail(d, RW_ERR_FORMAT, "vocab.json", "50257 tokens", "vocab_size 256", NULL);
    write_text(d, "vocab.json", "[]");
    expect_import_fail(d, RW_ERR_FORMAT, "vocab.json", NULL);

    rw_model *m = (rw_model *)1;
    assert_int_equal(rw_gpt2_import(NULL, &m), RW_ERR_INVALID_ARGUMENT);
    assert_null(m);
    assert_int_equal(rw_gpt2_import(d, NULL), RW_ERR_INVALID_ARGUMENT);
    free(cf);
    free(st);
    remove_tree(d);
    free(d);
    ck_free(&k);
}

/* F16 and BF16 tensors widen exactly; "transformer." prefixes, the
 * ignored buffers and a tied lm_head.weight are accepted. */
static void test_half_precision_and_layout_variants(void **state)
{
    (void)state;
    ckpt k;
    ck_build(&k, &SMALL);
    /* Expected floats: each tensor rounded as the file will hold it. */
    ckpt want;
    ck_build(&want, &SMALL);
    for (int i = 0; i < k.n; i++) {
        ck_tensor *t = &k.t[i];
        float *w = want.t[i].data, *src = t->data;
        size_t n = t->nbytes / 4;
        if (i % 3 == 0) continue; /* F32 */
        uint16_t *h = malloc(2 * n);
        assert_non_null(h);
        for (size_t j = 0; j < n; j++) {
            if (i % 3 == 1) { /* F16, rounded by the compiler's own conversion */
                _Float16 x = (_Float16)src[j];
                if (j == 1) x = (_Float16)0x1p-20f; /* a subnormal */
                if (j == 2) x = (_Float16)-0.0f;
                memcpy(&h[j], &x, 2);
                w[j] = (float)x;
            } else { /* BF16: the top half of the float's bits */
                uint32_t bits;
                memcpy(&bits, &src[j], 4);
                h[j] = (uint16_t)(bits >> 16);
                bits &= 0xffff0000u;
                memcpy(&w[j], &bits, 4);
            }
        }
        free(t->data);
        t->data = h;
        t->nbytes = 2 * n;
        t->dtype = i % 3 == 1 ? ST_F16 : ST_BF16;
        char prefixed[sizeof t->name + 16];
        snprintf(prefixed, sizeof prefixed, "transformer.%s", t->name);
        assert_true(strlen(prefixed) < sizeof t->name);
        if (i % 2) memcpy(t->name, prefixed, strlen(prefixed) + 1);
    }
    /* The buffers of older transformers, and the tied head. */
    ck_add(&k, "h.0.attn.bias", ST_BOOL, 4, (int64_t[]){1, 1, 8, 8});
    ck_add(&k, "transformer.h.1.attn.bias", ST_F32, 4, (int64_t[]){1, 1, 8, 8});
    ck_add(&k, "h.1.attn.masked_bias", ST_F32, 0, NULL);
    ck_tensor *head = ck_add(&k, "lm_head.weight", ST_F32, 2, (int64_t[]){256, 8});
    memcpy(head->data, want.t[0].data, head->nbytes); /* wte, as imported */
    char *d = small_folder("gpt2-half", &SMALL, ", \"tie_word_embeddings\": false", &k);
    rw_model *m;
    if (rw_gpt2_import(d, &m) != RW_OK) fail_msg("%s", rw_last_error());
    assert_string_equal(rw_model_get_info(m, "tokenizer"), "bytes");
    /* Compare through an F32 checkpoint of the expected values. */
    char *d2 = small_folder("gpt2-half-f32", &SMALL, NULL, &want);
    rw_model *ref_m;
    assert_int_equal(rw_gpt2_import(d2, &ref_m), RW_OK);
    expect_same_weights(ref_m, m);
    rw_model_free(ref_m);
    rw_model_free(m);
    remove_tree(d);
    remove_tree(d2);
    free(d);
    free(d2);
    ck_free(&k);
    ck_free(&want);
}

/* Sparse, N:M and bias-free models export densified and come back with
 * the same logits; a custom LayerNorm ε goes through config.json. */
static void test_sparse_models_export_densified(void **state)
{
    (void)state;
    fill_small_ids();
    for (int kind = 0; kind < 3; kind++) {
        rw_gpt_config c = rw_gpt_config_default();
        c.vocab = 256, c.context = 16, c.n_layer = 2, c.n_head = 2, c.n_embd = 16;
        c.bias = kind != 2;
        c.sparsity = kind == 0 ? 0.8 : 0;
        c.layer_norm_eps = kind == 2 ? 1e-6 : 1e-5;
        c.seed = 7;
        rw_model *m, *back;
        assert_int_equal(rw_gpt_create(&c, &m), RW_OK);
        if (kind == 1) assert_int_equal(rw_model_to_nm(m, 7, 2, 4), RW_OK); /* blocks.0.mlp.up */
        /* Biases and β away from zero, so that a lost one would show. */
        for (int i = 0; i < m->n_params; i++) {
            const param *p = &m->params[i];
            if (strstr(p->name, ".bias"))
                for (int64_t j = 0; j < param_count(p); j++) param_values(p)[j] = 0.01f * (float)(j % 7);
        }
        char *out = new_dir("gpt2-sparse");
        if (rw_gpt2_export(m, out) != RW_OK) fail_msg("%s", rw_last_error());
        assert_int_equal(rw_gpt2_import(out, &back), RW_OK);
        expect_same_weights(m, back);
        rw_gpt_config g;
        assert_int_equal(gpt_config_of(back, &g), RW_OK);
        assert_true((float)g.layer_norm_eps == (float)c.layer_norm_eps);
        assert_int_equal(g.bias, 1);
        float *a = forward(m, small_ids, 8), *b = forward(back, small_ids, 8);
        double d = logit_diff(b, a, 8, 256);
        if (d > 1e-5) fail_msg("kind %d: logits differ by %g of max |logit|", kind, d);
        free(a);
        free(b);
        rw_model_free(back);
        rw_model_free(m);
        remove_tree(out);
        free(out);
    }
}

/* What export refuses, leaving the folder as it was. */
static void test_export_refusals(void **state)
{
    (void)state;
    char *out = new_dir("gpt2-refuse");
    char *missing = join(out, "no/such/folder");
    rw_model_config mc = rw_model_config_default();
    int sizes[] = {4, 8, 3};
    mc.sizes = sizes;
    mc.n_layers = 2;
    rw_model *mlp;
    assert_int_equal(rw_model_create(&mc, &mlp), RW_OK);
    assert_int_equal(rw_gpt2_export(mlp, out), RW_ERR_INVALID_ARGUMENT);
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", rw_last_error());
    assert_non_null(strstr(rw_last_error(), "not the graph rw_gpt_create builds"));
    assert_false(file_exists(out, "config.json") || file_exists(out, "model.safetensors"));
    rw_model_free(mlp);

    rw_gpt_config c = rw_gpt_config_default();
    c.vocab = 256, c.context = 8, c.n_layer = 1, c.n_head = 2, c.n_embd = 8, c.bias = 1;
    rw_model *m;
    assert_int_equal(rw_gpt_create(&c, &m), RW_OK);
    assert_int_equal(rw_gpt2_export(m, missing), RW_ERR_IO);
    assert_int_equal(rw_gpt2_export(m, out), RW_OK);
    char *cf = join(out, "config.json"), *st = join(out, "model.safetensors");
    struct stat before_c, before_s, after_c, after_s;
    assert_int_equal(stat(cf, &before_c), 0);
    assert_int_equal(stat(st, &before_s), 0);

    /* A NaN weight: refused, nothing written. */
    float *w = param_values(param_named(m, "blocks.0.attn.proj.weight"));
    float keep = w[9];
    w[9] = NAN;
    assert_int_equal(rw_gpt2_export(m, out), RW_ERR_INVALID_ARGUMENT);
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", rw_last_error());
    assert_non_null(strstr(rw_last_error(), "parameter blocks.0.attn.proj.weight has a non-finite "
                                            "value at [1, 1]"));
    w[9] = keep;

    /* config.json cannot be staged: the staged weights go, the old files stay. */
    char *blocker = join(out, "config.json.new.tmp");
    assert_int_equal(mkdir(blocker, 0700), 0);
    assert_int_equal(rw_gpt2_export(m, out), RW_ERR_IO);
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", rw_last_error());
    assert_false(file_exists(out, "model.safetensors.new") || file_exists(out, "config.json.new"));
    rmdir(blocker);
    assert_int_equal(stat(cf, &after_c), 0);
    assert_int_equal(stat(st, &after_s), 0);
    assert_true(before_c.st_ino == after_c.st_ino && before_s.st_ino == after_s.st_ino);

    /* A graph that is GPT-shaped but wired otherwise. */
    m->layers[5]->inputs[0] = 2; /* blocks.0.attn_residual adds ln_1's output */
    assert_int_equal(rw_gpt2_export(m, out), RW_ERR_INVALID_ARGUMENT);
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", rw_last_error());
    assert_non_null(strstr(rw_last_error(), "blocks.0.attn_residual is wired"));
    m->layers[5]->inputs[0] = 1;

    /* N:M training in progress: its weights are the dense masters. */
    rw_model *d;
    c.bias = 1;
    assert_int_equal(rw_gpt_create(&c, &d), RW_OK);
    rw_nm_train_config nc = rw_nm_train_config_default();
    nc.n = 2, nc.m = 4;
    assert_int_equal(rw_model_nm_train_begin(d, &nc), RW_OK);
    assert_int_equal(rw_gpt2_export(d, out), RW_ERR_INVALID_ARGUMENT);
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", rw_last_error());
    assert_non_null(strstr(rw_last_error(), "N:M training"));
    rw_model_free(d);
    assert_int_equal(rw_gpt2_export(NULL, out), RW_ERR_INVALID_ARGUMENT);

    free(blocker);
    free(cf);
    free(st);
    rw_model_free(m);
    remove_tree(out);
    free(out);
    free(missing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generator_matches_script),
        cmocka_unit_test(test_tokenizer_matches_script),
        cmocka_unit_test(test_import_logits),
        cmocka_unit_test(test_export_round_trip),
        cmocka_unit_test(test_hostile_checkpoints),
        cmocka_unit_test(test_hostile_files),
        cmocka_unit_test(test_half_precision_and_layout_variants),
        cmocka_unit_test(test_sparse_models_export_densified),
        cmocka_unit_test(test_export_refusals),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
