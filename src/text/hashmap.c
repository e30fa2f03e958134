/* Open-addressing hash tables for the tokenizers (see hashmap.h). */
#include "text/hashmap.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bits (Fowler, Noll, Vo): keys are short (words, tokens). */
uint64_t strmap_hash(const uint8_t *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ key[i]) * 0x100000001b3ULL;
    return h ^ h >> 31;
}

static int strmap_key_eq(const strmap *m, const strmap_entry *e, uint64_t hash,
                         const uint8_t *key, size_t len)
{
    return e->hash == hash && e->key_len == len &&
           (len == 0 || memcmp(m->keys + e->key_off, key, len) == 0);
}

int64_t strmap_get(const strmap *m, const uint8_t *key, size_t len)
{
    if (m->cap == 0) return -1;
    uint64_t h = strmap_hash(key, len);
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t s = m->slots[i];
        if (s == 0) return -1;
        const strmap_entry *e = &m->entries[s - 1];
        if (strmap_key_eq(m, e, h, key, len)) return e->value;
    }
}

/* Doubles the slot array (or makes the first one) and reinserts. */
static int strmap_grow_slots(strmap *m)
{
    size_t cap = m->cap ? 2 * m->cap : 64;
    if (cap > ((size_t)1 << 32) || cap > SIZE_MAX / sizeof(uint32_t)) return -1;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t k = 0; k < m->count; k++) {
        size_t i = (size_t)m->entries[k].hash & (cap - 1);
        while (slots[i]) i = (i + 1) & (cap - 1);
        slots[i] = (uint32_t)(k + 1);
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* Makes room for `want` bytes (or items) in a growing array. */
static int grow(void **p, size_t *cap, size_t want, size_t item)
{
    if (want <= *cap) return 0;
    size_t n = *cap ? *cap : 16;
    while (n < want) {
        if (n > SIZE_MAX / 2 / item) return -1;
        n *= 2;
    }
    void *q = realloc(*p, n * item);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

int strmap_put(strmap *m, const uint8_t *key, size_t len, int64_t value, int64_t *old)
{
    if (2 * (m->count + 1) > m->cap && strmap_grow_slots(m) != 0) return -1;
    uint64_t h = strmap_hash(key, len);
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    for (; m->slots[i]; i = (i + 1) & mask) {
        const strmap_entry *e = &m->entries[m->slots[i] - 1];
        if (strmap_key_eq(m, e, h, key, len)) {
            if (old) *old = e->value;
            return 1;
        }
    }
    if (m->count >= UINT32_MAX - 1 || len > SIZE_MAX - m->keys_len) return -1;
    if (grow((void **)&m->entries, &m->entries_cap, m->count + 1, sizeof *m->entries) != 0 ||
        grow((void **)&m->keys, &m->keys_cap, m->keys_len + len, 1) != 0)
        return -1;
    if (len) memcpy(m->keys + m->keys_len, key, len);
    m->entries[m->count] = (strmap_entry){h, m->keys_len, len, value};
    m->keys_len += len;
    m->slots[i] = (uint32_t)(++m->count);
    return 0;
}

void strmap_clear(strmap *m)
{
    if (m->slots) memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->count = 0;
    m->keys_len = 0;
}

void strmap_free(strmap *m)
{
    free(m->slots);
    free(m->entries);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

size_t strmap_bytes(const strmap *m)
{
    return m->cap * sizeof *m->slots + m->entries_cap * sizeof *m->entries + m->keys_cap;
}

int pairmap_init(pairmap *m, size_t expected)
{
    size_t cap = 16;
    while (cap < 2 * expected) {
        if (cap > SIZE_MAX / 2 / sizeof *m->slots) return -1;
        cap *= 2;
    }
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return -1;
    for (size_t i = 0; i < cap; i++) m->slots[i].value = -1;
    m->cap = cap;
    m->count = 0;
    return 0;
}

int pairmap_put(pairmap *m, int32_t a, int32_t b, int32_t value, int32_t *old)
{
    if (m->count + 1 >= m->cap) return -1;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t mask = m->cap - 1, i = (size_t)pairmap_mix(key) & mask;
    for (; m->slots[i].value >= 0; i = (i + 1) & mask)
        if (m->slots[i].key == key) {
            if (old) *old = m->slots[i].value;
            return 1;
        }
    m->slots[i].key = key;
    m->slots[i].value = value;
    m->count++;
    return 0;
}

void pairmap_free(pairmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}
