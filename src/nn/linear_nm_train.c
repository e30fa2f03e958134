/* N:M training from scratch: STE, SR-STE and mask decay over dense master
 * weights (see nm_train.h for the passes, rewire.h for the methods).
 *
 * STE and SR-STE: "Learning N:M Fine-grained Structured Sparse Neural
 * Networks From Scratch", Zhou et al. 2021. The mask is recomputed from
 * |W| before every step; the gradient of the N:M weights goes to all of W;
 * SR-STE adds λ_W (1 − mask) ⊙ W to that gradient, which for plain SGD is
 * the paper's update W ← W − γ(g + λ_W (1 − mask) ⊙ W) (eq. 5), and as in
 * the authors' code it then passes through momentum like any gradient.
 *
 * Decay: MDGF-Linear of "Progressive Gradient Flow for Robust N:M Sparsity
 * Training in Transformers", Bambhaniya et al. 2024: the masked-out
 * weights take part in the forward scaled by β, which decays linearly to 0;
 * the gradient goes straight through to W unscaled (as in the authors'
 * code), without the SR-STE term. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/nm_kernels.h"
#include "kernels/team.h"
#include "nn/activation.h"
#include "nn/model.h"
#include "nn/nm_train.h"

/* Rows of W (or inputs of dx) per block: fixed, so that every product is
 * cut the same way whatever the number of threads. */
#define NMT_BLOCK 32

static int blocks_of(int rows) { return (rows + NMT_BLOCK - 1) / NMT_BLOCK; }

static void block_range(int rows, int c, int *r0, int *r1)
{
    *r0 = c * NMT_BLOCK;
    *r1 = *r0 + NMT_BLOCK < rows ? *r0 + NMT_BLOCK : rows;
}

rw_nm_train_config rw_nm_train_config_default(void)
{
    rw_nm_train_config c = {2, 4, RW_NM_SRSTE, RW_NM_HIDDEN, 2e-4f, 0.5};
    return c;
}

float nm_decay_beta(double decay_end, int64_t step, int64_t total_steps)
{
    double span = decay_end * (double)total_steps;
    if (!(span > 0)) return 0.0f;
    double beta = 1.0 - (double)step / span;
    return beta > 0 ? (float)beta : 0.0f;
}

/* Small groups (m <= 8, every step of training): input i is kept when
 * fewer than n inputs of its group beat it, |w_j| > |w_i| or equal at a
 * lower position — the choice nm_from_dense_magnitude makes, by m² branch-
 * free comparisons instead of n passes of selection. */
static inline void select_groups_of(nm_matrix *w, const float *dense, const int m)
{
    int n = w->n;
    for (int o = 0; o < w->rows; o++)
        for (int g = 0; g < w->groups; g++) {
            const float *grp = dense + (size_t)o * w->cols + (size_t)g * m;
            float mag[8], val[9];
            uint8_t off[9];
            for (int i = 0; i < m; i++) mag[i] = fabsf(grp[i]);
            /* Kept entries go to slots 0.. in order, the others to the
             * spare slot m: no branch on the data. A NaN beats nothing and
             * is beaten by nothing, so a diverged group may keep more than
             * n; only the first n are copied out. */
            int kept = 0;
            for (int i = 0; i < m; i++) {
                int beaten = 0;
                for (int j = 0; j < m; j++) beaten += (mag[j] > mag[i]) | ((mag[j] == mag[i]) & (j < i));
                int keep = beaten < n, at = keep ? kept : m;
                off[at] = (uint8_t)i;
                val[at] = grp[i];
                kept += keep;
            }
            size_t k = ((size_t)o * w->groups + g) * n;
            memcpy(w->offsets + k, off, (size_t)n);
            memcpy(w->values + k, val, sizeof(float) * (size_t)n);
        }
}

static void select_small_groups(nm_matrix *w, const float *dense)
{
    /* Constant m, so that the compiler unrolls the comparisons. */
    if (w->m == 4)
        select_groups_of(w, dense, 4);
    else if (w->m == 2)
        select_groups_of(w, dense, 2);
    else if (w->m == 8)
        select_groups_of(w, dense, 8);
    else
        select_groups_of(w, dense, w->m);
}

