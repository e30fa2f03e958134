/* rewire bench lm: training tokens/s and batch-1 generation tokens/s of a
 * GPT at given sparsities of its block maps, the dense path (OpenBLAS)
 * beside the sparse ones, through the public API alone. The text is
 * random bytes made here: speed does not depend on what is learned. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rewire.h"

#define MAX_SPARSITIES 32
#define MAX_MODELS 16

typedef struct {
    const char *sparsities, *models;
    int layers, heads, dim, context, batch, steps, repeats, gen_tokens, threads, json, seed;
    int eval_batch, eval_context, eval_batches;
} lm_bench_flags;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* Training tokens/s of `steps` AdamW steps (the run's own clock: steps
 * only), and generation tokens/s of gen_tokens tokens from a one-token
 * prompt; medians over the repeats. */
static int measure(const lm_bench_flags *f, double sparsity, const rw_text *text, double *train,
                   double *gen, double *best_train)
{
    double tr[64], ge[64];
    *best_train = 0;
    for (int r = 0; r < f->repeats; r++) {
        rw_gpt_config g = rw_gpt_config_default();
        g.context = f->context;
        g.n_layer = f->layers;
        g.n_head = f->heads;
        g.n_embd = f->dim;
        g.sparsity = sparsity;
        g.seed = (uint64_t)(f->seed + r);
        rw_model *m = NULL;
        rw_run *run = NULL;
        if (rw_gpt_create(&g, &m) != RW_OK) return report_failure("bench lm");
        rw_lm_schedule s = rw_lm_schedule_default();
        s.context = f->context;
        s.steps = f->steps;
        s.warmup_steps = 0;
        s.eval_every = 0;
        s.seed = (uint64_t)(f->seed + r);
        rw_run_config c = rw_run_config_default();
        c.train.optimizer = RW_OPT_ADAMW;
        c.train.lr = 1e-3f;
        c.train.beta2 = 0.99f;
        c.train.weight_decay = 0.1f;
        c.train.clip_norm = 1.0f;
        c.train.batch = f->batch;
        c.lm = &s;
        rw_run_result res;
        rw_lm_eval fin;
        if (rw_run_new(m, &c, &run) != RW_OK || rw_run_train_text(run, text, &res, &fin) != RW_OK) {
            rw_run_free(run);
            rw_model_free(m);
            return report_failure("bench lm");
        }
        tr[r] = res.train_samples_per_second;
        if (tr[r] > *best_train) *best_train = tr[r];
        int32_t prompt = 'a', *out = malloc(sizeof(int32_t) * (size_t)f->gen_tokens);
        double t0 = now();
        rw_status st = out ? rw_lm_generate(m, &prompt, 1, f->gen_tokens, 1.0f, 0, 1, out)
                           : RW_ERR_NO_MEMORY;
        ge[r] = f->gen_tokens / (now() - t0);
        free(out);
        rw_run_free(run);
        rw_model_free(m);
        if (st != RW_OK) return report_failure("bench lm");
    }
    *train = median(tr, f->repeats);
    *gen = median(ge, f->repeats);
    return 0;
}

/* len random bytes as a text (the bytes tokenizer: a token per byte), the
 * last val_fraction of them the validation split. */
static int random_text(size_t len, double val_fraction, int context, unsigned char **bytes,
                       rw_tokenizer **tok, rw_text **text)
{
    *bytes = malloc(len);
    if (!*bytes) return report_failure("bench lm");
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        (*bytes)[i] = (unsigned char)(x >> 32);
    }
    if (rw_tokenizer_bytes(tok) != RW_OK ||
        rw_text_from_memory("random bytes", *bytes, len, *tok, val_fraction, context, text) != RW_OK)
        return report_failure("bench lm");
    return 0;
}

typedef struct {
    const char *path;
    rw_model *model;
    double load_s, gen[64], eval[64];
} bench_model;

/* --models: trained or pruned model files side by side, the first the
 * baseline. Each is loaded once (the seconds reported apart); then, round
 * after round, every model in turn generates (batch 1, KV cache, greedy)
 * and evaluates batches of eval_batch windows, so a shared machine slows
 * them alike. Speed depends on the shapes and the patterns, not on what
 * the weights say, so the text is random bytes. */
