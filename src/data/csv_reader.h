/* Rows and cells of CSV text (RFC 4180 quoting, without line breaks inside
 * quotes): the tokenizer under csv.c. A reader walks a buffer one row at a
 * time; the cells of the row last read are unescaped, trimmed and
 * NUL-terminated in reader-owned memory, valid until the next read. */
#ifndef RW_DATA_CSV_READER_H
#define RW_DATA_CSV_READER_H

#include <stddef.h>

#include "rewire.h"

/* A line (a row's text) longer than this is refused: no tabular file needs
 * it, and a binary file without line breaks is caught before its whole
 * length is scanned as one row. */
#define CSV_MAX_LINE ((size_t)1 << 24)

typedef struct {
    const char *name;      /* the file, for messages */
    const char *p, *end;   /* the text not read yet */
    int line;              /* 1-based line of the row last read (or skipped) */
    char delim;            /* 0 until detected */
    /* The row last read: */
    int ncells;
    char **cell;           /* [ncells] pointers into text */
    int cell_cap;
    char *text;            /* the cells, one after another */
    size_t text_cap;
} csv_reader;

/* A reader over text[0..len) (which need not be NUL-terminated); a UTF-8
 * byte-order mark at its start is skipped. delim 0: detected from the
 * first row read. */
void csv_reader_init(csv_reader *r, const char *name, const char *text, size_t len, char delim);
void csv_reader_free(csv_reader *r);

/* Skips one line, blank or not. 0 at the end of the text, else 1. */
int csv_skip_line(csv_reader *r);

/* Reads the next row that is not blank (blank: nothing but spaces, tabs
 * and a CR), setting *got to 1, or to 0 at the end of the text. Errors
 * (RW_ERR_FORMAT, "NAME: line L, column C: ..."): a line longer than
 * CSV_MAX_LINE, a NUL byte, a quote left open at the end of the line,
 * text after a closing quote; RW_ERR_NO_MEMORY. */
rw_status csv_read_row(csv_reader *r, int *got);

/* 1 if s (a whole cell) is a number for strtod in the C locale, its value
 * in *v; 0 otherwise (also for an empty cell). */
int csv_number(const char *s, double *v);

/* Writes s into out[0..cap) for a message: at most `max` bytes of it,
 * control characters as '?', and "..." when cut. */
void csv_quote(char *out, size_t cap, const char *s, size_t max);

#endif
