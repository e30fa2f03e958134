/* Writing a file so that a crash never leaves half of it: the bytes go to
 * PATH.tmp, are fsynced, and the temporary file is renamed over PATH; the
 * rename is made durable by fsyncing the directory. The safetensors writer
 * (safetensors_write.c) and the GPT-2 export share these. */
#ifndef RW_IO_FILE_ATOMIC_H
#define RW_IO_FILE_ATOMIC_H

#include <stddef.h>

#include "rewire.h"

/* write() until all len bytes are out (a short count is not an error).
 * 0, or -1 with errno set. */
int file_write_all(int fd, const void *data, size_t len);

/* fsyncs the directory that holds path (a file system that cannot sync a
 * directory is not an error). RW_ERR_IO naming path and the errno text. */
rw_status file_sync_dir_of(const char *path);

/* Writes data[0, len) to PATH.tmp, fsyncs it, renames it over PATH and
 * syncs the directory. On a failure before the rename the temporary file
 * is removed and PATH left untouched. RW_ERR_IO naming the path. */
rw_status file_write_atomic(const char *path, const void *data, size_t len);

/* rename(from, to), then the directory sync. RW_ERR_IO naming both. */
rw_status file_rename_durable(const char *from, const char *to);

#endif
