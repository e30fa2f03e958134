/* libFuzzer harness for the .npy loader (data/npy.c, data/npy_header.c):
 * any pair of files must either load into a dataset of finite features and
 * labels below its class count, or fail with a message naming one of the
 * files. The first two bytes (little-endian) give the length of the
 * features file, taken from what follows (all of it if shorter); the rest
 * is the labels file. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/npy.h"

#define X_NAME "x.npy"
#define Y_NAME "y.npy"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t x_len = (size_t)data[0] | (size_t)data[1] << 8;
    if (x_len > size - 2) x_len = size - 2;
    const uint8_t *x = data + 2, *y = x + x_len;
    size_t y_len = size - 2 - x_len;

    rw_dataset *d = NULL;
    rw_status st = npy_load_memory(X_NAME, x, x_len, Y_NAME, y, y_len, &d);
    if (st != RW_OK) {
        const char *msg = rw_last_error();
        if (d || (strncmp(msg, X_NAME, strlen(X_NAME)) != 0 && strncmp(msg, Y_NAME, strlen(Y_NAME)) != 0))
            abort();
        return 0;
    }
    if (d->n < 1 || d->features < 1 || d->classes < 1 || d->classes > RW_MAX_CLASSES || d->class_names)
        abort();
    for (size_t i = 0; i < (size_t)d->n * (size_t)d->features; i++)
        if (!isfinite(d->x[i])) abort();
    int top = 0;
    for (int i = 0; i < d->n; i++)
        if (d->y[i] > top) top = d->y[i];
    /* Labels are kept: the class count is the largest label + 1. */
    if (top + 1 != d->classes) abort();
    rw_dataset_free(d);
    return 0;
}
