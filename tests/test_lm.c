/* Language models through the library: one-token decoding with the KV
 * cache against the whole-sequence forward pass, the evaluation's loss
 * against a direct computation, a stopped and resumed run against one
 * never stopped (bit for bit), model files of a GPT, and the errors of
 * rw_text and the run. The text is made here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "nn/model.h"
#include "nn/network.h"
#include "run/run_internal.h"
#include "testutil.h"

/* A few KB of text with structure a small model can pick up. */
static char *make_text(size_t *len)
{
    static const char *words[] = {"the ", "rain ", "in ", "spain ", "falls ", "mainly ", "on ",
                                  "plain. ", "\n"};
    size_t cap = 6000, n = 0;
    char *s = malloc(cap + 16);
    rng_state r;
    rng_seed(&r, 5);
    while (n < cap) {
        const char *w = words[rng_below(&r, 9)];
        size_t k = strlen(w);
        memcpy(s + n, w, k);
        n += k;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* Experts in the tiny GPTs the resume test builds: 0 none, else the gate + 1. */
static int tiny_moe;
/* Their attention pattern (NULL: dense): routing's centroids and dma's mask
 * parameters must come back from a checkpoint too. */
static const char *tiny_attention;

static rw_model *tiny_gpt(double sparsity, int context)
{
    rw_gpt_config g = rw_gpt_config_default();
    if (tiny_moe) {
        g.moe_experts = 3;
        g.moe_gate = tiny_moe - 1;
        g.moe_top_k = tiny_moe - 1 == RW_MOE_SOFTMAX ? 2 : 1;
        g.moe_capacity = 1.0;
    }
    g.n_layer = 2;
    g.n_head = 2;
    g.n_embd = 16;
    g.context = context;
    g.sparsity = sparsity;
    g.bias = 1;
    g.attention = tiny_attention;
    rw_model *m = NULL;
    assert_int_equal(rw_gpt_create(&g, &m), RW_OK);
    return m;
}

/* The logits of every position of one sequence by the batch forward pass. */
static float *full_logits(const rw_model *m, const int32_t *tok, int T)
{
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, T, 0), RW_OK);
    ws.tokens = tok;
    ws.n = T;
    ws.seq_len = T;
    ws.pos0 = 0;
    network_forward(m, &ws);
    int V = rw_model_classes(m);
    float *out = malloc(sizeof(float) * (size_t)V * T);
    const float *lg = network_logits(m, &ws);
    for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) out[(size_t)t * V + v] = lg[(size_t)v * ws.bp + t];
    workspace_free(&ws);
    return out;
}

/* One token at a time with the cache: the same logits at every position. */
static void test_kv_cache_matches_full_pass(void **state)
{
    (void)state;
    for (int sparse = 0; sparse < 2; sparse++) {
        rw_model *m = tiny_gpt(sparse ? 0.8 : 0.0, 12);
        int32_t tok[12];
        for (int t = 0; t < 12; t++) tok[t] = (t * 37 + 11) % 256;
        float *ref = full_logits(m, tok, 12);
        workspace ws;
        assert_int_equal(workspace_init_vector(&ws, m), RW_OK);
        int V = rw_model_classes(m);
        double worst = 0;
        for (int t = 0; t < 12; t++) {
            ws.tokens = tok + t;
            ws.n = 1;
            ws.seq_len = 1;
            ws.pos0 = t;
            for (int l = 0; l < m->n_layers; l++) phase_forward_vector(m, &ws, l);
            double d = tu_max_rel_diff(network_logits(m, &ws), ref + (size_t)t * V, (size_t)V);
            worst = d > worst ? d : worst;
        }
        if (worst > 1e-5) fail_msg("%s: cached decoding differs by %g", sparse ? "sparse" : "dense",
                                   worst);
        workspace_free(&ws);
        free(ref);
        rw_model_free(m);
    }
}

/* Greedy generation picks the argmax of the full pass at each step, also
 * past the context (where it restarts from the last context / 2 tokens). */
