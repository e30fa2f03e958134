/* model_diff A B TOL: exit 0 if two model files hold the same parameters
 * with identical patterns (CSR indptr and indices, N:M offsets) and values
 * within TOL of each other; prints the largest difference. Exit 1 with
 * the first difference otherwise, 2 on bad arguments or files. Used by
 * dist_test.sh to hold a data-parallel run against one process. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewire.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: model_diff A.safetensors B.safetensors TOLERANCE\n");
        return 2;
    }
    char *end;
    double tol = strtod(argv[3], &end);
    if (*end || !(tol >= 0)) {
        fprintf(stderr, "model_diff: tolerance '%s' is not a number >= 0\n", argv[3]);
        return 2;
    }
    rw_model *a = NULL, *b = NULL;
    if (rw_model_load(argv[1], &a) != RW_OK || rw_model_load(argv[2], &b) != RW_OK) {
        fprintf(stderr, "model_diff: %s\n", rw_last_error());
        rw_model_free(a);
        return 2;
    }
    int n = rw_model_param_count(a), bad = 0;
    double worst = 0;
    if (n != rw_model_param_count(b)) {
        printf("different parameter counts: %d and %d\n", n, rw_model_param_count(b));
        bad = 1;
    }
    for (int i = 0; i < n && !bad; i++) {
        rw_param_view p, q;
        rw_model_param(a, i, &p);
        rw_model_param(b, i, &q);
        if (strcmp(p.name, q.name) || p.storage != q.storage || p.rows != q.rows ||
            p.cols != q.cols || p.count != q.count) {
            printf("%s: name, storage, shape or count differ (%s, %lld and %lld values)\n", p.name,
                   q.name, (long long)p.count, (long long)q.count);
            bad = 1;
            break;
        }
        if (p.indptr && (memcmp(p.indptr, q.indptr, sizeof(int32_t) * ((size_t)p.rows + 1)) ||
                         memcmp(p.indices, q.indices, sizeof(int32_t) * (size_t)p.count))) {
            printf("%s: the patterns differ\n", p.name);
            bad = 1;
        }
        if (p.offsets && memcmp(p.offsets, q.offsets, (size_t)p.count)) {
            printf("%s: the N:M offsets differ\n", p.name);
            bad = 1;
        }
        for (int64_t k = 0; k < p.count && !bad; k++) {
            double d = fabs((double)p.values[k] - q.values[k]);
            if (!(d <= tol)) {
                printf("%s: value %lld differs: %.9g and %.9g\n", p.name, (long long)k,
                       p.values[k], q.values[k]);
                bad = 1;
            }
            if (d > worst) worst = d;
        }
    }
    if (!bad) printf("same patterns; largest value difference %.3g\n", worst);
    rw_model_free(a);
    rw_model_free(b);
    return bad;
}
