/* The tests' shared BPE vocabulary (testbpe.h). */
#include "testbpe.h"
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "text/byte_unicode.h"
#include "text/hashmap.h"
#include "text/unicode.h"

#define MERGES_GZ "data/text/bpe-50257/merges.txt.gz"

static char *join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

void tu_sb_add(tu_sbuf *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void tu_sb_str(tu_sbuf *b, const char *s) { tu_sb_add(b, s, strlen(s)); }

void tu_sb_printf(tu_sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof tmp);
    tu_sb_add(b, tmp, (size_t)n);
}

/* Appends a token's spelling as a JSON string: '"' and '\\' escaped, the
 * rest (printable in GPT-2's alphabet) as it is. */
void tu_sb_json_string(tu_sbuf *b, const char *s, size_t n)
{
    tu_sb_str(b, "\"");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') tu_sb_str(b, "\\");
        tu_sb_add(b, s + i, 1);
    }
    tu_sb_str(b, "\"");
}

/* The spelling of byte b in GPT-2's alphabet (UTF-8, NUL-terminated). */
const char *tu_byte_spelling(int b, char out[4])
{
    uint8_t u[4];
    int k = utf8_encode(gpt2_byte_to_unicode((uint8_t)b), u);
    memcpy(out, u, (size_t)k);
    out[k] = '\0';
    return out;
}

/* GPT-2's order of the 256 byte tokens: those printable in Latin-1 first. */
static void byte_order(int order[256])
{
    int n = 0;
    for (int b = 0; b < 256; b++)
        if (gpt2_byte_to_unicode((uint8_t)b) == (uint32_t)b) order[n++] = b;
    for (int b = 0; b < 256; b++)
        if (gpt2_byte_to_unicode((uint8_t)b) != (uint32_t)b) order[n++] = b;
    assert_int_equal(n, 256);
}

/* ---- the 50257-token test vocabulary ------------------------------------- */

/* Rebuilds vocab.json from the committed merges.txt.gz as the reference
 * script made it: the 256 byte tokens in GPT-2's order, then each merge's
 * new token in merge order, then <|endoftext|>. Both files go to `dir`. */
void tu_write_test_bpe(const char *dir)
{
    gzFile g = gzopen(MERGES_GZ, "rb");
    assert_non_null(g);
    tu_sbuf merges = {0};
    char chunk[65536];
    int n;
    while ((n = gzread(g, chunk, sizeof chunk)) > 0) tu_sb_add(&merges, chunk, (size_t)n);
    assert_int_equal(n, 0);
    gzclose(g);

    tu_sbuf vocab = {0};
    strmap seen = {0};
    int order[256];
    byte_order(order);
    int64_t id = 0;
    tu_sb_str(&vocab, "{");
    for (int k = 0; k < 256; k++) {
        char sp[4];
        tu_byte_spelling(order[k], sp);
        assert_int_equal(strmap_put(&seen, (const uint8_t *)sp, strlen(sp), id, NULL), 0);
        tu_sb_str(&vocab, k ? ", " : "");
        tu_sb_json_string(&vocab, sp, strlen(sp));
        tu_sb_printf(&vocab, ": %lld", (long long)id++);
    }
    /* Each line "A B": the new token's spelling is A's followed by B's. */
    const char *s = merges.p, *end = merges.p + merges.len;
    int line = 0;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl) nl = end;
        if (line++ > 0) {
            const char *sp = memchr(s, ' ', (size_t)(nl - s));
            assert_non_null(sp);
            char joined[512];
            size_t a = (size_t)(sp - s), b = (size_t)(nl - sp - 1);
            assert_true(a + b < sizeof joined);
            memcpy(joined, s, a);
            memcpy(joined + a, sp + 1, b);
            if (strmap_put(&seen, (const uint8_t *)joined, a + b, id, NULL) == 0) {
                tu_sb_str(&vocab, ", ");
                tu_sb_json_string(&vocab, joined, a + b);
                tu_sb_printf(&vocab, ": %lld", (long long)id++);
            }
        }
        s = nl + 1;
    }
    tu_sb_printf(&vocab, ", \"<|endoftext|>\": %lld}", (long long)id++);
    assert_int_equal(id, 50257);

    char *vp = join(dir, "vocab.json"), *mp = join(dir, "merges.txt");
    write_bytes(vp, vocab.p, vocab.len);
    write_bytes(mp, merges.p, merges.len);
    free(vp);
    free(mp);
    free(vocab.p);
    free(merges.p);
    strmap_free(&seen);
}

