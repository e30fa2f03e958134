/* The dataset behind rw_dataset: n samples of `features` values (sample-
 * major) and one label each. IDX pixels stay the file's bytes, read as
 * byte / 255 in [0, 1] (a quarter of the memory and of the traffic of
 * floats); tabular features (CSV, .npy) are any finite floats, as the file
 * gives them. Batching into the [feature][batch] layout happens in the
 * trainer, which owns the buffers. */
#ifndef RW_DATA_DATASET_H
#define RW_DATA_DATASET_H

#include <stdint.h>

#include "rewire.h"

struct rw_dataset {
    int n, features, classes;
    /* The features: bytes [n][features] read as byte / 255 (IDX pixels),
     * or else x [n][features]. A bytes dataset gets x too only when asked
     * for floats (rw_dataset_arrays), holding the same values. */
    uint8_t *bytes;
    float *x;
    /* Sample i's features are stored row row_of[i] of bytes (or x); NULL:
     * row i. rw_dataset_load_part shuffles and splits the training set
     * through this index instead of moving the rows it loaded, which may
     * be a read-only mapping of a cache file. Set on byte datasets only. */
    int *row_of; /* [n] or NULL */
    /* A read-only file mapping that holds bytes (unmapped with the
     * dataset, never written or freed as memory), or NULL. */
    void *file_map;
    size_t file_map_len;
    uint8_t *y; /* [n], in sample order */
    /* How often each byte value occurs among the features of a bytes
     * dataset, when known (counted): the training set's mean and
     * deviation come from it. A cached split carries the counts of the
     * whole file, so that they are not counted again on every run. */
    uint64_t byte_count[256];
    int counted;
    char **class_names; /* [classes] malloc'ed strings, or NULL (class k is label k) */
};

/* The float a feature byte stands for, (float)v / 255 exactly as a
 * division gives it: [256] entries. */
extern const float dataset_byte_value[256];

/* Where a run of samples lies: rows of floats or of bytes (one of the
 * two is NULL), `features` values apart; sample i of the run is row
 * row_of[i] of them, or row i when row_of is NULL. */
typedef struct {
    const float *x;
    const uint8_t *bytes;
    int features;
    const int *row_of;
} sample_rows;

/* The rows of d from sample `first` on. */
sample_rows dataset_rows(const rw_dataset *d, int first);

/* d->byte_count for a bytes dataset, counted now unless known. */
void dataset_count_bytes(rw_dataset *d);

/* Copies the features of samples [first, first + n) of d, in sample
 * order, into dst (n rows of bytes or of floats, as d stores them). */
void dataset_copy_samples(const rw_dataset *d, int first, int n, void *dst);

/* A dataset of n samples (n may be 0) whose x (aligned, not zeroed) and y
 * the caller fills whole; class_names NULL. */
rw_status dataset_alloc(int n, int features, int classes, rw_dataset **out);

/* As dataset_alloc, with bytes instead of x. */
rw_status dataset_alloc_bytes(int n, int features, int classes, rw_dataset **out);

/* Gives d a copy of names[0..d->classes) (d must have none yet). */
rw_status dataset_set_class_names(rw_dataset *d, const char *const *names);

/* A 64-bit hash of the sample count, features, classes, every feature,
 * every label and the class names (when there are any): a checkpoint
 * records it so that a resumed run can tell it is given other data. Never
 * 0. Version 2 hashes eight lanes at once over the stored bytes (about 50
 * times faster than version 1 on Fashion-MNIST); version 1, one float at a
 * time, is kept for checkpoints written before version 2. */
#define DATASET_FINGERPRINT_VERSION 2
uint64_t dataset_fingerprint(const rw_dataset *d, int version);

#endif
