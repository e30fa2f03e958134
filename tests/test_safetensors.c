/* safetensors container: a write→read round trip, a file built by hand the
 * way other writers lay it out, and one hand-made broken file per class of
 * malformation, each checked for its status and a telling message. */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"

/* ---- helpers ------------------------------------------------------------ */

static char *temp_copy(const char *name)
{
    char *p = strdup(tu_temp_path(name));
    assert_non_null(p);
    return p;
}

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A file with the given 8-byte length field, header text and `data_len`
 * bytes of data (0, 1, 2, ...). */
static void write_raw(const char *path, uint64_t header_len, const char *header,
                      size_t data_len)
{
    size_t n = strlen(header);
    unsigned char *buf = malloc(8 + n + data_len + 1);
    assert_non_null(buf);
    for (int k = 0; k < 8; k++) buf[k] = (unsigned char)(header_len >> (8 * k));
    memcpy(buf + 8, header, n);
    for (size_t k = 0; k < data_len; k++) buf[8 + n + k] = (unsigned char)k;
    write_bytes(path, buf, 8 + n + data_len);
    free(buf);
}

static void write_st(const char *path, const char *header, size_t data_len)
{
    write_raw(path, strlen(header), header, data_len);
}

/* st_read must fail with `status` and a message that starts with the path
 * and contains `needle`; the output must be left empty. */
static void expect_read_fails(const char *path, rw_status status, const char *needle)
{
    st_file f;
    rw_status st = st_read(path, &f);
    const char *msg = rw_last_error();
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", msg);
    if (st != status || strncmp(msg, path, strlen(path)) != 0 || !strstr(msg, needle))
        fail_msg("status %d (want %d), message \"%s\" (want \"%s\")", st, status, msg, needle);
    assert_int_equal(f.count, 0);
    assert_null(f.tensors);
    assert_null(f.buffer);
    st_file_free(&f);
}

