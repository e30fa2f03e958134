/* GPT-2's byte-level BPE encoding: the text is cut into words by the
 * pre-tokenisation pattern (pretokenize.c), each word's bytes become their
 * single-byte tokens, and merges are applied by rank ("Neural Machine
 * Translation of Rare Words with Subword Units", Sennrich et al. 2016, as
 * GPT-2 applies it): the adjacent pair with the lowest rank is merged
 * everywhere it occurs in the word, left to right without overlap, then the
 * next lowest, until no adjacent pair has a rank.
 *
 * A heap of candidate pairs keyed by (rank, position) makes one word cost
 * O(n log n) instead of a rescan of the word per merge. Pairs formed while
 * the occurrences of one rank are merged wait until that rank is done, so
 * the result is GPT-2's even for a merges list whose order is not the order
 * of training. Encoded words are cached, as GPT-2's encoder does. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/pretokenize.h"
#include "text/tokenizer_internal.h"

/* Words up to this length are cached; the cache starts over when it holds
 * this many words or token ids (about 40 MB at most). */
#define CACHE_MAX_WORD 128
#define CACHE_MAX_WORDS (1 << 18)
#define CACHE_MAX_IDS (1 << 22)

void bpe_model_free(bpe_model *m)
{
    if (!m) return;
    pairmap_free(&m->rank);
    free(m->merge_left);
    free(m->merge_right);
    free(m->merge_to);
    strmap_free(&m->cache);
    free(m->cache_ids);
    free(m->sym);
    free(m->prev);
    free(m->next);
    free(m->heap);
    free(m->pending);
    free(m);
}

/* Room for a word of n bytes in the scratch arrays: n symbols, at most
 * 3n heap entries (n - 1 pairs at first, two new ones per merge) and 2n
 * pending positions. */
static int scratch_reserve(bpe_model *m, size_t n)
{
    if (n <= m->scratch_cap) return 0;
    size_t cap = m->scratch_cap ? m->scratch_cap : 256;
    while (cap < n) cap *= 2;
    int32_t *sym = realloc(m->sym, cap * sizeof *sym);
    if (sym) m->sym = sym;
    int32_t *prev = realloc(m->prev, cap * sizeof *prev);
    if (prev) m->prev = prev;
    int32_t *next = realloc(m->next, cap * sizeof *next);
    if (next) m->next = next;
    uint64_t *heap = realloc(m->heap, 3 * cap * sizeof *heap);
    if (heap) m->heap = heap;
    int32_t *pending = realloc(m->pending, 2 * cap * sizeof *pending);
    if (pending) m->pending = pending;
    if (!sym || !prev || !next || !heap || !pending) return -1;
    m->scratch_cap = cap;
    return 0;
}

static void heap_push(uint64_t *h, size_t *n, uint64_t v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h[parent] <= v) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], v = h[--*n];
    size_t i = 0, len = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len) break;
        if (c + 1 < len && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    if (len) h[i] = v;
    return top;
}

/* Pushes the pair that starts at position p, if it has a rank. */
static void push_pair(const bpe_model *m, uint64_t *heap, size_t *heap_n, int32_t p)
{
    int32_t q = m->next[p];
    if (m->sym[p] < 0 || q < 0) return;
    int32_t r = pairmap_get(&m->rank, m->sym[p], m->sym[q]);
    if (r >= 0) heap_push(heap, heap_n, (uint64_t)r << 32 | (uint32_t)p);
}

/* Merges the word w[0, n) (2 <= n <= INT32_MAX, scratch reserved) and
 * writes its tokens to ids (room for n); returns their count. */
