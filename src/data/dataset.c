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

/* n may be 0, as a split's validation part can be. x is not zeroed, as
 * that touched every page of a 188 MB training set once more for nothing. */
rw_status dataset_alloc(int n, int features, int classes, rw_dataset **out)
{
    *out = NULL;
    rw_dataset *d = calloc(1, sizeof *d);
    if (!d) return rw_fail(RW_ERR_NO_MEMORY, "dataset: out of memory");
    size_t cells = (size_t)n * (size_t)features;
    if (features > 0 && cells / (size_t)features != (size_t)n) cells = SIZE_MAX;
    d->x = cells > SIZE_MAX / sizeof(float) ? NULL : rw_alloc_unset(cells * sizeof(float));
    d->y = malloc(n > 0 ? (size_t)n : 1);
    if (!d->x || !d->y) {
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
    rw_status st = dataset_alloc(n, src->features, src->classes, out);
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
    size_t f = (size_t)src->features;
    for (int i = 0; i < n; i++) {
        memcpy(d->x + (size_t)i * f, src->x + (size_t)idx[i] * f, f * sizeof(float));
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
    st = dataset_alloc(n_images, rows * cols, max_label + 1, &d);
    if (st != RW_OK) goto done;
    size_t cells = (size_t)n_images * (size_t)(rows * cols);
    for (size_t i = 0; i < cells; i++) d->x[i] = (float)pixels[i] / 255.0f;
    memcpy(d->y, labels, (size_t)n_labels);
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
    return rw_dataset_load_idx(images, labels, out);
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
    memcpy(d->x, src->x, (size_t)n * (size_t)src->features * sizeof(float));
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
    size_t f = (size_t)d->features;
    rw_status st = dataset_alloc_like(d, count, val);
    if (st != RW_OK) return st;
    int *perm = split_order(n, seed);
    uint8_t *done = calloc((size_t)n, 1);
    float *row = malloc(sizeof(float) * (f > 0 ? f : 1));
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
        memcpy(row, d->x + (size_t)i * f, f * sizeof(float));
        uint8_t label = d->y[i];
        int j = i;
        done[j] = 1;
        for (int k = perm[j]; k != i; j = k, k = perm[j]) {
            memcpy(d->x + (size_t)j * f, d->x + (size_t)k * f, f * sizeof(float));
            d->y[j] = d->y[k];
            done[k] = 1;
        }
        memcpy(d->x + (size_t)j * f, row, f * sizeof(float));
        d->y[j] = label;
    }
    free(perm);
    free(done);
    free(row);
    /* The validation samples are now the last `count`. */
    memcpy((*val)->x, d->x + (size_t)(n - count) * f, (size_t)count * f * sizeof(float));
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
    if (x) *x = data->x;
    if (y) *y = data->y;
}

void rw_dataset_stats(const rw_dataset *data, float *mean, float *std)
{
    /* Two passes in double: the mean first, then the mean squared deviation
     * (population variance), which avoids E[x²] - E[x]² cancellation. An
     * empty dataset gives the identity normalisation (0, 1). */
    double m = 0.0, sd = 1.0;
    size_t cells = data ? (size_t)data->n * (size_t)data->features : 0;
    if (cells > 0) {
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
    for (int i = 0; i < data->n; i++) {
        const float *row = data->x + (size_t)i * f;
        for (size_t j = 0; j < f; j++) sum[j] += row[j];
    }
    for (size_t j = 0; j < f; j++) sum[j] /= data->n > 0 ? (double)data->n : 1.0;
    for (int i = 0; i < data->n; i++) {
        const float *row = data->x + (size_t)i * f;
        for (size_t j = 0; j < f; j++) {
            double dev = row[j] - sum[j];
            sq[j] += dev * dev;
        }
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

uint64_t dataset_fingerprint(const rw_dataset *d)
{
    uint64_t h = mix64(mix64(mix64(0, (uint64_t)d->n), (uint64_t)d->features), (uint64_t)d->classes);
    size_t cells = (size_t)d->n * (size_t)d->features;
    for (size_t i = 0; i < cells; i++) {
        uint32_t bits;
        memcpy(&bits, &d->x[i], 4);
        h = mix64(h, bits);
    }
    for (int i = 0; i < d->n; i++) h = mix64(h, d->y[i]);
    /* IDX data has no names, so its fingerprints are those of before. */
    for (int k = 0; d->class_names && k < d->classes; k++)
        for (const char *c = d->class_names[k];; c++) {
            h = mix64(h, (uint8_t)*c);
            if (!*c) break;
        }
    return h ? h : 1;
}
