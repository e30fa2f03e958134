/* Growth toward neurons that rarely fire, the "unfired" growth of
 * "Continual Learning with Dynamic Sparse Training: Exploring Algorithms
 * for Effective Model Updates" (Yildirim et al. 2024): new connections go
 * to the output neurons that were active least on the batch just trained
 * on, so capacity goes where the network is idle rather than where it is
 * already busy. A neuron fires for a sample when its output is above 0.
 *
 * The rows at or below the lowest quarter of firing counts (at least one
 * row) take the k new connections round-robin, least active first, one
 * per row per round, each at an input drawn uniformly among the row's
 * absent ones; rows that fill up drop out, and when all of them have, the
 * quietest of the others join. */
#include <stdlib.h>

#include "sparsity/grow.h"

typedef struct {
    int fired, row;
} row_activity;

static int by_activity(const void *a, const void *b)
{
    const row_activity *x = a, *y = b;
    if (x->fired != y->fired) return x->fired < y->fired ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* Columns of row o a grown connection may take: absent and not closed. */
static int row_room(const csr_matrix *w, int o, int open_cols, const uint8_t *closed)
{
    int stored = 0;
    for (int q = w->indptr[o]; q < w->indptr[o + 1]; q++) stored += !closed || !closed[w->indices[q]];
    return open_cols - stored;
}

static int choose_unfired(const grow_input *in, int k, int64_t *pos)
{
    const csr_matrix *w = in->p->csr;
    const uint8_t *closed = in->closed;
    int open_cols = w->cols;
    for (int c = 0; closed && c < w->cols; c++) open_cols -= closed[c] != 0;
    int n_rows = w->rows > 0 ? w->rows : 1;
    row_activity *rows = malloc(sizeof *rows * (size_t)n_rows);
    int *count = calloc((size_t)n_rows, sizeof(int)), *room = malloc(sizeof(int) * (size_t)n_rows);
    if (!rows || !count || !room) {
        free(rows);
        free(count);
        free(room);
        return -1;
    }
    for (int o = 0; o < w->rows; o++) {
        const float *y = in->y + (size_t)o * in->bp;
        int fired = 0;
        for (int b = 0; b < in->n; b++) fired += y[b] > 0.0f;
        rows[o] = (row_activity){fired, o};
    }
    qsort(rows, (size_t)w->rows, sizeof *rows, by_activity);
    for (int j = 0; j < w->rows; j++) room[j] = row_room(w, rows[j].row, open_cols, closed);
    int quiet = w->rows / 4 > 0 ? w->rows / 4 : 1;
    while (quiet < w->rows && rows[quiet].fired == rows[quiet - 1].fired) quiet++;
    /* How many each quiet row takes: round-robin up to its absent columns;
     * when the quiet rows are full, the next quietest join them, so the
     * layer regrows all it dropped. */
    int placed = 0;
    while (placed < k) {
        int open = 0;
        for (int j = 0; j < quiet && placed < k; j++) {
            if (count[j] < room[j]) count[j]++, placed++, open = 1;
        }
        if (!open && quiet == w->rows) break;
        if (!open) quiet = 2 * quiet < w->rows ? 2 * quiet : w->rows;
    }
    /* Then each row's inputs by selection sampling over its absent columns. */
    int got = 0;
    for (int j = 0; j < quiet; j++) {
        int o = rows[j].row, q = w->indptr[o], end = w->indptr[o + 1];
        int left = room[j], need = count[j];
        for (int c = 0; c < w->cols && need > 0; c++) {
            if (q < end && w->indices[q] == c) {
                q++;
                continue;
            }
            if (closed && closed[c]) continue;
            if (rng_below(in->rng, (uint64_t)left) < (uint64_t)need)
                pos[got++] = (int64_t)o * w->cols + c, need--;
            left--;
        }
    }
    free(rows);
    free(count);
    free(room);
    return got;
}

const grow_criterion grow_unfired = {RW_GROW_UNFIRED, "unfired", GROW_WINDOW_NONE, choose_unfired};