void nm_train_refresh_rows(linear_nm_train *t, float beta, int r0, int r1)
{
    int slots = nm_slots_per_row(&t->nm), in = t->lin.base.in;
    nm_matrix rows = t->nm;
    rows.rows = r1 - r0;
    rows.values += (size_t)r0 * slots;
    rows.offsets += (size_t)r0 * slots;
    if (rows.m <= 8)
        select_small_groups(&rows, t->w + (size_t)r0 * in);
    else
        nm_from_dense_magnitude(&rows, t->w + (size_t)r0 * in);
    if (!t->eff) return;
    for (int o = r0; o < r1; o++) {
        const float *w = t->w + (size_t)o * in;
        float *e = t->eff + (size_t)o * in;
        for (int i = 0; i < in; i++) e[i] = beta * w[i];
        const uint8_t *off = t->nm.offsets + (size_t)o * slots;
        for (int k = 0; k < slots; k++) {
            int i = (k / t->nm.n) * t->nm.m + off[k];
            e[i] = w[i];
        }
    }
}

int nm_train_chosen(const rw_nm_train_config *c, int l, int n_layers)
{
    if (c->layers == RW_NM_ALL) return 1;
    if (c->layers == RW_NM_HIDDEN) return l < n_layers - 1;
    return l > 0 && l < n_layers - 1;
}

int nm_train_chosen_layer(const rw_nm_train_config *c, const rw_model *m, int l)
{
    if (!model_layer_has_weight(m, l)) return 0;
    int w = 0, n = 0;
    for (int j = 0; j < m->n_layers; j++)
        if (model_layer_has_weight(m, j)) w += j < l, n++;
    return nm_train_chosen(c, w, n);
}

linear_nm_train *nm_train_of(layer *ly)
{
    return ly && ly->ops == &linear_nm_train_ops ? (linear_nm_train *)ly : NULL;
}

const linear_nm_train *nm_train_of_const(const layer *ly)
{
    return ly && ly->ops == &linear_nm_train_ops ? (const linear_nm_train *)ly : NULL;
}

rw_status nm_train_check_config(const rw_model *model, const rw_nm_train_config *c)
{
    if (c->m < 1 || c->m > NM_MAX_M || c->n < 1 || c->n > c->m)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "N:M pattern %d:%d needs 1 <= N <= M <= %d", c->n,
                       c->m, NM_MAX_M);
    if (c->method < RW_NM_STE || c->method > RW_NM_DECAY)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "unknown N:M training method %d", (int)c->method);
    if (c->layers < RW_NM_HIDDEN || c->layers > RW_NM_INNER)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "unknown N:M layer choice %d", (int)c->layers);
    if (!(c->srste_lambda >= 0.0f) || !isfinite(c->srste_lambda))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "SR-STE lambda %g must be a finite value >= 0",
                       c->srste_lambda);
    if (!(c->decay_end > 0.0 && c->decay_end <= 1.0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "mask-decay end %g is outside (0, 1]", c->decay_end);
    int any = 0;
    for (int l = 0; l < model->n_layers; l++) {
        const layer *ly = model->layers[l];
        if (!nm_train_chosen_layer(c, model, l)) continue;
        any = 1;
        if (ly->ops != &linear_dense_ops)
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "layer %s is %s: N:M training starts from a dense layer (create the "
                           "model with sparsity 0)",
                           ly->name,
                           ly->ops == &linear_nm_train_ops ? "already N:M-trained"
                           : ly->ops == &linear_csr_ops    ? "sparse"
                                                           : "N:M");
        if (ly->in % c->m != 0)
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "layer %s has %d inputs, not a multiple of M = %d (N:M groups are M "
                           "consecutive inputs)",
                           ly->name, ly->in, c->m);
    }
    if (!any)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "no layer to train N:M: the model has %d layer%s and the choice excludes "
                       "the first and last",
                       model->n_layers, model->n_layers == 1 ? "" : "s");
    return RW_OK;
}

