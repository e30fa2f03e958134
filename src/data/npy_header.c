/* The .npy header, parsed by hand: a Python dict literal with exactly the
 * keys 'descr' (a dtype string), 'fortran_order' (True or False) and
 * 'shape' (a tuple of integers), in any order, with either quote, any
 * spacing and trailing commas, as numpy's writers have produced it over
 * the years (Python 2's numpy wrote 3L for 3: the L is accepted). Nothing
 * else of Python is: a structured dtype (a list) or an escape in a string
 * is refused. Format: numpy.lib.format, "A Simple File Format for NumPy
 * Arrays" (NEP 1). */
#include "data/npy.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define NPY_MAGIC "\x93NUMPY"

typedef struct {
    const char *name;
    const char *p, *start, *end; /* the header text */
} hdr;

static int hdr_pos(const hdr *h) { return (int)(h->p - h->start); }

static void skip_ws(hdr *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')) h->p++;
}

/* What stands at h->p, quoted, for messages. */
static const char *near(const hdr *h, char *buf, size_t cap)
{
    if (h->p >= h->end) return "the end of the header";
    size_t n = 0;
    buf[n++] = '"';
    for (const char *q = h->p; q < h->end && n + 5 < cap && q < h->p + 12; q++)
        buf[n++] = (unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f ? '?' : *q;
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}

static rw_status expected(const hdr *h, const char *what)
{
    char buf[32];
    return rw_fail(RW_ERR_FORMAT, "%s: header: expected %s at byte %d, found %s", h->name, what,
                   hdr_pos(h), near(h, buf, sizeof buf));
}

/* A quoted string (' or ") into out[0..cap). */
static rw_status parse_string(hdr *h, char *out, size_t cap, const char *what)
{
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return expected(h, what);
    char quote = *h->p++;
    size_t n = 0;
    for (; h->p < h->end && *h->p != quote; h->p++) {
        if (*h->p == '\\')
            return rw_fail(RW_ERR_FORMAT, "%s: header: escape sequence in a string at byte %d (not supported)",
                           h->name, hdr_pos(h));
        if (*h->p == '\n') break;
        if (n + 1 >= cap)
            return rw_fail(RW_ERR_FORMAT, "%s: header: string at byte %d is longer than %zu bytes (expected %s)",
                           h->name, hdr_pos(h), cap - 1, what);
        out[n++] = *h->p;
    }
    if (h->p >= h->end || *h->p != quote)
        return rw_fail(RW_ERR_FORMAT, "%s: header: string not closed before byte %d", h->name, hdr_pos(h));
    h->p++;
    out[n] = '\0';
    return RW_OK;
}

static int take_word(hdr *h, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n) != 0) return 0;
    h->p += n;
    return 1;
}

/* (d0, d1, ...) with d >= 0, possibly (), (d,) and a trailing comma. */
static rw_status parse_shape(hdr *h, npy_array *a)
{
    if (h->p >= h->end || *h->p != '(') {
        if (h->p < h->end && *h->p == '[') return expected(h, "a tuple '(...)' for 'shape' (not a list)");
        return expected(h, "a tuple '(...)' for 'shape'");
    }
    h->p++;
    a->ndim = 0;
    for (;;) {
        skip_ws(h);
        if (h->p < h->end && *h->p == ')') break;
        if (h->p >= h->end || *h->p < '0' || *h->p > '9')
            return expected(h, "a dimension (a non-negative integer) in 'shape'");
        if (a->ndim == NPY_MAX_DIMS)
            return rw_fail(RW_ERR_FORMAT, "%s: header field 'shape' has more than %d dimensions", h->name,
                           NPY_MAX_DIMS);
        int64_t v = 0;
        for (; h->p < h->end && *h->p >= '0' && *h->p <= '9'; h->p++) {
            if (v > (INT64_MAX - 9) / 10)
                return rw_fail(RW_ERR_FORMAT, "%s: header field 'shape': dimension %d is too large",
                               h->name, a->ndim);
            v = 10 * v + (*h->p - '0');
        }
        if (h->p < h->end && *h->p == 'L') h->p++;
        a->shape[a->ndim++] = v;
        skip_ws(h);
        if (h->p < h->end && *h->p == ',') {
            h->p++;
            continue;
        }
        if (h->p < h->end && *h->p == ')') break;
        return expected(h, "',' or ')' in 'shape'");
    }
    h->p++;
    return RW_OK;
}

/* Kind and size from a dtype string such as '<f4' or '|u1': byte order
 * '<' (or for one byte, any of '|', '<', '>', '='), kind f/i/u, size
 * 1/2/4/8. Anything else leaves kind 0 for the loader to refuse by name;
 * a big-endian or native-order multi-byte dtype too. */
static void parse_descr(npy_array *a)
{
    const char *d = a->descr;
    a->kind = 0;
    a->size = 0;
    if (strlen(d) != 3 || !strchr("<>|=", d[0]) || !strchr("fiu", d[1]) || !strchr("1248", d[2]))
        return;
    int size = d[2] - '0';
    if (size > 1 && d[0] != '<') return;
    if (d[1] == 'f' && size < 4) return; /* half floats */
    a->kind = d[1];
    a->size = size;
}

void npy_shape_string(const npy_array *a, char *out, size_t cap)
{
    size_t n = 0;
    int w = snprintf(out, cap, "(");
    for (int d = 0; d < a->ndim && w >= 0 && (size_t)w < cap - n; d++) {
        n += (size_t)w;
        w = snprintf(out + n, cap - n, "%s%lld", d ? ", " : "", (long long)a->shape[d]);
    }
    if (w >= 0 && (size_t)w < cap - n) n += (size_t)w;
    snprintf(out + n, cap - n, a->ndim == 1 ? ",)" : ")");
}

