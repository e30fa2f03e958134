#include "core/nm.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

rw_status nm_alloc(nm_matrix *w, int rows, int cols, int n, int m)
{
    memset(w, 0, sizeof *w);
    if (m < 1 || m > NM_MAX_M || n < 1 || n > m)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "N:M pattern %d:%d needs 1 <= N <= M <= %d", n, m,
                       NM_MAX_M);
    if (rows < 0 || cols < 0 || cols % m != 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "N:M pattern %d:%d needs the input size to be a multiple of %d, got %d", n, m,
                       m, cols);
    size_t slots = (size_t)rows * (size_t)(cols / m) * (size_t)n;
    w->rows = rows;
    w->cols = cols;
    w->n = n;
    w->m = m;
    w->groups = cols / m;
    w->values = rw_alloc(sizeof(float) * slots);
    w->offsets = rw_alloc(slots);
    if (!w->values || !w->offsets) {
        nm_free(w);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for a %d x %d %d:%d matrix", rows, cols, n, m);
    }
    for (size_t k = 0; k < slots; k++) w->offsets[k] = (uint8_t)(k % (size_t)n);
    return RW_OK;
}

void nm_free(nm_matrix *w)
{
    rw_free(w->values);
    rw_free(w->offsets);
    memset(w, 0, sizeof *w);
}

void nm_from_dense_magnitude(nm_matrix *w, const float *dense)
{
    int n = w->n, m = w->m;
    for (int o = 0; o < w->rows; o++)
        for (int g = 0; g < w->groups; g++) {
            const float *group = dense + (size_t)o * w->cols + (size_t)g * m;
            /* Choose the n largest by repeated selection: m is small. */
            unsigned char taken[NM_MAX_M] = {0};
            for (int j = 0; j < n; j++) {
                int best = -1;
                for (int i = 0; i < m; i++)
                    if (!taken[i] && (best < 0 || fabsf(group[i]) > fabsf(group[best]))) best = i;
                taken[best] = 1;
            }
            size_t k = ((size_t)o * w->groups + g) * n;
            for (int i = 0; i < m; i++)
                if (taken[i]) {
                    w->offsets[k] = (uint8_t)i;
                    w->values[k++] = group[i];
                }
        }
}

void nm_to_dense(const nm_matrix *w, float *dense)
{
    memset(dense, 0, sizeof(float) * (size_t)w->rows * w->cols);
    for (int o = 0; o < w->rows; o++)
        for (int g = 0; g < w->groups; g++)
            for (int j = 0; j < w->n; j++) {
                size_t k = ((size_t)o * w->groups + g) * w->n + j;
                dense[(size_t)o * w->cols + (size_t)g * w->m + w->offsets[k]] = w->values[k];
            }
}

rw_status nm_validate(const nm_matrix *w, const char *what)
{
    for (int o = 0; o < w->rows; o++)
        for (int g = 0; g < w->groups; g++)
            for (int j = 0; j < w->n; j++) {
                size_t k = ((size_t)o * w->groups + g) * w->n + j;
                int off = w->offsets[k];
                if (off >= w->m)
                    return rw_fail(RW_ERR_FORMAT, "%s: offset %d in row %d, group %d is not below M = %d",
                                   what, off, o, g, w->m);
                if (j > 0 && off <= w->offsets[k - 1])
                    return rw_fail(RW_ERR_FORMAT,
                                   "%s: offsets in row %d, group %d are not strictly increasing",
                                   what, o, g);
                if (!isfinite(w->values[k]))
                    return rw_fail(RW_ERR_FORMAT, "%s: value %zu is not finite", what, k);
            }
    return RW_OK;
}

int64_t nm_weight_bytes(const nm_matrix *w)
{
    return (int64_t)w->rows * w->groups * w->n * (int64_t)(sizeof(float) + 1);
}
