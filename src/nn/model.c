#include "nn/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "sparsity/distribution.h"
#include "sparsity/nm_train.h"

rw_model_config rw_model_config_default(void)
{
    rw_model_config c;
    memset(&c, 0, sizeof c);
    c.distribution = RW_DIST_ERK;
    c.activation = RW_ACT_RELU;
    c.leaky_slope = 0.01f;
    c.seed = 1;
    return c;
}

rw_model *model_alloc(int n_layers)
{
    rw_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->layers = calloc((size_t)n_layers, sizeof *m->layers);
    if (!m->layers) {
        free(m);
        return NULL;
    }
    m->n_layers = n_layers;
    m->leaky_slope = 0.01f;
    m->norm_mean = 0.0f;
    m->norm_std = 1.0f;
    return m;
}

void rw_model_free(rw_model *model)
{
    if (!model) return;
    for (int l = 0; l < model->n_layers; l++) {
        layer *ly = &model->layers[l];
        csr_free(&ly->w);
        nm_free(&ly->nm);
        rw_free(ly->dense);
        rw_free(ly->bias);
        nm_train_layer_free(ly->nmt);
    }
    free(model->layers);
    free(model);
}

/* Uniform weights with bound 1/sqrt(fan-in), fan-in being the mean number of
 * stored inputs per output: the same output variance a dense layer gets
 * from PyTorch's default initialisation, so sparse layers do not start with
 * vanishing activations. */
static void init_weights(layer *l, rng_state *r)
{
    int64_t count = layer_weight_count(l);
    double fan_in = l->out > 0 ? (double)count / l->out : 1.0;
    if (fan_in < 1.0) fan_in = 1.0;
    float bound = (float)(1.0 / sqrt(fan_in));
    float *w = layer_weights(l);
    for (int64_t k = 0; k < count; k++) w[k] = bound * (float)(2.0 * rng_uniform(r) - 1.0);
    for (int o = 0; o < l->out; o++) l->bias[o] = bound * (float)(2.0 * rng_uniform(r) - 1.0);
}

rw_status rw_model_create(const rw_model_config *c, rw_model **out)
{
    *out = NULL;
    if (!c || !c->sizes || c->n_layers < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a model needs at least one layer");
    for (int l = 0; l <= c->n_layers; l++)
        if (c->sizes[l] < 1 || c->sizes[l] > RW_MAX_WIDTH)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer size %d is %d, expected 1 to %d", l,
                           c->sizes[l], RW_MAX_WIDTH);
    if (c->sizes[c->n_layers] > RW_MAX_CLASSES)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%d classes is more than the %d supported",
                       c->sizes[c->n_layers], RW_MAX_CLASSES);
    if (c->activation < RW_ACT_RELU || c->activation > RW_ACT_NONE)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "unknown activation %d", (int)c->activation);

    int n = c->n_layers;
    double *density = calloc((size_t)n, sizeof *density);
    int *keep = calloc((size_t)n, sizeof *keep);
    if (!density || !keep) {
        free(density);
        free(keep);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a model");
    }
    rw_status st = RW_OK;
    if (c->layer_sparsity) {
        for (int l = 0; l < n && st == RW_OK; l++) {
            double s = c->layer_sparsity[l];
            if (!(s >= 0.0 && s < 1.0))
                st = rw_fail(RW_ERR_INVALID_ARGUMENT, "sparsity of layer %d is %g, outside [0, 1)",
                             l, s);
            density[l] = 1.0 - s;
        }
    } else {
        keep[0] = c->dense_first;
        keep[n - 1] = keep[n - 1] || c->dense_last;
        st = sparsity_distribute(c->sizes, n, c->sparsity, c->distribution, keep, density);
    }
    rw_model *m = st == RW_OK ? model_alloc(n) : NULL;
    if (st == RW_OK && !m) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a model");
    if (m) m->leaky_slope = c->leaky_slope > 0 ? c->leaky_slope : 0.01f;

    for (int l = 0; l < n && st == RW_OK; l++) {
        layer *ly = &m->layers[l];
        ly->in = c->sizes[l];
        ly->out = c->sizes[l + 1];
        ly->act = l == n - 1 ? RW_ACT_NONE : c->activation;
        /* Dense storage (OpenBLAS) only where the user asked for it; a layer
         * the distribution filled up stays CSR, so it runs on rewire's own
         * kernels, whose results do not depend on the thread count. */
        if (c->layer_sparsity)
            ly->sparse = c->layer_sparsity[l] > 0.0;
        else
            ly->sparse = !keep[l] && c->sparsity > 0.0;
        ly->bias = rw_alloc(sizeof(float) * (size_t)ly->out);
        if (!ly->bias) {
            st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %d", l);
            break;
        }
        rng_state r;
        rng_seed_stream(&r, c->seed, (uint64_t)l);
        if (ly->sparse) {
            st = sparsity_random_pattern(&ly->w, ly->out, ly->in, density[l], &r);
        } else {
            ly->dense = rw_alloc(sizeof(float) * (size_t)ly->in * (size_t)ly->out);
            if (!ly->dense)
                st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for dense layer %d (%d x %d)", l,
                             ly->out, ly->in);
        }
        if (st == RW_OK) init_weights(ly, &r);
    }
    free(density);
    free(keep);
    if (st != RW_OK) {
        rw_model_free(m);
        return st;
    }
    *out = m;
    return RW_OK;
}

