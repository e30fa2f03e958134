/* IDX reader for the MNIST family. Nothing read from a file is trusted:
 * the magic, type, rank and every dimension are checked, the total size is
 * capped before anything is allocated, and the data must end exactly where
 * the header says it does. data/gz_reader.h reads gzipped and plain files
 * alike, so one path serves both. */
#include "data/idx.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "data/gz_reader.h"

#define IDX_TYPE_UBYTE 0x08
#define IDX_MAX_DIMS 3
/* No IDX file rewire reads comes near this; it keeps a corrupt header from
 * asking for an absurd allocation (and keeps counts within int). */
#define IDX_MAX_BYTES ((int64_t)INT_MAX)

/* Reads an unsigned-byte IDX file of rank `ndim`: checks the header, fills
 * dims[0..ndim), and returns the malloc'ed data (product of dims bytes).
 * `what` names an element in messages ("pixel", "label"). */
static rw_status idx_read(const char *path, int ndim, const char *what, int *dims,
                          uint8_t **data)
{
    *data = NULL;
    if (!path) return rw_fail(RW_ERR_INVALID_ARGUMENT, "IDX path is NULL");

    gz_reader *f;
    rw_status st = gz_reader_open(path, &f);
    if (st != RW_OK) return st;
    uint8_t *buf = NULL;
    uint8_t head[4 + 4 * IDX_MAX_DIMS];
    int64_t head_len = 4 + 4 * (int64_t)ndim;
    int64_t got;
    st = gz_reader_read(f, head, 4, &got);
    if (st != RW_OK) goto done;
    if (got < 4) {
        st = rw_fail(RW_ERR_FORMAT, "%s: file ends after %lld bytes, inside the 4-byte IDX header",
                     path, (long long)got);
        goto done;
    }
    if (head[0] != 0 || head[1] != 0) {
        st = rw_fail(RW_ERR_FORMAT,
                     "%s: not an IDX file (magic starts %02x %02x, expected 00 00)", path,
                     head[0], head[1]);
        goto done;
    }
    if (head[2] != IDX_TYPE_UBYTE) {
        st = rw_fail(RW_ERR_FORMAT, "%s: IDX data type 0x%02x, expected 0x08 (unsigned byte)",
                     path, head[2]);
        goto done;
    }
    if (head[3] != ndim) {
        st = rw_fail(RW_ERR_FORMAT, "%s: IDX file has %d dimensions, expected %d for %ss", path,
                     head[3], ndim, what);
        goto done;
    }
    st = gz_reader_read(f, head + 4, head_len - 4, &got);
    if (st != RW_OK) goto done;
    if (got < head_len - 4) {
        st = rw_fail(RW_ERR_FORMAT, "%s: file ends after %lld bytes, inside the %lld-byte IDX header",
                     path, (long long)(4 + got), (long long)head_len);
        goto done;
    }

    /* Dimensions are big-endian uint32; each must be nonzero and the
     * product must stay under the cap, checked one factor at a time. */
    int64_t total = 1;
    for (int d = 0; d < ndim; d++) {
        const uint8_t *p = head + 4 + 4 * d;
        uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (v == 0) {
            st = rw_fail(RW_ERR_FORMAT, "%s: IDX dimension %d is zero", path, d);
            goto done;
        }
        if ((int64_t)v > IDX_MAX_BYTES / total) {
            st = rw_fail(RW_ERR_FORMAT,
                         "%s: IDX dimensions too large (dimension %d is %lu; more than %lld bytes in all)",
                         path, d, (unsigned long)v, (long long)IDX_MAX_BYTES);
            goto done;
        }
        total *= v;
        dims[d] = (int)v;
    }

    /* The buffer grows with the bytes that actually arrive, so a tiny (or
     * gzipped) file that declares 2 GB does not get 2 GB up front. */
    int64_t cap = total < (1 << 20) ? total : (1 << 20), have = 0;
    buf = malloc((size_t)cap);
    while (buf) {
        st = gz_reader_read(f, buf + have, cap - have, &got);
        if (st != RW_OK) goto done;
        have += got;
        if (have < cap || cap == total) break;
        int64_t next = cap > total / 2 ? total : 2 * cap;
        uint8_t *grown = realloc(buf, (size_t)next);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap = next;
    }
    if (!buf) {
        st = rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate %lld bytes for the %ss", path,
                     (long long)total, what);
        goto done;
    }
    if (have < total) {
        st = rw_fail(RW_ERR_FORMAT, "%s: expected %lld %s bytes, file ends after %lld", path,
                     (long long)total, what, (long long)have);
        goto done;
    }
    uint8_t extra;
    st = gz_reader_read(f, &extra, 1, &got);
    if (st != RW_OK) goto done;
    if (got > 0) {
        st = rw_fail(RW_ERR_FORMAT, "%s: trailing bytes after the %lld %s bytes the header declares",
                     path, (long long)total, what);
        goto done;
    }

