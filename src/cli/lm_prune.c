/* rewire lm prune: a trained language model pruned after training, with
 * or without calibration text, over rw_lm_prune. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/lm_commands.h"
#include "cli/lm_text.h"
#include "rewire.h"

static const char *method_names[] = {"magnitude", "wanda", "sparsegpt", "dsnot", NULL};
static const char *scope_names[] = {"row", "global", NULL};

typedef struct {
    int quiet;
    int64_t kept, dense;
} prune_cli;

static void on_map(const rw_lm_prune_map *r, void *user)
{
    prune_cli *c = user;
    c->kept += r->kept;
    c->dense += (int64_t)r->rows * r->cols;
    if (c->quiet) return;
    printf("%-22s %5d x %-5d kept %9lld (%6.2f%%)", r->name, r->rows, r->cols, (long long)r->kept,
           100.0 * (double)r->kept / ((double)r->rows * r->cols));
    if (!isnan(r->error)) printf("  error %.4f", r->error);
    printf("  %.2fs\n", r->seconds);
}

/* "2:4" into n and m. */
static int parse_nm(const char *s, int *n, int *m)
{
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || *end != ':') return 1;
    const char *b = end + 1;
    long c = strtol(b, &end, 10);
    if (end == b || *end || a < 1 || c < 2 || a >= c || c > 64) return 1;
    *n = (int)a, *m = (int)c;
    return 0;
}

