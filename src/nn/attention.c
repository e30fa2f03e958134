/* Causal multi-head self-attention ("Attention Is All You Need", Vaswani
 * et al. 2017, as GPT-2 uses it), dense: the reference every sparse
 * pattern is checked against. The input is the fused projection qkv
 * [3·dim][bp] (rows 0..dim the queries, then the keys, then the values,
 * heads of dim/heads consecutive rows each); the output y [dim][bp].
 * Columns are sequences of seq_len tokens; token t of a sequence attends
 * to tokens 0..t of it:
 *   S = Q Kᵀ / √hd,  P = softmax over s ≤ t,  Y = P V           (per head)
 * and backward
 *   dV = Pᵀ dY,  dP = dY Vᵀ,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),
 *   dQ = dS K / √hd,  dK = dSᵀ Q / √hd.
 * Each (sequence, head) pair is one chunk: it gathers its Q, K, V into
 * token-major blocks and runs the products through sgemm; P stays in the
 * workspace's scratch from forward to backward. Every pair writes its own
 * entries, so results do not depend on the threads.
 *
 * That product path serves dense attention while its T×T probabilities
 * are small (context up to ATTENTION_GEMM_MAX). Every other pattern, and
 * dense attention at longer contexts, runs through the block-sparse core
 * (attn_core.c): tiles of query rows over the key ranges their pattern
 * (attn_pattern.h) chooses (a tile of one row when the pattern chooses per
 * row), keeping only each row's log-sum-exp from forward to backward, so
 * memory grows with T, never with T².
 *
 * One token at a time (forward_vector, generation): the keys and values of
 * the positions before pos0 are kept in the scratch (a KV cache,
 * token-major [context][dim] as the core reads them, the keys also
 * transposed, and the query of each tile's first position); the new
 * token's are added at pos0 and its query runs the same core as the full
 * forward pass, over the same ranges. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/team.h"
#include "nn/attention.h"
#include "nn/attn_core.h"
#include "nn/attn_sparsed.h"

/* Score entries computed and those causal dense attention would compute,
 * since the last reset: mutable behind a const layer. */
typedef struct {
    int64_t computed, causal;
} att_counts;

typedef struct {
    layer base;
    int heads, context;
    att_pattern pattern;
    int core_only; /* dense attention through the core at any context */
    att_counts *counts;
    att_sparsed *sparsed; /* the blocks each head chose for sparsed, or NULL */
} attention;

static const attention *att_of(const layer *ly) { return (const attention *)ly; }

/* Head h's chosen blocks when the pattern is sparsed. */
static const att_head_blocks *head_blocks_of(const attention *a, int h)
{
    return a->pattern.kind == ATT_SPARSED && a->sparsed ? &a->sparsed->head[h] : NULL;
}

/* Work floats of one (sequence, head) pair: Q, K, V, dY, dQ, dK, dV of T
 * × hd each and dP of T × T. */
static int64_t pair_work(int T, int hd) { return 7 * (int64_t)T * hd + (int64_t)T * T; }

static int uses_gemm(const attention *a)
{
    return a->pattern.kind == ATT_DENSE && a->context <= ATTENTION_GEMM_MAX && !a->core_only;
}

static int uses_means(const attention *a) { return att_pattern_ops_of(&a->pattern)->uses_block_means; }

/* Block means per head row: one per block of the longest sequence. */
static int means_cap(const attention *a) { return uses_means(a) ? a->context / a->pattern.block + 1 : 0; }

/* The rows a pattern's choice covers: a tile of tile_rows when it has a
 * tile choice, else one. */
static int choice_rows(const att_pattern *p)
{
    const att_pattern_ops *ops = att_pattern_ops_of(p);
    return ops->tile_ranges ? ops->tile_rows(p) : 1;
}

/* The ranges of the choice for rows [t0, t1) (one row when the pattern
 * chooses per row): q is the query at t0. */
static int choose(const att_pattern *p, const att_kv *kv, const float *q, int t0, int t1,
                  att_range *out, float *work)
{
    const att_pattern_ops *ops = att_pattern_ops_of(p);
    return ops->tile_ranges ? ops->tile_ranges(p, kv, q, t0, t1, out, work)
                            : ops->ranges(p, kv, q, t0, out, work);
}

/* Row stride of the transposed keys and values: a multiple of 16 floats
 * (64 bytes) and not of 256, so their hd rows, read side by side, do not
 * fall into the same cache sets. */
static int transposed_ld(int T)
{
    int ld = (T + 15) / 16 * 16 + 16;
    return ld % 256 == 0 ? ld + 16 : ld;
}

