/* Tabular datasets from CSV files written here (good ones of every shape
 * the loader accepts, and one broken file per class of error, each checked
 * for its status and for a message naming the file, line and column), and
 * their class names through splits, heads and fingerprints. .npy files are
 * in test_data_npy.c; per-feature stats and the fractional split in
 * test_data.c. */
#include "testutil.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "rewire.h"
/* Internal, so that the tests can check every stored value. */
#include "data/csv_reader.h"
#include "data/dataset.h"

/* ---- helpers ------------------------------------------------------------ */

static char csv_path[600];

static void write_file(const char *path, const char *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Writes `text` to the test's CSV file and loads it. */
static rw_status load_text(const char *text, const rw_csv_options *o, rw_dataset **d)
{
    snprintf(csv_path, sizeof csv_path, "%s", tu_temp_path("data.csv"));
    write_file(csv_path, text, strlen(text));
    return rw_dataset_load_csv(csv_path, o, d);
}

static rw_dataset *load_ok(const char *text, const rw_csv_options *o)
{
    rw_dataset *d = NULL;
    rw_status st = load_text(text, o, &d);
    if (st != RW_OK) fail_msg("loading failed: %s", rw_last_error());
    return d;
}

/* Loading must fail with `want`, the message starting with the file's path
 * and containing every needle (a NULL-terminated list); *out stays NULL. */
static void expect_fail(const char *text, const rw_csv_options *o, rw_status want, ...)
{
    rw_dataset *d = (rw_dataset *)&d;
    rw_status st = load_text(text, o, &d);
    const char *msg = rw_last_error();
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", msg);
    if (st != want) fail_msg("status %s, message \"%s\"; expected %s", rw_status_string(st), msg,
                             rw_status_string(want));
    if (want == RW_ERR_FORMAT && strncmp(msg, csv_path, strlen(csv_path)) != 0)
        fail_msg("message \"%s\" does not start with the path", msg);
    va_list ap;
    va_start(ap, want);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        if (!strstr(msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
    va_end(ap);
    assert_null(d);
}

static void expect_x(const rw_dataset *d, const float *want, int count)
{
    assert_int_equal(d->n * d->features, count);
    for (int i = 0; i < count; i++)
        if (d->x[i] != want[i]) fail_msg("x[%d] is %g, expected %g", i, (double)d->x[i], (double)want[i]);
}

static void expect_y(const rw_dataset *d, const uint8_t *want, int n)
{
    assert_int_equal(d->n, n);
    for (int i = 0; i < n; i++)
        if (d->y[i] != want[i]) fail_msg("y[%d] is %d, expected %d", i, d->y[i], want[i]);
}

static void expect_names(const rw_dataset *d, int classes, ...)
{
    assert_int_equal(rw_dataset_classes(d), classes);
    va_list ap;
    va_start(ap, classes);
    for (int k = 0; k < classes; k++) {
        const char *want = va_arg(ap, const char *), *got = rw_dataset_class_name(d, k);
        if (!got || strcmp(got, want) != 0) fail_msg("class %d is \"%s\", expected \"%s\"", k, got, want);
    }
    va_end(ap);
    assert_null(rw_dataset_class_name(d, classes));
    assert_null(rw_dataset_class_name(d, -1));
}

/* ---- what loads --------------------------------------------------------- */

static void test_header_auto(void **state)
{
    (void)state;
    rw_dataset *d = load_ok("a,b,label\n1,2,0\n3,4,1\n-5,6e3,1\n", NULL);
    assert_int_equal(rw_dataset_count(d), 3);
    assert_int_equal(rw_dataset_features(d), 2);
    expect_x(d, (float[]){1, 2, 3, 4, -5, 6000}, 6);
    expect_y(d, (uint8_t[]){0, 1, 1}, 3);
    expect_names(d, 2, "0", "1");
    rw_dataset_free(d);

    /* No header: every row is data. */
    d = load_ok("1,2,0\n3,4,1\n", NULL);
    expect_x(d, (float[]){1, 2, 3, 4}, 4);
    rw_dataset_free(d);

    /* Column by column: "x" over 1 makes a header even when the labels are
     * strings in both rows; strings over strings do not. */
    d = load_ok("x,y,label\n1,2,cat\n", NULL);
    assert_int_equal(d->n, 1);
    rw_dataset_free(d);
    d = load_ok("1,2,cat\n3,4,dog\n", NULL);
    assert_int_equal(d->n, 2);
    expect_names(d, 2, "cat", "dog");
    rw_dataset_free(d);
    /* A numeric header is data unless the header is forced. */
    rw_csv_options o = rw_csv_options_default();
    o.header = RW_CSV_HEADER_YES;
    d = load_ok("1,2,3\n4,5,0\n", &o);
    assert_int_equal(d->n, 1);
    expect_x(d, (float[]){4, 5}, 2);
    rw_dataset_free(d);
    /* Header forced off: the names are cells that are not numbers. */
    o.header = RW_CSV_HEADER_NO;
    expect_fail("a,b,c\n1,2,0\n", &o, RW_ERR_FORMAT, ": line 1, column 1: expected a number, found \"a\"",
                NULL);
}

static void test_quoted_crlf_blank(void **state)
{
    (void)state;
    /* Quotes around delimiters and "" escapes, spaces around cells,
     * quoted numbers; CRLF; a byte-order mark; blank lines in the middle
     * and at the end. */
    const char *text = "\xEF\xBB\xBF\"x, y\",\"b\"\"q\",label\r\n"
                       "\"1.5\", 2 ,\"cat, dog\"\r\n"
                       "\r\n"
                       "  3 ,\t4,\"say \"\"hi\"\"\"\r\n"
                       "5,6,  \"cat, dog\"  \r\n"
                       "\r\n";
    rw_dataset *d = load_ok(text, NULL);
    expect_x(d, (float[]){1.5f, 2, 3, 4, 5, 6}, 6);
    expect_y(d, (uint8_t[]){0, 1, 0}, 3);
    expect_names(d, 2, "cat, dog", "say \"hi\"");
    rw_dataset_free(d);

    /* LF only, no final line break. */
    d = load_ok("1,2,0\n3,4,1", NULL);
    expect_x(d, (float[]){1, 2, 3, 4}, 4);
    rw_dataset_free(d);
}

static void test_label_column(void **state)
{
    (void)state;
    const char *text = "id,f1,kind,f2\n10,1.5,b,2.5\n11,3.5,a,4.5\n";
    rw_csv_options o = rw_csv_options_default();
    /* By name. */
    o.label_name = "kind";
    rw_dataset *d = load_ok(text, &o);
    expect_x(d, (float[]){10, 1.5f, 2.5f, 11, 3.5f, 4.5f}, 6);
    expect_y(d, (uint8_t[]){1, 0}, 2);
    expect_names(d, 2, "a", "b");
    rw_dataset_free(d);
    /* The same column by index, from the start and from the end. */
    o.label_name = NULL;
    o.label_index = 2;
    d = load_ok(text, &o);
    expect_x(d, (float[]){10, 1.5f, 2.5f, 11, 3.5f, 4.5f}, 6);
    rw_dataset_free(d);
    o.label_index = -2;
    d = load_ok(text, &o);
    expect_x(d, (float[]){10, 1.5f, 2.5f, 11, 3.5f, 4.5f}, 6);
    rw_dataset_free(d);
    /* The first column; the last (-1, the default) holds numbers. */
    o.label_index = 0;
    d = load_ok("1,2,3\n0,5,6\n1,8,9\n", &o);
    expect_x(d, (float[]){2, 3, 5, 6, 8, 9}, 6);
    expect_y(d, (uint8_t[]){1, 0, 1}, 3);
    rw_dataset_free(d);
    d = load_ok("1,2,3\n0,5,6\n1,8,9\n", NULL);
    expect_x(d, (float[]){1, 2, 0, 5, 1, 8}, 6);
    expect_names(d, 3, "3", "6", "9");
    rw_dataset_free(d);
    /* A name finds its column in a header that AUTO would not see: the
     * name implies a header. */
    o.label_name = "3";
    d = load_ok("1,2,3\n0,5,6\n", &o);
    assert_int_equal(d->n, 1);
    expect_x(d, (float[]){0, 5}, 2);
    rw_dataset_free(d);
}

static void test_label_order(void **state)
{
    (void)state;
    /* Strings: byte order, whatever the order in the file. */
    rw_dataset *d = load_ok("1,virginica\n2,setosa\n3,versicolor\n4,setosa\n", NULL);
    expect_names(d, 3, "setosa", "versicolor", "virginica");
    expect_y(d, (uint8_t[]){2, 0, 1, 0}, 4);
    rw_dataset_free(d);
    /* Numbers: numeric order (10 after 9, -1 first); 2 and 2.0 and 2e0
     * are one class, named as first written. */
    d = load_ok("1,10\n2,9\n3,2\n4,-1\n5,2.0\n6, 2e0\n", NULL);
    expect_names(d, 4, "-1", "2", "9", "10");
    expect_y(d, (uint8_t[]){3, 2, 1, 0, 1, 1}, 6);
    rw_dataset_free(d);
    /* One label that is not a number makes them all strings. */
    d = load_ok("1,10\n2,9\n3,x\n", NULL);
    expect_names(d, 3, "10", "9", "x");
    rw_dataset_free(d);
    /* One class is a dataset too; 256 are the most. */
    d = load_ok("1,same\n2,same\n", NULL);
    expect_names(d, 1, "same");
    rw_dataset_free(d);
    char *text = malloc(256 * 16);
    assert_non_null(text);
    size_t used = 0;
    for (int k = 255; k >= 0; k--) used += (size_t)sprintf(text + used, "%d,c%03d\n", k, k);
    d = load_ok(text, NULL);
    assert_int_equal(rw_dataset_classes(d), 256);
    assert_string_equal(rw_dataset_class_name(d, 255), "c255");
    assert_int_equal(d->y[0], 255);
    rw_dataset_free(d);
    free(text);
}

static void test_delimiters_skip(void **state)
{
    (void)state;
    rw_csv_options o = rw_csv_options_default();
    o.delimiter = ';';
    rw_dataset *d = load_ok("a;b;y\n1.5;2;0\n3;4;1\n", &o);
    expect_x(d, (float[]){1.5f, 2, 3, 4}, 4);
    rw_dataset_free(d);
    o.delimiter = '\t';
    d = load_ok("a\tb\ty\n1.5\t2\t0\n 3 \t4\t1\n", &o);
    expect_x(d, (float[]){1.5f, 2, 3, 4}, 4);
    rw_dataset_free(d);
    /* Detected: the one the first row holds most of, outside quotes. */
    o.delimiter = 0;
    d = load_ok("a;b;\"c,d,e\"\n1;2;0\n", &o);
    expect_x(d, (float[]){1, 2}, 2);
    rw_dataset_free(d);
    d = load_ok("1\t2\t0\n3\t4\t1\n", &o);
    expect_x(d, (float[]){1, 2, 3, 4}, 4);
    rw_dataset_free(d);
    d = load_ok("1,2,0\n3,4,1\n", &o);
    expect_x(d, (float[]){1, 2, 3, 4}, 4);
    rw_dataset_free(d);

    /* skip_rows skips lines of anything, blank ones included, before the
     * header (scikit-learn's files start with a line of counts). */
    o = rw_csv_options_default();
    o.skip_rows = 3;
    d = load_ok("150,4,setosa,versicolor,virginica\n\n\"an unclosed quote\nsl,sw,species\n5.1,3.5,0\n4.9,3,1\n", &o);
    expect_x(d, (float[]){5.1f, 3.5f, 4.9f, 3}, 4);
    rw_dataset_free(d);
}

static void test_values_as_written(void **state)
{
    (void)state;
    /* Not rescaled, any finite float: exponents, hex floats, signs,
     * denormals, the float range's ends. */
    rw_dataset *d = load_ok("-1e30,0x1p3,+7,1e-40,3.4028234e38,-0.0,0\n", NULL);
    expect_x(d, (float[]){-1e30f, 8, 7, 1e-40f, 3.4028234e38f, -0.0f}, 6);
    rw_dataset_free(d);

    /* In a program whose locale writes 1,5 the file's 1.5 is still 1.5
     * (where such a locale is installed). */
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "de_DE.utf8")) {
        assert_true(strtod("1,5", NULL) == 1.5);
        d = load_ok("1.5;2.25;0\n", &(rw_csv_options){.delimiter = ';', .label_index = -1});
        expect_x(d, (float[]){1.5f, 2.25f}, 2);
        rw_dataset_free(d);
        /* And the program's locale is left as it was. */
        assert_true(strtod("1,5", NULL) == 1.5);
        setlocale(LC_NUMERIC, "C");
    } else {
        print_message("no de_DE locale here: the C-locale check is skipped\n");
    }
}

static void test_gzip(void **state)
{
    (void)state;
    const char *text = "a,b,y\n1,2,0\n3,4,1\n";
    char gz[600];
    snprintf(gz, sizeof gz, "%s", tu_temp_path("data.csv.gz"));
    gzFile f = gzopen(gz, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, text, (unsigned)strlen(text)), (int)strlen(text));
    assert_int_equal(gzclose(f), Z_OK);
    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_load_csv(gz, NULL, &d), RW_OK);
    expect_x(d, (float[]){1, 2, 3, 4}, 4);
    rw_dataset_free(d);
    unlink(gz);
}