int rw_model_inputs(const rw_model *m) { return m->layers[0].in; }
int rw_model_classes(const rw_model *m) { return m->layers[m->n_layers - 1].out; }
int rw_model_layer_count(const rw_model *m) { return m->n_layers; }

rw_status rw_model_layer_info(const rw_model *m, int l, rw_layer_info *out)
{
    if (l < 0 || l >= m->n_layers)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %d does not exist (the model has %d)", l,
                       m->n_layers);
    const layer *ly = &m->layers[l];
    int64_t dense_weights = (int64_t)ly->in * ly->out;
    out->in = ly->in;
    out->out = ly->out;
    out->sparse = ly->sparse;
    /* An N:M-trained layer reports its N:M weights, not the dense W. */
    const nm_matrix *nm = ly->is_nm ? &ly->nm : ly->nmt ? &ly->nmt->nm : NULL;
    out->nm_n = nm ? nm->n : 0;
    out->nm_m = nm ? nm->m : 0;
    out->activation = ly->act;
    out->nonzeros = nm ? (int64_t)ly->out * nm_slots_per_row(nm) : layer_weight_count(ly);
    out->sparsity = dense_weights ? 1.0 - (double)out->nonzeros / (double)dense_weights : 0.0;
    out->dense_bytes = 4 * (dense_weights + ly->out);
    if (ly->sparse)
        out->bytes = 4 * ((int64_t)ly->out + 1) + 8 * out->nonzeros + 4 * (int64_t)ly->out;
    else if (nm)
        out->bytes = nm_weight_bytes(nm) + 4 * (int64_t)ly->out;
    else
        out->bytes = out->dense_bytes;
    return RW_OK;
}

double rw_model_sparsity(const rw_model *m)
{
    int64_t stored = 0, all = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const layer *ly = &m->layers[l];
        stored += ly->nmt ? (int64_t)ly->out * nm_slots_per_row(&ly->nmt->nm) : layer_weight_count(ly);
        all += (int64_t)m->layers[l].in * m->layers[l].out;
    }
    return all ? 1.0 - (double)stored / (double)all : 0.0;
}

void rw_model_set_normalization(rw_model *m, float mean, float std)
{
    m->norm_mean = mean;
    m->norm_std = std > 0 ? std : 1.0f;
}

void rw_model_get_normalization(const rw_model *m, float *mean, float *std)
{
    *mean = m->norm_mean;
    *std = m->norm_std;
}

