/* Helpers shared by the safetensors reader (safetensors.c) and writer
 * (safetensors_write.c); not for other modules. */
#ifndef RW_IO_SAFETENSORS_INTERNAL_H
#define RW_IO_SAFETENSORS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

/* Headers above this are rejected before anything of their size is
 * allocated (the limit of the reference Rust implementation). */
#define ST_MAX_HEADER_BYTES 100000000
/* A header is parsed only if it holds at most this many JSON containers and
 * list items: jansson spends about 130 bytes and a microsecond on each, so
 * 100 MB of "[]," would take 4 GB and half a minute. A rewire header needs
 * about a dozen per tensor. */
#define ST_MAX_HEADER_VALUES (1 << 20)

/* Element count and byte size of a shape whose dims are >= 0; returns -1 if
 * either overflows int64_t or size_t. */
int st_shape_bytes(st_dtype dtype, int ndim, const int64_t *shape, int64_t *count,
                   int64_t *nbytes);

/* Writes "[d0, d1, ...]" into buf (truncated to size). */
void st_format_shape(char *buf, size_t size, int ndim, const int64_t *shape);

/* Thread-safe strerror into buf. */
void st_strerror(int err, char *buf, size_t size);

#endif