rw_status rw_estimate_nm_train_memory(const rw_model_config *model, const rw_nm_train_config *c,
                                      int64_t *bytes)
{
    if (!model || !c || !bytes || !model->sizes || model->n_layers < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_estimate_nm_train_memory: NULL or empty argument");
    if (c->m < 1 || c->m > NM_MAX_M || c->n < 1 || c->n > c->m)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "N:M pattern %d:%d needs 1 <= N <= M <= %d", c->n,
                       c->m, NM_MAX_M);
    int64_t total = 0;
    for (int l = 0; l < model->n_layers; l++) {
        if (!nm_train_chosen(c, l, model->n_layers)) continue;
        int64_t in = model->sizes[l], out = model->sizes[l + 1];
        if (in % c->m != 0) {
            char name[LAYER_NAME_CAP];
            model_layer_name(name, sizeof name, l);
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s has %lld inputs, not a multiple of M = %d",
                           name, (long long)in, c->m);
        }
        int64_t slots = out * (in / c->m) * c->n, layer = slots * (int64_t)(sizeof(float) + 2);
        /* values, offsets, last offsets; W_eff. Saturates: a checkpoint's
         * skeleton may declare 4096 layers of the widest size. */
        if (c->method == RW_NM_DECAY) layer += in * out * (int64_t)sizeof(float);
        if (__builtin_add_overflow(total, layer, &total)) total = INT64_MAX;
    }
    *bytes = total;
    return RW_OK;
}

/* As rw_estimate_nm_train_memory counts them: values, offsets, last
 * offsets; W_eff. */
static int64_t state_bytes(const linear_nm_train *t)
{
    const layer *ly = &t->lin.base;
    int64_t total = (int64_t)ly->out * nm_slots_per_row(&t->nm) * (int64_t)(sizeof(float) + 2);
    if (t->eff) total += (int64_t)ly->in * ly->out * (int64_t)sizeof(float);
    return total;
}

int64_t nm_train_bytes(const rw_model *m)
{
    int64_t total = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const linear_nm_train *t = nm_train_of_const(m->layers[l]);
        if (t) total += state_bytes(t);
    }
    return total;
}

static void nmt_free_state(linear_nm_train *t)
{
    nm_free(&t->nm);
    rw_free(t->eff);
    rw_free(t->seen);
}

static void nmt_destroy(layer *ly)
{
    linear_nm_train *t = (linear_nm_train *)ly;
    nmt_free_state(t);
    rw_free(t->w);
    rw_free(t->lin.bias);
    free(t);
}

rw_status rw_model_nm_train_begin(rw_model *model, const rw_nm_train_config *c)
{
    rw_status st = nm_train_check_config(model, c);
    if (st != RW_OK) return st;
    int n_layers = model->n_layers;
    linear_nm_train **made = calloc((size_t)n_layers, sizeof *made);
    if (!made) return rw_fail(RW_ERR_NO_MEMORY, "out of memory starting N:M training");
    for (int l = 0; l < n_layers && st == RW_OK; l++) {
        const layer *ly = model->layers[l];
        if (!nm_train_chosen_layer(c, model, l)) continue;
        linear_nm_train *t = calloc(1, sizeof *t);
        made[l] = t;
        if (!t) {
            st = rw_fail(RW_ERR_NO_MEMORY, "out of memory starting N:M training of %s", ly->name);
            break;
        }
        t->method = c->method;
        t->lambda = c->method == RW_NM_SRSTE ? c->srste_lambda : 0.0f;
        t->decay_end = c->decay_end;
        t->beta = c->method == RW_NM_DECAY ? 1.0f : 0.0f;
        st = nm_alloc(&t->nm, ly->out, ly->in, c->n, c->m);
        if (st != RW_OK) break;
        size_t slots = (size_t)ly->out * nm_slots_per_row(&t->nm);
        t->seen = rw_alloc(slots);
        if (c->method == RW_NM_DECAY) t->eff = rw_alloc(sizeof(float) * (size_t)ly->in * ly->out);
        if (!t->seen || (c->method == RW_NM_DECAY && !t->eff))
            st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for N:M training of %s", ly->name);
    }
    if (st != RW_OK) {
        for (int l = 0; l < n_layers; l++)
            if (made[l]) nmt_free_state(made[l]), free(made[l]);
        free(made);
        return st;
    }
    for (int l = 0; l < n_layers; l++) {
        linear_nm_train *t = made[l];
        if (!t) continue;
        /* The dense layer's W becomes the master weights. */
        linear *from = linear_of(model->layers[l]);
        linear_inherit(&t->lin, &linear_nm_train_ops, from);
        t->w = linear_dense_take_weights(model->layers[l]);
        model_replace_layer(model, l, &t->lin.base);
        nm_train_refresh_rows(t, t->beta, 0, t->lin.base.out);
        memcpy(t->seen, t->nm.offsets, (size_t)t->lin.base.out * nm_slots_per_row(&t->nm));
    }
    free(made);
    return RW_OK;
}

