/* The dataset behind rw_dataset: n samples of `features` floats (sample-
 * major) and one label each. IDX pixels are in [0, 1]; tabular features
 * (CSV, .npy) are any finite floats, as the file gives them. Batching into
 * the [feature][batch] layout happens in the trainer, which owns the
 * buffers. */
#ifndef RW_DATA_DATASET_H
#define RW_DATA_DATASET_H

#include <stdint.h>

#include "rewire.h"

struct rw_dataset {
    int n, features, classes;
    float *x;   /* [n][features] */
    uint8_t *y; /* [n] */
    char **class_names; /* [classes] malloc'ed strings, or NULL (class k is label k) */
};

/* A dataset of n samples (n may be 0) whose x (aligned, not zeroed) and y
 * the caller fills whole; class_names NULL. */
rw_status dataset_alloc(int n, int features, int classes, rw_dataset **out);

/* Gives d a copy of names[0..d->classes) (d must have none yet). */
rw_status dataset_set_class_names(rw_dataset *d, const char *const *names);

/* A 64-bit hash of the sample count, features, classes, every feature,
 * every label and the class names (when there are any): a checkpoint records it so that a resumed run can tell it
 * is given other data. Never 0. */
uint64_t dataset_fingerprint(const rw_dataset *d);

#endif
