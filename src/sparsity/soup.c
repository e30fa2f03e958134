/* Sparse Model Soups: "Sparse Model Soups: A Recipe for Improved Pruning
 * via Model Averaging" (Zimmer et al. 2023). Train; then `rounds` times:
 * prune the model (the soup of the last round) by magnitude, retrain
 * soup_size copies of the pruned model, each with its own data order and a
 * fresh optimizer state and learning-rate schedule, and average them
 * weight by weight. The copies share the pruned mask (retraining never
 * changes a pattern), so the soup is the mean of their value arrays and
 * keeps the mask. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "sparsity/train_prune.h"

/* The data-order seed of soup member j: distinct for every member. */
static uint64_t member_seed(uint64_t seed, int j)
{
    return seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(j + 1);
}

/* Running sums of the members' weights and biases, in double, member by
 * member in order, so the soup does not depend on anything but them. */
typedef struct {
    int n_layers;
    double **w, **b; /* [n_layers][nnz], [n_layers][out] */
} soup_sum;

static void soup_sum_free(soup_sum *s)
{
    for (int l = 0; l < s->n_layers; l++) {
        if (s->w) free(s->w[l]);
        if (s->b) free(s->b[l]);
    }
    free(s->w);
    free(s->b);
}

static rw_status soup_sum_init(soup_sum *s, const rw_model *m)
{
    int n = m->n_layers;
    s->n_layers = n;
    s->w = calloc((size_t)n, sizeof(double *));
    s->b = calloc((size_t)n, sizeof(double *));
    int ok = s->w && s->b;
    for (int l = 0; l < n && ok; l++) {
        s->w[l] = calloc((size_t)m->layers[l].w.nnz + 1, sizeof(double));
        s->b[l] = calloc((size_t)m->layers[l].out, sizeof(double));
        ok = s->w[l] && s->b[l];
    }
    if (!ok) {
        soup_sum_free(s);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for a model soup");
    }
    return RW_OK;
}

static rw_status soup_add(soup_sum *s, const rw_model *mask, const rw_model *member)
{
    for (int l = 0; l < s->n_layers; l++) {
        const csr_matrix *a = &mask->layers[l].w, *b = &member->layers[l].w;
        if (a->nnz != b->nnz ||
            memcmp(a->indices, b->indices, sizeof(int32_t) * (size_t)a->nnz) != 0 ||
            memcmp(a->indptr, b->indptr, sizeof(int32_t) * ((size_t)a->rows + 1)) != 0)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "soup member: fc%d's mask differs", l + 1);
        for (int k = 0; k < b->nnz; k++) s->w[l][k] += b->values[k];
        for (int o = 0; o < member->layers[l].out; o++) s->b[l][o] += member->layers[l].bias[o];
    }
    return RW_OK;
}

/* m's values and biases become the mean of the k members added. */
static void soup_finish(const soup_sum *s, rw_model *m, int k)
{
    for (int l = 0; l < s->n_layers; l++) {
        layer *ly = &m->layers[l];
        for (int q = 0; q < ly->w.nnz; q++) ly->w.values[q] = (float)(s->w[l][q] / k);
        for (int o = 0; o < ly->out; o++) ly->bias[o] = (float)(s->b[l][o] / k);
    }
}

rw_status soup_run(prune_run *r, rw_model *m)
{
    const rw_prune_schedule *s = r->sched;
    double d0 = prune_model_density(m), d_final = 1.0 - s->sparsity;
    rw_status st = prune_phase(r, m, 0, 0, r->first_epochs, r->train->seed, NULL, NULL);
    for (int round = 1; round <= s->rounds && st == RW_OK && !r->stopped; round++) {
        st = prune_round(r, m, round, prune_round_density(d0, d_final, round, s->rounds));
        soup_sum sum = {0, NULL, NULL};
        if (st == RW_OK) st = soup_sum_init(&sum, m);
        for (int j = 0; j < s->soup_size && st == RW_OK && !r->stopped; j++) {
            rw_model *member = NULL;
            st = prune_model_clone(m, &member);
            if (st == RW_OK)
                st = prune_phase(r, member, round, j, r->phase_epochs,
                                 member_seed(r->train->seed, j), NULL, NULL);
            if (st == RW_OK) st = soup_add(&sum, m, member);
            rw_model_free(member);
        }
        if (st == RW_OK && !r->stopped) {
            soup_finish(&sum, m, s->soup_size);
            rw_prune_epoch e = {round, -1, r->phase_epochs, r->phase_epochs, r->steps, NULL, m};
            if (r->on_epoch && r->on_epoch(&e, r->user)) r->stopped = 1;
        }
        soup_sum_free(&sum);
    }
    return st;
}
