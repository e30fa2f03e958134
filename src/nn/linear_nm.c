/* An N:M structured sparse linear layer: in every group of M consecutive
 * inputs of an output row, N weights are stored, each with its offset in
 * the group ("Learning N:M Fine-grained Structured Sparse Neural Networks
 * From Scratch", Zhou et al. 2021). Every row holds the same work, so the
 * passes split rows (and groups of inputs) into equal ranges. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/nm_kernels.h"
#include "kernels/team.h"
#include "nn/activation.h"
#include "nn/linear.h"

typedef struct {
    linear lin;
    nm_matrix nm; /* out × in */
} linear_nm;

static const linear_nm *nm_of(const layer *ly) { return (const linear_nm *)ly; }

/* Parts a layer is cut into: equal row ranges carry equal work. */
static int nm_parts(const linear_nm *l, int bp)
{
    int64_t work = (int64_t)l->lin.base.out * nm_slots_per_row(&l->nm) * bp;
    return work >= KERNEL_PARALLEL_MIN_WORK ? omp_get_num_threads() : 1;
}

static int nm_forward(const layer *ly, const layer_io *io)
{
    const linear_nm *l = nm_of(ly);
    const nm_kernel_table *k = nm_kernels_active();
    int bp = io->bp, parts = nm_parts(l, bp);
    TEAM_FOR(t, parts) {
        int r0, r1;
        part_range(ly->out, t, parts, &r0, &r1);
        k->forward(&l->nm, l->lin.bias, io->in[0]->data, io->out->pre, bp, r0, r1);
        layer_activate_rows(io->out, bp, r0, r1);
        team_chunk_done();
    }
    return parts;
}

/* Part t of `parts`, split as a dense layer's: rows of the gradients, then
 * groups of inputs of dx. */
static void backward_part(const linear_nm *l, const layer_io *io, int t, int parts)
{
    const layer *ly = &l->lin.base;
    const nm_kernel_table *k = nm_kernels_active();
    int bp = io->bp, r0, r1;
    const float *dz = io->out->grad;
    const tensor *in = io->in[0];
    if (t < parts) {
        part_range(ly->out, t, parts, &r0, &r1);
        k->weight_grad(&l->nm, dz, in->data, io->grad[0], bp, r0, r1);
        if (l->lin.has_bias) linear_bias_grad_rows(dz, io->grad[1], bp, r0, r1);
        return;
    }
    part_range(l->nm.groups, t - parts, parts, &r0, &r1);
    if (r1 == r0) return;
    k->backward_data(&l->nm, dz, in->grad, bp, r0, r1);
    layer_grad_through_act(in, bp, r0 * l->nm.m, r1 * l->nm.m);
}

static int nm_backward(const layer *ly, const layer_io *io)
{
    const linear_nm *l = nm_of(ly);
    int parts = nm_parts(l, io->bp);
    int total = (io->in[0]->grad ? 2 : 1) * parts;
    TEAM_FOR(t, total) {
        backward_part(l, io, t, parts);
        team_chunk_done();
    }
    return total;
}

int linear_nm_vector(const nm_matrix *w, const float *bias, const layer *ly, const layer_io *io)
{
    int64_t weights = (int64_t)ly->out * nm_slots_per_row(w);
    int parts = weights >= KERNEL_PARALLEL_MIN_WORK ? omp_get_num_threads() : 1;
    float *z = io->out->pre, *a = io->out->data;
    TEAM_FOR(t, parts) {
        int r0, r1;
        part_range(ly->out, t, parts, &r0, &r1);
        nm_kernels_active()->forward_vector(w, bias, io->in[0]->data, z, r0, r1);
        if (ly->act != RW_ACT_NONE && r1 > r0)
            activation_forward_range(ly->act, ly->slope, z + r0, a + r0, (size_t)(r1 - r0));
        team_chunk_done();
    }
    return parts;
}

static int nm_forward_vector(const layer *ly, const layer_io *io)
{
    const linear_nm *l = nm_of(ly);
    return linear_nm_vector(&l->nm, l->lin.bias, ly, io);
}

static int nm_params(layer *ly, param *out)
{
    linear_nm *l = (linear_nm *)ly;
    /* "opt.fc1.weight.m1" in checkpoints, as before N:M had a record. */
    out[0] = linear_weight_param(&l->lin, "weight");
    out[0].storage = PARAM_NM;
    out[0].nm = &l->nm;
    out[0].values = &l->nm.values;
    return 1 + linear_bias_params(&l->lin, out + 1);
}

static void nm_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    (void)f;
    const nm_matrix *w = &nm_of(ly)->nm;
    int64_t slots = (int64_t)ly->out * (ly->in / w->m) * w->n;
    *out = (layer_shape){ly->in, ly->out,
                         4 * (int64_t)ly->out + nm_memory_bytes(ly->out, ly->in, w->n, w->m),
                         slots + ly->out, ly->act != RW_ACT_NONE};
}

static void nm_info(const layer *ly, rw_layer_info *out)
{
    const nm_matrix *w = &nm_of(ly)->nm;
    out->nm_n = w->n;
    out->nm_m = w->m;
    out->nonzeros = (int64_t)ly->out * nm_slots_per_row(w);
    out->bytes = nm_weight_bytes(w) + 4 * (int64_t)ly->out;
}

