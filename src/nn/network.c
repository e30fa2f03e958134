#include "nn/network.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/team.h"
#include "kernels/nm_kernels.h"
#include "nn/activation.h"
#include "sparsity/nm_train.h"

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
        ws->a[l + 1] = rw_alloc(sizeof(float) * ly->out * bp);
        ws->z[l] = activation_needs_z(ly->act) ? rw_alloc(sizeof(float) * ly->out * bp)
                                               : ws->a[l + 1];
        ok = ws->z[l] && ws->a[l + 1];
    }
    if (ok && with_grads) {
        ws->g = alloc_table(n + 1);
        ws->gw = alloc_table(n);
        ws->gb = alloc_table(n);
        ws->loss = calloc(bp, sizeof(double));
        ok = ws->g && ws->gw && ws->gb && ws->loss;
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
            if (ws->z[l] == ws->a[l + 1]) ws->z[l] = NULL;
    free_table(ws->a, n + 1);
    free_table(ws->z, n);
    free_table(ws->g, n + 1);
    free_table(ws->gw, n);
    free_table(ws->gb, n);
    free(ws->loss);
    memset(ws, 0, sizeof *ws);
}

int phase_load_batch(const rw_model *m, workspace *ws, const float *x, int features,
                     const int *index, int n)
{
    const kernel_table *k = kernels_active();
    float scale = 1.0f / m->norm_std, shift = m->norm_mean;
    /* Blocks of 64 features per chunk: each chunk writes its own rows. */
    int blocks = (size_t)features * n < 32768 ? 1 : (features + 63) / 64;
    TEAM_FOR(blk, blocks) {
        int f0 = blocks == 1 ? 0 : blk * 64;
        int f1 = blocks == 1 || f0 + 64 > features ? features : f0 + 64;
        k->load_batch(x, features, index, n, shift, scale, ws->a[0], ws->bp, f0, f1);
        team_chunk_done();
    }
    return blocks;
}

void network_load_batch(const rw_model *m, workspace *ws, const float *x, int features,
                        const int *index, int n)
{
#pragma omp parallel if ((size_t)features * n >= 32768 && omp_get_max_threads() > 1)
    phase_load_batch(m, ws, x, features, index, n);
}

/* The epilogue a kernel can apply for an activation, if any. */
static kernel_epilogue fused(rw_activation act, float slope)
{
    kernel_epilogue e = {KACT_NONE, slope};
    if (act == RW_ACT_RELU) e.act = KACT_RELU;
    if (act == RW_ACT_LEAKY_RELU) e.act = KACT_LEAKY;
    return e;
}

/* Rows [r0, r1) of part t of n split in `parts`. */
static void part_range(int n, int t, int parts, int *r0, int *r1)
{
    *r0 = (int)((int64_t)n * t / parts);
    *r1 = (int)((int64_t)n * (t + 1) / parts);
}

/* Rows [r0, r1) of a dense layer: y = W x + bias, then the activation.
 * Inside a parallel region each thread calls OpenBLAS on its own rows (it
 * then runs single-threaded); outside, OpenBLAS threads the whole product. */
static void dense_forward_rows(const layer *l, float slope, const float *x, float *z, float *a,
                               int bp, int r0, int r1)
{
    for (int o = r0; o < r1; o++) {
        float *row = z + (size_t)o * bp;
        for (int b = 0; b < bp; b++) row[b] = l->bias[o];
    }
    if (r1 > r0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, bp, l->in, 1.0f,
                    l->dense + (size_t)r0 * l->in, l->in, x, bp, 1.0f, z + (size_t)r0 * bp, bp);
    if (l->act != RW_ACT_NONE)
        activation_forward_range(l->act, slope, z + (size_t)r0 * bp, a + (size_t)r0 * bp,
                                 (size_t)(r1 - r0) * bp);
}

/* Parts an N:M layer is cut into: equal row ranges carry equal work. */
static int nm_parts(const layer *l, int bp)
{
    int64_t work = layer_weight_count(l) * bp;
    return work >= KERNEL_PARALLEL_MIN_WORK ? omp_get_num_threads() : 1;
}

/* Bias gradient of rows [r0, r1): the sum of each row of dz. */
static void bias_grad_rows(const float *dz, float *gb, int bp, int r0, int r1)
{
    for (int o = r0; o < r1; o++) {
        const float *row = dz + (size_t)o * bp;
        float s = 0;
        for (int b = 0; b < bp; b++) s += row[b];
        gb[o] = s;
    }
}

/* Whole rows of [rows][bp] per chunk, about 16K floats each. */
static int row_chunks(int rows, int bp)
{
    int64_t per = 16384 / bp > 0 ? 16384 / bp : 1;
    return (int)((rows + per - 1) / per);
}

/* The activation of rows [r0, r1) of z into a (tanh and GELU: not fused). */
static void activation_rows(const layer *ly, float slope, const float *z, float *a, int bp, int r0,
                            int r1)
{
    if (ly->act != RW_ACT_NONE && r1 > r0)
        activation_forward_range(ly->act, slope, z + (size_t)r0 * bp, a + (size_t)r0 * bp,
                                 (size_t)(r1 - r0) * bp);
}