static void test_greedy_generation(void **state)
{
    (void)state;
    rw_model *m = tiny_gpt(0.5, 8);
    int32_t prompt[3] = {10, 20, 30}, out[14];
    assert_int_equal(rw_lm_generate(m, prompt, 3, 14, 0.0f, 0, 1, out), RW_OK);
    int32_t seq[17];
    memcpy(seq, prompt, sizeof prompt);
    memcpy(seq + 3, out, sizeof out);
    int V = rw_model_classes(m);
    /* seq[k] for k < 9 follows seq[0, k) (within the context of 8); then
     * the cache is full and seq[9] follows the last 4 tokens, seq[5, 9). */
    for (int k = 3; k <= 9; k++) {
        int from = k <= 8 ? 0 : 5;
        float *lg = full_logits(m, seq + from, k - from);
        const float *last = lg + (size_t)(k - from - 1) * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (last[v] > last[best]) best = v;
        assert_int_equal(best, seq[k]);
        free(lg);
    }
    /* Same seed, same tokens; another seed with sampling, other tokens. */
    int32_t again[14], other[14], sampled[14];
    assert_int_equal(rw_lm_generate(m, prompt, 3, 14, 0.0f, 0, 99, again), RW_OK);
    assert_memory_equal(out, again, sizeof out);
    assert_int_equal(rw_lm_generate(m, prompt, 3, 14, 1.0f, 5, 1, sampled), RW_OK);
    assert_int_equal(rw_lm_generate(m, prompt, 3, 14, 1.0f, 5, 2, other), RW_OK);
    assert_true(memcmp(sampled, other, sizeof other) != 0);
    for (int k = 0; k < 14; k++) assert_true(sampled[k] >= 0 && sampled[k] < 256);
    /* Bad arguments. */
    int32_t bad[1] = {256};
    assert_int_equal(rw_lm_generate(m, bad, 1, 1, 0.0f, 0, 1, out), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "outside the vocabulary"));
    assert_int_equal(rw_lm_generate(m, prompt, 0, 1, 0.0f, 0, 1, out), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_lm_generate(m, prompt, 3, 1, -1.0f, 0, 1, out), RW_ERR_INVALID_ARGUMENT);
    rw_model_free(m);
}

/* Generation runs in one parallel region whose threads share each token's
 * phases and take turns sampling: 1, 2 and 3 threads give the same
 * tokens, greedy and sampled, past the context (the cache restarts), for
 * a sparse and a dense model wide enough that the threads do run. */
static void test_generation_same_for_any_threads(void **state)
{
    (void)state;
    int before = rw_get_num_threads();
    for (int sparse = 0; sparse < 2; sparse++) {
        rw_gpt_config g = rw_gpt_config_default();
        g.n_layer = 2;
        g.n_head = 2;
        g.n_embd = 128;
        g.context = 8;
        g.sparsity = sparse ? 0.5 : 0.0;
        rw_model *m = NULL;
        assert_int_equal(rw_gpt_create(&g, &m), RW_OK);
        rw_set_num_threads(2);
        assert_true(network_vector_worth_threading(m));
        int32_t prompt[3] = {10, 20, 30}, want[2][21], got[21];
        for (int threads = 1; threads <= 3; threads++) {
            rw_set_num_threads(threads);
            for (int sampled = 0; sampled < 2; sampled++) {
                int32_t *out = threads == 1 ? want[sampled] : got;
                assert_int_equal(rw_lm_generate(m, prompt, 3, 21, sampled ? 0.9f : 0.0f,
                                                sampled ? 20 : 0, 5, out),
                                 RW_OK);
                if (threads > 1) assert_memory_equal(got, want[sampled], sizeof got);
            }
        }
        rw_model_free(m);
    }
    rw_set_num_threads(before);
}

/* Draws follow softmax(logits / temperature) over the top k. */
static void test_sampling_distribution(void **state)
{
    (void)state;
    const float base[5] = {0.0f, 1.0f, 2.0f, 3.0f, -1.0f};
    struct {
        float temperature;
        int top_k;
    } cases[] = {{1.0f, 0}, {0.5f, 0}, {2.0f, 2}, {1.0f, 5}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double want[5], z = 0;
        float cut = cases[c].top_k == 2 ? 2.0f : -INFINITY;
        for (int v = 0; v < 5; v++)
            z += want[v] = base[v] >= cut ? exp(base[v] / cases[c].temperature) : 0;
        int count[5] = {0};
        rng_state rng;
        rng_seed(&rng, 11);
        enum { DRAWS = 40000 };
        for (int i = 0; i < DRAWS; i++) {
            float logits[5], sorted[5];
            memcpy(logits, base, sizeof logits);
            int32_t t = lm_sample_token(logits, 5, cases[c].temperature, cases[c].top_k, sorted, &rng);
            assert_true(t >= 0 && t < 5);
            count[t]++;
        }
        for (int v = 0; v < 5; v++) {
            double got = (double)count[v] / DRAWS, p = want[v] / z;
            /* Five standard deviations of a frequency over 40000 draws. */
            if (fabs(got - p) > 5 * sqrt(p * (1 - p) / DRAWS) + 1e-9)
                fail_msg("temperature %g, top-k %d: token %d drawn %.4f, expected %.4f",
                         (double)cases[c].temperature, cases[c].top_k, v, got, p);
        }
    }
    float logits[5], sorted[5];
    memcpy(logits, base, sizeof logits);
    rng_state rng;
    rng_seed(&rng, 1);
    assert_int_equal(lm_sample_token(logits, 5, 0.0f, 0, sorted, &rng), 3);
}