/* Writes `header` + data_len bytes, expects RW_ERR_FORMAT with `needle`. */
static void expect_bad_header(const char *header, size_t data_len, const char *needle)
{
    char *path = temp_copy("bad.safetensors");
    write_st(path, header, data_len);
    expect_read_fails(path, RW_ERR_FORMAT, needle);
    unlink(path);
    free(path);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* ---- round trips -------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    float f32[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    int32_t i32[5] = {0, -1, 2147483647, -2147483647 - 1, 42};
    int64_t i64[4] = {INT64_MAX, INT64_MIN, 0, -7};
    uint8_t u8[3] = {0, 128, 255}; /* odd size: the tensors after it are unaligned */
    int16_t i16[3] = {-32768, 32767, 1};
    uint16_t u16[1] = {65535};
    double f64[2] = {3.141592653589793, -1e300};
    float scalar = 7.0f;
    const int64_t s23[] = {2, 3}, s5[] = {5}, s22[] = {2, 2}, s3[] = {3}, s1[] = {1},
                  s2[] = {2}, s04[] = {0, 4};
    struct {
        const char *name;
        st_dtype dtype;
        int ndim;
        const int64_t *shape;
        const void *data;
        size_t nbytes;
    } want[] = {
        {"layer.0.values", ST_F32, 2, s23, f32, sizeof f32},
        {"layer.0.indices", ST_I32, 1, s5, i32, sizeof i32},
        {"step", ST_I64, 2, s22, i64, sizeof i64},
        {"mask", ST_U8, 1, s3, u8, sizeof u8},
        {"i16", ST_I16, 1, s3, i16, sizeof i16},
        {"u16", ST_U16, 1, s1, u16, sizeof u16},
        {"f64", ST_F64, 1, s2, f64, sizeof f64},
        {"scalar", ST_F32, 0, NULL, &scalar, sizeof scalar},
        {"empty", ST_F32, 2, s04, NULL, 0},
    };
    int n = (int)(sizeof want / sizeof want[0]);

    st_writer *w = st_writer_new();
    assert_non_null(w);
    for (int k = 0; k < n; k++)
        assert_int_equal(st_writer_add(w, want[k].name, want[k].dtype, want[k].ndim,
                                       want[k].shape, want[k].data), RW_OK);
    assert_int_equal(st_writer_meta(w, "format", "rewire"), RW_OK);
    assert_int_equal(st_writer_meta(w, "layer.0.shape", "old"), RW_OK);
    assert_int_equal(st_writer_meta(w, "layer.0.shape", "[784, 300]"), RW_OK); /* replaces */
    assert_int_equal(st_writer_meta(w, "note", "ünïcode \"quoted\"\n"), RW_OK);

    char *path = temp_copy("round.safetensors");
    char *tmp = malloc(strlen(path) + 5);
    assert_non_null(tmp);
    sprintf(tmp, "%s.tmp", path);
    assert_int_equal(st_writer_write(w, path), RW_OK);
    assert_int_equal(st_writer_write(w, path), RW_OK); /* overwrites */
    st_writer_free(w);
    assert_false(file_exists(tmp));

    /* The data block starts 8-byte aligned. */
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char len[8];
    assert_int_equal(fread(len, 1, 8, fp), 8);
    fclose(fp);
    uint64_t header_len = 0;
    for (int k = 0; k < 8; k++) header_len |= (uint64_t)len[k] << (8 * k);
    assert_int_equal(header_len % 8, 0);

    st_file f;
    assert_int_equal(st_read(path, &f), RW_OK);
    assert_string_equal(rw_last_error(), "");
    assert_int_equal(f.count, n);
    for (int k = 0; k < n; k++) {
        const st_tensor *t = st_find(&f, want[k].name);
        assert_non_null(t);
        assert_ptr_equal(t, &f.tensors[k]); /* file order = insertion order */
        assert_int_equal(t->dtype, want[k].dtype);
        assert_int_equal(t->ndim, want[k].ndim);
        int64_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            assert_int_equal(t->shape[d], want[k].shape[d]);
            count *= want[k].shape[d];
        }
        assert_int_equal(t->count, count);
        assert_int_equal(t->nbytes, want[k].nbytes);
        if (want[k].nbytes) assert_memory_equal(t->data, want[k].data, want[k].nbytes);
    }
    assert_null(st_find(&f, "missing"));
    assert_int_equal(f.meta_count, 3);
    assert_string_equal(st_meta(&f, "format"), "rewire");
    assert_string_equal(st_meta(&f, "layer.0.shape"), "[784, 300]");
    assert_string_equal(st_meta(&f, "note"), "ünïcode \"quoted\"\n");
    assert_null(st_meta(&f, "missing"));
    st_file_free(&f);
    st_file_free(&f); /* freeing twice is harmless: the struct is zeroed */

    unlink(path);
    free(tmp);
    free(path);
}

static void test_empty_file_round_trip(void **state)
{
    (void)state;
    st_writer *w = st_writer_new();
    assert_non_null(w);
    char *path = temp_copy("nothing.safetensors");
    assert_int_equal(st_writer_write(w, path), RW_OK);
    st_writer_free(w);
    st_file f;
    assert_int_equal(st_read(path, &f), RW_OK);
    assert_int_equal(f.count, 0);
    assert_int_equal(f.meta_count, 0);
    st_file_free(&f);
    unlink(path);
    free(path);
}

/* Laid out as other writers do it: metadata after the tensors, tensors not in
 * header order, padding spaces, offsets not sorted by key. */
