/* realpath is XSI; MAP_POPULATE is Linux's. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include "data/idx_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

#define CACHE_MAGIC "rewire idx cache"
/* 2: the byte counts joined the header. */
#define CACHE_VERSION 2

/* What identifies a source file's contents without reading them. */
typedef struct {
    uint64_t dev, ino, size;
    int64_t mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
} source_id;

/* The cache file's header; the labels (n bytes), then the pixels
 * (n x features bytes) follow. */
typedef struct {
    char magic[16];
    uint32_t version, header_size;
    source_id images, labels;
    int32_t n, features, classes, reserved;
    uint64_t fingerprint; /* dataset_fingerprint version 2 of the data */
    uint64_t byte_count[256]; /* dataset_count_bytes of the data */
    uint64_t count_check;     /* counts_check of byte_count */
} cache_header;

/* FNV-1a over the counts: a damaged count is caught as a damaged pixel
 * is by the fingerprint (the counts set the model's normalisation). */
static uint64_t counts_check(const uint64_t count[256])
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const unsigned char *p = (const unsigned char *)count;
    for (size_t i = 0; i < 256 * sizeof *count; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static int source_of(const char *path, source_id *id)
{
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    memset(id, 0, sizeof *id);
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    id->size = (uint64_t)st.st_size;
    id->mtime_sec = (int64_t)st.st_mtim.tv_sec;
    id->mtime_nsec = (int64_t)st.st_mtim.tv_nsec;
    id->ctime_sec = (int64_t)st.st_ctim.tv_sec;
    id->ctime_nsec = (int64_t)st.st_ctim.tv_nsec;
    return 1;
}

/* FNV-1a over a string: the cache file's name from the source paths. */
static uint64_t name_hash(uint64_t h, const char *s)
{
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return (h ^ 0xff) * 0x100000001b3ULL;
}

/* The cache folder into dir (created if missing); 0 when the cache is off
 * or there is no folder for it. */
static int cache_dir(char *dir, size_t cap)
{
    const char *env = getenv("REWIRE_CACHE_DIR");
    int n;
    if (env && (strcmp(env, "off") == 0 || !*env)) return 0;
    if (env) n = snprintf(dir, cap, "%s", env);
    else if (getenv("XDG_CACHE_HOME") && *getenv("XDG_CACHE_HOME"))
        n = snprintf(dir, cap, "%s/rewire", getenv("XDG_CACHE_HOME"));
    else if (getenv("HOME") && *getenv("HOME"))
        n = snprintf(dir, cap, "%s/.cache/rewire", getenv("HOME"));
    else return 0;
    if (n < 0 || (size_t)n >= cap) return 0;
    /* Each missing folder of the path, as mkdir -p makes them. */
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            int ok = mkdir(dir, 0777) == 0 || errno == EEXIST;
            *p = '/';
            if (!ok) return 0;
        }
    return mkdir(dir, 0777) == 0 || errno == EEXIST;
}

static int read_all(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t r = read(fd, (char *)buf + got, len - got > (1u << 30) ? (1u << 30) : len - got);
        if (r <= 0) return 0;
        got += (size_t)r;
    }
    return 1;
}

static int write_all(int fd, const void *buf, size_t len)
{
    for (size_t put = 0; put < len;) {
        ssize_t w = write(fd, (const char *)buf + put, len - put > (1u << 30) ? (1u << 30) : len - put);
        if (w <= 0) return 0;
        put += (size_t)w;
    }
    return 1;
}

/* The dataset a cache file holds when it matches `want` whole; NULL
 * otherwise. The pixels stay in the file, mapped read-only: copying 47 MB
 * out of the page cache into fresh memory (whose every page the kernel
 * must first zero) cost more than the rest of loading. The mapping is
 * filled in one call (MAP_POPULATE) rather than a page fault at a time. */
