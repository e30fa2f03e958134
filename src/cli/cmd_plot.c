/* rewire plot RUN.jsonl [...] -o FIG.svg: accuracy and loss curves of runs;
 * rewire plot --connectivity MODEL -o MAP.png: the input layer's
 * connections per input (pixel) as a heat map. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
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
    int rc = 0;
    if (ends_with(out, ".svg")) {
        FILE *f = fopen(out, "w");
        if (!f) {
            fprintf(stderr, "rewire plot: cannot write %s\n", out);
            rc = 1;
        } else {
            plot_map_svg(f, counts, width, in / width, scale, title ? title : default_title);
            if (fclose(f) != 0) fprintf(stderr, "rewire plot: could not write %s\n", out), rc = 1;
        }
    } else {
        rc = plot_map_png(out, counts, width, in / width, scale);
    }
    free(counts);
    if (rc == 0)
        printf("%s: fc1 connections per input: min %d, max %d, mean %.2f; %d of %d inputs "
               "unconnected\n",
               out, lo, hi, (double)total / in, unconnected, in);
    return rc;
}

int cmd_plot(int argc, char **argv)
{
    const char *out = NULL, *model = NULL, *title = NULL, *pos[MAX_RUNS];
    int width = 0, scale = 12;
    arg_spec specs[] = {
        {"out", ARG_STRING, &out, "PATH", "the figure to write (-o): .svg, or .png for a map", NULL,
         0, 0},
        {"connectivity", ARG_STRING, &model, "MODEL",
         "draw the first layer's connections per input of a saved model as a heat map", NULL, 0,
         0},
        {"width", ARG_INT, &width, "W", "image width of the inputs (default: square)", NULL, 1,
         1 << 20},
        {"scale", ARG_INT, &scale, "PX", "pixels per input in the heat map (default 12)", NULL, 1,
         64},
        {"title", ARG_STRING, &title, "TEXT", "a title for the figure", NULL, 0, 0},
    };
    arg_parser p = {"plot",
                    "rewire plot RUN.jsonl [RUN.jsonl ...] -o FIG.svg\n"
                    "       rewire plot --connectivity MODEL.safetensors -o MAP.png",
                    "Draws the test accuracy and the loss of one or more training runs (the --log "
                    "of rewire train) against epochs on shared axes, as SVG; or, with "
                    "--connectivity, how many connections each input of a saved model's first "
                    "layer has, as a heat map (PNG, or SVG if the name ends in .svg).",
                    specs, sizeof specs / sizeof specs[0], pos, MAX_RUNS, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (!out) {
        fprintf(stderr, "rewire plot: -o FILE is required\n(see 'rewire plot --help')\n");
        return 2;
    }
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
        FILE *f = fopen(out, "w");
        if (!f) {
            fprintf(stderr, "rewire plot: cannot write %s\n", out);
            rc = 1;
        } else {
            plot_curves_svg(f, runs, n, title);
            if (fclose(f) != 0) fprintf(stderr, "rewire plot: could not write %s\n", out), rc = 1;
        }
    }
    for (int i = 0; i < n; i++) plot_free_run(&runs[i]);
    if (rc == 0) printf("%s: %d run%s\n", out, n, n == 1 ? "" : "s");
    return rc;
}
