/* Loading GPT-2's byte-level BPE: vocab.json (token -> id) and merges.txt
 * (the merges in priority order). Nothing in either file is trusted: every
 * id, token and merge is checked, and each refusal names the file, the
 * token or line, and what was expected. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/byte_unicode.h"
#include "text/text_util.h"
#include "text/tokenizer_internal.h"
#include "text/unicode.h"

#define QUOTE_CAP 200

/* The number of ':' outside JSON strings: at least the number of object
 * members, counted before jansson builds them, so a huge file of tiny
 * members is refused before it takes gigabytes. */
static size_t count_members(const uint8_t *s, size_t len)
{
    size_t n = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (s[i] == '\\') i++;
            else if (s[i] == '"') in_string = 0;
        } else if (s[i] == '"') {
            in_string = 1;
        } else if (s[i] == ':') {
            n++;
        }
    }
    return n;
}

static const char *json_kind(const json_t *v)
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

/* Fills t->tok_off, tok_bytes, vocab, eot and m->byte_id from vocab.json. */
static rw_status vocab_parse(tokenizer *t, bpe_model *m, const char *name, const uint8_t *json,
                             size_t len)
{
    char q[QUOTE_CAP], q2[QUOTE_CAP];
    size_t members = count_members(json, len);
    if (members > BPE_MAX_TOKENS)
        return rw_fail(RW_ERR_FORMAT, "%s: holds %zu or more tokens, more than the limit of %d", name,
                       members, BPE_MAX_TOKENS);
    json_error_t err;
    json_t *root = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return rw_fail(RW_ERR_FORMAT, "%s: not valid JSON (line %d, column %d): %s", name, err.line,
                       err.column, err.text);
    rw_status st = RW_OK;
    const char **key_of = NULL;
    if (!json_is_object(root)) {
        st = rw_fail(RW_ERR_FORMAT, "%s: expected a JSON object mapping each token to its id, got %s",
                     name, json_kind(root));
        goto done;
    }
    size_t n = json_object_size(root);
    if (n == 0) {
        st = rw_fail(RW_ERR_FORMAT, "%s: the vocabulary is empty, expected at least the 256 "
                     "single-byte tokens", name);
        goto done;
    }
    key_of = calloc(n, sizeof *key_of);
    t->tok_off = malloc((n + 1) * sizeof *t->tok_off);
    if (!key_of || !t->tok_off) {
        st = rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate the tables of %zu tokens", name, n);
        goto done;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (!json_is_integer(value)) {
            st = rw_fail(RW_ERR_FORMAT, "%s: token \"%s\": id is %s, expected an integer", name,
                         text_quote(q, sizeof q, key, strlen(key)), json_kind(value));
            goto done;
        }
        json_int_t id = json_integer_value(value);
        if (id < 0 || (uint64_t)id >= n) {
            st = rw_fail(RW_ERR_FORMAT,
                         "%s: token \"%s\": id %lld is outside [0, %zu) (the %zu tokens must have "
                         "the ids 0 to %zu, one each)",
                         name, text_quote(q, sizeof q, key, strlen(key)), (long long)id, n, n, n - 1);
            goto done;
        }
        if (key_of[id]) {
            st = rw_fail(RW_ERR_FORMAT, "%s: tokens \"%s\" and \"%s\" both have id %lld", name,
                         text_quote(q, sizeof q, key_of[id], strlen(key_of[id])),
                         text_quote(q2, sizeof q2, key, strlen(key)), (long long)id);
            goto done;
        }
        key_of[id] = key;
    }

    /* n distinct ids in [0, n): every id has its token. The bytes of the
     * tokens take at most as many bytes as their spelling. */
    t->tok_bytes = malloc(len + 1);
    if (!t->tok_bytes) {
        st = rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes for the tokens", name, len);
        goto done;
    }
    t->n_tokens = (int32_t)n;
    size_t at = 0;
    for (size_t id = 0; id < n; id++) {
        const uint8_t *s = (const uint8_t *)key_of[id];
        size_t klen = strlen(key_of[id]), bad = 0;
        if (klen == 0) {
            st = rw_fail(RW_ERR_FORMAT, "%s: token \"\" (id %zu) is empty, expected at least one "
                         "character", name, id);
            goto done;
        }
        long got = gpt2_unicode_to_bytes(s, klen, t->tok_bytes + at, &bad);
        if (got < 0) {
            uint32_t cp; /* jansson hands out well-formed UTF-8 keys */
            utf8_decode(s + bad, klen - bad, &cp);
            st = rw_fail(RW_ERR_FORMAT,
                         "%s: token \"%s\" (id %zu): character U+%04lX at byte %zu is not in "
                         "GPT-2's byte-to-unicode alphabet",
                         name, text_quote(q, sizeof q, s, klen), id, (unsigned long)cp, bad);
            goto done;
        }
        t->tok_off[id] = (uint32_t)at;
        int64_t other;
        int put = strmap_put(&t->vocab, t->tok_bytes + at, (size_t)got, (int64_t)id, &other);
        if (put < 0) {
            st = rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate the vocabulary's table", name);
            goto done;
        }
        if (put > 0) { /* cannot happen: the alphabet is one to one */
            st = rw_fail(RW_ERR_FORMAT, "%s: tokens %lld and %zu stand for the same bytes", name,
                         (long long)other, id);
            goto done;
        }
        at += (size_t)got;
    }
    t->tok_off[n] = (uint32_t)at;

    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        int64_t id = strmap_get(&t->vocab, &byte, 1);
        if (id < 0) {
            uint8_t sym[4];
            int k = utf8_encode(gpt2_byte_to_unicode(byte), sym);
            st = rw_fail(RW_ERR_FORMAT,
                         "%s: no token for byte 0x%02X (\"%.*s\" in GPT-2's alphabet): a byte-level "
                         "vocabulary needs all 256 single-byte tokens",
                         name, b, k, (const char *)sym);
            goto done;
        }
        m->byte_id[b] = (int32_t)id;
    }
    static const char eot[] = "<|endoftext|>";
    t->eot = (int32_t)strmap_get(&t->vocab, (const uint8_t *)eot, sizeof eot - 1);
