#include "data/gz_reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"

#ifdef REWIRE_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

struct gz_reader {
    const char *path;
    gzFile gz; /* zlib's reader, or NULL when ISA-L inflates */
#ifdef REWIRE_HAVE_ISAL
    uint8_t *in;  /* the whole compressed file */
    size_t in_len;
    int ended;    /* the last member is done, or the input ran out */
    struct inflate_state inflate;
#endif
};

/* zlib: up to len bytes, looping because gzread takes an unsigned count. */
static rw_status zlib_read(gz_reader *r, uint8_t *buf, int64_t len, int64_t *got)
{
    while (*got < len) {
        int64_t left = len - *got;
        unsigned chunk = left > (1 << 30) ? (1u << 30) : (unsigned)left;
        int n = gzread(r->gz, buf + *got, chunk);
        if (n < 0) {
            int err;
            const char *msg = gzerror(r->gz, &err);
            if (err == Z_ERRNO)
                return rw_fail(RW_ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
            /* zlib prefixes its message with the path; drop the repeat. */
            size_t plen = strlen(r->path);
            if (strncmp(msg, r->path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
                msg += plen + 2;
            return rw_fail(RW_ERR_FORMAT, "%s: corrupt gzip data: %s", r->path, msg);
        }
        if (n == 0) break;
        *got += n;
    }
    return RW_OK;
}

#ifdef REWIRE_HAVE_ISAL
/* The whole file into r->in; 1 if it starts as gzip does. */
static rw_status slurp(gz_reader *r, FILE *f, int *is_gzip)
{
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        uint8_t *grown = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
        if (!grown) {
            free(buf);
            buf = NULL;
        }
        buf = grown;
        cap *= 2;
    }
    if (!buf) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory reading the file", r->path);
    if (ferror(f)) {
        free(buf);
        return rw_fail(RW_ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
    }
    r->in = buf;
    r->in_len = len;
    *is_gzip = len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
    return RW_OK;
}

static const char *isal_message(int code)
{
    switch (code) {
    case ISAL_INVALID_BLOCK: return "invalid deflate block";
    case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK: return "invalid distance too far back";
    case ISAL_INVALID_WRAPPER: return "invalid gzip header";
    case ISAL_UNSUPPORTED_METHOD: return "unknown compression method";
    case ISAL_INCORRECT_CHECKSUM: return "incorrect data check";
    default: return "inflate failed";
    }
}

/* ISA-L: inflates straight into the caller's buffer. Members written one
 * after another (as `cat a.gz b.gz` makes) are one stream, as for zlib;
 * what follows the last member unless it is another gzip member ends the
 * data, as zlib's gzread ends it. */
static rw_status isal_read(gz_reader *r, uint8_t *buf, int64_t len, int64_t *got)
{
    struct inflate_state *s = &r->inflate;
    while (*got < len && !r->ended) {
        int64_t left = len - *got;
        s->next_out = buf + *got;
        s->avail_out = left > (1 << 30) ? (1u << 30) : (uint32_t)left;
        uint32_t before = s->avail_out;
        int ret = isal_inflate(s);
        *got += before - s->avail_out;
        if (ret < 0) return rw_fail(RW_ERR_FORMAT, "%s: corrupt gzip data: %s", r->path, isal_message(ret));
        if (s->block_state == ISAL_BLOCK_FINISH) {
            if (s->avail_in >= 2 && s->next_in[0] == 0x1f && s->next_in[1] == 0x8b) {
                uint8_t *next = s->next_in;
                uint32_t avail = s->avail_in;
                isal_inflate_reset(s);
                s->crc_flag = ISAL_GZIP;
                s->next_in = next;
                s->avail_in = avail;
            } else {
                r->ended = 1;
            }
        } else if (s->avail_in == 0 && s->avail_out > 0) {
            r->ended = 1; /* truncated: the caller says how much came */
        }
    }
    return RW_OK;
}
#endif

rw_status gz_reader_open(const char *path, gz_reader **out)
{
    *out = NULL;
    gz_reader *r = calloc(1, sizeof *r);
    if (!r) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    r->path = path;
#ifdef REWIRE_HAVE_ISAL
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        free(r);
        return rw_fail(RW_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    }
    int is_gzip = 0;
    rw_status st = slurp(r, f, &is_gzip);
    fclose(f);
    if (st != RW_OK) {
        free(r);
        return st;
    }
    if (is_gzip) {
        isal_inflate_init(&r->inflate);
        r->inflate.crc_flag = ISAL_GZIP;
        r->inflate.next_in = r->in;
        r->inflate.avail_in = (uint32_t)(r->in_len < UINT32_MAX ? r->in_len : UINT32_MAX);
        *out = r;
        return RW_OK;
    }
    /* Not gzip: zlib reads it as it is. */
    free(r->in);
    r->in = NULL;
#endif
    errno = 0;
    r->gz = gzopen(path, "rb");
    if (!r->gz) {
        free(r);
        return rw_fail(RW_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    }
    *out = r;
    return RW_OK;
}

rw_status gz_reader_read(gz_reader *r, uint8_t *buf, int64_t len, int64_t *got)
{
    *got = 0;
#ifdef REWIRE_HAVE_ISAL
    if (!r->gz) return isal_read(r, buf, len, got);
#endif
    return zlib_read(r, buf, len, got);
}

void gz_reader_close(gz_reader *r)
{
    if (!r) return;
    if (r->gz) gzclose(r->gz);
#ifdef REWIRE_HAVE_ISAL
    free(r->in);
#endif
    free(r);
}