/* ---- what is refused, and how it is told -------------------------------- */

static void test_structure_errors(void **state)
{
    (void)state;
    /* Ragged rows, short and long: how many cells against how many. */
    expect_fail("a,b,c\n1,2,3\n4,5\n", NULL, RW_ERR_FORMAT,
                ": line 3, column 3: the row has 2 cells, expected 3 as line 1 has", NULL);
    expect_fail("1,2,3\n\n4,5,6,7\n", NULL, RW_ERR_FORMAT,
                ": line 3, column 4: the row has 4 cells, expected 3 as line 1 has", NULL);
    /* scikit-learn's files without skip_rows: a first line of 5 cells. */
    expect_fail("150,4,setosa,versicolor,virginica\n5.1,3.5,1.4,0.2,0\n4.9,3.0,1.4,0.2,0\n5.0,3.6,1.4,0.2\n",
                NULL, RW_ERR_FORMAT, ": line 4, column 5: the row has 4 cells, expected 5 as line 1 has",
                NULL);
    /* Nothing to load. */
    expect_fail("", NULL, RW_ERR_FORMAT, ": no rows: the file is empty", NULL);
    expect_fail("\n  \r\n\n", NULL, RW_ERR_FORMAT, ": no rows: all 3 lines are blank", NULL);
    rw_csv_options o = rw_csv_options_default();
    o.skip_rows = 5;
    expect_fail("a\nb\n", &o, RW_ERR_FORMAT, ": no rows: the file has 2 lines, all skipped (skip_rows 5)", NULL);
    o.skip_rows = 1;
    expect_fail("junk\n\n", &o, RW_ERR_FORMAT, ": no rows after the 1 skipped lines (the file ends at line 2)", NULL);
    expect_fail("a,b,label\n", NULL, RW_ERR_FORMAT, ": no data rows after the header (line 1)", NULL);
    expect_fail("a,b,label\n\n\n", NULL, RW_ERR_FORMAT, ": no data rows after the header (line 1)", NULL);
    /* One column: no features. */
    expect_fail("1\n2\n", NULL, RW_ERR_FORMAT, ": line 1: 1 column, expected at least 2", NULL);
    o = rw_csv_options_default();
    o.delimiter = ';';
    expect_fail("1,2\n3,4\n", &o, RW_ERR_FORMAT, "is the delimiter \";\"?", NULL);
    /* Quotes. */
    expect_fail("1,2,0\n\"3,4,1\n", NULL, RW_ERR_FORMAT,
                ": line 2, column 1: the quote that opens the cell is not closed", NULL);
    expect_fail("1,2,0\n3,\"4\"x,1\n", NULL, RW_ERR_FORMAT,
                ": line 2, column 2: \"x\" after the closing quote", NULL);
    /* A NUL byte. */
    snprintf(csv_path, sizeof csv_path, "%s", tu_temp_path("data.csv"));
    write_file(csv_path, "1,2,0\n3,4\0,1\n", 13);
    rw_dataset *d = (rw_dataset *)&d;
    assert_int_equal(rw_dataset_load_csv(csv_path, NULL, &d), RW_ERR_FORMAT);
    assert_null(d);
    assert_non_null(strstr(rw_last_error(), ": line 2, column 2: a NUL byte"));
}

