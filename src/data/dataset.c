/* rw_dataset: loading (IDX files or memory), head, seeded split, stats.
 * (CSV and .npy loading live in csv.c and npy.c.)
 * A dataset is immutable once handed out; every operation makes a new one
 * (rw_dataset_load_part cuts and splits the one it loads in place, before
 * returning it). */
#include "data/dataset.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    size_t at = (size_t)first * (size_t)d->features;
    sample_rows r = {.features = d->features};
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
    return base + (size_t)i * row_size(d);
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
    memcpy(row_at(d, 0), row_at(src, 0), (size_t)n * row_size(src));
    memcpy(d->y, src->y, (size_t)n);
    *out = d;
    return RW_OK;
}

/* Keeps the first n samples (all when n >= the count). */
static void dataset_truncate(rw_dataset *d, int n)
{
    if (d && n >= 0 && n < d->n) d->n = n;
}

/* d becomes rw_dataset_split's training part and *val its validation part,
 * without a second copy of the training samples; the validation samples
 * stay allocated at d's end. On failure d is unchanged and *val NULL. */
static rw_status dataset_split_in_place(rw_dataset *d, int count, uint64_t seed, rw_dataset **val)
{
    *val = NULL;
    if (count < 0 || count >= d->n)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "dataset split: validation count %d must be in [0, %d) for %d samples",
                       count, d->n, d->n);
    int n = d->n;
    size_t size = row_size(d);
    /* Floats made from bytes would go stale: the bytes are moved alone. */
    if (d->bytes) {
        rw_free(d->x);
        d->x = NULL;
    }
    rw_status st = dataset_alloc_like(d, count, val);
    if (st != RW_OK) return st;
    int *perm = split_order(n, seed);
    uint8_t *done = calloc((size_t)n, 1);
    unsigned char *row = malloc(size > 0 ? size : 1);
    if (!perm || !done || !row) {
        free(perm);
        free(done);
        free(row);
        rw_dataset_free(*val);
        *val = NULL;
        return rw_fail(RW_ERR_NO_MEMORY, "dataset split: out of memory");
    }
    /* Sample i becomes the old sample perm[i], one cycle of the
     * permutation at a time, through one spare row: the order
     * rw_dataset_split gathers into new memory. */
    for (int i = 0; i < n; i++) {
        if (done[i]) continue;
        memcpy(row, row_at(d, i), size);
        uint8_t label = d->y[i];
        int j = i;
        done[j] = 1;
        for (int k = perm[j]; k != i; j = k, k = perm[j]) {
            memcpy(row_at(d, j), row_at(d, k), size);
            d->y[j] = d->y[k];
            done[k] = 1;
        }
        memcpy(row_at(d, j), row, size);
        d->y[j] = label;
    }
    free(perm);
    free(done);
    free(row);
    /* The validation samples are now the last `count`. */
    memcpy(row_at(*val, 0), row_at(d, n - count), (size_t)count * size);
    memcpy((*val)->y, d->y + (n - count), (size_t)count);
    d->n = n - count;
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
        st = dataset_split_in_place(d, split_count(val_fraction, d->n), seed, val);
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
            size_t cells = (size_t)data->n * (size_t)data->features;
            float *f = rw_alloc_unset((cells > 0 ? cells : 1) * sizeof(float));
            for (size_t i = 0; f && i < cells; i++) f[i] = dataset_byte_value[data->bytes[i]];
            ((rw_dataset *)data)->x = f;
        }
        *x = data->x;
    }
    if (y) *y = data->y;
}

/* How many times each byte value occurs among the features. */
static void byte_counts(const rw_dataset *d, uint64_t count[256])
{
    /* Four tables, so that runs of one value do not wait on each other's
     * increments. */
    uint32_t part[4][256];
    memset(count, 0, 256 * sizeof *count);
    size_t cells = (size_t)d->n * (size_t)d->features, i = 0;
    while (i < cells) {
        memset(part, 0, sizeof part);
        /* At most 2^32 - 1 per table before they are added up. */
        size_t end = cells - i > ((size_t)1 << 30) ? i + ((size_t)1 << 30) : cells;
        for (; i + 4 <= end; i += 4) {
            part[0][d->bytes[i]]++;
            part[1][d->bytes[i + 1]]++;
            part[2][d->bytes[i + 2]]++;
            part[3][d->bytes[i + 3]]++;
        }
        for (; i < end; i++) part[0][d->bytes[i]]++;
        for (int v = 0; v < 256; v++) count[v] += (uint64_t)part[0][v] + part[1][v] + part[2][v] + part[3][v];
    }
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
        byte_counts(data, count);
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
    size_t at = (size_t)i * (size_t)d->features + j;
    return d->bytes ? dataset_byte_value[d->bytes[at]] : d->x[at];
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
    rw_free(data->bytes);
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
    size_t cells = (size_t)d->n * (size_t)d->features;
    for (size_t i = 0; i < cells; i++) {
        float v = d->bytes ? dataset_byte_value[d->bytes[i]] : d->x[i];
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
 * data apart, not to resist an adversary. */
static uint64_t features_hash_v2(const rw_dataset *d, uint64_t h)
{
    enum { LANES = 8 };
    const uint64_t odd = 0x9fb21c651e98df25ULL;
    const unsigned char *p = d->bytes ? (const unsigned char *)d->bytes : (const unsigned char *)d->x;
    size_t len = (size_t)d->n * (size_t)d->features * (d->bytes ? 1 : sizeof(float)), i = 0;
    uint64_t lane[LANES];
    for (int l = 0; l < LANES; l++) lane[l] = mix64(h, (uint64_t)l + (d->bytes ? 0x100 : 0x200));
    for (; i + 8 * LANES <= len; i += 8 * LANES)
        for (int l = 0; l < LANES; l++) {
            uint64_t w, v;
            memcpy(&w, p + i + 8 * (size_t)l, 8);
            v = lane[l] ^ w;
            lane[l] = ((v << 29) | (v >> 35)) * odd;
        }
    uint64_t tail = 0;
    memcpy(&tail, p + i, len - i < 8 ? len - i : 8);
    for (size_t j = i + 8; j < len; j += 8) {
        uint64_t w = 0;
        memcpy(&w, p + j, len - j < 8 ? len - j : 8);
        tail = mix64(tail, w);
    }
    h = mix64(mix64(h, (uint64_t)len), tail);
    for (int l = 0; l < LANES; l++) h = mix64(h, lane[l]);
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