double rw_model_nm_mask_change(rw_model *model)
{
    int64_t changed = 0, all = 0;
    for (int l = 0; l < model->n_layers; l++) {
        linear_nm_train *t = nm_train_of(model->layers[l]);
        if (!t) continue;
        const nm_matrix *w = &t->nm;
        size_t groups = (size_t)t->lin.base.out * w->groups;
        for (size_t g = 0; g < groups; g++) {
            uint64_t before = 0, now = 0;
            for (int j = 0; j < w->n; j++) {
                before |= 1ULL << t->seen[g * w->n + j];
                now |= 1ULL << w->offsets[g * w->n + j];
            }
            /* Each weight that entered the mask pushed one out. */
            changed += 2 * __builtin_popcountll(now & ~before);
        }
        all += (int64_t)t->lin.base.in * t->lin.base.out;
        memcpy(t->seen, w->offsets, groups * w->n);
    }
    return all ? (double)changed / (double)all : 0.0;
}

int rw_model_nm_train_config(const rw_model *model, rw_nm_train_config *config)
{
    const linear_nm_train *first = NULL;
    int n_layers = model ? model->n_layers : 0;
    for (int l = 0; l < n_layers && !first; l++) first = nm_train_of_const(model->layers[l]);
    if (!first) return 0;
    rw_nm_train_config c = rw_nm_train_config_default();
    c.n = first->nm.n;
    c.m = first->nm.m;
    c.method = first->method;
    c.srste_lambda = first->lambda;
    c.decay_end = first->decay_end;
    /* rw_model_nm_train_begin chose the layers: the choice whose layers
     * these are (rw_model_nm_train_begin refuses a second call). */
    const rw_nm_layers choices[] = {RW_NM_HIDDEN, RW_NM_ALL, RW_NM_INNER};
    int found = 0;
    for (int k = 0; k < 3 && !found; k++) {
        found = 1;
        for (int l = 0; l < n_layers; l++)
            if (nm_train_chosen_layer(&(rw_nm_train_config){.layers = choices[k]}, model, l) !=
                (nm_train_of_const(model->layers[l]) != NULL))
                found = 0;
        if (found) c.layers = choices[k];
    }
    if (!found) return 0;
    if (config) *config = c;
    return 1;
}

double rw_model_nm_decay_beta(const rw_model *model)
{
    for (int l = 0; l < model->n_layers; l++) {
        const linear_nm_train *t = nm_train_of_const(model->layers[l]);
        if (t) return t->beta;
    }
    return 0.0;
}

void rw_model_nm_train_end(rw_model *model)
{
    for (int l = 0; l < model->n_layers; l++) {
        linear_nm_train *t = nm_train_of(model->layers[l]);
        if (!t) continue;
        /* The pattern is fixed from here. Without the view (out of memory)
         * the backward still works, summing in memory. */
        (void)nm_prepare_backward(&t->nm);
        layer *nm = linear_nm_take(&t->lin, &t->nm);
        if (!nm) continue; /* out of memory: the layer goes on as it is */
        model_replace_layer(model, l, nm);
    }
}

int model_nm_training(const rw_model *m)
{
    for (int l = 0; l < m->n_layers; l++)
        if (nm_train_of_const(m->layers[l])) return 1;
    return 0;
}

