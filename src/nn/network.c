#include "nn/network.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/team.h"
#include "nn/activation.h"

/* Tensors of a batch of bp columns: t[0] the input, t[l + 1] layer l's
 * output with its own pre-activation buffer only where the activation's
 * derivative needs it. */
static rw_status workspace_alloc(workspace *ws, const rw_model *m, int bp, int with_grads)
{
    memset(ws, 0, sizeof *ws);
    int nt = model_tensor_count(m);
    ws->bp = bp;
    ws->n_tensors = nt;
    ws->t = calloc((size_t)nt, sizeof *ws->t);
    if (!ws->t) return RW_ERR_NO_MEMORY;
    snprintf(ws->t[0].name, sizeof ws->t[0].name, "input");
    ws->t[0].rows = model_input_rows(m);
    ws->t[0].act = RW_ACT_NONE;
    for (int l = 0; l < m->n_layers; l++) {
        const layer *ly = m->layers[l];
        tensor *t = &ws->t[ly->output];
        snprintf(t->name, sizeof t->name, "%s", ly->name);
        t->rows = ly->out;
        t->act = ly->act;
        t->slope = ly->slope;
    }
    for (int i = 0; i < nt; i++) {
        tensor *t = &ws->t[i];
        t->data = rw_alloc(sizeof(float) * (size_t)t->rows * (size_t)bp);
        if (!t->data) return RW_ERR_NO_MEMORY;
        t->pre = activation_needs_z(t->act) ? rw_alloc(sizeof(float) * (size_t)t->rows * bp)
                                            : t->data;
        if (!t->pre) return RW_ERR_NO_MEMORY;
        /* The input's gradient is never needed. */
        if (with_grads && i > 0) {
            t->grad = rw_alloc(sizeof(float) * (size_t)t->rows * (size_t)bp);
            if (!t->grad) return RW_ERR_NO_MEMORY;
        }
    }
    ws->n_layers = m->n_layers;
    ws->scratch = calloc((size_t)m->n_layers + 1, sizeof(float *));
    ws->scratch_len = calloc((size_t)m->n_layers + 1, sizeof(int64_t));
    if (!ws->scratch || !ws->scratch_len) return RW_ERR_NO_MEMORY;
    for (int l = 0; l < m->n_layers; l++) {
        const layer *ly = m->layers[l];
        int64_t floats = ly->ops->scratch_floats ? ly->ops->scratch_floats(ly, bp) : 0;
        ws->scratch_len[l] = floats > 0 ? floats : 0;
        if (floats > 0 && !(ws->scratch[l] = rw_alloc(sizeof(float) * (size_t)floats)))
            return RW_ERR_NO_MEMORY;
    }
    if (!with_grads) return RW_OK;
    ws->n_params = m->n_params;
    ws->grad = calloc((size_t)m->n_params + 1, sizeof(float *));
    ws->loss = calloc((size_t)bp, sizeof(double));
    if (!ws->grad || !ws->loss) return RW_ERR_NO_MEMORY;
    for (int p = 0; p < m->n_params; p++) {
        ws->grad[p] = rw_alloc(sizeof(float) * (size_t)param_count(&m->params[p]));
        if (!ws->grad[p]) return RW_ERR_NO_MEMORY;
    }
    return RW_OK;
}

rw_status workspace_init(workspace *ws, const rw_model *m, int batch, int with_grads)
{
    int bp = rw_pad_batch(batch > 0 ? batch : 1);
    if (workspace_alloc(ws, m, bp, with_grads) == RW_OK) return RW_OK;
    workspace_free(ws);
    return rw_fail(RW_ERR_NO_MEMORY, "out of memory for activations of a batch of %d", batch);
}

rw_status workspace_init_vector(workspace *ws, const rw_model *m)
{
    if (workspace_alloc(ws, m, 1, 0) == RW_OK) return RW_OK;
    workspace_free(ws);
    return rw_fail(RW_ERR_NO_MEMORY, "out of memory for the buffers of one sample");
}

void workspace_free(workspace *ws)
{
    for (int i = 0; ws->t && i < ws->n_tensors; i++) {
        tensor *t = &ws->t[i];
        if (t->pre != t->data) rw_free(t->pre);
        rw_free(t->data);
        rw_free(t->grad);
    }
    free(ws->t);
    for (int l = 0; ws->scratch && l < ws->n_layers; l++) rw_free(ws->scratch[l]);
    free(ws->scratch);
    free(ws->scratch_len);
    for (int p = 0; ws->grad && p < ws->n_params; p++) rw_free(ws->grad[p]);
    free(ws->grad);
    free(ws->loss);
    memset(ws, 0, sizeof *ws);
}

param_batch workspace_param_batch(const workspace *ws, const rw_model *m, int q, int n)
{
    const param *p = &m->params[q];
    param_batch b = {NULL, NULL, NULL, ws->bp, n};
    if (p->x_tensor >= 0) {
        b.x = ws->t[p->x_tensor].data;
        b.dy = ws->t[p->y_tensor].grad;
        b.y = ws->t[p->y_tensor].data;
        return b;
    }
    const layer *ly = m->layers[p->layer];
    RW_ASSERT(ly->ops->param_batch, "parameter %s has no tensors", p->name);
    ly->ops->param_batch(ly, ws->scratch[p->layer], ws->bp, q - m->first_param[p->layer], &b);
    return b;
}