static rw_dataset *cache_read(const char *path, const cache_header *want)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    cache_header h;
    rw_dataset *d = NULL;
    struct stat st;
    if (!read_all(fd, &h, sizeof h) || memcmp(h.magic, want->magic, sizeof h.magic) != 0 ||
        h.version != CACHE_VERSION || h.header_size != sizeof h ||
        memcmp(&h.images, &want->images, sizeof h.images) != 0 ||
        memcmp(&h.labels, &want->labels, sizeof h.labels) != 0 || h.n < 0 || h.features < 1 ||
        h.classes < 1 || h.classes > RW_MAX_CLASSES || fstat(fd, &st) != 0 ||
        (uint64_t)st.st_size != sizeof h + (uint64_t)h.n * (1 + (uint64_t)h.features) ||
        (uint64_t)st.st_size > SIZE_MAX)
        goto done;
    size_t len = (size_t)st.st_size;
    int flags = MAP_PRIVATE;
#ifdef MAP_POPULATE
    flags |= MAP_POPULATE;
#endif
    void *map = mmap(NULL, len, PROT_READ, flags, fd, 0);
    if (map == MAP_FAILED) goto done;
    const uint8_t *labels = (const uint8_t *)map + sizeof h;
    if (dataset_alloc_bytes(0, h.features, h.classes, &d) != RW_OK) {
        munmap(map, len);
        goto done;
    }
    rw_free(d->bytes);
    d->bytes = (uint8_t *)labels + h.n;
    d->file_map = map;
    d->file_map_len = len;
    uint8_t *y = malloc(h.n > 0 ? (size_t)h.n : 1);
    if (!y) goto fail;
    free(d->y);
    d->y = y;
    memcpy(d->y, labels, (size_t)h.n);
    d->n = h.n;
    for (int i = 0; i < h.n; i++)
        if (d->y[i] >= h.classes) goto fail;
    if (dataset_fingerprint(d, 2) != h.fingerprint || counts_check(h.byte_count) != h.count_check)
        goto fail;
    uint64_t total = 0;
    for (int v = 0; v < 256; v++) total += h.byte_count[v];
    if (total != (uint64_t)h.n * (uint64_t)h.features) goto fail;
    memcpy(d->byte_count, h.byte_count, sizeof h.byte_count);
    d->counted = 1;
    goto done;
fail:
    rw_dataset_free(d);
    d = NULL;
done:
    close(fd);
    rw_clear_error();
    return d;
}

/* Writes d as a cache file, whole or not at all. */
static void cache_write(const char *path, const cache_header *base, rw_dataset *d)
{
    cache_header h = *base;
    h.n = d->n;
    h.features = d->features;
    h.classes = d->classes;
    h.fingerprint = dataset_fingerprint(d, 2);
    dataset_count_bytes(d);
    memcpy(h.byte_count, d->byte_count, sizeof h.byte_count);
    h.count_check = counts_check(h.byte_count);
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof tmp) return;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return;
    int ok = write_all(fd, &h, sizeof h) && write_all(fd, d->y, (size_t)d->n) &&
             write_all(fd, d->bytes, (size_t)d->n * (size_t)d->features);
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
}

rw_status idx_cache_load(const char *images, const char *labels, rw_dataset **out)
{
    *out = NULL;
    char dir[4096], path[4096 + 64];
    cache_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CACHE_MAGIC, sizeof h.magic);
    h.version = CACHE_VERSION;
    h.header_size = sizeof h;
    char real_images[4096], real_labels[4096];
    /* Only gzipped sources are worth a copy; plain IDX files are read as
     * fast as the cache would be. */
    size_t li = strlen(images), ll = strlen(labels);
    int gz = (li > 3 && strcmp(images + li - 3, ".gz") == 0) ||
             (ll > 3 && strcmp(labels + ll - 3, ".gz") == 0);
    int usable = gz && cache_dir(dir, sizeof dir) && source_of(images, &h.images) &&
                 source_of(labels, &h.labels) && realpath(images, real_images) &&
                 realpath(labels, real_labels);
    if (usable) {
        uint64_t key = name_hash(name_hash(0xcbf29ce484222325ULL, real_images), real_labels);
        snprintf(path, sizeof path, "%s/idx-%016" PRIx64 ".bin", dir, key);
        *out = cache_read(path, &h);
        if (*out) return RW_OK;
    }
    rw_status st = rw_dataset_load_idx(images, labels, out);
    if (st == RW_OK && usable) cache_write(path, &h, *out);
    return st;
}
