/* The softmax cross-entropy loss as a layer (nn/loss_layer.h). */
#include "nn/loss_layer.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "core/error.h"
#include "kernels/team.h"
#include "nn/loss.h"

/* Columns in one part per thread: each part writes its own columns. */
static int xent_forward(const layer *ly, const layer_io *io)
{
    (void)ly;
    const tensor *logits = io->in[0];
    int parts = omp_get_num_threads(), bp = io->bp;
    TEAM_FOR(p, parts) {
        int c0 = (int)((int64_t)bp * p / parts), c1 = (int)((int64_t)bp * (p + 1) / parts);
        softmax_xent_columns(logits->data, io->labels, logits->rows, c0, c1, io->n, bp,
                             logits->grad, io->loss + c0);
        team_chunk_done();
    }
    return parts;
}

static int no_params(layer *ly, param *out)
{
    (void)ly;
    (void)out;
    return 0;
}

static void xent_destroy(layer *ly) { free(ly); }

static const layer_ops loss_softmax_xent_ops = {
    .kind = "softmax_cross_entropy",
    .forward = xent_forward,
    .params = no_params,
    .destroy = xent_destroy,
};

/* ---- Token cross-entropy ------------------------------------------------
 * Over a vocabulary of rows: for each column j < n with a target >= 0, the
 * loss -log softmax(logits[:, j])[target_j]; the gradient of their mean
 * (softmax - onehot) / count, zero elsewhere. Columns are taken in blocks
 * of TOK_COLS: each row of the block is contiguous, so the passes over the
 * vocabulary vectorise over the block. */
#define TOK_COLS 16

static void token_block(const layer_io *io, int c0, int c1, int count)
{
    const tensor *t = io->in[0];
    int V = t->rows, bp = io->bp, w = c1 - c0;
    const float *x = t->data;
    float best[TOK_COLS];
    double sum[TOK_COLS];
    for (int b = 0; b < w; b++) best[b] = -INFINITY, sum[b] = 0;
    for (int v = 0; v < V; v++) {
        const float *row = x + (size_t)v * bp + c0;
        for (int b = 0; b < w; b++) best[b] = row[b] > best[b] ? row[b] : best[b];
    }
    for (int v = 0; v < V; v++) {
        const float *row = x + (size_t)v * bp + c0;
        for (int b = 0; b < w; b++) sum[b] += expf(row[b] - best[b]);
    }
    int live[TOK_COLS];
    for (int b = 0; b < w; b++) {
        int j = c0 + b;
        live[b] = j < io->n && io->targets[j] >= 0;
        if (io->loss)
            io->loss[j] = live[b] ? log(sum[b]) + best[b] - x[(size_t)io->targets[j] * bp + j] : 0.0;
    }
    if (!t->grad) return;
    for (int v = 0; v < V; v++) {
        const float *row = x + (size_t)v * bp + c0;
        float *g = t->grad + (size_t)v * bp + c0;
        for (int b = 0; b < w; b++)
            g[b] = live[b] ? (float)((expf(row[b] - best[b]) / sum[b] -
                                      (v == io->targets[c0 + b])) / count)
                           : 0.0f;
    }
}

static int token_forward(const layer *ly, const layer_io *io)
{
    (void)ly;
    int count = 0;
    for (int j = 0; j < io->n; j++) count += io->targets[j] >= 0;
    if (count == 0) count = 1;
    int blocks = (io->bp + TOK_COLS - 1) / TOK_COLS;
    TEAM_FOR(c, blocks) {
        int c0 = c * TOK_COLS, c1 = c0 + TOK_COLS < io->bp ? c0 + TOK_COLS : io->bp;
        token_block(io, c0, c1, count);
        team_chunk_done();
    }
    return blocks;
}

static const layer_ops loss_token_xent_ops = {
    .kind = "token_cross_entropy",
    .forward = token_forward,
    .params = no_params,
    .destroy = xent_destroy,
};

layer *loss_token_xent_new(void)
{
    layer *ly = calloc(1, sizeof *ly);
    if (!ly) return NULL;
    ly->ops = &loss_token_xent_ops;
    ly->act = RW_ACT_NONE;
    ly->n_inputs = 1;
    return ly;
}

layer *loss_softmax_xent_new(void)
{
    layer *ly = calloc(1, sizeof *ly);
    if (!ly) return NULL;
    ly->ops = &loss_softmax_xent_ops;
    ly->act = RW_ACT_NONE;
    ly->n_inputs = 1;
    return ly;
}
