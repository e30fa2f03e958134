/* rewire lm sparsed: a trained language model's per-head sparsed attention
 * blocks chosen from its dense attention on calibration text, over
 * rw_lm_sparsed, and saved with it. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/lm_commands.h"
#include "cli/lm_text.h"
#include "rewire.h"

int cmd_lm_sparsed(int argc, char **argv)
{
    const char *out = NULL, *calib = NULL, *spec = NULL, *tok_spec = NULL, *pos[1];
    int samples = 16, context = 0, seed = 1, threads = 0, quiet = 0;
    arg_spec specs[] = {
        {"attention", ARG_STRING, &spec, "sparsed:B,KEEP",
         "blocks of B positions; each head keeps the diagonals and columns of blocks that carry "
         "KEEP (in (0, 1]) of its dense attention mass on the calibration windows (required)",
         NULL, 0, 0},
        {"calib-text", ARG_STRING, &calib, "FILE",
         "the text the calibration windows come from (its training split; kjv: the King James "
         "Bible; required)", NULL, 0, 0},
        {"calib-samples", ARG_INT, &samples, "N", "calibration windows (default 16)", NULL, 1,
         1 << 16},
        {"calib-context", ARG_INT, &context, "N",
         "tokens per window (default: the model's context)", NULL, 0, 1 << 20},
        {"seed", ARG_INT, &seed, "N", "which windows (default 1)", NULL, 0, 2147483647.0},
        {"tokenizer", ARG_STRING, &tok_spec, "SPEC",
         "bytes or bpe:DIR (default: the one the model was trained with)", NULL, 0, 0},
        {"out", ARG_STRING, &out, "PATH", "the model file to write (required; also -o)", NULL, 0,
         0},
        {"threads", ARG_INT, &threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"quiet", ARG_FLAG, &quiet, NULL, "print nothing but errors", NULL, 0, 0},
    };
    arg_parser p = {"lm sparsed",
                    "rewire lm sparsed MODEL.safetensors --calib-text FILE --attention "
                    "sparsed:B,KEEP -o OUT.safetensors",
                    "Chooses each attention head's sparse pattern once from the trained model's "
                    "dense attention on calibration text (SparseD: \"Sparse Attention for "
                    "Diffusion Language Models\"): the windows run with dense attention, each "
                    "head's probabilities are summed per (query block, key block) of B "
                    "positions, and the head keeps diagonals (the block d blocks before the "
                    "query's) and columns (block j from the start), greedily the one carrying "
                    "the most mass not yet kept, until they and the query's own block carry "
                    "KEEP of it. The blocks are saved with the "
                    "model; rewire lm eval and generate then attend sparsed with no dense pass, "
                    "at any length up to the context.",
                    specs, sizeof specs / sizeof specs[0], pos, 1, 0};
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "-o") == 0) argv[i] = "--out";
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (p.n_positional != 1 || !out || !calib || !spec) {
        fprintf(stderr, "rewire lm sparsed: expected one model file, --calib-text FILE, "
                        "--attention sparsed:B,KEEP and -o OUT\n(see 'rewire lm sparsed --help')\n");
        return 2;
    }
    if (rw_attention_check(spec) != RW_OK) {
        fprintf(stderr, "rewire lm sparsed: %s\n", rw_last_error());
        return 2;
    }
    if (strncmp(spec, "sparsed:", 8) != 0) {
        fprintf(stderr, "rewire lm sparsed: --attention '%s': expected sparsed:B,KEEP (the other "
                        "patterns need no calibration: give them to lm eval or generate)\n", spec);
        return 2;
    }
    if (threads > 0) rw_set_num_threads(threads);
    rw_model *m = NULL;
    rw_tokenizer *tok = NULL;
    rw_text *text = NULL;
    char path[4096];
    if ((rc = lm_load_model(pos[0], "lm sparsed", NULL, &m)) != 0) return rc;
    int T = context ? context : rw_model_context(m);
    if (T > rw_model_context(m)) {
        fprintf(stderr, "rewire lm sparsed: --calib-context %d exceeds the model's context %d\n", T,
                rw_model_context(m));
        rw_model_free(m);
        return 2;
    }
    rc = lm_model_tokenizer(m, tok_spec, "lm sparsed", &tok);
    if (!rc) rc = lm_text_path(calib, path, sizeof path);
    if (!rc && rw_text_load(path, tok, 0.1, T, &text) != RW_OK) rc = report_failure("lm sparsed");
    rw_lm_sparsed_report r;
    if (!rc && (rw_lm_sparsed(m, text, spec, samples, T, (uint64_t)seed, &r) != RW_OK ||
                rw_model_save(m, out) != RW_OK))
        rc = report_failure("lm sparsed");
    if (!rc && !quiet)
        printf("%s: %s over %d attention layers of %d heads, from %d windows of %d tokens of %s: "
               "per head %.2f diagonals and %.2f columns besides its own block, carrying %.4f of "
               "the dense attention mass; density %.4f at %d tokens\n",
               out, spec, r.layers, r.heads, samples, T, path, r.diagonals, r.columns, r.covered,
               r.density, T);
    rw_text_free(text);
    rw_tokenizer_free(tok);
    rw_model_free(m);
    return rc;
}
