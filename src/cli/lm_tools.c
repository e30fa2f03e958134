/* rewire lm eval and rewire lm generate: a saved language model's loss on
 * a text, and its continuation of a prompt. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/lm_commands.h"
#include "cli/lm_text.h"
#include "rewire.h"

static const char *split_names[] = {"val", "train", NULL};

int lm_load_model(const char *path, const char *command, const char *instead, rw_model **out)
{
    *out = NULL;
    if (rw_model_load(path, out) != RW_OK) return report_failure(command);
    if (rw_model_context(*out) > 0) return 0;
    if (instead)
        fprintf(stderr, "rewire %s: %s is a classifier, not a language model (use rewire %s)\n",
                command, path, instead);
    else
        fprintf(stderr, "rewire %s: %s is a classifier, not a language model\n", command, path);
    rw_model_free(*out);
    *out = NULL;
    return 1;
}

int lm_model_tokenizer(const rw_model *m, const char *spec, const char *command,
                       rw_tokenizer **out)
{
    *out = NULL;
    const char *own = rw_model_get_info(m, "tokenizer");
    if (!spec) spec = own;
    if (!spec && rw_model_classes(m) == 256) spec = "bytes";
    if (!spec) {
        fprintf(stderr, "rewire %s: the model names no tokenizer and predicts %d tokens, not 256: "
                        "give --tokenizer bpe:DIR\n", command, rw_model_classes(m));
        return 1;
    }
    if (rw_tokenizer_open(spec, out) != RW_OK) return report_failure(command);
    if (rw_tokenizer_vocab(*out) > rw_model_classes(m)) {
        fprintf(stderr, "rewire %s: the tokenizer %s has %d tokens but the model predicts %d\n",
                command, spec, rw_tokenizer_vocab(*out), rw_model_classes(m));
        rw_tokenizer_free(*out);
        *out = NULL;
        return 1;
    }
    return 0;
}

int lm_set_attention(rw_model *m, const char *spec, const char *command)
{
    if (!spec || rw_model_set_attention(m, spec) == RW_OK) return 0;
    fprintf(stderr, "rewire %s: %s\n", command, rw_last_error());
    return 2;
}

int cmd_lm_eval(int argc, char **argv)
{
    const char *text_arg = "kjv", *tok_spec = NULL, *attention = NULL, *pos[1];
    double val_fraction = 0.1;
    int split = 0, context = 0, batch = 8, threads = 0, json = 0;
    arg_spec specs[] = {
        {"text", ARG_STRING, &text_arg, "FILE",
         "the text, split as training split it (default kjv, the King James Bible)", NULL, 0, 0},
        {"tokenizer", ARG_STRING, &tok_spec, "SPEC",
         "bytes or bpe:DIR (default: the one the model was trained with)", NULL, 0, 0},
        {"val-fraction", ARG_DOUBLE, &val_fraction, "F",
         "the last fraction of the tokens that is the validation split (default 0.1)", NULL, 1e-6,
         0.9},
        {"split", ARG_CHOICE, &split, "val|train", "which split to evaluate (default val)",
         split_names, 0, 0},
        {"context", ARG_INT, &context, "N",
         "tokens per window (default: the model's context)", NULL, 0, 1 << 20},
        {"batch", ARG_INT, &batch, "N", "windows per forward pass (default 8)", NULL, 1, 1 << 16},
        {"attention", ARG_STRING, &attention, "SPEC",
         "attention pattern instead of the model's own (dense, window:W[,sink:S], "
         "block-topk:B,K, hip:B,K, routing:C, dma:K, or sparsed:B,KEEP when rewire lm sparsed "
         "chose it; default: the one it was saved with)", NULL, 0, 0},
        {"threads", ARG_INT, &threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object", NULL, 0, 0},
    };
    arg_parser p = {"lm eval", "rewire lm eval MODEL.safetensors [--text FILE] [--json]",
                    "The loss of a language model over a text's split, in non-overlapping "
                    "windows of --context tokens (each token predicted from the ones before it "
                    "in its window): mean loss in nats per token, perplexity, and bits per byte "
                    "of text (comparable across tokenizers).",
                    specs, sizeof specs / sizeof specs[0], pos, 1, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (p.n_positional != 1) {
        fprintf(stderr, "rewire lm eval: expected one model file\n(see 'rewire lm eval --help')\n");
        return 2;
    }
    if (threads > 0) rw_set_num_threads(threads);
    rw_model *m = NULL;
    rw_tokenizer *tok = NULL;
    rw_text *text = NULL;
    char path[4096];
    if ((rc = lm_load_model(pos[0], "lm eval", "eval", &m)) != 0) return rc;
    if ((rc = lm_set_attention(m, attention, "lm eval"))) {
        rw_model_free(m);
        return rc;
    }
    char pattern[64];
    rw_model_attention(m, pattern, sizeof pattern);
    if (context == 0) context = rw_model_context(m);
    rc = lm_model_tokenizer(m, tok_spec, "lm eval", &tok);
    if (!rc) rc = lm_text_path(text_arg, path, sizeof path);
    rw_lm_eval e;
    rw_model_attention_density(m, 1);
    if (!rc && (rw_text_load(path, tok, val_fraction, context, &text) != RW_OK ||
                rw_lm_evaluate(m, text, split == 0, context, batch, &e) != RW_OK))
        rc = report_failure("lm eval");
    if (!rc && json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:f, s:f, s:f, s:s, s:f}", "model",
                              pos[0], "text", path, "split", split_names[split], "context",
                              context, "tokens", (json_int_t)e.tokens, "loss", e.loss,
                              "perplexity", exp(e.loss), "bits_per_byte", e.bits_per_byte,
                              "attention", pattern, "attention_density",
                              rw_model_attention_density(m, 0));
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        puts(s);
        free(s);
        json_decref(o);
    } else if (!rc) {
        printf("%s on %s (%s split, %lld tokens, context %d, %s attention, density %.4f): loss "
               "%.4f  perplexity %.3f  %.4f bits/byte\n", pos[0], path, split_names[split],
               (long long)e.tokens, context, pattern, rw_model_attention_density(m, 0), e.loss,
               exp(e.loss), e.bits_per_byte);
    }
    rw_text_free(text);
    rw_tokenizer_free(tok);
    rw_model_free(m);
    return rc;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_lm_generate(int argc, char **argv)
{
    const char *prompt = "\n", *tok_spec = NULL, *attention = NULL, *pos[1];
    int tokens = 200, top_k = 0, seed = 1, threads = 0, quiet = 0;
    double temperature = 0.8;
    arg_spec specs[] = {
        {"prompt", ARG_STRING, &prompt, "TEXT", "the text to continue (default a newline)", NULL, 0,
         0},
        {"tokens", ARG_INT, &tokens, "N", "tokens to generate (default 200)", NULL, 0, 1 << 24},
        {"temperature", ARG_DOUBLE, &temperature, "T",
         "divides the logits; 0 takes the most likely token (default 0.8)", NULL, 0, 100},
        {"top-k", ARG_INT, &top_k, "K", "sample among the K most likely tokens, 0 = all (default 0)",
         NULL, 0, 1 << 24},
        {"seed", ARG_INT, &seed, "N", "seed of the sampling (default 1)", NULL, 0, 2147483647.0},
        {"tokenizer", ARG_STRING, &tok_spec, "SPEC",
         "bytes or bpe:DIR (default: the one the model was trained with)", NULL, 0, 0},
        {"attention", ARG_STRING, &attention, "SPEC",
         "attention pattern instead of the model's own (dense, window:W[,sink:S], "
         "block-topk:B,K, hip:B,K, routing:C, dma:K, or sparsed:B,KEEP when rewire lm sparsed "
         "chose it; default: the one it was saved with)", NULL, 0, 0},
        {"threads", ARG_INT, &threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"quiet", ARG_FLAG, &quiet, NULL, "print only the text (no speed line on stderr)", NULL, 0,
         0},
    };
    arg_parser p = {"lm generate", "rewire lm generate MODEL.safetensors [--prompt TEXT] [flags]",
                    "Continues a prompt with a language model, one token at a time (batch 1, "
                    "the sparse maps as matrix-vector products, keys and values of earlier "
                    "tokens kept in a cache). Prints the prompt and its continuation on stdout, "
                    "the speed on stderr.",
                    specs, sizeof specs / sizeof specs[0], pos, 1, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (p.n_positional != 1) {
        fprintf(stderr, "rewire lm generate: expected one model file\n"
                        "(see 'rewire lm generate --help')\n");
        return 2;
    }
    if (threads > 0) rw_set_num_threads(threads);
    rw_model *m = NULL;
    rw_tokenizer *tok = NULL;
    int32_t *ids = NULL, *out = NULL;
    size_t n_ids = 0;
    if ((rc = lm_load_model(pos[0], "lm generate", NULL, &m)) != 0) return rc;
    rc = lm_set_attention(m, attention, "lm generate");
    if (!rc) rc = lm_model_tokenizer(m, tok_spec, "lm generate", &tok);
    if (!rc && rw_tokenizer_encode(tok, prompt, strlen(prompt), &ids, &n_ids) != RW_OK)
        rc = report_failure("lm generate");
    if (!rc && n_ids > (size_t)1 << 24) {
        fprintf(stderr, "rewire lm generate: the prompt is %zu tokens, more than 16777216\n", n_ids);
        rc = 2;
    }
    if (!rc && !(out = malloc(sizeof(int32_t) * ((size_t)tokens + 1)))) {
        fprintf(stderr, "rewire lm generate: out of memory\n");
        rc = 1;
    }
    double t0 = now();
    if (!rc && rw_lm_generate(m, ids, (int)n_ids, tokens, (float)temperature, top_k,
                              (uint64_t)seed, out) != RW_OK)
        rc = report_failure("lm generate");
    double seconds = now() - t0;
    char *s = NULL;
    size_t len = 0;
    if (!rc && rw_tokenizer_decode(tok, out, (size_t)tokens, &s, &len) != RW_OK)
        rc = report_failure("lm generate");
    if (!rc) {
        fwrite(prompt, 1, strlen(prompt), stdout);
        fwrite(s, 1, len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        if (!quiet)
            fprintf(stderr, "%d tokens in %.3f s: %.0f tokens/s (prompt of %zu tokens, %s "
                            "kernels, %d threads)\n", tokens, seconds,
                    seconds > 0 ? tokens / seconds : 0.0, n_ids, rw_kernel_isa(),
                    rw_get_num_threads());
    }
    free(s);
    free(ids);
    free(out);
    rw_tokenizer_free(tok);
    rw_model_free(m);
    return rc;
}
