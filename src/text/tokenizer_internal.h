/* What the tokenizer files share: the tokenizer struct and the BPE
 * model's parts. Not for use outside src/text. */
#ifndef RW_TEXT_TOKENIZER_INTERNAL_H
#define RW_TEXT_TOKENIZER_INTERNAL_H

#include "text/hashmap.h"
#include "text/tokenizer.h"

/* GPT-2's byte-level BPE: merges by rank, and what encoding keeps between
 * calls (the cache) and reuses (scratch for one word). */
typedef struct {
    int32_t byte_id[256]; /* the single-byte token of each byte */
    pairmap rank;         /* (left id, right id) -> merge rank */
    int32_t n_merges;
    int32_t *merge_left, *merge_right, *merge_to; /* [n_merges], by rank */

    /* Words already encoded: word bytes -> offset into cache_ids, where
     * the word's token count is followed by its tokens. */
    strmap cache;
    int32_t *cache_ids;
    size_t cache_len, cache_cap;

    /* One word being merged, indexed by byte position: the token that
     * starts there, the previous and next live positions (-1: none). */
    int32_t *sym, *prev, *next;
    uint64_t *heap;    /* candidate merges: rank << 32 | position */
    int32_t *pending;  /* positions whose right pair changed in this pass */
    size_t scratch_cap; /* entries of each of the arrays above */
} bpe_model;

struct tokenizer {
    tokenizer_kind kind;
    int32_t n_tokens;
    int32_t eot;         /* "<|endoftext|>", or -1 */
    uint32_t *tok_off;   /* [n_tokens + 1]: token t is tok_bytes[tok_off[t], tok_off[t + 1]) */
    uint8_t *tok_bytes;
    strmap vocab;        /* token bytes -> id */
    bpe_model *bpe;      /* NULL for the byte tokenizer */
};

/* Appends n ids to a token array; -1 when memory runs out. */
int token_array_push(token_array *a, const int32_t *ids, size_t n);

/* Encoding of text[0, len) by the byte tokenizer (tokenizer_bytes.c) and
 * by BPE (bpe_encode.c), appended to out. */
rw_status bytes_encode(const uint8_t *text, size_t len, token_array *out);
rw_status bpe_encode(tokenizer *t, const uint8_t *text, size_t len, token_array *out);
void bpe_model_free(bpe_model *m);

#endif
