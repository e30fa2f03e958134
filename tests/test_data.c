/* Datasets: the shipped Fashion-MNIST subset, IDX files written here (good
 * and deliberately broken), and split / head / from_memory / stats. Runs
 * from the tests folder, so the subset is at data/fashion-small. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "rewire.h"
/* Internal, so that the tests can check every stored value. */
#include "data/dataset.h"

#define SMALL "data/fashion-small"

/* ---- helpers ------------------------------------------------------------ */

/* The features as floats (an IDX dataset keeps bytes: made on asking). */
static const float *X(const rw_dataset *d)
{
    const float *x = NULL;
    rw_dataset_arrays(d, &x, NULL);
    return x;
}

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* An IDX header: 0, 0, type, ndim, then the dims big-endian. Returns its
 * length. */
static size_t idx_header(uint8_t *buf, uint8_t type, int ndim, const uint32_t *dims)
{
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = type;
    buf[3] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++) {
        buf[4 + 4 * d] = (uint8_t)(dims[d] >> 24);
        buf[5 + 4 * d] = (uint8_t)(dims[d] >> 16);
        buf[6 + 4 * d] = (uint8_t)(dims[d] >> 8);
        buf[7 + 4 * d] = (uint8_t)dims[d];
    }
    return 4 + 4 * (size_t)ndim;
}

/* Writes an unsigned-byte IDX file with `len` data bytes after the header
 * (which may disagree with the dims, to make broken files). */
static void write_idx(const char *path, int ndim, const uint32_t *dims, const uint8_t *data,
                      size_t len)
{
    uint8_t *buf = malloc(16 + len);
    assert_non_null(buf);
    size_t h = idx_header(buf, 0x08, ndim, dims);
    if (len) memcpy(buf + h, data, len);
    write_bytes(path, buf, h + len);
    free(buf);
}

static char *dup_path(const char *name)
{
    const char *p = tu_temp_path(name);
    char *s = malloc(strlen(p) + 1);
    assert_non_null(s);
    strcpy(s, p);
    return s;
}

/* 3 images of 2 × 2 pixels and their labels, as plain IDX files. */
static const uint8_t tiny_pixels[12] = {0, 255, 51, 102, 1, 2, 3, 4, 200, 100, 50, 25};
static const uint8_t tiny_labels[3] = {2, 0, 1};

static void write_tiny(const char *images, const char *labels)
{
    uint32_t idims[3] = {3, 2, 2}, ldims[1] = {3};
    write_idx(images, 3, idims, tiny_pixels, sizeof tiny_pixels);
    write_idx(labels, 1, ldims, tiny_labels, sizeof tiny_labels);
}

/* Loading must fail with `want`; the message starts with `prefix` (when
 * given) and contains `needle`; *out stays NULL. */
static void expect_load_fail(const char *images, const char *labels, rw_status want,
                             const char *prefix, const char *needle)
{
    rw_dataset *d = (rw_dataset *)&d; /* must be overwritten with NULL */
    rw_status st = rw_dataset_load_idx(images, labels, &d);
    const char *msg = rw_last_error();
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", msg);
    if (st != want || (prefix && strncmp(msg, prefix, strlen(prefix)) != 0) ||
        !strstr(msg, needle))
        fail_msg("status %s, message \"%s\"; expected %s with \"%s\"", rw_status_string(st), msg,
                 rw_status_string(want), needle);
    assert_null(d);
}

/* ---- the shipped subset ------------------------------------------------- */

static void check_values(const rw_dataset *d, int n)
{
    assert_int_equal(rw_dataset_count(d), n);
    assert_int_equal(rw_dataset_features(d), 784);
    assert_int_equal(rw_dataset_classes(d), 10);
    float mean, std;
    rw_dataset_stats(d, &mean, &std);
    /* Fashion-MNIST pixels average about 0.286 with std about 0.353. */
    assert_true(mean > 0.25f && mean < 0.32f);
    assert_true(std > 0.32f && std < 0.39f);
}

/* An IDX set keeps its pixels as bytes; as the floats they stand for
 * (byte / 255) in a dataset made from memory it has the same statistics,
 * bit for bit, and the same version-1 fingerprint, which checkpoints
 * written before version 2 recorded. Version 2 tells both sets from any
 * change of one pixel. */
static void test_bytes_as_floats(void **state)
{
    (void)state;
    rw_dataset *d = NULL, *f = NULL;
    assert_int_equal(rw_dataset_load_idx(SMALL "/train-images-idx3-ubyte.gz",
                                         SMALL "/train-labels-idx1-ubyte.gz", &d),
                     RW_OK);
    assert_non_null(d->bytes);
    assert_int_equal(rw_dataset_from_memory(X(d), d->y, d->n, d->features, d->classes, &f), RW_OK);
    assert_null(f->bytes);
    float m1, s1, m2, s2;
    rw_dataset_stats(d, &m1, &s1);
    rw_dataset_stats(f, &m2, &s2);
    assert_true(m1 == m2 && s1 == s2);
    float fm1[784], fs1[784], fm2[784], fs2[784];
    assert_int_equal(rw_dataset_feature_stats(d, fm1, fs1), RW_OK);
    assert_int_equal(rw_dataset_feature_stats(f, fm2, fs2), RW_OK);
    assert_memory_equal(fm1, fm2, sizeof fm1);
    assert_memory_equal(fs1, fs2, sizeof fs1);
    assert_true(dataset_fingerprint(d, 1) == dataset_fingerprint(f, 1));
    uint64_t v2 = dataset_fingerprint(d, 2);
    assert_true(v2 != dataset_fingerprint(d, 1));
    d->bytes[1234] ^= 1;
    assert_true(dataset_fingerprint(d, 2) != v2);
    d->bytes[(size_t)d->n * 784 - 1] ^= 1; /* the last word, partly filled or not */
    d->bytes[1234] ^= 1;
    assert_true(dataset_fingerprint(d, 2) != v2);
    rw_dataset_free(d);
    rw_dataset_free(f);
}

