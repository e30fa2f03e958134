/* Writing safetensors files: tensors are laid out back to back in the order
 * they were added, the JSON header (built by jansson) is padded with spaces
 * so the data block starts 8-byte aligned, and the file is written to
 * PATH.tmp, fsynced and renamed so a crash never leaves half a file at PATH. */
#include "io/safetensors.h"
#include "io/safetensors_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "io/file_atomic.h"

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* borrowed from the caller */
    size_t nbytes;
} st_entry;

struct st_writer {
    st_entry *entries; /* [cap], the first count in use, in insertion order */
    int count, cap;
    json_t *meta;      /* object of strings, owned */
};

st_writer *st_writer_new(void)
{
    st_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    if (!(w->meta = json_object())) {
        free(w);
        return NULL;
    }
    return w;
}

void st_writer_free(st_writer *w)
{
    if (!w) return;
    for (int k = 0; k < w->count; k++) free(w->entries[k].name);
    free(w->entries);
    json_decref(w->meta);
    free(w);
}

/* jansson refuses strings that are not UTF-8; find out now rather than at
 * write time. (A NULL here could also be a failed tiny allocation.) */
static int is_utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

rw_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim,
                        const int64_t *shape, const void *data)
{
    if (!w || !name)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "st_writer_add: NULL writer or name");
    if (st_dtype_size(dtype) == 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "tensor %s: unknown dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > ST_MAX_DIMS || (ndim > 0 && !shape))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "tensor %s: %d dimensions, expected 0 to %d", name,
                       ndim, ST_MAX_DIMS);
    if (strcmp(name, "__metadata__") == 0 || !is_utf8(name))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "tensor %s: name is reserved or not valid UTF-8", name);
    for (int k = 0; k < w->count; k++)
        if (strcmp(w->entries[k].name, name) == 0)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "tensor %s: added twice", name);
    for (int k = 0; k < ndim; k++)
        if (shape[k] < 0)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "tensor %s: dimension %d is negative (%lld)",
                           name, k, (long long)shape[k]);
    int64_t count, nbytes;
    if (st_shape_bytes(dtype, ndim, shape, &count, &nbytes) != 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "tensor %s: byte size overflows", name);
    if (nbytes > 0 && !data)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "tensor %s: NULL data for %lld bytes", name,
                       (long long)nbytes);

    if (w->count == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_entry *grown = realloc(w->entries, sizeof *grown * (size_t)cap);
        if (!grown) return rw_fail(RW_ERR_NO_MEMORY, "tensor %s: cannot grow the writer", name);
        w->entries = grown;
        w->cap = cap;
    }
    st_entry *e = &w->entries[w->count];
    if (!(e->name = strdup(name)))
        return rw_fail(RW_ERR_NO_MEMORY, "tensor %s: cannot copy the name", name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int k = 0; k < ndim; k++) e->shape[k] = shape[k];
    e->data = data;
    e->nbytes = (size_t)nbytes;
    w->count++;
    return RW_OK;
}

rw_status st_writer_meta(st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "st_writer_meta: NULL writer, key or value");
    json_t *s = json_string(value);
    if (!s || !is_utf8(key)) {
        json_decref(s);
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "metadata %s: key or value is not valid UTF-8",
                       key);
    }
    if (json_object_set_new(w->meta, key, s) != 0) /* steals s, even on failure */
        return rw_fail(RW_ERR_NO_MEMORY, "metadata %s: cannot store the value", key);
    return RW_OK;
}

/* The 8-byte length, the compact JSON header and its space padding, in one
 * malloc'd buffer of *len bytes. */
static rw_status build_header(const st_writer *w, const char *path, unsigned char **out,
                              size_t *len)
{
    json_t *root = json_object();
    int bad = !root;
    if (!bad && json_object_size(w->meta) > 0)
        bad = json_object_set(root, "__metadata__", w->meta) != 0;
    uint64_t offset = 0;
    for (int k = 0; k < w->count && !bad; k++) {
        const st_entry *e = &w->entries[k];
        if (e->nbytes > (uint64_t)INT64_MAX - offset) {
            json_decref(root);
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: tensors add up to more than 2^63 bytes",
                           path);
        }
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++)
            json_array_append_new(shape, json_integer(e->shape[d]));
        if (!shape || json_array_size(shape) != (size_t)e->ndim) {
            json_decref(shape);
            bad = 1;
            break;
        }
        /* "o" steals shape, also when packing fails */
        json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", st_dtype_name(e->dtype),
                                  "shape", shape, "data_offsets", (json_int_t)offset,
                                  (json_int_t)(offset + e->nbytes));
        bad = json_object_set_new(root, e->name, entry) != 0; /* steals entry */
        offset += e->nbytes;
    }
    char *json = bad ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!json) return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot build the JSON header", path);

    size_t n = strlen(json);
    size_t padded = (n + 7) / 8 * 8; /* so the data block starts 8-byte aligned */
    if (padded > ST_MAX_HEADER_BYTES) {
        free(json);
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: header of %zu bytes is above the limit of %d",
                       path, padded, ST_MAX_HEADER_BYTES);
    }
    unsigned char *buf = malloc(8 + padded);
    if (!buf) {
        free(json);
        return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate the header", path);
    }
    uint64_t le = padded; /* little-endian host, asserted in safetensors.c */
    memcpy(buf, &le, 8);
    memcpy(buf + 8, json, n);
    memset(buf + 8 + n, ' ', padded - n);
    free(json);
    *out = buf;
    *len = 8 + padded;
    return RW_OK;
}

static rw_status io_fail(const char *path, const char *what)
{
    char msg[128];
    st_strerror(errno, msg, sizeof msg);
    return rw_fail(RW_ERR_IO, "%s: %s failed: %s", path, what, msg);
}

rw_status st_writer_write(const st_writer *w, const char *path)
{
    if (!w || !path)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "st_writer_write: NULL writer or path");
    unsigned char *head = NULL;
    size_t head_len = 0;
    rw_status st = build_header(w, path, &head, &head_len);
    if (st != RW_OK) return st;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(head);
        return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate the temporary name", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = io_fail(tmp, "open");
        goto done; /* nothing was created */
    }
    if (file_write_all(fd, head, head_len) != 0) st = io_fail(tmp, "write");
    for (int k = 0; k < w->count && st == RW_OK; k++)
        if (file_write_all(fd, w->entries[k].data, w->entries[k].nbytes) != 0)
            st = io_fail(tmp, "write");
    if (st == RW_OK && fsync(fd) != 0) st = io_fail(tmp, "fsync");
    if (close(fd) != 0 && st == RW_OK) st = io_fail(tmp, "close");
    if (st == RW_OK && rename(tmp, path) != 0) st = io_fail(path, "rename from .tmp");
    if (st != RW_OK) {
        unlink(tmp);
        goto done;
    }
    st = file_sync_dir_of(path);
    if (st == RW_OK) rw_clear_error();
done:
    free(tmp);
    free(head);
    return st;
}
