/* Writes the seed corpora of the fuzz harnesses with the library itself:
 * small valid model files, safetensors containers of every dtype, IDX
 * files (plain and gzipped), CSV files of every shape the loader takes and
 * .npy pairs of every dtype and version, GPT-2 checkpoints in Hugging
 * Face's layout (F32; F16 and BF16; with the "transformer." prefix, the
 * ignored buffers and a tied lm_head.weight) for fuzz_gpt2_import's fixed
 * config; and by hand BPE vocabularies (vocab.json, a 0x00 byte,
 * merges.txt) and GPT-2 config.json files. Usage: make_seeds CORPUS_DIR
 * (the folder that holds fuzz_model/, fuzz_safetensors/, fuzz_idx/,
 * fuzz_checkpoint/, fuzz_csv/, fuzz_npy/, fuzz_vocab/, fuzz_gpt2_config/,
 * fuzz_lm_note/, fuzz_gpt2_import/). Seeds are committed; rerun this after a
 * format change. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "io/safetensors.h"
#include "models/gpt2_hf.h"
#include "rewire.h"
#include "text/byte_unicode.h"
#include "text/gpt2_config.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

static const char *dir;

static void check(rw_status st)
{
    if (st != RW_OK) {
        fprintf(stderr, "make_seeds: %s\n", rw_last_error());
        exit(1);
    }
}

static const char *path(const char *harness, const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s/%s", dir, harness, name);
    return buf;
}

/* Copies a file into another harness's corpus, with an optional first byte. */
static void copy(const char *from, const char *to, int prefix)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) {
        perror(to);
        exit(1);
    }
    if (prefix >= 0) fputc(prefix, out);
    int c;
    while ((c = fgetc(in)) != EOF) fputc(c, out);
    fclose(in);
    fclose(out);
}

static int stop_after(const rw_progress *p, void *user) { return p->step == *(int *)user; }

static void model(const char *name, const int *sizes, int n, double sparsity, int dense_last,
                  rw_activation act)
{
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = n;
    c.sparsity = sparsity;
    c.dense_last = dense_last;
    c.activation = act;
    rw_model *m;
    check(rw_model_create(&c, &m));
    rw_model_set_normalization(m, 0.25f, 0.5f);
    check(rw_model_save(m, path("fuzz_model", name)));
    rw_model_free(m);
    char other[4096];
    snprintf(other, sizeof other, "%s", path("fuzz_model", name));
    copy(other, path("fuzz_safetensors", name), -1);
}

/* A model with an input stage (metadata "input"): per-feature
 * normalisation (one constant feature) and 4 of its 6 inputs kept. */
static void input_stage_model(const char *name)
{
    int sizes[] = {6, 5, 3};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 2;
    c.sparsity = 0.3;
    rw_model *m;
    check(rw_model_create(&c, &m));
    float mean[6] = {0.5f, -1, 2, 0, 0.25f, 3}, std[6] = {1, 0.5f, 0, 2, 1, 0.1f};
    check(rw_model_set_feature_normalization(m, mean, std));
    int32_t keep[4] = {0, 2, 3, 5};
    check(rw_model_keep_inputs(m, keep, 4));
    check(rw_model_save(m, path("fuzz_model", name)));
    rw_model_free(m);
}

/* A model whose first layer is 1:4 (the "nm" kind: values and offsets). */
/* A language model small enough for the fuzzer's 8 KB inputs: 12 tokens,
 * 4 positions, one block of width 4 with 2 heads. */
static void gpt_model(const char *name, double sparsity, int bias)
{
    rw_gpt_config g = rw_gpt_config_default();
    g.vocab = 12;
    g.context = 4;
    g.n_layer = 1;
    g.n_head = 2;
    g.n_embd = 4;
    g.bias = bias;
    g.sparsity = sparsity;
    rw_model *m;
    check(rw_gpt_create(&g, &m));
    check(rw_model_set_info(m, "tokenizer", "bytes"));
    check(rw_model_save(m, path("fuzz_model", name)));
    rw_model_free(m);
}

