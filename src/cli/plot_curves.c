#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/plot.h"

int plot_read_run(const char *path, plot_run *run)
{
    memset(run, 0, sizeof *run);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "rewire plot: cannot open %s\n", path);
        return 1;
    }
    int cap = 0, line_no = 0;
    char line[1 << 16];
    while (fgets(line, sizeof line, f)) {
        line_no++;
        if (line[0] == '\n' || line[0] == '\0') continue;
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        if (!o || !json_is_object(o)) {
            fprintf(stderr, "rewire plot: %s line %d is not a JSON object: %s\n", path, line_no,
                    err.text);
            json_decref(o);
            fclose(f);
            plot_free_run(run);
            return 1;
        }
        json_t *e = json_object_get(o, "epoch"), *acc = json_object_get(o, "test_accuracy");
        if (!json_object_get(o, "event") && json_is_number(e) && json_is_number(acc)) {
            if (run->n == cap) {
                cap = cap ? 2 * cap : 16;
                double **arrays[] = {&run->epoch, &run->test_accuracy, &run->train_loss,
                                     &run->test_loss};
                for (int i = 0; i < 4; i++) {
                    double *p = realloc(*arrays[i], sizeof(double) * (size_t)cap);
                    if (!p) {
                        fprintf(stderr, "rewire plot: out of memory reading %s\n", path);
                        json_decref(o);
                        fclose(f);
                        plot_free_run(run);
                        return 1;
                    }
                    *arrays[i] = p;
                }
            }
            json_t *tl = json_object_get(o, "train_loss"), *vl = json_object_get(o, "test_loss");
            run->epoch[run->n] = json_number_value(e);
            run->test_accuracy[run->n] = 100.0 * json_number_value(acc);
            run->train_loss[run->n] = json_is_number(tl) ? json_number_value(tl) : NAN;
            run->test_loss[run->n] = json_is_number(vl) ? json_number_value(vl) : NAN;
            run->n++;
        }
        json_decref(o);
    }
    fclose(f);
    if (run->n == 0) {
        fprintf(stderr, "rewire plot: %s holds no epoch lines (expected the --log of rewire train)\n",
                path);
        plot_free_run(run);
        return 1;
    }
    /* The label: the file name without folder and extension. */
    const char *slash = strrchr(path, '/');
    run->label = slash ? slash + 1 : path;
    return 0;
}

void plot_free_run(plot_run *run)
{
    free(run->epoch);
    free(run->test_accuracy);
    free(run->train_loss);
    free(run->test_loss);
    memset(run, 0, sizeof *run);
}

void plot_svg_text(FILE *o, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '<') fputs("&lt;", o);
        else if (*p == '>') fputs("&gt;", o);
        else if (*p == '&') fputs("&amp;", o);
        else if (*p == '\'') fputs("&apos;", o);
        else fputc(*p, o);
    }
}

static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* A "nice" tick step (1, 2 or 5 times a power of ten) for a range. */
static double nice_step(double range, int ticks)
{
    double raw = range / ticks, p = pow(10, floor(log10(raw))), m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
}

typedef struct {
    double x0, y0, w, h;         /* plot area in pixels */
    double xmin, xmax, ymin, ymax;
} axes;

static double px(const axes *a, double x) { return a->x0 + (x - a->xmin) / (a->xmax - a->xmin) * a->w; }
static double py(const axes *a, double y) { return a->y0 + a->h - (y - a->ymin) / (a->ymax - a->ymin) * a->h; }

