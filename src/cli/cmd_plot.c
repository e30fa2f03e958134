/* rewire plot RUN.jsonl [...] -o FIG.svg: accuracy and loss curves of runs;
 * rewire plot --connectivity MODEL -o MAP.png: the input layer's
 * connections per input (pixel) as a heat map; rewire plot --attention
 * MODEL --text FILE -o MASK.png: which keys one head attended on a real
 * sequence. Every figure is written whole or not at all. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/lm_commands.h"
#include "cli/plot.h"
#include "rewire.h"

#define MAX_RUNS 32

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int plot_connectivity(const char *model_path, const char *out, int width, int scale,
                             const char *title)
{
    rw_model *m;
    if (rw_model_load(model_path, &m) != RW_OK) return report_failure("plot");
    int in = rw_model_inputs(m);
    if (width <= 0) {
        width = (int)lround(sqrt((double)in));
        if (width * width != in) {
            fprintf(stderr, "rewire plot: %s has %d inputs, not a square image: give --width\n",
                    model_path, in);
            rw_model_free(m);
            return 2;
        }
    }
    if (in % width != 0) {
        fprintf(stderr, "rewire plot: %d inputs do not make rows of --width %d\n", in, width);
        rw_model_free(m);
        return 2;
    }
    int32_t *fan = malloc(sizeof(int32_t) * (size_t)in);
    int *counts = malloc(sizeof(int) * (size_t)in);
    if (!fan || !counts) {
        fprintf(stderr, "rewire plot: out of memory\n");
        free(fan);
        free(counts);
        rw_model_free(m);
        return 1;
    }
    /* Per input of the sample (the same numbers as rewire info --inputs):
     * an input the model no longer reads has none. */
    if (rw_model_input_importance(m, fan, NULL) != RW_OK) {
        free(fan);
        free(counts);
        rw_model_free(m);
        return report_failure("plot");
    }
    int kept = rw_model_kept_inputs(m, NULL);
    rw_layer_info li;
    rw_model_layer_info(m, 0, &li);
    int64_t total = 0;
    int lo = fan[0], hi = fan[0], unconnected = 0;
    for (int i = 0; i < in; i++) {
        counts[i] = fan[i];
        total += fan[i];
        lo = fan[i] < lo ? fan[i] : lo;
        hi = fan[i] > hi ? fan[i] : hi;
        unconnected += fan[i] == 0;
    }
    rw_model_free(m);
    free(fan);
    char default_title[256];
    if (kept < in)
        snprintf(default_title, sizeof default_title,
                 "%s: fc1 connections per input (%d of %d inputs kept)", model_path, kept, in);
    else
        snprintf(default_title, sizeof default_title, "%s: fc1 connections per input (%.2f%% dense)",
                 model_path, 100.0 * (1.0 - li.sparsity));
    int rc = 1;
    char tmp[4200];
    FILE *f = plot_out_open(out, tmp, sizeof tmp);
    if (f && ends_with(out, ".svg")) {
        plot_map_svg(f, counts, width, in / width, scale, title ? title : default_title);
        rc = plot_out_close(f, tmp, out, 1);
    } else if (f) {
        rc = plot_out_close(f, tmp, out, plot_map_png(f, out, counts, width, in / width, scale) == 0);
    }
    free(counts);
    if (rc == 0)
        printf("%s: fc1 connections per input: min %d, max %d, mean %.2f; %d of %d inputs "
               "unconnected\n",
               out, lo, hi, (double)total / in, unconnected, in);
    return rc;
}

/* The first n tokens of text_path from byte `offset`, into *ids. */
static int read_tokens(rw_tokenizer *tok, const char *text_path, long offset, int n, int32_t **ids)
{
    FILE *f = fopen(text_path, "rb");
    if (!f) {
        fprintf(stderr, "rewire plot: cannot read --text %s\n", text_path);
        return 1;
    }
    size_t cap = (size_t)n * 64 + 4096, len; /* enough bytes for n tokens of any tokenizer */
    char *buf = malloc(cap);
    if (!buf || fseek(f, offset, SEEK_SET) != 0) {
        fprintf(stderr, "rewire plot: cannot read --text %s from byte %ld\n", text_path, offset);
        free(buf);
        fclose(f);
        return 1;
    }
    len = fread(buf, 1, cap, f);
    fclose(f);
    size_t count = 0;
    *ids = NULL;
    if (rw_tokenizer_encode(tok, buf, len, ids, &count) != RW_OK) {
        free(buf);
        return report_failure("plot");
    }
    free(buf);
    if (count < (size_t)n) {
        fprintf(stderr, "rewire plot: --text %s holds %zu tokens from byte %ld, --tokens asks for "
                        "%d\n", text_path, count, offset, n);
        free(*ids);
        *ids = NULL;
        return 1;
    }
    return 0;
}

