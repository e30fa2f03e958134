/* Whole-file reading for the text and array loaders (CSV, .npy), gzipped
 * or plain, through zlib as idx.c reads. */
#ifndef RW_DATA_READ_FILE_H
#define RW_DATA_READ_FILE_H

#include <stddef.h>

#include "rewire.h"

/* Reads the whole of `path` (gunzipped if it is gzip) into a malloc'ed
 * buffer *data of *len bytes, plus a NUL after them that *len does not
 * count. Errors name the path: RW_ERR_IO when it cannot be opened or read,
 * RW_ERR_FORMAT for corrupt gzip data, RW_ERR_NO_MEMORY. */
rw_status data_read_file(const char *path, char **data, size_t *len);

#endif
