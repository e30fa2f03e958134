/* Activation passes every layer kind may need, as team phases. */
#include "nn/layer.h"

#include "kernels/team.h"
#include "nn/activation.h"

int layer_row_chunks(int rows, int bp)
{
    int64_t per = 16384 / bp > 0 ? 16384 / bp : 1;
    return (int)((rows + per - 1) / per);
}

void layer_activate_rows(const tensor *out, int bp, int r0, int r1)
{
    if (out->act != RW_ACT_NONE && r1 > r0)
        activation_forward_range(out->act, out->slope, out->pre + (size_t)r0 * bp,
                                 out->data + (size_t)r0 * bp, (size_t)(r1 - r0) * bp);
}

void layer_grad_through_act(const tensor *t, int bp, int r0, int r1)
{
    if (t->act == RW_ACT_NONE || r1 <= r0) return;
    size_t off = (size_t)r0 * bp;
    activation_backward_range(t->act, t->slope, t->pre + off, t->data + off, t->grad + off,
                              (size_t)(r1 - r0) * bp);
}

int layer_activate_phase(const tensor *out, int bp)
{
    int chunks = layer_row_chunks(out->rows, bp);
    TEAM_FOR(c, chunks) {
        int r0, r1;
        part_range(out->rows, c, chunks, &r0, &r1);
        layer_activate_rows(out, bp, r0, r1);
        team_chunk_done();
    }
    return chunks;
}

int layer_grad_through_act_phase(const tensor *in, int bp)
{
    int chunks = layer_row_chunks(in->rows, bp);
    TEAM_FOR(c, chunks) {
        int r0, r1;
        part_range(in->rows, c, chunks, &r0, &r1);
        layer_grad_through_act(in, bp, r0, r1);
        team_chunk_done();
    }
    return chunks;
}