static int cmp_floats_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* top-k's cut is the k-th largest logit: the selection against a sort, on
 * random values, many ties, sorted and reversed runs. */
static void test_kth_largest(void **state)
{
    (void)state;
    enum { N = 301 };
    float x[N], sorted[N];
    rng_state rng;
    rng_seed(&rng, 5);
    for (int shape = 0; shape < 5; shape++)
        for (int round = 0; round < 20; round++) {
            int n = 1 + (int)(rng_uniform(&rng) * N);
            for (int i = 0; i < n; i++) {
                float u = (float)rng_uniform(&rng);
                x[i] = shape == 0 ? u : shape == 1 ? (float)(int)(u * 4) /* ties */
                       : shape == 2 ? (float)i : shape == 3 ? (float)-i : 1.0f;
            }
            memcpy(sorted, x, sizeof(float) * (size_t)n);
            qsort(sorted, (size_t)n, sizeof *sorted, cmp_floats_desc);
            int k = 1 + (int)(rng_uniform(&rng) * n);
            float got = lm_kth_largest(x, n, k);
            if (got != sorted[k - 1])
                fail_msg("shape %d, n %d, k %d: %g, sorted says %g", shape, n, k, (double)got,
                         (double)sorted[k - 1]);
        }
}

/* rw_lm_evaluate's loss is the mean over every validation token of its
 * cross-entropy given the tokens before it in its window. */
static void test_evaluate_matches_direct_loss(void **state)
{
    (void)state;
    size_t len;
    char *s = make_text(&len);
    rw_tokenizer *tok;
    rw_text *text;
    assert_int_equal(rw_tokenizer_bytes(&tok), RW_OK);
    assert_int_equal(rw_text_from_memory("made.txt", s, len, tok, 0.1, 16, &text), RW_OK);
    rw_model *m = tiny_gpt(0.0, 16);
    rw_lm_eval e;
    assert_int_equal(rw_lm_evaluate(m, text, 1, 16, 3, &e), RW_OK);
    int64_t nval = rw_text_tokens(text, 1);
    assert_int_equal(e.tokens, nval - 1);
    /* Directly: window after window of the validation bytes. */
    size_t n_train = len - (size_t)nval;
    const char *val = s + n_train;
    double sum = 0;
    int V = 256;
    for (int64_t w0 = 0; w0 + 1 < nval; w0 += 16) {
        int T = nval - 1 - w0 < 16 ? (int)(nval - 1 - w0) : 16;
        int32_t tok_in[16];
        for (int t = 0; t < T; t++) tok_in[t] = (uint8_t)val[w0 + t];
        float *lg = full_logits(m, tok_in, T);
        for (int t = 0; t < T; t++) {
            const float *row = lg + (size_t)t * V;
            double mx = row[0], z = 0;
            for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
            for (int v = 0; v < V; v++) z += exp(row[v] - mx);
            sum += log(z) + mx - row[(uint8_t)val[w0 + t + 1]];
        }
        free(lg);
    }
    double direct = sum / (double)(nval - 1);
    if (fabs(direct - e.loss) > 1e-5 * fabs(direct))
        fail_msg("evaluate %.8f, direct %.8f", e.loss, direct);
    /* Bytes: one byte a token, so bits per byte is the loss in bits. */
    assert_true(fabs(e.bits_per_byte - e.loss / log(2.0)) < 1e-9);
    /* Too long a context for the model. */
    assert_int_equal(rw_lm_evaluate(m, text, 1, 17, 3, &e), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "1 to 16 tokens"));
    rw_model_free(m);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    free(s);
}

typedef struct {
    int64_t stop_at;
    int reports;
} stopper;

static int stop_report(const rw_lm_report *r, void *user)
{
    stopper *s = user;
    s->reports++;
    assert_true(isfinite(r->val_loss) && r->val_loss > 0);
    return s->stop_at > 0 && r->step >= s->stop_at;
}

