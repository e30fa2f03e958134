/* rw_dataset: loading (IDX files or memory), head, seeded split, stats.
 * (CSV and .npy loading live in csv.c and npy.c.)
 * A dataset is immutable once handed out; every operation makes a new one
 * (rw_dataset_load_part cuts and splits the one it loads through an index
 * of its rows, before returning it). */
/* munmap is POSIX. */
#define _POSIX_C_SOURCE 200809L

#include "data/dataset.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/idx.h"
#include "data/idx_cache.h"

/* (float)v / 255 for every byte, folded by the compiler in float as the
 * division at run time gives it (C11 5.2.4.2.2: FLT_EVAL_METHOD 0 here). */
#define BYTE1(v) ((float)(v) / 255.0f)
#define BYTE4(v) BYTE1(v), BYTE1(v + 1), BYTE1(v + 2), BYTE1(v + 3)
#define BYTE16(v) BYTE4(v), BYTE4(v + 4), BYTE4(v + 8), BYTE4(v + 12)
#define BYTE64(v) BYTE16(v), BYTE16(v + 16), BYTE16(v + 32), BYTE16(v + 48)
const float dataset_byte_value[256] = {BYTE64(0), BYTE64(64), BYTE64(128), BYTE64(192)};

sample_rows dataset_rows(const rw_dataset *d, int first)
{
    /* Through an index the rows are counted from the first stored one. */
    size_t at = d->row_of ? 0 : (size_t)first * (size_t)d->features;
    sample_rows r = {.features = d->features, .row_of = d->row_of ? d->row_of + first : NULL};
    if (d->bytes) r.bytes = d->bytes + at;
    else r.x = d->x + at;
    return r;
}

/* The size of one sample's features as stored. */
static size_t row_size(const rw_dataset *d)
{
    return (size_t)d->features * (d->bytes ? 1 : sizeof(float));
}

/* Sample i's features as stored. */
static unsigned char *row_at(const rw_dataset *d, int i)
{
    unsigned char *base = d->bytes ? (unsigned char *)d->bytes : (unsigned char *)d->x;
    return base + (size_t)(d->row_of ? d->row_of[i] : i) * row_size(d);
}

void dataset_copy_samples(const rw_dataset *d, int first, int n, void *dst)
{
    size_t size = row_size(d);
    if (n <= 0) return;
    if (!d->row_of) {
        memcpy(dst, row_at(d, first), (size_t)n * size);
        return;
    }
    for (int i = 0; i < n; i++) memcpy((unsigned char *)dst + (size_t)i * size, row_at(d, first + i), size);
}

/* n may be 0, as a split's validation part can be. The features are not
 * zeroed, as that touched every page of a 188 MB training set once more
 * for nothing. */
static rw_status alloc_kind(int n, int features, int classes, int bytes, rw_dataset **out)
{
    *out = NULL;
    rw_dataset *d = calloc(1, sizeof *d);
    if (!d) return rw_fail(RW_ERR_NO_MEMORY, "dataset: out of memory");
    size_t cells = (size_t)n * (size_t)features;
    if (features > 0 && cells / (size_t)features != (size_t)n) cells = SIZE_MAX;
    size_t each = bytes ? 1 : sizeof(float);
    void *rows = cells > SIZE_MAX / each ? NULL : rw_alloc_unset(cells * each);
    if (bytes) d->bytes = rows;
    else d->x = rows;
    d->y = malloc(n > 0 ? (size_t)n : 1);
    if (!rows || !d->y) {
        rw_dataset_free(d);
        return rw_fail(RW_ERR_NO_MEMORY, "dataset: cannot allocate %d samples of %d features",
                       n, features);
    }
    d->n = n;
    d->features = features;
    d->classes = classes;
    *out = d;
    return RW_OK;
}

rw_status dataset_alloc(int n, int features, int classes, rw_dataset **out)
{
    return alloc_kind(n, features, classes, 0, out);
}