static void nm_model(const char *name)
{
    int sizes[] = {8, 4, 3};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 2;
    c.sparsity = 0;
    rw_model *m;
    check(rw_model_create(&c, &m));
    check(rw_model_to_nm(m, 0, 1, 4));
    check(rw_model_save(m, path("fuzz_model", name)));
    rw_model_free(m);
}

/* Trains model m (inputs features, 3 classes) for `stop` steps (none when
 * 0) of a 2-epoch run in batches of 3 on 7 synthetic samples, with
 * dynamic sparse training when dst is not NULL, saves the checkpoint as
 * fuzz_checkpoint/name and frees the model. */
static void train_and_save(const char *name, rw_model *m, int features, rw_optimizer opt, int stop,
                           const rw_dst_config *dst)
{
    rw_train_config tc = rw_train_config_default();
    tc.optimizer = opt;
    tc.batch = 3;
    tc.epochs = 2;
    rw_trainer *t;
    check(rw_trainer_create(m, &tc, &t));
    if (dst) check(rw_trainer_set_dst(t, dst));
    float x[7 * 8];
    uint8_t y[7];
    for (int i = 0; i < 7 * features; i++) x[i] = (float)(i % 5) / 5.0f;
    for (int i = 0; i < 7; i++) y[i] = (uint8_t)(i % 3);
    rw_dataset *d;
    check(rw_dataset_from_memory(x, y, 7, features, 3, &d));
    if (stop > 0) check(rw_trainer_epoch(t, d, stop_after, &stop, NULL));
    check(rw_trainer_save_checkpoint(t, path("fuzz_checkpoint", name), "seed"));
    rw_dataset_free(d);
    rw_trainer_free(t);
    rw_model_free(m);
}

/* A checkpoint of a half-sparse 6-5-3 model after `stop` steps. */
static void checkpoint(const char *name, rw_optimizer opt, int dense_last, int stop,
                       const rw_dst_config *dst)
{
    int sizes[] = {6, 5, 3};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 2;
    c.sparsity = 0.5;
    c.dense_last = dense_last;
    rw_model *m;
    check(rw_model_create(&c, &m));
    train_and_save(name, m, 6, opt, stop, dst);
}

/* A checkpoint of N:M training (the "nm" section) after `stop` steps: a
 * dense 8-4-3 model whose first layer trains 2:4 with `method`. */
static void nm_checkpoint(const char *name, rw_nm_method method, int stop)
{
    int sizes[] = {8, 4, 3};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 2;
    c.sparsity = 0;
    rw_model *m;
    check(rw_model_create(&c, &m));
    rw_nm_train_config nc = rw_nm_train_config_default();
    nc.method = method;
    check(rw_model_nm_train_begin(m, &nc));
    train_and_save(name, m, 8, RW_OPT_SGD, stop, NULL);
}

static void containers(void)
{
    float f32[3] = {1.5f, -2.0f, 0.0f};
    int32_t i32[2] = {7, -1};
    int64_t i64[1] = {42};
    uint8_t u8[3] = {1, 2, 3};
    int16_t i16[2] = {-5, 5};
    uint16_t u16[1] = {65535};
    double f64[1] = {3.5};
    const int64_t s3[] = {3}, s2[] = {2}, s1[] = {1}, s04[] = {0, 4};
    st_writer *w = st_writer_new();
    check(st_writer_add(w, "a", ST_F32, 1, s3, f32));
    check(st_writer_add(w, "b", ST_I32, 1, s2, i32));
    check(st_writer_add(w, "c", ST_I64, 1, s1, i64));
    check(st_writer_add(w, "d", ST_U8, 1, s3, u8));
    check(st_writer_add(w, "e", ST_I16, 1, s2, i16));
    check(st_writer_add(w, "f", ST_U16, 1, s1, u16));
    check(st_writer_add(w, "g", ST_F64, 0, NULL, f64));
    check(st_writer_add(w, "h", ST_F32, 2, s04, NULL));
    check(st_writer_meta(w, "format", "rewire"));
    check(st_writer_write(w, path("fuzz_safetensors", "dtypes.safetensors")));
    st_writer_free(w);
    w = st_writer_new();
    check(st_writer_write(w, path("fuzz_safetensors", "empty.safetensors")));
    st_writer_free(w);
    /* Half floats (1.0, -2.0, a subnormal, -Inf) and booleans. */
    uint16_t f16[4] = {0x3c00, 0xc000, 0x0001, 0xfc00}, bf16[2] = {0x3f80, 0x7fc0};
    uint8_t bools[2] = {0, 1};
    const int64_t s4[] = {4};
    w = st_writer_new();
    check(st_writer_add(w, "half", ST_F16, 1, s4, f16));
    check(st_writer_add(w, "brain", ST_BF16, 1, s2, bf16));
    check(st_writer_add(w, "mask", ST_BOOL, 1, s2, bools));
    check(st_writer_write(w, path("fuzz_safetensors", "halves.safetensors")));
    st_writer_free(w);
}