static size_t merge_word(bpe_model *m, const uint8_t *w, size_t n, int32_t *ids)
{
    int32_t *sym = m->sym, *prev = m->prev, *next = m->next, *pending = m->pending;
    uint64_t *heap = m->heap;
    size_t heap_n = 0;
    for (size_t i = 0; i < n; i++) {
        sym[i] = m->byte_id[w[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) push_pair(m, heap, &heap_n, (int32_t)i);

    while (heap_n > 0) {
        /* One rank: every occurrence of its pair, left to right. Entries
         * whose pair has changed since they were pushed are skipped; so is
         * an occurrence overlapping one just merged ("a a a"). */
        uint32_t r = (uint32_t)(heap[0] >> 32);
        int32_t left = m->merge_left[r], right = m->merge_right[r], to = m->merge_to[r];
        size_t np = 0;
        while (heap_n > 0 && (uint32_t)(heap[0] >> 32) == r) {
            int32_t p = (int32_t)(uint32_t)heap_pop(heap, &heap_n);
            int32_t q = next[p];
            if (sym[p] != left || q < 0 || sym[q] != right) continue;
            sym[p] = to;
            sym[q] = -1;
            next[p] = next[q];
            if (next[q] >= 0) prev[next[q]] = p;
            if (prev[p] >= 0) pending[np++] = prev[p];
            pending[np++] = p;
        }
        for (size_t k = 0; k < np; k++) push_pair(m, heap, &heap_n, pending[k]);
    }
    size_t count = 0;
    for (int32_t p = 0; p >= 0; p = next[p]) ids[count++] = sym[p];
    return count;
}

/* Appends the tokens of one word w[0, n), n >= 1. */
static rw_status encode_word(bpe_model *m, const uint8_t *w, size_t n, token_array *out)
{
    if (n == 1) {
        if (token_array_push(out, &m->byte_id[w[0]], 1) != 0) goto oom;
        return RW_OK;
    }
    int cache = n <= CACHE_MAX_WORD;
    if (cache) {
        int64_t at = strmap_get(&m->cache, w, n);
        if (at >= 0) {
            if (token_array_push(out, m->cache_ids + at + 1, (size_t)m->cache_ids[at]) != 0) goto oom;
            return RW_OK;
        }
    }
    if (n > INT32_MAX)
        return rw_fail(RW_ERR_NO_MEMORY, "a word of %zu bytes is too long to encode", n);
    if (scratch_reserve(m, n) != 0) goto oom;
    /* The word's tokens go to the end of cache_ids, after room for their
     * count, and stay there when the word is cached (a word too long to
     * cache is written there too, past every cached word, and forgotten). */
    if (cache && (m->cache.count >= CACHE_MAX_WORDS || m->cache_len + n + 1 > CACHE_MAX_IDS)) {
        strmap_clear(&m->cache);
        m->cache_len = 0;
    }
    size_t want = m->cache_len + n + 1;
    if (want > m->cache_cap) {
        size_t cap = m->cache_cap ? m->cache_cap : 4096;
        while (cap < want) cap *= 2;
        int32_t *p = realloc(m->cache_ids, cap * sizeof *p);
        if (!p) goto oom;
        m->cache_ids = p;
        m->cache_cap = cap;
    }
    size_t at = m->cache_len;
    size_t count = merge_word(m, w, n, m->cache_ids + at + 1);
    m->cache_ids[at] = (int32_t)count;
    if (token_array_push(out, m->cache_ids + at + 1, count) != 0) goto oom;
    if (cache) {
        /* A failed insertion only loses the cache entry. */
        if (strmap_put(&m->cache, w, n, (int64_t)at, NULL) == 0) m->cache_len = at + 1 + count;
    }
    return RW_OK;
oom:
    return rw_fail(RW_ERR_NO_MEMORY, "cannot allocate memory to encode a word of %zu bytes", n);
}

rw_status bpe_encode(tokenizer *t, const uint8_t *text, size_t len, token_array *out)
{
    for (size_t pos = 0; pos < len;) {
        size_t end = pretokenize_next(text, len, pos);
        rw_status st = encode_word(t->bpe, text + pos, end - pos, out);
        if (st != RW_OK) return st;
        pos = end;
    }
    return RW_OK;
}