done:
    free(key_of);
    json_decref(root);
    return st;
}

/* Looks a part of a merge (in the alphabet) up: its id, or -1. The bytes
 * go to buf (room for len bytes). */
static int32_t merge_part(const tokenizer *t, const uint8_t *s, size_t len, uint8_t *buf,
                          size_t *nbytes)
{
    size_t bad;
    long got = gpt2_unicode_to_bytes(s, len, buf, &bad);
    if (got < 0) return -1;
    *nbytes = (size_t)got;
    return (int32_t)strmap_get(&t->vocab, buf, (size_t)got);
}

/* Fills m's merge tables from merges.txt. */
static rw_status merges_parse(tokenizer *t, bpe_model *m, const char *name, const char *vocab_name,
                              const uint8_t *txt, size_t len)
{
    char q[QUOTE_CAP], q2[QUOTE_CAP];
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += txt[i] == '\n';
    if (lines > (size_t)INT32_MAX / 2)
        return rw_fail(RW_ERR_FORMAT, "%s: %zu lines, more than the limit of %d merges", name, lines,
                       INT32_MAX / 2);
    rw_status st = RW_OK;
    int32_t *line_of = malloc(lines * sizeof *line_of);
    uint8_t *buf = malloc(2 * len + 1);
    m->merge_left = malloc(lines * sizeof *m->merge_left);
    m->merge_right = malloc(lines * sizeof *m->merge_right);
    m->merge_to = malloc(lines * sizeof *m->merge_to);
    if (!line_of || !buf || !m->merge_left || !m->merge_right || !m->merge_to ||
        pairmap_init(&m->rank, lines) != 0) {
        st = rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate the tables of %zu merges", name, lines);
        goto done;
    }
    int32_t lineno = 0, n = 0;
    for (size_t pos = 0; pos < len;) {
        const uint8_t *s = txt + pos, *nl = memchr(s, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - s) : len - pos;
        pos += llen + 1;
        lineno++;
        if (llen > 0 && s[llen - 1] == '\r') llen--; /* Windows line ends */
        if (lineno == 1 && llen >= 8 && memcmp(s, "#version", 8) == 0) continue;
        const uint8_t *sp = memchr(s, ' ', llen);
        size_t parts = 1;
        for (size_t i = 0; i < llen; i++) parts += s[i] == ' ';
        if (llen == 0 || parts != 2) {
            st = rw_fail(RW_ERR_FORMAT,
                         "%s: line %ld: \"%s\" has %zu space-separated parts, expected 2 (a merge "
                         "\"A B\")",
                         name, (long)lineno, text_quote(q, sizeof q, s, llen), llen ? parts : 0);
            goto done;
        }
        if (sp == s || sp == s + llen - 1) {
            st = rw_fail(RW_ERR_FORMAT,
                         "%s: line %ld: \"%s\" has an empty part, expected a merge \"A B\" of two "
                         "tokens", name, (long)lineno, text_quote(q, sizeof q, s, llen));
            goto done;
        }
        size_t alen = (size_t)(sp - s), blen = llen - alen - 1, abytes = 0, bbytes = 0;
        int32_t a = merge_part(t, s, alen, buf, &abytes);
        int32_t b = merge_part(t, sp + 1, blen, buf + abytes, &bbytes);
        if (a < 0 || b < 0) {
            const uint8_t *part = a < 0 ? s : sp + 1;
            st = rw_fail(RW_ERR_FORMAT, "%s: line %ld: \"%s\" is not a token of %s", name,
                         (long)lineno, text_quote(q, sizeof q, part, a < 0 ? alen : blen),
                         vocab_name);
            goto done;
        }
        int32_t to = (int32_t)strmap_get(&t->vocab, buf, abytes + bbytes);
        if (to < 0) {
            st = rw_fail(RW_ERR_FORMAT,
                         "%s: line %ld: merging \"%s\" and \"%s\" gives \"%s%s\", which is not a "
                         "token of %s",
                         name, (long)lineno, text_quote(q, sizeof q, s, alen),
                         text_quote(q2, sizeof q2, sp + 1, blen), q, q2, vocab_name);
            goto done;
        }
        int32_t old = 0;
        int put = pairmap_put(&m->rank, a, b, n, &old);
        if (put < 0) { /* cannot happen: the map has room for every line */
            st = rw_fail(RW_ERR_NO_MEMORY, "%s: the table of merges is full", name);
            goto done;
        }
        if (put > 0) {
            st = rw_fail(RW_ERR_FORMAT, "%s: line %ld repeats the merge \"%s\" of line %ld", name,
                         (long)lineno, text_quote(q, sizeof q, s, llen), (long)line_of[old]);
            goto done;
        }
        m->merge_left[n] = a;
        m->merge_right[n] = b;
        m->merge_to[n] = to;
        line_of[n] = lineno;
        n++;
    }
    m->n_merges = n;
done:
    free(line_of);
    free(buf);
    return st;
}

