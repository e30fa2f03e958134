/* Two small open-addressing hash tables (linear probing, power-of-two
 * sizes, kept at most half full) for the tokenizers: byte strings to
 * integers (the vocabulary, the cache of encoded words) and pairs of
 * token ids to merge ranks. */
#ifndef RW_TEXT_HASHMAP_H
#define RW_TEXT_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

/* ---- byte string -> int64 ---------------------------------------------- */

typedef struct {
    uint64_t hash;
    size_t key_off; /* into keys */
    size_t key_len;
    int64_t value;
} strmap_entry;

typedef struct {
    uint32_t *slots;        /* [cap] entry index + 1; 0 = empty */
    size_t cap;             /* a power of two, or 0 before the first put */
    strmap_entry *entries;  /* [count], in insertion order */
    size_t count, entries_cap;
    uint8_t *keys;          /* the keys' bytes, back to back */
    size_t keys_len, keys_cap;
} strmap;

/* An all-zero strmap is empty and valid. */
uint64_t strmap_hash(const uint8_t *key, size_t len);
/* The value stored for key, or -1 when there is none. */
int64_t strmap_get(const strmap *m, const uint8_t *key, size_t len);
/* Adds key (copied) with value. Returns 0 when added, 1 when key was
 * already there (its value, unchanged, in *old when old is not NULL), -1
 * when memory ran out (the map is unchanged). */
int strmap_put(strmap *m, const uint8_t *key, size_t len, int64_t value, int64_t *old);
/* Forgets every key, keeping the memory. */
void strmap_clear(strmap *m);
void strmap_free(strmap *m);
/* Bytes held by the map's arrays. */
size_t strmap_bytes(const strmap *m);

/* ---- (int32, int32) -> int32 ------------------------------------------- */

typedef struct {
    uint64_t key;  /* a << 32 | b */
    int32_t value; /* -1 = empty slot */
} pairmap_slot;

typedef struct {
    pairmap_slot *slots; /* [cap] */
    size_t cap, count;
} pairmap;

/* Sizes an empty map for `expected` pairs. Returns 0, or -1 when memory
 * ran out. The map must be given room for every pair put into it. */
int pairmap_init(pairmap *m, size_t expected);
/* Adds (a, b) -> value (value >= 0). Returns 0 when added, 1 when the pair
 * was there (its value in *old), -1 when the map is full. */
int pairmap_put(pairmap *m, int32_t a, int32_t b, int32_t value, int32_t *old);
void pairmap_free(pairmap *m);

static inline uint64_t pairmap_mix(uint64_t key)
{
    key ^= key >> 29;
    key *= 0xbf58476d1ce4e5b9ULL;
    return key ^ key >> 32;
}

/* The value of (a, b), or -1. */
static inline int32_t pairmap_get(const pairmap *m, int32_t a, int32_t b)
{
    if (m->cap == 0) return -1;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t mask = m->cap - 1, i = (size_t)pairmap_mix(key) & mask;
    for (;;) {
        const pairmap_slot *s = &m->slots[i];
        if (s->value < 0) return -1;
        if (s->key == key) return s->value;
        i = (i + 1) & mask;
    }
}

#endif