static void draw_axes(FILE *o, axes *a, const char *ylabel)
{
    double ys = nice_step(a->ymax - a->ymin, 5), xs = nice_step(a->xmax - a->xmin, 6);
    a->ymin = floor(a->ymin / ys) * ys;
    a->ymax = ceil(a->ymax / ys) * ys;
    if (xs < 1) xs = 1;
    fprintf(o, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#444'/>\n",
            a->x0, a->y0, a->w, a->h);
    for (double y = a->ymin; y <= a->ymax + 1e-9 * ys; y += ys) {
        fprintf(o, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke='#ddd'/>\n", a->x0,
                a->x0 + a->w, py(a, y), py(a, y));
        fprintf(o, "<text x='%.1f' y='%.1f' text-anchor='end'>%g</text>\n", a->x0 - 6,
                py(a, y) + 4, fabs(y) < 1e-12 ? 0.0 : y);
    }
    for (double x = ceil(a->xmin / xs) * xs; x <= a->xmax + 1e-9; x += xs)
        fprintf(o, "<text x='%.1f' y='%.1f' text-anchor='middle'>%g</text>\n", px(a, x),
                a->y0 + a->h + 16, x);
    fprintf(o, "<text x='%.1f' y='%.1f' text-anchor='middle'>epoch</text>\n", a->x0 + a->w / 2,
            a->y0 + a->h + 34);
    fprintf(o, "<text transform='translate(%.1f,%.1f) rotate(-90)' text-anchor='middle'>%s</text>\n",
            a->x0 - 44, a->y0 + a->h / 2, ylabel);
}

static void polyline(FILE *o, const axes *a, const double *x, const double *y, int n,
                     const char *colour, int dashed)
{
    fprintf(o, "<polyline fill='none' stroke='%s' stroke-width='2'%s points='", colour,
            dashed ? " stroke-dasharray='6,4'" : "");
    for (int i = 0; i < n; i++)
        if (isfinite(y[i])) fprintf(o, "%.1f,%.1f ", px(a, x[i]), py(a, y[i]));
    fprintf(o, "'/>\n");
}

void plot_curves_svg(FILE *o, const plot_run *runs, int n_runs, const char *title)
{
    double emin = INFINITY, emax = -INFINITY, amin = INFINITY, amax = -INFINITY, lmin = INFINITY,
           lmax = -INFINITY;
    for (int r = 0; r < n_runs; r++)
        for (int i = 0; i < runs[r].n; i++) {
            emin = fmin(emin, runs[r].epoch[i]);
            emax = fmax(emax, runs[r].epoch[i]);
            amin = fmin(amin, runs[r].test_accuracy[i]);
            amax = fmax(amax, runs[r].test_accuracy[i]);
            double ls[] = {runs[r].train_loss[i], runs[r].test_loss[i]};
            for (int j = 0; j < 2; j++)
                if (isfinite(ls[j])) lmin = fmin(lmin, ls[j]), lmax = fmax(lmax, ls[j]);
        }
    if (emax <= emin) emax = emin + 1;
    if (amax <= amin) amax = amin + 1;
    if (!(lmax > lmin)) lmin = 0, lmax = 1;
    int legend_rows = (n_runs + 2) / 3, height = 420 + 22 * legend_rows;
    fprintf(o, "<svg xmlns='http://www.w3.org/2000/svg' width='1000' height='%d' "
               "font-family='sans-serif' font-size='12'>\n"
               "<rect width='100%%' height='100%%' fill='white'/>\n", height);
    if (title) {
        fprintf(o, "<text x='500' y='22' text-anchor='middle' font-size='15'>");
        plot_svg_text(o, title);
        fprintf(o, "</text>\n");
    }
    axes acc = {70, 40, 390, 300, emin, emax, amin, amax};
    axes loss = {580, 40, 390, 300, emin, emax, lmin, lmax};
    draw_axes(o, &acc, "test accuracy (%)");
    draw_axes(o, &loss, "loss (train solid, test dashed)");
    for (int r = 0; r < n_runs; r++) {
        const char *c = palette[r % 10];
        polyline(o, &acc, runs[r].epoch, runs[r].test_accuracy, runs[r].n, c, 0);
        polyline(o, &loss, runs[r].epoch, runs[r].train_loss, runs[r].n, c, 0);
        polyline(o, &loss, runs[r].epoch, runs[r].test_loss, runs[r].n, c, 1);
        double lx = 70 + (r % 3) * 300, ly = 400 + 22 * (r / 3);
        fprintf(o, "<line x1='%.0f' x2='%.0f' y1='%.0f' y2='%.0f' stroke='%s' stroke-width='3'/>\n",
                lx, lx + 24, ly - 4, ly - 4, c);
        fprintf(o, "<text x='%.0f' y='%.0f'>", lx + 30, ly);
        plot_svg_text(o, runs[r].label);
        fprintf(o, " (%.2f%%)</text>\n", runs[r].test_accuracy[runs[r].n - 1]);
    }
    fprintf(o, "</svg>\n");
}
