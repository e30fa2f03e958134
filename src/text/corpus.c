/* Text corpora: a file's tokens, the train/validation split, random
 * training windows and sequential evaluation windows (see corpus.h). */
#include "text/corpus.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "text/text_util.h"

static const char *split_name(corpus_split s) { return s == CORPUS_VAL ? "validation" : "training"; }

static rw_status check_args(double val_fraction, int context)
{
    if (!(val_fraction >= 0.0 && val_fraction < 1.0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "validation fraction %g is outside [0, 1)",
                       val_fraction);
    if (context < 1 || context > CORPUS_MAX_CONTEXT)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "context %d is outside [1, %d]", context,
                       CORPUS_MAX_CONTEXT);
    return RW_OK;
}

rw_status corpus_from_memory(const char *name, const void *text, size_t len, tokenizer *tok,
                             double val_fraction, int context, text_corpus **out)
{
    if (out) *out = NULL;
    if (!name || (!text && len) || !tok || !out)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "corpus_from_memory: NULL argument");
    rw_status st = check_args(val_fraction, context);
    if (st != RW_OK) return st;
    if (len == 0) return rw_fail(RW_ERR_FORMAT, "%s: file is empty, expected text", name);

    token_array a = {0};
    st = tokenizer_encode(tok, text, len, &a);
    if (st != RW_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rw_last_error());
        token_array_free(&a);
        return rw_fail(st, "%s: %s", name, msg);
    }
    size_t n = a.count;
    size_t n_train = (size_t)floor((double)n * (1.0 - val_fraction));
    if (n_train > n) n_train = n;
    size_t need = (size_t)context + 1, n_val = n - n_train;
    if (n_train < need || (val_fraction > 0 && n_val < need)) {
        int train_short = n_train < need;
        token_array_free(&a);
        return rw_fail(RW_ERR_FORMAT,
                       "%s: the %s split holds %zu tokens (%g%% of %zu), fewer than the %zu that "
                       "one window of context %d needs",
                       name, train_short ? "training" : "validation", train_short ? n_train : n_val,
                       100.0 * (train_short ? 1.0 - val_fraction : val_fraction), n, need, context);
    }
    text_corpus *c = malloc(sizeof *c);
    if (!c) {
        token_array_free(&a);
        return rw_fail(RW_ERR_NO_MEMORY, "%s: cannot allocate the corpus", name);
    }
    c->tokens = a.ids;
    c->n_tokens = n;
    c->n_train = n_train;
    c->vocab_size = tokenizer_vocab_size(tok);
    *out = c;
    return RW_OK;
}

rw_status corpus_load(const char *path, tokenizer *tok, double val_fraction, int context,
                      text_corpus **out)
{
    if (out) *out = NULL;
    if (!path || !tok || !out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "corpus_load: NULL argument");
    rw_status st = check_args(val_fraction, context);
    if (st != RW_OK) return st;
    uint8_t *text;
    size_t len;
    st = text_read_file(path, CORPUS_MAX_BYTES, "text corpus", &text, &len);
    if (st != RW_OK) return st;
    st = corpus_from_memory(path, text, len, tok, val_fraction, context, out);
    free(text);
    return st;
}

void corpus_free(text_corpus *c)
{
    if (!c) return;
    free(c->tokens);
    free(c);
}

size_t corpus_split_size(const text_corpus *c, corpus_split split)
{
    return split == CORPUS_VAL ? c->n_tokens - c->n_train : c->n_train;
}

static const int32_t *split_tokens(const text_corpus *c, corpus_split split)
{
    return split == CORPUS_VAL ? c->tokens + c->n_train : c->tokens;
}

rw_status corpus_sample_batch(const text_corpus *c, corpus_split split, int context, int batch,
                              uint64_t seed, uint64_t step, int32_t *inputs, int32_t *targets)
{
    if (!c || !inputs || !targets)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "corpus_sample_batch: NULL argument");
    if (context < 1 || batch < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "context %d and batch %d must be at least 1",
                       context, batch);
    size_t n = corpus_split_size(c, split);
    if (n < (size_t)context + 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "the %s split holds %zu tokens, fewer than the %lld a window of context %d "
                       "needs", split_name(split), n, (long long)context + 1, context);
    const int32_t *tok = split_tokens(c, split);
    rng_state r;
    rng_seed_stream(&r, seed, step);
    size_t T = (size_t)context;
    for (size_t b = 0; b < (size_t)batch; b++) {
        size_t start = (size_t)rng_below(&r, n - T); /* windows [start, start + T] that fit */
        memcpy(inputs + b * T, tok + start, T * sizeof *inputs);
        memcpy(targets + b * T, tok + start + 1, T * sizeof *targets);
    }
    return RW_OK;
}

size_t corpus_eval_windows(const text_corpus *c, corpus_split split, int context)
{
    size_t n = corpus_split_size(c, split);
    if (context < 1 || n < 2) return 0;
    return (n - 1 + (size_t)context - 1) / (size_t)context;
}

rw_status corpus_iter_begin(corpus_iter *it, const text_corpus *c, corpus_split split, int context)
{
    if (!it || !c) return rw_fail(RW_ERR_INVALID_ARGUMENT, "corpus_iter_begin: NULL argument");
    if (context < 1) return rw_fail(RW_ERR_INVALID_ARGUMENT, "context %d is below 1", context);
    it->corpus = c;
    it->split = split;
    it->context = context;
    it->next = 0;
    return RW_OK;
}

int corpus_iter_next(corpus_iter *it, int batch, int32_t *inputs, int32_t *targets)
{
    const text_corpus *c = it->corpus;
    size_t n = corpus_split_size(c, it->split), T = (size_t)it->context;
    size_t total = corpus_eval_windows(c, it->split, it->context);
    const int32_t *tok = split_tokens(c, it->split);
    int made = 0;
    for (size_t b = 0; b < (size_t)(batch > 0 ? batch : 0); b++) {
        int32_t *in = inputs + b * T, *tg = targets + b * T;
        size_t len = 0;
        if (it->next < total) {
            size_t start = it->next * T;
            len = n - 1 - start < T ? n - 1 - start : T;
            memcpy(in, tok + start, len * sizeof *in);
            memcpy(tg, tok + start + 1, len * sizeof *tg);
            it->next++;
            made++;
        }
        for (size_t t = len; t < T; t++) {
            in[t] = 0;
            tg[t] = -1;
        }
    }
    return made;
}
