/* Reading a whole file with a size limit, and quoting bytes for messages. */
#include "text/text_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "text/unicode.h"

static rw_status io_error(const char *path, const char *doing)
{
    char msg[128];
    if (strerror_r(errno, msg, sizeof msg) != 0) snprintf(msg, sizeof msg, "error %d", errno);
    return rw_fail(RW_ERR_IO, "%s: %s: %s", path, doing, msg);
}

rw_status text_read_file(const char *path, size_t max_bytes, const char *what, uint8_t **data,
                         size_t *len)
{
    *data = NULL;
    *len = 0;
    if (!path) return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s path is NULL", what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error(path, "cannot open");
    rw_status st = RW_OK;
    struct stat sb;
    uint8_t *buf = NULL;
    size_t cap = 0, have = 0;
    if (fstat(fd, &sb) != 0) {
        st = io_error(path, "cannot stat");
        goto done;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = rw_fail(RW_ERR_IO, "%s: is a folder, expected a %s file", path, what);
        goto done;
    }
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > max_bytes) {
        st = rw_fail(RW_ERR_FORMAT, "%s: file is %lld bytes, more than the limit of %zu for a %s",
                     path, (long long)sb.st_size, max_bytes, what);
        goto done;
    }
    /* The size is a hint (pipes have none); the loop reads to the end, one
     * byte past the limit at most. */
    cap = S_ISREG(sb.st_mode) && sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096;
    for (;;) {
        if (have == cap || !buf) {
            size_t next = !buf ? cap : (cap > SIZE_MAX / 2 ? SIZE_MAX : 2 * cap);
            if (next > max_bytes + 1) next = max_bytes + 1;
            uint8_t *grown = realloc(buf, next + 1);
            if (!grown) {
                st = rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes for the %s", path,
                             next + 1, what);
                goto done;
            }
            buf = grown;
            cap = next;
        }
        ssize_t n = read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            st = io_error(path, "read failed");
            goto done;
        }
        if (n == 0) break;
        have += (size_t)n;
        if (have > max_bytes) {
            st = rw_fail(RW_ERR_FORMAT, "%s: file is more than the limit of %zu bytes for a %s",
                         path, max_bytes, what);
            goto done;
        }
    }
    buf[have] = '\0';
done:
    close(fd);
    if (st != RW_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    *len = have;
    return RW_OK;
}

const char *text_quote(char *buf, size_t cap, const void *str, size_t len)
{
    const uint8_t *s = str;
    size_t at = 0, i = 0;
    while (i < len && at + 8 < cap) {
        if (i >= 40) {
            memcpy(buf + at, "...", 3);
            at += 3;
            break;
        }
        uint32_t cp;
        int k = utf8_decode(s + i, len - i, &cp);
        if (cp == '"' || cp == '\\') {
            buf[at++] = '\\';
            buf[at++] = (char)cp;
        } else if (cp == UNICODE_INVALID || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
            for (int j = 0; j < k; j++) at += (size_t)snprintf(buf + at, cap - at, "\\x%02X", s[i + j]);
        } else {
            memcpy(buf + at, s + i, (size_t)k);
            at += (size_t)k;
        }
        i += (size_t)k;
    }
    buf[at] = '\0';
    return buf;
}
