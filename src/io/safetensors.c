/* Reading safetensors files (https://huggingface.co/docs/safetensors): the
 * whole file is read into one buffer, the JSON header is parsed by jansson
 * and every length, offset and shape is checked before a tensor is handed
 * out. The writer lives in safetensors_write.c. */
#include "io/safetensors.h"
#include "io/safetensors_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

/* Tensor bytes are handed out as they lie in the file (little-endian). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "rewire's safetensors code assumes a little-endian host");

static const char *const dtype_names[] = {"F32", "I32", "I64", "U8",  "I16",
                                         "U16", "F64", "F16", "BF16", "BOOL"};
static const size_t dtype_sizes[] = {4, 4, 8, 1, 2, 2, 8, 2, 2, 1};
#define ST_DTYPE_COUNT ((int)(sizeof dtype_sizes / sizeof dtype_sizes[0]))

const char *st_dtype_name(st_dtype dtype)
{
    return (int)dtype >= 0 && (int)dtype < ST_DTYPE_COUNT ? dtype_names[dtype] : "?";
}

size_t st_dtype_size(st_dtype dtype)
{
    return (int)dtype >= 0 && (int)dtype < ST_DTYPE_COUNT ? dtype_sizes[dtype] : 0;
}

/* Returns 0 and sets *out for a known dtype name, -1 otherwise. */
static int dtype_parse(const char *name, st_dtype *out)
{
    for (int d = 0; d < ST_DTYPE_COUNT; d++)
        if (strcmp(name, dtype_names[d]) == 0) {
            *out = (st_dtype)d;
            return 0;
        }
    return -1;
}

int st_shape_bytes(st_dtype dtype, int ndim, const int64_t *shape, int64_t *count,
                   int64_t *nbytes)
{
    int64_t c = 1, b;
    for (int k = 0; k < ndim; k++)
        if (__builtin_mul_overflow(c, shape[k], &c)) return -1;
    if (__builtin_mul_overflow(c, (int64_t)st_dtype_size(dtype), &b)) return -1;
    if ((uint64_t)b > SIZE_MAX) return -1;
    *count = c;
    *nbytes = b;
    return 0;
}

void st_format_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int k = 0; k < ndim && used < size; k++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", k ? ", " : "",
                                 (long long)shape[k]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

void st_strerror(int err, char *buf, size_t size)
{
    if (strerror_r(err, buf, size) != 0) snprintf(buf, size, "error %d", err);
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown JSON value";
}

/* ---- Reading the bytes -------------------------------------------------- */

/* Reads exactly `len` bytes at `offset`; a short count means the file shrank
 * while we read it. */
static rw_status read_exact(int fd, const char *path, void *buf, size_t len, off_t offset)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            char msg[128];
            st_strerror(errno, msg, sizeof msg);
            return rw_fail(RW_ERR_IO, "%s: read failed: %s", path, msg);
        }
        if (n == 0) return rw_fail(RW_ERR_IO, "%s: file shrank while being read", path);
        p += n;
        len -= (size_t)n;
        offset += n;
    }
    return RW_OK;
}

/* Checks the 8-byte header length against the limit and the size. */
static rw_status check_header_len(const char *path, const unsigned char *buf, size_t size,
                                  uint64_t *header_len)
{
    if (size < 8)
        return rw_fail(RW_ERR_FORMAT, "%s: file is %zu bytes, shorter than the 8-byte header length",
                       path, size);
    uint64_t n;
    memcpy(&n, buf, 8); /* little-endian host, see the assert above */
    uint64_t rest = (uint64_t)size - 8;
    if (n > ST_MAX_HEADER_BYTES)
        return rw_fail(RW_ERR_FORMAT, "%s: header length %llu is above the limit of %d bytes",
                       path, (unsigned long long)n, ST_MAX_HEADER_BYTES);
    if (n > rest)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: header length %llu exceeds the %llu bytes after the length field",
                       path, (unsigned long long)n, (unsigned long long)rest);
    *header_len = n;
    return RW_OK;
}

