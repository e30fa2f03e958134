/* A string hash set (open addressing, linear probing, FNV-1a) assigning
 * ids in order of first appearance; the classes come from sorting the ids
 * once every row is read, since whether the labels are numbers is known
 * only then. */
#include "data/labels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/csv_reader.h"

void label_set_init(label_set *s)
{
    memset(s, 0, sizeof *s);
    s->all_numeric = 1;
}

void label_set_free(label_set *s)
{
    for (int i = 0; i < s->count; i++) free(s->text[i]);
    free(s->text);
    free(s->value);
    free(s->line);
    free(s->slot);
    memset(s, 0, sizeof *s);
}

static uint32_t fnv1a(const char *t)
{
    uint32_t h = 2166136261u;
    for (; *t; t++) h = (h ^ (uint8_t)*t) * 16777619u;
    return h;
}

/* Rebuilds the table at twice the size (64 slots at first). */
static int label_set_rehash(label_set *s)
{
    unsigned size = s->slot ? 2 * (s->slot_mask + 1) : 64;
    if (size == 0) return 0;
    int *slot = calloc(size, sizeof *slot);
    if (!slot) return 0;
    for (int id = 0; id < s->count; id++) {
        unsigned h = fnv1a(s->text[id]) & (size - 1);
        while (slot[h]) h = (h + 1) & (size - 1);
        slot[h] = id + 1;
    }
    free(s->slot);
    s->slot = slot;
    s->slot_mask = size - 1;
    return 1;
}

static int label_set_grow(label_set *s)
{
    int cap = s->cap ? 2 * s->cap : 64;
    char **text = realloc(s->text, sizeof *text * (size_t)cap);
    if (text) s->text = text;
    double *value = realloc(s->value, sizeof *value * (size_t)cap);
    if (value) s->value = value;
    int *line = realloc(s->line, sizeof *line * (size_t)cap);
    if (line) s->line = line;
    if (!text || !value || !line) return 0;
    s->cap = cap;
    return 1;
}

rw_status label_set_add(label_set *s, const char *name, const char *text, int line, int *id)
{
    /* Keep the table at most half full. */
    if ((!s->slot || (unsigned)s->count >= (s->slot_mask + 1) / 2) && !label_set_rehash(s))
        return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %d distinct labels", name, s->count);
    unsigned h = fnv1a(text) & s->slot_mask;
    for (; s->slot[h]; h = (h + 1) & s->slot_mask)
        if (strcmp(s->text[s->slot[h] - 1], text) == 0) {
            *id = s->slot[h] - 1;
            return RW_OK;
        }
    if (s->count == s->cap && !label_set_grow(s))
        return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %d distinct labels", name, s->count);
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (!copy) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %d distinct labels", name, s->count);
    memcpy(copy, text, len + 1);
    double v = 0.0;
    if (!csv_number(text, &v) || !isfinite(v)) s->all_numeric = 0;
    *id = s->count;
    s->text[*id] = copy;
    s->value[*id] = v;
    s->line[*id] = line;
    s->slot[h] = *id + 1;
    s->count++;
    return RW_OK;
}

typedef struct {
    const label_set *s;
    int id;
} label_ref;

/* Numbers by value, equal values by first appearance. */
static int cmp_value(const void *a, const void *b)
{
    const label_ref *x = a, *y = b;
    double u = x->s->value[x->id], v = y->s->value[y->id];
    if (u != v) return u < v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Strings byte by byte (distinct, so never equal). */
static int cmp_text(const void *a, const void *b)
{
    const label_ref *x = a, *y = b;
    return strcmp(x->s->text[x->id], y->s->text[y->id]);
}

rw_status label_set_classes(const label_set *s, const char *name, int **class_of, int **rep,
                            int *classes)
{
    *class_of = NULL;
    *rep = NULL;
    *classes = 0;
    size_t n = s->count > 0 ? (size_t)s->count : 1;
    label_ref *order = malloc(sizeof *order * n);
    int *of = malloc(sizeof *of * n), *r = malloc(sizeof *r * n);
    if (!order || !of || !r) {
        free(order);
        free(of);
        free(r);
        return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %d distinct labels", name, s->count);
    }
    for (int i = 0; i < s->count; i++) order[i] = (label_ref){s, i};
    qsort(order, (size_t)s->count, sizeof *order, s->all_numeric ? cmp_value : cmp_text);
    int k = -1;
    for (int i = 0; i < s->count; i++) {
        int id = order[i].id;
        /* A new class unless a number equal to the one before; the first
         * of equal numbers (the earliest id) names the class. */
        if (k < 0 || !s->all_numeric || s->value[id] != s->value[r[k]]) r[++k] = id;
        of[id] = k;
    }
    free(order);
    *class_of = of;
    *rep = r;
    *classes = k + 1;
    return RW_OK;
}