/* A RigL run stopped at step 20 and resumed from its checkpoint ends with
 * the model of a run never stopped, byte for byte (tiny_moe: with experts,
 * their router or centroids). */
static void resume_is_bit_identical(void)
{
    size_t len;
    char *s = make_text(&len);
    rw_tokenizer *tok;
    rw_text *text;
    assert_int_equal(rw_tokenizer_bytes(&tok), RW_OK);
    assert_int_equal(rw_text_from_memory("made.txt", s, len, tok, 0.1, 16, &text), RW_OK);
    rw_lm_schedule sch = rw_lm_schedule_default();
    sch.context = 16;
    sch.steps = 40;
    sch.warmup_steps = 5;
    sch.eval_every = 10;
    sch.eval_batches = 2;
    rw_dst_config dst = rw_dst_config_preset(RW_DST_RIGL);
    dst.update_every = 7;
    char whole[256], part[256], ckpt[256];
    snprintf(whole, sizeof whole, "%s", tu_temp_path("lm-whole.safetensors"));
    snprintf(part, sizeof part, "%s", tu_temp_path("lm-part.safetensors"));
    snprintf(ckpt, sizeof ckpt, "%s", tu_temp_path("lm.ckpt"));
    for (int stopped = 0; stopped < 2; stopped++) {
        rw_model *m = tiny_gpt(0.7, 16);
        rw_run_config c = rw_run_config_default();
        c.train.optimizer = RW_OPT_ADAMW;
        c.train.lr = 3e-3f;
        c.train.batch = 4;
        c.train.weight_decay = 0.1f;
        c.train.clip_norm = 1.0f;
        c.dst = &dst;
        c.lm = &sch;
        c.out = stopped ? part : whole;
        c.checkpoint = stopped ? ckpt : NULL;
        stopper st = {stopped ? 20 : 0, 0};
        c.on_lm_report = stop_report;
        c.user = &st;
        rw_run *r;
        assert_int_equal(rw_run_new(m, &c, &r), RW_OK);
        rw_run_result res;
        rw_lm_eval fin;
        assert_int_equal(rw_run_train_text(r, text, &res, &fin), RW_OK);
        if (!stopped) {
            assert_int_equal(res.steps, 40);
            assert_int_equal(st.reports, 4); /* 10, 20, 30 and the end */
            assert_true(res.updates > 0);
        } else {
            assert_true(res.stopped);
            assert_int_equal(res.checkpoint_step, 20);
        }
        rw_run_free(r);
        rw_model_free(m);
    }
    /* Resume the stopped run. */
    rw_model *m;
    rw_run *r;
    assert_int_equal(rw_run_resume(ckpt, 0, &m, &r, NULL), RW_OK);
    rw_run_config c = rw_run_config_default();
    c.lm = &sch;
    c.dst = &dst;
    c.out = part;
    assert_int_equal(rw_run_configure(r, &c), RW_OK);
    rw_run_result res;
    rw_lm_eval fin;
    assert_int_equal(rw_run_train_text(r, text, &res, &fin), RW_OK);
    assert_int_equal(res.steps, 40);
    rw_run_free(r);
    rw_model_free(m);
    /* The same bytes. */
    FILE *a = fopen(whole, "rb"), *b = fopen(part, "rb");
    assert_non_null(a);
    assert_non_null(b);
    int same = 1, ca, cb;
    do {
        ca = fgetc(a);
        cb = fgetc(b);
        same &= ca == cb;
    } while (ca != EOF && cb != EOF);
    fclose(a);
    fclose(b);
    if (!same && getenv("RW_TEST_KEEP")) fail_msg("differ: %s %s", whole, part);
    assert_true(same);
    /* Another text: refused. */
    rw_text *other;
    assert_int_equal(rw_text_from_memory("other.txt", s + 7, len - 7, tok, 0.1, 16, &other), RW_OK);
    assert_int_equal(rw_run_resume(ckpt, 0, &m, &r, NULL), RW_OK);
    assert_int_equal(rw_run_configure(r, &c), RW_OK);
    assert_int_equal(rw_run_train_text(r, other, &res, &fin), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "other text"));
    rw_run_free(r);
    rw_model_free(m);
    rw_text_free(other);
    unlink(whole);
    unlink(part);
    unlink(ckpt);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    free(s);
}