/* Opens the file and reads all of it into *buffer. */
static rw_status read_file(const char *path, unsigned char **buffer, size_t *file_size)
{
    char msg[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st_strerror(errno, msg, sizeof msg);
        return rw_fail(RW_ERR_IO, "%s: cannot open: %s", path, msg);
    }
    rw_status st = RW_OK;
    struct stat sb;
    unsigned char len_bytes[8];
    if (fstat(fd, &sb) != 0) {
        st_strerror(errno, msg, sizeof msg);
        st = rw_fail(RW_ERR_IO, "%s: cannot stat: %s", path, msg);
    } else if (!S_ISREG(sb.st_mode)) {
        st = rw_fail(RW_ERR_IO, "%s: not a regular file", path);
    } else if (sb.st_size < 8) {
        st = rw_fail(RW_ERR_FORMAT, "%s: file is %lld bytes, shorter than the 8-byte header length",
                     path, (long long)sb.st_size);
    } else if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = rw_fail(RW_ERR_NO_MEMORY, "%s: file of %lld bytes does not fit in memory", path,
                     (long long)sb.st_size);
    } else if ((st = read_exact(fd, path, len_bytes, 8, 0)) == RW_OK) {
        /* A hostile header length is refused before the file is read. */
        uint64_t n;
        if ((st = check_header_len(path, len_bytes, (size_t)sb.st_size, &n)) != RW_OK) {
            /* reported */
        } else if (!(*buffer = malloc((size_t)sb.st_size))) {
            st = rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate %lld bytes for the file", path,
                         (long long)sb.st_size);
        } else if ((st = read_exact(fd, path, *buffer, (size_t)sb.st_size, 0)) != RW_OK) {
            free(*buffer);
            *buffer = NULL;
        } else {
            *file_size = (size_t)sb.st_size;
        }
    }
    close(fd);
    return st;
}

/* ---- Validating the header ---------------------------------------------- */

/* Reads a JSON integer >= 0 into *out; -1 if v is anything else. */
static int get_nonneg(const json_t *v, int64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Fills t (dtype, shape, count, nbytes, data) from one header entry and
 * records its offsets in *begin, *end. */
static rw_status parse_tensor(const char *path, const char *name, const json_t *entry,
                              const unsigned char *data, uint64_t data_len, st_tensor *t,
                              uint64_t *begin, uint64_t *end)
{
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    if (!json_is_object(entry))
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s: expected an object, got %s", path, name,
                       json_type_name(entry));
    for (int k = 0; k < 3; k++)
        if (!json_object_get(entry, fields[k]))
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s: missing field \"%s\"", path, name,
                           fields[k]);
    if (json_object_size(entry) != 3) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)entry, key, v)
            if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
                return rw_fail(RW_ERR_FORMAT,
                               "%s: tensor %s: unexpected field \"%s\" (expected only dtype, "
                               "shape, data_offsets)", path, name, key);
    }

    const json_t *dtype = json_object_get(entry, "dtype");
    if (!json_is_string(dtype))
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s: dtype should be a string, got %s", path,
                       name, json_type_name(dtype));
    if (dtype_parse(json_string_value(dtype), &t->dtype) != 0)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: tensor %s: unknown dtype \"%s\" (expected F32, F16, BF16, F64, I32, "
                       "I64, I16, U16, U8 or BOOL)", path, name, json_string_value(dtype));

    const json_t *shape = json_object_get(entry, "shape");
    if (!json_is_array(shape))
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s: shape should be an array, got %s", path,
                       name, json_type_name(shape));
    if (json_array_size(shape) > ST_MAX_DIMS)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s: shape has %zu dimensions, at most %d allowed",
                       path, name, json_array_size(shape), ST_MAX_DIMS);
    t->ndim = (int)json_array_size(shape);
    for (int k = 0; k < t->ndim; k++) {
        const json_t *dim = json_array_get(shape, (size_t)k);
        if (json_is_integer(dim) && json_integer_value(dim) < 0)
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s: shape dimension %d is negative (%lld)",
                           path, name, k, (long long)json_integer_value(dim));
        if (get_nonneg(dim, &t->shape[k]) != 0)
            return rw_fail(RW_ERR_FORMAT,
                           "%s: tensor %s: shape dimension %d should be a non-negative integer, "
                           "got %s", path, name, k, json_type_name(dim));
    }
    char shape_str[256];
    st_format_shape(shape_str, sizeof shape_str, t->ndim, t->shape);
    int64_t nbytes;
    if (st_shape_bytes(t->dtype, t->ndim, t->shape, &t->count, &nbytes) != 0)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s: shape %s of %s overflows the byte count",
                       path, name, shape_str, st_dtype_name(t->dtype));
    t->nbytes = (size_t)nbytes;

    const json_t *offsets = json_object_get(entry, "data_offsets");
    int64_t b, e;
    if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
        get_nonneg(json_array_get(offsets, 0), &b) != 0 ||
        get_nonneg(json_array_get(offsets, 1), &e) != 0)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: tensor %s: data_offsets should be [begin, end] of two non-negative "
                       "integers", path, name);
    if (b > e)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s: data_offsets [%lld, %lld] end before they begin",
                       path, name, (long long)b, (long long)e);
    if (e - b != nbytes)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: tensor %s: data_offsets [%lld, %lld] span %lld bytes, but shape %s of "
                       "%s needs %lld", path, name, (long long)b, (long long)e,
                       (long long)(e - b), shape_str, st_dtype_name(t->dtype), (long long)nbytes);
    if ((uint64_t)e > data_len)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: tensor %s: data_offsets [%lld, %lld] reach beyond the %llu-byte data "
                       "block", path, name, (long long)b, (long long)e,
                       (unsigned long long)data_len);
    t->data = data + b;
    *begin = (uint64_t)b;
    *end = (uint64_t)e;
    return RW_OK;
}

