/* Datasets from NumPy .npy files: files numpy wrote (tests/data/npy, made
 * by tools/make_npy_fixtures.py), files written here byte by byte in every
 * dtype, order and format version the loader takes, and one broken file per
 * class of error, each checked for its status and for a message naming the
 * file and the field. */
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "rewire.h"
/* Internal, so that the tests can check every stored value. */
#include "data/dataset.h"

#define FIXTURES "data/npy/"

static char x_path[600], y_path[600];

/* ---- helpers ------------------------------------------------------------ */

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A .npy file of format `major`.0 with header text `dict` (padded with
 * spaces and a newline to a multiple of 64 bytes, as numpy does) and
 * `len` data bytes. */
static void write_npy(const char *path, int major, const char *dict, const void *data, size_t len)
{
    size_t pre = major == 1 ? 10 : 12, n = strlen(dict);
    size_t hlen = (pre + n + 1 + 63) / 64 * 64 - pre;
    unsigned char *buf = malloc(pre + hlen + len + 1);
    assert_non_null(buf);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t b = 0; b < pre - 8; b++) buf[8 + b] = (unsigned char)(hlen >> (8 * b));
    memcpy(buf + pre, dict, n);
    memset(buf + pre + n, ' ', hlen - n - 1);
    buf[pre + hlen - 1] = '\n';
    if (len) memcpy(buf + pre + hlen, data, len);
    write_bytes(path, buf, pre + hlen + len);
    free(buf);
}

/* The header numpy writes for a dtype and shape. */
static const char *dict_of(const char *descr, int fortran, const char *shape)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
             fortran ? "True" : "False", shape);
    return buf;
}

static void set_paths(void)
{
    snprintf(x_path, sizeof x_path, "%s", tu_temp_path("x.npy"));
    snprintf(y_path, sizeof y_path, "%s", tu_temp_path("y.npy"));
}

/* 4 samples of 3 features: x[i][j] = (3 i + j) / 4 - 1; labels 0 2 1 2. */
static const int64_t labels4[4] = {0, 2, 1, 2};

static float x_at(int i, int j) { return (float)((3 * i + j) / 4.0 - 1.0); }

static void write_x_f4(void)
{
    float x[12];
    for (int i = 0; i < 12; i++) x[i] = x_at(i / 3, i % 3);
    write_npy(x_path, 1, dict_of("<f4", 0, "(4, 3)"), x, sizeof x);
}

static void write_y(const char *descr, int size, const char *shape)
{
    unsigned char bytes[32];
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < size; b++) bytes[i * size + b] = (unsigned char)((uint64_t)labels4[i] >> (8 * b));
    write_npy(y_path, 1, dict_of(descr, 0, shape), bytes, (size_t)(4 * size));
}

static void check_dataset(const rw_dataset *d, int u1)
{
    assert_int_equal(rw_dataset_count(d), 4);
    assert_int_equal(rw_dataset_features(d), 3);
    assert_int_equal(rw_dataset_classes(d), 3);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(d->y[i], labels4[i]);
        for (int j = 0; j < 3; j++) {
            float want = u1 ? (float)(3 * i + j) : x_at(i, j);
            if (d->x[3 * i + j] != want)
                fail_msg("x[%d][%d] is %g, expected %g", i, j, (double)d->x[3 * i + j], (double)want);
        }
    }
    assert_null(rw_dataset_class_name(d, 0));
}

static void load_expect(const char *x, const char *y, int u1)
{
    rw_dataset *d = NULL;
    rw_status st = rw_dataset_load_npy(x, y, &d);
    if (st != RW_OK) fail_msg("%s + %s: %s", x, y, rw_last_error());
    check_dataset(d, u1);
    rw_dataset_free(d);
}

/* Loading must fail with RW_ERR_FORMAT, the message starting with
 * `prefix` and containing every needle (a NULL-terminated list). */
