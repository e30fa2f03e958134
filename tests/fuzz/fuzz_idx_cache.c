/* libFuzzer harness for the cache of inflated IDX splits (data/idx_cache.c),
 * which is mapped read-only and trusted for the samples, the labels and the
 * byte counts that set a model's normalisation. A valid cache file of a
 * small gzipped split is damaged by the input (the first two bytes: how
 * many bytes to cut off its end; the rest: XORed onto it from its first
 * byte), then the split is loaded with a validation part: the load must
 * succeed with exactly the samples, labels and statistics of the sources,
 * whether the damaged file was ignored (and written anew) or not. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.h"

#define N 5
#define SIDE 3

static char dir[64], cache_path[600];
static uint8_t *valid;
static size_t valid_len;
static rw_dataset *want_train, *want_val;
static float want_mean, want_std;

static void write_gz(const char *name, const uint8_t *head, size_t head_len, const uint8_t *data,
                     size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile f = gzopen(path, "wb");
    if (!f || gzwrite(f, head, (unsigned)head_len) != (int)head_len ||
        gzwrite(f, data, (unsigned)len) != (int)len || gzclose(f) != Z_OK)
        abort();
}

/* The folder and its files go with the process. */
static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz_idx_cache: cannot remove %s\n", dir);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/fuzz-idx-cache-XXXXXX");
    if (!mkdtemp(dir)) abort();
    atexit(cleanup);
    uint8_t pixels[N * SIDE * SIDE], labels[N];
    for (int i = 0; i < N * SIDE * SIDE; i++) pixels[i] = (uint8_t)(i * 37 + 11);
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)(i % 3);
    const uint8_t ihead[16] = {0, 0, 8, 3, 0, 0, 0, N, 0, 0, 0, SIDE, 0, 0, 0, SIDE};
    const uint8_t lhead[8] = {0, 0, 8, 1, 0, 0, 0, N};
    write_gz("train-images-idx3-ubyte.gz", ihead, 16, pixels, sizeof pixels);
    write_gz("train-labels-idx1-ubyte.gz", lhead, 8, labels, sizeof labels);
    char cache[96];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    setenv("REWIRE_CACHE_DIR", cache, 1);
    /* The expected split, from the sources alone. */
    rw_dataset *all = NULL;
    char images[128], labels_path[128];
    snprintf(images, sizeof images, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(labels_path, sizeof labels_path, "%s/train-labels-idx1-ubyte.gz", dir);
    if (rw_dataset_load_idx(images, labels_path, &all) != RW_OK ||
        rw_dataset_split(all, 2, 1, &want_train, &want_val) != RW_OK)
        abort();
    rw_dataset_stats(want_train, &want_mean, &want_std);
    rw_dataset_free(all);
    /* The cache file a load writes. */
    if (rw_dataset_load(dir, 0, &all) != RW_OK) abort();
    rw_dataset_free(all);
    DIR *d = opendir(cache);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') snprintf(cache_path, sizeof cache_path, "%s/%s", cache, e->d_name);
    if (d) closedir(d);
    FILE *f = fopen(cache_path, "rb");
    if (!f) abort();
    valid = malloc(1 << 16);
    valid_len = fread(valid, 1, 1 << 16, f);
    fclose(f);
}

/* a and b hold the same samples in the same order. */
static void check_same(const rw_dataset *a, const rw_dataset *b)
{
    if (a->n != b->n || a->features != b->features || a->classes != b->classes) abort();
    uint8_t *ra = malloc((size_t)a->n * a->features + 1), *rb = malloc((size_t)b->n * b->features + 1);
    dataset_copy_samples(a, 0, a->n, ra);
    dataset_copy_samples(b, 0, b->n, rb);
    if (memcmp(ra, rb, (size_t)a->n * a->features) != 0 || memcmp(a->y, b->y, (size_t)a->n) != 0)
        abort();
    free(ra);
    free(rb);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t cut = ((size_t)data[0] | (size_t)data[1] << 8) % (valid_len + 1);
    size_t len = valid_len - cut;
    uint8_t *file = malloc(len + 1);
    memcpy(file, valid, len);
    for (size_t i = 2; i < size && i - 2 < len; i++) file[i - 2] ^= data[i];
    /* A new file renamed over the old one, as rewire writes them. */
    char tmp[640];
    snprintf(tmp, sizeof tmp, "%s.fuzz", cache_path);
    FILE *f = fopen(tmp, "wb");
    if (!f || (len && fwrite(file, 1, len, f) != len) || fclose(f) != 0 || rename(tmp, cache_path) != 0)
        abort();
    free(file);

    rw_dataset *train = NULL, *val = NULL;
    if (rw_dataset_load_part(dir, 0, 0, 0.4, 1, &train, &val) != RW_OK) abort();
    check_same(want_train, train);
    check_same(want_val, val);
    float mean, std;
    rw_dataset_stats(train, &mean, &std);
    if (mean != want_mean || std != want_std) abort();
    rw_dataset_free(train);
    rw_dataset_free(val);
    return 0;
}
