/* DSnoT ("Dynamic Sparse No Training: Training-Free Fine-tuning for Sparse
 * LLMs", Zhang et al. 2024): improve a mask without training by swapping
 * weights in and out of each row, steered by the reconstruction error. The
 * weights keep their dense values; only which ones are kept changes.
 *
 * Per row, with δ = w − ŵ the removed part and μ the mean input over the
 * calibration tokens, the expected error of the row's output is
 * ε = Σ δ_j μ_j. A cycle grows back the removed weight whose return moves
 * ε toward zero the most (w_j μ_j of ε's sign, largest |w_j μ_j|) and
 * removes the kept weight of least Wanda importance |w_k| · ‖x_k‖ among
 * those whose removal does not push ε further from zero (within j's group
 * of m for N:M). The swap is kept only if the row's exact error
 * δᵀ H δ (H = X Xᵀ) goes down; the row stops at its first swap that would
 * not, or after `cycles` swaps. So the error of a map never increases. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "sparsity/prune_layer.h"

/* Removed weight to grow back in row r (-1: none). */
static int grow_candidate(const float *w, const uint8_t *keep, const double *mu, int cols, double eps)
{
    int best = -1;
    double best_v = 0;
    for (int j = 0; j < cols; j++) {
        if (keep[j] || w[j] == 0) continue;
        double v = (double)w[j] * mu[j];
        if ((v > 0) != (eps > 0) || v == 0) continue;
        if (fabs(v) > best_v) best_v = fabs(v), best = j;
    }
    return best;
}

/* Kept weight to remove after j is grown (-1: none): in [c0, c1), the least
 * important of those whose w_k μ_k has the sign opposite to the error left
 * (eps_after), or of all of them when none has. */
static int prune_candidate(const float *w, const uint8_t *keep, const double *mu,
                           const float *xnorm, int c0, int c1, int j, double eps_after)
{
    int best = -1, best_any = -1;
    double best_s = INFINITY, best_any_s = INFINITY;
    for (int k = c0; k < c1; k++) {
        if (!keep[k] || k == j) continue;
        double s = fabs((double)w[k]) * xnorm[k], v = (double)w[k] * mu[k];
        if (s < best_any_s) best_any_s = s, best_any = k;
        if ((v > 0) != (eps_after > 0) && s < best_s) best_s = s, best = k;
    }
    return best >= 0 ? best : best_any;
}

rw_status prune_dsnot(const float *w, int rows, int cols, const double *h, const double *mu,
                      const float *xnorm, const prune_target *t, int cycles, uint8_t *keep,
                      int64_t *swaps)
{
    double *g = malloc(sizeof *g * (size_t)cols); /* H δ of the row */
    if (!g) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for DSnoT on a %d x %d map", rows, cols);
    int64_t done = 0;
    for (int r = 0; r < rows; r++) {
        const float *wr = w + (size_t)r * cols;
        uint8_t *kr = keep + (size_t)r * cols;
        double eps = 0;
        for (int i = 0; i < cols; i++) g[i] = 0;
        for (int j = 0; j < cols; j++) {
            if (kr[j] || wr[j] == 0) continue;
            eps += (double)wr[j] * mu[j];
            const double *hj = h + (size_t)j * cols;
            for (int i = 0; i < cols; i++) g[i] += hj[i] * wr[j];
        }
        double err = 0; /* δᵀ H δ */
        for (int i = 0; i < cols; i++)
            if (!kr[i]) err += (double)wr[i] * g[i];
        for (int cycle = 0; cycle < cycles; cycle++) {
            int j = grow_candidate(wr, kr, mu, cols, eps);
            if (j < 0) break;
            int c0 = t->m > 0 ? j - j % t->m : 0, c1 = t->m > 0 ? c0 + t->m : cols;
            double eps_after = eps - (double)wr[j] * mu[j];
            int k = prune_candidate(wr, kr, mu, xnorm, c0, c1, j, eps_after);
            if (k < 0) break;
            /* δ_j goes from w_j to 0 (u), δ_k from 0 to w_k (v). */
            double u = -(double)wr[j], v = wr[k];
            double change = 2 * u * g[j] + u * u * h[(size_t)j * cols + j] + 2 * v * g[k] +
                            v * v * h[(size_t)k * cols + k] + 2 * u * v * h[(size_t)j * cols + k];
            /* A gain lost in rounding is no gain. */
            if (!(change < -1e-9 * err)) break;
            err += change;
            kr[j] = 1, kr[k] = 0;
            const double *hj = h + (size_t)j * cols, *hk = h + (size_t)k * cols;
            for (int i = 0; i < cols; i++) g[i] += u * hj[i] + v * hk[i];
            eps = eps_after + v * mu[k];
            done++;
        }
    }
    free(g);
    if (swaps) *swaps = done;
    return RW_OK;
}
