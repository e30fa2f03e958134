/* SparseGPT ("SparseGPT: Massive Language Models Can Be Accurately Pruned
 * in One-Shot", Frantar and Alistarh 2023). Pruning a map row by row is
 * the optimal brain surgeon's problem with the same Hessian H = X Xᵀ for
 * every row: removing weight c of a row costs w_c² / [H⁻¹]_cc and the
 * other weights of the row absorb it by −w_c / [H⁻¹]_cc · H⁻¹_{:,c}.
 * Eliminating the columns in order from left to right, the inverse of the
 * Hessian of the columns still free is read off the rows of U, the upper
 * Cholesky factor of H⁻¹ (H⁻¹ = Uᵀ U): column c's update is
 * err_c · U_{c, c:} with err_c = (w_c − q_c) / U_cc. The updates of the
 * columns after a block of `block` columns are applied once per block (a
 * matrix product), not once per column.
 *
 * Everything runs in double: H, its inverse and the weights being
 * updated, so that a numpy reference in float64 (tools/) agrees to
 * rounding. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sparsity/prune_layer.h"

/* LAPACK from OpenBLAS; its headers are not always installed. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);

/* u [n][n] row-major gets the upper factor U of the inverse of the damped
 * Hessian (in place of the Hessian it holds). A symmetric matrix is the
 * same in either order, and a column-major lower triangle read row-major
 * is the upper one, so LAPACK's 'L' calls give what we need. */
static rw_status inverse_cholesky_upper(double *u, int n)
{
    int info = 0;
    dpotrf_("L", &n, u, &n, &info);
    if (info == 0) dpotri_("L", &n, u, &n, &info);
    if (info != 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "SparseGPT: the damped Hessian of a %d-input map is "
                       "not positive definite (LAPACK info %d)", n, info);
    for (int i = 0; i < n; i++) /* H⁻¹ in the row-major upper triangle: mirror it */
        for (int j = i + 1; j < n; j++) u[(size_t)j * n + i] = u[(size_t)i * n + j];
    dpotrf_("L", &n, u, &n, &info);
    if (info != 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "SparseGPT: the inverse Hessian of a %d-input map is "
                       "not positive definite (LAPACK info %d)", n, info);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) u[(size_t)i * n + j] = 0;
    return RW_OK;
}

/* The mask of columns [c0, c0 + count) of W [rows][cols] for the
 * unstructured target: the best of the block's rows · count entries by
 * w² / U_cc². */
static rw_status block_mask(const double *W, const double *U, int rows, int cols, int c0, int count,
                            double sparsity, double *score, uint8_t *mask)
{
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < count; i++) {
            double w = W[(size_t)r * cols + c0 + i], d = U[(size_t)(c0 + i) * cols + c0 + i];
            score[(size_t)r * count + i] = w * w / (d * d);
        }
    int64_t n = (int64_t)rows * count;
    return prune_keep_largest_d(score, n, prune_kept_count(n, sparsity), mask);
}

/* N:M: the mask of the group of m columns starting at column c0, position
 * at of the block of count columns, per row. */
static rw_status group_mask(const double *W, const double *U, int rows, int cols, int c0, int at,
                            int count, const prune_target *t, double *score, uint8_t *mask)
{
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < t->m; i++) {
            double w = W[(size_t)r * cols + c0 + i], d = U[(size_t)(c0 + i) * cols + c0 + i];
            score[i] = w * w / (d * d);
        }
        rw_status st = prune_keep_largest_d(score, t->m, t->n, mask + (size_t)r * count + at);
        if (st != RW_OK) return st;
    }
    return RW_OK;
}

rw_status prune_sparsegpt(float *w, int rows, int cols, const double *h, const prune_target *t,
                          int block, uint8_t *keep)
{
    if (t->m > 0) { /* a group never straddles two blocks */
        block -= block % t->m;
        if (block < t->m) block = t->m;
    }
    if (block < 1) block = 1;
    double *W = malloc(sizeof *W * (size_t)rows * cols);
    double *U = malloc(sizeof *U * (size_t)cols * cols);
    double *err = malloc(sizeof *err * (size_t)rows * block);
    double *score = malloc(sizeof *score * (size_t)rows * block);
    uint8_t *mask = malloc((size_t)rows * block);
    rw_status st = W && U && err && score && mask
                       ? RW_OK
                       : rw_fail(RW_ERR_NO_MEMORY, "out of memory for SparseGPT on a %d x %d map",
                                 rows, cols);
    if (st == RW_OK) {
        for (int64_t k = 0; k < (int64_t)rows * cols; k++) W[k] = w[k];
        memcpy(U, h, sizeof *U * (size_t)cols * cols);
        double mean = 0;
        for (int j = 0; j < cols; j++) {
            double *d = &U[(size_t)j * cols + j];
            if (*d == 0) { /* an input never seen: nothing to reconstruct */
                *d = 1;
                for (int r = 0; r < rows; r++) W[(size_t)r * cols + j] = 0;
            }
            mean += *d;
        }
        double lambda = 0.01 * mean / cols;
        for (int j = 0; j < cols; j++) U[(size_t)j * cols + j] += lambda;
        st = inverse_cholesky_upper(U, cols);
    }
    for (int c0 = 0; c0 < cols && st == RW_OK; c0 += block) {
        int count = cols - c0 < block ? cols - c0 : block;
        if (t->m <= 0) st = block_mask(W, U, rows, cols, c0, count, t->sparsity, score, mask);
        for (int i = 0; i < count && st == RW_OK; i++) {
            int c = c0 + i;
            if (t->m > 0 && c % t->m == 0)
                st = group_mask(W, U, rows, cols, c, i, count, t, score, mask);
            if (st != RW_OK) break;
            const double *uc = U + (size_t)c * cols;
            for (int r = 0; r < rows; r++) {
                double *wr = W + (size_t)r * cols;
                double q = mask[(size_t)r * count + i] ? wr[c] : 0;
                double e = (wr[c] - q) / uc[c];
                wr[c] = q;
                for (int j = c + 1; j < c0 + count; j++) wr[j] -= e * uc[j];
                err[(size_t)r * count + i] = e;
                keep[(size_t)r * cols + c] = mask[(size_t)r * count + i];
            }
        }
        /* The lazy update of every later column: W[:, c0+count:] -= Err · U[block, c0+count:]. */
        int rest = cols - c0 - count;
        if (st == RW_OK && rest > 0)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, rest, count, -1.0, err,
                        count, U + (size_t)c0 * cols + c0 + count, cols, 1.0, W + c0 + count, cols);
    }
    if (st == RW_OK)
        for (int64_t k = 0; k < (int64_t)rows * cols; k++) w[k] = keep[k] ? (float)W[k] : 0.0f;
    free(W);
    free(U);
    free(err);
    free(score);
    free(mask);
    return st;
}
