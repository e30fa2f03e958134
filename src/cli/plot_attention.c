/* Which keys each query of a real sequence attended (rewire plot
 * --attention): the map of rw_model_attention_map as a PNG or SVG grid,
 * queries down, keys across; and the write-whole-or-nothing output every
 * figure goes through. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/plot.h"

FILE *plot_out_open(const char *path, char *tmp, size_t cap)
{
    if ((size_t)snprintf(tmp, cap, "%s.tmp", path) >= cap) {
        fprintf(stderr, "rewire plot: the output path %s is too long\n", path);
        return NULL;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) fprintf(stderr, "rewire plot: cannot write %s: %s\n", tmp, strerror(errno));
    return f;
}

int plot_out_close(FILE *f, const char *tmp, const char *path, int ok)
{
    int failed = ferror(f) != 0;
    failed |= fclose(f) != 0;
    if (ok && failed) fprintf(stderr, "rewire plot: could not write %s\n", tmp);
    if (ok && !failed && rename(tmp, path) != 0) {
        fprintf(stderr, "rewire plot: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
        failed = 1;
    }
    if (!ok || failed) {
        unlink(tmp);
        return 1;
    }
    return 0;
}

#define LEVELS 32

/* The colour of cell (t, s): white past the query, light grey for a key
 * it skipped, else viridis of its probability over the row's largest
 * (LEVELS steps, so an SVG row merges into few rectangles), or one dark
 * tone with shade 0. */
static void cell_colour(const float *row, float row_max, int t, int s, int shade,
                        unsigned char rgb[3])
{
    if (s > t) {
        memset(rgb, 255, 3);
    } else if (row[s] < 0) {
        memset(rgb, 221, 3);
    } else if (!shade) {
        rgb[0] = 40, rgb[1] = 60, rgb[2] = 110;
    } else {
        int level = row_max > 0 ? (int)((double)row[s] / row_max * LEVELS + 0.5) : LEVELS;
        plot_colour((double)level / LEVELS, rgb);
    }
}

static float row_max_of(const float *row, int t)
{
    float m = 0;
    for (int s = 0; s <= t; s++) m = row[s] > m ? row[s] : m;
    return m;
}

int plot_attention_png(FILE *f, const char *path, const float *p, int n, int scale, int shade)
{
    int w = n * scale, h = n * scale;
    unsigned char *rgb = malloc((size_t)w * h * 3);
    if (!rgb) {
        fprintf(stderr, "rewire plot: out of memory for a %d x %d image\n", w, h);
        return 1;
    }
    for (int t = 0; t < n; t++) {
        const float *row = p + (size_t)t * n;
        float m = row_max_of(row, t);
        unsigned char *line = rgb + (size_t)t * scale * w * 3;
        for (int s = 0; s < n; s++)
            for (int x = 0; x < scale; x++) cell_colour(row, m, t, s, shade, line + ((size_t)s * scale + x) * 3);
        for (int y = 1; y < scale; y++) memcpy(line + (size_t)y * w * 3, line, (size_t)w * 3);
    }
    int rc = plot_png_write(f, path, rgb, w, h);
    free(rgb);
    return rc;
}

void plot_attention_svg(FILE *o, const float *p, int n, int scale, int shade, const char *title)
{
    int top = 30, left = 10, bar = shade ? 60 : 0;
    fprintf(o, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
               "font-family='sans-serif' font-size='12' shape-rendering='crispEdges'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n",
            left + n * scale + 20 + bar, top + n * scale + 24);
    if (title) {
        fprintf(o, "<text x='4' y='18'>");
        plot_svg_text(o, title);
        fprintf(o, "</text>\n");
    }
    unsigned char rgb[3] = {0}, run[3];
    for (int t = 0; t < n; t++) { /* one rectangle per run of equal colour */
        const float *row = p + (size_t)t * n;
        float m = row_max_of(row, t);
        int s0 = 0;
        cell_colour(row, m, t, 0, shade, run);
        for (int s = 1; s <= n; s++) {
            if (s < n) cell_colour(row, m, t, s, shade, rgb);
            if (s < n && memcmp(rgb, run, 3) == 0) continue;
            if (run[0] != 255 || run[1] != 255 || run[2] != 255)
                fprintf(o, "<rect x='%d' y='%d' width='%d' height='%d' fill='#%02x%02x%02x'/>\n",
                        left + s0 * scale, top + t * scale, (s - s0) * scale, scale, run[0], run[1],
                        run[2]);
            s0 = s;
            memcpy(run, rgb, 3);
        }
    }
    fprintf(o, "<text x='%d' y='%d'>keys &#8594; (queries &#8595;; grey: skipped)</text>\n", left,
            top + n * scale + 16);
    if (shade) {
        int bx = left + n * scale + 20, steps = 32;
        for (int i = 0; i < steps; i++) {
            plot_colour(1.0 - (double)i / (steps - 1), rgb);
            fprintf(o, "<rect x='%d' y='%.2f' width='12' height='%.2f' fill='#%02x%02x%02x'/>\n", bx,
                    top + (double)i * n * scale / steps, (double)n * scale / steps + 0.5, rgb[0],
                    rgb[1], rgb[2]);
        }
        fprintf(o, "<text x='%d' y='%d'>row max</text>\n", bx - 4, top - 4);
        fprintf(o, "<text x='%d' y='%d'>0</text>\n", bx + 16, top + n * scale);
    }
    fprintf(o, "</svg>\n");
}