static void test_long_line(void **state)
{
    (void)state;
    /* A row one byte longer than the limit (a binary file without line
     * breaks looks like this), then one exactly at it. */
    size_t n = CSV_MAX_LINE + 1;
    char *text = malloc(n + 16);
    assert_non_null(text);
    memcpy(text, "1,2\n", 4);
    memset(text + 4, '7', n);
    memcpy(text + 4 + n, "\n", 2);
    expect_fail(text, NULL, RW_ERR_FORMAT, ": line 2, column 1: the line is longer than 16777216 bytes",
                NULL);
    size_t max = CSV_MAX_LINE;
    memset(text + 4, '0', max);
    text[5] = '.';
    memcpy(text + 4 + max - 2, ",1\r\n", 5);
    rw_dataset *d = load_ok(text, NULL);
    assert_int_equal(d->n, 2);
    free(text);
    rw_dataset_free(d);
}

static void test_value_errors(void **state)
{
    (void)state;
    /* Not a number: the cell quoted, with the column's header name. */
    expect_fail("a,b,label\n1,2,0\n1,abc,0\n", NULL, RW_ERR_FORMAT,
                ": line 3, column 2 (\"b\"): expected a number, found \"abc\"", NULL);
    /* A long cell is cut in the message. */
    expect_fail("1,2,0\n1,2x3456789012345678901234567890123456789012345678901234567890,0\n", NULL,
                RW_ERR_FORMAT, ": line 2, column 2: expected a number, found \"2x34567890123456789012345678901234567890...\"",
                NULL);
    /* A comma decimal separator is not a number, nor 1.5 in a quoted cell
     * with spaces after it. */
    rw_csv_options o = rw_csv_options_default();
    o.delimiter = ';';
    expect_fail("1,5;2;0\n2,5;3;1\n", &o, RW_ERR_FORMAT, ": line 1, column 1: expected a number, found \"1,5\"", NULL);
    expect_fail("1,2,0\n1,\"1.5 \",0\n", NULL, RW_ERR_FORMAT, "column 2: expected a number, found \"1.5 \"", NULL);
    /* Not finite, or beyond float. */
    expect_fail("1,2,0\nnan,2,0\n", NULL, RW_ERR_FORMAT, ": line 2, column 1: \"nan\" is not a finite number", NULL);
    expect_fail("1,2,0\n1,-Inf,0\n", NULL, RW_ERR_FORMAT, ": line 2, column 2: \"-Inf\" is not a finite number", NULL);
    expect_fail("1,1e999,0\n", NULL, RW_ERR_FORMAT, ": line 1, column 2: \"1e999\" is not a finite number", NULL);
    expect_fail("1,2,0\n1,-1e39,0\n", NULL, RW_ERR_FORMAT,
                ": line 2, column 2: \"-1e39\" is outside the float range", NULL);
    /* Empty cells: a feature, a label. */
    expect_fail("a,b,y\n1,,0\n", NULL, RW_ERR_FORMAT, ": line 2, column 2 (\"b\"): empty cell, expected a number", NULL);
    expect_fail("a,b,y\n1,2,0\n1,2,\"\"\n", NULL, RW_ERR_FORMAT, ": line 3, column 3 (\"y\"): the label is empty", NULL);
}