rw_status dataset_alloc_bytes(int n, int features, int classes, rw_dataset **out)
{
    return alloc_kind(n, features, classes, 1, out);
}

rw_status dataset_set_class_names(rw_dataset *d, const char *const *names)
{
    d->class_names = calloc((size_t)d->classes, sizeof *d->class_names);
    if (!d->class_names) return rw_fail(RW_ERR_NO_MEMORY, "dataset: out of memory for class names");
    for (int k = 0; k < d->classes; k++) {
        size_t len = strlen(names[k]);
        d->class_names[k] = malloc(len + 1);
        if (!d->class_names[k])
            return rw_fail(RW_ERR_NO_MEMORY, "dataset: out of memory for class names");
        memcpy(d->class_names[k], names[k], len + 1);
    }
    return RW_OK;
}

/* A new dataset of n samples shaped like src, with src's class names. */
static rw_status dataset_alloc_like(const rw_dataset *src, int n, rw_dataset **out)
{
    rw_status st = alloc_kind(n, src->features, src->classes, src->bytes != NULL, out);
    if (st == RW_OK && src->class_names)
        st = dataset_set_class_names(*out, (const char *const *)src->class_names);
    if (st != RW_OK) {
        rw_dataset_free(*out);
        *out = NULL;
    }
    return st;
}

/* A new dataset holding src's samples idx[0..n), in that order. */
static rw_status dataset_gather(const rw_dataset *src, const int *idx, int n, rw_dataset **out)
{
    rw_status st = dataset_alloc_like(src, n, out);
    if (st != RW_OK) return st;
    rw_dataset *d = *out;
    for (int i = 0; i < n; i++) {
        memcpy(row_at(d, i), row_at(src, idx[i]), row_size(src));
        d->y[i] = src->y[idx[i]];
    }
    return RW_OK;
}

rw_status rw_dataset_load_idx(const char *images_path, const char *labels_path, rw_dataset **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_idx: out is NULL");
    *out = NULL;
    if (!images_path || !labels_path)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_idx: a path is NULL");
    rw_clear_error();

    uint8_t *pixels = NULL, *labels = NULL;
    int n_images, rows, cols, n_labels;
    rw_status st = idx_read_images(images_path, &pixels, &n_images, &rows, &cols);
    if (st != RW_OK) return st;
    st = idx_read_labels(labels_path, &labels, &n_labels);
    if (st != RW_OK) goto done;
    if (n_images != n_labels) {
        st = rw_fail(RW_ERR_FORMAT, "%s holds %d images but %s holds %d labels", images_path,
                     n_images, labels_path, n_labels);
        goto done;
    }

    int max_label = 0;
    for (int i = 0; i < n_labels; i++)
        if (labels[i] > max_label) max_label = labels[i];
    if (max_label >= RW_MAX_CLASSES) {
        st = rw_fail(RW_ERR_FORMAT, "%s: label %d is too large (at most %d classes)", labels_path,
                     max_label, RW_MAX_CLASSES);
        goto done;
    }

    /* rows * cols fits int: idx_read capped the whole product. */
    rw_dataset *d;
    st = dataset_alloc_bytes(0, rows * cols, max_label + 1, &d);
    if (st != RW_OK) goto done;
    /* The pixels as read become the dataset's. */
    rw_free(d->bytes);
    d->bytes = pixels;
    pixels = NULL;
    d->n = n_images;
    free(d->y);
    d->y = labels;
    labels = NULL;
    *out = d;

done:
    free(pixels);
    free(labels);
    return st;
}

rw_status rw_dataset_load(const char *dir_or_name, int test_split, rw_dataset **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load: out is NULL");
    *out = NULL;
    char images[4096], labels[4096];
    rw_status st = idx_locate_split(dir_or_name, test_split, images, labels, sizeof images);
    if (st != RW_OK) return st;
    return idx_cache_load(images, labels, out);
}

