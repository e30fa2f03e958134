/* Drop criteria: which k stored weights of a layer a topology update
 * removes. Each criterion is a score per stored weight, the k lowest
 * removed (SET scores each sign separately). */
#ifndef RW_SPARSITY_DROP_H
#define RW_SPARSITY_DROP_H

#include "core/csr.h"
#include "core/rng.h"
#include "rewire.h"

typedef struct {
    rw_drop_criterion kind;
    const csr_matrix *w;
    const float *grad; /* [nnz] gradient of the stored weights (MEST) */
    float lambda;      /* MEST: weight of |grad| */
    rng_state *rng;    /* RW_DROP_RANDOM */
} drop_input;

/* Marks (drop[k] = 1) exactly min(k, nnz) entries of in->w; returns the
 * number marked, or -1 when out of memory. */
int drop_select(const drop_input *in, int k, uint8_t *drop);

#endif