static void test_read_foreign_layout(void **state)
{
    (void)state;
    const char *header = "{\"b\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[16,20]},"
                         "\"a\":{\"shape\":[2, 2],\"dtype\":\"I32\",\"data_offsets\":[0,16]},"
                         "\"__metadata__\":{\"foo\":\"bar\"}}     ";
    char *path = temp_copy("foreign.safetensors");
    write_st(path, header, 20);
    st_file f;
    assert_int_equal(st_read(path, &f), RW_OK);
    assert_int_equal(f.count, 2);
    assert_string_equal(f.tensors[0].name, "a"); /* file order */
    assert_string_equal(f.tensors[1].name, "b");
    const st_tensor *a = st_find(&f, "a"), *b = st_find(&f, "b");
    assert_int_equal(a->count, 4);
    int32_t a0;
    memcpy(&a0, a->data, 4);
    assert_int_equal(a0, 0x03020100);
    int16_t b1;
    memcpy(&b1, (const char *)b->data + 2, 2);
    assert_int_equal(b1, 0x1312);
    assert_string_equal(st_meta(&f, "foo"), "bar");
    st_file_free(&f);
    unlink(path);
    free(path);
}

static void test_dtype_helpers(void **state)
{
    (void)state;
    assert_string_equal(st_dtype_name(ST_F32), "F32");
    assert_string_equal(st_dtype_name(ST_U16), "U16");
    assert_int_equal(st_dtype_size(ST_I64), 8);
    assert_int_equal(st_dtype_size(ST_I16), 2);
    assert_int_equal(st_dtype_size((st_dtype)99), 0);
}

/* ---- malformed files ---------------------------------------------------- */

static void test_missing_file(void **state)
{
    (void)state;
    char *path = temp_copy("does-not-exist.safetensors");
    expect_read_fails(path, RW_ERR_IO, strerror(ENOENT));
    free(path);
}

static void test_short_file(void **state)
{
    (void)state;
    char *path = temp_copy("short.safetensors");
    write_bytes(path, "\x10\0\0\0\0", 5);
    expect_read_fails(path, RW_ERR_FORMAT, "shorter than the 8-byte");
    unlink(path);
    free(path);
}

static void test_header_longer_than_file(void **state)
{
    (void)state;
    char *path = temp_copy("long-header.safetensors");
    write_raw(path, 100, "{}", 4);
    expect_read_fails(path, RW_ERR_FORMAT, "header length 100 exceeds the 6 bytes");
    unlink(path);
    free(path);
}

static void test_header_enormous(void **state)
{
    (void)state;
    char *path = temp_copy("huge-header.safetensors");
    write_raw(path, (uint64_t)1 << 62, "{}", 0);
    expect_read_fails(path, RW_ERR_FORMAT, "above the limit");
    write_raw(path, UINT64_MAX, "{}", 0);
    expect_read_fails(path, RW_ERR_FORMAT, "above the limit");
    unlink(path);
    free(path);
}

static void test_header_not_json(void **state)
{
    (void)state;
    expect_bad_header("this is not json", 0, "not valid JSON");
    expect_bad_header("", 0, "not valid JSON");
    expect_bad_header("{} trailing", 0, "not valid JSON");
    expect_bad_header("{\"a\":\"\xff\xfe\"}", 0, "not valid JSON"); /* bad UTF-8 */
}

static void test_header_not_object(void **state)
{
    (void)state;
    expect_bad_header("[1, 2]", 0, "not a JSON object but an array");
    expect_bad_header("[]", 0, "not a JSON object but an array");
    expect_bad_header("42", 0, "not valid JSON"); /* jansson wants an object or array */
}

static void test_deeply_nested(void **state)
{
    (void)state;
    size_t n = 100000;
    char *deep = malloc(n + 1);
    assert_non_null(deep);
    memset(deep, '[', n);
    deep[n] = '\0';
    expect_bad_header(deep, 0, "depth");
    /* Nesting inside a valid object, in a field and in the metadata. */
    memcpy(deep, "{\"a\":", 5);
    expect_bad_header(deep, 0, "depth");
    free(deep);
    expect_bad_header("{\"t\":{\"dtype\":[[[\"F32\"]]],\"shape\":[],\"data_offsets\":[0,4]}}", 4,
                      "tensor t: dtype should be a string, got an array");
    expect_bad_header("{\"__metadata__\":{\"k\":{\"x\":{\"y\":[]}}}}", 0,
                      "metadata \"k\" should be a string, got an object");
}

