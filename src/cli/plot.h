/* Figures drawn by rewire plot: SVG curves of training runs, and the
 * input layer's connectivity as a heat map (PNG or SVG). */
#ifndef RW_CLI_PLOT_H
#define RW_CLI_PLOT_H

#include <stdio.h>

/* One run read from a JSONL log: its epoch lines. */
typedef struct {
    const char *label;
    int n;
    double *epoch, *test_accuracy, *train_loss, *test_loss; /* [n] */
} plot_run;

/* Reads the epoch lines of a JSONL log (topology lines are skipped).
 * Returns 0, or 1 after printing what is wrong. */
int plot_read_run(const char *path, plot_run *run);
void plot_free_run(plot_run *run);

/* Test accuracy and loss (train solid, test dashed) against epochs, one
 * colour per run, on shared axes. */
void plot_curves_svg(FILE *out, const plot_run *runs, int n_runs, const char *title);

/* A width × height map of counts (row-major) with a colour bar; PNG
 * (libpng, into f; path names it in messages) or SVG. Return 0, or 1
 * after printing what is wrong. */
int plot_map_png(FILE *f, const char *path, const int *counts, int width, int height, int scale);
void plot_map_svg(FILE *out, const int *counts, int width, int height, int scale,
                  const char *title);

/* Encodes rgb [h][w][3] as PNG into f; 0, or 1 after printing what is
 * wrong. */
int plot_png_write(FILE *f, const char *path, const unsigned char *rgb, int w, int h);

/* The attention map p [n][n] of rw_model_attention_map: query t's row,
 * key s's column, each cell `scale` pixels; a key attended shaded by its
 * probability over the row's largest (shade 0: all alike), one skipped
 * light grey, a later one white. */
int plot_attention_png(FILE *f, const char *path, const float *p, int n, int scale, int shade);
void plot_attention_svg(FILE *f, const float *p, int n, int scale, int shade, const char *title);

/* An output written whole or not at all: to PATH.tmp (*tmp, cap bytes),
 * renamed over PATH by plot_out_close when ok and the writes succeeded,
 * removed otherwise. open returns NULL after printing what is wrong;
 * close returns 0, or 1 after printing. */
FILE *plot_out_open(const char *path, char *tmp, size_t cap);
int plot_out_close(FILE *f, const char *tmp, const char *path, int ok);

/* Writes text escaped for SVG/XML. */
void plot_svg_text(FILE *out, const char *text);

/* Viridis-like colour of t in [0, 1]. */
void plot_colour(double t, unsigned char rgb[3]);

#endif