static int64_t core_work_floats(const attention *a, int T, int rows);

/* One thread's core work area, for sequences of up to the context. */
static int64_t core_slot_floats(const attention *a)
{
    return core_work_floats(a, a->context, a->context);
}

static int64_t att_scratch_floats(const layer *ly, int bp)
{
    const attention *a = att_of(ly);
    int dim = ly->out, T = a->context, hd = dim / a->heads;
    if (bp == 1) { /* generation: the cache (see cache_keys_t) */
        int rows = choice_rows(&a->pattern);
        return 2 * (int64_t)T * dim + (int64_t)dim * means_cap(a) +
               (int64_t)dim * transposed_ld(T) + (rows > 1 ? ((int64_t)T / rows + 1) * dim : 0);
    }
    if (!uses_gemm(a)) /* the core: each row's log-sum-exp, and one work area per thread */
        return (int64_t)bp * a->heads + (int64_t)omp_get_max_threads() * core_slot_floats(a);
    /* P for every pair (at most bp / T sequences of T, or fewer longer
     * ones: nseq · heads · T² ≤ bp · heads · T), and one work area per
     * thread. */
    return (int64_t)bp * a->heads * T + (int64_t)omp_get_max_threads() * pair_work(T, hd);
}

/* Rows r0.. of [rows][bp] at columns c0 .. c0 + T into a T × hd block. */
static void gather(const float *src, int bp, int r0, int c0, int T, int hd, float *dst)
{
    for (int d = 0; d < hd; d++) {
        const float *row = src + (size_t)(r0 + d) * bp + c0;
        for (int t = 0; t < T; t++) dst[(size_t)t * hd + d] = row[t];
    }
}

static void scatter(const float *src, int bp, int r0, int c0, int T, int hd, float *dst, int add)
{
    for (int d = 0; d < hd; d++) {
        float *row = dst + (size_t)(r0 + d) * bp + c0;
        for (int t = 0; t < T; t++) row[t] = add ? row[t] + src[(size_t)t * hd + d] : src[(size_t)t * hd + d];
    }
}

/* Row t of S (scaled) to causal softmax in place: positions > t get 0. */
static void causal_softmax_row(float *row, int t, int T)
{
    float best = row[0];
    for (int s = 1; s <= t; s++) best = row[s] > best ? row[s] : best;
    double sum = 0;
    for (int s = 0; s <= t; s++) sum += row[s] = expf(row[s] - best);
    float inv = (float)(1.0 / sum);
    for (int s = 0; s <= t; s++) row[s] *= inv;
    for (int s = t + 1; s < T; s++) row[s] = 0.0f;
}

static float *pair_buffer(const layer_io *io, const attention *a, int64_t p_floats, int T, int hd,
                          float **own)
{
    int id = omp_get_thread_num();
    *own = NULL;
    int64_t slots = (io->scratch_len - p_floats) / pair_work(T, hd);
    if (id < slots) return io->scratch + p_floats + (int64_t)id * pair_work(T, hd);
    /* More threads than when the workspace was made: a buffer of its own. */
    (void)a;
    *own = malloc(sizeof(float) * (size_t)pair_work(T, hd));
    RW_ASSERT(*own != NULL, "out of memory for attention's work buffer of layer %s",
              a->base.name);
    return *own;
}

static void count_scores(const attention *a, int64_t computed, int64_t causal)
{
#pragma omp atomic
    a->counts->computed += computed;
#pragma omp atomic
    a->counts->causal += causal;
}

static int gemm_forward(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    int dim = ly->out, H = a->heads, hd = dim / H, T = io->seq_len, bp = io->bp;
    int nseq = io->n / T, pairs = nseq * H;
    int64_t p_floats = (int64_t)pairs * T * T;
    const float *qkv = io->in[0]->data;
    float *y = io->out->pre, scale = 1.0f / sqrtf((float)hd);
    TEAM_FOR(c, pairs + 1) {
        if (c == pairs) { /* the padding columns */
            for (int d = 0; d < dim; d++)
                for (int j = io->n; j < bp; j++) y[(size_t)d * bp + j] = 0.0f;
            team_chunk_done();
            continue;
        }
        int seq = c / H, h = c % H, c0 = seq * T;
        float *own, *w = pair_buffer(io, a, p_floats, T, hd, &own);
        float *Q = w, *K = Q + T * hd, *V = K + T * hd, *Y = V + T * hd;
        float *P = io->scratch + (int64_t)c * T * T;
        gather(qkv, bp, h * hd, c0, T, hd, Q);
        gather(qkv, bp, dim + h * hd, c0, T, hd, K);
        gather(qkv, bp, 2 * dim + h * hd, c0, T, hd, V);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, scale, Q, hd, K, hd, 0.0f,
                    P, T);
        for (int t = 0; t < T; t++) causal_softmax_row(P + (size_t)t * T, t, T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, V, hd, 0.0f,
                    Y, hd);
        scatter(Y, bp, h * hd, c0, T, hd, y, 0);
        count_scores(a, (int64_t)T * (T + 1) / 2, (int64_t)T * (T + 1) / 2);
        free(own);
        team_chunk_done();
    }
    return pairs + 1;
}

