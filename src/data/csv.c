/* CSV files as datasets. Three passes over the text in memory: the first
 * rows settle the delimiter, the header and the label column; a second
 * pass counts the rows and checks each has as many cells as the first (so
 * the features are allocated once, at their size); a third parses the
 * numbers and collects the labels, whose classes are known only at the
 * end (numbers or strings). Numbers are read in the C locale whatever the
 * program's, switched for this thread only (uselocale). */
#include "data/csv.h"

#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/csv_reader.h"
#include "data/dataset.h"
#include "data/labels.h"
#include "data/read_file.h"

rw_csv_options rw_csv_options_default(void)
{
    rw_csv_options o;
    memset(&o, 0, sizeof o);
    o.label_index = -1;
    o.header = RW_CSV_HEADER_AUTO;
    o.delimiter = ',';
    return o;
}

typedef struct {
    const char *name, *text;
    size_t len;
    const rw_csv_options *opt;
    char delim;       /* as detected by the first row */
    int cols;         /* cells in every row */
    int label;        /* the label column, 0-based */
    int header_line;  /* the header's line, 0 if none */
    int first_line;   /* the line of the first row (header or data) */
    char **header;    /* [cols] the header's cells, or NULL */
} csv_layout;

static void free_names(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Copies the reader's cells. NULL when out of memory. */
static char **copy_cells(const csv_reader *r)
{
    char **c = calloc((size_t)r->ncells, sizeof *c);
    for (int i = 0; c && i < r->ncells; i++) {
        size_t len = strlen(r->cell[i]);
        c[i] = malloc(len + 1);
        if (!c[i]) {
            free_names(c, r->ncells);
            return NULL;
        }
        memcpy(c[i], r->cell[i], len + 1);
    }
    return c;
}

/* "NAME: line L, column C" and the column's header name, if any. */
static const char *where(const csv_layout *l, int line, int col, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s: line %d, column %d", l->name, line, col + 1);
    if (l->header && col < l->cols && n >= 0 && (size_t)n < cap) {
        char q[48];
        csv_quote(q, sizeof q, l->header[col], 32);
        snprintf(buf + n, cap - (size_t)n, " (\"%s\")", q);
    }
    return buf;
}

/* A reader positioned after the skipped lines (with the delimiter the
 * layout found, once it has). 0 if the text has fewer lines than that. */
static int reader_start(const csv_layout *l, csv_reader *r)
{
    csv_reader_init(r, l->name, l->text, l->len, l->delim);
    for (int i = 0; i < l->opt->skip_rows; i++)
        if (!csv_skip_line(r)) return 0;
    return 1;
}

/* The header decision of RW_CSV_HEADER_AUTO, for first row a and second
 * row b (NULL if none): a header when one of a's cells is not a number
 * while b's cell below it is one; with no second row, when any of a's
 * cells is not a number. */
static int looks_like_header(char **a, int na, const csv_reader *b)
{
    double v;
    for (int j = 0; j < na; j++) {
        if (csv_number(a[j], &v)) continue;
        if (!b || (j < b->ncells && csv_number(b->cell[j], &v))) return 1;
    }
    return 0;
}

/* Finds the label column by name or index. */
static rw_status find_label(csv_layout *l)
{
    const rw_csv_options *o = l->opt;
    if (o->label_name) {
        int found = -1;
        for (int j = 0; j < l->cols; j++) {
            if (strcmp(l->header[j], o->label_name) != 0) continue;
            if (found >= 0)
                return rw_fail(RW_ERR_FORMAT,
                               "%s: line %d: the header names columns %d and %d \"%s\": which is the label?",
                               l->name, l->header_line, found + 1, j + 1, o->label_name);
            found = j;
        }
        if (found >= 0) {
            l->label = found;
            return RW_OK;
        }
        char list[400], q[48];
        size_t used = 0;
        list[0] = '\0';
        for (int j = 0; j < l->cols; j++) {
            csv_quote(q, sizeof q, l->header[j], 24);
            int n = snprintf(list + used, sizeof list - used, "%s\"%s\"", j ? ", " : "", q);
            if (n < 0 || used + (size_t)n >= sizeof list - 8 || used > 300) {
                list[used] = '\0';
                snprintf(list + used, sizeof list - used, ", ...");
                break;
            }
            used += (size_t)n;
        }
        csv_quote(q, sizeof q, o->label_name, 32);
        return rw_fail(RW_ERR_FORMAT, "%s: line %d: no column named \"%s\" in the header; its %d columns are %s",
                       l->name, l->header_line, q, l->cols, list);
    }
    int j = o->label_index < 0 ? l->cols + o->label_index : o->label_index;
    if (o->label_index < -l->cols || o->label_index >= l->cols)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: line %d: label column index %d is out of range: rows have %d columns "
                       "(indices 0 to %d, or -%d to -1)",
                       l->name, l->first_line, o->label_index, l->cols, l->cols - 1, l->cols);
    l->label = j;
    return RW_OK;
}