static void idx_file(const char *name, int gz, int ndim, const uint32_t *dims, const uint8_t *data,
                     size_t len, int labels)
{
    uint8_t buf[256];
    buf[0] = labels; /* the harness's selector byte */
    uint8_t *h = buf + 1;
    h[0] = h[1] = 0;
    h[2] = 0x08;
    h[3] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++)
        for (int b = 0; b < 4; b++) h[4 + 4 * d + b] = (uint8_t)(dims[d] >> (24 - 8 * b));
    size_t n = 4 + 4 * (size_t)ndim;
    memcpy(h + n, data, len);
    n += len;
    const char *p = path("fuzz_idx", name);
    if (!gz) {
        FILE *f = fopen(p, "wb");
        fwrite(buf, 1, n + 1, f);
        fclose(f);
        return;
    }
    FILE *f = fopen(p, "wb");
    fputc(labels, f);
    fclose(f);
    gzFile g = gzopen(p, "ab");
    gzwrite(g, h, (unsigned)n);
    gzclose(g);
}

static void write_seed(const char *harness, const char *name, const char *bytes, size_t len)
{
    char folder[4096];
    snprintf(folder, sizeof folder, "%s/%s", dir, harness);
    mkdir(folder, 0755);
    FILE *f = fopen(path(harness, name), "wb");
    if (!f || fwrite(bytes, 1, len, f) != len || fclose(f) != 0) {
        perror(path(harness, name));
        exit(1);
    }
}

/* A vocabulary of the 256 byte tokens (byte b has id b, spelled in
 * GPT-2's alphabet) and the `n` tokens given, then 0x00 and the merges;
 * checked to load before it is written. */
static void vocab_seed(const char *name, const char **tokens, int n, const char *merges)
{
    static char buf[16384];
    size_t at = 0;
    at += (size_t)snprintf(buf + at, sizeof buf - at, "{");
    for (int b = 0; b < 256; b++) {
        uint8_t sym[5] = {0};
        utf8_encode(gpt2_byte_to_unicode((uint8_t)b), sym);
        const char *esc = b == '"' || b == '\\' ? "\\" : "";
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%s\"%s%s\": %d", b ? ", " : "", esc,
                               (const char *)sym, b);
    }
    for (int k = 0; k < n; k++)
        at += (size_t)snprintf(buf + at, sizeof buf - at, ", \"%s\": %d", tokens[k], 256 + k);
    at += (size_t)snprintf(buf + at, sizeof buf - at, "}");
    size_t vlen = at, mlen = strlen(merges);
    buf[at++] = '\0';
    memcpy(buf + at, merges, mlen);
    tokenizer *t;
    check(tokenizer_bpe_load_memory("seed/vocab.json", buf, vlen, "seed/merges.txt", merges, mlen, &t));
    tokenizer_free(t);
    write_seed("fuzz_vocab", name, buf, at + mlen);
}