static int gemm_backward(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    int dim = ly->out, H = a->heads, hd = dim / H, T = io->seq_len, bp = io->bp;
    int nseq = io->n / T, pairs = nseq * H;
    int64_t p_floats = (int64_t)pairs * T * T;
    const tensor *in = io->in[0];
    const float *qkv = in->data, *dy = io->out->grad;
    float scale = 1.0f / sqrtf((float)hd);
    int add = io->accumulate[0];
    TEAM_FOR(c, pairs + 1) {
        if (c == pairs) {
            if (!add)
                for (int d = 0; d < 3 * dim; d++)
                    for (int j = io->n; j < bp; j++) in->grad[(size_t)d * bp + j] = 0.0f;
            team_chunk_done();
            continue;
        }
        int seq = c / H, h = c % H, c0 = seq * T;
        float *own, *w = pair_buffer(io, a, p_floats, T, hd, &own);
        float *Q = w, *K = Q + T * hd, *V = K + T * hd, *dY = V + T * hd;
        float *dQ = dY + T * hd, *dK = dQ + T * hd, *dV = dK + T * hd, *dP = dV + T * hd;
        const float *P = io->scratch + (int64_t)c * T * T;
        gather(qkv, bp, h * hd, c0, T, hd, Q);
        gather(qkv, bp, dim + h * hd, c0, T, hd, K);
        gather(qkv, bp, 2 * dim + h * hd, c0, T, hd, V);
        gather(dy, bp, h * hd, c0, T, hd, dY);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dY, hd, 0.0f,
                    dV, hd);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dY, hd, V, hd, 0.0f,
                    dP, T);
        for (int t = 0; t < T; t++) { /* dP becomes dS */
            const float *p = P + (size_t)t * T;
            float *g = dP + (size_t)t * T;
            double dot = 0;
            for (int s = 0; s <= t; s++) dot += (double)p[s] * g[s];
            for (int s = 0; s <= t; s++) g[s] = p[s] * (g[s] - (float)dot);
            for (int s = t + 1; s < T; s++) g[s] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, scale, dP, T, K, hd, 0.0f,
                    dQ, hd);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, scale, dP, T, Q, hd, 0.0f,
                    dK, hd);
        scatter(dQ, bp, h * hd, c0, T, hd, in->grad, add);
        scatter(dK, bp, dim + h * hd, c0, T, hd, in->grad, add);
        scatter(dV, bp, 2 * dim + h * hd, c0, T, hd, in->grad, add);
        free(own);
        team_chunk_done();
    }
    return pairs + 1;
}

/* Floats of one core work area: a tile's queries, outputs, output
 * gradients and query gradients, its log-sum-exps and deltas, the block
 * means, the pattern's work and its ranges, and `rows` positions of
 * token-major K, V, dK, dV and transposed K, V (none when decoding). */
static int64_t core_work_floats(const attention *a, int T, int rows)
{
    int hd = a->base.out / a->heads;
    const att_pattern_ops *ops = att_pattern_ops_of(&a->pattern);
    int64_t tr = rows ? (int64_t)hd * transposed_ld(rows) : 0;
    return 4 * (int64_t)ATT_TILE_ROWS * hd + 2 * ATT_TILE_ROWS + (int64_t)hd * means_cap(a) +
           ops->work_floats(&a->pattern, T, hd) + 2 * (int64_t)ops->max_ranges(&a->pattern) +
           4 * (int64_t)rows * hd + 2 * tr + 16;
}

typedef struct {
    float *q, *o, *g, *dq, *lse, *delta; /* a tile: [ATT_TILE_ROWS][hd], [ATT_TILE_ROWS] */
    float *means, *work;
    float *K, *V, *dK, *dV; /* [rows][hd] */
    float *KT, *VT;         /* [hd][transposed_ld(rows)] */
    att_range *ranges;
} core_work;