layer_io workspace_io(const workspace *ws, const rw_model *m, int l)
{
    const layer *ly = m->layers[l];
    layer_io io;
    memset(&io, 0, sizeof io);
    RW_ASSERT(ly->n_inputs <= LAYER_MAX_INPUTS, "layer %s has %d inputs", ly->name, ly->n_inputs);
    for (int i = 0; i < ly->n_inputs; i++) {
        io.in[i] = &ws->t[ly->inputs[i]];
        io.accumulate[i] = ly->accumulate[i];
    }
    io.n_in = ly->n_inputs;
    io.out = &ws->t[ly->output];
    io.bp = ws->bp;
    io.n = ws->n > 0 ? ws->n : ws->bp;
    io.grad = ws->grad ? ws->grad + m->first_param[l] : NULL;
    io.scratch = ws->scratch ? ws->scratch[l] : NULL;
    io.scratch_len = ws->scratch_len ? ws->scratch_len[l] : 0;
    if (ly->has_shared_param && ws->grad) io.shared_grad = ws->grad[ly->shared_param];
    io.seq_len = ws->seq_len;
    io.pos0 = ws->pos0;
    io.tokens = ws->tokens;
    return io;
}

int phase_load_batch(const rw_model *m, workspace *ws, sample_rows src, const int *index, int n)
{
    /* A caller with both an index of samples and rows behind an index of
     * their own composes the two itself (the trainer, once an epoch). */
    RW_ASSERT(!(index && src.row_of), "a batch of samples indexed twice");
    if (!index) index = src.row_of;
    float *in = ws->t[0].data;
    int rows = model_input_rows(m);
    /* Blocks of 64 rows per chunk: each chunk writes its own rows. */
    int blocks = (size_t)rows * n < 32768 ? 1 : (rows + 63) / 64;
    TEAM_FOR(blk, blocks) {
        int f0 = blocks == 1 ? 0 : blk * 64;
        int f1 = blocks == 1 || f0 + 64 > rows ? rows : f0 + 64;
        if (src.bytes)
            input_stage_load_byte_rows(&m->input, src.bytes, src.features, index, n, in, ws->bp,
                                       f0, f1);
        else
            input_stage_load_rows(&m->input, src.x, src.features, index, n, in, ws->bp, f0, f1);
        team_chunk_done();
    }
    return blocks;
}

void network_load_batch(const rw_model *m, workspace *ws, sample_rows rows, const int *index,
                        int n)
{
#pragma omp parallel if ((size_t)model_input_rows(m) * n >= 32768 && omp_get_max_threads() > 1)
    phase_load_batch(m, ws, rows, index, n);
}

int phase_forward(const rw_model *m, workspace *ws, int l)
{
    layer_io io = workspace_io(ws, m, l);
    return m->layers[l]->ops->forward(m->layers[l], &io);
}

int phase_backward(const rw_model *m, workspace *ws, int l)
{
    layer_io io = workspace_io(ws, m, l);
    return m->layers[l]->ops->backward(m->layers[l], &io);
}

int phase_forward_vector(const rw_model *m, workspace *ws, int l)
{
    layer_io io = workspace_io(ws, m, l);
    return m->layers[l]->ops->forward_vector(m->layers[l], &io);
}

/* Whether one sample is worth a parallel region: some layer is big. */
static int vector_worth_threading(const rw_model *m)
{
    if (omp_get_max_threads() < 2) return 0;
    for (int q = 0; q < m->n_params; q++)
        if (m->params[q].is_weight && param_count(&m->params[q]) >= KERNEL_PARALLEL_MIN_WORK / 2)
            return 1;
    return 0;
}

int network_vector_worth_threading(const rw_model *m) { return vector_worth_threading(m); }

void network_forward_vector_phases(const rw_model *m, workspace *ws)
{
    for (int l = 0; l < m->n_layers; l++) team_phase(phase_forward_vector(m, ws, l));
}

void network_forward_vector(const rw_model *m, workspace *ws, team_sync *sync)
{
    team_sync_init(sync);
#pragma omp parallel if (vector_worth_threading(m))
    {
        team_begin(sync);
        network_forward_vector_phases(m, ws);
        team_end();
    }
}

int network_worth_threading(const rw_model *m, int bp)
{
    if (omp_get_max_threads() < 2) return 0;
    int64_t work = 0;
    for (int p = 0; p < m->n_params; p++)
        if (m->params[p].is_weight) work += param_count(&m->params[p]) * bp;
    return work >= 4 * KERNEL_PARALLEL_MIN_WORK;
}

void network_forward_layers(const rw_model *m, workspace *ws, int first, int last)
{
    team_sync sync;
    team_sync_init(&sync);
#pragma omp parallel if (network_worth_threading(m, ws->bp))
    {
        team_begin(&sync);
        for (int l = first; l <= last && l < m->n_layers; l++) team_phase(phase_forward(m, ws, l));
        team_end();
    }
}

void network_forward(const rw_model *m, workspace *ws) { network_forward_layers(m, ws, 0, m->n_layers - 1); }

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