/* ---- The layer's passes ------------------------------------------------ */

/* After each optimizer step: masks and N:M weights from the updated W. */
static int nmt_after_step(layer *ly, int64_t step, int64_t total_steps)
{
    linear_nm_train *t = (linear_nm_train *)ly;
    int blocks = blocks_of(ly->out);
    TEAM_FOR(c, blocks) {
        float beta = t->method == RW_NM_DECAY ? nm_decay_beta(t->decay_end, step, total_steps) : 0;
        int r0, r1;
        block_range(ly->out, c, &r0, &r1);
        nm_train_refresh_rows(t, beta, r0, r1);
        if (c == 0) t->beta = beta; /* read only after this phase */
        team_chunk_done();
    }
    return blocks;
}

static int nmt_forward(const layer *ly, const layer_io *io)
{
    const linear_nm_train *t = (const linear_nm_train *)ly;
    const nm_kernel_table *k = nm_kernels_active();
    int bp = io->bp, in = ly->in, blocks = blocks_of(ly->out);
    const float *x = io->in[0]->data;
    float *z = io->out->pre;
    const float *bias = t->lin.bias;
    TEAM_FOR(c, blocks) {
        int r0, r1;
        block_range(ly->out, c, &r0, &r1);
        if (t->beta > 0) {
            /* z = W_eff x + b: rows [r0, r1) of [out][in] times [in][bp]. */
            for (int o = r0; o < r1; o++)
                for (int b = 0; b < bp; b++) z[(size_t)o * bp + b] = bias ? bias[o] : 0.0f;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, bp, in, 1.0f,
                        t->eff + (size_t)r0 * in, in, x, bp, 1.0f, z + (size_t)r0 * bp, bp);
        } else {
            k->forward(&t->nm, bias, x, z, bp, r0, r1);
        }
        layer_activate_rows(io->out, bp, r0, r1);
        team_chunk_done();
    }
    return blocks;
}

/* Rows [r0, r1) of dW = dz xᵀ (dense) and db, plus the SR-STE term
 * λ (1 − mask) ⊙ W on the entries outside the mask. */
static void weight_grad_rows(const linear_nm_train *t, const float *dz, const float *x, float *gw,
                             float *gb, int bp, int r0, int r1)
{
    int in = t->lin.base.in;
    if (gb) linear_bias_grad_rows(dz, gb, bp, r0, r1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, in, bp, 1.0f,
                dz + (size_t)r0 * bp, bp, x, bp, 0.0f, gw + (size_t)r0 * in, in);
    if (!(t->lambda > 0)) return;
    const nm_matrix *w = &t->nm;
    int slots = nm_slots_per_row(w);
    for (int o = r0; o < r1; o++) {
        const float *wo = t->w + (size_t)o * in;
        float *go = gw + (size_t)o * in;
        for (int g = 0; g < w->groups; g++) {
            uint64_t kept = 0;
            for (int j = 0; j < w->n; j++)
                kept |= 1ULL << w->offsets[(size_t)o * slots + g * w->n + j];
            for (int i = 0; i < w->m; i++) /* branch-free: the mask is data */
                go[g * w->m + i] += (float)(~kept >> i & 1) * t->lambda * wo[g * w->m + i];
        }
    }
}

