/* Crash-safe file writes (see file_atomic.h). */
#include "io/file_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "io/safetensors_internal.h"

int file_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static rw_status io_fail(const char *path, const char *what)
{
    char msg[128];
    st_strerror(errno, msg, sizeof msg);
    return rw_fail(RW_ERR_IO, "%s: %s failed: %s", path, what, msg);
}

/* The rename is only durable once the directory entry is on disk. */
rw_status file_sync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot copy the directory name", path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* Some file systems cannot fsync a directory (EINVAL); nothing to do then. */
    int failed = fd < 0 || (fsync(fd) != 0 && errno != EINVAL);
    rw_status st = failed ? io_fail(path, "syncing the directory after rename") : RW_OK;
    if (fd >= 0) close(fd);
    free(dir);
    return st;
}

rw_status file_write_atomic(const char *path, const void *data, size_t len)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate the temporary name", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    rw_status st = RW_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = io_fail(tmp, "open");
        free(tmp);
        return st; /* nothing was created */
    }
    if (file_write_all(fd, data, len) != 0) st = io_fail(tmp, "write");
    if (st == RW_OK && fsync(fd) != 0) st = io_fail(tmp, "fsync");
    if (close(fd) != 0 && st == RW_OK) st = io_fail(tmp, "close");
    if (st == RW_OK && rename(tmp, path) != 0) st = io_fail(path, "rename from .tmp");
    if (st != RW_OK) unlink(tmp);
    else st = file_sync_dir_of(path);
    free(tmp);
    return st;
}

rw_status file_rename_durable(const char *from, const char *to)
{
    if (rename(from, to) != 0) {
        char msg[128];
        st_strerror(errno, msg, sizeof msg);
        return rw_fail(RW_ERR_IO, "%s: rename from %s failed: %s", to, from, msg);
    }
    return file_sync_dir_of(to);
}