rw_status tokenizer_bpe_load_memory(const char *vocab_name, const void *vocab_json,
                                    size_t vocab_len, const char *merges_name,
                                    const void *merges_txt, size_t merges_len, tokenizer **out)
{
    if (out) *out = NULL;
    if (!vocab_name || !merges_name || !out || (!vocab_json && vocab_len) ||
        (!merges_txt && merges_len))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "tokenizer_bpe_load_memory: NULL argument");
    if (vocab_len > BPE_MAX_FILE_BYTES)
        return rw_fail(RW_ERR_FORMAT, "%s: file is %zu bytes, more than the limit of %zu for a "
                       "vocabulary", vocab_name, vocab_len, BPE_MAX_FILE_BYTES);
    if (merges_len > BPE_MAX_FILE_BYTES)
        return rw_fail(RW_ERR_FORMAT, "%s: file is %zu bytes, more than the limit of %zu for a "
                       "merges list", merges_name, merges_len, BPE_MAX_FILE_BYTES);
    tokenizer *t = calloc(1, sizeof *t);
    bpe_model *m = calloc(1, sizeof *m);
    if (!t || !m) {
        free(t);
        free(m);
        return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate the tokenizer", vocab_name);
    }
    t->kind = TOKENIZER_BPE;
    t->bpe = m;
    rw_status st = vocab_parse(t, m, vocab_name, vocab_json, vocab_len);
    if (st == RW_OK) st = merges_parse(t, m, merges_name, vocab_name, merges_txt, merges_len);
    if (st != RW_OK) {
        tokenizer_free(t);
        return st;
    }
    *out = t;
    return RW_OK;
}

rw_status tokenizer_bpe_load(const char *dir, tokenizer **out)
{
    if (out) *out = NULL;
    if (!dir || !out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "tokenizer_bpe_load: NULL argument");
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/') dlen--;
    if (dlen > 4000) return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: folder path too long", dir);
    char vocab_path[4096], merges_path[4096];
    snprintf(vocab_path, sizeof vocab_path, "%.*s/vocab.json", (int)dlen, dir);
    snprintf(merges_path, sizeof merges_path, "%.*s/merges.txt", (int)dlen, dir);
    uint8_t *vocab = NULL, *merges = NULL;
    size_t vlen, mlen;
    rw_status st = text_read_file(vocab_path, BPE_MAX_FILE_BYTES, "vocabulary", &vocab, &vlen);
    if (st == RW_OK)
        st = text_read_file(merges_path, BPE_MAX_FILE_BYTES, "merges list", &merges, &mlen);
    if (st == RW_OK)
        st = tokenizer_bpe_load_memory(vocab_path, vocab, vlen, merges_path, merges, mlen, out);
    free(vocab);
    free(merges);
    return st;
}