/* An enormous header within the length limit: refused before jansson
 * builds millions of values. */
static void test_too_many_values(void **state)
{
    (void)state;
    size_t n = 3 * 1100000;
    char *text = malloc(n + 16);
    assert_non_null(text);
    memcpy(text, "{\"a\":[", 6);
    for (size_t k = 0; k < 1100000; k++) memcpy(text + 6 + 3 * k, "[],", 3);
    memcpy(text + 6 + n - 1, "]}", 3);
    expect_bad_header(text, 0, "header holds 2200001 JSON containers and list items, more than "
                               "the limit of 1048576");
    /* Commas and brackets inside strings do not count. */
    const char *head = "{\"__metadata__\":{\"k\":\"";
    memset(text, 'x', n);
    memcpy(text, head, strlen(head));
    for (size_t k = strlen(head); k < n; k += 2) text[k] = k % 4 == 1 ? ',' : '[';
    memcpy(text + n, "\"}}", 4);
    char *path = temp_copy("many-in-string.safetensors");
    write_st(path, text, 0);
    st_file f;
    assert_int_equal(st_read(path, &f), RW_OK);
    st_file_free(&f);
    unlink(path);
    free(path);
    free(text);
}

static void test_unknown_dtype(void **state)
{
    (void)state;
    expect_bad_header("{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
                      "tensor w: unknown dtype \"Q4\"");
}

/* Half floats widen exactly: F16's normals, subnormals, zeros, infinities
 * and NaNs; BF16 is the top half of a float. Other dtypes are refused. */
static void test_half_floats(void **state)
{
    (void)state;
    const uint16_t f16[] = {0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x03ff, 0x8000,
                            0x7c00, 0xfc00, 0x7e00};
    const float want16[] = {1.0f, -2.0f, 0.333251953125f, 65504.0f, 0x1p-24f, 0x3ffp-24f, -0.0f,
                            INFINITY, -INFINITY};
    const uint16_t bf16[] = {0x3f80, 0xc049, 0x0001, 0xff80};
    const int64_t s10[] = {10}, s4[] = {4}, s1[] = {1};
    const uint8_t b[1] = {1};
    st_writer *w = st_writer_new();
    assert_int_equal(st_writer_add(w, "h", ST_F16, 1, s10, f16), RW_OK);
    assert_int_equal(st_writer_add(w, "b", ST_BF16, 1, s4, bf16), RW_OK);
    assert_int_equal(st_writer_add(w, "m", ST_BOOL, 1, s1, b), RW_OK);
    char path[512];
    snprintf(path, sizeof path, "%s", tu_temp_path("halves.safetensors"));
    assert_int_equal(st_writer_write(w, path), RW_OK);
    st_writer_free(w);
    st_file f;
    assert_int_equal(st_read(path, &f), RW_OK);
    unlink(path);
    const st_tensor *h = st_find(&f, "h"), *bt = st_find(&f, "b"), *m = st_find(&f, "m");
    assert_true(h && bt && m && h->dtype == ST_F16 && bt->dtype == ST_BF16 && m->dtype == ST_BOOL);
    assert_int_equal(h->nbytes, 20);
    float out[10];
    assert_int_equal(st_tensor_to_f32(h, out), 0);
    for (int i = 0; i < 9; i++) assert_memory_equal(&out[i], &want16[i], sizeof(float)); /* -0 too */
    assert_true(isnan(out[9]));
    assert_int_equal(st_tensor_to_f32(bt, out), 0);
    assert_true(out[0] == 1.0f && out[1] == -3.140625f && out[2] == 0x1p-133f && out[3] == -INFINITY);
    assert_int_equal(st_tensor_to_f32(m, out), -1);
    assert_true(st_dtype_is_float(ST_F16) && st_dtype_is_float(ST_BF16) && st_dtype_is_float(ST_F32));
    assert_false(st_dtype_is_float(ST_F64) || st_dtype_is_float(ST_BOOL));
    st_file_free(&f);
}

