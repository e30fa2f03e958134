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

typedef struct {
    const char *sparsities;
    int layers, heads, dim, context, batch, steps, repeats, gen_tokens, threads, json, seed;
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

int bench_lm(int argc, char **argv)
{
    lm_bench_flags f = {.sparsities = "0,0.5,0.75,0.9", .layers = 4, .heads = 4, .dim = 128,
                        .context = 64, .batch = 12, .steps = 30, .repeats = 3, .gen_tokens = 0,
                        .seed = 1};
    arg_spec specs[] = {
        {"sparsities", ARG_STRING, &f.sparsities, "S,S,...",
         "sparsities of the block maps; 0 is the dense path through OpenBLAS (default "
         "0,0.5,0.75,0.9)", NULL, 0, 0},
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
    if (f.threads > 0) rw_set_num_threads(f.threads);
    /* Random bytes, enough for the windows. */
    size_t len = (size_t)f.context * 64 + 4096;
    unsigned char *bytes = malloc(len);
    rw_tokenizer *tok = NULL;
    rw_text *text = NULL;
    if (!bytes) return report_failure("bench lm");
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        bytes[i] = (unsigned char)(x >> 32);
    }
    if (rw_tokenizer_bytes(&tok) != RW_OK ||
        rw_text_from_memory("random bytes", bytes, len, tok, 0.05, f.context, &text) != RW_OK) {
        free(bytes);
        rw_tokenizer_free(tok);
        return report_failure("bench lm");
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
