/* IDX files, the MNIST-family format: a 4-byte magic (0, 0, type, ndim),
 * ndim big-endian 32-bit dimensions, then the data. Gzipped files are read
 * through data/gz_reader.h transparently (plain files read as they are). */
#ifndef RW_DATA_IDX_H
#define RW_DATA_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "rewire.h"

/* Reads an unsigned-byte IDX file of ndim 3 (images: count × rows × cols).
 * *pixels is malloc'ed, count*rows*cols bytes. Errors name the path and the
 * problem: missing file, wrong magic, wrong type or ndim, zero or
 * overflowing dimensions, truncated data, trailing bytes. */
rw_status idx_read_images(const char *path, uint8_t **pixels, int *count, int *rows,
                          int *cols);

/* Reads an unsigned-byte IDX file of ndim 1 (labels). */
rw_status idx_read_labels(const char *path, uint8_t **labels, int *count);

/* Resolves "fashion-mnist" (and "mnist") to the folder Debian's dataset
 * package installs; any other string is taken as a folder. Then finds the
 * images and labels file of a split, trying the name with ".gz" and without.
 * Writes the two paths (each up to `cap` bytes). */
rw_status idx_locate_split(const char *dir_or_name, int test_split, char *images_path,
                           char *labels_path, size_t cap);

#endif