static void test_load_small_idx(void **state)
{
    (void)state;
    rw_dataset *train = NULL, *test = NULL;
    assert_int_equal(rw_dataset_load_idx(SMALL "/train-images-idx3-ubyte.gz",
                                         SMALL "/train-labels-idx1-ubyte.gz", &train),
                     RW_OK);
    assert_int_equal(rw_dataset_load_idx(SMALL "/t10k-images-idx3-ubyte.gz",
                                         SMALL "/t10k-labels-idx1-ubyte.gz", &test),
                     RW_OK);
    check_values(train, 3000);
    check_values(test, 1000);
    /* IDX files carry no class names: class k is label k. */
    assert_null(rw_dataset_class_name(train, 0));

    rw_dataset_free(train);
    rw_dataset_free(test);
}

static void test_small_values_in_range(void **state)
{
    (void)state;
    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_load(SMALL, 0, &d), RW_OK);
    float lo = 1, hi = 0;
    int seen[10] = {0};
    for (size_t i = 0; i < (size_t)d->n * (size_t)d->features; i++) {
        lo = fminf(lo, X(d)[i]);
        hi = fmaxf(hi, X(d)[i]);
    }
    for (int i = 0; i < d->n; i++) {
        assert_true(d->y[i] < 10);
        seen[d->y[i]]++;
    }
    assert_true(lo == 0.0f && hi == 1.0f);
    for (int c = 0; c < 10; c++) assert_true(seen[c] > 100);
    rw_dataset_free(d);
}

static void test_load_small_folder(void **state)
{
    (void)state;
    rw_dataset *a = NULL, *b = NULL;
    for (int split = 0; split < 2; split++) {
        assert_int_equal(rw_dataset_load(SMALL, split, &a), RW_OK);
        assert_int_equal(rw_dataset_load(SMALL "/", split, &b), RW_OK);
        check_values(a, split ? 1000 : 3000);
        assert_int_equal(a->n, b->n);
        assert_memory_equal(X(a), X(b), sizeof(float) * (size_t)a->n * 784);
        assert_memory_equal(a->y, b->y, (size_t)a->n);
        rw_dataset_free(a);
        rw_dataset_free(b);
    }
}

static void test_load_debian_name(void **state)
{
    (void)state;
    struct stat sb;
    rw_dataset *d = NULL;
    rw_status st = rw_dataset_load("fashion-mnist", 1, &d);
    if (stat("/usr/share/datasets/fashion-mnist", &sb) == 0) {
        assert_int_equal(st, RW_OK);
        check_values(d, 10000);
        /* The subset is the head of the full split. */
        rw_dataset *small = NULL;
        assert_int_equal(rw_dataset_load(SMALL, 1, &small), RW_OK);
        assert_memory_equal(X(small), X(d), sizeof(float) * 1000 * 784);
        assert_memory_equal(small->y, d->y, 1000);
        rw_dataset_free(small);
    } else {
        assert_int_equal(st, RW_ERR_IO);
        assert_non_null(strstr(rw_last_error(), "apt-get install dataset-fashion-mnist"));
    }
    rw_dataset_free(d);
}

/* ---- IDX files written here --------------------------------------------- */

static void test_plain_idx(void **state)
{
    (void)state;
    char *images = dup_path("plain-images"), *labels = dup_path("plain-labels");
    write_tiny(images, labels);
    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_load_idx(images, labels, &d), RW_OK);
    assert_int_equal(rw_dataset_count(d), 3);
    assert_int_equal(rw_dataset_features(d), 4);
    assert_int_equal(rw_dataset_classes(d), 3);
    for (int i = 0; i < 12; i++) assert_true(X(d)[i] == (float)tiny_pixels[i] / 255.0f);
    assert_memory_equal(d->y, tiny_labels, 3);
    rw_dataset_free(d);
    unlink(images);
    unlink(labels);
    free(images);
    free(labels);
}

/* A folder holding the standard names without ".gz" loads too. */
static void test_plain_folder(void **state)
{
    (void)state;
    char *dir = dup_path("plain-dir");
    char images[600], labels[600];
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte", dir);
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte", dir);
    write_tiny(images, labels);

    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_load(dir, 1, &d), RW_OK);
    assert_int_equal(rw_dataset_count(d), 3);
    rw_dataset_free(d);

    /* The training files are missing: the message names the folder and
     * both names tried. */
    assert_int_equal(rw_dataset_load(dir, 0, &d), RW_ERR_IO);
    assert_null(d);
    const char *msg = rw_last_error();
    assert_non_null(strstr(msg, dir));
    assert_non_null(strstr(msg, "train-images-idx3-ubyte.gz"));
    assert_non_null(strstr(msg, "train-images-idx3-ubyte "));

    unlink(images);
    unlink(labels);
    rmdir(dir);
    free(dir);
}

static void test_missing(void **state)
{
    (void)state;
    char *images = dup_path("exists-images"), *labels = dup_path("exists-labels");
    write_tiny(images, labels);
    expect_load_fail("/nonexistent/rewire/images", labels, RW_ERR_IO,
                     "/nonexistent/rewire/images", "cannot open");
    expect_load_fail(images, "/nonexistent/rewire/labels", RW_ERR_IO,
                     "/nonexistent/rewire/labels", "cannot open");

    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_load("/nonexistent/rewire-folder", 0, &d), RW_ERR_IO);
    assert_null(d);
    assert_non_null(strstr(rw_last_error(), "/nonexistent/rewire-folder"));
    unlink(images);
    unlink(labels);
    free(images);
    free(labels);
}

