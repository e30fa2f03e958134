/* CSV tokenizer. A row is one line: LF or CRLF ends it, and a quoted cell
 * may hold the delimiter and "" (a quote) but not a line break, so every
 * message can name the row's line. Spaces and tabs around a cell are not
 * part of it (unless the tab is the delimiter). */
#include "data/csv_reader.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void csv_reader_init(csv_reader *r, const char *name, const char *text, size_t len, char delim)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->p = text;
    r->end = text + len;
    r->delim = delim;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) r->p += 3;
}

void csv_reader_free(csv_reader *r)
{
    free(r->cell);
    free(r->text);
    r->cell = NULL;
    r->text = NULL;
}

/* The end of the line starting at p (its LF, or the end of the text), and
 * the end of its content (before a CR that precedes the LF). */
static const char *line_end(const csv_reader *r, const char *p, const char **content_end)
{
    const char *e = memchr(p, '\n', (size_t)(r->end - p));
    if (!e) e = r->end;
    const char *c = e;
    if (c > p && c[-1] == '\r') c--;
    *content_end = c;
    return e;
}

int csv_skip_line(csv_reader *r)
{
    if (r->p >= r->end) return 0;
    const char *c, *e = line_end(r, r->p, &c);
    r->p = e < r->end ? e + 1 : e;
    r->line++;
    return 1;
}

static int is_space(const csv_reader *r, char c) { return (c == ' ' || c == '\t') && c != r->delim; }

/* Of ',', ';' and tab, the one the line holds most of outside quotes
 * (',' on a tie or when there is none). */
static char detect_delimiter(const char *p, const char *e)
{
    const char cand[3] = {',', ';', '\t'};
    size_t count[3] = {0, 0, 0};
    int quoted = 0;
    for (; p < e; p++) {
        if (*p == '"') quoted = !quoted;
        for (int k = 0; k < 3 && !quoted; k++) count[k] += *p == cand[k];
    }
    int best = 0;
    for (int k = 1; k < 3; k++)
        if (count[k] > count[best]) best = k;
    return cand[best];
}

static rw_status add_cell(csv_reader *r, char *start)
{
    if (r->ncells == r->cell_cap) {
        int cap = r->cell_cap ? 2 * r->cell_cap : 64;
        char **grown = realloc(r->cell, sizeof *grown * (size_t)cap);
        if (!grown) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory reading line %d", r->name, r->line);
        r->cell = grown;
        r->cell_cap = cap;
    }
    r->cell[r->ncells++] = start;
    return RW_OK;
}

/* Splits the line [p, e) into cells. The text buffer holds at least
 * 2 (e - p) + 2 bytes: every byte of the line once, plus a NUL per cell
 * (at most one per byte, plus one). */
static rw_status split_cells(csv_reader *r, const char *p, const char *e)
{
    char *out = r->text;
    r->ncells = 0;
    for (;;) {
        int col = r->ncells + 1;
        while (p < e && is_space(r, *p)) p++;
        char *start = out;
        if (p < e && *p == '"') {
            for (p++;;) {
                const char *q = memchr(p, '"', (size_t)(e - p));
                if (!q)
                    return rw_fail(RW_ERR_FORMAT,
                                   "%s: line %d, column %d: the quote that opens the cell is not closed "
                                   "before the end of the line (line breaks inside quotes are not supported)",
                                   r->name, r->line, col);
                memcpy(out, p, (size_t)(q - p));
                out += q - p;
                p = q + 1;
                if (p < e && *p == '"') {
                    *out++ = '"';
                    p++;
                } else {
                    break;
                }
            }
            while (p < e && is_space(r, *p)) p++;
            if (p < e && *p != r->delim) {
                char found[8], delim[8];
                csv_quote(found, sizeof found, (char[2]){*p, 0}, 1);
                csv_quote(delim, sizeof delim, (char[2]){r->delim, 0}, 1);
                return rw_fail(RW_ERR_FORMAT,
                               "%s: line %d, column %d: \"%s\" after the closing quote, expected the "
                               "delimiter \"%s\" or the end of the line",
                               r->name, r->line, col, found, r->delim == '\t' ? "\\t" : delim);
            }
        } else {
            const char *q = memchr(p, r->delim, (size_t)(e - p));
            if (!q) q = e;
            const char *t = q;
            while (t > p && is_space(r, t[-1])) t--;
            memcpy(out, p, (size_t)(t - p));
            out += t - p;
            p = q;
        }
        *out++ = '\0';
        if (strlen(start) != (size_t)(out - 1 - start))
            return rw_fail(RW_ERR_FORMAT, "%s: line %d, column %d: a NUL byte (is this a text file?)",
                           r->name, r->line, col);
        rw_status st = add_cell(r, start);
        if (st != RW_OK) return st;
        if (p >= e) return RW_OK;
        p++; /* the delimiter */
    }
}

rw_status csv_read_row(csv_reader *r, int *got)
{
    *got = 0;
    while (r->p < r->end) {
        const char *p = r->p;
        /* Look for the LF no further than the limit allows. */
        size_t span = (size_t)(r->end - p);
        if (span > CSV_MAX_LINE + 2) span = CSV_MAX_LINE + 2;
        const char *nl = memchr(p, '\n', span);
        const char *e = nl ? nl : p + span;
        const char *c = e;
        if (c > p && c[-1] == '\r') c--;
        r->line++;
        if ((size_t)(c - p) > CSV_MAX_LINE)
            return rw_fail(RW_ERR_FORMAT,
                           "%s: line %d, column 1: the line is longer than %zu bytes (is this a CSV file?)",
                           r->name, r->line, CSV_MAX_LINE);
        r->p = e < r->end ? e + 1 : e;
        const char *q = p;
        while (q < c && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == c) continue; /* blank */

        if (!r->delim) r->delim = detect_delimiter(p, c);
        size_t need = 2 * (size_t)(c - p) + 2;
        if (need > r->text_cap) {
            char *grown = realloc(r->text, need);
            if (!grown)
                return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory reading line %d", r->name, r->line);
            r->text = grown;
            r->text_cap = need;
        }
        rw_status st = split_cells(r, p, c);
        if (st != RW_OK) return st;
        *got = 1;
        return RW_OK;
    }
    return RW_OK;
}

int csv_number(const char *s, double *v)
{
    if (!*s) return 0;
    char *e;
    *v = strtod(s, &e);
    return *e == '\0';
}

void csv_quote(char *out, size_t cap, const char *s, size_t max)
{
    if (cap == 0) return;
    size_t n = 0, i = 0;
    for (; s[i] && i < max && n + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[n++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (s[i] && n + 4 < cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}
