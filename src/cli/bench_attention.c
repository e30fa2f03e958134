/* rewire bench attention: forward+backward time per token of one head
 * group of attention at growing sequence lengths, each pattern beside
 * dense attention through the same block-sparse core (no T×T buffer), and
 * batch-1 decoding tokens/s with a KV cache at a long context. Patterns
 * are interleaved within each repeat (A, B, C, A, B, C, ...) so a machine
 * shared with other work slows them alike. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rewire.h"

#define MAX_PATTERNS 16
#define MAX_LENGTHS 16
/* A measurement longer than this is not repeated. */
#define REPEAT_MAX_SECONDS 10.0

typedef struct {
    const char *patterns, *lengths;
    int heads, head_dim, repeats, decode_context, decode_tokens, threads, json, seed;
} attn_bench_flags;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_maxrss / 1024.0;
}

/* Per-doubling factor of a growth `ratio` over a length factor `span`. */
static double pow_ratio(double ratio, double span) { return pow(ratio, 1.0 / log2(span)); }

static float *random_floats(size_t n, uint64_t *x)
{
    float *v = malloc(sizeof(float) * n);
    for (size_t i = 0; v && i < n; i++) {
        *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
        v[i] = (float)((double)(*x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    return v;
}

/* Splits the ';'-separated specs of s (modified) into spec[]. */
static int split_patterns(char *s, char **spec, int cap)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(s, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        if (n == cap) return -1;
        spec[n++] = t;
    }
    return n;
}

static int fail(const char *what)
{
    fprintf(stderr, "rewire bench attention: %s: %s\n", what, rw_last_error());
    return 1;
}

/* sparsed chooses its blocks from dense attention first: here from the
 * first (at most) 2,048 positions of qkv [rows][T], outside the timing. */
#define CALIBRATION_MAX 2048

static rw_status calibrate(rw_attention *a, const char *spec, const float *qkv, int rows, int T)
{
    if (strncmp(spec, "sparsed:", 8) != 0) return RW_OK;
    int n = T < CALIBRATION_MAX ? T : CALIBRATION_MAX;
    float *head = malloc(sizeof(float) * (size_t)rows * n);
    if (!head) return RW_ERR_NO_MEMORY;
    for (int r = 0; r < rows; r++) memcpy(head + (size_t)r * n, qkv + (size_t)r * T, sizeof(float) * n);
    rw_status st = rw_attention_calibrate(a, n, head, NULL);
    free(head);
    return st;
}

/* Forward+backward seconds of each pattern at length T (the best of the
 * repeats), with the score entries it computed and its buffers' bytes. */
static int time_length(const attn_bench_flags *f, char **spec, int np, int T, double *sec,
                       double *density, double *bytes)
{
    int dim = f->heads * f->head_dim;
    uint64_t x = 88172645463325252ull + (uint64_t)f->seed;
    float *qkv = random_floats((size_t)3 * dim * T, &x), *dy = random_floats((size_t)dim * T, &x);
    float *y = malloc(sizeof(float) * (size_t)dim * T), *g = malloc(sizeof(float) * (size_t)3 * dim * T);
    int rc = 0;
    if (!qkv || !dy || !y || !g) rc = fail("out of memory");
    for (int i = 0; i < np; i++) sec[i] = 0;
    for (int r = 0; r < f->repeats && !rc; r++) {
        int again = 0;
        for (int i = 0; i < np && !rc; i++) {
            if (r > 0 && sec[i] > REPEAT_MAX_SECONDS) continue;
            rw_attention *a = NULL;
            if (rw_attention_create(spec[i], f->heads, f->head_dim, T, &a) != RW_OK ||
                calibrate(a, spec[i], qkv, 3 * dim, T) != RW_OK) {
                rw_attention_free(a);
                rc = fail(spec[i]);
                break;
            }
            double t0 = now();
            if (rw_attention_forward(a, T, qkv, y) != RW_OK || rw_attention_backward(a, dy, g) != RW_OK)
                rc = fail(spec[i]);
            double t = now() - t0;
            if (sec[i] == 0 || t < sec[i]) sec[i] = t;
            density[i] = (double)rw_attention_scores(a, 1) / ((double)f->heads * T * (T + 1) / 2);
            bytes[i] = (double)rw_attention_bytes(a);
            again |= sec[i] <= REPEAT_MAX_SECONDS;
            rw_attention_free(a);
        }
        if (!again) break;
    }
    free(qkv), free(dy), free(y), free(g);
    return rc;
}

/* Tokens/s decoding decode_tokens positions one at a time after a prefill
 * of decode_context - decode_tokens (the best of the repeats). */
static int time_decode(const attn_bench_flags *f, char **spec, int np, double *tps)
{
    int dim = f->heads * f->head_dim, C = f->decode_context, n = f->decode_tokens;
    uint64_t x = 2463534242ull + (uint64_t)f->seed;
    float *qkv = random_floats((size_t)3 * dim * C, &x), *col = malloc(sizeof(float) * 3 * (size_t)dim);
    float *y = malloc(sizeof(float) * (size_t)dim);
    int rc = 0;
    if (!qkv || !col || !y) rc = fail("out of memory");
    rw_attention *a[MAX_PATTERNS] = {0};
    for (int i = 0; i < np && !rc; i++) {
        tps[i] = 0;
        if (rw_attention_create(spec[i], f->heads, f->head_dim, C, &a[i]) != RW_OK ||
            calibrate(a[i], spec[i], qkv, 3 * dim, C) != RW_OK ||
            rw_attention_prefill(a[i], C, qkv) != RW_OK)
            rc = fail(spec[i]);
    }
    for (int r = 0; r < f->repeats && !rc; r++)
        for (int i = 0; i < np && !rc; i++) {
            double t0 = now();
            for (int p = C - n; p < C && !rc; p++) {
                for (int k = 0; k < 3 * dim; k++) col[k] = qkv[(size_t)k * C + p];
                if (rw_attention_decode(a[i], p, col, y) != RW_OK) rc = fail(spec[i]);
            }
            double t = n / (now() - t0);
            if (t > tps[i]) tps[i] = t;
        }
    for (int i = 0; i < np; i++) rw_attention_free(a[i]);
    free(qkv), free(col), free(y);
    return rc;
}

int bench_attention(int argc, char **argv)
{
    attn_bench_flags f = {.patterns = "dense;window:1024;block-topk:64,16;hip:64,16",
                          .lengths = "1024,4096,16384,65536", .heads = 2, .head_dim = 64,
                          .repeats = 3, .decode_context = 16384, .decode_tokens = 256, .seed = 1};
    arg_spec specs[] = {
        {"patterns", ARG_STRING, &f.patterns, "P;P;...",
         "attention patterns separated by ';', the first the baseline (default "
         "dense;window:1024;block-topk:64,16;hip:64,16)", NULL, 0, 0},
        {"lengths", ARG_STRING, &f.lengths, "T,T,...",
         "sequence lengths (default 1024,4096,16384,65536)", NULL, 0, 0},
        {"heads", ARG_INT, &f.heads, "N", "heads of the group (default 2)", NULL, 1, 4096},
        {"head-dim", ARG_INT, &f.head_dim, "N", "features per head (default 64)", NULL, 1, 4096},
        {"repeats", ARG_INT, &f.repeats, "N",
         "repeats, the best reported; a measurement over 10 s is not repeated (default 3)", NULL,
         1, 64},
        {"decode-context", ARG_INT, &f.decode_context, "N",
         "positions in the KV cache when decoding (default 16384; 0: no decoding)", NULL, 0,
         1 << 20},
        {"decode-tokens", ARG_INT, &f.decode_tokens, "N",
         "tokens decoded, the last of that context (default 256)", NULL, 1, 1 << 20},
        {"threads", ARG_INT, &f.threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"seed", ARG_INT, &f.seed, "N", "seed of the random queries, keys and values (default 1)",
         NULL, 0, 2147483647.0},
        {"json", ARG_FLAG, &f.json, NULL, "one JSON object per row", NULL, 0, 0},
    };
    arg_parser p = {"bench attention", "rewire bench attention [flags]",
                    "Forward+backward time per token of one head group of causal attention at "
                    "each length, every pattern beside the first (dense through the same "
                    "block-sparse core, no T x T buffer), with the share of the causal scores it "
                    "computed, its buffers and the process's peak RSS; then batch-1 decoding "
                    "tokens/s with a KV cache of --decode-context positions. A sparsed:B,KEEP "
                    "pattern first chooses each head's blocks from the dense attention of the "
                    "first 2,048 positions (not timed).",
                    specs, sizeof specs / sizeof specs[0], NULL, 0, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    char pat_text[1024], *spec[MAX_PATTERNS];
    snprintf(pat_text, sizeof pat_text, "%s", f.patterns);
    int np = split_patterns(pat_text, spec, MAX_PATTERNS);
    double len_d[MAX_LENGTHS];
    int nl = args_parse_double_list(f.lengths, len_d, MAX_LENGTHS, 1, 1 << 20);
    if (np < 1) {
        fprintf(stderr, "rewire bench attention: --patterns expects 1 to %d specs separated by ';', "
                "got '%s'\n", MAX_PATTERNS, f.patterns);
        return 2;
    }
    if (nl < 1) {
        fprintf(stderr, "rewire bench attention: --lengths expects positions in [1, 1048576], "
                "got '%s'\n", f.lengths);
        return 2;
    }
    if (f.decode_context && f.decode_tokens > f.decode_context) {
        fprintf(stderr, "rewire bench attention: --decode-tokens %d exceeds --decode-context %d\n",
                f.decode_tokens, f.decode_context);
        return 2;
    }
    for (int i = 0; i < np; i++) /* refuse a bad spec before any timing */
        if (rw_attention_check(spec[i]) != RW_OK) {
            fprintf(stderr, "rewire bench attention: %s\n", rw_last_error());
            return 2;
        }
    if (f.threads > 0) rw_set_num_threads(f.threads);
    if (!f.json)
        printf("attention: %d heads of %d, forward+backward, %d threads; 'x %s' = its time / "
               "this pattern's, 'per score' = its time per computed score over the baseline's, "
               "'/doubling' = per-token time growth per doubling of T\n"
               "%-22s %7s %12s %8s %10s %9s %8s %12s %9s\n", f.heads, f.head_dim,
               rw_get_num_threads(), spec[0], "pattern", "T", "us/token", "density", "x baseline",
               "per score", "/doubling", "buffers MB", "peak MB");
    double prev[MAX_PATTERNS] = {0}, prev_T = 0;
    for (int l = 0; l < nl && !rc; l++) {
        int T = (int)len_d[l];
        double sec[MAX_PATTERNS], dens[MAX_PATTERNS], bytes[MAX_PATTERNS];
        if ((rc = time_length(&f, spec, np, T, sec, dens, bytes))) break;
        double rss = peak_rss_mb();
        for (int i = 0; i < np; i++) {
            double per = sec[i] / T * 1e6, growth = 0;
            /* what a computed score costs against the baseline's: the
             * speedup's bound at equal cost per score is 1 / density */
            double score_cost = (sec[i] / dens[i]) / (sec[0] / dens[0]);
            if (prev_T > 0 && T > prev_T) growth = pow_ratio(per / prev[i], T / prev_T);
            if (f.json) {
                json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, "
                                      "s:i}",
                                      "bench", "attention", "pattern", spec[i], "T", T, "heads",
                                      f.heads, "head_dim", f.head_dim, "us_per_token", per,
                                      "density", dens[i], "speedup", sec[0] / sec[i],
                                      "score_cost_ratio", score_cost, "growth_per_doubling", growth,
                                      "buffer_bytes", bytes[i], "peak_rss_mb", rss, "threads",
                                      rw_get_num_threads());
                json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(8));
                printf("\n");
                json_decref(o);
            } else {
                char g[16] = "";
                if (growth > 0) snprintf(g, sizeof g, "%.2f", growth);
                printf("%-22s %7d %12.3f %8.4f %10.2f %9.2f %8s %12.1f %9.0f\n", spec[i], T, per,
                       dens[i], sec[0] / sec[i], score_cost, g, bytes[i] / 1048576.0, rss);
            }
            prev[i] = per;
        }
        prev_T = T;
        fflush(stdout);
    }
    if (!rc && f.decode_context > 0) {
        double tps[MAX_PATTERNS];
        if ((rc = time_decode(&f, spec, np, tps))) return rc;
        for (int i = 0; i < np; i++) {
            if (f.json) {
                json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i, s:f, s:f, s:i}", "bench",
                                      "attention_decode", "pattern", spec[i], "context",
                                      f.decode_context, "heads", f.heads, "head_dim", f.head_dim,
                                      "tokens_per_second", tps[i], "speedup", tps[i] / tps[0],
                                      "threads", rw_get_num_threads());
                json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(8));
                printf("\n");
                json_decref(o);
            } else {
                if (i == 0)
                    printf("\ndecoding, batch 1, KV cache of %d positions, %d tokens\n%-22s %14s "
                           "%10s\n", f.decode_context, f.decode_tokens, "pattern", "tokens/s",
                           "x baseline");
                printf("%-22s %14.0f %10.2f\n", spec[i], tps[i], tps[i] / tps[0]);
            }
        }
    }
    return rc;
}