/* The dict: each of the three keys exactly once. */
static rw_status parse_dict(hdr *h, npy_array *a)
{
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
    skip_ws(h);
    if (h->p >= h->end || *h->p != '{') return expected(h, "'{' (the header is a Python dict)");
    h->p++;
    for (;;) {
        skip_ws(h);
        if (h->p < h->end && *h->p == '}') break;
        char key[32];
        rw_status st = parse_string(h, key, sizeof key, "a key ('descr', 'fortran_order' or 'shape')");
        if (st != RW_OK) return st;
        skip_ws(h);
        if (h->p >= h->end || *h->p != ':') return expected(h, "':' after a key");
        h->p++;
        skip_ws(h);
        int *seen;
        if (strcmp(key, "descr") == 0) {
            seen = &seen_descr;
            if (h->p < h->end && *h->p == '[')
                return rw_fail(RW_ERR_FORMAT,
                               "%s: header field 'descr' is a structured dtype (a list of fields), "
                               "expected a plain dtype such as '<f4'", h->name);
            st = parse_string(h, a->descr, sizeof a->descr, "a dtype string for 'descr'");
        } else if (strcmp(key, "fortran_order") == 0) {
            seen = &seen_fortran;
            if (take_word(h, "True")) a->fortran = 1;
            else if (take_word(h, "False")) a->fortran = 0;
            else st = expected(h, "True or False for 'fortran_order'");
        } else if (strcmp(key, "shape") == 0) {
            seen = &seen_shape;
            st = parse_shape(h, a);
        } else {
            char q[48];
            snprintf(q, sizeof q, "%s", key);
            for (char *c = q; *c; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '?';
            return rw_fail(RW_ERR_FORMAT,
                           "%s: header: unexpected key '%s' (expected 'descr', 'fortran_order' and 'shape')",
                           h->name, q);
        }
        if (st != RW_OK) return st;
        if (*seen)
            return rw_fail(RW_ERR_FORMAT, "%s: header: key '%s' appears twice", h->name, key);
        *seen = 1;
        skip_ws(h);
        if (h->p < h->end && *h->p == ',') {
            h->p++;
            continue;
        }
        if (h->p < h->end && *h->p == '}') break;
        return expected(h, "',' or '}' after a value");
    }
    h->p++;
    skip_ws(h);
    if (h->p < h->end) {
        char buf[32];
        return rw_fail(RW_ERR_FORMAT, "%s: header: %s after the closing '}' at byte %d", h->name,
                       near(h, buf, sizeof buf), hdr_pos(h));
    }
    const char *missing = !seen_descr ? "descr" : !seen_fortran ? "fortran_order" : !seen_shape ? "shape" : NULL;
    if (missing) return rw_fail(RW_ERR_FORMAT, "%s: header has no '%s'", h->name, missing);
    return RW_OK;
}

rw_status npy_parse(const char *name, const uint8_t *buf, size_t len, npy_array *a)
{
    memset(a, 0, sizeof *a);
    if (len < 10)
        return rw_fail(RW_ERR_FORMAT, "%s: file is %zu bytes, shorter than the 10-byte .npy preamble", name, len);
    if (memcmp(buf, NPY_MAGIC, 6) != 0)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: not a .npy file (magic %02x %02x %02x %02x %02x %02x, expected 93 4e 55 4d 50 59: \"\\x93NUMPY\")",
                       name, buf[0], buf[1], buf[2], buf[3], buf[4], buf[5]);
    if ((buf[6] != 1 && buf[6] != 2 && buf[6] != 3) || buf[7] != 0)
        return rw_fail(RW_ERR_FORMAT, "%s: .npy format version %d.%d is not supported (expected 1.0, 2.0 or 3.0)",
                       name, buf[6], buf[7]);
    a->major = buf[6];
    size_t pre = a->major == 1 ? 10 : 12;
    if (len < pre)
        return rw_fail(RW_ERR_FORMAT, "%s: file is %zu bytes, shorter than the %zu-byte preamble of version %d.0",
                       name, len, pre, a->major);
    size_t hlen = a->major == 1 ? (size_t)buf[8] | (size_t)buf[9] << 8
                                : (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    if (hlen > len - pre)
        return rw_fail(RW_ERR_FORMAT, "%s: header length %zu exceeds the %zu bytes after the preamble", name,
                       hlen, len - pre);
    hdr h = {name, (const char *)buf + pre, (const char *)buf + pre, (const char *)buf + pre + hlen};
    rw_status st = parse_dict(&h, a);
    if (st != RW_OK) return st;
    parse_descr(a);

    /* The data must be exactly the shape's elements. */
    char shape[128];
    npy_shape_string(a, shape, sizeof shape);
    uint64_t bytes = a->size > 0 ? (uint64_t)a->size : 1;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] > 0 && bytes > UINT64_MAX / (uint64_t)a->shape[d])
            return rw_fail(RW_ERR_FORMAT, "%s: header field 'shape' %s of '%s' overflows the byte count",
                           name, shape, a->descr);
        else
            bytes *= (uint64_t)a->shape[d];
    a->data = buf + pre + hlen;
    a->data_len = len - pre - hlen;
    if (a->kind && bytes != a->data_len)
        return rw_fail(RW_ERR_FORMAT, "%s: header field 'shape' %s of '%s' needs %llu data bytes, the file has %zu (%s)",
                       name, shape, a->descr, (unsigned long long)bytes, a->data_len,
                       a->data_len < bytes ? "truncated" : "trailing bytes");
    return RW_OK;
}