static void nm_describe(const layer *ly, json_t *entry)
{
    linear_describe(ly, entry);
    json_object_set_new(entry, "n", json_integer(nm_of(ly)->nm.n));
    json_object_set_new(entry, "m", json_integer(nm_of(ly)->nm.m));
}

static rw_status nm_save(const layer *ly, st_writer *w, const char *path)
{
    (void)path;
    const linear_nm *l = nm_of(ly);
    char name[LAYER_NAME_CAP + 16];
    int64_t shape[2] = {ly->out, nm_slots_per_row(&l->nm)};
    snprintf(name, sizeof name, "%s.values", ly->name);
    rw_status st = st_writer_add(w, name, ST_F32, 2, shape, l->nm.values);
    snprintf(name, sizeof name, "%s.offsets", ly->name);
    if (st == RW_OK) st = st_writer_add(w, name, ST_U8, 2, shape, l->nm.offsets);
    return st == RW_OK ? linear_save_bias(&l->lin, w) : st;
}

static rw_status nm_load(layer *ly, const st_file *f, const char *path)
{
    linear_nm *l = (linear_nm *)ly;
    rw_status st = linear_load_bias(&l->lin, f, path);
    if (st != RW_OK) return st;
    const st_tensor *values, *offsets;
    st = nm_alloc(&l->nm, ly->out, ly->in, l->nm.n, l->nm.m);
    if (st != RW_OK) return st;
    int slots = nm_slots_per_row(&l->nm);
    char name[LAYER_NAME_CAP + 16];
    snprintf(name, sizeof name, "%s.values", ly->name);
    st = linear_want_tensor(f, path, name, ST_F32, 2, ly->out, slots, &values);
    snprintf(name, sizeof name, "%s.offsets", ly->name);
    if (st == RW_OK) st = linear_want_tensor(f, path, name, ST_U8, 2, ly->out, slots, &offsets);
    if (st != RW_OK) return st;
    memcpy(l->nm.values, values->data, values->nbytes);
    memcpy(l->nm.offsets, offsets->data, offsets->nbytes);
    char what[512];
    snprintf(what, sizeof what, "%s: layer %s", path, ly->name);
    st = nm_validate(&l->nm, what);
    return st == RW_OK ? nm_prepare_backward(&l->nm) : st;
}

static int nm_owns(const layer *ly, const char *name)
{
    static const char *const fields[] = {"values", "offsets", "bias", NULL};
    return linear_tensor_is((const linear *)ly, name, fields);
}

static void nm_destroy(layer *ly)
{
    linear_nm *l = (linear_nm *)ly;
    nm_free(&l->nm);
    rw_free(l->lin.bias);
    free(l);
}

const layer_ops linear_nm_ops = {
    .kind = "nm",
    .forward = nm_forward,
    .backward = nm_backward,
    .forward_vector = nm_forward_vector,
    .params = nm_params,
    .shape = nm_shape,
    .info = nm_info,
    .describe = nm_describe,
    .save = nm_save,
    .load = nm_load,
    .owns_tensor = nm_owns,
    .destroy = nm_destroy,
    .is_linear = 1,
};

/* Takes w (also on failure). */
static linear_nm *nm_new(linear *from, nm_matrix *w)
{
    linear_nm *l = calloc(1, sizeof *l);
    if (!l) {
        nm_free(w);
        rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", from->base.name);
        return NULL;
    }
    linear_inherit(&l->lin, &linear_nm_ops, from);
    l->nm = *w;
    memset(w, 0, sizeof *w);
    return l;
}

layer *linear_nm_from_dense(linear *from, const float *dense, int n, int mm)
{
    nm_matrix w;
    rw_status st = nm_alloc(&w, from->base.out, from->base.in, n, mm);
    if (st != RW_OK) return NULL;
    nm_from_dense_magnitude(&w, dense);
    if (nm_prepare_backward(&w) != RW_OK) {
        nm_free(&w);
        return NULL;
    }
    linear_nm *l = nm_new(from, &w);
    return l ? &l->lin.base : NULL;
}

layer *linear_nm_take(linear *from, nm_matrix *w)
{
    linear_nm *l = nm_new(from, w);
    return l ? &l->lin.base : NULL;
}

static rw_status nm_from_meta(const json_t *entry, const layer_meta *m, const char *path,
                              layer **out)
{
    json_int_t nn = 0, mm = 0;
    if (json_unpack((json_t *)entry, "{s:I, s:I}", "n", &nn, "m", &mm) != 0 || nn < 1 || mm < 1 ||
        nn > mm || mm > NM_MAX_M || m->in % mm != 0)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: layer %s of kind nm needs integers n, m with 1 <= n <= m <= %d "
                       "and m dividing its %d inputs",
                       path, m->name, NM_MAX_M, m->in);
    linear_nm *l = calloc(1, sizeof *l);
    if (!l) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    rw_status st = linear_from_meta(&l->lin, &linear_nm_ops, entry, m, path);
    if (st != RW_OK) {
        free(l);
        return st;
    }
    /* Allocated by nm_load, after the memory the file asks for has been
     * checked. */
    l->nm.n = (int)nn;
    l->nm.m = (int)mm;
    *out = &l->lin.base;
    return RW_OK;
}

const layer_kind linear_nm_kind = {"nm", nm_from_meta};
