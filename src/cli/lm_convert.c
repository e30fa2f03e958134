/* rewire lm import and rewire lm export: GPT-2 checkpoints in the Hugging
 * Face layout (config.json + model.safetensors) to and from rewire's model
 * files, over rw_gpt2_import and rw_gpt2_export. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/lm_commands.h"
#include "rewire.h"

static void print_summary(const char *what, rw_model *m)
{
    long long stored = 0;
    for (int i = 0; i < rw_model_param_count(m); i++) {
        rw_param_view v;
        if (rw_model_param(m, i, &v) == RW_OK) stored += v.count;
    }
    printf("%s: GPT, context %d, %lld parameters stored, sparsity %.2f%%, tokenizer %s\n", what,
           rw_model_context(m), stored, 100 * rw_model_sparsity(m),
           rw_model_get_info(m, "tokenizer") ? rw_model_get_info(m, "tokenizer") : "bytes");
}

int cmd_lm_import(int argc, char **argv)
{
    const char *out = NULL, *pos[1];
    arg_spec specs[] = {
        {"out", ARG_STRING, &out, "PATH", "the rewire model file to write (required; also -o)",
         NULL, 0, 0},
    };
    arg_parser p = {"lm import", "rewire lm import DIR -o MODEL.safetensors",
                    "Reads a GPT-2 checkpoint as the Hugging Face Hub publishes it (DIR holds "
                    "config.json and model.safetensors, F32, F16 or BF16; vocab.json and "
                    "merges.txt, when there, become the model's tokenizer) and writes it as a "
                    "dense rewire model for rewire lm eval, generate and export. "
                    "Sharded and pytorch_model.bin checkpoints are not read.",
                    specs, sizeof specs / sizeof specs[0], pos, 1, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (p.n_positional != 1 || !out) {
        fprintf(stderr, "rewire lm import: expected one checkpoint folder and -o OUT\n"
                        "(see 'rewire lm import --help')\n");
        return 2;
    }
    rw_model *m = NULL;
    if (rw_gpt2_import(pos[0], &m) != RW_OK || rw_model_save(m, out) != RW_OK) {
        rw_model_free(m);
        return report_failure("lm import");
    }
    print_summary(out, m);
    rw_model_free(m);
    return 0;
}

/* Copies DIR_FROM/name to DIR_TO/name through a temporary file renamed at
 * the end, so that a failure leaves no half-written tokenizer file. */
static int copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char from[4096], to[4096], tmp[4200];
    if (snprintf(from, sizeof from, "%s/%s", from_dir, name) >= (int)sizeof from ||
        snprintf(to, sizeof to, "%s/%s", to_dir, name) >= (int)sizeof to) {
        fprintf(stderr, "rewire lm export: path too long for %s\n", name);
        return 1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    FILE *in = fopen(from, "rb");
    if (!in) {
        fprintf(stderr, "rewire lm export: cannot read the tokenizer file %s: %s\n", from,
                strerror(errno));
        return 1;
    }
    FILE *o = fopen(tmp, "wb");
    if (!o) {
        fprintf(stderr, "rewire lm export: cannot write %s: %s\n", tmp, strerror(errno));
        fclose(in);
        return 1;
    }
    char buf[1 << 16];
    size_t n;
    int bad = 0;
    while (!bad && (n = fread(buf, 1, sizeof buf, in)) > 0) bad = fwrite(buf, 1, n, o) != n;
    bad |= ferror(in);
    bad |= fclose(o) != 0;
    fclose(in);
    if (bad || rename(tmp, to) != 0) {
        fprintf(stderr, "rewire lm export: copying %s to %s failed: %s\n", from, to,
                strerror(errno));
        remove(tmp);
        return 1;
    }
    return 0;
}

int cmd_lm_export(int argc, char **argv)
{
    const char *pos[2];
    arg_spec specs[] = {{NULL, 0, NULL, NULL, NULL, NULL, 0, 0}};
    arg_parser p = {"lm export", "rewire lm export MODEL.safetensors DIR",
                    "Writes a rewire GPT as a GPT-2 checkpoint in the Hugging Face layout: "
                    "DIR/config.json and DIR/model.safetensors (F32; sparse maps written dense), "
                    "which transformers' GPT2LMHeadModel.from_pretrained and rewire lm import "
                    "read; a model with GPT-2's BPE tokenizer gets its vocab.json and merges.txt "
                    "copied beside them. DIR is created if missing; its files are replaced only "
                    "once written in full.",
                    specs, 0, pos, 2, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (p.n_positional != 2) {
        fprintf(stderr, "rewire lm export: expected a model file and a folder\n"
                        "(see 'rewire lm export --help')\n");
        return 2;
    }
    rw_model *m = NULL;
    if (rw_model_load(pos[0], &m) != RW_OK) return report_failure("lm export");
    if (rw_gpt2_export(m, pos[1]) != RW_OK) {
        rw_model_free(m);
        return report_failure("lm export");
    }
    const char *tok = rw_model_get_info(m, "tokenizer");
    rc = 0;
    if (tok && strncmp(tok, "bpe:", 4) == 0)
        rc = copy_file(tok + 4, pos[1], "vocab.json") || copy_file(tok + 4, pos[1], "merges.txt");
    if (!rc) printf("%s: config.json, model.safetensors%s\n", pos[1],
                    tok && strncmp(tok, "bpe:", 4) == 0 ? ", vocab.json, merges.txt" : "");
    rw_model_free(m);
    return rc;
}