static void core_work_layout(const attention *a, int rows, float *buf, core_work *w)
{
    int hd = a->base.out / a->heads, tile = ATT_TILE_ROWS * hd;
    size_t tr = rows ? (size_t)hd * transposed_ld(rows) : 0;
    w->K = buf, w->V = w->K + (size_t)rows * hd, w->dK = w->V + (size_t)rows * hd;
    w->dV = w->dK + (size_t)rows * hd, w->KT = w->dV + (size_t)rows * hd, w->VT = w->KT + tr;
    w->q = w->VT + tr, w->o = w->q + tile, w->g = w->o + tile, w->dq = w->g + tile;
    w->lse = w->dq + tile, w->delta = w->lse + ATT_TILE_ROWS;
    w->means = w->delta + ATT_TILE_ROWS;
    w->ranges = (att_range *)(w->means + (size_t)hd * means_cap(a));
    w->work = (float *)(w->ranges + att_pattern_ops_of(&a->pattern)->max_ranges(&a->pattern));
}

static float *core_work_new(const attention *a, int T, int rows, core_work *w)
{
    float *buf = malloc(sizeof(float) * (size_t)core_work_floats(a, T, rows));
    RW_ASSERT(buf != NULL, "out of memory for attention's work buffer of layer %s", a->base.name);
    core_work_layout(a, rows, buf, w);
    return buf;
}

/* This thread's work area for a pass over sequences of T tokens: its slot
 * in the scratch after the log-sum-exps (att_scratch_floats), or, with
 * more threads than when the workspace was made, a buffer of its own
 * (*own, to free). The slots live as long as the workspace because a
 * fresh buffer per pass costs its page faults every pass: ~100 MB per
 * head at T = 64k. */
static void core_work_at(const layer_io *io, const attention *a, int T, core_work *w, float **own)
{
    int64_t first = (int64_t)io->bp * a->heads, slot = core_slot_floats(a);
    int id = omp_get_thread_num();
    *own = NULL;
    if (core_work_floats(a, T, T) <= slot && first + (id + 1) * slot <= io->scratch_len)
        core_work_layout(a, T, io->scratch + first + id * slot, w);
    else
        *own = core_work_new(a, T, T, w);
}

/* Pair (sequence, head) c's keys and values from [3·dim][bp] into the
 * work's token-major K and V and transposed KT and VT, with the block
 * means of its complete blocks when the pattern reads them. */
static att_kv pair_kv(const attention *a, const float *qkv, int bp, int c, int T, core_work *w)
{
    int dim = a->base.out, H = a->heads, hd = dim / H, h = c % H, c0 = (c / H) * T;
    int ldt = transposed_ld(T);
    gather(qkv, bp, dim + h * hd, c0, T, hd, w->K);
    gather(qkv, bp, 2 * dim + h * hd, c0, T, hd, w->V);
    for (int d = 0; d < hd; d++) {
        memcpy(w->KT + (size_t)d * ldt, qkv + (size_t)(dim + h * hd + d) * bp + c0, sizeof(float) * T);
        memcpy(w->VT + (size_t)d * ldt, qkv + (size_t)(2 * dim + h * hd + d) * bp + c0,
               sizeof(float) * T);
    }
    att_kv kv = {w->K, w->V, hd, hd, uses_means(a) ? w->means : NULL, hd, head_blocks_of(a, h),
                 w->KT, w->VT, ldt};
    if (kv.means)
        for (int b = 0; b < T / a->pattern.block; b++)
            att_block_mean(&kv, b, a->pattern.block, w->means, kv.ldm);
    return kv;
}

static void pad_columns(float *x, int rows, int n, int bp)
{
    for (int d = 0; d < rows; d++)
        for (int j = n; j < bp; j++) x[(size_t)d * bp + j] = 0.0f;
}

/* Rows r0 .. r0 + hd of [rows][bp], columns col .. col + R, into the
 * tile x [R][hd]. */
static void tile_in(const float *src, int bp, int r0, size_t col, int R, int hd, float *x)
{
    for (int d = 0; d < hd; d++)
        for (int r = 0; r < R; r++) x[(size_t)r * hd + d] = src[(size_t)(r0 + d) * bp + col + r];
}