/* The layer's weights as a dense row-major [out][in] matrix (caller frees). */
static float *layer_to_dense(const layer *ly)
{
    float *d = rw_alloc(sizeof(float) * (size_t)ly->in * (size_t)ly->out);
    if (!d) return NULL;
    if (ly->sparse) {
        for (int o = 0; o < ly->out; o++)
            for (int k = ly->w.indptr[o]; k < ly->w.indptr[o + 1]; k++)
                d[(size_t)o * ly->in + ly->w.indices[k]] = ly->w.values[k];
    } else if (ly->is_nm) {
        nm_to_dense(&ly->nm, d);
    } else {
        memcpy(d, ly->dense, sizeof(float) * (size_t)ly->in * (size_t)ly->out);
    }
    return d;
}

rw_status rw_model_to_nm(rw_model *m, int which, int n, int mm)
{
    if (which < -1 || which >= m->n_layers)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %d does not exist (the model has %d)", which,
                       m->n_layers);
    if (n < 1 || mm < 1 || n > mm || mm > NM_MAX_M)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "N:M pattern %d:%d needs 1 <= N <= M <= %d", n, mm,
                       NM_MAX_M);
    if (which >= 0 && m->layers[which].in % mm != 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "layer fc%d has %d inputs, not a multiple of M = %d", which + 1,
                       m->layers[which].in, mm);
    /* Its dense master weights and masks belong to the N:M training. */
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].nmt && (which < 0 || l == which))
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "layer fc%d is in N:M training: end it (rw_model_nm_train_end) before "
                           "converting",
                           l + 1);
    for (int l = 0; l < m->n_layers; l++) {
        layer *ly = &m->layers[l];
        if ((which >= 0 && l != which) || ly->in % mm != 0) continue;
        /* The dense detour costs in·out floats once, at conversion time;
         * training and inference never see it. */
        float *d = layer_to_dense(ly);
        nm_matrix nm;
        rw_status st = d ? nm_alloc(&nm, ly->out, ly->in, n, mm)
                         : rw_fail(RW_ERR_NO_MEMORY, "out of memory converting fc%d to %d:%d", l + 1,
                                   n, mm);
        if (st != RW_OK) {
            rw_free(d);
            return st;
        }
        nm_from_dense_magnitude(&nm, d);
        rw_free(d);
        if ((st = nm_prepare_backward(&nm)) != RW_OK) {
            nm_free(&nm);
            return st;
        }
        csr_free(&ly->w);
        nm_free(&ly->nm);
        rw_free(ly->dense);
        ly->dense = NULL;
        ly->sparse = 0;
        ly->is_nm = 1;
        ly->nm = nm;
    }
    return RW_OK;
}

rw_status rw_model_layer_fan(const rw_model *m, int l, int32_t *fan_in, int32_t *fan_out)
{
    if (l < 0 || l >= m->n_layers)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %d does not exist (the model has %d)", l,
                       m->n_layers);
    const layer *ly = &m->layers[l];
    if (ly->is_nm) {
        /* Every row holds groups·n slots; count the inputs they reach. */
        const nm_matrix *w = &ly->nm;
        int slots = nm_slots_per_row(w);
        if (fan_in)
            for (int o = 0; o < ly->out; o++) fan_in[o] = slots;
        if (fan_out) {
            for (int i = 0; i < ly->in; i++) fan_out[i] = 0;
            for (int o = 0; o < ly->out; o++)
                for (int k = 0; k < slots; k++)
                    fan_out[nm_slot_input(k, w->n, w->m, w->offsets + (size_t)o * slots)]++;
        }
        return RW_OK;
    }
    if (fan_in)
        for (int o = 0; o < ly->out; o++)
            fan_in[o] = ly->sparse ? ly->w.indptr[o + 1] - ly->w.indptr[o] : ly->in;
    if (fan_out)
        for (int i = 0; i < ly->in; i++)
            fan_out[i] = ly->sparse ? ly->w.t_indptr[i + 1] - ly->w.t_indptr[i] : ly->out;
    return RW_OK;
}
