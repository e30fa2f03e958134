/* rewire lm prune: a trained language model pruned after training, with
 * or without calibration text, over rw_lm_prune. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/lm_commands.h"
#include "cli/lm_layerwise.h"
#include "cli/lm_text.h"
#include "rewire.h"

static const char *method_names[] = {"magnitude", "wanda", "sparsegpt", "dsnot", NULL};
static const char *scope_names[] = {"row", "global", NULL};
static const char *search_names[] = {"none", "evopress", NULL};

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

static void on_generation(int generation, double kl, void *user)
{
    const prune_cli *c = user;
    if (!c->quiet && (generation + 1) % 10 == 0)
        printf("evopress generation %d: KL %.6f\n", generation + 1, kl);
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
    const char *out = NULL, *nm = NULL, *calib = NULL, *tok_spec = NULL, *layerwise = NULL,
               *layerwise_out = NULL, *pos[1];
    int method = 0, scope = 0, samples = 128, context = 0, seed = 1, block = 128, cycles = 50,
        threads = 0, quiet = 0, search = 0, calib_dense = 0, generations = 200, offspring = 16, mutations = 3,
        windows = 32;
    double sparsity = 0.5, step = 0.05, range = 0.3;
    arg_spec specs[] = {
        {"method", ARG_CHOICE, &method, "magnitude|wanda|sparsegpt|dsnot",
         "how weights are chosen (default magnitude)", method_names, 0, 0},
        {"scope", ARG_CHOICE, &scope, "row|global",
         "magnitude: the same fraction of every output row, or one threshold over all block "
         "maps (default row)", scope_names, 0, 0},
        {"sparsity", ARG_DOUBLE, &sparsity, "S",
         "fraction of each block map removed (default 0.5; with --search evopress the "
         "average, with --layerwise that of the maps the file does not name)",
         NULL, 0, 0.999999},
        {"nm", ARG_STRING, &nm, "N:M",
         "instead of --sparsity: N of every M inputs of each row, stored as N:M layers", NULL, 0, 0},
        {"calib-text", ARG_STRING, &calib, "FILE",
         "wanda, sparsegpt, dsnot and --search evopress: the text calibration windows come from (its training split; kjv: "
         "the King James Bible)", NULL, 0, 0},
        {"calib-samples", ARG_INT, &samples, "N", "calibration windows (default 128)", NULL, 1,
         1 << 20},
        {"calib-context", ARG_INT, &context, "N",
         "tokens per window (default 256, or the model's context if shorter)", NULL, 0, 1 << 20},
        {"calib-dense", ARG_FLAG, &calib_dense, NULL,
         "each block's calibration inputs through the dense blocks before it instead of the "
         "pruned ones (as --search evopress's database)", NULL, 0, 0},
        {"seed", ARG_INT, &seed, "N", "which windows, and the search's mutations (default 1)", NULL, 0, 2147483647},
        {"cycles", ARG_INT, &cycles, "N", "dsnot: most prune-and-grow swaps per row (default 50)",
         NULL, 1, 1 << 20},
        {"block", ARG_INT, &block, "N", "sparsegpt: columns per lazy update block (default 128)",
         NULL, 1, 1 << 20},
        {"layerwise", ARG_STRING, &layerwise, "FILE",
         "each block map's own sparsity: lines 'blocks.0.attn.qkv 0.65', '#' comments; maps "
         "not named get --sparsity", NULL, 0, 0},
        {"search", ARG_CHOICE, &search, "none|evopress",
         "evopress: search per-map sparsities averaging --sparsity (weighted by map size) that "
         "minimise the KL divergence from the dense model on calibration text (default none)",
         search_names, 0, 0},
        {"layerwise-out", ARG_STRING, &layerwise_out, "FILE",
         "write the per-map sparsities used, as a --layerwise file", NULL, 0, 0},
        {"search-generations", ARG_INT, &generations, "N", "evopress: generations (default 200)",
         NULL, 1, 1 << 20},
        {"search-offspring", ARG_INT, &offspring, "N",
         "evopress: offspring per generation (default 16)", NULL, 1, 1 << 16},
        {"search-mutations", ARG_INT, &mutations, "N",
         "evopress: most level switches per offspring (default 3)", NULL, 1, 1 << 16},
        {"search-windows", ARG_INT, &windows, "N",
         "evopress: calibration windows of the fitness (default 32; 1/16 and 1/4 of them rank "
         "the offspring first)", NULL, 1, 1 << 20},
        {"search-step", ARG_DOUBLE, &step, "F",
         "evopress: one level, as a fraction of the smallest map's weights (default 0.05)", NULL,
         1e-6, 1},
        {"search-range", ARG_DOUBLE, &range, "F",
         "evopress: how far a map's sparsity may move from --sparsity (default 0.3)", NULL, 1e-6,
         0.999},
        {"tokenizer", ARG_STRING, &tok_spec, "SPEC",
         "bytes or bpe:DIR (default: the one the model was trained with)", NULL, 0, 0},
        {"out", ARG_STRING, &out, "PATH", "the pruned model file to write (required; also -o)",
         NULL, 0, 0},
        {"threads", ARG_INT, &threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"quiet", ARG_FLAG, &quiet, NULL, "print only the summary", NULL, 0, 0},
    };
    arg_parser p = {"lm prune",
                    "rewire lm prune MODEL.safetensors --method magnitude|wanda|sparsegpt|dsnot "
                    "[--sparsity S | --nm N:M] [--layerwise FILE | --search evopress] "
                    "[--calib-text FILE] -o OUT.safetensors",
                    "Prunes a trained GPT without retraining, block by block: each block's "
                    "attn.qkv, attn.proj, mlp.up and mlp.down, their calibration inputs computed "
                    "through the blocks already pruned. magnitude keeps the largest |w|; wanda "
                    "the largest |w| times the norm of the input over the calibration tokens, "
                    "per output row; sparsegpt reconstructs each map's output on the "
                    "calibration tokens (OBS updates with the damped Hessian); dsnot starts from "
                    "wanda's mask and swaps weights in and out of each row while that lowers "
                    "the reconstruction error on the calibration tokens. The maps are "
                    "stored as CSR, or as N:M layers with --nm, and run on the sparse kernels. "
                    "--layerwise gives each map its own sparsity; --search evopress finds them "
                    "(EvoPress: every map pruned at several levels, on calibration inputs "
                    "through the dense model, then an evolutionary search moving sparsity "
                    "between maps at a constant average).",
                    specs, sizeof specs / sizeof specs[0], pos, 1, 0};
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
    if ((method != 0 || search) && !calib) {
        fprintf(stderr, "rewire lm prune: %s%s needs --calib-text FILE\n",
                search ? "--search evopress" : "--method ", search ? "" : method_names[method]);
        return 2;
    }
    if ((layerwise || search || layerwise_out) && (nm || scope == 1)) {
        fprintf(stderr, "rewire lm prune: --layerwise, --layerwise-out and --search give each map "
                        "its own unstructured sparsity; not with --nm or --scope global\n");
        return 2;
    }
    if (layerwise && search) {
        fprintf(stderr, "rewire lm prune: --layerwise gives the sparsities, --search evopress "
                        "finds them; choose one\n");
        return 2;
    }
    if (threads > 0) rw_set_num_threads(threads);
    rw_model *m = NULL;
    rw_tokenizer *tok = NULL;
    rw_text *text = NULL;
    char path[4096];
    if ((rc = lm_load_model(pos[0], "lm prune", "prune", &m)) != 0) return rc;
    int T = context ? context : (rw_model_context(m) < 256 ? rw_model_context(m) : 256);
    int maps = rw_lm_prune_map_count(m);
    double *map_sparsity = calloc((size_t)maps + 1, sizeof *map_sparsity);
    if (!map_sparsity) rc = report_failure("lm prune");
    for (int i = 0; i < maps; i++) map_sparsity[i] = sparsity;
    if (!rc && layerwise) rc = lm_layerwise_read(m, layerwise, sparsity, map_sparsity);
    if (!rc && (method != 0 || search)) {
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
    if (layerwise) c.map_sparsity = map_sparsity;
    c.dense_inputs = calib_dense;
    if (!rc && search) {
        rw_lm_evopress_config e = rw_lm_evopress_config_default();
        e.step = step, e.range = range, e.generations = generations, e.offspring = offspring;
        e.max_mutations = mutations, e.windows = windows, e.seed = (uint64_t)seed;
        e.on_generation = on_generation, e.user = &cli;
        rw_lm_evopress_report r;
        if (rw_lm_prune_evopress(m, &c, &e, map_sparsity, &r) != RW_OK) {
            rc = report_failure("lm prune");
        } else {
            for (int i = 0; i < rw_model_param_count(m); i++) {
                rw_param_view v;
                if (rw_model_param(m, i, &v) != RW_OK || !v.is_weight) continue;
                if (strncmp(v.name, "blocks.", 7) != 0) continue;
                cli.kept += v.count;
                cli.dense += (int64_t)v.rows * v.cols;
            }
            printf("evopress: %d pruned maps in the database (%.1fs), KL on the fitness windows "
                   "%.6f uniform -> %.6f searched (%.1fs)\n", r.levels, r.database_seconds,
                   r.kl_uniform, r.kl, r.search_seconds);
        }
    } else if (!rc && rw_lm_prune(m, &c) != RW_OK) {
        rc = report_failure("lm prune");
    }
    if (!rc && rw_model_save(m, out) != RW_OK) rc = report_failure("lm prune");
    if (!rc && layerwise_out) {
        char note[256];
        snprintf(note, sizeof note, "rewire lm prune --method %s%s, average sparsity %g",
                 method_names[method], search ? " --search evopress" : "", sparsity);
        rc = lm_layerwise_write(m, layerwise_out, note, map_sparsity);
    }
    if (!rc)
        printf("%s: %s%s, block maps kept %lld of %lld (sparsity %.2f%%), model sparsity %.2f%%\n",
               out, nm ? nm : method_names[method], search ? " + evopress" : layerwise ? " layerwise" : "",
               (long long)cli.kept, (long long)cli.dense,
               cli.dense ? 100.0 * (1.0 - (double)cli.kept / (double)cli.dense) : 0.0,
               100 * rw_model_sparsity(m));
    free(map_sparsity);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    rw_model_free(m);
    return rc;
}