static int core_forward(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    const attn_kernel_table *kern = attn_kernels_active();
    int dim = ly->out, H = a->heads, hd = dim / H, T = io->seq_len, bp = io->bp;
    int pairs = io->n / T * H, rows = choice_rows(&a->pattern);
    att_limit lim = att_pattern_limit(&a->pattern);
    const float *qkv = io->in[0]->data;
    float *y = io->out->pre, scale = 1.0f / sqrtf((float)hd);
    TEAM_FOR(c, pairs + 1) {
        if (c == pairs) {
            pad_columns(y, dim, io->n, bp);
            team_chunk_done();
            continue;
        }
        int h = c % H, c0 = (c / H) * T;
        core_work w;
        float *buf;
        core_work_at(io, a, T, &w, &buf);
        att_kv kv = pair_kv(a, qkv, bp, c, T, &w);
        int64_t computed = 0;
        for (int t0 = 0; t0 < T; t0 += rows) {
            int t1 = T - t0 < rows ? T : t0 + rows;
            tile_in(qkv, bp, h * hd, (size_t)c0 + t0, 1, hd, w.q);
            int nr = choose(&a->pattern, &kv, w.q, t0, t1, w.ranges, w.work);
            for (int u0 = t0; u0 < t1; u0 += ATT_TILE_ROWS) {
                int R = t1 - u0 < ATT_TILE_ROWS ? t1 - u0 : ATT_TILE_ROWS;
                size_t col = (size_t)c0 + u0;
                tile_in(qkv, bp, h * hd, col, R, hd, w.q);
                att_tile_forward(kern, &kv, w.q, u0, R, scale, w.ranges, nr, lim, w.o, w.lse);
                for (int r = 0; r < R; r++) {
                    computed += att_row_keys(w.ranges, nr, u0 + r, lim);
                    io->scratch[(size_t)h * bp + col + r] = w.lse[r];
                }
                for (int d = 0; d < hd; d++)
                    for (int r = 0; r < R; r++)
                        y[(size_t)(h * hd + d) * bp + col + r] = w.o[(size_t)r * hd + d];
            }
        }
        count_scores(a, computed, (int64_t)T * (T + 1) / 2);
        free(buf);
        team_chunk_done();
    }
    return pairs + 1;
}

static int core_backward(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    const attn_kernel_table *kern = attn_kernels_active();
    int dim = ly->out, H = a->heads, hd = dim / H, T = io->seq_len, bp = io->bp;
    int pairs = io->n / T * H, add = io->accumulate[0], rows = choice_rows(&a->pattern);
    att_limit lim = att_pattern_limit(&a->pattern);
    const tensor *in = io->in[0];
    const float *qkv = in->data, *dy = io->out->grad, *y = io->out->pre;
    float scale = 1.0f / sqrtf((float)hd);
    TEAM_FOR(c, pairs + 1) {
        if (c == pairs) {
            if (!add) pad_columns(in->grad, 3 * dim, io->n, bp);
            team_chunk_done();
            continue;
        }
        int h = c % H, c0 = (c / H) * T;
        core_work w;
        float *buf;
        core_work_at(io, a, T, &w, &buf);
        att_kv kv = pair_kv(a, qkv, bp, c, T, &w);
        memset(w.dK, 0, sizeof(float) * (size_t)T * hd);
        memset(w.dV, 0, sizeof(float) * (size_t)T * hd);
        for (int t0 = 0; t0 < T; t0 += rows) {
            int t1 = T - t0 < rows ? T : t0 + rows;
            tile_in(qkv, bp, h * hd, (size_t)c0 + t0, 1, hd, w.q);
            int nr = choose(&a->pattern, &kv, w.q, t0, t1, w.ranges, w.work);
            for (int u0 = t0; u0 < t1; u0 += ATT_TILE_ROWS) {
                int R = t1 - u0 < ATT_TILE_ROWS ? t1 - u0 : ATT_TILE_ROWS;
                size_t col = (size_t)c0 + u0;
                tile_in(qkv, bp, h * hd, col, R, hd, w.q);
                tile_in(dy, bp, h * hd, col, R, hd, w.g);
                for (int r = 0; r < R; r++) {
                    double delta = 0;
                    for (int d = 0; d < hd; d++)
                        delta += (double)w.g[(size_t)r * hd + d] * y[(size_t)(h * hd + d) * bp + col + r];
                    w.delta[r] = (float)delta;
                    w.lse[r] = io->scratch[(size_t)h * bp + col + r];
                }
                memset(w.dq, 0, sizeof(float) * (size_t)R * hd);
                att_tile_backward(kern, &kv, w.q, w.g, w.lse, w.delta, u0, R, scale, w.ranges, nr,
                                  lim, w.dq, w.dK, w.dV);
                for (int d = 0; d < hd; d++)
                    for (int r = 0; r < R; r++) {
                        float *g = in->grad + (size_t)(h * hd + d) * bp + col + r;
                        *g = add ? *g + w.dq[(size_t)r * hd + d] : w.dq[(size_t)r * hd + d];
                    }
            }
        }
        scatter(w.dK, bp, dim + h * hd, c0, T, hd, in->grad, add);
        scatter(w.dV, bp, 2 * dim + h * hd, c0, T, hd, in->grad, add);
        free(buf);
        team_chunk_done();
    }
    return pairs + 1;
}

