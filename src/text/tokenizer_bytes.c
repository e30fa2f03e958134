/* The byte tokenizer: 256 tokens, the token of a byte is its value. It
 * needs no files, so a model can train on any text at once. */
#include <stdlib.h>

#include "core/error.h"
#include "text/tokenizer_internal.h"

rw_status tokenizer_bytes_create(tokenizer **out)
{
    *out = NULL;
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return rw_fail(RW_ERR_NO_MEMORY, "cannot allocate the byte tokenizer");
    t->kind = TOKENIZER_BYTES;
    t->n_tokens = 256;
    t->eot = -1;
    t->tok_off = malloc(257 * sizeof *t->tok_off);
    t->tok_bytes = malloc(256);
    int ok = t->tok_off && t->tok_bytes;
    for (int b = 0; ok && b < 256; b++) {
        t->tok_off[b] = (uint32_t)b;
        t->tok_bytes[b] = (uint8_t)b;
        ok = strmap_put(&t->vocab, t->tok_bytes + b, 1, b, NULL) == 0;
    }
    if (!ok) {
        tokenizer_free(t);
        return rw_fail(RW_ERR_NO_MEMORY, "cannot allocate the byte tokenizer");
    }
    t->tok_off[256] = 256;
    *out = t;
    return RW_OK;
}

/* The byte tokenizer: one token per byte, in blocks to bound the stack. */
rw_status bytes_encode(const uint8_t *text, size_t len, token_array *out)
{
    int32_t block[1024];
    for (size_t i = 0; i < len;) {
        size_t n = len - i < 1024 ? len - i : 1024;
        for (size_t k = 0; k < n; k++) block[k] = text[i + k];
        if (token_array_push(out, block, n) != 0)
            return rw_fail(RW_ERR_NO_MEMORY, "cannot allocate %zu token ids", out->count + len - i);
        i += n;
    }
    return RW_OK;
}