static void test_label_errors(void **state)
{
    (void)state;
    rw_csv_options o = rw_csv_options_default();
    o.label_name = "species";
    expect_fail("sepal length,sepal width,\"kind, of\"\n1,2,0\n", &o, RW_ERR_FORMAT,
                ": line 1: no column named \"species\" in the header; its 3 columns are "
                "\"sepal length\", \"sepal width\", \"kind, of\"", NULL);
    /* Many columns: the list is cut. */
    char text[4096];
    size_t used = 0;
    for (int j = 0; j < 100; j++) used += (size_t)sprintf(text + used, "%scolumn_%d", j ? "," : "", j);
    used += (size_t)sprintf(text + used, "\n");
    for (int j = 0; j < 100; j++) used += (size_t)sprintf(text + used, "%s%d", j ? "," : "", j);
    sprintf(text + used, "\n");
    expect_fail(text, &o, RW_ERR_FORMAT, "its 100 columns are \"column_0\", \"column_1\"", ", ...", NULL);
    assert_true(strlen(rw_last_error()) < 600);
    /* A name given twice in the header. */
    expect_fail("species,a,species\n1,2,0\n", &o, RW_ERR_FORMAT,
                ": line 1: the header names columns 1 and 3 \"species\"", NULL);
    /* An index outside the row. */
    o.label_name = NULL;
    o.label_index = 3;
    expect_fail("1,2,0\n", &o, RW_ERR_FORMAT,
                ": line 1: label column index 3 is out of range: rows have 3 columns (indices 0 to 2, or -3 to -1)",
                NULL);
    o.label_index = -4;
    expect_fail("\n\n1,2,0\n", &o, RW_ERR_FORMAT, ": line 3: label column index -4 is out of range", NULL);
    /* More than 256 classes: the label that makes the 257th, where it is,
     * and the count. */
    char *many = malloc(300 * 16);
    assert_non_null(many);
    used = (size_t)sprintf(many, "x,y\n");
    for (int k = 0; k < 300; k++) used += (size_t)sprintf(many + used, "%d,%d\n", k, k % 2 ? k : 1000 - k);
    expect_fail(many, NULL, RW_ERR_FORMAT,
                ": line 258, column 2 (\"y\"): label \"744\" is the 257th distinct one; the label column holds 300, "
                "more than the 256 classes allowed", NULL);
    free(many);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    rw_dataset *d = (rw_dataset *)&d;
    rw_csv_options o = rw_csv_options_default();
    o.skip_rows = -1;
    assert_int_equal(load_text("1,2\n", &o, &d), RW_ERR_INVALID_ARGUMENT);
    assert_null(d);
    assert_non_null(strstr(rw_last_error(), "skip_rows -1 is negative"));
    o = rw_csv_options_default();
    o.label_name = "y";
    o.header = RW_CSV_HEADER_NO;
    assert_int_equal(load_text("1,2\n", &o, &d), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "needs a header"));
    o = rw_csv_options_default();
    o.delimiter = '"';
    assert_int_equal(load_text("1,2\n", &o, &d), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_load_csv(NULL, NULL, &d), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_load_csv("x.csv", NULL, NULL), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_load_csv("/nonexistent/rewire.csv", NULL, &d), RW_ERR_IO);
    assert_null(d);
    assert_non_null(strstr(rw_last_error(), "/nonexistent/rewire.csv: cannot open"));
}