static void text_seeds(void)
{
    const char *small[] = {"\u0120t", "he", "\u0120the", "<|endoftext|>"};
    vocab_seed("small", small, 4, "#version: 0.2\n\xC4\xA0 t\nh e\n\xC4\xA0t he\n");
    vocab_seed("crlf", small, 4, "\xC4\xA0 t\r\nh e\r\n\xC4\xA0t he");
    const char *order[] = {"ab", "aba", "abab"};
    vocab_seed("merge-order", order, 3, "ab a\na b\nab ab\n");
    const char *words[] = {"\u0120\u0120", "\u0120\u0120\u0120\u0120", "\u010a\u010a", "in", "\u0120a",
                           "\u00c3\u00a9", "caf\u00c3\u00a9", "'s", "12", "!!"};
    vocab_seed("words", words, 10, "\xC4\xA0 \xC4\xA0\n\xC4\xA0\xC4\xA0 \xC4\xA0\xC4\xA0\n"
               "\xC4\x8A \xC4\x8A\ni n\n\xC4\xA0 a\n\xC3\x83 \xC2\xA9\n");
    vocab_seed("bytes-only", NULL, 0, "");

    static const char *configs[][2] = {
        {"gpt2", "{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"], "
                 "\"attn_pdrop\": 0.1, \"bos_token_id\": 50256, \"embd_pdrop\": 0.1, \"eos_token_id\": "
                 "50256, \"initializer_range\": 0.02, \"layer_norm_epsilon\": 1e-05, \"model_type\": "
                 "\"gpt2\", \"n_ctx\": 1024, \"n_embd\": 768, \"n_head\": 12, \"n_layer\": 12, "
                 "\"n_positions\": 1024, \"resid_pdrop\": 0.1, \"vocab_size\": 50257}\n"},
        {"minimal", "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256}"},
        {"gelu-inner", "{\"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4, \"n_positions\": 8, "
                       "\"vocab_size\": 9, \"n_inner\": 10, \"activation_function\": \"gelu\", "
                       "\"layer_norm_epsilon\": 1e-6}"},
        {"inner-null", "{\"n_layer\": 48, \"n_head\": 25, \"n_embd\": 1600, \"n_positions\": 1024, "
                       "\"vocab_size\": 50257, \"n_inner\": null}"},
    };
    for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
        gpt2_config c;
        check(gpt2_config_parse("seed/config.json", configs[k][1], strlen(configs[k][1]), &c));
        write_seed("fuzz_gpt2_config", configs[k][0], configs[k][1], strlen(configs[k][1]));
    }
}

/* A CSV seed: fuzz_csv's two option bytes, then the text. */
static void csv_file(const char *name, uint8_t opt0, uint8_t opt1, const char *text)
{
    FILE *f = fopen(path("fuzz_csv", name), "wb");
    if (!f) {
        perror(name);
        exit(1);
    }
    fputc(opt0, f);
    fputc(opt1, f);
    fputs(text, f);
    fclose(f);
}

/* fuzz_csv's option bytes: label index (-8..7) and skip_rows (0..3) in
 * the second. */
#define CSV_OPT1(index, skip) ((uint8_t)(((index) + 8) | (skip) << 4))

static void csv_seeds(void)
{
    csv_file("header-auto.csv", 0, CSV_OPT1(-1, 0), "a,b,label\n1,2,0\n3.5,-4e2,1\n5,6,1\n");
    csv_file("no-header.csv", 0, CSV_OPT1(-1, 0), "1,2,0\n3,4,1\n");
    csv_file("quoted-crlf.csv", 0, CSV_OPT1(-1, 0),
             "\xEF\xBB\xBF\"x, y\",\"b\"\"q\",label\r\n\"1.5\", 2 ,\"cat, dog\"\r\n\r\n3,4,\"say \"\"hi\"\"\"\r\n");
    csv_file("strings-first.csv", 0, CSV_OPT1(0, 0), "species,w,h\nsetosa,1,2\nvirginica,3,4\nversicolor,5,6\n");
    csv_file("by-name.csv", 16, CSV_OPT1(0, 0), "id,label,f\n1,b,2\n2,a,3\n");
    csv_file("semicolon.csv", 4, CSV_OPT1(-2, 0), "a;y;b\n1;0;2\n3;1;4\n");
    csv_file("tab-detect.csv", 12, CSV_OPT1(-1, 0), "1\t2\t0\n3\t4\t1\n");
    csv_file("skip-sklearn.csv", 0, CSV_OPT1(-1, 1),
             "3,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n4.9,3.0,1.4,0.2,1\n6.3,3.3,6.0,2.5,2\n");
    csv_file("header-yes.csv", 1, CSV_OPT1(-1, 0), "1,2,3\n4,5,0\n");
    csv_file("numeric-labels.csv", 2, CSV_OPT1(-1, 0), "1,10\n2,9\n3,2\n4,-1\n5,2.0\n6,0x1p3\n");
}

