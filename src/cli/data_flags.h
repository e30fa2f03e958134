/* Where rewire train and rewire eval take their samples from: an IDX
 * folder ("fashion-mnist", "mnist" or a path), a CSV file, or .npy
 * features with .npy labels; the test set from --test-data or a seeded
 * --test-split of the one file. */
#ifndef RW_CLI_DATA_FLAGS_H
#define RW_CLI_DATA_FLAGS_H

#include "cli/args.h"
#include "rewire.h"

typedef struct {
    const char *data, *labels, *test_data, *test_labels, *label_column;
    int skip_rows, split_seed;
    double test_split; /* -1: not given (0.2 for one tabular file, none for IDX) */
} data_flags;

#define DATA_TABULAR_FLAG_COUNT 7
#define DATA_DEFAULT_TEST_SPLIT 0.2

/* --data fashion-mnist and the rest unset. */
void data_flags_init(data_flags *f);

/* The --data flag, targeting f->data. */
arg_spec data_flags_data_spec(data_flags *f);

/* Fills specs[0 .. DATA_TABULAR_FLAG_COUNT) with the flags of CSV and
 * .npy data (--labels, --test-data, ...), targeting f. */
void data_flags_tabular_specs(data_flags *f, arg_spec *specs);

/* Flags that do not fit together (--labels with a CSV file, --test-split
 * with an IDX folder, ...): 0, or 2 after a message. */
int data_flags_check(const data_flags *f, const char *command);

/* 1 when --data is an IDX folder (the folder's own test split). */
int data_flags_idx(const data_flags *f);

/* The training part (its first train_limit samples when that is > 0,
 * minus a validation part of val_fraction, split off with val_seed) and
 * the test part (its first test_limit). Returns 0, or 1 after printing
 * the library's message (which names the file). */
int data_load(const data_flags *f, const char *command, int train_limit, int test_limit,
              double val_fraction, uint64_t val_seed, rw_dataset **train, rw_dataset **val,
              rw_dataset **test);

/* One split (test: 1) for rewire eval, its classes those named by
 * class_names (a JSON array the model keeps, or NULL). Returns 0, or 1
 * after a message. */
int data_load_one(const data_flags *f, const char *command, int test, const char *class_names,
                  rw_dataset **out);

/* The classes of a tabular dataset as a JSON array of their names, for
 * the model to keep (rw_model_set_info "class_names"); NULL when the data
 * has no names or they do not fit. malloc'ed. */
char *data_class_names_json(const rw_dataset *d);

#endif