static int nmt_backward(const layer *ly, const layer_io *io)
{
    const linear_nm_train *t = (const linear_nm_train *)ly;
    const nm_kernel_table *k = nm_kernels_active();
    const tensor *in = io->in[0];
    int bp = io->bp, n_in = ly->in, grad_blocks = blocks_of(ly->out);
    /* dx in blocks of NMT_BLOCK inputs: whole groups of m for the kernel. */
    int group_block = NMT_BLOCK / t->nm.m > 0 ? NMT_BLOCK / t->nm.m : 1;
    int dx_blocks = !in->grad     ? 0
                    : t->beta > 0 ? blocks_of(n_in)
                                  : (t->nm.groups + group_block - 1) / group_block;
    const float *dz = io->out->grad;
    int total = grad_blocks + dx_blocks;
    TEAM_FOR(c, total) {
        if (c < grad_blocks) {
            int r0, r1;
            block_range(ly->out, c, &r0, &r1);
            weight_grad_rows(t, dz, in->data, io->grad[0], linear_bias_grad(&t->lin, io), bp, r0,
                             r1);
        } else {
            int i0, i1, b = c - grad_blocks;
            if (t->beta > 0) {
                block_range(n_in, b, &i0, &i1);
                /* dx rows [i0, i1) = W_eff[:, i0:i1]ᵀ dz. */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1 - i0, bp, ly->out, 1.0f,
                            t->eff + i0, n_in, dz, bp, 0.0f, in->grad + (size_t)i0 * bp, bp);
            } else {
                int g0 = b * group_block;
                int g1 = g0 + group_block < t->nm.groups ? g0 + group_block : t->nm.groups;
                k->backward_data(&t->nm, dz, in->grad, bp, g0, g1);
                i0 = g0 * t->nm.m;
                i1 = g1 * t->nm.m;
            }
            layer_grad_through_act(in, bp, i0, i1);
        }
        team_chunk_done();
    }
    return total;
}

/* One sample runs as the current weights: W_eff while β > 0, else N:M. */
static int nmt_forward_vector(const layer *ly, const layer_io *io)
{
    const linear_nm_train *t = (const linear_nm_train *)ly;
    if (t->beta > 0) return linear_dense_vector(t->eff, t->lin.bias, ly, io);
    return linear_nm_vector(&t->nm, t->lin.bias, ly, io);
}

static int nmt_params(layer *ly, param *out)
{
    linear_nm_train *t = (linear_nm_train *)ly;
    out[0] = linear_weight_param(&t->lin, "weight");
    out[0].storage = PARAM_DENSE;
    out[0].values = &t->w;
    return 1 + linear_bias_params(&t->lin, out + 1);
}

static void nmt_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    (void)f;
    const linear_nm_train *t = (const linear_nm_train *)ly;
    int64_t w = (int64_t)ly->in * ly->out;
    *out = (layer_shape){ly->in, ly->out, linear_dense_bytes_for(ly->in, ly->out) + state_bytes(t),
                         w + ly->out, ly->act != RW_ACT_NONE};
}

/* The user sees the N:M weights, not the dense master. */
static void nmt_info(const layer *ly, rw_layer_info *out)
{
    const nm_matrix *w = &((const linear_nm_train *)ly)->nm;
    out->nm_n = w->n;
    out->nm_m = w->m;
    out->nonzeros = (int64_t)ly->out * nm_slots_per_row(w);
    out->bytes = nm_weight_bytes(w) + 4 * (int64_t)ly->out;
}

/* Until the training ends the file holds the dense master weights (kind
 * "dense"); a checkpoint adds the N:M state (nm_train_checkpoint.c). */
static rw_status nmt_save(const layer *ly, st_writer *w, const char *path)
{
    (void)path;
    const linear_nm_train *t = (const linear_nm_train *)ly;
    char name[LAYER_NAME_CAP + 16];
    int64_t shape[2] = {ly->out, ly->in};
    snprintf(name, sizeof name, "%s.weight", ly->name);
    rw_status st = st_writer_add(w, name, ST_F32, 2, shape, t->w);
    return st == RW_OK ? linear_save_bias(&t->lin, w) : st;
}

static int nmt_owns(const layer *ly, const char *name)
{
    static const char *const fields[] = {"weight", "bias", NULL};
    return linear_tensor_is((const linear *)ly, name, fields);
}

const layer_ops linear_nm_train_ops = {
    .kind = "dense",
    .forward = nmt_forward,
    .backward = nmt_backward,
    .forward_vector = nmt_forward_vector,
    .params = nmt_params,
    .shape = nmt_shape,
    .info = nmt_info,
    .describe = linear_describe,
    .save = nmt_save,
    .load = NULL, /* loaded as a dense layer, then N:M training begins again */
    .owns_tensor = nmt_owns,
    .after_step = nmt_after_step,
    .destroy = nmt_destroy,
    .is_linear = 1,
};