static void test_negative_dim(void **state)
{
    (void)state;
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[3,-1],\"data_offsets\":[0,0]}}", 0,
                      "tensor w: shape dimension 1 is negative");
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,0]}}", 0,
                      "shape dimension 0 should be a non-negative integer, got a real");
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16,
                      "shape should be an array");
}

static void test_too_many_dims(void **state)
{
    (void)state;
    expect_bad_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                      "\"data_offsets\":[0,1]}}", 1, "9 dimensions, at most 8");
}

static void test_shape_overflow(void **state)
{
    (void)state;
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
                      "\"data_offsets\":[0,0]}}", 0,
                      "shape [4294967296, 4294967296, 16] of F32 overflows");
    /* The count fits, the byte count does not. */
    expect_bad_header("{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
                      "\"data_offsets\":[0,0]}}", 0, "overflows");
    /* Too big even for jansson's integers. */
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
                      "\"data_offsets\":[0,0]}}", 0, "not valid JSON");
}

static void test_offsets_size_mismatch(void **state)
{
    (void)state;
    expect_bad_header("{\"fc1.indices\":{\"dtype\":\"I32\",\"shape\":[204],"
                      "\"data_offsets\":[0,812]}}", 812,
                      "tensor fc1.indices: data_offsets [0, 812] span 812 bytes, but shape [204] "
                      "of I32 needs 816");
    expect_bad_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4,
                      "end before they begin");
    expect_bad_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0]}}", 4,
                      "data_offsets should be [begin, end]");
    expect_bad_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[-4,0]}}", 4,
                      "data_offsets should be [begin, end]");
}

static void test_offsets_beyond_data(void **state)
{
    (void)state;
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 8,
                      "tensor w: data_offsets [8, 16] reach beyond the 8-byte data block");
}

static void test_overlapping_tensors(void **state)
{
    (void)state;
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
                      "tensor b: data_offsets [4, 12] overlap tensor a");
    /* Two names for the same bytes. */
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                      "overlap tensor a");
}

static void test_gap(void **state)
{
    (void)state;
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12,
                      "data bytes [4, 8) are not covered by any tensor (next is tensor b)");
    expect_bad_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
                      "data bytes [4, 8) are not covered");
    expect_bad_header("{}", 3, "data bytes [0, 3) are not covered");
}

static void test_metadata_not_strings(void **state)
{
    (void)state;
    expect_bad_header("{\"__metadata__\":{\"epochs\":10}}", 0,
                      "metadata \"epochs\" should be a string, got an integer");
    expect_bad_header("{\"__metadata__\":[\"x\"]}", 0,
                      "\"__metadata__\" should be an object of strings, got an array");
    expect_bad_header("{\"__metadata__\":\"x\"}", 0, "\"__metadata__\" should be an object");
}

static void test_duplicate_name(void **state)
{
    (void)state;
    expect_bad_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                      "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2,
                      "duplicate");
}

static void test_missing_and_extra_fields(void **state)
{
    (void)state;
    expect_bad_header("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                      "tensor w: missing field \"dtype\"");
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
                      "tensor w: missing field \"shape\"");
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                      "tensor w: missing field \"data_offsets\"");
    expect_bad_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],"
                      "\"scale\":1}}", 4, "tensor w: unexpected field \"scale\"");
    expect_bad_header("{\"w\":[1,2,3]}", 0, "tensor w: expected an object, got an array");
}

/* ---- writer failures ---------------------------------------------------- */

static void test_write_to_missing_dir(void **state)
{
    (void)state;
    char *path = temp_copy("no-such-dir/model.safetensors");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    st_writer *w = st_writer_new();
    float x[2] = {1, 2};
    const int64_t shape[] = {2};
    assert_int_equal(st_writer_add(w, "x", ST_F32, 1, shape, x), RW_OK);
    assert_int_equal(st_writer_write(w, path), RW_ERR_IO);
    assert_non_null(strstr(rw_last_error(), path));
    assert_non_null(strstr(rw_last_error(), strerror(ENOENT)));
    assert_false(file_exists(tmp));
    assert_false(file_exists(path));
    st_writer_free(w);
    free(path);
}

