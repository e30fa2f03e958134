/* One-shot pruning of a trained model: score every stored weight, keep the
 * best per layer, per output row or over the whole model, and store the
 * result as CSR. Magnitude pruning scores |w|; Wanda ("A Simple and
 * Effective Pruning Approach for Large Language Models", Sun et al. 2023)
 * scores |w| times the norm of the weight's input over calibration samples,
 * compared within each output row. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/dataset.h"
#include "nn/linear.h"
#include "nn/model.h"
#include "nn/network.h"
#include "sparsity/prune.h"

/* Wanda's input norms: norm[l][i] = ||a_l[i]||_2 over the calibration
 * samples, a_l being weight l's input (the normalised data for the first). */
static rw_status input_norms(const rw_model *m, const int *weights, int L,
                             const rw_dataset *data, int count, float **norm)
{
    enum { BATCH = 256 };
    if (!data) return rw_fail(RW_ERR_INVALID_ARGUMENT, "Wanda needs calibration data");
    if (data->features != m->inputs)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "the calibration data has %d features but the model takes %d",
                       data->features, m->inputs);
    int n = count > 0 && count < data->n ? count : data->n;
    if (n < 1) return rw_fail(RW_ERR_INVALID_ARGUMENT, "Wanda needs at least one calibration sample");
    workspace ws;
    rw_status st = workspace_init(&ws, m, BATCH, 0);
    if (st != RW_OK) return st;
    double **sum = calloc((size_t)L, sizeof *sum);
    for (int l = 0; sum && l < L; l++) {
        sum[l] = calloc((size_t)m->params[weights[l]].cols, sizeof(double));
        if (!sum[l]) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for Wanda's norms");
    }
    if (!sum) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for Wanda's norms");
    for (int b0 = 0; b0 < n && st == RW_OK; b0 += BATCH) {
        int c = n - b0 < BATCH ? n - b0 : BATCH;
        network_load_batch(m, &ws, dataset_rows(data, b0), NULL, c);
        network_forward(m, &ws);
        for (int l = 0; l < L; l++)
            for (int i = 0; i < m->params[weights[l]].cols; i++) {
                const float *row = ws.t[m->params[weights[l]].x_tensor].data + (size_t)i * ws.bp;
                double s = 0;
                for (int b = 0; b < c; b++) s += (double)row[b] * row[b];
                sum[l][i] += s;
            }
    }
    for (int l = 0; l < L; l++) {
        int cols = m->params[weights[l]].cols;
        if (st == RW_OK) {
            norm[l] = rw_alloc(sizeof(float) * (size_t)cols);
            if (!norm[l]) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for Wanda's norms");
            for (int i = 0; norm[l] && i < cols; i++) norm[l][i] = (float)sqrt(sum[l][i]);
        }
        if (sum) free(sum[l]);
    }
    free(sum);
    workspace_free(&ws);
    return st;
}

typedef struct {
    float score;
    int32_t layer, k; /* entry k of layer's CSR */
} scored;

/* Highest score first; ties keep the earlier entry, so results are
 * reproducible. */
static int by_score(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return (x->k > y->k) - (x->k < y->k);
}

/* Marks keep[] for the `want` best of items[0..n) (all if n <= want). */
static void keep_best(scored *items, int64_t n, int64_t want, uint8_t **keep)
{
    if (n > want) qsort(items, (size_t)n, sizeof *items, by_score);
    for (int64_t q = 0; q < n && q < want; q++) keep[items[q].layer][items[q].k] = 1;
}

/* Compacts src to the kept entries; the weight's layer becomes CSR. */
static rw_status replace_with_kept(rw_model *m, int layer, const csr_matrix *src,
                                   const uint8_t *keep)
{
    int nnz = 0;
    for (int k = 0; k < src->nnz; k++) nnz += keep[k];
    csr_matrix w;
    rw_status st = csr_alloc(&w, src->rows, src->cols, nnz);
    if (st != RW_OK) return st;
    int q = 0;
    for (int o = 0; o < src->rows; o++) {
        for (int k = src->indptr[o]; k < src->indptr[o + 1]; k++)
            if (keep[k]) {
                w.indices[q] = src->indices[k];
                w.values[q++] = src->values[k];
            }
        w.indptr[o + 1] = q;
    }
    return linear_replace_csr(m, layer, &w);
}

