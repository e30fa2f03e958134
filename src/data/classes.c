/* Renumbering a dataset's classes to a list of class names: a CSV file's
 * classes are the distinct labels it holds, so a test file that lacks one
 * of the training file's labels (or a model's) numbers the others
 * differently. Names that are both numbers are compared as numbers ("1"
 * and "1.0" are one class), as the CSV loader compares labels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/csv_reader.h"
#include "data/dataset.h"

/* 1 if the two class names are one label. */
static int same_label(const char *a, const char *b)
{
    double x, y;
    if (csv_number(a, &x) && csv_number(b, &y)) return x == y;
    return strcmp(a, b) == 0;
}

/* The names, quoted, for a message: "a", "b", ... cut after about 200
 * bytes. cap must be above 220. */
static void list_names(char *buf, size_t cap, const char *const *names, int n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int j = 0; j < n; j++) {
        if (used > 200) {
            snprintf(buf + used, cap - used, ", ...");
            return;
        }
        int w = snprintf(buf + used, cap - used, "%s\"%.80s\"", j ? ", " : "", names[j]);
        if (w < 0 || (size_t)w >= cap - used) return;
        used += (size_t)w;
    }
}

rw_status rw_dataset_align_classes(const rw_dataset *d, const char *const *names, int n_names,
                                   rw_dataset **out)
{
    if (!out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_align_classes: out is NULL");
    *out = NULL;
    if (!d || !names || n_names < 1 || n_names > RW_MAX_CLASSES)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "rw_dataset_align_classes: needs a dataset and 1 to %d class names",
                       RW_MAX_CLASSES);
    for (int j = 0; j < n_names; j++)
        if (!names[j]) return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_dataset_align_classes: name %d is NULL", j);
    int map[RW_MAX_CLASSES];
    for (int k = 0; k < d->classes; k++) {
        char number[16];
        snprintf(number, sizeof number, "%d", k);
        const char *name = d->class_names ? d->class_names[k] : number;
        map[k] = -1;
        for (int j = 0; j < n_names && map[k] < 0; j++)
            if (same_label(name, names[j])) map[k] = j;
        if (map[k] >= 0) continue;
        /* A class no sample has (an .npy's labels skip it) needs no place. */
        int used = 0;
        for (int i = 0; i < d->n && !used; i++) used = d->y[i] == k;
        if (!used) continue;
        char known[320];
        list_names(known, sizeof known, names, n_names);
        return rw_fail(RW_ERR_FORMAT, "label \"%s\" is not one of the %d classes %s", name, n_names,
                       known);
    }
    rw_dataset *a;
    rw_status st = d->bytes ? dataset_alloc_bytes(d->n, d->features, n_names, &a)
                            : dataset_alloc(d->n, d->features, n_names, &a);
    if (st != RW_OK) return st;
    dataset_copy_samples(d, 0, d->n, a->bytes ? (void *)a->bytes : (void *)a->x);
    for (int i = 0; i < d->n; i++) a->y[i] = (uint8_t)map[d->y[i]];
    if ((st = dataset_set_class_names(a, names)) != RW_OK) {
        rw_dataset_free(a);
        return st;
    }
    *out = a;
    return RW_OK;
}
