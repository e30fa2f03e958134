/* Grow criteria: which k absent positions of a layer a topology update
 * fills. Chosen positions are never already stored; a layer with fewer
 * than k absent positions gets all of them. Positions are row-major
 * (row * cols + col), in no particular order (topology_insert sorts).
 * `closed` ([cols], or NULL for none) marks input columns closed to growth
 * (input-level DST, sparsity/input_select.h): nonzero entries are never
 * chosen, and count as neither stored nor absent. */
#ifndef RW_SPARSITY_GROW_H
#define RW_SPARSITY_GROW_H

#include <stdint.h>

#include "core/csr.h"
#include "core/rng.h"
#include "nn/param.h"
#include "rewire.h"

/* Per-thread buffers kept between updates (so that an update does not
 * fault in fresh pages); zero-initialise, free with grow_scratch_free. */
typedef struct {
    int threads;
    float **buf;    /* [threads][buf_cap] */
    void **cand;    /* [threads][2 · cand_cap] candidate positions */
    size_t buf_cap;
    int cand_cap;
    float *sorted; /* [sorted_cap]: pre's rows in norm order */
    size_t sorted_cap;
} grow_scratch;

void grow_scratch_free(grow_scratch *s);

/* k positions uniformly at random among the absent ones (SET, MEST).
 * Returns how many were chosen, or -1 when out of memory. */
int grow_random(const csr_matrix *w, int k, rng_state *r, int64_t *pos, const uint8_t *closed);

/* The k absent positions (o, i) with the largest |sum_b post[o][b] ·
 * pre[i][b]|, b over kdim columns: post is [rows][kdim], pre [cols][kdim].
 * With post = dL/dz and pre = the layer's input this is the dense weight
 * gradient dY·Xᵀ (RigL); with activations, their co-activation (Hebbian).
 * Computed in blocks of rows into a small buffer with CBLAS, keeping a
 * bounded list of the best k per thread: memory O(k + block · cols +
 * cols · kdim), never rows × cols. Rows and columns go in decreasing order
 * of norm, and those whose Cauchy–Schwarz bound cannot reach the k best
 * are skipped, which changes nothing in the result. Ties go to the lower
 * position, so the chosen set does not depend on the thread count. Returns how many were chosen, or -1 when out
 * of memory. If `values` is not NULL it receives each chosen score.
 * `scratch` may be NULL (buffers are then allocated for this call). */
int grow_top_outer(const csr_matrix *w, const float *post, const float *pre, int kdim, int k,
                   int64_t *pos, float *values, grow_scratch *scratch, const uint8_t *closed);

/* ---- Grow criteria as units --------------------------------------------
 * A criterion is a choose function over what one topology update knows
 * about a weight, plus what it needs kept between updates. Adding one is a
 * small file with its `grow_criterion` and a line in grow_criteria.c. */

/* Recent batches a criterion keeps (dst.c captures them after the steps
 * before an update): none, the input with the output gradient weighted by
 * the momentum's decay per step back (a truncated momentum of dL/dW), or
 * the input and output activations (standardised before the update, so
 * that products are correlations). */
typedef enum { GROW_WINDOW_NONE = 0, GROW_WINDOW_MOMENTUM, GROW_WINDOW_ACTIVATIONS } grow_window;

typedef struct {
    const param *p;        /* the weight: p->csr holds its pattern (before the update) */
    /* The batch just trained on: input [cols][bp], gradient at the output
     * [rows][bp] (zeros in padding columns), output activations [rows][bp]. */
    const float *x, *dy, *y;
    int bp, n;             /* padded and valid columns of that batch */
    /* The window (GROW_WINDOW_*): pre [cols][win_cols], post [rows][win_cols]. */
    const float *win_pre, *win_post;
    int win_cols;
    rng_state *rng;        /* this layer's stream for this update */
    grow_scratch *scratch; /* this thread's buffers */
    const uint8_t *closed; /* [cols] input columns closed to growth, or NULL */
} grow_input;

typedef struct {
    rw_grow_criterion id;
    const char *name;      /* as the CLI and logs spell it */
    grow_window window;
    /* Chooses at most k absent positions (row · cols + col) into pos;
     * returns how many, or -1 when out of memory. */
    int (*choose)(const grow_input *in, int k, int64_t *pos);
} grow_criterion;

/* The criterion with this id, or NULL. */
const grow_criterion *grow_criterion_get(rw_grow_criterion id);

#endif