static int bench_models(const lm_bench_flags *f)
{
    char list[4096];
    if (strlen(f->models) >= sizeof list) {
        fprintf(stderr, "rewire bench lm: --models is longer than %zu bytes\n", sizeof list - 1);
        return 2;
    }
    strcpy(list, f->models);
    bench_model m[MAX_MODELS];
    int n = 0, rc = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == MAX_MODELS) {
            fprintf(stderr, "rewire bench lm: --models names more than %d files\n", MAX_MODELS);
            return 2;
        }
        m[n++] = (bench_model){.path = tok};
    }
    if (n == 0) {
        fprintf(stderr, "rewire bench lm: --models expects FILE[,FILE...]\n");
        return 2;
    }
    int context = f->eval_context;
    for (int i = 0; i < n && !rc; i++) {
        double t0 = now();
        if (rw_model_load(m[i].path, &m[i].model) != RW_OK) {
            rc = report_failure("bench lm");
            break;
        }
        m[i].load_s = now() - t0;
        int mc = rw_model_context(m[i].model);
        if (mc == 0) {
            fprintf(stderr, "rewire bench lm: %s is not a language model\n", m[i].path);
            rc = 2;
        } else if (mc < context) {
            fprintf(stderr, "rewire bench lm: --eval-context %d is longer than %s's context %d\n",
                    context, m[i].path, mc);
            rc = 2;
        }
    }
    unsigned char *bytes = NULL;
    rw_tokenizer *tok = NULL;
    rw_text *text = NULL;
    if (!rc)
        rc = random_text(2 * ((size_t)f->eval_batch * (size_t)context * (size_t)f->eval_batches + 1),
                         0.5, context, &bytes, &tok, &text);
    int32_t *out = rc ? NULL : malloc(sizeof(int32_t) * (size_t)f->gen_tokens);
    if (!rc && !out) rc = report_failure("bench lm");
    int64_t eval_tokens = 0;
    for (int r = 0; r < f->repeats && !rc; r++) {
        for (int i = 0; i < n && !rc; i++) {
            int32_t prompt = 'a';
            double t0 = now();
            if (rw_lm_generate(m[i].model, &prompt, 1, f->gen_tokens, 0.0f, 0, 1, out) != RW_OK) {
                rc = report_failure("bench lm");
                break;
            }
            m[i].gen[r] = f->gen_tokens / (now() - t0);
            rw_lm_eval ev;
            t0 = now();
            if (rw_lm_evaluate(m[i].model, text, 1, context, f->eval_batch, &ev) != RW_OK) {
                rc = report_failure("bench lm");
                break;
            }
            m[i].eval[r] = (double)ev.tokens / (now() - t0);
            eval_tokens = ev.tokens;
            if (!f->json)
                fprintf(stderr, "round %d %s: generate %.1f tokens/s, eval %.0f tokens/s\n", r + 1,
                        m[i].path, m[i].gen[r], m[i].eval[r]);
        }
    }
    if (!rc) {
        if (!f->json)
            printf("%d rounds, %d threads, %s kernels; generate: %d tokens, batch 1, KV cache; "
                   "eval: batches of %d windows of %d tokens (%lld tokens)\n"
                   "%-32s %7s %14s %9s %9s %14s %9s %9s\n",
                   f->repeats, rw_get_num_threads(), rw_kernel_isa(), f->gen_tokens,
                   f->eval_batch, context, (long long)eval_tokens, "model", "load s",
                   "gen tokens/s", "range", "x first", "eval tokens/s", "range", "x first");
        double g0 = 0, e0 = 0;
        for (int i = 0; i < n; i++) {
            double glo = m[i].gen[0], ghi = glo, elo = m[i].eval[0], ehi = elo;
            for (int r = 1; r < f->repeats; r++) {
                if (m[i].gen[r] < glo) glo = m[i].gen[r];
                if (m[i].gen[r] > ghi) ghi = m[i].gen[r];
                if (m[i].eval[r] < elo) elo = m[i].eval[r];
                if (m[i].eval[r] > ehi) ehi = m[i].eval[r];
            }
            double g = median(m[i].gen, f->repeats), e = median(m[i].eval, f->repeats);
            if (i == 0) g0 = g, e0 = e;
            if (f->json) {
                json_t *o = json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:i, s:i, "
                                      "s:i, s:i, s:i, s:s}",
                                      "bench", "lm_models", "model", m[i].path, "load_seconds",
                                      m[i].load_s, "generate_tokens_per_second", g,
                                      "generate_min", glo, "generate_max", ghi,
                                      "eval_tokens_per_second", e, "eval_min", elo, "eval_max", ehi,
                                      "eval_batch", f->eval_batch, "eval_context", context,
                                      "gen_tokens", f->gen_tokens, "repeats", f->repeats,
                                      "threads", rw_get_num_threads(), "isa", rw_kernel_isa());
                json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
                printf("\n");
                json_decref(o);
            } else {
                char gr[32], er[32];
                snprintf(gr, sizeof gr, "%.1f-%.1f", glo, ghi);
                snprintf(er, sizeof er, "%.0f-%.0f", elo, ehi);
                printf("%-32s %7.2f %14.1f %9s %9.2f %14.0f %9s %9.2f\n", m[i].path, m[i].load_s,
                       g, gr, g / g0, e, er, e / e0);
            }
        }
    }
    free(out);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    free(bytes);
    for (int i = 0; i < n; i++) rw_model_free(m[i].model);
    return rc;
}