/* An .npy file into buf (a header padded as numpy pads it); returns its
 * length. */
static size_t npy_bytes(uint8_t *buf, int major, const char *dict, const void *data, size_t len)
{
    size_t pre = major == 1 ? 10 : 12, n = strlen(dict);
    size_t hlen = (pre + n + 1 + 63) / 64 * 64 - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    for (size_t b = 0; b < pre - 8; b++) buf[8 + b] = (uint8_t)(hlen >> (8 * b));
    memcpy(buf + pre, dict, n);
    memset(buf + pre + n, ' ', hlen - n - 1);
    buf[pre + hlen - 1] = '\n';
    memcpy(buf + pre + hlen, data, len);
    return pre + hlen + len;
}

/* An .npy seed: the features file's length (2 bytes), it, the labels file. */
static void npy_pair(const char *name, int major, const char *x_dict, const void *x, size_t x_len,
                     const char *y_dict, const void *y, size_t y_len)
{
    uint8_t xb[512], yb[512];
    size_t xn = npy_bytes(xb, major, x_dict, x, x_len), yn = npy_bytes(yb, 1, y_dict, y, y_len);
    FILE *f = fopen(path("fuzz_npy", name), "wb");
    if (!f) {
        perror(name);
        exit(1);
    }
    fputc((int)(xn & 255), f);
    fputc((int)(xn >> 8), f);
    fwrite(xb, 1, xn, f);
    fwrite(yb, 1, yn, f);
    fclose(f);
}

static void npy_seeds(void)
{
    float f4[12];
    double f8[12];
    uint8_t u1[12];
    for (int k = 0; k < 12; k++) {
        f4[k] = (float)k / 4.0f - 1.0f;
        f8[k] = (double)k * 1.5 - 3.0;
        u1[k] = (uint8_t)(20 * k);
    }
    int64_t i8[4] = {0, 2, 1, 2};
    uint8_t yu1[4] = {0, 2, 1, 2};
    int16_t i2[4] = {3, 0, 255, 1};
    int32_t i4[4] = {1, 1, 0, 2};
    npy_pair("f4-i8.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", f4, sizeof f4,
             "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", i8, sizeof i8);
    npy_pair("f8-fortran-u1.npy", 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (4, 3), }", f8,
             sizeof f8, "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", yu1, sizeof yu1);
    npy_pair("u1-v2-i2.npy", 2, "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 3), }", u1, sizeof u1,
             "{'descr': '<i2', 'fortran_order': False, 'shape': (4,), }", i2, sizeof i2);
    npy_pair("f4-v3-i4-column.npy", 3, "{\"shape\": (4L, 3L), \"descr\": \"<f4\", \"fortran_order\": False}", f4,
             sizeof f4, "{'descr': '<i4', 'fortran_order': False, 'shape': (4, 1), }", i4, sizeof i4);
}

/* A float as F16 (rounded toward zero; the seeds' weights are normal
 * halves) or BF16 (its top half). */
static uint16_t to_half(float x, st_dtype dtype)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    if (dtype == ST_BF16) return (uint16_t)(b >> 16);
    uint32_t sign = (b >> 16) & 0x8000u;
    int e = (int)((b >> 23) & 0xff) - 127 + 15;
    if (e <= 0) return (uint16_t)sign; /* too small: zero */
    return (uint16_t)(sign | (uint32_t)e << 10 | ((b >> 13) & 0x3ffu));
}