static void test_resume_is_bit_identical(void **state)
{
    (void)state;
    for (tiny_moe = 0; tiny_moe <= 2; tiny_moe++) resume_is_bit_identical();
    tiny_moe = 0;
    const char *patterns[] = {"routing:2", "dma:3"};
    for (int i = 0; i < 2; i++) {
        tiny_attention = patterns[i];
        resume_is_bit_identical();
    }
    tiny_attention = NULL;
}

/* A GPT round-trips through a model file (format 2) with its info. */
static void test_model_file_round_trip(void **state)
{
    (void)state;
    rw_model *m = tiny_gpt(0.6, 10);
    assert_int_equal(rw_model_set_info(m, "tokenizer", "bytes"), RW_OK);
    const char *path = tu_temp_path("gpt.safetensors");
    assert_int_equal(rw_model_save(m, path), RW_OK);
    rw_model *back;
    assert_int_equal(rw_model_load(path, &back), RW_OK);
    unlink(path);
    assert_string_equal(rw_model_get_info(back, "tokenizer"), "bytes");
    assert_int_equal(rw_model_context(back), 10);
    int32_t tok[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    float *a = full_logits(m, tok, 10), *b = full_logits(back, tok, 10);
    assert_memory_equal(a, b, sizeof(float) * 256 * 10);
    free(a);
    free(b);
    rw_model_free(back);
    rw_model_free(m);
}

static void test_text_and_run_errors(void **state)
{
    (void)state;
    rw_tokenizer *tok;
    rw_text *text;
    assert_int_equal(rw_tokenizer_bytes(&tok), RW_OK);
    assert_int_equal(rw_text_from_memory("empty.txt", "", 0, tok, 0.1, 8, &text), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "empty.txt"));
    assert_int_equal(rw_text_from_memory("short.txt", "abcdefghij", 10, tok, 0.1, 8, &text),
                     RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "short.txt"));
    assert_int_equal(rw_text_load("/nonexistent/x.txt", tok, 0.1, 8, &text), RW_ERR_IO);
    assert_non_null(strstr(rw_last_error(), "/nonexistent/x.txt"));
    rw_tokenizer *t2;
    assert_int_equal(rw_tokenizer_open("wordpiece", &t2), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "bytes or bpe:DIR"));
    assert_int_equal(rw_tokenizer_open("bpe:/nonexistent", &t2), RW_ERR_IO);
    /* A classifier is no language model. */
    int sizes[3] = {4, 5, 3};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 2;
    mc.sparsity = 0;
    rw_model *mlp;
    assert_int_equal(rw_model_create(&mc, &mlp), RW_OK);
    assert_int_equal(rw_model_context(mlp), 0);
    size_t len;
    char *s = make_text(&len);
    assert_int_equal(rw_text_from_memory("made.txt", s, len, tok, 0.1, 8, &text), RW_OK);
    rw_lm_eval e;
    assert_int_equal(rw_lm_evaluate(mlp, text, 1, 8, 2, &e), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "not a language model"));
    /* A run without a schedule cannot train on text, nor one with it on a dataset. */
    rw_model *m = tiny_gpt(0.0, 8);
    rw_run_config c = rw_run_config_default();
    c.train.optimizer = RW_OPT_ADAMW;
    rw_run *r;
    assert_int_equal(rw_run_new(m, &c, &r), RW_OK);
    rw_run_result res;
    assert_int_equal(rw_run_train_text(r, text, &res, &e), RW_ERR_INVALID_ARGUMENT);
    rw_run_free(r);
    rw_lm_schedule sch = rw_lm_schedule_default();
    sch.context = 8;
    sch.steps = 0;
    c.lm = &sch;
    assert_int_equal(rw_run_new(m, &c, &r), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "steps"));
    rw_model_free(m);
    rw_model_free(mlp);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    free(s);
}

/* A GPT's file with `from` replaced by `to` in its layers metadata must be
 * refused with a message holding `needle` and the file's name. */
