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
#include "sparsity/nm_train.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/nm_kernels.h"
#include "kernels/team.h"
#include "nn/activation.h"

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

void nm_train_layer_free(nm_train_layer *t)
{
    if (!t) return;
    nm_free(&t->nm);
    rw_free(t->eff);
    rw_free(t->seen);
    free(t);
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

void nm_train_refresh_rows(layer *ly, float beta, int r0, int r1)
{
    nm_train_layer *t = ly->nmt;
    int slots = nm_slots_per_row(&t->nm), in = ly->in;
    nm_matrix rows = t->nm;
    rows.rows = r1 - r0;
    rows.values += (size_t)r0 * slots;
    rows.offsets += (size_t)r0 * slots;
    if (rows.m <= 8)
        select_small_groups(&rows, ly->dense + (size_t)r0 * in);
    else
        nm_from_dense_magnitude(&rows, ly->dense + (size_t)r0 * in);
    if (!t->eff) return;
    for (int o = r0; o < r1; o++) {
        const float *w = ly->dense + (size_t)o * in;
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
        const layer *ly = &model->layers[l];
        if (!nm_train_chosen(c, l, model->n_layers)) continue;
        any = 1;
        if (ly->sparse || ly->is_nm || ly->nmt)
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "layer fc%d is %s: N:M training starts from a dense layer (create the "
                           "model with sparsity 0)",
                           l + 1, ly->nmt ? "already N:M-trained" : ly->sparse ? "sparse" : "N:M");
        if (ly->in % c->m != 0)
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "layer fc%d has %d inputs, not a multiple of M = %d (N:M groups are M "
                           "consecutive inputs)",
                           l + 1, ly->in, c->m);
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
        if (in % c->m != 0)
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "layer fc%d has %lld inputs, not a multiple of M = %d", l + 1,
                           (long long)in, c->m);
        int64_t slots = out * (in / c->m) * c->n, layer = slots * (int64_t)(sizeof(float) + 2);
        /* values, offsets, last offsets; W_eff. Saturates: a checkpoint's
         * skeleton may declare 4096 layers of the widest size. */
        if (c->method == RW_NM_DECAY) layer += in * out * (int64_t)sizeof(float);
        if (__builtin_add_overflow(total, layer, &total)) total = INT64_MAX;
    }
    *bytes = total;
    return RW_OK;
}

int64_t nm_train_bytes(const rw_model *m)
{
    int64_t total = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const layer *ly = &m->layers[l];
        if (!ly->nmt) continue;
        /* As rw_estimate_nm_train_memory counts them. */
        total += (int64_t)ly->out * nm_slots_per_row(&ly->nmt->nm) * (int64_t)(sizeof(float) + 2);
        if (ly->nmt->eff) total += (int64_t)ly->in * ly->out * (int64_t)sizeof(float);
    }
    return total;
}