/* ---- splits and names --------------------------------------------------- */

static void test_split_fraction(void **state)
{
    (void)state;
    char text[4096];
    size_t used = (size_t)sprintf(text, "id,kind\n");
    for (int i = 0; i < 150; i++) used += (size_t)sprintf(text + used, "%d,%s\n", i, i % 3 ? "b" : "a");
    rw_dataset *d = load_ok(text, NULL);
    rw_dataset *tr = NULL, *te = NULL, *tr2 = NULL, *te2 = NULL;
    assert_int_equal(rw_dataset_split_fraction(d, 0.2, 7, &tr, &te), RW_OK);
    assert_int_equal(rw_dataset_count(tr), 120);
    assert_int_equal(rw_dataset_count(te), 30);
    /* The same as rw_dataset_split with the rounded count. */
    assert_int_equal(rw_dataset_split(d, 30, 7, &tr2, &te2), RW_OK);
    assert_memory_equal(te->x, te2->x, sizeof(float) * 30);
    assert_memory_equal(tr->y, tr2->y, 120);
    /* Class names go with the parts, and with a head. */
    expect_names(tr, 2, "a", "b");
    expect_names(te, 2, "a", "b");
    for (int i = 0; i < te->n; i++) assert_int_equal(te->y[i], (int)te->x[i] % 3 ? 1 : 0);
    rw_dataset *h = NULL;
    assert_int_equal(rw_dataset_head(te, 3, &h), RW_OK);
    expect_names(h, 2, "a", "b");
    rw_dataset_free(h);
    rw_dataset_free(tr);
    rw_dataset_free(te);
    rw_dataset_free(tr2);
    rw_dataset_free(te2);
    rw_dataset_free(d);
}