static void test_malformed(void **state)
{
    (void)state;
    char *good_images = dup_path("good-images"), *good_labels = dup_path("good-labels");
    char *bad = dup_path("bad");
    write_tiny(good_images, good_labels);
    uint8_t buf[64];
    uint32_t dims3[3] = {3, 2, 2}, dims1[1] = {3};

    /* Wrong magic. */
    size_t h = idx_header(buf, 0x08, 3, dims3);
    buf[1] = 0x01;
    memcpy(buf + h, tiny_pixels, 12);
    write_bytes(bad, buf, h + 12);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad, "magic");

    /* Wrong type byte (0x0D is float). */
    h = idx_header(buf, 0x0D, 3, dims3);
    memcpy(buf + h, tiny_pixels, 12);
    write_bytes(bad, buf, h + 12);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad, "type 0x0d");

    /* Wrong ndim: labels where images belong, and the other way round. */
    expect_load_fail(good_labels, good_labels, RW_ERR_FORMAT, good_labels, "has 1 dimensions, expected 3");
    expect_load_fail(good_images, good_images, RW_ERR_FORMAT, good_images, "has 3 dimensions, expected 1");

    /* Truncated data and truncated header, and an empty file. */
    write_idx(bad, 3, dims3, tiny_pixels, 5);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad, "expected 12 pixel bytes, file ends after 5");
    idx_header(buf, 0x08, 3, dims3);
    write_bytes(bad, buf, 9);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad, "header");
    write_bytes(bad, buf, 0);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad, "header");

    /* Trailing bytes. */
    uint8_t more[13];
    memcpy(more, tiny_pixels, 12);
    more[12] = 7;
    write_idx(bad, 3, dims3, more, 13);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad, "trailing");
    uint8_t labels4[4] = {1, 2, 3, 4};
    write_idx(bad, 1, dims1, labels4, 4);
    expect_load_fail(good_images, bad, RW_ERR_FORMAT, bad, "trailing");

    /* Zero count, zero rows. */
    uint32_t zero[3] = {0, 2, 2};
    write_idx(bad, 3, zero, NULL, 0);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad, "dimension 0 is zero");
    uint32_t zero_rows[3] = {3, 0, 2};
    write_idx(bad, 3, zero_rows, NULL, 0);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad, "dimension 1 is zero");

    /* Dimensions whose product overflows int are refused before any
     * allocation (the file is tiny). */
    uint32_t huge[3] = {60000, 65536, 65536};
    write_idx(bad, 3, huge, tiny_pixels, 12);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad, "too large");
    uint32_t huge1[1] = {0xFFFFFFFFu};
    write_idx(bad, 1, huge1, tiny_labels, 3);
    expect_load_fail(good_images, bad, RW_ERR_FORMAT, bad, "too large");

    /* A 28-byte file declaring almost 2 GB: told it is short, without
     * first allocating what it declares (the buffer grows with the data). */
    uint32_t big[3] = {32767, 256, 256};
    write_idx(bad, 3, big, tiny_pixels, 12);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad,
                     "expected 2147418112 pixel bytes, file ends after 12");

    /* Label and image counts disagree: both files and counts named. */
    uint32_t dims4[1] = {4};
    write_idx(bad, 1, dims4, labels4, 4);
    expect_load_fail(good_images, bad, RW_ERR_FORMAT, good_images, "holds 3 images but");
    assert_non_null(strstr(rw_last_error(), bad));
    assert_non_null(strstr(rw_last_error(), "holds 4 labels"));

    /* A corrupt gzip stream. */
    uint8_t gz[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_bytes(bad, gz, sizeof gz);
    expect_load_fail(bad, good_labels, RW_ERR_FORMAT, bad, "corrupt gzip data");

    unlink(bad);
    unlink(good_images);
    unlink(good_labels);
    free(bad);
    free(good_images);
    free(good_labels);
}

/* A label file is 8-bit and RW_MAX_CLASSES is 256, so no IDX label can be
 * "too large"; the largest byte gives 256 classes. Labels beyond a stated
 * class count are rejected by rw_dataset_from_memory (below). */
static void test_label_255(void **state)
{
    (void)state;
    char *images = dup_path("l255-images"), *labels = dup_path("l255-labels");
    uint32_t idims[3] = {3, 2, 2}, ldims[1] = {3};
    uint8_t y[3] = {0, 255, 4};
    write_idx(images, 3, idims, tiny_pixels, 12);
    write_idx(labels, 1, ldims, y, 3);
    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_load_idx(images, labels, &d), RW_OK);
    assert_int_equal(rw_dataset_classes(d), RW_MAX_CLASSES);
    rw_dataset_free(d);
    unlink(images);
    unlink(labels);
    free(images);
    free(labels);
}

/* A gzipped file written with zlib loads like the plain one; the file
 * really is compressed (it starts with the gzip magic). */
/* gzip members written one after another read as one stream (as
 * `cat a.gz b.gz` makes them), and a member whose data check fails is
 * corrupt, through ISA-L's inflate as through zlib's. */
