#include "sparsity/drop.h"

#include <math.h>
#include <stdlib.h>

#include "sparsity/topology.h"

/* SET: "A Scalable Evolutionary Training of Artificial Neural Networks...",
 * Mocanu et al. 2018: remove the weights closest to zero on each side, the
 * smallest positive and the largest negative ones, the same fraction of
 * each sign. */
static int drop_set(const csr_matrix *w, int k, uint8_t *drop, float *score)
{
    int n = w->nnz, n_pos = 0;
    for (int i = 0; i < n; i++) n_pos += w->values[i] >= 0.0f;
    int k_pos = (int)llround((double)k * n_pos / n), k_neg = k - k_pos;
    if (k_neg > n - n_pos) k_neg = n - n_pos, k_pos = k - k_neg;
    uint8_t *neg = malloc((size_t)n);
    if (!neg) return -1;
    for (int i = 0; i < n; i++) score[i] = w->values[i] >= 0.0f ? w->values[i] : INFINITY;
    int a = topology_select_smallest(score, n, k_pos, drop);
    for (int i = 0; i < n; i++) score[i] = w->values[i] < 0.0f ? -w->values[i] : INFINITY;
    int b = topology_select_smallest(score, n, k_neg, neg);
    for (int i = 0; i < n; i++) drop[i] |= neg[i];
    free(neg);
    return a < 0 || b < 0 ? -1 : a + b;
}

int drop_select(const drop_input *in, int k, uint8_t *drop)
{
    const csr_matrix *w = in->w;
    int n = w->nnz;
    if (k > n) k = n;
    if (k <= 0) {
        for (int i = 0; i < n; i++) drop[i] = 0;
        return 0;
    }
    if (in->kind == RW_DROP_RANDOM) {
        topology_select_random(n, k, in->rng, drop);
        return k;
    }
    float *score = calloc((size_t)n, sizeof(float));
    if (!score) return -1;
    int marked;
    if (in->kind == RW_DROP_SET) {
        marked = drop_set(w, k, drop, score);
    } else {
        /* Magnitude (RigL, SNFS, GraNet); MEST: "MEST: Accurate and Fast
         * Memory-Economic Sparse Training Framework on the Edge", Yuan et
         * al. 2021, adds the gradient's magnitude: |w| + λ|∇w|. */
        for (int i = 0; i < n; i++) score[i] = fabsf(w->values[i]);
        if (in->kind == RW_DROP_MEST && in->grad)
            for (int i = 0; i < n; i++) score[i] += in->lambda * fabsf(in->grad[i]);
        marked = topology_select_smallest(score, n, k, drop);
    }
    free(score);
    return marked;
}