/* The checkpoint of a random GPT for fuzz_gpt2_import's config, exported
 * by the library, then rewritten: dtype F32, F16 or BF16 (k % 3), with the
 * "transformer." prefix on every other tensor (prefix), and the buffers
 * and lm_head.weight older transformers saved (extras). */
static void gpt2_seed(const char *name, st_dtype dtype, int prefix, int extras)
{
    rw_gpt_config c = rw_gpt_config_default();
    c.vocab = 16, c.context = 4, c.n_layer = 1, c.n_head = 2, c.n_embd = 4, c.bias = 1;
    rw_model *m;
    check(rw_gpt_create(&c, &m));
    char folder[4096];
    snprintf(folder, sizeof folder, "%s/fuzz_gpt2_import", dir);
    mkdir(folder, 0755);
    snprintf(folder, sizeof folder, "%s/fuzz_gpt2_import/export.tmp", dir);
    check(rw_gpt2_export(m, folder));
    rw_model_free(m);
    char file[4200], conf[4200];
    snprintf(file, sizeof file, "%s/model.safetensors", folder);
    snprintf(conf, sizeof conf, "%s/config.json", folder);
    st_file f;
    check(st_read(file, &f));
    st_writer *w = st_writer_new();
    uint16_t *halves[64] = {0};
    for (int k = 0; k < f.count; k++) {
        const st_tensor *t = &f.tensors[k];
        char tname[128];
        snprintf(tname, sizeof tname, "%s%s", prefix && k % 2 ? "transformer." : "", t->name);
        const void *d = t->data;
        if (dtype != ST_F32) {
            halves[k] = malloc(2 * (size_t)t->count + 2);
            for (int64_t i = 0; i < t->count; i++) {
                float x;
                memcpy(&x, (const char *)t->data + 4 * i, 4);
                halves[k][i] = to_half(x, dtype);
            }
            d = halves[k];
        }
        check(st_writer_add(w, tname, dtype, t->ndim, t->shape, d));
    }
    static const uint8_t mask[16] = {1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1};
    static const float masked = -1e4f;
    const int64_t mshape[4] = {1, 1, 4, 4};
    if (extras) {
        check(st_writer_add(w, "h.0.attn.bias", ST_BOOL, 4, mshape, mask));
        check(st_writer_add(w, "h.0.attn.masked_bias", ST_F32, 0, NULL, &masked));
        /* wte as the file holds it: the head must equal it. */
        const st_tensor *wte = st_find(&f, "wte.weight");
        int k = (int)(wte - f.tensors);
        check(st_writer_add(w, "lm_head.weight", dtype, 2, wte->shape,
                            dtype == ST_F32 ? wte->data : (const void *)halves[k]));
    }
    check(st_writer_meta(w, "format", "pt"));
    check(st_writer_write(w, path("fuzz_gpt2_import", name)));
    st_writer_free(w);
    /* It imports beside the harness's config. */
    static const char config[] =
        "{\"model_type\": \"gpt2\", \"vocab_size\": 16, \"n_positions\": 4, \"n_embd\": 4, "
        "\"n_layer\": 1, \"n_head\": 2, \"layer_norm_epsilon\": 1e-5}";
    FILE *in = fopen(path("fuzz_gpt2_import", name), "rb");
    static char bytes[1 << 16];
    size_t len = in ? fread(bytes, 1, sizeof bytes, in) : 0;
    if (in) fclose(in);
    check(gpt2_import_memory("seed/config.json", config, strlen(config), "seed/model.safetensors",
                             bytes, len, &m));
    rw_model_free(m);
    for (int k = 0; k < 64; k++) free(halves[k]);
    st_file_free(&f);
    remove(file);
    remove(conf);
    remove(folder);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
        return 2;
    }
    dir = argv[1];
    int s1[] = {6, 5, 3}, s2[] = {4, 3, 3, 2}, s3[] = {8, 2};
    model("sparse.safetensors", s1, 2, 0.5, 0, RW_ACT_RELU);
    model("dense-last.safetensors", s1, 2, 0.5, 1, RW_ACT_TANH);
    model("dense.safetensors", s3, 1, 0.0, 0, RW_ACT_NONE);
    model("three-layers.safetensors", s2, 3, 0.3, 0, RW_ACT_GELU);
    nm_model("nm-1of4.safetensors");
    input_stage_model("input-feature-kept.safetensors");
    gpt_model("gpt-dense.safetensors", 0.0, 0);
    gpt_model("gpt-sparse-bias.safetensors", 0.5, 1);
    /* The "lm" object of a language model run's checkpoint note. */
    FILE *note = fopen(path("fuzz_lm_note", "note.json"), "w");
    if (!note) {
        perror("fuzz_lm_note/note.json");
        return 1;
    }
    fputs("{\"context\":64,\"steps\":2000,\"warmup_steps\":100,\"min_lr\":0.0001,"
          "\"eval_every\":250,\"eval_batches\":20,\"seed\":1,\"batch\":12,"
          "\"text\":\"0123456789abcdef\"}", note);
    fclose(note);
    containers();
    checkpoint("fresh.safetensors", RW_OPT_SGD, 0, 0, NULL);
    checkpoint("sgd-step2.safetensors", RW_OPT_SGD, 0, 2, NULL);
    checkpoint("adamw-step3.safetensors", RW_OPT_ADAMW, 1, 3, NULL);
    /* DST (the "dst" section): Hebbian growth with a window of 2 batches,
     * an update after every step (fresh, and after one update with a
     * batch in the window); SNFS's redistribution; GraNet's pruning. */
    rw_dst_config hebbian = rw_dst_config_preset(RW_DST_HEBBIAN);
    hebbian.update_every = 2;
    checkpoint("dst-hebbian-fresh.safetensors", RW_OPT_SGD, 0, 0, &hebbian);
    checkpoint("dst-hebbian-step3.safetensors", RW_OPT_SGD, 0, 3, &hebbian);
    rw_dst_config snfs = rw_dst_config_preset(RW_DST_SNFS);
    snfs.update_every = 1;
    checkpoint("dst-snfs-step2.safetensors", RW_OPT_ADAMW, 0, 2, &snfs);
    rw_dst_config granet = rw_dst_config_preset(RW_DST_GRANET);
    granet.update_every = 1;
    granet.final_sparsity = 0.8;
    checkpoint("dst-granet-fresh.safetensors", RW_OPT_SGD, 0, 0, &granet);
    /* Input-level DST (dst.inputs.closed): RigL keeping 3 of 6 inputs, an
     * update after every step, inputs going over the first half. */
    rw_dst_config inputs = rw_dst_config_preset(RW_DST_RIGL);
    inputs.update_every = 1;
    inputs.input_budget = 3;
    inputs.input_start = 0;
    checkpoint("dst-inputs-step3.safetensors", RW_OPT_SGD, 0, 3, &inputs);
    /* N:M training (the "nm" section): SR-STE after two steps, decay fresh. */
    nm_checkpoint("nm-srste-step2.safetensors", RW_NM_SRSTE, 2);
    nm_checkpoint("nm-decay-fresh.safetensors", RW_NM_DECAY, 0);

    uint8_t pixels[12] = {0, 255, 51, 102, 1, 2, 3, 4, 200, 100, 50, 25}, labels[3] = {2, 0, 1};
    uint32_t idims[3] = {3, 2, 2}, ldims[1] = {3};
    idx_file("images", 0, 3, idims, pixels, 12, 0);
    idx_file("images.gz", 1, 3, idims, pixels, 12, 0);
    idx_file("labels", 0, 1, ldims, labels, 3, 1);
    idx_file("labels.gz", 1, 1, ldims, labels, 3, 1);
    text_seeds();
    csv_seeds();
    npy_seeds();
    gpt2_seed("f32", ST_F32, 0, 0);
    gpt2_seed("f16-prefixed", ST_F16, 1, 0);
    gpt2_seed("bf16-buffers", ST_BF16, 0, 1);
    gpt2_seed("f32-prefixed-buffers", ST_F32, 1, 1);
    return 0;
}