static void test_gzip_members_and_check(void **state)
{
    (void)state;
    char *labels = dup_path("gzm-labels"), *src = dup_path("gzm-src");
    char two[600], part[600];
    write_tiny(src, labels);
    snprintf(two, sizeof two, "%s.gz", src);
    snprintf(part, sizeof part, "%s.part.gz", src);
    uint8_t buf[32];
    uint32_t dims[3] = {3, 2, 2};
    size_t h = idx_header(buf, 0x08, 3, dims);
    memcpy(buf + h, tiny_pixels, 12);
    /* The header and 5 pixels in one member, 7 pixels in the next. */
    size_t split = h + 5, len[2] = {split, h + 12 - split};
    FILE *out = fopen(two, "wb");
    assert_non_null(out);
    for (int k = 0; k < 2; k++) {
        gzFile f = gzopen(part, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, buf + (k ? split : 0), (unsigned)len[k]), (int)len[k]);
        assert_int_equal(gzclose(f), Z_OK);
        FILE *in = fopen(part, "rb");
        int c;
        while ((c = fgetc(in)) != EOF) fputc(c, out);
        fclose(in);
    }
    fclose(out);
    rw_dataset *a = NULL, *b = NULL;
    assert_int_equal(rw_dataset_load_idx(src, labels, &a), RW_OK);
    assert_int_equal(rw_dataset_load_idx(two, labels, &b), RW_OK);
    assert_memory_equal(X(a), X(b), sizeof(float) * 12);
    rw_dataset_free(a);
    rw_dataset_free(b);

    /* One bit of the last member's CRC-32 flipped (8 bytes from the end). */
    FILE *f = fopen(two, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, -8, SEEK_END), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, -8, SEEK_END), 0);
    fputc(c ^ 1, f);
    fclose(f);
    expect_load_fail(two, labels, RW_ERR_FORMAT, two, "corrupt gzip data");
    unlink(src);
    unlink(two);
    unlink(part);
    unlink(labels);
    free(src);
    free(labels);
}

/* Writes DIR/NAME.gz, an IDX file of ndim dims (the pixels or labels). */
static void write_gz_idx(const char *dir, const char *name, int ndim, const uint32_t *dims,
                         const uint8_t *data, size_t len)
{
    char path[600];
    uint8_t buf[64];
    snprintf(path, sizeof path, "%s/%s.gz", dir, name);
    size_t h = idx_header(buf, 0x08, ndim, dims);
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, buf, (unsigned)h), (int)h);
    assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
}

/* How many files the folder holds. */
static int files_in(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -A '%s' 2>/dev/null | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static void check_same_samples(const rw_dataset *a, const rw_dataset *b);

/* rw_dataset_load keeps a gzipped split in the cache and reads it back
 * from there: the same data; a changed source is read again; a damaged
 * cache file is not used; REWIRE_CACHE_DIR=off writes nothing. */
static void test_idx_cache(void **state)
{
    (void)state;
    char *dir = dup_path("cache-src"), *cache = dup_path("cache-dir");
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' && mkdir -p '%s'", dir, cache, dir);
    assert_int_equal(system(cmd), 0);
    uint32_t idims[3] = {3, 2, 2}, ldims[1] = {3};
    write_gz_idx(dir, "train-images-idx3-ubyte", 3, idims, tiny_pixels, 12);
    write_gz_idx(dir, "train-labels-idx1-ubyte", 1, ldims, tiny_labels, 3);
    setenv("REWIRE_CACHE_DIR", cache, 1);

    rw_dataset *a = NULL, *b = NULL;
    assert_int_equal(rw_dataset_load(dir, 0, &a), RW_OK);
    assert_null(a->file_map);
    assert_int_equal(files_in(cache), 1);
    assert_int_equal(rw_dataset_load(dir, 0, &b), RW_OK);
    /* Read back as a mapping of the cache file. */
    assert_non_null(b->file_map);
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->bytes, b->bytes, 12);
    assert_memory_equal(a->y, b->y, 3);
    rw_dataset_free(b);

    /* A cache file cut short, cut inside its header, emptied, with a
     * wrong magic, a label past the classes or a damaged byte count is not
     * used (nor mapped): the sources answer, and the file is written anew. */
    const char *damage[] = {
        "truncate -s -1 \"$f\"",
        "truncate -s 10 \"$f\"",
        ": > \"$f\"",
        "printf 'X' | dd of=\"$f\" bs=1 seek=0 conv=notrunc status=none",
        "printf '\\011' | dd of=\"$f\" bs=1 seek=$(($(stat -c %s \"$f\") - 13)) conv=notrunc status=none",
        /* a byte count in the header (the training set's normalisation) */
        "printf '\\377' | dd of=\"$f\" bs=1 seek=170 conv=notrunc status=none",
    };
    for (size_t k = 0; k < sizeof damage / sizeof *damage; k++) {
        snprintf(cmd, sizeof cmd, "for f in '%s'/*; do %s; done", cache, damage[k]);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(rw_dataset_load(dir, 0, &b), RW_OK);
        assert_null(b->file_map);
        assert_int_equal(b->n, 3);
        assert_memory_equal(b->bytes, tiny_pixels, 12);
        assert_memory_equal(b->y, tiny_labels, 3);
        rw_dataset_free(b);
        assert_int_equal(rw_dataset_load(dir, 0, &b), RW_OK);
        assert_non_null(b->file_map);
        assert_memory_equal(b->bytes, tiny_pixels, 12);
        rw_dataset_free(b);
    }
    /* A split made at load reads the mapped rows through its index. */
    rw_dataset *tr = NULL, *va = NULL;
    assert_int_equal(rw_dataset_load_part(dir, 0, 0, 0.34, 3, &tr, &va), RW_OK);
    assert_non_null(tr->row_of);
    assert_non_null(tr->file_map);
    rw_dataset *tr2 = NULL, *va2 = NULL;
    assert_int_equal(rw_dataset_split(a, 1, 3, &tr2, &va2), RW_OK);
    check_same_samples(tr, tr2);
    check_same_samples(va, va2);
    rw_dataset_free(tr);
    rw_dataset_free(va);
    rw_dataset_free(tr2);
    rw_dataset_free(va2);

    /* Other pixels under the same name: the cache does not answer. */
    uint8_t other[12];
    for (int i = 0; i < 12; i++) other[i] = (uint8_t)(tiny_pixels[i] ^ 0x5a);
    write_gz_idx(dir, "train-images-idx3-ubyte", 3, idims, other, 12);
    assert_int_equal(rw_dataset_load(dir, 0, &b), RW_OK);
    assert_memory_equal(b->bytes, other, 12);
    rw_dataset_free(b);

    /* A damaged cache file: one pixel flipped in every file there. */
    snprintf(cmd, sizeof cmd,
             "for f in '%s'/*; do printf '\\377' | dd of=\"$f\" bs=1 seek=$(($(stat -c %%s \"$f\") - 1)) "
             "conv=notrunc status=none; done", cache);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(rw_dataset_load(dir, 0, &b), RW_OK);
    assert_memory_equal(b->bytes, other, 12);
    rw_dataset_free(b);

    /* Off: nothing is written. */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    assert_int_equal(system(cmd), 0);
    setenv("REWIRE_CACHE_DIR", "off", 1);
    assert_int_equal(rw_dataset_load(dir, 0, &b), RW_OK);
    assert_int_equal(files_in(cache), 0);
    rw_dataset_free(b);

    unsetenv("REWIRE_CACHE_DIR");
    rw_dataset_free(a);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, cache);
    assert_int_equal(system(cmd), 0);
    free(dir);
    free(cache);
}

