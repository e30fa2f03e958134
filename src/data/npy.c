/* .npy features and labels as a dataset. Features: '<f4', '<f8' or '|u1'
 * of shape (n, f), stored as floats as they are (u1 is not scaled to
 * [0, 1]); a Fortran-order array is read transposed, element (i, j) being
 * at j n + i. Labels: any integer dtype of shape (n,) or (n, 1), kept as
 * they are (each in [0, 255]), so classes = the largest + 1: a model's
 * class k is label k, as numpy's user wrote it. Elements are assembled
 * from little-endian bytes, so the host's byte order does not matter. */
#include "data/npy.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/read_file.h"

static uint64_t load_le(const uint8_t *p, int size)
{
    uint64_t v = 0;
    for (int b = size - 1; b >= 0; b--) v = v << 8 | p[b];
    return v;
}

/* Element k of a float or u1 array as a double. */
static double feature_at(const npy_array *a, size_t k)
{
    const uint8_t *p = a->data + k * (size_t)a->size;
    if (a->kind == 'u') return p[0];
    uint64_t bits = load_le(p, a->size);
    if (a->size == 4) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, 4);
        return f;
    }
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

/* Element k of an integer array as a label in [0, 255], or -1 with the
 * value written into text for a message. */
static int label_at(const npy_array *a, size_t k, char *text, size_t cap)
{
    uint64_t v = load_le(a->data + k * (size_t)a->size, a->size);
    int negative = a->kind == 'i' && (v >> (8 * a->size - 1)) & 1;
    if (!negative && v < RW_MAX_CLASSES) return (int)v;
    if (negative) {
        /* Sign-extend, then print the two's complement value. */
        if (a->size < 8) v |= ~(uint64_t)0 << (8 * a->size);
        snprintf(text, cap, "-%llu", (unsigned long long)(~v + 1));
    } else {
        snprintf(text, cap, "%llu", (unsigned long long)v);
    }
    return -1;
}

/* " (big-endian)" for a dtype refused for its byte order. */
static const char *byte_order(const npy_array *a)
{
    if (a->descr[0] == '>') return " (big-endian)";
    if (a->descr[0] == '=') return " (native byte order)";
    return "";
}

/* Features: dtype and shape (n, f), n and f in [1, INT_MAX]. */
static rw_status check_features(const char *name, const npy_array *a)
{
    char shape[128];
    npy_shape_string(a, shape, sizeof shape);
    if (!(a->kind == 'f' || (a->kind == 'u' && a->size == 1)))
        return rw_fail(RW_ERR_FORMAT,
                       "%s: header field 'descr': dtype '%s'%s is not supported for features "
                       "(expected '<f4', '<f8' or '|u1', little-endian)", name, a->descr, byte_order(a));
    if (a->ndim != 2)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: header field 'shape' %s has %d dimension%s, expected 2: (samples, features)",
                       name, shape, a->ndim, a->ndim == 1 ? "" : "s");
    if (a->shape[0] < 1 || a->shape[1] < 1)
        return rw_fail(RW_ERR_FORMAT, "%s: header field 'shape' %s: no %s", name, shape,
                       a->shape[0] < 1 ? "samples" : "features");
    if (a->shape[0] > INT_MAX || a->shape[1] > INT_MAX)
        return rw_fail(RW_ERR_FORMAT, "%s: header field 'shape' %s: more than %d %s", name, shape, INT_MAX,
                       a->shape[0] > INT_MAX ? "samples" : "features");
    return RW_OK;
}

/* Labels: an integer dtype, shape (n,) or (n, 1). */
static rw_status check_labels(const char *name, const npy_array *a)
{
    char shape[128];
    npy_shape_string(a, shape, sizeof shape);
    if (a->kind != 'i' && a->kind != 'u')
        return rw_fail(RW_ERR_FORMAT,
                       "%s: header field 'descr': dtype '%s'%s is not supported for labels "
                       "(expected an integer dtype: '|i1', '|u1', '<i2', '<u2', '<i4', '<u4', '<i8' or '<u8')",
                       name, a->descr, byte_order(a));
    if (!(a->ndim == 1 || (a->ndim == 2 && a->shape[1] == 1)))
        return rw_fail(RW_ERR_FORMAT, "%s: header field 'shape' %s: expected (samples,) or (samples, 1) for labels",
                       name, shape);
    return RW_OK;
}

rw_status npy_load_memory(const char *x_name, const uint8_t *x, size_t x_len, const char *y_name,
                          const uint8_t *y, size_t y_len, rw_dataset **out)
{
    *out = NULL;
    npy_array xa, ya;
    rw_status st = npy_parse(x_name, x, x_len, &xa);
    if (st == RW_OK) st = check_features(x_name, &xa);
    if (st == RW_OK) st = npy_parse(y_name, y, y_len, &ya);
    if (st == RW_OK) st = check_labels(y_name, &ya);
    if (st != RW_OK) return st;
    if (xa.shape[0] != ya.shape[0])
        return rw_fail(RW_ERR_FORMAT, "%s holds %lld samples but %s holds %lld labels", x_name,
                       (long long)xa.shape[0], y_name, (long long)ya.shape[0]);

    int n = (int)xa.shape[0], f = (int)xa.shape[1];
    int max_label = 0;
    char text[32];
    for (int i = 0; i < n; i++) {
        int v = label_at(&ya, (size_t)i, text, sizeof text);
        if (v < 0)
            return rw_fail(RW_ERR_FORMAT, "%s: label %s at index %d is outside [0, %d]", y_name, text, i,
                           RW_MAX_CLASSES - 1);
        if (v > max_label) max_label = v;
    }

    rw_dataset *d;
    st = dataset_alloc(n, f, max_label + 1, &d);
    if (st != RW_OK) return st;
    for (int i = 0; i < n; i++) d->y[i] = (uint8_t)label_at(&ya, (size_t)i, text, sizeof text);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < f; j++) {
            size_t k = xa.fortran ? (size_t)j * (size_t)n + (size_t)i : (size_t)i * (size_t)f + (size_t)j;
            double v = feature_at(&xa, k);
            float s = (float)v;
            if (!isfinite(s)) {
                rw_dataset_free(d);
                return rw_fail(RW_ERR_FORMAT, "%s: element [%d, %d] is %g, %s", x_name, i, j, v,
                               isfinite(v) ? "outside the float range" : "expected a finite feature");
            }
            d->x[(size_t)i * (size_t)f + (size_t)j] = s;
        }
    *out = d;
    return RW_OK;
}

rw_status rw_dataset_load_npy(const char *x_path, const char *y_path, rw_dataset **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_npy: out is NULL");
    *out = NULL;
    if (!x_path || !y_path) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_load_npy: a path is NULL");
    rw_clear_error();
    char *x = NULL, *y = NULL;
    size_t x_len, y_len;
    rw_status st = data_read_file(x_path, &x, &x_len);
    if (st == RW_OK) st = data_read_file(y_path, &y, &y_len);
    if (st == RW_OK)
        st = npy_load_memory(x_path, (const uint8_t *)x, x_len, y_path, (const uint8_t *)y, y_len, out);
    free(x);
    free(y);
    return st;
}