done:
    gz_reader_close(f);
    if (st != RW_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    return RW_OK;
}

rw_status idx_read_images(const char *path, uint8_t **pixels, int *count, int *rows, int *cols)
{
    int dims[3];
    rw_status st = idx_read(path, 3, "pixel", dims, pixels);
    if (st != RW_OK) return st;
    *count = dims[0];
    *rows = dims[1];
    *cols = dims[2];
    return RW_OK;
}

rw_status idx_read_labels(const char *path, uint8_t **labels, int *count)
{
    int dims[1];
    rw_status st = idx_read(path, 1, "label", dims, labels);
    if (st != RW_OK) return st;
    *count = dims[0];
    return RW_OK;
}

static int idx_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Writes DIR/NAME.gz if it exists, else DIR/NAME if that exists. */
static rw_status idx_find_file(const char *dir, const char *name, char *out, size_t cap)
{
    const char *suffixes[2] = {".gz", ""};
    for (int i = 0; i < 2; i++) {
        int len = snprintf(out, cap, "%s/%s%s", dir, name, suffixes[i]);
        if (len < 0 || (size_t)len >= cap)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: folder path too long", dir);
        if (access(out, F_OK) == 0) return RW_OK;
    }
    return rw_fail(RW_ERR_IO, "%s: no file %s.gz or %s in this folder", dir, name, name);
}

rw_status idx_locate_split(const char *dir_or_name, int test_split, char *images_path,
                           char *labels_path, size_t cap)
{
    if (!dir_or_name || !images_path || !labels_path || cap == 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "dataset folder or output path is NULL");

    /* Debian's dataset-fashion-mnist installs the four gzipped files here.
     * Debian has no MNIST package; "mnist" is looked for by analogy. */
    const char *dir = dir_or_name;
    if (strcmp(dir_or_name, "fashion-mnist") == 0) {
        dir = "/usr/share/datasets/fashion-mnist";
        if (!idx_is_dir(dir))
            return rw_fail(RW_ERR_IO,
                           "fashion-mnist: folder %s not found; install it with "
                           "`apt-get install dataset-fashion-mnist`", dir);
    } else if (strcmp(dir_or_name, "mnist") == 0) {
        dir = "/usr/share/datasets/mnist";
        if (!idx_is_dir(dir))
            return rw_fail(RW_ERR_IO,
                           "mnist: folder %s not found; put the four MNIST IDX files there "
                           "or pass the folder that holds them", dir);
    } else if (!idx_is_dir(dir)) {
        return rw_fail(RW_ERR_IO, "%s: not a folder (expected a folder holding the IDX files, "
                       "or \"fashion-mnist\")", dir);
    }

    /* Strip trailing slashes so messages and paths read "dir/name". */
    char base[4096];
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    if (len >= sizeof base) return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: folder path too long", dir);
    memcpy(base, dir, len);
    base[len] = '\0';

    const char *prefix = test_split ? "t10k" : "train";
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    rw_status st = idx_find_file(base, name, images_path, cap);
    if (st != RW_OK) return st;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    return idx_find_file(base, name, labels_path, cap);
}
