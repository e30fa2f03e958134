/* rw_dataset: loading (IDX files or memory), head, seeded split, stats.
 * A dataset is immutable once built; every operation makes a new one. */
#include "data/dataset.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/idx.h"

/* An empty dataset of n samples (n may be 0, as a split's validation part
 * can be); x is zeroed and aligned. */
static rw_status dataset_alloc(int n, int features, int classes, rw_dataset **out)
{
    *out = NULL;
    rw_dataset *d = calloc(1, sizeof *d);
    if (!d) return rw_fail(RW_ERR_NO_MEMORY, "dataset: out of memory");
    size_t cells = (size_t)n * (size_t)features;
    if (features > 0 && cells / (size_t)features != (size_t)n) cells = SIZE_MAX;
    d->x = cells > SIZE_MAX / sizeof(float) ? NULL : rw_alloc(cells * sizeof(float));
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

/* A new dataset holding src's samples idx[0..n), in that order. */
static rw_status dataset_gather(const rw_dataset *src, const int *idx, int n, rw_dataset **out)
{
    rw_status st = dataset_alloc(n, src->features, src->classes, out);
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
        /* Written so that NaN fails too. */
        if (!(features[k] >= 0.0f && features[k] <= 1.0f))
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "rw_dataset_from_memory: sample %zu feature %zu is %g, expected a value in [0, 1]",
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
    int *perm = malloc(sizeof(int) * (size_t)n);
    if (!perm) return rw_fail(RW_ERR_NO_MEMORY, "rw_dataset_split: out of memory");
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

rw_status rw_dataset_head(const rw_dataset *src, int n, rw_dataset **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_head: out is NULL");
    *out = NULL;
    if (!src) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_head: dataset is NULL");
    if (n < 0) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_head: count %d is negative", n);
    rw_clear_error();
    if (n > src->n) n = src->n;

    rw_dataset *d;
    rw_status st = dataset_alloc(n, src->features, src->classes, &d);
    if (st != RW_OK) return st;
    memcpy(d->x, src->x, (size_t)n * (size_t)src->features * sizeof(float));
    memcpy(d->y, src->y, (size_t)n);
    *out = d;
    return RW_OK;
}

int rw_dataset_count(const rw_dataset *data) { return data ? data->n : 0; }
int rw_dataset_features(const rw_dataset *data) { return data ? data->features : 0; }
int rw_dataset_classes(const rw_dataset *data) { return data ? data->classes : 0; }

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

void rw_dataset_free(rw_dataset *data)
{
    if (!data) return;
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
    return h ? h : 1;
}
