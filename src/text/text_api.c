/* The public face of the text module (rewire.h, "Tokenizers", rw_text):
 * thin wrappers that keep src/text's types out of the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "rewire.h"
#include "text/text_api.h"

static rw_status wrap(tokenizer *t, const char *spec, rw_tokenizer **out)
{
    rw_tokenizer *w = calloc(1, sizeof *w);
    char *s = strdup(spec);
    if (!w || !s) {
        free(w);
        free(s);
        tokenizer_free(t);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for a tokenizer");
    }
    w->t = t;
    w->spec = s;
    *out = w;
    return RW_OK;
}

rw_status rw_tokenizer_bytes(rw_tokenizer **out)
{
    *out = NULL;
    tokenizer *t;
    rw_status st = tokenizer_bytes_create(&t);
    return st != RW_OK ? st : wrap(t, "bytes", out);
}

rw_status rw_tokenizer_bpe(const char *dir, rw_tokenizer **out)
{
    *out = NULL;
    if (!dir || !*dir) return rw_fail(RW_ERR_INVALID_ARGUMENT, "a BPE tokenizer needs a folder");
    if (strlen(dir) > 3000)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "tokenizer folder name longer than 3000 bytes");
    tokenizer *t;
    rw_status st = tokenizer_bpe_load(dir, &t);
    if (st != RW_OK) return st;
    char spec[3100];
    snprintf(spec, sizeof spec, "bpe:%s", dir);
    return wrap(t, spec, out);
}

rw_status rw_tokenizer_open(const char *spec, rw_tokenizer **out)
{
    *out = NULL;
    if (!spec) return rw_fail(RW_ERR_INVALID_ARGUMENT, "tokenizer: NULL spec");
    if (strcmp(spec, "bytes") == 0) return rw_tokenizer_bytes(out);
    if (strncmp(spec, "bpe:", 4) == 0) return rw_tokenizer_bpe(spec + 4, out);
    return rw_fail(RW_ERR_INVALID_ARGUMENT, "tokenizer '%s': expected bytes or bpe:DIR", spec);
}

int rw_tokenizer_vocab(const rw_tokenizer *t) { return tokenizer_vocab_size(t->t); }

const char *rw_tokenizer_spec(const rw_tokenizer *t) { return t->spec; }

rw_status rw_tokenizer_encode(rw_tokenizer *t, const void *text, size_t len, int32_t **ids,
                              size_t *count)
{
    *ids = NULL;
    *count = 0;
    token_array a = {0};
    rw_status st = tokenizer_encode(t->t, text, len, &a);
    if (st != RW_OK) {
        token_array_free(&a);
        return st;
    }
    if (!a.ids) { /* empty text: still a buffer the caller can free */
        a.ids = malloc(sizeof *a.ids);
        if (!a.ids) return rw_fail(RW_ERR_NO_MEMORY, "out of memory encoding text");
    }
    *ids = a.ids;
    *count = a.count;
    return RW_OK;
}

rw_status rw_tokenizer_decode(const rw_tokenizer *t, const int32_t *ids, size_t count, char **text,
                              size_t *len)
{
    uint8_t *s = NULL;
    rw_status st = tokenizer_decode(t->t, ids, count, &s, len);
    *text = (char *)s;
    return st;
}

void rw_tokenizer_free(rw_tokenizer *t)
{
    if (!t) return;
    tokenizer_free(t->t);
    free(t->spec);
    free(t);
}

/* ---- Text ------------------------------------------------------------- */

static rw_status make_text(text_corpus *c, rw_tokenizer *tok, rw_text **out)
{
    rw_text *x = calloc(1, sizeof *x);
    if (!x) {
        corpus_free(c);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for a text");
    }
    x->c = c;
    x->tok = tok;
    /* A fingerprint of the tokens, so that a resumed run trains on the
     * same text (FNV-1a over the ids). */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < c->n_tokens; i++) {
        h ^= (uint32_t)c->tokens[i];
        h *= 1099511628211ull;
    }
    x->fingerprint = h ^ c->n_train;
    *out = x;
    return RW_OK;
}

rw_status rw_text_load(const char *path, rw_tokenizer *t, double val_fraction, int context,
                       rw_text **out)
{
    *out = NULL;
    text_corpus *c;
    rw_status st = corpus_load(path, t->t, val_fraction, context, &c);
    return st != RW_OK ? st : make_text(c, t, out);
}

rw_status rw_text_from_memory(const char *name, const void *bytes, size_t len, rw_tokenizer *t,
                              double val_fraction, int context, rw_text **out)
{
    *out = NULL;
    text_corpus *c;
    rw_status st = corpus_from_memory(name, bytes, len, t->t, val_fraction, context, &c);
    return st != RW_OK ? st : make_text(c, t, out);
}

int64_t rw_text_tokens(const rw_text *t, int val)
{
    return (int64_t)corpus_split_size(t->c, val ? CORPUS_VAL : CORPUS_TRAIN);
}

void rw_text_free(rw_text *t)
{
    if (!t) return;
    corpus_free(t->c);
    free(t);
}