int bench_lm(int argc, char **argv)
{
    lm_bench_flags f = {.sparsities = "0,0.5,0.75,0.9", .layers = 4, .heads = 4, .dim = 128,
                        .context = 64, .batch = 12, .steps = 30, .repeats = 3, .gen_tokens = 0,
                        .seed = 1, .eval_batch = 64, .eval_context = 32, .eval_batches = 1};
    arg_spec specs[] = {
        {"sparsities", ARG_STRING, &f.sparsities, "S,S,...",
         "sparsities of the block maps; 0 is the dense path through OpenBLAS (default "
         "0,0.5,0.75,0.9)", NULL, 0, 0},
        {"models", ARG_STRING, &f.models, "FILE,FILE,...",
         "model files side by side instead (the first the baseline): batch-1 generation and "
         "batched eval tokens/s, interleaved rounds; --repeats rounds, --gen-tokens (default 64)",
         NULL, 0, 0},
        {"eval-batch", ARG_INT, &f.eval_batch, "N", "--models: windows per eval batch (default 64)",
         NULL, 1, 1 << 16},
        {"eval-context", ARG_INT, &f.eval_context, "N",
         "--models: tokens per eval window (default 32)", NULL, 2, 1 << 20},
        {"eval-batches", ARG_INT, &f.eval_batches, "N",
         "--models: eval batches per round (default 1)", NULL, 1, 1 << 16},
        {"layers", ARG_INT, &f.layers, "N", "transformer blocks (default 4)", NULL, 1, 1024},
        {"heads", ARG_INT, &f.heads, "N", "attention heads (default 4)", NULL, 1, 4096},
        {"dim", ARG_INT, &f.dim, "N", "width (default 128)", NULL, 1, 65536},
        {"context", ARG_INT, &f.context, "N", "tokens per sequence (default 64)", NULL, 2, 65536},
        {"batch", ARG_INT, &f.batch, "N", "sequences per step (default 12)", NULL, 1, 1 << 16},
        {"steps", ARG_INT, &f.steps, "N", "timed training steps per repeat (default 30)", NULL, 1,
         1 << 20},
        {"repeats", ARG_INT, &f.repeats, "N", "repeats; medians are reported (default 3)", NULL, 1,
         64},
        {"gen-tokens", ARG_INT, &f.gen_tokens, "N",
         "tokens generated per repeat (default: context - 1, one window without a restart)", NULL,
         0, 1 << 20},
        {"threads", ARG_INT, &f.threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"seed", ARG_INT, &f.seed, "N", "seed (default 1)", NULL, 0, 2147483647.0},
        {"json", ARG_FLAG, &f.json, NULL, "one JSON object per row", NULL, 0, 0},
    };
    arg_parser p = {"bench lm", "rewire bench lm [flags]",
                    "Training tokens/s (AdamW, batch x context tokens a step) and batch-1 "
                    "generation tokens/s (KV cache) of a GPT at each sparsity of its blocks' "
                    "linear maps, beside the dense path.",
                    specs, sizeof specs / sizeof specs[0], NULL, 0, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (f.threads > 0) rw_set_num_threads(f.threads);
    if (f.models) {
        if (f.gen_tokens == 0) f.gen_tokens = 64;
        return bench_models(&f);
    }
    double sp[MAX_SPARSITIES];
    int n = args_parse_double_list(f.sparsities, sp, MAX_SPARSITIES, 0, 0.999999);
    if (n < 1) {
        fprintf(stderr, "rewire bench lm: --sparsities expects numbers in [0, 1), got '%s'\n",
                f.sparsities);
        return 2;
    }
    if (f.dim % f.heads) {
        fprintf(stderr, "rewire bench lm: --heads %d does not divide --dim %d\n", f.heads, f.dim);
        return 2;
    }
    if (f.gen_tokens == 0) f.gen_tokens = f.context - 1;
    /* Enough random bytes for the training windows. */
    unsigned char *bytes = NULL;
    rw_tokenizer *tok = NULL;
    rw_text *text = NULL;
    if ((rc = random_text((size_t)f.context * 64 + 4096, 0.05, f.context, &bytes, &tok, &text))) {
        free(bytes);
        rw_tokenizer_free(tok);
        return rc;
    }
    double dense_train = 0, dense_gen = 0;
    if (!f.json)
        printf("GPT %d layers, %d heads, dim %d, context %d, batch %d, %d threads, %s kernels\n"
               "%-9s %16s %9s %18s %9s\n", f.layers, f.heads, f.dim, f.context, f.batch,
               rw_get_num_threads(), rw_kernel_isa(), "sparsity", "train tokens/s", "x dense",
               "generate tokens/s", "x dense");
    for (int i = 0; i < n && !rc; i++) {
        double train = 0, gen = 0, best = 0;
        if ((rc = measure(&f, sp[i], text, &train, &gen, &best))) break;
        if (sp[i] == 0) dense_train = train, dense_gen = gen;
        if (f.json) {
            json_t *o = json_pack(
                "{s:s, s:s, s:s, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:i, s:s, s:i}",
                "bench", "lm_train", "impl", "rewire", "path", sp[i] == 0 ? "dense" : "sparse",
                "sparsity", sp[i], "layers", f.layers, "heads", f.heads, "dim", f.dim, "context",
                f.context, "batch", f.batch, "threads", rw_get_num_threads(), "tokens_per_second",
                train, "best_tokens_per_second", best, "steps", f.steps, "isa", rw_kernel_isa(),
                "repeats", f.repeats);
            json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
            printf("\n");
            json_decref(o);
            o = json_pack("{s:s, s:s, s:s, s:f, s:i, s:i, s:i, s:i, s:i, s:f, s:i, s:s, s:i}",
                          "bench", "lm_generate", "impl", "rewire", "path",
                          sp[i] == 0 ? "dense" : "sparse", "sparsity", sp[i], "layers", f.layers,
                          "heads", f.heads, "dim", f.dim, "context", f.context, "threads",
                          rw_get_num_threads(), "tokens_per_second", gen, "tokens", f.gen_tokens,
                          "isa", rw_kernel_isa(), "repeats", f.repeats);
            json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
            printf("\n");
            json_decref(o);
        } else {
            char rt[16] = "", rg[16] = "";
            if (dense_train > 0) snprintf(rt, sizeof rt, "%.2f", train / dense_train);
            if (dense_gen > 0) snprintf(rg, sizeof rg, "%.2f", gen / dense_gen);
            printf("%-9g %16.0f %9s %18.0f %9s\n", sp[i], train, rt, gen, rg);
        }
        fflush(stdout);
    }
    rw_text_free(text);
    rw_tokenizer_free(tok);
    free(bytes);
    return rc;
}
