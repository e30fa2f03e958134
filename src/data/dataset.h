/* The dataset behind rw_dataset: n samples of `features` floats in [0, 1]
 * (sample-major) and one label each. Batching into the [feature][batch]
 * layout happens in the trainer, which owns the buffers. */
#ifndef RW_DATA_DATASET_H
#define RW_DATA_DATASET_H

#include <stdint.h>

#include "rewire.h"

struct rw_dataset {
    int n, features, classes;
    float *x;   /* [n][features] */
    uint8_t *y; /* [n] */
};

/* A 64-bit hash of the sample count, features, classes, every feature and
 * every label: a checkpoint records it so that a resumed run can tell it
 * is given other data. Never 0. */
uint64_t dataset_fingerprint(const rw_dataset *d);

#endif