/* Copies the "__metadata__" object's string values into f. */
static rw_status parse_metadata(const char *path, const json_t *meta, st_file *f)
{
    if (!json_is_object(meta))
        return rw_fail(RW_ERR_FORMAT, "%s: \"__metadata__\" should be an object of strings, got %s",
                       path, json_type_name(meta));
    size_t n = json_object_size(meta);
    f->meta_keys = calloc(n ? n : 1, sizeof *f->meta_keys);
    f->meta_values = calloc(n ? n : 1, sizeof *f->meta_values);
    if (!f->meta_keys || !f->meta_values)
        return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate %zu metadata entries", path, n);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)meta, key, v) {
        if (!json_is_string(v))
            return rw_fail(RW_ERR_FORMAT, "%s: metadata \"%s\" should be a string, got %s", path,
                           key, json_type_name(v));
        int i = f->meta_count;
        f->meta_keys[i] = strdup(key);
        f->meta_values[i] = strdup(json_string_value(v));
        if (f->meta_keys[i] || f->meta_values[i]) f->meta_count++; /* so both get freed */
        if (!f->meta_keys[i] || !f->meta_values[i])
            return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot copy metadata \"%s\"", path, key);
    }
    return RW_OK;
}

typedef struct {
    uint64_t begin, end;
    int index; /* into st_file.tensors */
} extent;

static int extent_cmp(const void *a, const void *b)
{
    const extent *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Tensors must tile the data block: sorted by offset, each begins where the
 * previous one ended and the last ends at the end of the block. Reorders
 * f->tensors into file order. */
static rw_status check_coverage(const char *path, st_file *f, extent *ext, uint64_t data_len)
{
    qsort(ext, (size_t)f->count, sizeof *ext, extent_cmp);
    uint64_t cursor = 0;
    for (int k = 0; k < f->count; k++) {
        const st_tensor *t = &f->tensors[ext[k].index];
        if (ext[k].begin < cursor)
            return rw_fail(RW_ERR_FORMAT,
                           "%s: tensor %s: data_offsets [%llu, %llu] overlap tensor %s, which "
                           "ends at %llu", path, t->name, (unsigned long long)ext[k].begin,
                           (unsigned long long)ext[k].end, f->tensors[ext[k - 1].index].name,
                           (unsigned long long)cursor);
        if (ext[k].begin > cursor)
            return rw_fail(RW_ERR_FORMAT,
                           "%s: data bytes [%llu, %llu) are not covered by any tensor (next is "
                           "tensor %s)", path, (unsigned long long)cursor,
                           (unsigned long long)ext[k].begin, t->name);
        cursor = ext[k].end;
    }
    if (cursor != data_len)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: data bytes [%llu, %llu) are not covered by any tensor", path,
                       (unsigned long long)cursor, (unsigned long long)data_len);

    st_tensor *sorted = malloc(sizeof *sorted * (f->count > 0 ? (size_t)f->count : 1));
    if (!sorted) return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate the tensor list", path);
    for (int k = 0; k < f->count; k++) sorted[k] = f->tensors[ext[k].index];
    free(f->tensors);
    f->tensors = sorted;
    return RW_OK;
}