rw_status rw_dataset_from_memory(const float *features, const uint8_t *labels, int n, int f,
                                 int classes, rw_dataset **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_from_memory: out is NULL");
    *out = NULL;
    if (!features || !labels)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_from_memory: features or labels is NULL");
    if (n < 1 || f < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "rw_dataset_from_memory: %d samples of %d features (both must be >= 1)", n, f);
    if (classes < 1 || classes > RW_MAX_CLASSES)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_from_memory: classes %d not in [1, %d]",
                       classes, RW_MAX_CLASSES);
    for (int i = 0; i < n; i++)
        if (labels[i] >= classes)
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "rw_dataset_from_memory: sample %d has label %d, expected < %d classes",
                           i, labels[i], classes);
    size_t cells = (size_t)n * (size_t)f;
    for (size_t k = 0; k < cells; k++)
        if (!isfinite(features[k]))
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "rw_dataset_from_memory: sample %zu feature %zu is %g, expected a finite value",
                           k / (size_t)f, k % (size_t)f, (double)features[k]);
    rw_clear_error();

    rw_dataset *d;
    rw_status st = dataset_alloc(n, f, classes, &d);
    if (st != RW_OK) return st;
    memcpy(d->x, features, cells * sizeof(float));
    memcpy(d->y, labels, (size_t)n);
    *out = d;
    return RW_OK;
}

/* How many of n samples a fraction in [0, 1) holds out: round(fraction x
 * n), at most n - 1 so that the kept part is never empty. */
static int split_count(double fraction, int n)
{
    int count = (int)(fraction * n + 0.5);
    return count >= n ? n - 1 : count;
}

/* The order of a seeded split: a shuffle of 0..n-1 whose last `count`
 * entries are the validation samples. NULL when out of memory. */
static int *split_order(int n, uint64_t seed)
{
    int *perm = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!perm) return NULL;
    for (int i = 0; i < n; i++) perm[i] = i;
    /* Fisher–Yates (Durstenfeld's in-place form), Knuth TAOCP vol. 2 §3.4.2. */
    rng_state r;
    rng_seed(&r, seed);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return perm;
}

rw_status rw_dataset_split(const rw_dataset *src, int count, uint64_t seed, rw_dataset **train,
                           rw_dataset **val)
{
    if (!train || !val) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_split: output is NULL");
    *train = NULL;
    *val = NULL;
    if (!src) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_split: dataset is NULL");
    if (count < 0 || count >= src->n)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "rw_dataset_split: validation count %d must be in [0, %d) for %d samples",
                       count, src->n, src->n);
    rw_clear_error();

    int n = src->n;
    int *perm = split_order(n, seed);
    if (!perm) return rw_fail(RW_ERR_NO_MEMORY, "rw_dataset_split: out of memory");
    rw_status st = dataset_gather(src, perm, n - count, train);
    if (st == RW_OK) st = dataset_gather(src, perm + (n - count), count, val);
    free(perm);
    if (st != RW_OK) {
        rw_dataset_free(*train);
        rw_dataset_free(*val);
        *train = NULL;
        *val = NULL;
    }
    return st;
}

