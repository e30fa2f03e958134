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

static void free_transpose(nm_matrix *w)
{
    rw_free(w->t_start);
    rw_free(w->t_col);
    rw_free(w->t_rows);
    rw_free(w->t_slot);
    rw_free(w->t_rows16);
    w->t_start = w->t_col = w->t_rows = w->t_slot = NULL;
    w->t_rows16 = NULL;
}

void nm_free(nm_matrix *w)
{
    rw_free(w->values);
    rw_free(w->offsets);
    free_transpose(w);
    memset(w, 0, sizeof *w);
}

/* Sparser than half: see nm_prepare_backward. */
static int uses_transpose(int n, int m) { return 2 * n < m; }

int64_t nm_memory_bytes(int64_t rows, int64_t cols, int n, int m)
{
    int64_t slots = rows * (cols / m) * n, bytes = slots * (int64_t)(sizeof(float) + 1);
    if (uses_transpose(n, m)) /* column starts and columns; per slot a row, a slot, the 16-bit row */
        bytes += 4 * (cols + 1) + 4 * cols + slots * (rows <= 65536 ? 10 : 8);
    return bytes;
}

rw_status nm_prepare_backward(nm_matrix *w)
{
    return uses_transpose(w->n, w->m) ? nm_build_transpose(w) : RW_OK;
}

rw_status nm_build_transpose(nm_matrix *w)
{
    free_transpose(w);
    size_t slots = (size_t)w->rows * (size_t)w->groups * (size_t)w->n;
    int per_row = w->groups * w->n;
    w->t_start = rw_alloc(sizeof(int32_t) * ((size_t)w->cols + 1));
    w->t_col = rw_alloc(sizeof(int32_t) * (size_t)w->cols);
    w->t_rows = rw_alloc(sizeof(int32_t) * (slots + 1));
    w->t_slot = rw_alloc(sizeof(int32_t) * (slots + 1));
    if (w->rows <= 65536) w->t_rows16 = rw_alloc(sizeof(uint16_t) * (slots + 1));
    int32_t *next = rw_alloc(sizeof(int32_t) * ((size_t)w->cols + 1));
    if (!w->t_start || !w->t_col || !w->t_rows || !w->t_slot || (w->rows <= 65536 && !w->t_rows16) || !next) {
        free_transpose(w);
        rw_free(next);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for the transposed view of a %d x %d %d:%d matrix",
                       w->rows, w->cols, w->n, w->m);
    }
    /* Counting sort by position (offset-major, see core/nm.h); rows are
     * scattered in increasing order, so each column's rows stay sorted
     * (the reference's summation order). */
    int32_t *ts = w->t_start;
    int m = w->m, groups = w->groups;
#define POSITION(c) ((c) % m * groups + (c) / m)
    for (int c = 0; c < w->cols; c++) w->t_col[POSITION(c)] = c;
    memset(ts, 0, sizeof(int32_t) * ((size_t)w->cols + 1));
    for (int o = 0; o < w->rows; o++)
        for (int j = 0; j < per_row; j++)
            ts[POSITION(nm_slot_input(j, w->n, m, w->offsets + (size_t)o * per_row)) + 1]++;
    for (int q = 0; q < w->cols; q++) ts[q + 1] += ts[q];
    memcpy(next, ts, sizeof(int32_t) * (size_t)w->cols);
    for (int o = 0; o < w->rows; o++)
        for (int j = 0; j < per_row; j++) {
            size_t k = (size_t)o * per_row + j;
            int dst = next[POSITION(nm_slot_input(j, w->n, m, w->offsets + (size_t)o * per_row))]++;
            w->t_rows[dst] = o;
            w->t_slot[dst] = (int32_t)k;
            if (w->t_rows16) w->t_rows16[dst] = (uint16_t)o;
        }
#undef POSITION
    rw_free(next);
    return RW_OK;
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
