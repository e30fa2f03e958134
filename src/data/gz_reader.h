/* Reads a file that may be gzipped, as one stream of its (decompressed)
 * bytes. With Intel's ISA-L (libisal, found at build time) gzip is
 * decompressed by its inflate, about 2.7x faster than zlib's on
 * Fashion-MNIST's images on this project's machines; without it, and for
 * files that are not gzip, through zlib's gz* functions, which read both. */
#ifndef RW_DATA_GZ_READER_H
#define RW_DATA_GZ_READER_H

#include <stdint.h>

#include "rewire.h"

typedef struct gz_reader gz_reader;

/* Opens path; RW_ERR_IO naming it when it cannot be opened or read. */
rw_status gz_reader_open(const char *path, gz_reader **out);

/* Up to len bytes into buf; *got is how many arrived before the end of the
 * data. A truncated gzip stream counts as an early end, not an error, so
 * that the caller can say how much was there; corrupt data is
 * RW_ERR_FORMAT "PATH: corrupt gzip data: ...". */
rw_status gz_reader_read(gz_reader *r, uint8_t *buf, int64_t len, int64_t *got);

void gz_reader_close(gz_reader *r);

#endif
