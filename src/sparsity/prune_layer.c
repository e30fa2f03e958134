/* What the layer-wise pruning methods share (sparsity/prune_layer.h):
 * choosing the entries of largest score, the Hessian X Xᵀ of a map's
 * input and the reconstruction error ‖W X − Ŵ X‖². */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sparsity/prune_layer.h"

int64_t prune_kept_count(int64_t count, double sparsity)
{
    int64_t k = llround((1.0 - sparsity) * (double)count);
    return k < 0 ? 0 : k > count ? count : k;
}

typedef struct {
    double score;
    int64_t k;
} ranked;

/* Largest score first; the lower index first among equals. */
static int by_score_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->k > y->k) - (x->k < y->k);
}

static rw_status keep_largest(const float *sf, const double *sd, int64_t count, int64_t want,
                              uint8_t *keep)
{
    memset(keep, 0, (size_t)count);
    if (want >= count) {
        memset(keep, 1, (size_t)count);
        return RW_OK;
    }
    if (want <= 0) return RW_OK;
    ranked *r = malloc(sizeof *r * (size_t)count);
    if (!r) return rw_fail(RW_ERR_NO_MEMORY, "out of memory ranking %lld weights", (long long)count);
    for (int64_t k = 0; k < count; k++) r[k] = (ranked){sf ? (double)sf[k] : sd[k], k};
    qsort(r, (size_t)count, sizeof *r, by_score_desc);
    for (int64_t q = 0; q < want; q++) keep[r[q].k] = 1;
    free(r);
    return RW_OK;
}

rw_status prune_keep_largest(const float *score, int64_t count, int64_t want, uint8_t *keep)
{
    return keep_largest(score, NULL, count, want, keep);
}

rw_status prune_keep_largest_d(const double *score, int64_t count, int64_t want, uint8_t *keep)
{
    return keep_largest(NULL, score, count, want, keep);
}

rw_status prune_keep_rows(const float *score, int rows, int cols, const prune_target *t,
                          uint8_t *keep)
{
    for (int o = 0; o < rows; o++) {
        const float *s = score + (size_t)o * cols;
        uint8_t *kp = keep + (size_t)o * cols;
        rw_status st = RW_OK;
        if (t->m > 0)
            for (int g = 0; g + t->m <= cols && st == RW_OK; g += t->m)
                st = prune_keep_largest(s + g, t->m, t->n, kp + g);
        else
            st = prune_keep_largest(s, cols, prune_kept_count(cols, t->sparsity), kp);
        if (st != RW_OK) return st;
    }
    return RW_OK;
}

void prune_apply_mask(float *w, const uint8_t *keep, int64_t count)
{
    for (int64_t k = 0; k < count; k++)
        if (!keep[k]) w[k] = 0;
}

rw_status prune_add_hessian(double *h, const float *x, int cols, int n, int ld)
{
    float *part = calloc((size_t)cols * cols, sizeof *part);
    if (!part) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for a %d x %d Hessian", cols, cols);
    /* Float products over one batch, summed across batches in double. */
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, cols, n, 1.0f, x, ld, 0.0f, part, cols);
    for (int i = 0; i < cols; i++)
        for (int j = i; j < cols; j++) {
            double v = part[(size_t)i * cols + j];
            h[(size_t)i * cols + j] += v;
            if (j != i) h[(size_t)j * cols + i] += v;
        }
    free(part);
    return RW_OK;
}

void prune_add_sq_norms(double *sq, const float *x, int cols, int n, int ld)
{
    for (int i = 0; i < cols; i++) {
        const float *row = x + (size_t)i * ld;
        double s = 0;
        for (int j = 0; j < n; j++) s += (double)row[j] * row[j];
        sq[i] += s;
    }
}

void prune_add_sums(double *sum, const float *x, int cols, int n, int ld)
{
    for (int i = 0; i < cols; i++) {
        const float *row = x + (size_t)i * ld;
        double s = 0;
        for (int j = 0; j < n; j++) s += row[j];
        sum[i] += s;
    }
}

double prune_reconstruction_error(const float *w, const float *w_new, int rows, int cols,
                                  const double *h)
{
    /* Σ_rows δᵀ H δ = Σ (Δ H) ⊙ Δ, the product by BLAS. */
    size_t count = (size_t)rows * cols;
    double *d = calloc(count + 1, sizeof *d), *dh = malloc(sizeof *dh * (count + 1));
    double total = NAN;
    if (d && dh) {
        for (size_t k = 0; k < count; k++) d[k] = (double)w[k] - (double)w_new[k];
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, rows, cols, 1.0, h, cols, d, cols, 0.0,
                    dh, cols);
        total = 0;
        for (size_t k = 0; k < count; k++) total += d[k] * dh[k];
    }
    free(d);
    free(dh);
    return total;
}
