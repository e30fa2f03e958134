/* A text corpus for language modelling: a file's tokens, split into a
 * training part and a validation part (the last val_fraction of the
 * tokens, as nanoGPT splits 90/10), with seeded random windows for
 * training batches and sequential windows for evaluating a whole split.
 *
 * A window of context T is T + 1 consecutive tokens: the inputs are the
 * first T, the targets the last T (each input's next token). Batches are
 * [batch][context] arrays of token ids, row-major. */
#ifndef RW_TEXT_CORPUS_H
#define RW_TEXT_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "rewire.h"
#include "text/tokenizer.h"

typedef enum { CORPUS_TRAIN = 0, CORPUS_VAL = 1 } corpus_split;

typedef struct {
    int32_t *tokens;    /* [n_tokens], every id in [0, vocab_size) */
    size_t n_tokens;
    size_t n_train;     /* train: tokens[0, n_train); val: tokens[n_train, n_tokens) */
    int32_t vocab_size; /* the tokenizer's */
} text_corpus;

/* The largest file corpus_load reads (its tokens take up to 4x as much). */
#define CORPUS_MAX_BYTES ((size_t)1 << 36)
/* The largest context a window may have. */
#define CORPUS_MAX_CONTEXT (1 << 24)

/* Reads the file at path, encodes it with tok and splits it: the first
 * floor(n * (1 - val_fraction)) tokens train, the rest validate. The
 * training split, and the validation split when val_fraction > 0, must
 * hold at least context + 1 tokens. Errors: RW_ERR_INVALID_ARGUMENT
 * (val_fraction outside [0, 1), context outside [1, CORPUS_MAX_CONTEXT]),
 * RW_ERR_IO, RW_ERR_FORMAT naming the file (empty, a split too short),
 * RW_ERR_NO_MEMORY. *out is NULL on failure; free with corpus_free. */
rw_status corpus_load(const char *path, tokenizer *tok, double val_fraction, int context,
                      text_corpus **out);

/* The same for text in memory; `name` stands for the file in messages. */
rw_status corpus_from_memory(const char *name, const void *text, size_t len, tokenizer *tok,
                             double val_fraction, int context, text_corpus **out);

void corpus_free(text_corpus *c);

/* The number of tokens in a split. */
size_t corpus_split_size(const text_corpus *c, corpus_split split);

/* Fills inputs and targets ([batch][context] each) with `batch` windows
 * drawn from the split, each start uniform over every window that fits
 * (nanoGPT's get_batch). The draws come from the RNG stream (seed, step)
 * alone, so a training step's batch is the same whether the run was
 * resumed or not. RW_ERR_INVALID_ARGUMENT when context or batch is below
 * 1 or the split holds fewer than context + 1 tokens. */
rw_status corpus_sample_batch(const text_corpus *c, corpus_split split, int context, int batch,
                              uint64_t seed, uint64_t step, int32_t *inputs, int32_t *targets);

/* Sequential windows over a split, for evaluation: window k has the
 * inputs split[kT, kT + T) and targets split[kT + 1, kT + T + 1), so each
 * token of the split but the first is a target exactly once. The last
 * window may be shorter: its missing positions have input 0 and target
 * -1 (no target). */
typedef struct {
    const text_corpus *corpus;
    corpus_split split;
    int context;
    size_t next; /* the next window */
} corpus_iter;

/* The number of windows of a split: ceil((size - 1) / context). */
size_t corpus_eval_windows(const text_corpus *c, corpus_split split, int context);

/* Starts at the first window. RW_ERR_INVALID_ARGUMENT for a context below 1. */
rw_status corpus_iter_begin(corpus_iter *it, const text_corpus *c, corpus_split split, int context);

/* Writes the next windows, up to `batch`, into inputs and targets
 * ([batch][context]) and returns how many (0 after the last). Rows past
 * the windows written are padding: inputs 0, targets -1. */
int corpus_iter_next(corpus_iter *it, int batch, int32_t *inputs, int32_t *targets);

#endif