static rw_status parse_header(const char *path, const json_t *root, const unsigned char *data,
                              uint64_t data_len, st_file *f)
{
    if (!json_is_object(root))
        return rw_fail(RW_ERR_FORMAT, "%s: header is not a JSON object but %s", path,
                       json_type_name(root));
    const json_t *meta = json_object_get(root, "__metadata__");
    if (meta) {
        rw_status st = parse_metadata(path, meta, f);
        if (st != RW_OK) return st;
    }
    size_t n = json_object_size(root) - (meta != NULL);
    if (n > INT32_MAX) return rw_fail(RW_ERR_FORMAT, "%s: too many tensors (%zu)", path, n);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    extent *ext = malloc(sizeof *ext * (n ? n : 1));
    if (!f->tensors || !ext) {
        free(ext);
        return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate %zu tensors", path, n);
    }
    rw_status st = RW_OK;
    const char *name;
    const json_t *entry;
    json_object_foreach((json_t *)root, name, entry) {
        if (entry == meta) continue;
        st_tensor *t = &f->tensors[f->count];
        if (!(t->name = strdup(name))) {
            st = rw_fail(RW_ERR_NO_MEMORY, "%s: cannot copy tensor name %s", path, name);
            break;
        }
        ext[f->count].index = f->count;
        f->count++;
        st = parse_tensor(path, name, entry, data, data_len, t, &ext[f->count - 1].begin,
                          &ext[f->count - 1].end);
        if (st != RW_OK) break;
    }
    if (st == RW_OK) st = check_coverage(path, f, ext, data_len);
    free(ext);
    return st;
}

/* Counts '{', '[' and ',' outside strings: an upper bound on the values
 * jansson would build, known before it builds any. */
static size_t count_json_values(const unsigned char *p, size_t n)
{
    size_t count = 0;
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[' || c == ',') {
            count++;
        }
    }
    return count;
}

/* Parses and validates buf (size bytes, malloc'ed), which *out takes over
 * on success; on failure buf is freed and *out left empty. */
static rw_status st_parse(const char *path, unsigned char *buf, size_t size, st_file *out)
{
    out->buffer = buf;
    uint64_t header_len = 0;
    rw_status st = check_header_len(path, buf, size, &header_len);
    size_t values = st == RW_OK ? count_json_values(buf + 8, (size_t)header_len) : 0;
    if (values > ST_MAX_HEADER_VALUES)
        st = rw_fail(RW_ERR_FORMAT,
                     "%s: header holds %zu JSON containers and list items, more than the limit "
                     "of %d", path, values, ST_MAX_HEADER_VALUES);
    if (st == RW_OK) {
        /* Reject duplicate keys; trailing spaces (the writers' padding) are
         * whitespace to jansson. Nesting is bounded by JSON_PARSER_MAX_DEPTH. */
        json_error_t err;
        json_t *root = json_loadb((const char *)buf + 8, (size_t)header_len,
                                  JSON_REJECT_DUPLICATES, &err);
        if (!root) {
            st = json_error_code(&err) == json_error_out_of_memory
                     ? rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory parsing the header", path)
                     : rw_fail(RW_ERR_FORMAT,
                               "%s: header is not valid JSON (line %d, column %d): %s", path,
                               err.line, err.column, err.text);
        } else {
            st = parse_header(path, root, buf + 8 + header_len, size - 8 - header_len, out);
            json_decref(root);
        }
    }
    if (st != RW_OK) {
        st_file_free(out);
        return st;
    }
    rw_clear_error();
    return RW_OK;
}

rw_status st_read(const char *path, st_file *out)
{
    if (!path || !out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "st_read: NULL path or output");
    memset(out, 0, sizeof *out);
    unsigned char *buf = NULL;
    size_t size = 0;
    rw_status st = read_file(path, &buf, &size);
    if (st != RW_OK) return st;
    return st_parse(path, buf, size, out);
}

rw_status st_read_memory(const char *name, const void *bytes, size_t size, st_file *out)
{
    if (!name || !out || (!bytes && size))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "st_read_memory: NULL name, bytes or output");
    memset(out, 0, sizeof *out);
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes", name, size);
    if (size) memcpy(buf, bytes, size);
    return st_parse(name, buf, size, out);
}

void st_file_free(st_file *f)
{
    if (!f) return;
    for (int k = 0; k < f->count; k++) free(f->tensors[k].name);
    free(f->tensors);
    for (int k = 0; k < f->meta_count; k++) {
        free(f->meta_keys[k]);
        free(f->meta_values[k]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->buffer);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (int k = 0; k < f->count; k++)
        if (strcmp(f->tensors[k].name, name) == 0) return &f->tensors[k];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key)
{
    for (int k = 0; k < f->meta_count; k++)
        if (strcmp(f->meta_keys[k], key) == 0) return f->meta_values[k];
    return NULL;
}