int phase_forward(const rw_model *m, workspace *ws, int l)
{
    const layer *ly = &m->layers[l];
    int bp = ws->bp;
    float *x = ws->a[l], *z = ws->z[l], *a = ws->a[l + 1];
    if (ly->nmt) return phase_nm_train_forward(m, ws, l);
    if (ly->is_nm || !ly->sparse) {
        /* N:M and dense: equal row ranges carry equal work. */
        const nm_kernel_table *k = nm_kernels_active();
        int parts = ly->is_nm ? nm_parts(ly, bp) : omp_get_num_threads();
        TEAM_FOR(t, parts) {
            int r0, r1;
            part_range(ly->out, t, parts, &r0, &r1);
            if (ly->is_nm) {
                k->forward(&ly->nm, ly->bias, x, z, bp, r0, r1);
                activation_rows(ly, m->leaky_slope, z, a, bp, r0, r1);
            } else {
                dense_forward_rows(ly, m->leaky_slope, x, z, a, bp, r0, r1);
            }
            team_chunk_done();
        }
        return parts;
    }
    kernel_epilogue epi = fused(ly->act, m->leaky_slope);
    int chunks = team_forward(kernels_active(), &ly->w, ly->bias, x, z, bp, epi);
    if (ly->act == RW_ACT_NONE || epi.act != KACT_NONE) return chunks;
    /* tanh and GELU: a pass of their own once every row is done. */
    team_phase(chunks);
    chunks = row_chunks(ly->out, bp);
    TEAM_FOR(c, chunks) {
        int r0, r1;
        part_range(ly->out, c, chunks, &r0, &r1);
        activation_rows(ly, m->leaky_slope, z, a, bp, r0, r1);
        team_chunk_done();
    }
    return chunks;
}

int network_worth_threading(const rw_model *m, int bp)
{
    if (omp_get_max_threads() < 2) return 0;
    int64_t work = 0;
    for (int l = 0; l < m->n_layers; l++) work += layer_weight_count(&m->layers[l]) * bp;
    return work >= 4 * KERNEL_PARALLEL_MIN_WORK;
}

void network_forward(const rw_model *m, workspace *ws)
{
    team_sync sync;
    team_sync_init(&sync);
#pragma omp parallel if (network_worth_threading(m, ws->bp))
    {
        team_begin(&sync);
        for (int l = 0; l < m->n_layers; l++) team_phase(phase_forward(m, ws, l));
        team_end();
    }
}

/* Rows [r0, r1) of a dense layer for one sample (vectors). */
static void dense_forward_vector_rows(const layer *l, float slope, const float *x, float *z,
                                      float *a, int r0, int r1)
{
    if (r1 <= r0) return;
    memcpy(z + r0, l->bias + r0, sizeof(float) * (size_t)(r1 - r0));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, r1 - r0, l->in, 1.0f, l->dense + (size_t)r0 * l->in,
                l->in, x, 1, 1.0f, z + r0, 1);
    if (l->act != RW_ACT_NONE)
        activation_forward_range(l->act, slope, z + r0, a + r0, (size_t)(r1 - r0));
}

/* Rows [r0, r1) of an N:M layer for one sample. */
static void nm_forward_vector_rows(const layer *l, float slope, const float *x, float *z, float *a,
                                   int r0, int r1)
{
    nm_kernels_active()->forward_vector(&l->nm, l->bias, x, z, r0, r1);
    if (l->act != RW_ACT_NONE && r1 > r0)
        activation_forward_range(l->act, slope, z + r0, a + r0, (size_t)(r1 - r0));
}

int phase_forward_vector(const rw_model *m, float **av, float **zv, int l)
{
    const layer *ly = &m->layers[l];
    float *x = av[l], *z = zv[l], *a = av[l + 1];
    layer view; /* an N:M-trained layer runs as its current N:M or W_eff weights */
    if (ly->nmt) {
        view = nm_train_view(ly);
        ly = &view;
    }
    if (ly->is_nm || !ly->sparse) {
        int parts = layer_weight_count(ly) >= KERNEL_PARALLEL_MIN_WORK ? omp_get_num_threads() : 1;
        TEAM_FOR(t, parts) {
            int r0, r1;
            part_range(ly->out, t, parts, &r0, &r1);
            if (ly->is_nm)
                nm_forward_vector_rows(ly, m->leaky_slope, x, z, a, r0, r1);
            else
                dense_forward_vector_rows(ly, m->leaky_slope, x, z, a, r0, r1);
            team_chunk_done();
        }
        return parts;
    }
    kernel_epilogue epi = fused(ly->act, m->leaky_slope);
    int chunks = team_spmv(kernels_active(), &ly->w, ly->bias, x, z, epi);
    if (ly->act == RW_ACT_NONE || epi.act != KACT_NONE) return chunks;
    team_phase(chunks);
    TEAM_FOR(c, 1) {
        activation_forward_range(ly->act, m->leaky_slope, z, a, (size_t)ly->out);
        team_chunk_done();
    }
    return 1;
}

