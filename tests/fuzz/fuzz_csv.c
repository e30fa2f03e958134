/* libFuzzer harness for the CSV loader (data/csv.c over data/csv_reader.c
 * and data/labels.c): any text must either load into a dataset that keeps
 * the loader's promises or fail with a message naming the file. The first
 * two bytes pick the options, the rest is the file:
 *   byte 0: bits 0-1 header (auto, yes, no, auto), bits 2-3 delimiter
 *           (',', ';', tab, detect), bit 4 label by the name "label";
 *   byte 1: bits 0-3 label index - 8 (-8..7), bits 4-5 skip_rows.
 * A dataset must have finite features, labels below its class count and
 * class names in the promised order: numbers strictly increasing when
 * every name is a finite number, else strings strictly increasing. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/csv.h"
#include "data/dataset.h"

#define NAME "fuzz.csv"

/* 1 if every class name is a finite number (strtod reads it whole). */
static int numeric_names(const rw_dataset *d)
{
    for (int k = 0; k < d->classes; k++) {
        char *end;
        double v = strtod(d->class_names[k], &end);
        if (!*d->class_names[k] || *end || !isfinite(v)) return 0;
    }
    return 1;
}

static void check(const rw_dataset *d)
{
    if (d->n < 1 || d->features < 1 || d->classes < 1 || d->classes > RW_MAX_CLASSES) abort();
    for (size_t i = 0; i < (size_t)d->n * (size_t)d->features; i++)
        if (!isfinite(d->x[i])) abort();
    int *used = calloc((size_t)d->classes, sizeof *used);
    if (!used) return;
    for (int i = 0; i < d->n; i++) {
        if (d->y[i] >= d->classes) abort();
        used[d->y[i]] = 1;
    }
    /* Every class is some row's label. */
    for (int k = 0; k < d->classes; k++)
        if (!used[k] || !rw_dataset_class_name(d, k)) abort();
    free(used);
    int numeric = numeric_names(d);
    for (int k = 1; k < d->classes; k++) {
        const char *a = d->class_names[k - 1], *b = d->class_names[k];
        if (numeric ? !(strtod(a, NULL) < strtod(b, NULL)) : strcmp(a, b) >= 0) abort();
    }
    /* What tabular data goes through next. */
    float *mean = malloc(sizeof(float) * (size_t)d->features), *std = malloc(sizeof(float) * (size_t)d->features);
    if (mean && std && rw_dataset_feature_stats(d, mean, std) != RW_OK) abort();
    free(mean);
    free(std);
    rw_dataset *train = NULL, *test = NULL;
    if (rw_dataset_split_fraction(d, 0.25, 1, &train, &test) == RW_OK) {
        if (train->n + test->n != d->n || (d->classes && !rw_dataset_class_name(test, d->classes - 1))) abort();
    }
    rw_dataset_free(train);
    rw_dataset_free(test);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    rw_csv_options o = rw_csv_options_default();
    const rw_csv_header headers[4] = {RW_CSV_HEADER_AUTO, RW_CSV_HEADER_YES, RW_CSV_HEADER_NO,
                                      RW_CSV_HEADER_AUTO};
    const char delims[4] = {',', ';', '\t', 0};
    o.header = headers[data[0] & 3];
    o.delimiter = delims[(data[0] >> 2) & 3];
    if (data[0] & 16) {
        o.label_name = "label";
        if (o.header == RW_CSV_HEADER_NO) o.header = RW_CSV_HEADER_AUTO;
    }
    o.label_index = (data[1] & 15) - 8;
    o.skip_rows = (data[1] >> 4) & 3;

    rw_dataset *d = NULL;
    rw_status st = csv_load_memory(NAME, (const char *)data + 2, size - 2, &o, &d);
    if (st != RW_OK) {
        if (d || strncmp(rw_last_error(), NAME ": ", strlen(NAME) + 2) != 0) abort();
        return 0;
    }
    check(d);
    rw_dataset_free(d);
    return 0;
}