rw_status rw_dataset_split_fraction(const rw_dataset *src, double fraction, uint64_t seed,
                                    rw_dataset **train, rw_dataset **test)
{
    if (!train || !test)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_split_fraction: output is NULL");
    *train = NULL;
    *test = NULL;
    if (!src) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_split_fraction: dataset is NULL");
    if (!(fraction >= 0.0 && fraction < 1.0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "rw_dataset_split_fraction: fraction %g is not in [0, 1)", fraction);
    if (src->n < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_split_fraction: the dataset is empty");
    return rw_dataset_split(src, split_count(fraction, src->n), seed, train, test);
}

rw_status rw_dataset_head(const rw_dataset *src, int n, rw_dataset **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_head: out is NULL");
    *out = NULL;
    if (!src) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_head: dataset is NULL");
    if (n < 0) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_head: count %d is negative", n);
    rw_clear_error();
    if (n > src->n) n = src->n;

    rw_dataset *d;
    rw_status st = dataset_alloc_like(src, n, &d);
    if (st != RW_OK) return st;
    dataset_copy_samples(src, 0, n, d->bytes ? (void *)d->bytes : (void *)d->x);
    memcpy(d->y, src->y, (size_t)n);
    *out = d;
    return RW_OK;
}

static void uncount_samples(rw_dataset *d, int first, int n);

/* Keeps the first n samples (all when n >= the count). */
static void dataset_truncate(rw_dataset *d, int n)
{
    if (!d || n < 0 || n >= d->n) return;
    uncount_samples(d, n, d->n - n);
    d->n = n;
}

/* d becomes rw_dataset_split's training part and *val its validation part,
 * without moving d's rows: d's samples are put in the split's order by an
 * index of their rows (row_of), and only the labels (one byte a sample)
 * and the validation samples are copied. d's rows may then be read-only
 * (a mapped cache file) and are never touched: no page of a 47 MB
 * training set is written or even read here. On failure d is unchanged
 * and *val NULL. */
static rw_status dataset_split_by_index(rw_dataset *d, int count, uint64_t seed, rw_dataset **val)
{
    *val = NULL;
    if (count < 0 || count >= d->n)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "dataset split: validation count %d must be in [0, %d) for %d samples",
                       count, d->n, d->n);
    int n = d->n, kept = n - count;
    rw_status st = dataset_alloc_like(d, count, val);
    if (st != RW_OK) return st;
    int *perm = split_order(n, seed);
    uint8_t *y = malloc((size_t)(kept > 0 ? kept : 1));
    if (!perm || !y) {
        free(perm);
        free(y);
        rw_dataset_free(*val);
        *val = NULL;
        return rw_fail(RW_ERR_NO_MEMORY, "dataset split: out of memory");
    }
    /* Sample i becomes the old sample perm[i], as rw_dataset_split gathers. */
    rw_dataset *v = *val;
    for (int k = 0; k < count; k++) {
        memcpy(row_at(v, k), row_at(d, perm[kept + k]), row_size(d));
        v->y[k] = d->y[perm[kept + k]];
    }
    for (int i = 0; i < kept; i++) {
        y[i] = d->y[perm[i]];
        /* Row of the old sample: perm becomes the new row index in place. */
        if (d->row_of) perm[i] = d->row_of[perm[i]];
    }
    /* The validation samples no longer count among d's (and theirs are
     * then known too). */
    if (d->counted) {
        dataset_count_bytes(v);
        for (int b = 0; b < 256; b++) d->byte_count[b] -= v->byte_count[b];
    }
    /* Floats made from bytes would be in the old order. */
    if (d->bytes) {
        rw_free(d->x);
        d->x = NULL;
    }
    free(d->y);
    d->y = y;
    free(d->row_of);
    d->row_of = perm;
    d->n = kept;
    return RW_OK;
}

rw_status rw_dataset_load_part(const char *dir_or_name, int test_split, int limit,
                              double val_fraction, uint64_t seed, rw_dataset **out,
                              rw_dataset **val)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_part: out is NULL");
    *out = NULL;
    if (val) *val = NULL;
    if (limit < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_part: limit %d is negative", limit);
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "rw_dataset_load_part: val_fraction %g is not in [0, 1)", val_fraction);
    rw_dataset *d = NULL;
    rw_status st = rw_dataset_load(dir_or_name, test_split, &d);
    if (st != RW_OK) return st;
    if (limit > 0) dataset_truncate(d, limit);
    if (val) {
        st = dataset_split_by_index(d, split_count(val_fraction, d->n), seed, val);
        if (st != RW_OK) {
            rw_dataset_free(d);
            return st;
        }
    }
    *out = d;
    return RW_OK;
}

int rw_dataset_count(const rw_dataset *data) { return data ? data->n : 0; }
int rw_dataset_features(const rw_dataset *data) { return data ? data->features : 0; }
int rw_dataset_classes(const rw_dataset *data) { return data ? data->classes : 0; }

