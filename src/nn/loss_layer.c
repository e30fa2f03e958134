/* The softmax cross-entropy loss as a layer (nn/loss_layer.h). */
#include "nn/loss_layer.h"

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

layer *loss_softmax_xent_new(void)
{
    layer *ly = calloc(1, sizeof *ly);
    if (!ly) return NULL;
    ly->ops = &loss_softmax_xent_ops;
    ly->act = RW_ACT_NONE;
    ly->n_inputs = 1;
    return ly;
}