typedef struct {
    const char *model, *text, *pattern, *out, *title;
    int layer, head, tokens, scale, mask_only;
    long offset;
} attention_plot;

static int plot_attention(const attention_plot *a)
{
    rw_model *m = NULL;
    rw_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    float *p = NULL;
    int rc, heads = 0;
    if ((rc = lm_load_model(a->model, "plot", NULL, &m)) != 0) return rc;
    int layers = rw_model_attention_layers(m, &heads), n = a->tokens;
    int ctx = rw_model_context(m);
    if (n == 0) n = ctx < 128 ? ctx : 128;
    if ((rc = lm_set_attention(m, a->pattern, "plot"))) goto done;
    rc = 2;
    if (layers == 0)
        fprintf(stderr, "rewire plot: %s has no attention layer\n", a->model), rc = 1;
    else if (a->layer >= layers)
        fprintf(stderr, "rewire plot: --layer %d, but %s has %d attention layers (0 to %d)\n",
                a->layer, a->model, layers, layers - 1);
    else if (a->head >= heads)
        fprintf(stderr, "rewire plot: --head %d, but %s has %d heads (0 to %d)\n", a->head,
                a->model, heads, heads - 1);
    else if (n > ctx)
        fprintf(stderr, "rewire plot: --tokens %d exceeds the model's context %d\n", n, ctx);
    else
        rc = 0;
    if (rc) goto done;
    if ((rc = lm_model_tokenizer(m, NULL, "plot", &tok)) != 0) goto done;
    if ((rc = read_tokens(tok, a->text, a->offset, n, &ids)) != 0) goto done;
    if (!(p = malloc(sizeof(float) * (size_t)n * n))) {
        fprintf(stderr, "rewire plot: out of memory for %d x %d scores\n", n, n);
        rc = 1;
        goto done;
    }
    if (rw_model_attention_map(m, ids, n, a->layer, a->head, p) != RW_OK) {
        rc = report_failure("plot");
        goto done;
    }
    int64_t seen = 0;
    for (int t = 0; t < n; t++)
        for (int s = 0; s <= t; s++) seen += p[(size_t)t * n + s] >= 0;
    double density = (double)seen / ((double)n * (n + 1) / 2);
    char spec[64], title[512];
    rw_model_attention(m, spec, sizeof spec);
    snprintf(title, sizeof title, "%s: attention layer %d, head %d, %s, %d tokens (density %.3f)",
             a->model, a->layer, a->head, spec, n, density);
    int scale = a->scale ? a->scale : (512 / n > 1 ? 512 / n : 1);
    char tmp[4200];
    FILE *f = plot_out_open(a->out, tmp, sizeof tmp);
    rc = 1;
    if (f && ends_with(a->out, ".svg")) {
        plot_attention_svg(f, p, n, scale, !a->mask_only, a->title ? a->title : title);
        rc = plot_out_close(f, tmp, a->out, 1);
    } else if (f) {
        int ok = plot_attention_png(f, a->out, p, n, scale, !a->mask_only) == 0;
        rc = plot_out_close(f, tmp, a->out, ok);
    }
    if (rc == 0)
        printf("%s: attention layer %d, head %d of %s, %s on %d tokens of %s: density %.4f\n",
               a->out, a->layer, a->head, a->model, spec, n, a->text, density);
done:
    free(p);
    free(ids);
    rw_tokenizer_free(tok);
    rw_model_free(m);
    return rc;
}