static void test_gzip_roundtrip(void **state)
{
    (void)state;
    char *src = dup_path("gz-src"), *labels = dup_path("gz-labels");
    char gz[600];
    write_tiny(src, labels);
    snprintf(gz, sizeof gz, "%s.gz", src);
    uint8_t buf[32];
    uint32_t dims[3] = {3, 2, 2};
    size_t h = idx_header(buf, 0x08, 3, dims);
    memcpy(buf + h, tiny_pixels, 12);
    gzFile f = gzopen(gz, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, buf, (unsigned)(h + 12)), (int)(h + 12));
    assert_int_equal(gzclose(f), Z_OK);
    rw_dataset *a = NULL, *b = NULL;
    assert_int_equal(rw_dataset_load_idx(src, labels, &a), RW_OK);
    assert_int_equal(rw_dataset_load_idx(gz, labels, &b), RW_OK);
    assert_memory_equal(X(a), X(b), sizeof(float) * 12);
    FILE *raw = fopen(gz, "rb");
    assert_non_null(raw);
    assert_int_equal(fgetc(raw), 0x1f);
    fclose(raw);
    rw_dataset_free(a);
    rw_dataset_free(b);
    unlink(src);
    unlink(gz);
    unlink(labels);
    free(src);
    free(labels);
}

/* ---- from_memory, head, split, stats ------------------------------------ */

/* n samples of 2 features: feature 0 is i / n (an id), feature 1 is 0.5;
 * label i % 7. */
static rw_dataset *numbered(int n)
{
    float *x = malloc(sizeof(float) * 2 * (size_t)n);
    uint8_t *y = malloc((size_t)n);
    assert_true(x && y);
    for (int i = 0; i < n; i++) {
        x[2 * i] = (float)i / (float)n;
        x[2 * i + 1] = 0.5f;
        y[i] = (uint8_t)(i % 7);
    }
    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_from_memory(x, y, n, 2, 7, &d), RW_OK);
    free(x);
    free(y);
    return d;
}

static int sample_id(const rw_dataset *d, int i, int n) { return (int)lroundf(X(d)[2 * i] * (float)n); }

static void test_from_memory(void **state)
{
    (void)state;
    float x[6] = {0, 0.25f, 0.5f, 0.75f, 1, 0.125f};
    uint8_t y[3] = {0, 1, 2};
    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 2, 3, &d), RW_OK);
    x[0] = 0.9f; /* a copy: the dataset does not see later changes */
    y[0] = 1;
    assert_int_equal(rw_dataset_count(d), 3);
    assert_int_equal(rw_dataset_features(d), 2);
    assert_int_equal(rw_dataset_classes(d), 3);
    assert_true(X(d)[0] == 0.0f && X(d)[5] == 0.125f);
    assert_int_equal(d->y[0], 0);
    rw_dataset_free(d);
    y[0] = 0;
    x[0] = 0;

    d = (rw_dataset *)&d;
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 2, 2, &d), RW_ERR_INVALID_ARGUMENT);
    assert_null(d);
    assert_non_null(strstr(rw_last_error(), "sample 2 has label 2"));
    assert_int_equal(rw_dataset_from_memory(x, y, 0, 2, 3, &d), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 0, 3, &d), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 2, 0, &d), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 2, RW_MAX_CLASSES + 1, &d),
                     RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_from_memory(NULL, y, 3, 2, 3, &d), RW_ERR_INVALID_ARGUMENT);
    /* Any finite value is a feature (tabular data is not in [0, 1]). */
    x[3] = -1.5e6f;
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 2, 3, &d), RW_OK);
    assert_true(X(d)[3] == -1.5e6f);
    rw_dataset_free(d);
    x[3] = NAN;
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 2, 3, &d), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "sample 1 feature 1"));
    x[3] = -INFINITY;
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 2, 3, &d), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "expected a finite value"));
    x[3] = -0.0f;
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 2, 3, &d), RW_OK);
    rw_dataset_free(d);
}