static void expect_graph_refused(const char *from, const char *to, const char *needle)
{
    rw_gpt_config g = rw_gpt_config_default();
    g.vocab = 12;
    g.context = 4;
    g.n_layer = 1;
    g.n_head = 2;
    g.n_embd = 4;
    rw_model *m;
    assert_int_equal(rw_gpt_create(&g, &m), RW_OK);
    char good[256];
    snprintf(good, sizeof good, "%s", tu_temp_path("gpt-good.safetensors"));
    assert_int_equal(rw_model_save(m, good), RW_OK);
    rw_model_free(m);
    st_file f;
    assert_int_equal(st_read(good, &f), RW_OK);
    st_writer *w = st_writer_new();
    for (int i = 0; i < f.meta_count; i++) {
        const char *v = f.meta_values[i];
        char *edited = NULL;
        if (!strcmp(f.meta_keys[i], "layers")) {
            const char *at = strstr(v, from);
            if (!at) fail_msg("'%s' is not in the layers metadata", from);
            size_t head = (size_t)(at - v);
            edited = malloc(strlen(v) + strlen(to) + 1);
            memcpy(edited, v, head);
            strcpy(edited + head, to);
            strcat(edited, at + strlen(from));
            v = edited;
        }
        assert_int_equal(st_writer_meta(w, f.meta_keys[i], v), RW_OK);
        free(edited);
    }
    for (int i = 0; i < f.count; i++) {
        const st_tensor *t = &f.tensors[i];
        assert_int_equal(st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data), RW_OK);
    }
    const char *bad = tu_temp_path("gpt-bad.safetensors");
    assert_int_equal(st_writer_write(w, bad), RW_OK);
    st_writer_free(w);
    st_file_free(&f);
    rw_model *back = NULL;
    rw_status st = rw_model_load(bad, &back);
    unlink(bad);
    unlink(good);
    if (st != RW_ERR_FORMAT || !strstr(rw_last_error(), needle) ||
        !strstr(rw_last_error(), "gpt-bad.safetensors"))
        fail_msg("expected a format error with \"%s\", got %d: %s", needle, st, rw_last_error());
    assert_null(back);
}

/* The graph checks of a language model, on edited files. */
static void test_hostile_gpt_files(void **state)
{
    (void)state;
    expect_graph_refused("\"heads\":2,\"context\":4", "\"heads\":2,\"context\":2",
                         "layer blocks.0.attn attends over 2 positions but the model's embeddings "
                         "have 4");
    expect_graph_refused("\"name\":\"blocks.0.attn.qkv\",\"kind\":\"dense\",\"in\":4,",
                         "\"name\":\"blocks.0.attn.qkv\",\"kind\":\"embedding\",\"vocab\":12,"
                         "\"context\":4,\"in\":4,",
                         "layer blocks.0.attn.qkv reads 4 features from blocks.0.ln_1 but takes 0");
    expect_graph_refused("\"kind\":\"lm_head\",\"in\":4,\"out\":12,\"activation\":\"none\","
                         "\"tied_to\":\"embed\"",
                         "\"kind\":\"dense\",\"in\":4,\"out\":10,\"activation\":\"none\","
                         "\"bias\":false",
                         "the model's last layer lm_head gives 10 logits, not one per token of the "
                         "embedding's 12");
}

/* A workspace made with one thread and used with two: attention's work
 * buffers were sized for one (AddressSanitizer caught the overflow). */
static void test_threads_raised_after_workspace(void **state)
{
    (void)state;
    rw_set_num_threads(1);
    rw_model *m = tiny_gpt(0.6, 16);
    workspace ws;
    assert_int_equal(workspace_init(&ws, m, 48, 1), RW_OK);
    rw_set_num_threads(2);
    int32_t tok[48];
    for (int j = 0; j < 48; j++) tok[j] = (j * 37) % 256;
    ws.tokens = tok;
    ws.n = 48;
    ws.seq_len = 16;
    ws.pos0 = 0;
    float *before = full_logits(m, tok, 16);
    for (int i = 0; i < 3; i++) network_forward(m, &ws);
    /* The first sequence's logits are those of the sequence alone. */
    int V = rw_model_classes(m);
    for (int t = 0; t < 16; t++)
        for (int v = 0; v < V; v++)
            assert_true(fabsf(network_logits(m, &ws)[(size_t)v * ws.bp + t] -
                              before[(size_t)t * V + v]) < 1e-5f);
    free(before);
    workspace_free(&ws);
    rw_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_cache_matches_full_pass),
        cmocka_unit_test(test_greedy_generation),
        cmocka_unit_test(test_generation_same_for_any_threads),
        cmocka_unit_test(test_sampling_distribution),
        cmocka_unit_test(test_kth_largest),
        cmocka_unit_test(test_evaluate_matches_direct_loss),
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_model_file_round_trip),
        cmocka_unit_test(test_text_and_run_errors),
        cmocka_unit_test(test_threads_raised_after_workspace),
        cmocka_unit_test(test_hostile_gpt_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