/* The product path when the pattern is dense and the workspace holds its
 * probabilities (a workspace made while another pattern was set holds
 * only the core's log-sum-exps: the core serves it then). */
static int gemm_fits(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    int T = io->seq_len;
    return uses_gemm(a) && (int64_t)(io->n / T) * a->heads * T * T <= io->scratch_len;
}

static int att_forward(const layer *ly, const layer_io *io)
{
    return gemm_fits(ly, io) ? gemm_forward(ly, io) : core_forward(ly, io);
}

static int att_backward(const layer *ly, const layer_io *io)
{
    return gemm_fits(ly, io) ? gemm_backward(ly, io) : core_backward(ly, io);
}

/* The decoding cache, after the keys and values [T][dim] and the block
 * means: the keys transposed [dim][transposed_ld(T)] and, for a pattern
 * choosing per tile, the query of each tile's first position [T / rows +
 * 1][dim] (the choice of a later position in the tile reads it). */
static float *cache_keys_t(const attention *a, float *cache)
{
    int dim = a->base.out;
    return cache + 2 * (size_t)a->context * dim + (size_t)dim * means_cap(a);
}

static float *cache_tile_queries(const attention *a, float *cache)
{
    return cache_keys_t(a, cache) + (size_t)a->base.out * transposed_ld(a->context);
}

/* One token at position pos0: its key and value join the cache (and, when
 * it completes a block, that block's mean; when it starts a tile of the
 * pattern's choice, its query), and its query runs the core over the
 * ranges its pattern chooses, as the full forward pass's row. Heads are
 * the chunks. */
static int att_forward_vector(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    int dim = ly->out, H = a->heads, hd = dim / H, T = a->context, t = io->pos0;
    int ldm = means_cap(a), ldt = transposed_ld(T), rows = choice_rows(&a->pattern);
    RW_ASSERT(io->scratch_len >= att_scratch_floats(ly, 1), "layer %s: its decoding cache was "
              "made for another attention pattern (set the pattern before making workspaces)",
              ly->name);
    const float *qkv = io->in[0]->data;
    float *kc = io->scratch, *vc = kc + (size_t)T * dim, *mc = vc + (size_t)T * dim;
    float *kt = cache_keys_t(a, io->scratch), *qf = cache_tile_queries(a, io->scratch);
    float *y = io->out->pre, scale = 1.0f / sqrtf((float)hd);
    TEAM_FOR(one, 1) {
        memcpy(kc + (size_t)t * dim, qkv + dim, sizeof(float) * (size_t)dim);
        memcpy(vc + (size_t)t * dim, qkv + 2 * dim, sizeof(float) * (size_t)dim);
        for (int i = 0; i < dim; i++) kt[(size_t)i * ldt + t] = qkv[dim + i];
        if (rows > 1 && t % rows == 0) memcpy(qf + (size_t)(t / rows) * dim, qkv, sizeof(float) * (size_t)dim);
        team_chunk_done();
    }
    team_phase(1);
    TEAM_FOR(h, H) {
        core_work w;
        float *buf = core_work_new(a, T, 0, &w), lse;
        att_kv kv = {kc + h * hd, vc + h * hd, dim, hd, ldm ? mc + h * hd : NULL, dim,
                     head_blocks_of(a, h), kt + (size_t)h * hd * ldt, NULL, ldt};
        if (kv.means && (t + 1) % a->pattern.block == 0)
            att_block_mean(&kv, t / a->pattern.block, a->pattern.block, (float *)kv.means, dim);
        const float *q0 = rows > 1 ? qf + (size_t)(t / rows) * dim + h * hd : qkv + h * hd;
        int nr = choose(&a->pattern, &kv, q0, t - t % rows, t + 1, w.ranges, w.work);
        att_limit lim = att_pattern_limit(&a->pattern);
        count_scores(a, att_row_keys(w.ranges, nr, t, lim), t + 1);
        att_tile_forward(attn_kernels_active(), &kv, qkv + h * hd, t, 1, scale, w.ranges, nr, lim,
                         y + h * hd, &lse);
        free(buf);
        team_chunk_done();
    }
    return H;
}