int cmd_plot(int argc, char **argv)
{
    const char *out = NULL, *model = NULL, *title = NULL, *pos[MAX_RUNS];
    int width = 0, scale = 0;
    attention_plot at = {.layer = -1, .head = -1, .tokens = -1};
    double offset = -1;
    arg_spec specs[] = {
        {"out", ARG_STRING, &out, "PATH", "the figure to write (-o): .svg, or .png for a map", NULL,
         0, 0},
        {"connectivity", ARG_STRING, &model, "MODEL",
         "draw the first layer's connections per input of a saved model as a heat map", NULL, 0,
         0},
        {"width", ARG_INT, &width, "W", "image width of the inputs (default: square)", NULL, 1,
         1 << 20},
        {"scale", ARG_INT, &scale, "PX", "pixels per input in the heat map (default 12), per "
         "token of the attention map (default: 512 / tokens)", NULL, 1, 64},
        {"title", ARG_STRING, &title, "TEXT", "a title for the figure (SVG)", NULL, 0, 0},
        {"attention", ARG_STRING, &at.model, "MODEL",
         "draw which keys each query of a language model attended on --text, shaded by "
         "probability (PNG, or SVG if the name ends in .svg)", NULL, 0, 0},
        {"text", ARG_STRING, &at.text, "FILE", "--attention: the text the sequence comes from",
         NULL, 0, 0},
        {"offset", ARG_DOUBLE, &offset, "BYTES",
         "--attention: where in --text the sequence starts (default 0)", NULL, 0, 1e15},
        {"tokens", ARG_INT, &at.tokens, "N",
         "--attention: the sequence's length (default 128, or the context if shorter)", NULL, 1,
         4096},
        {"layer", ARG_INT, &at.layer, "L", "--attention: which attention layer, from 0 (default 0)",
         NULL, 0, 1 << 20},
        {"head", ARG_INT, &at.head, "H", "--attention: which head, from 0 (default 0)", NULL, 0,
         1 << 20},
        {"pattern", ARG_STRING, &at.pattern, "SPEC",
         "--attention: the pattern to draw instead of the model's own (as lm eval's --attention)",
         NULL, 0, 0},
        {"mask-only", ARG_FLAG, &at.mask_only, NULL,
         "--attention: one colour for every key attended, no shading", NULL, 0, 0},
    };
    arg_parser p = {"plot",
                    "rewire plot RUN.jsonl [RUN.jsonl ...] -o FIG.svg\n"
                    "       rewire plot --connectivity MODEL.safetensors -o MAP.png\n"
                    "       rewire plot --attention MODEL.safetensors --text FILE [--layer L] "
                    "[--head H] [--tokens N] -o MASK.png",
                    "Draws the test accuracy and the loss of one or more training runs (the --log "
                    "of rewire train) against epochs on shared axes, as SVG; or, with "
                    "--connectivity, how many connections each input of a saved model's first "
                    "layer has, as a heat map (PNG, or SVG if the name ends in .svg); or, with "
                    "--attention, which keys each query of a sequence from --text attended in one "
                    "head of a language model under its attention pattern (or --pattern): keys "
                    "across, queries down, a key attended shaded by its probability over the "
                    "row's largest, one the pattern skipped light grey.",
                    specs, sizeof specs / sizeof specs[0], pos, MAX_RUNS, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (!out) {
        fprintf(stderr, "rewire plot: -o FILE is required\n(see 'rewire plot --help')\n");
        return 2;
    }
    int attention_flags = at.text || at.pattern || at.mask_only || at.layer >= 0 || at.head >= 0 ||
                          at.tokens >= 0 || offset >= 0;
    if (at.model) {
        if (model || p.n_positional || width) {
            fprintf(stderr, "rewire plot: --attention draws one model's attention; no "
                            "--connectivity, --width or run logs with it\n");
            return 2;
        }
        if (!at.text) {
            fprintf(stderr, "rewire plot: --attention needs --text FILE (the sequence to run)\n");
            return 2;
        }
        if (!ends_with(out, ".svg") && !ends_with(out, ".png")) {
            fprintf(stderr, "rewire plot: --attention draws PNG or SVG: -o must end in .png or "
                            ".svg, got %s\n", out);
            return 2;
        }
        if (at.pattern && rw_attention_check(at.pattern) != RW_OK) {
            fprintf(stderr, "rewire plot: %s\n", rw_last_error());
            return 2;
        }
        at.out = out, at.title = title, at.scale = scale;
        at.layer = at.layer < 0 ? 0 : at.layer, at.head = at.head < 0 ? 0 : at.head;
        at.tokens = at.tokens < 0 ? 0 : at.tokens;
        at.offset = offset < 0 ? 0 : (long)offset;
        return plot_attention(&at);
    }
    if (attention_flags) {
        fprintf(stderr, "rewire plot: --text, --offset, --tokens, --layer, --head, --pattern and "
                        "--mask-only go with --attention MODEL\n");
        return 2;
    }
    if (scale == 0) scale = 12;
    if (model) {
        if (p.n_positional) {
            fprintf(stderr, "rewire plot: --connectivity takes no run logs\n");
            return 2;
        }
        return plot_connectivity(model, out, width, scale, title);
    }
    if (p.n_positional == 0) {
        fprintf(stderr, "rewire plot: expected one or more run logs (JSONL) or --connectivity "
                        "MODEL\n(see 'rewire plot --help')\n");
        return 2;
    }
    if (!ends_with(out, ".svg")) {
        fprintf(stderr, "rewire plot: curves are drawn as SVG: -o must end in .svg, got %s\n", out);
        return 2;
    }
    plot_run runs[MAX_RUNS];
    int n = 0;
    rc = 0;
    for (; n < p.n_positional; n++)
        if (plot_read_run(pos[n], &runs[n])) {
            rc = 1;
            break;
        }
    if (rc == 0) {
        char tmp[4200];
        FILE *f = plot_out_open(out, tmp, sizeof tmp);
        rc = 1;
        if (f) {
            plot_curves_svg(f, runs, n, title);
            rc = plot_out_close(f, tmp, out, 1);
        }
    }
    for (int i = 0; i < n; i++) plot_free_run(&runs[i]);
    if (rc == 0) printf("%s: %d run%s\n", out, n, n == 1 ? "" : "s");
    return rc;
}