static void test_head(void **state)
{
    (void)state;
    rw_dataset *src = numbered(20), *h = NULL;
    assert_int_equal(rw_dataset_head(src, 5, &h), RW_OK);
    assert_int_equal(rw_dataset_count(h), 5);
    assert_int_equal(rw_dataset_classes(h), 7);
    assert_memory_equal(X(h), X(src), sizeof(float) * 10);
    assert_memory_equal(h->y, src->y, 5);
    rw_dataset_free(h);
    assert_int_equal(rw_dataset_head(src, 1000, &h), RW_OK);
    assert_int_equal(rw_dataset_count(h), 20);
    assert_memory_equal(X(h), X(src), sizeof(float) * 40);
    rw_dataset_free(h);
    assert_int_equal(rw_dataset_head(src, 0, &h), RW_OK);
    assert_int_equal(rw_dataset_count(h), 0);
    rw_dataset_free(h);
    assert_int_equal(rw_dataset_head(src, -1, &h), RW_ERR_INVALID_ARGUMENT);
    assert_null(h);
    rw_dataset_free(src);
}

static void test_split(void **state)
{
    (void)state;
    const int n = 100;
    rw_dataset *src = numbered(n);
    rw_dataset *tr = NULL, *va = NULL, *tr2 = NULL, *va2 = NULL;
    assert_int_equal(rw_dataset_split(src, 30, 7, &tr, &va), RW_OK);
    assert_int_equal(rw_dataset_count(tr), 70);
    assert_int_equal(rw_dataset_count(va), 30);
    assert_int_equal(rw_dataset_classes(tr), 7);
    assert_int_equal(rw_dataset_classes(va), 7);
    assert_int_equal(rw_dataset_features(va), 2);

    /* Disjoint, covering, labels travel with their samples. */
    int seen[100] = {0};
    int moved = 0;
    for (int i = 0; i < 70; i++) {
        int id = sample_id(tr, i, n);
        seen[id]++;
        assert_int_equal(tr->y[i], id % 7);
        assert_true(X(tr)[2 * i + 1] == 0.5f);
        moved += id != i;
    }
    for (int i = 0; i < 30; i++) {
        int id = sample_id(va, i, n);
        seen[id]++;
        assert_int_equal(va->y[i], id % 7);
    }
    for (int i = 0; i < n; i++) assert_int_equal(seen[i], 1);
    assert_true(moved > 50); /* actually shuffled */

    /* Deterministic for a seed; another seed gives another split. */
    assert_int_equal(rw_dataset_split(src, 30, 7, &tr2, &va2), RW_OK);
    assert_memory_equal(X(tr), X(tr2), sizeof(float) * 140);
    assert_memory_equal(X(va), X(va2), sizeof(float) * 60);
    rw_dataset_free(tr2);
    rw_dataset_free(va2);
    assert_int_equal(rw_dataset_split(src, 30, 8, &tr2, &va2), RW_OK);
    assert_memory_not_equal(X(va), X(va2), sizeof(float) * 60);
    rw_dataset_free(tr2);
    rw_dataset_free(va2);
    rw_dataset_free(tr);
    rw_dataset_free(va);

    /* count 0: everything (shuffled) in train, val empty. */
    assert_int_equal(rw_dataset_split(src, 0, 7, &tr, &va), RW_OK);
    assert_int_equal(rw_dataset_count(tr), n);
    assert_int_equal(rw_dataset_count(va), 0);
    rw_dataset_free(tr);
    rw_dataset_free(va);

    /* Out of range: n, negative. */
    tr = va = (rw_dataset *)&tr;
    assert_int_equal(rw_dataset_split(src, n, 7, &tr, &va), RW_ERR_INVALID_ARGUMENT);
    assert_null(tr);
    assert_null(va);
    assert_non_null(strstr(rw_last_error(), "[0, 100)"));
    assert_int_equal(rw_dataset_split(src, -1, 7, &tr, &va), RW_ERR_INVALID_ARGUMENT);
    rw_dataset_free(src);
}

/* rw_dataset_load_part gives the bytes of load, head and split, which it
 * does in place: every combination of limit and validation share. */
static void check_same_samples(const rw_dataset *a, const rw_dataset *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->features, b->features);
    assert_int_equal(a->classes, b->classes);
    assert_memory_equal(X(a), X(b), sizeof(float) * (size_t)a->n * (size_t)a->features);
    if (a->n) assert_memory_equal(a->y, b->y, (size_t)a->n);
}

/* b may reach its rows through an index (row_of): everything read from
 * it is a's, sample for sample. */
