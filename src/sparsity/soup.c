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

/* Running sums of the members' parameters, in double, member by member in
 * order, so the soup does not depend on anything but them. */
typedef struct {
    int n_params;
    double **sum; /* [n_params][count] */
} soup_sum;

static void soup_sum_free(soup_sum *s)
{
    for (int q = 0; s->sum && q < s->n_params; q++) free(s->sum[q]);
    free(s->sum);
}

static rw_status soup_sum_init(soup_sum *s, const rw_model *m)
{
    s->n_params = m->n_params;
    s->sum = calloc((size_t)m->n_params + 1, sizeof(double *));
    int ok = s->sum != NULL;
    for (int q = 0; q < m->n_params && ok; q++)
        ok = (s->sum[q] = calloc((size_t)param_count(&m->params[q]) + 1, sizeof(double))) != NULL;
    if (!ok) {
        soup_sum_free(s);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for a model soup");
    }
    return RW_OK;
}

static rw_status soup_add(soup_sum *s, const rw_model *mask, const rw_model *member)
{
    for (int q = 0; q < s->n_params; q++) {
        const param *pa = &mask->params[q], *pb = &member->params[q];
        if (param_is_sparse(pa)) {
            const csr_matrix *a = pa->csr, *b = pb->csr;
            if (a->nnz != b->nnz ||
                memcmp(a->indices, b->indices, sizeof(int32_t) * (size_t)a->nnz) != 0 ||
                memcmp(a->indptr, b->indptr, sizeof(int32_t) * ((size_t)a->rows + 1)) != 0)
                return rw_fail(RW_ERR_INVALID_ARGUMENT, "soup member: %s's mask differs",
                               pa->layer_name);
        }
        const float *v = param_values(pb);
        int64_t n = param_count(pb);
        for (int64_t k = 0; k < n; k++) s->sum[q][k] += v[k];
    }
    return RW_OK;
}

/* m's parameters become the mean of the k members added. */
static void soup_finish(const soup_sum *s, rw_model *m, int k)
{
    for (int q = 0; q < s->n_params; q++) {
        float *v = param_values(&m->params[q]);
        int64_t n = param_count(&m->params[q]);
        for (int64_t i = 0; i < n; i++) v[i] = (float)(s->sum[q][i] / k);
    }
}

rw_status soup_run(prune_run *r, rw_model *m)
{
    const rw_prune_schedule *s = r->sched;
    double d0 = prune_model_density(m), d_final = 1.0 - s->sparsity;
    rw_status st = prune_phase(r, m, 0, 0, r->first_epochs, r->train->seed, NULL, NULL);
    for (int round = 1; round <= s->rounds && st == RW_OK && !r->stopped; round++) {
        st = prune_round(r, m, round, prune_round_density(d0, d_final, round, s->rounds));
        soup_sum sum = {0, NULL};
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