/* The rename fails (PATH is a non-empty directory) after PATH.tmp was
 * written: the temporary file must be gone and PATH untouched. */
static void test_write_rename_fails(void **state)
{
    (void)state;
    char *path = temp_copy("dir-in-the-way");
    char *inner = malloc(strlen(path) + 8);
    char *tmp = malloc(strlen(path) + 5);
    assert_non_null(inner);
    assert_non_null(tmp);
    sprintf(inner, "%s/keep", path);
    sprintf(tmp, "%s.tmp", path);
    assert_int_equal(mkdir(path, 0700), 0);
    write_bytes(inner, "x", 1);

    st_writer *w = st_writer_new();
    uint8_t b[3] = {1, 2, 3};
    const int64_t shape[] = {3};
    assert_int_equal(st_writer_add(w, "b", ST_U8, 1, shape, b), RW_OK);
    assert_int_equal(st_writer_write(w, path), RW_ERR_IO);
    assert_non_null(strstr(rw_last_error(), "rename"));
    assert_false(file_exists(tmp));
    assert_true(file_exists(inner));
    st_writer_free(w);

    unlink(inner);
    rmdir(path);
    free(inner);
    free(tmp);
    free(path);
}

static void test_writer_rejects_bad_arguments(void **state)
{
    (void)state;
    st_writer *w = st_writer_new();
    assert_non_null(w);
    float x[4] = {0};
    const int64_t ok[] = {4}, neg[] = {-4}, big[] = {INT64_MAX, 2};
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(st_writer_add(w, "x", ST_F32, 1, ok, x), RW_OK);
    assert_int_equal(st_writer_add(w, "x", ST_F32, 1, ok, x), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "added twice"));
    assert_int_equal(st_writer_add(w, "__metadata__", ST_F32, 1, ok, x), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(st_writer_add(w, "bad\xff", ST_F32, 1, ok, x), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(st_writer_add(w, "y", (st_dtype)42, 1, ok, x), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(st_writer_add(w, "y", ST_F32, 9, nine, x), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(st_writer_add(w, "y", ST_F32, 1, neg, x), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(st_writer_add(w, "y", ST_F32, 2, big, x), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(st_writer_add(w, "y", ST_F32, 1, ok, NULL), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(st_writer_meta(w, "k", "\xc3"), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(st_writer_meta(w, "k", NULL), RW_ERR_INVALID_ARGUMENT);
    st_writer_free(w);
    st_writer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_empty_file_round_trip),
        cmocka_unit_test(test_read_foreign_layout),
        cmocka_unit_test(test_dtype_helpers),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_short_file),
        cmocka_unit_test(test_header_longer_than_file),
        cmocka_unit_test(test_header_enormous),
        cmocka_unit_test(test_header_not_json),
        cmocka_unit_test(test_header_not_object),
        cmocka_unit_test(test_deeply_nested),
        cmocka_unit_test(test_too_many_values),
        cmocka_unit_test(test_unknown_dtype),
        cmocka_unit_test(test_negative_dim),
        cmocka_unit_test(test_too_many_dims),
        cmocka_unit_test(test_shape_overflow),
        cmocka_unit_test(test_offsets_size_mismatch),
        cmocka_unit_test(test_offsets_beyond_data),
        cmocka_unit_test(test_overlapping_tensors),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_metadata_not_strings),
        cmocka_unit_test(test_duplicate_name),
        cmocka_unit_test(test_missing_and_extra_fields),
        cmocka_unit_test(test_write_to_missing_dir),
        cmocka_unit_test(test_write_rename_fails),
        cmocka_unit_test(test_writer_rejects_bad_arguments),
        cmocka_unit_test(test_half_floats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
