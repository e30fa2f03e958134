/* The residual add of a transformer block: y = a + b for two tensors of
 * the same width ("Deep Residual Learning for Image Recognition", He et
 * al. 2016). Backward hands dy to both inputs unchanged, adding to what a
 * later reader has written already where one has. Row chunks. */
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "kernels/team.h"
#include "nn/residual.h"

static int add_forward(const layer *ly, const layer_io *io)
{
    int bp = io->bp, chunks = layer_row_chunks(ly->out, bp);
    const float *a = io->in[0]->data, *b = io->in[1]->data;
    float *y = io->out->pre;
    TEAM_FOR(c, chunks) {
        int r0, r1;
        part_range(ly->out, c, chunks, &r0, &r1);
        for (size_t k = (size_t)r0 * bp; k < (size_t)r1 * bp; k++) y[k] = a[k] + b[k];
        team_chunk_done();
    }
    return chunks;
}

static int add_backward(const layer *ly, const layer_io *io)
{
    int bp = io->bp, chunks = layer_row_chunks(ly->out, bp);
    const float *dy = io->out->grad;
    TEAM_FOR(c, chunks) {
        int r0, r1;
        part_range(ly->out, c, chunks, &r0, &r1);
        for (int i = 0; i < 2; i++) {
            float *g = io->in[i]->grad;
            if (!g) continue;
            if (io->accumulate[i])
                for (size_t k = (size_t)r0 * bp; k < (size_t)r1 * bp; k++) g[k] += dy[k];
            else
                for (size_t k = (size_t)r0 * bp; k < (size_t)r1 * bp; k++) g[k] = dy[k];
            layer_grad_through_act(io->in[i], bp, r0, r1);
        }
        team_chunk_done();
    }
    return chunks;
}

static int add_params(layer *ly, param *out)
{
    (void)ly;
    (void)out;
    return 0;
}

static void add_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    (void)f;
    *out = (layer_shape){ly->in, ly->out, 0, 0, 0};
}

static void add_info(const layer *ly, rw_layer_info *out)
{
    (void)ly;
    out->nonzeros = 0;
    out->bytes = out->dense_bytes = 0;
}

static rw_status add_save(const layer *ly, st_writer *w, const char *path)
{
    (void)ly;
    (void)w;
    (void)path;
    return RW_OK;
}

static rw_status add_load(layer *ly, const st_file *f, const char *path)
{
    (void)ly;
    (void)f;
    (void)path;
    return RW_OK;
}

static int add_owns(const layer *ly, const char *name)
{
    (void)ly;
    (void)name;
    return 0;
}

static void add_destroy(layer *ly) { free(ly); }

static const layer_ops residual_ops = {
    .kind = "add",
    .forward = add_forward,
    .backward = add_backward,
    .forward_vector = add_forward,
    .params = add_params,
    .shape = add_shape,
    .info = add_info,
    .save = add_save,
    .load = add_load,
    .owns_tensor = add_owns,
    .destroy = add_destroy,
    .accumulates = 1,
};

layer *residual_new(const char *name, int dim, int a, int b, int index)
{
    layer *ly = calloc(1, sizeof *ly);
    if (!ly) {
        rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", name);
        return NULL;
    }
    ly->ops = &residual_ops;
    snprintf(ly->name, sizeof ly->name, "%s", name);
    ly->in = ly->out = dim;
    ly->act = RW_ACT_NONE;
    ly->inputs[0] = a;
    ly->inputs[1] = b;
    ly->n_inputs = 2;
    ly->output = index + 1;
    return ly;
}

static rw_status add_from_meta(const json_t *entry, const layer_meta *m, const char *path,
                               layer **out)
{
    (void)entry;
    if (m->in != m->out)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s of kind add has %d inputs and %d outputs, "
                       "expected the same", path, m->name, m->in, m->out);
    *out = residual_new(m->name, m->out, 0, 0, m->index);
    return *out ? RW_OK : rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
}

const layer_kind residual_kind = {"add", add_from_meta};