/* Settles the delimiter, the header and the label column from the first
 * one or two rows. */
static rw_status csv_layout_find(csv_layout *l)
{
    const rw_csv_options *o = l->opt;
    csv_reader r;
    char **a = NULL;
    int got;
    rw_status st;
    if (!reader_start(l, &r)) {
        st = rw_fail(RW_ERR_FORMAT, "%s: no rows: the file has %d lines, all skipped (skip_rows %d)",
                     l->name, r.line, o->skip_rows);
        goto done;
    }
    st = csv_read_row(&r, &got);
    if (st != RW_OK) goto done;
    if (!got) {
        if (o->skip_rows)
            st = rw_fail(RW_ERR_FORMAT, "%s: no rows after the %d skipped lines (the file ends at line %d)",
                         l->name, o->skip_rows, r.line);
        else if (r.line == 0)
            st = rw_fail(RW_ERR_FORMAT, "%s: no rows: the file is empty", l->name);
        else
            st = rw_fail(RW_ERR_FORMAT, "%s: no rows: all %d lines are blank", l->name, r.line);
        goto done;
    }
    l->delim = r.delim;
    l->first_line = r.line;
    l->cols = r.ncells;
    a = copy_cells(&r);
    if (!a) {
        st = rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory reading line %d", l->name, r.line);
        goto done;
    }
    int header = o->header == RW_CSV_HEADER_YES || o->label_name;
    if (o->header == RW_CSV_HEADER_AUTO && !o->label_name) {
        st = csv_read_row(&r, &got);
        if (st != RW_OK) goto done;
        header = looks_like_header(a, l->cols, got ? &r : NULL);
    }
    if (header) {
        l->header = a;
        l->header_line = l->first_line;
        a = NULL;
    }
    if (l->cols < 2) {
        st = rw_fail(RW_ERR_FORMAT,
                     "%s: line %d: 1 column, expected at least 2 (the features and the label); "
                     "is the delimiter \"%s\"?",
                     l->name, l->first_line, l->delim == '\t' ? "\\t" : (char[2]){l->delim, 0});
        goto done;
    }
    st = find_label(l);
done:
    free_names(a, l->cols);
    csv_reader_free(&r);
    return st;
}

/* Counts the data rows, checking that each has l->cols cells. */
static rw_status csv_count_rows(const csv_layout *l, int *n)
{
    csv_reader r;
    reader_start(l, &r);
    rw_status st = RW_OK;
    int got, rows = 0;
    if (l->header_line) st = csv_read_row(&r, &got);
    while (st == RW_OK) {
        st = csv_read_row(&r, &got);
        if (st != RW_OK || !got) break;
        if (r.ncells != l->cols) {
            st = rw_fail(RW_ERR_FORMAT, "%s: line %d, column %d: the row has %d cells, expected %d as line %d has",
                         l->name, r.line, (r.ncells < l->cols ? r.ncells : l->cols) + 1, r.ncells,
                         l->cols, l->first_line);
            break;
        }
        if (rows == INT_MAX) {
            st = rw_fail(RW_ERR_FORMAT, "%s: line %d: more than %d data rows", l->name, r.line, INT_MAX);
            break;
        }
        rows++;
    }
    if (st == RW_OK && rows == 0)
        st = rw_fail(RW_ERR_FORMAT, "%s: no data rows after the header (line %d)", l->name, l->header_line);
    *n = rows;
    csv_reader_free(&r);
    return st;
}

/* One feature cell into *x. */
static rw_status parse_feature(const csv_layout *l, const char *cell, int line, int col, float *x)
{
    char at[600], q[64];
    double v;
    if (!*cell)
        return rw_fail(RW_ERR_FORMAT, "%s: empty cell, expected a number", where(l, line, col, at, sizeof at));
    csv_quote(q, sizeof q, cell, 40);
    if (!csv_number(cell, &v))
        return rw_fail(RW_ERR_FORMAT, "%s: expected a number, found \"%s\"", where(l, line, col, at, sizeof at), q);
    if (!isfinite(v))
        return rw_fail(RW_ERR_FORMAT, "%s: \"%s\" is not a finite number", where(l, line, col, at, sizeof at), q);
    float f = (float)v;
    if (!isfinite(f))
        return rw_fail(RW_ERR_FORMAT, "%s: \"%s\" is outside the float range (about 3.4e38)",
                       where(l, line, col, at, sizeof at), q);
    *x = f;
    return RW_OK;
}

