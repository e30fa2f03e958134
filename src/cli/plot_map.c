#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plot.h"

void plot_colour(double t, unsigned char rgb[3])
{
    /* Anchors of matplotlib's viridis, linearly interpolated. */
    static const double v[][3] = {{68, 1, 84},    {59, 82, 139},  {33, 145, 140},
                                  {94, 201, 98},  {253, 231, 37}};
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    double x = t * 4;
    int i = x >= 4 ? 3 : (int)x;
    double f = x - i;
    for (int c = 0; c < 3; c++) rgb[c] = (unsigned char)(v[i][c] + f * (v[i + 1][c] - v[i][c]) + 0.5);
}

static void count_range(const int *counts, int n, int *lo, int *hi)
{
    *lo = *hi = n ? counts[0] : 0;
    for (int i = 1; i < n; i++) {
        if (counts[i] < *lo) *lo = counts[i];
        if (counts[i] > *hi) *hi = counts[i];
    }
}

/* The colour bar: 3 cells of gap, 2 cells wide, bottom = low, top = high. */
#define BAR_GAP 1
#define BAR_WIDTH 1

/* Digits 0-9 of a 3 × 5 pixel font, one row per 3-bit number, for the
 * colour bar's labels. */
static const unsigned char digit_rows[10][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};

typedef struct {
    unsigned char *rgb; /* [h][w][3] */
    int w, h;
} canvas;

static void draw_number(canvas *c, int x, int y, int value, int px)
{
    char text[16];
    snprintf(text, sizeof text, "%d", value);
    for (int i = 0; text[i]; i++, x += 4 * px) {
        if (text[i] < '0' || text[i] > '9') continue;
        const unsigned char *g = digit_rows[text[i] - '0'];
        for (int gy = 0; gy < 5 * px; gy++)
            for (int gx = 0; gx < 3 * px; gx++) {
                int X = x + gx, Y = y + gy;
                if (X < 0 || Y < 0 || X >= c->w || Y >= c->h) continue;
                if (g[gy / px] >> (2 - gx / px) & 1) memset(c->rgb + ((size_t)Y * c->w + X) * 3, 0, 3);
            }
    }
}

int plot_png_write(FILE *f, const char *path, const unsigned char *rgb, int w, int h)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "rewire plot: could not encode %s as PNG\n", path);
        png_destroy_write_struct(&png, &info);
        return 1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, rgb + (size_t)y * w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int plot_map_png(FILE *f, const char *path, const int *counts, int width, int height, int scale)
{
    int lo, hi;
    count_range(counts, width * height, &lo, &hi);
    int px = scale / 4 > 0 ? scale / 4 : 1, margin = scale;
    int bar_x = margin + (width + BAR_GAP) * scale;
    canvas c = {NULL, bar_x + BAR_WIDTH * scale + 4 * px + 8 * 4 * px + margin,
                height * scale + 2 * margin};
    c.rgb = malloc((size_t)c.w * c.h * 3);
    if (!c.rgb) {
        fprintf(stderr, "rewire plot: out of memory for a %d x %d image\n", c.w, c.h);
        return 1;
    }
    memset(c.rgb, 255, (size_t)c.w * c.h * 3);
    for (int y = 0; y < height * scale; y++)
        for (int x = 0; x < width * scale; x++) {
            int v = counts[(y / scale) * width + x / scale];
            plot_colour(hi > lo ? (double)(v - lo) / (hi - lo) : 0.5,
                        c.rgb + ((size_t)(y + margin) * c.w + x + margin) * 3);
        }
    for (int y = 0; y < height * scale; y++)
        for (int x = 0; x < BAR_WIDTH * scale; x++)
            plot_colour(1.0 - (double)y / (height * scale - 1 > 0 ? height * scale - 1 : 1),
                        c.rgb + ((size_t)(y + margin) * c.w + bar_x + x) * 3);
    int label_x = bar_x + BAR_WIDTH * scale + 4 * px;
    draw_number(&c, label_x, margin, hi, px);
    draw_number(&c, label_x, margin + height * scale - 5 * px, lo, px);

    int rc = plot_png_write(f, path, c.rgb, c.w, c.h);
    free(c.rgb);
    return rc;
}

void plot_map_svg(FILE *o, const int *counts, int width, int height, int scale, const char *title)
{
    int lo, hi;
    count_range(counts, width * height, &lo, &hi);
    int top = 30, W = (width + BAR_GAP + BAR_WIDTH) * scale + 60, H = height * scale + top + 10;
    fprintf(o, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
               "font-family='sans-serif' font-size='12' shape-rendering='crispEdges'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n", W, H);
    if (title) {
        fprintf(o, "<text x='%d' y='18'>", 4);
        plot_svg_text(o, title);
        fprintf(o, "</text>\n");
    }
    unsigned char rgb[3];
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            int c = counts[y * width + x];
            plot_colour(hi > lo ? (double)(c - lo) / (hi - lo) : 0.5, rgb);
            fprintf(o, "<rect x='%d' y='%d' width='%d' height='%d' fill='#%02x%02x%02x'><title>%d</title></rect>\n",
                    x * scale, top + y * scale, scale, scale, rgb[0], rgb[1], rgb[2], c);
        }
    int bx = (width + BAR_GAP) * scale, steps = 64;
    for (int i = 0; i < steps; i++) {
        plot_colour(1.0 - (double)i / (steps - 1), rgb);
        fprintf(o, "<rect x='%d' y='%.2f' width='%d' height='%.2f' fill='#%02x%02x%02x'/>\n", bx,
                top + (double)i * height * scale / steps, BAR_WIDTH * scale,
                (double)height * scale / steps + 0.5, rgb[0], rgb[1], rgb[2]);
    }
    fprintf(o, "<text x='%d' y='%d'>%d</text>\n", bx + BAR_WIDTH * scale + 4, top + 10, hi);
    fprintf(o, "<text x='%d' y='%d'>%d</text>\n", bx + BAR_WIDTH * scale + 4, top + height * scale, lo);
    fprintf(o, "</svg>\n");
}