static void check_same_dataset(const rw_dataset *a, const rw_dataset *b)
{
    check_same_samples(a, b);
    assert_true(dataset_fingerprint(a, 1) == dataset_fingerprint(b, 1));
    assert_true(dataset_fingerprint(a, 2) == dataset_fingerprint(b, 2));
    float ma, sa, mb, sb;
    rw_dataset_stats(a, &ma, &sa);
    rw_dataset_stats(b, &mb, &sb);
    assert_true(ma == mb && sa == sb);
    if (a->n == 0) return;
    size_t f = (size_t)a->features;
    float *fa = malloc(4 * sizeof(float) * f);
    assert_non_null(fa);
    assert_int_equal(rw_dataset_feature_stats(a, fa, fa + f), RW_OK);
    assert_int_equal(rw_dataset_feature_stats(b, fa + 2 * f, fa + 3 * f), RW_OK);
    assert_memory_equal(fa, fa + 2 * f, 2 * sizeof(float) * f);
    free(fa);
    /* What is made from b is made of its samples. */
    rw_dataset *ha = NULL, *hb = NULL, *ta = NULL, *va = NULL, *tb = NULL, *vb = NULL;
    assert_int_equal(rw_dataset_head(a, a->n / 2 + 1, &ha), RW_OK);
    assert_int_equal(rw_dataset_head(b, a->n / 2 + 1, &hb), RW_OK);
    check_same_samples(ha, hb);
    assert_int_equal(rw_dataset_split(a, a->n / 3, 5, &ta, &va), RW_OK);
    assert_int_equal(rw_dataset_split(b, a->n / 3, 5, &tb, &vb), RW_OK);
    check_same_samples(ta, tb);
    check_same_samples(va, vb);
    rw_dataset_free(ha);
    rw_dataset_free(hb);
    rw_dataset_free(ta);
    rw_dataset_free(va);
    rw_dataset_free(tb);
    rw_dataset_free(vb);
}

static void test_load_part(void **state)
{
    (void)state;
    const int limits[] = {0, 1, 2, 777, 3000, 5000};
    const double fractions[] = {0.0, 0.1, 0.5, 0.9};
    for (size_t li = 0; li < sizeof limits / sizeof *limits; li++)
        for (size_t fi = 0; fi < sizeof fractions / sizeof *fractions; fi++) {
            rw_dataset *all = NULL, *head = NULL, *tr = NULL, *va = NULL, *tr2 = NULL, *va2 = NULL;
            assert_int_equal(rw_dataset_load(SMALL, 0, &all), RW_OK);
            int limit = limits[li];
            assert_int_equal(rw_dataset_head(all, limit > 0 ? limit : all->n, &head), RW_OK);
            int count = (int)(fractions[fi] * head->n + 0.5);
            if (count >= head->n) count = head->n - 1;
            assert_int_equal(rw_dataset_split(head, count, 42, &tr, &va), RW_OK);
            assert_int_equal(rw_dataset_load_part(SMALL, 0, limit, fractions[fi], 42, &tr2, &va2),
                             RW_OK);
            /* The kept part is an index of the loaded rows. */
            assert_non_null(tr2->row_of);
            check_same_dataset(tr, tr2);
            check_same_dataset(va, va2);
            rw_dataset_free(all);
            rw_dataset_free(head);
            rw_dataset_free(tr);
            rw_dataset_free(va);
            rw_dataset_free(tr2);
            rw_dataset_free(va2);
        }
    /* Without val: the head in the file's order. */
    rw_dataset *all = NULL, *head = NULL, *part = NULL;
    assert_int_equal(rw_dataset_load(SMALL, 1, &all), RW_OK);
    assert_int_equal(rw_dataset_head(all, 123, &head), RW_OK);
    assert_int_equal(rw_dataset_load_part(SMALL, 1, 123, 0.0, 9, &part, NULL), RW_OK);
    check_same_dataset(head, part);
    rw_dataset_free(part);
    assert_int_equal(rw_dataset_load_part(SMALL, 1, 0, 0.0, 9, &part, NULL), RW_OK);
    check_same_dataset(all, part);
    rw_dataset_free(part);
    rw_dataset_free(all);
    rw_dataset_free(head);

    /* Bad arguments name themselves; a missing folder fails as load does. */
    rw_dataset *v = (rw_dataset *)&part;
    part = (rw_dataset *)&v;
    assert_int_equal(rw_dataset_load_part(SMALL, 0, -1, 0.0, 1, &part, &v), RW_ERR_INVALID_ARGUMENT);
    assert_null(part);
    assert_null(v);
    assert_non_null(strstr(rw_last_error(), "limit -1"));
    assert_int_equal(rw_dataset_load_part(SMALL, 0, 0, 1.0, 1, &part, &v), RW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(rw_last_error(), "val_fraction 1"));
    assert_int_equal(rw_dataset_load_part(SMALL, 0, 0, NAN, 1, &part, &v), RW_ERR_INVALID_ARGUMENT);
    assert_int_not_equal(rw_dataset_load_part("no/such/folder", 0, 0, 0.1, 1, &part, &v), RW_OK);
    assert_null(part);
    assert_null(v);
    assert_int_equal(rw_dataset_load_part(SMALL, 0, 0, 0.1, 1, NULL, &v), RW_ERR_INVALID_ARGUMENT);
}

static void test_stats(void **state)
{
    (void)state;
    float x[6] = {0, 0.5f, 1, 0.5f, 0.25f, 0.75f};
    uint8_t y[3] = {0, 0, 0};
    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_from_memory(x, y, 3, 2, 1, &d), RW_OK);
    float mean, std;
    rw_dataset_stats(d, &mean, &std);
    /* mean 0.5; squared deviations .25 0 .25 0 .0625 .0625 sum to 0.625. */
    assert_float_equal(mean, 0.5f, 1e-7f);
    assert_float_equal(std, (float)sqrt(0.625 / 6), 1e-7f);
    rw_dataset_free(d);

    /* An empty dataset (a split's empty validation part) gives (0, 1). */
    rw_dataset *src = numbered(4), *tr = NULL, *va = NULL;
    assert_int_equal(rw_dataset_split(src, 0, 1, &tr, &va), RW_OK);
    rw_dataset_stats(va, &mean, &std);
    assert_true(mean == 0.0f && std == 1.0f);
    rw_dataset_free(src);
    rw_dataset_free(tr);
    rw_dataset_free(va);
}

/* Per feature, on values far from [0, 1]: the means and population
 * standard deviations, computed by hand. */