/* The classes of the labels read; d->y from each row's label id. */
static rw_status assign_classes(const csv_layout *l, const label_set *labels, const int *row_id,
                                rw_dataset *d)
{
    int *class_of, *rep, classes;
    rw_status st = label_set_classes(labels, l->name, &class_of, &rep, &classes);
    if (st != RW_OK) return st;
    if (classes > RW_MAX_CLASSES) {
        /* The label that makes one class too many, in file order. */
        char *seen = calloc((size_t)classes, 1);
        int id = 0;
        for (int count = 0; seen && id < labels->count; id++)
            if (!seen[class_of[id]]) {
                seen[class_of[id]] = 1;
                if (++count > RW_MAX_CLASSES) break;
            }
        free(seen);
        char at[600], q[64];
        if (id >= labels->count) id = labels->count - 1;
        csv_quote(q, sizeof q, labels->text[id], 40);
        st = rw_fail(RW_ERR_FORMAT,
                     "%s: label \"%s\" is the %dth distinct one; the label column holds %d, more than the %d classes allowed",
                     where(l, labels->line[id], l->label, at, sizeof at), q, RW_MAX_CLASSES + 1, classes,
                     RW_MAX_CLASSES);
    } else {
        d->classes = classes;
        for (int i = 0; i < d->n; i++) d->y[i] = (uint8_t)class_of[row_id[i]];
        const char **names = malloc(sizeof *names * (size_t)classes);
        if (!names) {
            st = rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for class names", l->name);
        } else {
            for (int k = 0; k < classes; k++) names[k] = labels->text[rep[k]];
            st = dataset_set_class_names(d, names);
            free(names);
        }
    }
    free(class_of);
    free(rep);
    return st;
}

/* Parses the n data rows into d (allocated for them) and the labels. */
static rw_status csv_parse_rows(const csv_layout *l, rw_dataset *d, label_set *labels, int *row_id)
{
    csv_reader r;
    reader_start(l, &r);
    rw_status st = RW_OK;
    int got;
    if (l->header_line) st = csv_read_row(&r, &got);
    size_t f = (size_t)d->features;
    for (int i = 0; i < d->n && st == RW_OK; i++) {
        st = csv_read_row(&r, &got);
        if (st != RW_OK) break;
        float *x = d->x + (size_t)i * f;
        for (int j = 0; j < l->cols && st == RW_OK; j++) {
            const char *cell = r.cell[j];
            if (j == l->label) {
                char at[600];
                if (!*cell)
                    st = rw_fail(RW_ERR_FORMAT, "%s: the label is empty", where(l, r.line, j, at, sizeof at));
                else
                    st = label_set_add(labels, l->name, cell, r.line, &row_id[i]);
            } else {
                st = parse_feature(l, cell, r.line, j, x++);
            }
        }
    }
    csv_reader_free(&r);
    return st;
}

static rw_status check_options(const rw_csv_options *o)
{
    if (o->skip_rows < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_csv: skip_rows %d is negative", o->skip_rows);
    if (o->header != RW_CSV_HEADER_AUTO && o->header != RW_CSV_HEADER_YES && o->header != RW_CSV_HEADER_NO)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_csv: header mode %d is unknown", (int)o->header);
    if (o->label_name && o->header == RW_CSV_HEADER_NO)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "rw_dataset_load_csv: a label column name (\"%s\") needs a header, but header is off",
                       o->label_name);
    if (o->delimiter == '"' || o->delimiter == '\n' || o->delimiter == '\r')
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_csv: delimiter 0x%02x cannot separate cells",
                       (unsigned char)o->delimiter);
    return RW_OK;
}

rw_status csv_load_memory(const char *name, const char *text, size_t len,
                          const rw_csv_options *options, rw_dataset **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_csv: out is NULL");
    *out = NULL;
    rw_csv_options defaults = rw_csv_options_default();
    const rw_csv_options *o = options ? options : &defaults;
    rw_status st = check_options(o);
    if (st != RW_OK) return st;
    rw_clear_error();

    locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!c_locale) return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot create the C locale", name);
    locale_t old = uselocale(c_locale);

    csv_layout l = {name, text, len, o, o->delimiter, 0, 0, 0, 0, NULL};
    rw_dataset *d = NULL;
    label_set labels;
    label_set_init(&labels);
    int *row_id = NULL, n = 0;
    st = csv_layout_find(&l);
    if (st == RW_OK) st = csv_count_rows(&l, &n);
    if (st == RW_OK) st = dataset_alloc(n, l.cols - 1, 1, &d);
    if (st == RW_OK) {
        row_id = malloc(sizeof *row_id * (size_t)n);
        if (!row_id) st = rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %d labels", name, n);
    }
    if (st == RW_OK) st = csv_parse_rows(&l, d, &labels, row_id);
    if (st == RW_OK) st = assign_classes(&l, &labels, row_id, d);

    uselocale(old);
    freelocale(c_locale);
    free(row_id);
    label_set_free(&labels);
    free_names(l.header, l.cols);
    if (st != RW_OK) {
        rw_dataset_free(d);
        return st;
    }
    *out = d;
    return RW_OK;
}

rw_status rw_dataset_load_csv(const char *path, const rw_csv_options *options, rw_dataset **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_csv: out is NULL");
    *out = NULL;
    if (!path) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_csv: path is NULL");
    char *text;
    size_t len;
    rw_status st = data_read_file(path, &text, &len);
    if (st != RW_OK) return st;
    st = csv_load_memory(path, text, len, options, out);
    free(text);
    return st;
}