void attention_fill_cache(const layer *ly, float *cache, const float *qkv, int ld, int T)
{
    const attention *a = att_of(ly);
    int dim = ly->out, H = a->heads, hd = dim / H, C = a->context, ldm = means_cap(a);
    int ldt = transposed_ld(C), rows = choice_rows(&a->pattern);
    float *kc = cache, *vc = kc + (size_t)C * dim, *mc = vc + (size_t)C * dim;
    float *kt = cache_keys_t(a, cache), *qf = cache_tile_queries(a, cache);
    gather(qkv, ld, dim, 0, T, dim, kc);
    gather(qkv, ld, 2 * dim, 0, T, dim, vc);
    for (int i = 0; i < dim; i++) {
        memcpy(kt + (size_t)i * ldt, qkv + (size_t)(dim + i) * ld, sizeof(float) * (size_t)T);
        for (int t0 = 0; rows > 1 && t0 < T; t0 += rows)
            qf[(size_t)(t0 / rows) * dim + i] = qkv[(size_t)i * ld + t0];
    }
    for (int h = 0; h < H && ldm; h++) {
        att_kv kv = {kc + h * hd, vc + h * hd, dim, hd, NULL, dim, NULL, NULL, NULL, 0};
        for (int b = 0; b < T / a->pattern.block; b++)
            att_block_mean(&kv, b, a->pattern.block, mc + h * hd, dim);
    }
}

static int att_params(layer *ly, param *out)
{
    (void)ly;
    (void)out;
    return 0;
}

static void att_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    (void)f;
    *out = (layer_shape){ly->in, ly->out, 0, 0, 0};
}

static void att_info(const layer *ly, rw_layer_info *out)
{
    (void)ly;
    out->nonzeros = 0;
    out->bytes = out->dense_bytes = 0;
}

static void att_describe(const layer *ly, json_t *entry)
{
    json_object_set_new(entry, "heads", json_integer(att_of(ly)->heads));
    json_object_set_new(entry, "context", json_integer(att_of(ly)->context));
    if (att_of(ly)->pattern.kind != ATT_DENSE) { /* dense files stay as they were */
        char spec[64];
        att_pattern_format(&att_of(ly)->pattern, spec, sizeof spec);
        json_object_set_new(entry, "attention", json_string(spec));
    }
}

/* sparsed keeps each head's chosen blocks as NAME.sparsed, U8
 * [heads][2][blocks] (att_sparsed.sel); the other patterns have no tensor. */
static int keeps_blocks(const attention *a) { return a->pattern.kind == ATT_SPARSED; }

static rw_status att_save(const layer *ly, st_writer *w, const char *path)
{
    const attention *a = att_of(ly);
    if (!keeps_blocks(a)) return RW_OK;
    if (!a->sparsed)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: layer %s attends sparsed but its blocks were "
                       "never chosen", path, ly->name);
    char name[LAYER_NAME_CAP + 16];
    snprintf(name, sizeof name, "%s.sparsed", ly->name);
    int64_t shape[3] = {a->sparsed->heads, 2, a->sparsed->nb};
    return st_writer_add(w, name, ST_U8, 3, shape, a->sparsed->sel);
}

static rw_status att_load(layer *ly, const st_file *f, const char *path)
{
    attention *a = (attention *)ly;
    if (!keeps_blocks(a)) return RW_OK;
    char name[LAYER_NAME_CAP + 16], spec[64];
    snprintf(name, sizeof name, "%s.sparsed", ly->name);
    att_pattern_format(&a->pattern, spec, sizeof spec);
    const st_tensor *t = st_find(f, name);
    att_sparsed *s = att_sparsed_new(a->heads, a->context, a->pattern.block, a->pattern.keep);
    if (!s) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, name);
    if (!t || t->dtype != ST_U8 || t->ndim != 3 || t->shape[0] != a->heads || t->shape[1] != 2 ||
        t->shape[2] != s->nb) {
        int nb = s->nb;
        att_sparsed_free(s);
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s attends %s, so it needs a U8 tensor %s of "
                       "shape [%d, 2, %d] (each head's chosen blocks)%s", path, ly->name, spec,
                       name, a->heads, nb, t ? "" : ", and the file has none");
    }
    memcpy(s->sel, t->data, t->nbytes);
    rw_status st = att_sparsed_index(s);
    if (st != RW_OK) {
        char why[256]; /* rw_fail writes over the message it would read */
        snprintf(why, sizeof why, "%s", rw_last_error());
        att_sparsed_free(s);
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s: %s", path, name, why);
    }
    attention_set_sparsed(ly, s);
    return RW_OK;
}

static int att_owns(const layer *ly, const char *name)
{
    size_t n = strlen(ly->name);
    return keeps_blocks(att_of(ly)) && strncmp(name, ly->name, n) == 0 &&
           strcmp(name + n, ".sparsed") == 0;
}

