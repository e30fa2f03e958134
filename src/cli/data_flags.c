#include "cli/data_flags.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"

enum { DATA_IDX, DATA_CSV, DATA_NPY };

void data_flags_init(data_flags *f)
{
    memset(f, 0, sizeof *f);
    f->data = "fashion-mnist";
    f->test_split = -1;
    f->split_seed = 1;
}

arg_spec data_flags_data_spec(data_flags *f)
{
    arg_spec s = {"data", ARG_STRING, &f->data, "PATH",
                  "'fashion-mnist', 'mnist', a folder of IDX files, a CSV file, or a .npy file of "
                  "features (with --labels) (default fashion-mnist)", NULL, 0, 0};
    return s;
}

void data_flags_tabular_specs(data_flags *f, arg_spec *s)
{
    arg_spec specs[DATA_TABULAR_FLAG_COUNT] = {
        {"labels", ARG_STRING, &f->labels, "Y.npy",
         "the labels of a .npy --data: integers, one per sample", NULL, 0, 0},
        {"test-data", ARG_STRING, &f->test_data, "PATH",
         "a CSV or .npy file of test samples for a CSV or .npy --data (default: a --test-split "
         "of --data)", NULL, 0, 0},
        {"test-labels", ARG_STRING, &f->test_labels, "Y.npy", "the labels of a .npy --test-data",
         NULL, 0, 0},
        {"test-split", ARG_DOUBLE, &f->test_split, "F",
         "hold out this seeded fraction of a CSV or .npy --data as the test set (default 0.2)",
         NULL, 0, 0.9},
        {"split-seed", ARG_INT, &f->split_seed, "N",
         "seed of --test-split, apart from --seed so that runs of several seeds share one test "
         "set (default 1)", NULL, 0, 2147483647.0},
        {"skip-rows", ARG_INT, &f->skip_rows, "N",
         "CSV: lines to skip before the header or the first row (default 0)", NULL, 0,
         2147483647.0},
        {"label-column", ARG_STRING, &f->label_column, "NAME|INDEX",
         "CSV: the label column by header name or 0-based index, negative from the end "
         "(default -1, the last)", NULL, 0, 0},
    };
    memcpy(s, specs, sizeof specs);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* An IDX folder (by name or because it is one), a .npy file, or CSV. */
static int data_kind(const char *path)
{
    struct stat sb;
    if (strcmp(path, "fashion-mnist") == 0 || strcmp(path, "mnist") == 0) return DATA_IDX;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return DATA_IDX;
    if (ends_with(path, ".npy") || ends_with(path, ".npy.gz")) return DATA_NPY;
    return DATA_CSV;
}

int data_flags_idx(const data_flags *f) { return data_kind(f->data) == DATA_IDX; }

int data_flags_check(const data_flags *f, const char *command)
{
    int kind = data_kind(f->data);
    const char *why = NULL;
    char buf[256];
    if (kind == DATA_IDX) {
        if (f->labels || f->test_data || f->test_labels || f->test_split >= 0 || f->skip_rows ||
            f->label_column)
            why = "--labels, --test-data, --test-labels, --test-split, --skip-rows and "
                  "--label-column are for a CSV or .npy --data, not an IDX folder (which has its "
                  "own test split)";
    } else if (kind == DATA_NPY && !f->labels) {
        snprintf(buf, sizeof buf, "a .npy --data (%s) needs --labels Y.npy", f->data);
        why = buf;
    } else if (kind == DATA_CSV && f->labels) {
        why = "--labels is for a .npy --data; a CSV file holds its labels (--label-column)";
    } else if (f->test_data && f->test_split >= 0) {
        why = "give --test-data or --test-split, not both";
    } else if (f->test_split == 0) {
        why = "--test-split must be above 0 (the test set would be empty)";
    } else if (f->test_data && data_kind(f->test_data) == DATA_NPY && !f->test_labels) {
        snprintf(buf, sizeof buf, "a .npy --test-data (%s) needs --test-labels Y.npy",
                 f->test_data);
        why = buf;
    } else if (f->test_labels && (!f->test_data || data_kind(f->test_data) != DATA_NPY)) {
        why = "--test-labels is for a .npy --test-data";
    } else if (f->test_data && data_kind(f->test_data) == DATA_IDX) {
        why = "--test-data must be a CSV or .npy file";
    }
    if (!why) return 0;
    fprintf(stderr, "rewire %s: %s\n(see 'rewire %s --help')\n", command, why, command);
    return 2;
}

/* The CSV options of the flags: the label column by index when the flag
 * is an integer, else by name. */
static rw_csv_options csv_options(const data_flags *f)
{
    rw_csv_options o = rw_csv_options_default();
    o.skip_rows = f->skip_rows;
    if (f->label_column) {
        char *end;
        errno = 0;
        long v = strtol(f->label_column, &end, 10);
        if (end != f->label_column && *end == '\0' && errno == 0 && v >= -1000000 && v <= 1000000)
            o.label_index = (int)v;
        else
            o.label_name = f->label_column;
    }
    return o;
}

static int load_file(const data_flags *f, const char *path, const char *labels, const char *command,
                     rw_dataset **out)
{
    rw_csv_options o = csv_options(f);
    rw_status st = data_kind(path) == DATA_NPY ? rw_dataset_load_npy(path, labels, out)
                                               : rw_dataset_load_csv(path, &o, out);
    return st == RW_OK ? 0 : report_failure(command);
}

/* The class names of d as an array of pointers into it (NULL when it has
 * none); free() the array. */
static const char **class_names(const rw_dataset *d)
{
    int n = rw_dataset_classes(d);
    if (n < 1 || !rw_dataset_class_name(d, 0)) return NULL;
    const char **names = malloc(sizeof *names * (size_t)n);
    for (int k = 0; names && k < n; k++) names[k] = rw_dataset_class_name(d, k);
    return names;
}

/* Replaces *d by its copy with the classes `names` (n of them); `path`
 * names d's file and `of` where the names come from, in the message. */
static int align(rw_dataset **d, const char *const *names, int n, const char *path, const char *of,
                 const char *command)
{
    rw_dataset *a;
    if (rw_dataset_align_classes(*d, names, n, &a) != RW_OK) {
        fprintf(stderr, "rewire %s: %s: %s of %s\n", command, path, rw_last_error(), of);
        return 1;
    }
    rw_dataset_free(*d);
    *d = a;
    return 0;
}

/* The test file, with the features and classes of the training file. */
static int load_test_file(const data_flags *f, const rw_dataset *train, const char *command,
                          rw_dataset **out)
{
    if (load_file(f, f->test_data, f->test_labels, command, out)) return 1;
    if (rw_dataset_features(*out) != rw_dataset_features(train)) {
        fprintf(stderr, "rewire %s: %s: %d features, but the training data %s has %d\n", command,
                f->test_data, rw_dataset_features(*out), f->data, rw_dataset_features(train));
        return 1;
    }
    const char **names = class_names(train);
    int rc = 0;
    if (names) {
        char of[4096];
        snprintf(of, sizeof of, "the training data %s", f->data);
        rc = align(out, names, rw_dataset_classes(train), f->test_data, of, command);
    } else if (rw_dataset_classes(*out) > rw_dataset_classes(train)) {
        fprintf(stderr, "rewire %s: %s: labels up to %d, but the training data %s has labels up "
                        "to %d\n", command, f->test_labels ? f->test_labels : f->test_data,
                rw_dataset_classes(*out) - 1, f->labels ? f->labels : f->data,
                rw_dataset_classes(train) - 1);
        rc = 1;
    }
    free(names);
    return rc;
}

/* Replaces *d by its first n samples (n > 0). */
static int keep_head(rw_dataset **d, int n, const char *command)
{
    rw_dataset *h;
    if (rw_dataset_head(*d, n, &h) != RW_OK) return report_failure(command);
    rw_dataset_free(*d);
    *d = h;
    return 0;
}

/* A tabular --data split into its training and test parts. */
static int load_tabular(const data_flags *f, const char *command, rw_dataset **train,
                        rw_dataset **test)
{
    rw_dataset *all = NULL;
    *train = *test = NULL;
    if (load_file(f, f->data, f->labels, command, &all)) return 1;
    if (f->test_data) {
        *train = all;
        return load_test_file(f, all, command, test);
    }
    double split = f->test_split > 0 ? f->test_split : DATA_DEFAULT_TEST_SPLIT;
    rw_status st = rw_dataset_split_fraction(all, split, (uint64_t)f->split_seed, train, test);
    rw_dataset_free(all);
    return st == RW_OK ? 0 : report_failure(command);
}

int data_load(const data_flags *f, const char *command, int train_limit, int test_limit,
              double val_fraction, uint64_t val_seed, rw_dataset **train, rw_dataset **val,
              rw_dataset **test)
{
    *train = *val = *test = NULL;
    if (data_flags_idx(f)) {
        /* As rewire train always loaded IDX folders: the same samples in
         * the same order. */
        if (rw_dataset_load_part(f->data, 0, train_limit, val_fraction, val_seed, train, val) !=
            RW_OK)
            return report_failure(command);
        if (rw_dataset_load_part(f->data, 1, test_limit, 0.0, 0, test, NULL) == RW_OK) return 0;
    } else {
        rw_dataset *all = NULL;
        int rc = load_tabular(f, command, &all, test);
        if (!rc && train_limit > 0) rc = keep_head(&all, train_limit, command);
        if (!rc && test_limit > 0) rc = keep_head(test, test_limit, command);
        if (!rc && val_fraction > 0) {
            if (rw_dataset_split_fraction(all, val_fraction, val_seed, train, val) != RW_OK)
                rc = report_failure(command);
            rw_dataset_free(all);
        } else {
            *train = all;
        }
        if (!rc) return 0;
    }
    rw_dataset_free(*train);
    rw_dataset_free(*val);
    rw_dataset_free(*test);
    *train = *val = *test = NULL;
    return 1;
}

int data_load_one(const data_flags *f, const char *command, int test, const char *class_names_json,
                  rw_dataset **out)
{
    *out = NULL;
    if (data_flags_idx(f)) return rw_dataset_load(f->data, test, out) == RW_OK ? 0 : report_failure(command);
    if (test && f->test_data) {
        /* Only the test file: its classes are the model's. */
        if (load_file(f, f->test_data, f->test_labels, command, out)) return 1;
    } else {
        rw_dataset *train = NULL, *held = NULL;
        if (load_tabular(f, command, &train, &held)) {
            rw_dataset_free(train);
            rw_dataset_free(held);
            return 1;
        }
        *out = test ? held : train;
        rw_dataset_free(test ? train : held);
    }
    if (!class_names_json) return 0;
    /* The model's classes, which the file may number otherwise. */
    json_error_t err;
    json_t *arr = json_loads(class_names_json, 0, &err);
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    const char **names = n ? malloc(sizeof *names * n) : NULL;
    int ok = names != NULL;
    for (size_t k = 0; ok && k < n; k++) ok = (names[k] = json_string_value(json_array_get(arr, k))) != NULL;
    int rc = 0;
    if (ok)
        rc = align(out, names, (int)n, test && f->test_data ? f->test_data : f->data,
                   "the model", command);
    else
        fprintf(stderr, "rewire %s: warning: the model's class_names are not a JSON array of "
                        "strings; its classes are taken as the data's\n", command);
    free(names);
    json_decref(arr);
    if (rc) {
        rw_dataset_free(*out);
        *out = NULL;
    }
    return rc;
}

char *data_class_names_json(const rw_dataset *d)
{
    if (!rw_dataset_class_name(d, 0)) return NULL;
    json_t *arr = json_array();
    for (int k = 0; arr && k < rw_dataset_classes(d); k++)
        json_array_append_new(arr, json_string(rw_dataset_class_name(d, k)));
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    /* rw_model_set_info keeps values under 4096 bytes. */
    if (s && strlen(s) >= 4096) {
        free(s);
        s = NULL;
    }
    return s;
}
