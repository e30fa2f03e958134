/* The buffer grows with the bytes that arrive (doubling), so nothing read
 * from the file decides an allocation. */
#include "data/read_file.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"

rw_status data_read_file(const char *path, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (!path) return rw_fail(RW_ERR_INVALID_ARGUMENT, "file path is NULL");
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return rw_fail(RW_ERR_IO, "%s: cannot open: %s", path,
                       errno ? strerror(errno) : "out of memory");

    rw_status st = RW_OK;
    size_t cap = 1 << 16, have = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            st = rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes to read it", path, cap + 1);
            break;
        }
        if (have == cap) {
            size_t next = cap > SIZE_MAX / 4 ? SIZE_MAX / 2 : 2 * cap;
            char *grown = next > cap ? realloc(buf, next + 1) : NULL;
            if (!grown) {
                free(buf);
                buf = NULL;
                cap = next;
                continue;
            }
            buf = grown;
            cap = next;
        }
        size_t want = cap - have;
        unsigned chunk = want > (1u << 30) ? (1u << 30) : (unsigned)want;
        int n = gzread(f, buf + have, chunk);
        if (n < 0) {
            int err;
            const char *msg = gzerror(f, &err);
            if (err == Z_ERRNO) {
                st = rw_fail(RW_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            } else {
                /* zlib prefixes its message with the path; drop the repeat. */
                size_t plen = strlen(path);
                if (strncmp(msg, path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
                    msg += plen + 2;
                st = rw_fail(RW_ERR_FORMAT, "%s: corrupt gzip data: %s", path, msg);
            }
            break;
        }
        if (n == 0) break;
        have += (size_t)n;
    }
    gzclose(f);
    if (st != RW_OK) {
        free(buf);
        return st;
    }
    buf[have] = '\0';
    *data = buf;
    *len = have;
    return RW_OK;
}