/* Names are part of the data a checkpoint fingerprints: the same numbers
 * under other names are other data. Datasets without names (IDX) keep
 * the fingerprint they had. */
static void test_names_in_fingerprint(void **state)
{
    (void)state;
    rw_dataset *a = load_ok("1,cat\n2,dog\n", NULL), *b = load_ok("1,ant\n2,bee\n", NULL);
    assert_memory_equal(a->x, b->x, sizeof(float) * 2);
    assert_memory_equal(a->y, b->y, 2);
    assert_true(dataset_fingerprint(a, DATASET_FINGERPRINT_VERSION) != dataset_fingerprint(b, DATASET_FINGERPRINT_VERSION));
    rw_dataset *m = NULL;
    assert_int_equal(rw_dataset_from_memory(a->x, a->y, 2, 1, 2, &m), RW_OK);
    assert_null(rw_dataset_class_name(m, 0));
    assert_true(dataset_fingerprint(m, DATASET_FINGERPRINT_VERSION) != dataset_fingerprint(a, DATASET_FINGERPRINT_VERSION));
    rw_dataset_free(a);
    rw_dataset_free(b);
    rw_dataset_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_auto),
        cmocka_unit_test(test_quoted_crlf_blank),
        cmocka_unit_test(test_label_column),
        cmocka_unit_test(test_label_order),
        cmocka_unit_test(test_delimiters_skip),
        cmocka_unit_test(test_values_as_written),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_label_errors),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_split_fraction),
        cmocka_unit_test(test_names_in_fingerprint),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(tu_temp_path("data.csv"));
    return failed;
}