void rw_dataset_arrays(const rw_dataset *data, const float **x, const uint8_t **y)
{
    if (x) {
        /* Bytes become floats once, on the first ask (NULL when out of
         * memory); the dataset stays the same data. */
        if (data->bytes && !data->x) {
            size_t cells = (size_t)data->n * (size_t)data->features, fs = (size_t)data->features;
            float *f = rw_alloc_unset((cells > 0 ? cells : 1) * sizeof(float));
            for (int i = 0; f && i < data->n; i++) {
                const uint8_t *row = row_at(data, i);
                for (size_t j = 0; j < fs; j++) f[(size_t)i * fs + j] = dataset_byte_value[row[j]];
            }
            ((rw_dataset *)data)->x = f;
        }
        *x = data->x;
    }
    if (y) *y = data->y;
}

/* Adds the bytes p[0..len) to four tables, so that runs of one value do
 * not wait on each other's increments; *pending counts what the tables
 * hold, folded into count before any entry could pass 2^32 - 1. */
static void count_span(const uint8_t *p, size_t len, uint32_t part[4][256], size_t *pending,
                       uint64_t count[256])
{
    const size_t fold = (size_t)1 << 30;
    while (len > 0) {
        size_t piece = len < fold ? len : fold, i = 0;
        if (*pending + piece > 2 * fold) {
            for (int v = 0; v < 256; v++) {
                count[v] += (uint64_t)part[0][v] + part[1][v] + part[2][v] + part[3][v];
                part[0][v] = part[1][v] = part[2][v] = part[3][v] = 0;
            }
            *pending = 0;
        }
        for (; i + 4 <= piece; i += 4) {
            part[0][p[i]]++;
            part[1][p[i + 1]]++;
            part[2][p[i + 2]]++;
            part[3][p[i + 3]]++;
        }
        for (; i < piece; i++) part[0][p[i]]++;
        *pending += piece;
        p += piece;
        len -= piece;
    }
}

/* How many times each byte value occurs among the features of samples
 * [first, first + n). */
static void byte_counts(const rw_dataset *d, int first, int n, uint64_t count[256])
{
    uint32_t part[4][256];
    size_t pending = 0;
    memset(part, 0, sizeof part);
    memset(count, 0, 256 * sizeof *count);
    size_t size = (size_t)d->features;
    if (n > 0 && !d->row_of) count_span(row_at(d, first), (size_t)n * size, part, &pending, count);
    else
        for (int i = first; i < first + n; i++) count_span(row_at(d, i), size, part, &pending, count);
    for (int v = 0; v < 256; v++) count[v] += (uint64_t)part[0][v] + part[1][v] + part[2][v] + part[3][v];
}

void dataset_count_bytes(rw_dataset *d)
{
    if (!d->bytes || d->counted) return;
    byte_counts(d, 0, d->n, d->byte_count);
    d->counted = 1;
}

/* The counts of d without samples [first, first + n), n small against
 * d->n: subtracting theirs costs less than counting the rest again. */
static void uncount_samples(rw_dataset *d, int first, int n)
{
    if (!d->counted) return;
    if (n > d->n / 2) {
        d->counted = 0;
        return;
    }
    uint64_t gone[256];
    byte_counts(d, first, n, gone);
    for (int v = 0; v < 256; v++) d->byte_count[v] -= gone[v];
}