/* Part t of `parts` of a dense layer's backward pass: the first `parts`
 * parts are rows of the weight and bias gradients, the others columns of
 * the input gradient (then through the previous activation). */
static void dense_backward_part(const rw_model *m, workspace *ws, int l, int t, int parts)
{
    const layer *ly = &m->layers[l];
    int bp = ws->bp;
    const float *dz = ws->g[l + 1];
    int r0, r1;
    if (t < parts) {
        part_range(ly->out, t, parts, &r0, &r1);
        bias_grad_rows(dz, ws->gb[l], bp, r0, r1);
        if (r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, ly->in, bp, 1.0f,
                        dz + (size_t)r0 * bp, bp, ws->a[l], bp, 0.0f,
                        ws->gw[l] + (size_t)r0 * ly->in, ly->in);
        return;
    }
    part_range(ly->in, t - parts, parts, &r0, &r1);
    if (r1 == r0) return;
    float *dx = ws->g[l] + (size_t)r0 * bp;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1 - r0, bp, ly->out, 1.0f, ly->dense + r0,
                ly->in, dz, bp, 0.0f, dx, bp);
    const layer *prev = &m->layers[l - 1];
    activation_backward_range(prev->act, m->leaky_slope, ws->z[l - 1] + (size_t)r0 * bp,
                              ws->a[l] + (size_t)r0 * bp, dx, (size_t)(r1 - r0) * bp);
}

/* Part t of `parts` of an N:M layer's backward pass, split as a dense
 * layer's: rows of the gradients, then groups of inputs of dx. */
static void nm_backward_part(const rw_model *m, workspace *ws, int l, int t, int parts)
{
    const layer *ly = &m->layers[l];
    const nm_kernel_table *k = nm_kernels_active();
    int bp = ws->bp, r0, r1;
    const float *dz = ws->g[l + 1];
    if (t < parts) {
        part_range(ly->out, t, parts, &r0, &r1);
        k->weight_grad(&ly->nm, dz, ws->a[l], ws->gw[l], bp, r0, r1);
        bias_grad_rows(dz, ws->gb[l], bp, r0, r1);
        return;
    }
    part_range(ly->nm.groups, t - parts, parts, &r0, &r1);
    if (r1 == r0) return;
    k->backward_data(&ly->nm, dz, ws->g[l], bp, r0, r1);
    int m_ = ly->nm.m;
    size_t off = (size_t)r0 * m_ * bp, len = (size_t)(r1 - r0) * m_ * bp;
    activation_backward_range(m->layers[l - 1].act, m->leaky_slope, ws->z[l - 1] + off,
                              ws->a[l] + off, ws->g[l] + off, len);
}

int phase_backward(const rw_model *m, workspace *ws, int l)
{
    const layer *ly = &m->layers[l];
    int bp = ws->bp;
    if (ly->nmt) return phase_nm_train_backward(m, ws, l);
    if (ly->is_nm || !ly->sparse) {
        int parts = ly->is_nm ? nm_parts(ly, bp) : omp_get_num_threads();
        int total = (l > 0 ? 2 : 1) * parts;
        TEAM_FOR(t, total) {
            if (ly->is_nm)
                nm_backward_part(m, ws, l, t, parts);
            else
                dense_backward_part(m, ws, l, t, parts);
            team_chunk_done();
        }
        return total;
    }
    const layer *prev = l > 0 ? &m->layers[l - 1] : NULL;
    kernel_epilogue epi = fused(prev ? prev->act : RW_ACT_NONE, m->leaky_slope);
    int chunks = team_backward(kernels_active(), &ly->w, ws->g[l + 1], ws->a[l], ws->gw[l],
                               ws->gb[l], prev ? ws->g[l] : NULL, prev ? ws->a[l] : NULL, bp, epi);
    if (!prev || prev->act == RW_ACT_NONE || epi.act != KACT_NONE) return chunks;
    /* tanh and GELU: the derivative in a pass of its own. */
    team_phase(chunks);
    int rows = ly->in;
    chunks = row_chunks(rows, bp);
    TEAM_FOR(c, chunks) {
        int r0, r1;
        part_range(rows, c, chunks, &r0, &r1);
        size_t off = (size_t)r0 * bp;
        activation_backward_range(prev->act, m->leaky_slope, ws->z[l - 1] + off, ws->a[l] + off,
                                  ws->g[l] + off, (size_t)(r1 - r0) * bp);
        team_chunk_done();
    }
    return chunks;
}

void network_backward(const rw_model *m, workspace *ws)
{
    team_sync sync;
    team_sync_init(&sync);
#pragma omp parallel if (network_worth_threading(m, ws->bp))
    {
        team_begin(&sync);
        for (int l = m->n_layers - 1; l >= 0; l--) team_phase(phase_backward(m, ws, l));
        team_end();
    }
}
