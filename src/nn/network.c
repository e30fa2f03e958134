#include "nn/network.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/nm_kernels.h"
#include "nn/activation.h"

static float **alloc_table(int n) { return calloc((size_t)n, sizeof(float *)); }

static void free_table(float **t, int n)
{
    if (!t) return;
    for (int i = 0; i < n; i++) rw_free(t[i]);
    free(t);
}

rw_status workspace_init(workspace *ws, const rw_model *m, int batch, int with_grads)
{
    memset(ws, 0, sizeof *ws);
    int n = m->n_layers;
    size_t bp = (size_t)rw_pad_batch(batch > 0 ? batch : 1);
    ws->bp = (int)bp;
    ws->n_layers = n;
    ws->a = alloc_table(n + 1);
    ws->z = calloc((size_t)n, sizeof(float *));
    int ok = ws->a && ws->z;
    if (ok) ws->a[0] = rw_alloc(sizeof(float) * m->layers[0].in * bp), ok = ws->a[0] != NULL;
    for (int l = 0; l < n && ok; l++) {
        const layer *ly = &m->layers[l];
        ws->z[l] = rw_alloc(sizeof(float) * ly->out * bp);
        ws->a[l + 1] = ly->act == RW_ACT_NONE ? ws->z[l] : rw_alloc(sizeof(float) * ly->out * bp);
        ok = ws->z[l] && ws->a[l + 1];
    }
    if (ok && with_grads) {
        ws->g = alloc_table(n + 1);
        ws->gw = alloc_table(n);
        ws->gb = alloc_table(n);
        ok = ws->g && ws->gw && ws->gb;
        for (int l = 0; l < n && ok; l++) {
            const layer *ly = &m->layers[l];
            /* g[0] would be the input gradient, which training never needs. */
            if (l > 0) ws->g[l] = rw_alloc(sizeof(float) * ly->in * bp);
            ws->gw[l] = rw_alloc(sizeof(float) * (size_t)layer_weight_count(ly));
            ws->gb[l] = rw_alloc(sizeof(float) * ly->out);
            ok = (l == 0 || ws->g[l]) && ws->gw[l] && ws->gb[l];
        }
        if (ok) ws->g[n] = rw_alloc(sizeof(float) * m->layers[n - 1].out * bp), ok = ws->g[n] != NULL;
    }
    if (!ok) {
        workspace_free(ws);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for activations of a batch of %d", batch);
    }
    return RW_OK;
}

void workspace_free(workspace *ws)
{
    int n = ws->n_layers;
    if (ws->a && ws->z)
        for (int l = 0; l < n; l++)
            if (ws->a[l + 1] == ws->z[l]) ws->a[l + 1] = NULL;
    free_table(ws->a, n + 1);
    free_table(ws->z, n);
    free_table(ws->g, n + 1);
    free_table(ws->gw, n);
    free_table(ws->gb, n);
    memset(ws, 0, sizeof *ws);
}

void network_load_batch(const rw_model *m, workspace *ws, const float *x, int features,
                        const int *index, int n)
{
    int bp = ws->bp;
    float *a0 = ws->a[0];
    float scale = 1.0f / m->norm_std, shift = m->norm_mean;
    /* Blocks of features per thread: each sample contributes a short
     * contiguous run, and each thread writes its own rows of a0. */
    int blocks = (features + 63) / 64;
#pragma omp parallel for schedule(static) if ((size_t)features * n >= 32768)
    for (int blk = 0; blk < blocks; blk++) {
        int f0 = blk * 64, f1 = f0 + 64 < features ? f0 + 64 : features;
        for (int f = f0; f < f1; f++) memset(a0 + (size_t)f * bp + n, 0, sizeof(float) * (size_t)(bp - n));
        for (int b = 0; b < n; b++) {
            const float *row = x + (size_t)(index ? index[b] : b) * features;
            for (int f = f0; f < f1; f++) a0[(size_t)f * bp + b] = (row[f] - shift) * scale;
        }
    }
}

/* Dense layer: y[out][bp] = W[out][in] · x[in][bp] + bias. */
static void dense_forward(const layer *l, const float *x, float *y, int bp)
{
    for (int o = 0; o < l->out; o++) {
        float *row = y + (size_t)o * bp;
        for (int b = 0; b < bp; b++) row[b] = l->bias[o];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l->out, bp, l->in, 1.0f, l->dense,
                l->in, x, bp, 1.0f, y, bp);
}

void network_forward(const rw_model *m, workspace *ws)
{
    int bp = ws->bp;
    for (int l = 0; l < m->n_layers; l++) {
        const layer *ly = &m->layers[l];
        if (ly->sparse)
            sparse_forward(&ly->w, ly->bias, ws->a[l], ws->z[l], bp);
        else if (ly->is_nm)
            nm_forward_with(nm_kernels_active(), &ly->nm, ly->bias, ws->a[l], ws->z[l], bp);
        else
            dense_forward(ly, ws->a[l], ws->z[l], bp);
        if (ly->act != RW_ACT_NONE)
            activation_forward(ly->act, m->leaky_slope, ws->z[l], ws->a[l + 1],
                               (size_t)ly->out * bp);
    }
}

void network_backward(const rw_model *m, workspace *ws)
{
    int bp = ws->bp;
    for (int l = m->n_layers - 1; l >= 0; l--) {
        const layer *ly = &m->layers[l];
        float *dz = ws->g[l + 1]; /* [out][bp], already through the activation */
#pragma omp parallel for schedule(static) if ((size_t)ly->out * bp >= 32768)
        for (int o = 0; o < ly->out; o++) {
            const float *row = dz + (size_t)o * bp;
            float s = 0;
            for (int b = 0; b < bp; b++) s += row[b];
            ws->gb[l][o] = s;
        }
        if (ly->sparse) {
            sparse_weight_grad(&ly->w, dz, ws->a[l], ws->gw[l], bp);
            if (l > 0) sparse_backward_data(&ly->w, dz, ws->g[l], bp);
        } else if (ly->is_nm) {
            nm_weight_grad_with(nm_kernels_active(), &ly->nm, dz, ws->a[l], ws->gw[l], bp);
            if (l > 0) nm_backward_data_with(nm_kernels_active(), &ly->nm, dz, ws->g[l], bp);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ly->out, ly->in, bp, 1.0f, dz, bp,
                        ws->a[l], bp, 0.0f, ws->gw[l], ly->in);
            if (l > 0)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ly->in, bp, ly->out, 1.0f,
                            ly->dense, ly->in, dz, bp, 0.0f, ws->g[l], bp);
        }
        if (l > 0) {
            const layer *prev = &m->layers[l - 1];
            activation_backward(prev->act, m->leaky_slope, ws->z[l - 1], ws->a[l], ws->g[l],
                                (size_t)prev->out * bp);
        }
    }
}
