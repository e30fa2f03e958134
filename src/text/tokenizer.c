/* What every tokenizer shares: a table of the bytes each token stands for
 * (so decoding is one loop for every kind), lookups, and freeing. */
#include "text/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void token_array_free(token_array *a)
{
    if (!a) return;
    free(a->ids);
    a->ids = NULL;
    a->count = a->cap = 0;
}

int token_array_push(token_array *a, const int32_t *ids, size_t n)
{
    if (n > SIZE_MAX / sizeof(int32_t) / 2 - a->count) return -1;
    if (a->count + n > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < a->count + n) cap *= 2;
        int32_t *p = realloc(a->ids, cap * sizeof *p);
        if (!p) return -1;
        a->ids = p;
        a->cap = cap;
    }
    memcpy(a->ids + a->count, ids, n * sizeof *ids);
    a->count += n;
    return 0;
}

void tokenizer_free(tokenizer *t)
{
    if (!t) return;
    free(t->tok_off);
    free(t->tok_bytes);
    strmap_free(&t->vocab);
    bpe_model_free(t->bpe);
    free(t);
}

tokenizer_kind tokenizer_get_kind(const tokenizer *t) { return t->kind; }

int32_t tokenizer_vocab_size(const tokenizer *t) { return t->n_tokens; }

int32_t tokenizer_eot(const tokenizer *t) { return t->eot; }

const uint8_t *tokenizer_token_bytes(const tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_tokens) return NULL;
    *len = t->tok_off[id + 1] - t->tok_off[id];
    return t->tok_bytes + t->tok_off[id];
}

int32_t tokenizer_find(const tokenizer *t, const void *bytes, size_t len)
{
    return (int32_t)strmap_get(&t->vocab, bytes, len);
}

rw_status tokenizer_encode(tokenizer *t, const void *text, size_t len, token_array *out)
{
    if (!t || !out || (!text && len))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "tokenizer_encode: NULL tokenizer, text or output");
    if (t->kind == TOKENIZER_BPE) return bpe_encode(t, text, len, out);
    return bytes_encode(text, len, out);
}

rw_status tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t count, uint8_t **text,
                           size_t *len)
{
    *text = NULL;
    *len = 0;
    if (!t || (!ids && count))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "tokenizer_decode: NULL tokenizer or ids");
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_tokens)
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "token id %ld at position %zu is outside [0, %ld) of the vocabulary",
                           (long)ids[i], i, (long)t->n_tokens);
        size_t n = t->tok_off[ids[i] + 1] - t->tok_off[ids[i]];
        if (n > SIZE_MAX - 1 - total)
            return rw_fail(RW_ERR_NO_MEMORY, "decoding %zu tokens: text too long", count);
        total += n;
    }
    uint8_t *buf = malloc(total + 1);
    if (!buf) return rw_fail(RW_ERR_NO_MEMORY, "cannot allocate %zu bytes of decoded text", total + 1);
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t a = t->tok_off[ids[i]], b = t->tok_off[ids[i] + 1];
        memcpy(buf + at, t->tok_bytes + a, b - a);
        at += b - a;
    }
    buf[total] = '\0';
    *text = buf;
    *len = total;
    return RW_OK;
}