static void expect_fail(const char *prefix, ...)
{
    rw_dataset *d = (rw_dataset *)&d;
    rw_status st = rw_dataset_load_npy(x_path, y_path, &d);
    const char *msg = rw_last_error();
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", msg);
    if (st != RW_ERR_FORMAT) fail_msg("status %s, message \"%s\"", rw_status_string(st), msg);
    if (strncmp(msg, prefix, strlen(prefix)) != 0) fail_msg("message \"%s\" does not start with %s", msg, prefix);
    va_list ap;
    va_start(ap, prefix);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        if (!strstr(msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
    va_end(ap);
    assert_null(d);
}

/* ---- what loads --------------------------------------------------------- */

static void test_numpy_files(void **state)
{
    (void)state;
    load_expect(FIXTURES "x_f4.npy", FIXTURES "y_i8.npy", 0);
    load_expect(FIXTURES "x_f8_fortran.npy", FIXTURES "y_u1.npy", 0);
    load_expect(FIXTURES "x_u1.npy", FIXTURES "y_i4_column.npy", 1);
    load_expect(FIXTURES "x_f4_v2.npy", FIXTURES "y_i8.npy", 0);
    load_expect(FIXTURES "x_f4_v3.npy", FIXTURES "y_i8.npy", 0);
}

static void test_label_dtypes(void **state)
{
    (void)state;
    set_paths();
    write_x_f4();
    const struct {
        const char *descr;
        int size;
    } dtypes[] = {{"|i1", 1}, {"|u1", 1}, {"<i1", 1}, {"<u1", 1}, {">u1", 1}, {"<i2", 2}, {"<u2", 2},
                  {"<i4", 4}, {"<u4", 4}, {"<i8", 8}, {"<u8", 8}};
    for (size_t k = 0; k < sizeof dtypes / sizeof *dtypes; k++) {
        write_y(dtypes[k].descr, dtypes[k].size, "(4,)");
        load_expect(x_path, y_path, 0);
        write_y(dtypes[k].descr, dtypes[k].size, "(4, 1)");
        load_expect(x_path, y_path, 0);
    }
    /* Label 255 gives 256 classes; labels are kept as they are, so
     * unused ones are classes too. */
    int16_t y[4] = {0, 255, 3, 3};
    write_npy(y_path, 1, dict_of("<i2", 0, "(4,)"), y, sizeof y);
    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_load_npy(x_path, y_path, &d), RW_OK);
    assert_int_equal(rw_dataset_classes(d), 256);
    assert_int_equal(d->y[1], 255);
    rw_dataset_free(d);
}

static void test_feature_dtypes_orders(void **state)
{
    (void)state;
    set_paths();
    write_y("<i8", 8, "(4,)");
    /* '<f8', C and Fortran order. */
    double c[12], f[12];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            c[3 * i + j] = x_at(i, j);
            f[4 * j + i] = x_at(i, j);
        }
    write_npy(x_path, 1, dict_of("<f8", 0, "(4, 3)"), c, sizeof c);
    load_expect(x_path, y_path, 0);
    write_npy(x_path, 1, dict_of("<f8", 1, "(4, 3)"), f, sizeof f);
    load_expect(x_path, y_path, 0);
    /* '<f4' in Fortran order; '|u1' (not scaled to [0, 1]). */
    float f4[12];
    for (int k = 0; k < 12; k++) f4[k] = (float)f[k];
    write_npy(x_path, 1, dict_of("<f4", 1, "(4, 3)"), f4, sizeof f4);
    load_expect(x_path, y_path, 0);
    uint8_t u1[12];
    for (int k = 0; k < 12; k++) u1[k] = (uint8_t)k;
    write_npy(x_path, 1, dict_of("|u1", 0, "(4, 3)"), u1, sizeof u1);
    load_expect(x_path, y_path, 1);
    /* Headers as other writers (and older numpy) spell them: double
     * quotes, another key order, no trailing comma, Python 2's 4L, format
     * versions 2.0 and 3.0, no padding. */
    const char *spellings[] = {
        "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (4, 3)}",
        "{'shape': (4,3), 'fortran_order': False, 'descr': '<f8'}",
        "{ 'descr' : '<f8' ,\n'fortran_order':False,'shape':( 4L , 3L , ) , }",
    };
    for (int k = 0; k < 3; k++) {
        write_npy(x_path, 1, spellings[k], c, sizeof c);
        load_expect(x_path, y_path, 0);
    }
    write_npy(x_path, 2, dict_of("<f8", 0, "(4, 3)"), c, sizeof c);
    load_expect(x_path, y_path, 0);
    write_npy(x_path, 3, dict_of("<f8", 0, "(4, 3)"), c, sizeof c);
    load_expect(x_path, y_path, 0);
    const char *bare = "{'descr':'<f8','fortran_order':False,'shape':(4,3)}";
    unsigned char buf[256];
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)strlen(bare);
    buf[9] = 0;
    memcpy(buf + 10, bare, strlen(bare));
    memcpy(buf + 10 + strlen(bare), c, sizeof c);
    write_bytes(x_path, buf, 10 + strlen(bare) + sizeof c);
    load_expect(x_path, y_path, 0);
}