/* The model's positions (its token embedding's) must fit the scratch and
 * the cache, which hold this layer's context. */
static rw_status att_link(layer *ly, rw_model *m)
{
    int positions = rw_model_context(m);
    if (positions > att_of(ly)->context)
        return rw_fail(RW_ERR_FORMAT, "layer %s attends over %d positions but the model's "
                       "embeddings have %d", ly->name, att_of(ly)->context, positions);
    return RW_OK;
}

static void att_destroy(layer *ly)
{
    if (ly) {
        free(((attention *)ly)->counts);
        att_sparsed_free(((attention *)ly)->sparsed);
    }
    free(ly);
}

static const layer_ops attention_ops = {
    .kind = "attention",
    .forward = att_forward,
    .backward = att_backward,
    .forward_vector = att_forward_vector,
    .params = att_params,
    .shape = att_shape,
    .info = att_info,
    .describe = att_describe,
    .save = att_save,
    .load = att_load,
    .owns_tensor = att_owns,
    .scratch_floats = att_scratch_floats,
    .link = att_link,
    .destroy = att_destroy,
    .accumulates = 1,
};

layer *attention_new(const char *name, int dim, int heads, int context, int input, int index)
{
    attention *a = calloc(1, sizeof *a);
    if (a && !(a->counts = calloc(1, sizeof *a->counts))) {
        free(a);
        a = NULL;
    }
    if (!a) {
        rw_fail(RW_ERR_NO_MEMORY, "out of memory for layer %s", name);
        return NULL;
    }
    layer *b = &a->base;
    b->ops = &attention_ops;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->in = 3 * dim;
    b->out = dim;
    b->act = RW_ACT_NONE;
    b->inputs[0] = input;
    b->n_inputs = 1;
    b->output = index + 1;
    a->heads = heads;
    a->context = context;
    a->pattern.kind = ATT_DENSE;
    return b;
}

static rw_status att_from_meta(const json_t *entry, const layer_meta *m, const char *path,
                               layer **out)
{
    json_int_t heads = 0, context = 0;
    const char *spec = "dense";
    if (json_unpack((json_t *)entry, "{s:I, s:I, s?s}", "heads", &heads, "context", &context,
                    "attention", &spec) != 0 ||
        heads < 1 || context < 1 || context > ATTENTION_MAX_CONTEXT || m->out % heads != 0 ||
        m->in != 3 * m->out)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s of kind attention needs integers heads "
                       "dividing its %d outputs and context in [1, %d], and 3 x %d inputs", path,
                       m->name, m->out, ATTENTION_MAX_CONTEXT, m->out);
    att_pattern p;
    if (att_pattern_parse(spec, &p) != RW_OK)
        return rw_fail(RW_ERR_FORMAT, "%s: layer %s: %s", path, m->name, rw_last_error());
    *out = attention_new(m->name, m->out, (int)heads, (int)context, m->index, m->index);
    if (!*out) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory", path);
    ((attention *)*out)->pattern = p;
    return RW_OK;
}

int is_attention(const layer *ly) { return ly->ops == &attention_ops; }
int attention_heads(const layer *ly) { return att_of(ly)->heads; }
int attention_context(const layer *ly) { return att_of(ly)->context; }
const att_pattern *attention_pattern(const layer *ly) { return &att_of(ly)->pattern; }

void attention_set_pattern(layer *ly, const att_pattern *p)
{
    attention *a = (attention *)ly;
    a->pattern = *p;
    if (p->kind == ATT_SPARSED) a->pattern.max_blocks = a->sparsed ? a->sparsed->max_blocks : 0;
}

void attention_set_sparsed(layer *ly, att_sparsed *s)
{
    attention *a = (attention *)ly;
    att_sparsed_free(a->sparsed);
    a->sparsed = s;
    if (a->pattern.kind == ATT_SPARSED) a->pattern.max_blocks = s ? s->max_blocks : 0;
}

const att_sparsed *attention_sparsed(const layer *ly) { return att_of(ly)->sparsed; }

void attention_set_core_only(layer *ly) { ((attention *)ly)->core_only = 1; }

double attention_density(const layer *ly, int reset)
{
    att_counts *c = att_of(ly)->counts;
    double density = c->causal > 0 ? (double)c->computed / (double)c->causal : 1.0;
    if (reset) c->computed = c->causal = 0;
    return density;
}

int64_t attention_scores(const layer *ly) { return att_of(ly)->counts->computed; }

const layer_kind attention_kind = {"attention", att_from_meta};