rw_status rw_model_nm_train_begin(rw_model *model, const rw_nm_train_config *c)
{
    rw_status st = nm_train_check_config(model, c);
    if (st != RW_OK) return st;
    int n_layers = model->n_layers;
    nm_train_layer **made = calloc((size_t)n_layers, sizeof *made);
    if (!made) return rw_fail(RW_ERR_NO_MEMORY, "out of memory starting N:M training");
    for (int l = 0; l < n_layers && st == RW_OK; l++) {
        const layer *ly = &model->layers[l];
        if (!nm_train_chosen(c, l, n_layers)) continue;
        nm_train_layer *t = calloc(1, sizeof *t);
        made[l] = t;
        if (!t) {
            st = rw_fail(RW_ERR_NO_MEMORY, "out of memory starting N:M training of fc%d", l + 1);
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
            st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for N:M training of fc%d", l + 1);
    }
    if (st != RW_OK) {
        for (int l = 0; l < n_layers; l++) nm_train_layer_free(made[l]);
        free(made);
        return st;
    }
    for (int l = 0; l < n_layers; l++) {
        layer *ly = &model->layers[l];
        if (!made[l]) continue;
        ly->nmt = made[l];
        nm_train_refresh_rows(ly, ly->nmt->beta, 0, ly->out);
        memcpy(ly->nmt->seen, ly->nmt->nm.offsets,
               (size_t)ly->out * nm_slots_per_row(&ly->nmt->nm));
    }
    free(made);
    return RW_OK;
}

double rw_model_nm_mask_change(rw_model *model)
{
    int64_t changed = 0, all = 0;
    for (int l = 0; l < model->n_layers; l++) {
        layer *ly = &model->layers[l];
        nm_train_layer *t = ly->nmt;
        if (!t) continue;
        const nm_matrix *w = &t->nm;
        size_t groups = (size_t)ly->out * w->groups;
        for (size_t g = 0; g < groups; g++) {
            uint64_t before = 0, now = 0;
            for (int j = 0; j < w->n; j++) {
                before |= 1ULL << t->seen[g * w->n + j];
                now |= 1ULL << w->offsets[g * w->n + j];
            }
            /* Each weight that entered the mask pushed one out. */
            changed += 2 * __builtin_popcountll(now & ~before);
        }
        all += (int64_t)ly->in * ly->out;
        memcpy(t->seen, w->offsets, groups * w->n);
    }
    return all ? (double)changed / (double)all : 0.0;
}

int rw_model_nm_train_config(const rw_model *model, rw_nm_train_config *config)
{
    const nm_train_layer *first = NULL;
    int n_layers = model ? model->n_layers : 0;
    for (int l = 0; l < n_layers && !first; l++) first = model->layers[l].nmt;
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
            if (nm_train_chosen(&(rw_nm_train_config){.layers = choices[k]}, l, n_layers) !=
                (model->layers[l].nmt != NULL))
                found = 0;
        if (found) c.layers = choices[k];
    }
    if (!found) return 0;
    if (config) *config = c;
    return 1;
}

double rw_model_nm_decay_beta(const rw_model *model)
{
    for (int l = 0; l < model->n_layers; l++)
        if (model->layers[l].nmt) return model->layers[l].nmt->beta;
    return 0.0;
}

void rw_model_nm_train_end(rw_model *model)
{
    for (int l = 0; l < model->n_layers; l++) {
        layer *ly = &model->layers[l];
        nm_train_layer *t = ly->nmt;
        if (!t) continue;
        ly->nm = t->nm;
        memset(&t->nm, 0, sizeof t->nm);
        ly->is_nm = 1;
        /* The pattern is fixed from here. Without the view (out of memory)
         * the backward still works, summing in memory. */
        (void)nm_prepare_backward(&ly->nm);
        rw_free(ly->dense);
        ly->dense = NULL;
        nm_train_layer_free(t);
        ly->nmt = NULL;
    }
}

int model_nm_training(const rw_model *m)
{
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].nmt) return 1;
    return 0;
}

int phase_nm_refresh(rw_model *m, int64_t step, int64_t total_steps)
{
    int chunks = 0;
    for (int l = 0; l < m->n_layers; l++)
        if (m->layers[l].nmt) chunks += blocks_of(m->layers[l].out);
    TEAM_FOR(c, chunks) {
        int l = 0, rest = c;
        for (;; l++) {
            if (!m->layers[l].nmt) continue;
            int b = blocks_of(m->layers[l].out);
            if (rest < b) break;
            rest -= b;
        }
        layer *ly = &m->layers[l];
        nm_train_layer *t = ly->nmt;
        float beta = t->method == RW_NM_DECAY ? nm_decay_beta(t->decay_end, step, total_steps) : 0;
        int r0, r1;
        block_range(ly->out, rest, &r0, &r1);
        nm_train_refresh_rows(ly, beta, r0, r1);
        if (rest == 0) t->beta = beta; /* read only after this phase */
        team_chunk_done();
    }
    return chunks;
}