static void test_gzip(void **state)
{
    (void)state;
    set_paths();
    write_y("<i8", 8, "(4,)");
    FILE *in = fopen(FIXTURES "x_f4.npy", "rb");
    assert_non_null(in);
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    char gz[600];
    snprintf(gz, sizeof gz, "%s", tu_temp_path("x.npy.gz"));
    gzFile g = gzopen(gz, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, buf, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
    load_expect(gz, y_path, 0);
    unlink(gz);
}

/* ---- what is refused, and how it is told -------------------------------- */

static void test_preamble_errors(void **state)
{
    (void)state;
    set_paths();
    write_y("<i8", 8, "(4,)");
    write_bytes(x_path, "\x93NUMPY\x01", 7);
    expect_fail(x_path, ": file is 7 bytes, shorter than the 10-byte .npy preamble", NULL);
    write_bytes(x_path, "PK\x03\x04 this is a zip", 18);
    expect_fail(x_path, ": not a .npy file (magic 50 4b 03 04 20 74", NULL);
    float x[12] = {0};
    write_npy(x_path, 4, dict_of("<f4", 0, "(4, 3)"), x, sizeof x);
    expect_fail(x_path, ": .npy format version 4.0 is not supported (expected 1.0, 2.0 or 3.0)", NULL);
    write_bytes(x_path, "\x93NUMPY\x02\x00\x10", 9 + 1);
    expect_fail(x_path, ": file is 10 bytes, shorter than the 12-byte preamble of version 2.0", NULL);
    write_bytes(x_path, "\x93NUMPY\x01\x00\xff\x00{}", 12);
    expect_fail(x_path, ": header length 255 exceeds the 2 bytes after the preamble", NULL);
    /* A 4 GB header length in version 2.0 from a tiny file. */
    write_bytes(x_path, "\x93NUMPY\x02\x00\xff\xff\xff\xff{}", 14);
    expect_fail(x_path, ": header length 4294967295 exceeds the 2 bytes after the preamble", NULL);
}

static void test_header_errors(void **state)
{
    (void)state;
    set_paths();
    write_y("<i8", 8, "(4,)");
    float x[12] = {0};
    const struct {
        const char *dict, *needle;
    } cases[] = {
        {"['descr', '<f4']", ": header: expected '{' (the header is a Python dict) at byte 0, found \"['descr', '<\""},
        {"{descr: '<f4'}", ": header: expected a key ('descr', 'fortran_order' or 'shape') at byte 1, found \"descr: '<f4'\""},
        {"{'descr' '<f4'}", ": header: expected ':' after a key at byte 9"},
        {"{'descr': '<f4', 'fortran_order': False}", ": header has no 'shape'"},
        {"{'fortran_order': False, 'shape': (4, 3)}", ": header has no 'descr'"},
        {"{'descr': '<f4', 'shape': (4, 3)}", ": header has no 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), 'extra': 1}",
         ": header: unexpected key 'extra' (expected 'descr', 'fortran_order' and 'shape')"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4, 3)}",
         ": header: key 'descr' appears twice"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (4, 3)}",
         ": header: expected True or False for 'fortran_order' at byte 34"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [4, 3]}",
         ": header: expected a tuple '(...)' for 'shape' (not a list) at byte 50"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, -3)}",
         ": header: expected a dimension (a non-negative integer) in 'shape' at byte 54"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4 3)}", ": header: expected ',' or ')' in 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 3)}",
         ": header field 'shape': dimension 0 is too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}",
         ": header field 'shape' has more than 8 dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 3)}",
         ": header field 'shape' (4294967296, 4294967296, 3) of '<f4' overflows the byte count"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4, 3)}",
         ": header field 'descr' is a structured dtype (a list of fields)"},
        {"{'descr': '<\\x66', 'fortran_order': False, 'shape': (4, 3)}",
         ": header: escape sequence in a string at byte 12"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (4, 3)}",
         ": header: expected ',' or '}' after a value at byte 17, found \"fortran_orde\""},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3)} junk", ": header: \"junk"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3)", ": header: expected ',' or '}' after a value at byte"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        write_npy(x_path, 1, cases[k].dict, x, sizeof x);
        expect_fail(x_path, cases[k].needle, NULL);
    }
}

