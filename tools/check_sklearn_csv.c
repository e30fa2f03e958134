/* Loads the CSV files scikit-learn ships (Debian's python3-sklearn) with
 * rw_dataset_load_csv and checks their sizes: a check on real files, kept
 * out of ctest because the files are not always there. The first line of
 * each holds sklearn's own counts and class names, so it is skipped; the
 * label is the last column.
 *
 *   cmake --build build && cc -O2 -Iinclude tools/check_sklearn_csv.c build/librewire.a \
 *       $(pkg-config --libs jansson zlib) -lopenblas -fopenmp -lm -o /tmp/check_sklearn_csv
 *   /tmp/check_sklearn_csv [DIR]   # DIR: /usr/lib/python3/dist-packages/sklearn/datasets/data
 *
 * Prints one line per file; exits 1 if any file fails or differs. */
#include <stdio.h>

#include "rewire.h"

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/lib/python3/dist-packages/sklearn/datasets/data";
    const struct {
        const char *file;
        int n, features, classes;
    } want[] = {{"breast_cancer.csv", 569, 30, 2}, {"wine_data.csv", 178, 13, 3}, {"iris.csv", 150, 4, 3}};
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, want[i].file);
        rw_csv_options o = rw_csv_options_default();
        o.skip_rows = 1;
        o.label_index = -1;
        rw_dataset *d;
        if (rw_dataset_load_csv(path, &o, &d) != RW_OK) {
            printf("%s: FAILED: %s\n", want[i].file, rw_last_error());
            bad = 1;
            continue;
        }
        int n = rw_dataset_count(d), f = rw_dataset_features(d), c = rw_dataset_classes(d);
        int ok = n == want[i].n && f == want[i].features && c == want[i].classes;
        float mean[64], std[64];
        rw_dataset_feature_stats(d, mean, std);
        printf("%s: %d x %d, %d classes (", want[i].file, n, f, c);
        for (int k = 0; k < c; k++) printf("%s%s", k ? ", " : "", rw_dataset_class_name(d, k));
        printf("); feature 0 mean %.4f std %.4f; %s\n", mean[0], std[0],
               ok ? "as expected" : "DIFFERS from the expected size");
        bad |= !ok;
        rw_dataset_free(d);
    }
    return bad;
}