int phase_nm_train_forward(const rw_model *m, workspace *ws, int l)
{
    const layer *ly = &m->layers[l];
    const nm_train_layer *t = ly->nmt;
    const nm_kernel_table *k = nm_kernels_active();
    int bp = ws->bp, in = ly->in, blocks = blocks_of(ly->out);
    const float *x = ws->a[l];
    float *z = ws->z[l], *a = ws->a[l + 1];
    TEAM_FOR(c, blocks) {
        int r0, r1;
        block_range(ly->out, c, &r0, &r1);
        if (t->beta > 0) {
            /* z = W_eff x + b: rows [r0, r1) of [out][in] times [in][bp]. */
            for (int o = r0; o < r1; o++)
                for (int b = 0; b < bp; b++) z[(size_t)o * bp + b] = ly->bias[o];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, bp, in, 1.0f,
                        t->eff + (size_t)r0 * in, in, x, bp, 1.0f, z + (size_t)r0 * bp, bp);
        } else {
            k->forward(&t->nm, ly->bias, x, z, bp, r0, r1);
        }
        if (ly->act != RW_ACT_NONE)
            activation_forward_range(ly->act, m->leaky_slope, z + (size_t)r0 * bp,
                                     a + (size_t)r0 * bp, (size_t)(r1 - r0) * bp);
        team_chunk_done();
    }
    return blocks;
}

/* Rows [r0, r1) of dW = dz xᵀ (dense) and db, plus the SR-STE term
 * λ (1 − mask) ⊙ W on the entries outside the mask. */
static void weight_grad_rows(const layer *ly, const float *dz, const float *x, float *gw,
                             float *gb, int bp, int r0, int r1)
{
    const nm_train_layer *t = ly->nmt;
    int in = ly->in;
    for (int o = r0; o < r1; o++) {
        const float *row = dz + (size_t)o * bp;
        float s = 0;
        for (int b = 0; b < bp; b++) s += row[b];
        gb[o] = s;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, in, bp, 1.0f,
                dz + (size_t)r0 * bp, bp, x, bp, 0.0f, gw + (size_t)r0 * in, in);
    if (!(t->lambda > 0)) return;
    const nm_matrix *w = &t->nm;
    int slots = nm_slots_per_row(w);
    for (int o = r0; o < r1; o++) {
        const float *wo = ly->dense + (size_t)o * in;
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

int phase_nm_train_backward(const rw_model *m, workspace *ws, int l)
{
    const layer *ly = &m->layers[l];
    const nm_train_layer *t = ly->nmt;
    const nm_kernel_table *k = nm_kernels_active();
    int bp = ws->bp, in = ly->in, grad_blocks = blocks_of(ly->out);
    /* dx in blocks of NMT_BLOCK inputs: whole groups of m for the kernel. */
    int group_block = NMT_BLOCK / t->nm.m > 0 ? NMT_BLOCK / t->nm.m : 1;
    int dx_blocks = l == 0 ? 0
                    : t->beta > 0 ? blocks_of(in)
                                  : (t->nm.groups + group_block - 1) / group_block;
    const float *dz = ws->g[l + 1];
    int total = grad_blocks + dx_blocks;
    TEAM_FOR(c, total) {
        if (c < grad_blocks) {
            int r0, r1;
            block_range(ly->out, c, &r0, &r1);
            weight_grad_rows(ly, dz, ws->a[l], ws->gw[l], ws->gb[l], bp, r0, r1);
        } else {
            int i0, i1, b = c - grad_blocks;
            if (t->beta > 0) {
                block_range(in, b, &i0, &i1);
                /* dx rows [i0, i1) = W_eff[:, i0:i1]ᵀ dz. */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1 - i0, bp, ly->out, 1.0f,
                            t->eff + i0, in, dz, bp, 0.0f, ws->g[l] + (size_t)i0 * bp, bp);
            } else {
                int g0 = b * group_block;
                int g1 = g0 + group_block < t->nm.groups ? g0 + group_block : t->nm.groups;
                k->backward_data(&t->nm, dz, ws->g[l], bp, g0, g1);
                i0 = g0 * t->nm.m;
                i1 = g1 * t->nm.m;
            }
            size_t off = (size_t)i0 * bp, len = (size_t)(i1 - i0) * bp;
            activation_backward_range(m->layers[l - 1].act, m->leaky_slope, ws->z[l - 1] + off,
                                      ws->a[l] + off, ws->g[l] + off, len);
        }
        team_chunk_done();
    }
    return total;
}

layer nm_train_view(const layer *ly)
{
    layer v = *ly;
    v.nmt = NULL;
    if (ly->nmt->beta > 0) {
        v.dense = ly->nmt->eff;
    } else {
        v.is_nm = 1;
        v.nm = ly->nmt->nm;
        v.dense = NULL;
    }
    return v;
}