static void test_dtype_shape_errors(void **state)
{
    (void)state;
    set_paths();
    write_y("<i8", 8, "(4,)");
    float x[12] = {0};
    /* Unsupported feature dtypes, named. */
    const char *bad_x[] = {">f4", "<f2", "<c8", "<i4", "|b1", "<U3", "=f8", "|f4"};
    for (size_t k = 0; k < sizeof bad_x / sizeof *bad_x; k++) {
        write_npy(x_path, 1, dict_of(bad_x[k], 0, "(4, 3)"), x, sizeof x);
        char needle[128];
        snprintf(needle, sizeof needle, ": header field 'descr': dtype '%s'%s is not supported for features",
                 bad_x[k], bad_x[k][0] == '>' ? " (big-endian)" : bad_x[k][0] == '=' ? " (native byte order)" : "");
        expect_fail(x_path, needle, "(expected '<f4', '<f8' or '|u1', little-endian)", NULL);
    }
    /* Wrong number of dimensions, zero dimensions. */
    write_npy(x_path, 1, dict_of("<f4", 0, "(12,)"), x, sizeof x);
    expect_fail(x_path, ": header field 'shape' (12,) has 1 dimension, expected 2: (samples, features)", NULL);
    write_npy(x_path, 1, dict_of("<f4", 0, "(2, 2, 3)"), x, sizeof x);
    expect_fail(x_path, ": header field 'shape' (2, 2, 3) has 3 dimensions, expected 2", NULL);
    write_npy(x_path, 1, dict_of("<f4", 0, "()"), x, 4);
    expect_fail(x_path, ": header field 'shape' () has 0 dimensions", NULL);
    write_npy(x_path, 1, dict_of("<f4", 0, "(0, 3)"), x, 0);
    expect_fail(x_path, ": header field 'shape' (0, 3): no samples", NULL);
    write_npy(x_path, 1, dict_of("<f4", 0, "(4, 0)"), x, 0);
    expect_fail(x_path, ": header field 'shape' (4, 0): no features", NULL);
    write_npy(x_path, 1, dict_of("<f4", 0, "(2147483648, 1)"), x, 0);
    expect_fail(x_path, ": header field 'shape' (2147483648, 1) of '<f4' needs 8589934592 data bytes, the file has 0 (truncated)", NULL);
    /* Truncated data, trailing bytes. */
    write_npy(x_path, 1, dict_of("<f4", 0, "(4, 3)"), x, sizeof x - 1);
    expect_fail(x_path, ": header field 'shape' (4, 3) of '<f4' needs 48 data bytes, the file has 47 (truncated)", NULL);
    write_npy(x_path, 1, dict_of("<f4", 0, "(4, 2)"), x, sizeof x);
    expect_fail(x_path, ": header field 'shape' (4, 2) of '<f4' needs 32 data bytes, the file has 48 (trailing bytes)", NULL);

    /* Labels: not an integer dtype, wrong shape, truncated. */
    write_x_f4();
    const char *bad_y[] = {"<f8", ">i4", "|b1", "<f4"};
    for (size_t k = 0; k < sizeof bad_y / sizeof *bad_y; k++) {
        write_y(bad_y[k], bad_y[k][2] - '0', "(4,)");
        char needle[128];
        snprintf(needle, sizeof needle, ": header field 'descr': dtype '%s'%s is not supported for labels",
                 bad_y[k], bad_y[k][0] == '>' ? " (big-endian)" : "");
        expect_fail(y_path, needle, "(expected an integer dtype", NULL);
    }
    write_y("<i2", 2, "(2, 2)");
    expect_fail(y_path, ": header field 'shape' (2, 2): expected (samples,) or (samples, 1) for labels", NULL);
    write_y("<i2", 2, "(4, 1, 1)");
    expect_fail(y_path, ": header field 'shape' (4, 1, 1): expected (samples,) or (samples, 1)", NULL);
    write_y("<i2", 2, "(5,)");
    expect_fail(y_path, ": header field 'shape' (5,) of '<i2' needs 10 data bytes, the file has 8 (truncated)", NULL);
}

