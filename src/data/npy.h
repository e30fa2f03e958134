/* NumPy .npy arrays: the header parser (npy_header.c) and the dataset
 * loader over it (npy.c). Format: "\x93NUMPY", major and minor version,
 * a little-endian header length (2 bytes in version 1.0, 4 in 2.0 and
 * 3.0), the header (a Python dict literal: 'descr', 'fortran_order',
 * 'shape'), then the data. */
#ifndef RW_DATA_NPY_H
#define RW_DATA_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "rewire.h"

#define NPY_MAX_DIMS 8

typedef struct {
    int major;                  /* format version: 1, 2 or 3 (minor is 0) */
    char descr[24];             /* the dtype as written, e.g. "<f4" */
    char kind;                  /* 'f', 'i', 'u'; 0 for any other dtype */
    int size;                   /* bytes per element */
    int fortran;                /* fortran_order */
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    const uint8_t *data;        /* the data, inside the parsed buffer */
    size_t data_len;            /* exactly the elements' bytes */
} npy_array;

/* Parses buf[0..len) as a .npy file: the preamble, the header and the data
 * size, which must be exactly that of the shape and dtype. Errors
 * (RW_ERR_FORMAT) start with `name` and name the field. Does not judge
 * the dtype beyond parsing it: kind 0 is a dtype the loader refuses. */
rw_status npy_parse(const char *name, const uint8_t *buf, size_t len, npy_array *a);

/* rw_dataset_load_npy over two buffers; the names stand for the files. */
rw_status npy_load_memory(const char *x_name, const uint8_t *x, size_t x_len, const char *y_name,
                          const uint8_t *y, size_t y_len, rw_dataset **out);

/* "(150, 4)" for messages. */
void npy_shape_string(const npy_array *a, char *out, size_t cap);

#endif