void rw_dataset_stats(const rw_dataset *data, float *mean, float *std)
{
    /* Two passes in double: the mean first, then the mean squared deviation
     * (population variance), which avoids E[x²] - E[x]² cancellation. An
     * empty dataset gives the identity normalisation (0, 1). Bytes are
     * counted per value and summed from the counts, each term exact. */
    double m = 0.0, sd = 1.0;
    size_t cells = data ? (size_t)data->n * (size_t)data->features : 0;
    if (cells > 0 && data->bytes) {
        uint64_t count[256];
        if (data->counted) memcpy(count, data->byte_count, sizeof count);
        else byte_counts(data, 0, data->n, count);
        double sum = 0.0;
        for (int v = 0; v < 256; v++) sum += (double)count[v] * dataset_byte_value[v];
        m = sum / (double)cells;
        double sq = 0.0;
        for (int v = 0; v < 256; v++) {
            double dev = dataset_byte_value[v] - m;
            sq += (double)count[v] * dev * dev;
        }
        sd = sqrt(sq / (double)cells);
    } else if (cells > 0) {
        double sum = 0.0;
        for (size_t i = 0; i < cells; i++) sum += data->x[i];
        m = sum / (double)cells;
        double sq = 0.0;
        for (size_t i = 0; i < cells; i++) {
            double dev = data->x[i] - m;
            sq += dev * dev;
        }
        sd = sqrt(sq / (double)cells);
    }
    if (mean) *mean = (float)m;
    if (std) *std = (float)sd;
}

/* Sample i's feature j, as a float. */
static float feature_at(const rw_dataset *d, int i, size_t j)
{
    const unsigned char *row = row_at(d, i);
    return d->bytes ? dataset_byte_value[row[j]] : ((const float *)row)[j];
}

rw_status rw_dataset_feature_stats(const rw_dataset *data, float *mean, float *std)
{
    if (!data || !mean || !std)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_feature_stats: an argument is NULL");
    size_t f = (size_t)data->features;
    double *sum = calloc(2 * (f > 0 ? f : 1), sizeof(double));
    if (!sum) return rw_fail(RW_ERR_NO_MEMORY, "rw_dataset_feature_stats: out of memory");
    double *sq = sum + f;
    /* As rw_dataset_stats, per feature: the means, then the mean squared
     * deviations, each summed in double over the samples in order. */
    for (int i = 0; i < data->n; i++)
        for (size_t j = 0; j < f; j++) sum[j] += feature_at(data, i, j);
    for (size_t j = 0; j < f; j++) sum[j] /= data->n > 0 ? (double)data->n : 1.0;
    for (int i = 0; i < data->n; i++)
        for (size_t j = 0; j < f; j++) {
            double dev = feature_at(data, i, j) - sum[j];
            sq[j] += dev * dev;
        }
    for (size_t j = 0; j < f; j++) {
        mean[j] = (float)sum[j];
        std[j] = data->n > 0 ? (float)sqrt(sq[j] / (double)data->n) : 1.0f;
    }
    free(sum);
    rw_clear_error();
    return RW_OK;
}

const char *rw_dataset_class_name(const rw_dataset *data, int k)
{
    if (!data || !data->class_names || k < 0 || k >= data->classes) return NULL;
    return data->class_names[k];
}

void rw_dataset_free(rw_dataset *data)
{
    if (!data) return;
    if (data->class_names)
        for (int k = 0; k < data->classes; k++) free(data->class_names[k]);
    free(data->class_names);
    rw_free(data->x);
    if (data->file_map) munmap(data->file_map, data->file_map_len);
    else rw_free(data->bytes);
    free(data->row_of);
    free(data->y);
    free(data);
}

/* splitmix64's finaliser as a mixing step: fast, and every input bit
 * reaches every output bit. */