static void test_value_errors(void **state)
{
    (void)state;
    set_paths();
    write_y("<i8", 8, "(4,)");
    float x[12] = {0};
    x[7] = NAN;
    write_npy(x_path, 1, dict_of("<f4", 0, "(4, 3)"), x, sizeof x);
    expect_fail(x_path, ": element [2, 1] is nan, expected a finite feature", NULL);
    /* In Fortran order the element is named by its row and column too. */
    write_npy(x_path, 1, dict_of("<f4", 1, "(4, 3)"), x, sizeof x);
    expect_fail(x_path, ": element [3, 1] is nan", NULL);
    double d[12] = {0};
    d[11] = -INFINITY;
    write_npy(x_path, 1, dict_of("<f8", 0, "(4, 3)"), d, sizeof d);
    expect_fail(x_path, ": element [3, 2] is -inf, expected a finite feature", NULL);
    d[11] = 1e300;
    write_npy(x_path, 1, dict_of("<f8", 0, "(4, 3)"), d, sizeof d);
    expect_fail(x_path, ": element [3, 2] is 1e+300, outside the float range", NULL);

    /* Labels outside [0, 255], and a count that is not X's. */
    write_x_f4();
    int64_t y[4] = {0, 1, -1, 2};
    write_npy(y_path, 1, dict_of("<i8", 0, "(4,)"), y, sizeof y);
    expect_fail(y_path, ": label -1 at index 2 is outside [0, 255]", NULL);
    y[2] = 256;
    write_npy(y_path, 1, dict_of("<i8", 0, "(4,)"), y, sizeof y);
    expect_fail(y_path, ": label 256 at index 2 is outside [0, 255]", NULL);
    uint64_t big[4] = {0, 0, 0, UINT64_MAX};
    write_npy(y_path, 1, dict_of("<u8", 0, "(4,)"), big, sizeof big);
    expect_fail(y_path, ": label 18446744073709551615 at index 3 is outside [0, 255]", NULL);
    int8_t s8[4] = {0, 1, -128, 2};
    write_npy(y_path, 1, dict_of("|i1", 0, "(4,)"), s8, sizeof s8);
    expect_fail(y_path, ": label -128 at index 2 is outside [0, 255]", NULL);
    write_npy(y_path, 1, dict_of("<i8", 0, "(3,)"), y, 24);
    expect_fail(x_path, " holds 4 samples but ", y_path, " holds 3 labels", NULL);
}

static void test_io_and_arguments(void **state)
{
    (void)state;
    set_paths();
    write_x_f4();
    write_y("<i8", 8, "(4,)");
    rw_dataset *d = (rw_dataset *)&d;
    assert_int_equal(rw_dataset_load_npy("/nonexistent/x.npy", y_path, &d), RW_ERR_IO);
    assert_null(d);
    assert_non_null(strstr(rw_last_error(), "/nonexistent/x.npy: cannot open"));
    assert_int_equal(rw_dataset_load_npy(x_path, "/nonexistent/y.npy", &d), RW_ERR_IO);
    assert_non_null(strstr(rw_last_error(), "/nonexistent/y.npy: cannot open"));
    assert_int_equal(rw_dataset_load_npy(NULL, y_path, &d), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_load_npy(x_path, y_path, NULL), RW_ERR_INVALID_ARGUMENT);
    /* A CSV given where a .npy belongs. */
    write_bytes(x_path, "a,b,c\n1,2,3\n", 12);
    expect_fail(x_path, ": not a .npy file (magic 61 2c 62 2c 63 0a", NULL);
    unlink(x_path);
    unlink(y_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numpy_files),
        cmocka_unit_test(test_label_dtypes),
        cmocka_unit_test(test_feature_dtypes_orders),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_preamble_errors),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_dtype_shape_errors),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_io_and_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
