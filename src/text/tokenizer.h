/* Tokenizers: text (any bytes) to token ids and back.
 *
 *   bytes  vocabulary of 256, the token of a byte is its value.
 *   bpe    GPT-2's byte-level byte-pair encoding ("Language Models are
 *          Unsupervised Multitask Learners", Radford et al. 2019), read
 *          from a folder's vocab.json and merges.txt as GPT-2 and Hugging
 *          Face publish them.
 *
 * Every token stands for a non-empty byte string, and decoding
 * concatenates them, so decode(encode(x)) == x for every byte string x,
 * invalid UTF-8 included. Encoding treats "<|endoftext|>" in the text as
 * ordinary text, as GPT-2's released encoder does; its id, when the
 * vocabulary has it, is tokenizer_eot() for callers that join documents.
 *
 * A tokenizer is read-only after loading except for the BPE tokenizer's
 * cache of encoded words: tokenizer_encode must not run on one tokenizer
 * from two threads at once (decoding may). */
#ifndef RW_TEXT_TOKENIZER_H
#define RW_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "rewire.h"

typedef struct tokenizer tokenizer;

typedef enum { TOKENIZER_BYTES = 0, TOKENIZER_BPE } tokenizer_kind;

/* A growing array of token ids that tokenizer_encode appends to. Start
 * from {0} and release with token_array_free. */
typedef struct {
    int32_t *ids; /* [count] */
    size_t count, cap;
} token_array;

void token_array_free(token_array *a);

/* The byte tokenizer. Fails only with RW_ERR_NO_MEMORY. */
rw_status tokenizer_bytes_create(tokenizer **out);

/* Limits on what a BPE vocabulary may hold (GPT-2's files are 1 MB and
 * 0.5 MB, 50257 tokens and 50000 merges). */
#define BPE_MAX_FILE_BYTES ((size_t)64 << 20)
#define BPE_MAX_TOKENS (1 << 21)

/* Reads DIR/vocab.json and DIR/merges.txt. vocab.json is a JSON object
 * mapping each token, written in GPT-2's byte-to-unicode alphabet, to its
 * id; the ids must be 0 to n-1, one each, and the 256 single-byte tokens
 * must all be there. merges.txt holds one merge "A B" per line in priority
 * order (a first line "#version..." is skipped); both parts and their
 * concatenation must be tokens. Errors: RW_ERR_IO (a file cannot be read),
 * RW_ERR_FORMAT naming the file, the line or token and what was expected,
 * RW_ERR_NO_MEMORY. *out is NULL on failure; free with tokenizer_free. */
rw_status tokenizer_bpe_load(const char *dir, tokenizer **out);

/* The same from memory; the names are used in messages. */
rw_status tokenizer_bpe_load_memory(const char *vocab_name, const void *vocab_json,
                                    size_t vocab_len, const char *merges_name,
                                    const void *merges_txt, size_t merges_len, tokenizer **out);

void tokenizer_free(tokenizer *t);

tokenizer_kind tokenizer_get_kind(const tokenizer *t);
/* The number of tokens; ids are 0 to vocab_size - 1. */
int32_t tokenizer_vocab_size(const tokenizer *t);
/* The id of "<|endoftext|>", or -1 when the vocabulary has none. */
int32_t tokenizer_eot(const tokenizer *t);
/* The bytes token `id` stands for (*len of them; not NUL-terminated), or
 * NULL when id is out of range. Valid while the tokenizer lives. */
const uint8_t *tokenizer_token_bytes(const tokenizer *t, int32_t id, size_t *len);
/* The id of the token that stands for exactly these bytes, or -1. */
int32_t tokenizer_find(const tokenizer *t, const void *bytes, size_t len);

/* Appends the tokens of text[0, len) to *out. Fails only with
 * RW_ERR_NO_MEMORY (then *out holds the tokens appended so far). */
rw_status tokenizer_encode(tokenizer *t, const void *text, size_t len, token_array *out);

/* The bytes of ids[0, count), in a new NUL-terminated buffer (*len bytes
 * before the NUL; free() it). RW_ERR_INVALID_ARGUMENT naming the position
 * of an id out of range; *text is NULL on failure. */
rw_status tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t count, uint8_t **text,
                           size_t *len);

#endif
