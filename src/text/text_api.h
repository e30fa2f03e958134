/* What stands behind the public rw_tokenizer and rw_text (text_api.c),
 * for the library's own callers (the language-model run). */
#ifndef RW_TEXT_TEXT_API_H
#define RW_TEXT_TEXT_API_H

#include <stdint.h>

#include "rewire.h"
#include "text/corpus.h"
#include "text/tokenizer.h"

struct rw_tokenizer {
    tokenizer *t;
    char *spec; /* "bytes" or "bpe:DIR" */
};

struct rw_text {
    text_corpus *c;
    const rw_tokenizer *tok;
    uint64_t fingerprint; /* of the tokens and the split */
};

#endif