int model_weights(const rw_model *m, int *out)
{
    int n = 0;
    for (int q = 0; q < m->n_params; q++)
        if (m->params[q].is_weight) {
            if (out) out[n] = q;
            n++;
        }
    return n;
}

rw_status rw_model_prune(rw_model *m, const rw_prune_config *c)
{
    if (!(c->sparsity >= 0.0 && c->sparsity < 1.0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "pruning sparsity %g is outside [0, 1)", c->sparsity);
    int wanda = c->criterion == RW_PRUNE_WANDA;
    if (wanda && c->scope == RW_PRUNE_GLOBAL)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "Wanda compares weights within each output row; global scope is for "
                       "magnitude pruning");
    int L = model_weights(m, NULL);
    int *weights = calloc((size_t)L + 1, sizeof *weights);
    csr_matrix *all = calloc((size_t)L + 1, sizeof *all);
    uint8_t **keep = calloc((size_t)L + 1, sizeof *keep);
    float **norm = calloc((size_t)L + 1, sizeof *norm);
    scored *items = NULL;
    rw_status st = weights && all && keep && norm
                       ? RW_OK
                       : rw_fail(RW_ERR_NO_MEMORY, "out of memory for pruning");
    if (st == RW_OK) model_weights(m, weights);
    if (st == RW_OK && wanda)
        st = input_norms(m, weights, L, c->calibration, c->calibration_count, norm);
    int64_t total = 0, dense_total = 0;
    for (int l = 0; l < L && st == RW_OK; l++) {
        const param *p = &m->params[weights[l]];
        st = param_to_csr(p, &all[l]);
        if (st == RW_OK && !(keep[l] = calloc((size_t)all[l].nnz + 1, 1)))
            st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for pruning");
        total += all[l].nnz;
        dense_total += param_dense_count(p);
    }
    if (st == RW_OK && !(items = malloc(sizeof *items * (size_t)(total + 1))))
        st = rw_fail(RW_ERR_NO_MEMORY, "out of memory scoring %lld weights", (long long)total);

    /* Score into items and choose, grouped as the scope says. */
    int64_t n = 0;
    for (int l = 0; l < L && st == RW_OK; l++) {
        const csr_matrix *w = &all[l];
        int64_t row_start = n, layer_start = n;
        for (int o = 0; o < w->rows; o++) {
            row_start = n;
            for (int k = w->indptr[o]; k < w->indptr[o + 1]; k++) {
                float s = fabsf(w->values[k]);
                if (wanda) s *= norm[l][w->indices[k]];
                items[n++] = (scored){s, l, k};
            }
            if (wanda)
                keep_best(items + row_start, n - row_start,
                          llround((1.0 - c->sparsity) * w->cols), keep);
        }
        if (!wanda && c->scope == RW_PRUNE_PER_LAYER)
            keep_best(items + layer_start, n - layer_start,
                      llround((1.0 - c->sparsity) * (double)w->rows * w->cols), keep);
    }
    if (st == RW_OK && !wanda && c->scope == RW_PRUNE_GLOBAL)
        keep_best(items, n, llround((1.0 - c->sparsity) * (double)dense_total), keep);

    /* Layers are replaced one by one; each weight's layer index stays. */
    int *layer_of = calloc((size_t)L + 1, sizeof *layer_of);
    if (st == RW_OK && !layer_of) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for pruning");
    for (int l = 0; l < L && st == RW_OK; l++) layer_of[l] = m->params[weights[l]].layer;
    for (int l = 0; l < L && st == RW_OK; l++) st = replace_with_kept(m, layer_of[l], &all[l], keep[l]);
    free(layer_of);
    for (int l = 0; l < L; l++) {
        if (all) csr_free(&all[l]);
        if (keep) free(keep[l]);
        if (norm) rw_free(norm[l]);
    }
    free(weights);
    free(all);
    free(keep);
    free(norm);
    free(items);
    return st;
}