static uint64_t mix64(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

/* Version 1: one float's bits at a time, a chain of dependent multiplies. */
static uint64_t features_hash_v1(const rw_dataset *d, uint64_t h)
{
    for (int i = 0; i < d->n; i++)
        for (size_t j = 0; j < (size_t)d->features; j++) {
            float v = feature_at(d, i, j);
            uint32_t bits;
            memcpy(&bits, &v, 4);
            h = mix64(h, bits);
        }
    return h;
}

/* Version 2: the stored bytes as 64-bit words, eight independent chains
 * (word i goes to chain i % 8) of one xor, rotation and multiply each, so
 * that the chains overlap and the loop runs at memory speed; mix64 then
 * folds the chains, the length and the last partial word. Made to tell
 * data apart, not to resist an adversary. The bytes are those of the
 * samples in sample order, whatever order their rows are stored in. */
enum { HASH_LANES = 8, HASH_BLOCK = 8 * HASH_LANES, HASH_AHEAD = 8 };

/* The chains over p[0..len), len a multiple of HASH_BLOCK. */
static void hash_blocks(uint64_t lane[HASH_LANES], const unsigned char *p, size_t len)
{
    const uint64_t odd = 0x9fb21c651e98df25ULL;
    for (size_t i = 0; i + HASH_BLOCK <= len; i += HASH_BLOCK)
        for (int l = 0; l < HASH_LANES; l++) {
            uint64_t w, v;
            memcpy(&w, p + i + 8 * (size_t)l, 8);
            v = lane[l] ^ w;
            lane[l] = ((v << 29) | (v >> 35)) * odd;
        }
}

/* The last partial block p[0..rest), rest < HASH_BLOCK, word by word. */
static uint64_t hash_tail(const unsigned char *p, size_t rest)
{
    uint64_t tail = 0;
    memcpy(&tail, p, rest < 8 ? rest : 8);
    for (size_t j = 8; j < rest; j += 8) {
        uint64_t w = 0;
        memcpy(&w, p + j, rest - j < 8 ? rest - j : 8);
        tail = mix64(tail, w);
    }
    return tail;
}

static uint64_t features_hash_v2(const rw_dataset *d, uint64_t h)
{
    size_t size = row_size(d), len = (size_t)d->n * size;
    uint64_t lane[HASH_LANES], tail;
    for (int l = 0; l < HASH_LANES; l++) lane[l] = mix64(h, (uint64_t)l + (d->bytes ? 0x100 : 0x200));
    if (!d->row_of) {
        const unsigned char *p = d->n > 0 ? row_at(d, 0) : (const unsigned char *)"";
        size_t whole = len / HASH_BLOCK * HASH_BLOCK;
        hash_blocks(lane, p, whole);
        tail = hash_tail(p + whole, len - whole);
    } else {
        /* The rows in sample order, gathered a buffer at a time (a whole
         * number of blocks, so that the chains see the words they would
         * see in one array). */
        unsigned char buf[256 * HASH_BLOCK];
        size_t got = 0, at = 0;
        int i = 0;
        for (;;) {
            while (got < sizeof buf && i < d->n) {
                /* Rows come in sample order, not stored order: a row a few
                 * samples ahead is asked for, so that its memory latency
                 * (and its TLB miss) overlaps the copies before it. */
                if (at == 0 && i + HASH_AHEAD < d->n)
                    for (size_t o = 0; o < size; o += 64) __builtin_prefetch(row_at(d, i + HASH_AHEAD) + o);
                size_t take = size - at < sizeof buf - got ? size - at : sizeof buf - got;
                memcpy(buf + got, row_at(d, i) + at, take);
                got += take;
                at += take;
                if (at == size) i++, at = 0;
            }
            size_t whole = got / HASH_BLOCK * HASH_BLOCK;
            hash_blocks(lane, buf, whole);
            if (got < sizeof buf) {
                tail = hash_tail(buf + whole, got - whole);
                break;
            }
            got = 0;
        }
    }
    h = mix64(mix64(h, (uint64_t)len), tail);
    for (int l = 0; l < HASH_LANES; l++) h = mix64(h, lane[l]);
    return h;
}

uint64_t dataset_fingerprint(const rw_dataset *d, int version)
{
    uint64_t h = mix64(mix64(mix64(0, (uint64_t)d->n), (uint64_t)d->features), (uint64_t)d->classes);
    h = version >= 2 ? features_hash_v2(d, h) : features_hash_v1(d, h);
    for (int i = 0; i < d->n; i++) h = mix64(h, d->y[i]);
    /* IDX data has no names, so its fingerprints are those of before. */
    for (int k = 0; d->class_names && k < d->classes; k++)
        for (const char *c = d->class_names[k];; c++) {
            h = mix64(h, (uint8_t)*c);
            if (!*c) break;
        }
    return h ? h : 1;
}