int cmd_lm_prune(int argc, char **argv)
{
    const char *out = NULL, *nm = NULL, *calib = NULL, *tok_spec = NULL, *pos[1];
    int method = 0, scope = 0, samples = 128, context = 0, seed = 1, block = 128, cycles = 50,
        threads = 0, quiet = 0;
    double sparsity = 0.5;
    arg_spec specs[] = {
        {"method", ARG_CHOICE, &method, "magnitude|wanda|sparsegpt|dsnot",
         "how weights are chosen (default magnitude)", method_names, 0, 0},
        {"scope", ARG_CHOICE, &scope, "row|global",
         "magnitude: the same fraction of every output row, or one threshold over all block "
         "maps (default row)", scope_names, 0, 0},
        {"sparsity", ARG_DOUBLE, &sparsity, "S", "fraction of each block map removed (default 0.5)",
         NULL, 0, 0.999999},
        {"nm", ARG_STRING, &nm, "N:M",
         "instead of --sparsity: N of every M inputs of each row, stored as N:M layers", NULL, 0, 0},
        {"calib-text", ARG_STRING, &calib, "FILE",
         "wanda, sparsegpt, dsnot: the text calibration windows come from (its training split; kjv: "
         "the King James Bible)", NULL, 0, 0},
        {"calib-samples", ARG_INT, &samples, "N", "calibration windows (default 128)", NULL, 1,
         1 << 20},
        {"calib-context", ARG_INT, &context, "N",
         "tokens per window (default 256, or the model's context if shorter)", NULL, 0, 1 << 20},
        {"seed", ARG_INT, &seed, "N", "which windows (default 1)", NULL, 0, 2147483647},
        {"cycles", ARG_INT, &cycles, "N", "dsnot: most prune-and-grow swaps per row (default 50)",
         NULL, 1, 1 << 20},
        {"block", ARG_INT, &block, "N", "sparsegpt: columns per lazy update block (default 128)",
         NULL, 1, 1 << 20},
        {"tokenizer", ARG_STRING, &tok_spec, "SPEC",
         "bytes or bpe:DIR (default: the one the model was trained with)", NULL, 0, 0},
        {"out", ARG_STRING, &out, "PATH", "the pruned model file to write (required; also -o)",
         NULL, 0, 0},
        {"threads", ARG_INT, &threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"quiet", ARG_FLAG, &quiet, NULL, "print only the summary", NULL, 0, 0},
    };
    arg_parser p = {"lm prune",
                    "rewire lm prune MODEL.safetensors --method magnitude|wanda|sparsegpt|dsnot "
                    "[--sparsity S | --nm N:M] [--calib-text FILE] -o OUT.safetensors",
                    "Prunes a trained GPT without retraining, block by block: each block's "
                    "attn.qkv, attn.proj, mlp.up and mlp.down, their calibration inputs computed "
                    "through the blocks already pruned. magnitude keeps the largest |w|; wanda "
                    "the largest |w| times the norm of the input over the calibration tokens, "
                    "per output row; sparsegpt reconstructs each map's output on the "
                    "calibration tokens (OBS updates with the damped Hessian); dsnot starts from "
                    "wanda's mask and swaps weights in and out of each row while that lowers "
                    "the reconstruction error on the calibration tokens. The maps are "
                    "stored as CSR, or as N:M layers with --nm, and run on the sparse kernels.",
                    specs, sizeof specs / sizeof specs[0], pos, 1, 0};
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "-o") == 0) argv[i] = "--out";
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (p.n_positional != 1 || !out) {
        fprintf(stderr, "rewire lm prune: expected one model file and -o OUT\n"
                        "(see 'rewire lm prune --help')\n");
        return 2;
    }
    rw_lm_prune_config c = rw_lm_prune_config_default();
    c.method = method == 1   ? RW_LM_PRUNE_WANDA
               : method == 2 ? RW_LM_PRUNE_SPARSEGPT
               : method == 3 ? RW_LM_PRUNE_DSNOT
               : scope == 1  ? RW_LM_PRUNE_MAGNITUDE_GLOBAL
                             : RW_LM_PRUNE_MAGNITUDE;
    if (scope == 1 && method != 0) {
        fprintf(stderr, "rewire lm prune: --scope global is for --method magnitude (the others "
                        "work per map)\n");
        return 2;
    }
    c.sparsity = sparsity;
    if (nm && parse_nm(nm, &c.nm_n, &c.nm_m)) {
        fprintf(stderr, "rewire lm prune: --nm '%s', expected N:M with 1 <= N < M <= 64 (2:4)\n",
                nm);
        return 2;
    }
    if (method != 0 && !calib) {
        fprintf(stderr, "rewire lm prune: --method %s needs --calib-text FILE\n",
                method_names[method]);
        return 2;
    }
    if (threads > 0) rw_set_num_threads(threads);
    rw_model *m = NULL;
    rw_tokenizer *tok = NULL;
    rw_text *text = NULL;
    char path[4096];
    if ((rc = lm_load_model(pos[0], "lm prune", "prune", &m)) != 0) return rc;
    int T = context ? context : (rw_model_context(m) < 256 ? rw_model_context(m) : 256);
    if (method != 0) {
        rc = lm_model_tokenizer(m, tok_spec, "lm prune", &tok);
        if (!rc) rc = lm_text_path(calib, path, sizeof path);
        if (!rc && rw_text_load(path, tok, 0.1, T, &text) != RW_OK) rc = report_failure("lm prune");
    }
    prune_cli cli = {quiet, 0, 0};
    c.calibration = text;
    c.calib_samples = samples;
    c.calib_context = context;
    c.seed = (uint64_t)seed;
    c.block = block;
    c.cycles = cycles;
    c.on_map = on_map;
    c.user = &cli;
    if (!rc && (rw_lm_prune(m, &c) != RW_OK || rw_model_save(m, out) != RW_OK))
        rc = report_failure("lm prune");
    if (!rc)
        printf("%s: %s, block maps kept %lld of %lld (sparsity %.2f%%), model sparsity %.2f%%\n",
               out, nm ? nm : method_names[method], (long long)cli.kept, (long long)cli.dense,
               cli.dense ? 100.0 * (1.0 - (double)cli.kept / (double)cli.dense) : 0.0,
               100 * rw_model_sparsity(m));
    rw_text_free(text);
    rw_tokenizer_free(tok);
    rw_model_free(m);
    return rc;
}
