/* Reading and writing safetensors files: an 8-byte little-endian header
 * length, a JSON header mapping tensor names to {dtype, shape, data_offsets}
 * plus an optional "__metadata__" object of string values, then the raw
 * little-endian tensor bytes. This module knows nothing about models: it
 * validates the container (lengths, offsets, dtypes, shapes) and leaves the
 * meaning of tensors to io/model_io.c. */
#ifndef RW_IO_SAFETENSORS_H
#define RW_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "rewire.h"

/* F16 (IEEE half), BF16 (bfloat16) and BOOL (one byte) come last so that the
 * older values keep their numbers. */
typedef enum {
    ST_F32 = 0, ST_I32, ST_I64, ST_U8, ST_I16, ST_U16, ST_F64, ST_F16, ST_BF16, ST_BOOL
} st_dtype;

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t count;      /* product of shape (1 for a scalar) */
    const void *data;   /* points into the file's data block; aligned as
                           the file allows, so copy with memcpy */
    size_t nbytes;
} st_tensor;

typedef struct {
    st_tensor *tensors; /* in file order (sorted by data offset) */
    int count;
    char **meta_keys;   /* "__metadata__" entries */
    char **meta_values;
    int meta_count;
    void *buffer;       /* owns the whole file */
} st_file;

/* Reads and validates a whole file. Rejects, with a message naming the path
 * and the tensor or field: a file shorter than 8 bytes, a header length
 * larger than the file or above 100 MB, a header that is not a JSON object,
 * unknown dtypes, shapes with negative dimensions or whose byte size
 * overflows, offsets that are not [begin, end] with end - begin equal to the
 * byte size, offsets outside the data block, overlapping tensors, bytes not
 * covered by any tensor, non-string metadata, duplicate names. On failure
 * *out is left empty (st_file_free on it is harmless). */
rw_status st_read(const char *path, st_file *out);
/* The same checks on `size` bytes in memory (copied); `name` stands for the
 * path in messages. Used by the fuzz harnesses. */
rw_status st_read_memory(const char *name, const void *bytes, size_t size, st_file *out);
/* Frees everything and zeroes *f; accepts NULL. */
void st_file_free(st_file *f);

/* NULL when the tensor or key is absent. */
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key);
const char *st_dtype_name(st_dtype dtype);
size_t st_dtype_size(st_dtype dtype);

/* 1 for the floating-point dtypes st_tensor_to_f32 reads: F32, F16, BF16. */
int st_dtype_is_float(st_dtype dtype);
/* Copies a tensor of one of those dtypes into out[0, count) as floats; F16
 * and BF16 widen exactly (subnormals, infinities and NaNs included).
 * Returns 0, or -1 (nothing written) for another dtype. */
int st_tensor_to_f32(const st_tensor *t, float *out);

/* A writer collects tensors (by pointer: the data must stay alive until
 * st_writer_write returns) and metadata strings (copied). */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void); /* NULL if out of memory */
/* RW_ERR_INVALID_ARGUMENT for a bad dtype/shape, a repeated or reserved
 * ("__metadata__") name, or a name that is not UTF-8. */
rw_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim,
                        const int64_t *shape, const void *data);
/* Sets a metadata entry (a repeated key replaces the value); UTF-8 only. */
rw_status st_writer_meta(st_writer *w, const char *key, const char *value);
/* Writes to PATH.tmp, fsyncs, renames over PATH and fsyncs the directory; on
 * any failure before the rename removes the temporary file and leaves PATH
 * untouched (only a failed directory fsync is reported after the rename).
 * Errors are RW_ERR_IO naming the path and the errno text. */
rw_status st_writer_write(const st_writer *w, const char *path);
void st_writer_free(st_writer *w);

#endif