static void test_feature_stats(void **state)
{
    (void)state;
    float x[12] = {1, -100, 5, 2, 100, 5, 3, 400, 5, 6, 0, 5};
    uint8_t y[4] = {0, 1, 0, 1};
    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_from_memory(x, y, 4, 3, 2, &d), RW_OK);
    float mean[3], std[3];
    assert_int_equal(rw_dataset_feature_stats(d, mean, std), RW_OK);
    /* Feature 0: mean 3, deviations -2 -1 0 3, variance 14 / 4. */
    assert_true(mean[0] == 3.0f && std[0] == (float)sqrt(14.0 / 4));
    /* Feature 1: mean 100, deviations -200 0 300 -100, variance 140000 / 4. */
    assert_true(mean[1] == 100.0f && std[1] == (float)sqrt(140000.0 / 4));
    /* A constant feature: std 0, for the caller to handle. */
    assert_true(mean[2] == 5.0f && std[2] == 0.0f);
    /* The global stats cover all cells, as before. */
    float m, s;
    rw_dataset_stats(d, &m, &s);
    assert_float_equal(m, 36.0, 1e-5);
    /* Empty: the identity. */
    rw_dataset *tr, *te;
    assert_int_equal(rw_dataset_split(d, 0, 1, &tr, &te), RW_OK);
    assert_int_equal(rw_dataset_feature_stats(te, mean, std), RW_OK);
    assert_true(mean[0] == 0 && std[0] == 1 && mean[2] == 0 && std[2] == 1);
    assert_int_equal(rw_dataset_feature_stats(NULL, mean, std), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_feature_stats(d, NULL, std), RW_ERR_INVALID_ARGUMENT);
    rw_dataset_free(tr);
    rw_dataset_free(te);
    rw_dataset_free(d);

    /* On the shipped subset the per-feature means average to the global
     * mean. */
    assert_int_equal(rw_dataset_load(SMALL, 1, &d), RW_OK);
    float fm[784], fs[784];
    assert_int_equal(rw_dataset_feature_stats(d, fm, fs), RW_OK);
    rw_dataset_stats(d, &m, &s);
    double avg = 0;
    for (int j = 0; j < 784; j++) avg += fm[j];
    assert_float_equal(avg / 784, m, 1e-6);
    rw_dataset_free(d);
}

/* rw_dataset_split_fraction is rw_dataset_split with round(fraction x n),
 * at most n - 1. */
static void test_split_fraction(void **state)
{
    (void)state;
    rw_dataset *d = numbered(150), *tr = NULL, *te = NULL, *tr2 = NULL, *te2 = NULL;
    assert_int_equal(rw_dataset_split_fraction(d, 0.2, 7, &tr, &te), RW_OK);
    assert_int_equal(rw_dataset_count(tr), 120);
    assert_int_equal(rw_dataset_count(te), 30);
    assert_int_equal(rw_dataset_split(d, 30, 7, &tr2, &te2), RW_OK);
    check_same_dataset(tr, tr2);
    check_same_dataset(te, te2);
    rw_dataset_free(tr);
    rw_dataset_free(te);
    rw_dataset_free(tr2);
    rw_dataset_free(te2);
    /* 0.5% of 150 is 0.75: one sample; 0 holds none out; 0.9999 keeps one. */
    const double fractions[3] = {0.005, 0.0, 0.9999};
    const int held[3] = {1, 0, 149};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(rw_dataset_split_fraction(d, fractions[k], 7, &tr, &te), RW_OK);
        assert_int_equal(rw_dataset_count(te), held[k]);
        assert_int_equal(rw_dataset_count(tr), 150 - held[k]);
        rw_dataset_free(tr);
        rw_dataset_free(te);
    }
    tr = te = (rw_dataset *)&tr;
    assert_int_equal(rw_dataset_split_fraction(d, 1.0, 7, &tr, &te), RW_ERR_INVALID_ARGUMENT);
    assert_null(tr);
    assert_null(te);
    assert_non_null(strstr(rw_last_error(), "fraction 1 is not in [0, 1)"));
    assert_int_equal(rw_dataset_split_fraction(d, NAN, 7, &tr, &te), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_split_fraction(d, -0.1, 7, &tr, &te), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_split_fraction(NULL, 0.1, 7, &tr, &te), RW_ERR_INVALID_ARGUMENT);
    rw_dataset_free(d);
}

static void test_null(void **state)
{
    (void)state;
    rw_dataset_free(NULL);
    assert_int_equal(rw_dataset_count(NULL), 0);
    assert_int_equal(rw_dataset_features(NULL), 0);
    assert_int_equal(rw_dataset_classes(NULL), 0);
    rw_dataset *d = NULL;
    assert_int_equal(rw_dataset_load_idx(NULL, "x", &d), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_load(NULL, 0, &d), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(rw_dataset_head(NULL, 1, &d), RW_ERR_INVALID_ARGUMENT);
    assert_null(rw_dataset_class_name(NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_small_idx),
        cmocka_unit_test(test_bytes_as_floats),
        cmocka_unit_test(test_small_values_in_range),
        cmocka_unit_test(test_load_small_folder),
        cmocka_unit_test(test_load_debian_name),
        cmocka_unit_test(test_plain_idx),
        cmocka_unit_test(test_plain_folder),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_label_255),
        cmocka_unit_test(test_gzip_roundtrip),
        cmocka_unit_test(test_idx_cache),
        cmocka_unit_test(test_gzip_members_and_check),
        cmocka_unit_test(test_from_memory),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_load_part),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_feature_stats),
        cmocka_unit_test(test_split_fraction),
        cmocka_unit_test(test_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
