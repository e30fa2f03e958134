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
 * forward pass, over the same ranges.
 *
 * A pattern may carry layer state (nn/attn_learned.h: routing's
 * centroids, dma's mask parameters), which this file keeps, saves, loads
 * and hands to the pattern's hooks without knowing what it means: each
 * key's per-key state is made as the key is gathered (full pass) or
 * cached (decoding); a pattern may add one key column (in K and in the
 * transposed KT, with a query column of 1 and a value column of 0), so
 * the tile kernels run unchanged at head size hd + 1 and that column's
 * key gradient goes to the pattern's second backward step. */
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
#include "nn/attn_learned.h"
#include "nn/attn_sparsed.h"
#include "nn/linear.h"

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
    /* Each stateful pattern's tensors (nn/attn_learned.h), kept while
     * another pattern is set, and the floats they were made with (0: none). */
    float *state[ATT_N_KINDS][ATT_STATE_TENSORS];
    int64_t state_made[ATT_N_KINDS];
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

/* The pattern's state hooks, or NULL; its tensors. */
static const att_state_ops *state_ops(const attention *a)
{
    return att_pattern_ops_of(&a->pattern)->state;
}

static float *const *state_of(const attention *a) { return a->state[a->pattern.kind]; }

static int extra_column(const attention *a)
{
    return state_ops(a) && state_ops(a)->extra_column;
}

/* Features per head as the core sees them, with the pattern's extra column. */
static int head_cols(const attention *a) { return a->base.out / a->heads + extra_column(a); }

/* Floats of the core's per-row values in the scratch: each row's
 * log-sum-exp, and with an extra column each key's gradient in it. */
static int64_t row_floats(const attention *a, int bp)
{
    return (int64_t)bp * a->heads * (1 + extra_column(a));
}

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
    if (bp == 1) { /* generation: the cache (see kv_cache) */
        int rows = choice_rows(&a->pattern), cd = a->heads * head_cols(a);
        return 2 * (int64_t)T * cd + (int64_t)dim * means_cap(a) +
               (int64_t)cd * transposed_ld(T) + (rows > 1 ? ((int64_t)T / rows + 1) * dim : 0) +
               (state_ops(a) ? (int64_t)T * a->heads : 0);
    }
    if (!uses_gemm(a)) /* the core: row_floats, and one work area per thread */
        return row_floats(a, bp) + (int64_t)omp_get_max_threads() * core_slot_floats(a);
    /* P for every pair (at most bp / T sequences of T, or fewer longer
     * ones: nseq · heads · T² ≤ bp · heads · T), and one work area per
     * thread. */
    return (int64_t)bp * a->heads * T + (int64_t)omp_get_max_threads() * pair_work(T, hd);
}

/* Rows r0.. of [rows][bp] at columns c0 .. c0 + T into a T × hd block
 * whose rows are ld apart. */
static void gather_ld(const float *src, int bp, int r0, int c0, int T, int hd, float *dst, int ld)
{
    for (int d = 0; d < hd; d++) {
        const float *row = src + (size_t)(r0 + d) * bp + c0;
        for (int t = 0; t < T; t++) dst[(size_t)t * ld + d] = row[t];
    }
}

static void gather(const float *src, int bp, int r0, int c0, int T, int hd, float *dst)
{
    gather_ld(src, bp, r0, c0, T, hd, dst, hd);
}

static void scatter_ld(const float *src, int ld, int bp, int r0, int c0, int T, int hd, float *dst,
                       int add)
{
    for (int d = 0; d < hd; d++) {
        float *row = dst + (size_t)(r0 + d) * bp + c0;
        for (int t = 0; t < T; t++)
            row[t] = add ? row[t] + src[(size_t)t * ld + d] : src[(size_t)t * ld + d];
    }
}

static void scatter(const float *src, int bp, int r0, int c0, int T, int hd, float *dst, int add)
{
    scatter_ld(src, hd, bp, r0, c0, T, hd, dst, add);
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

/* Per-sequence state of a stateful pattern over `rows` positions: each
 * key's state, then the pattern's index over them. */
static int64_t pair_state_floats(const attention *a, int rows)
{
    const att_state_ops *so = state_ops(a);
    return rows && so ? rows + so->index_floats(&a->pattern, rows) : 0;
}

/* Floats of one core work area: a tile's queries, outputs, output
 * gradients and query gradients, its log-sum-exps and deltas, the block
 * means, the pattern's work and its ranges, `rows` positions of
 * token-major K, V, dK, dV and transposed K, V (none when decoding), and
 * the pattern's per-sequence state. Rows of K, V and the tile are
 * head_cols wide. */
static int64_t core_work_floats(const attention *a, int T, int rows)
{
    int hd = a->base.out / a->heads, hx = head_cols(a);
    const att_pattern_ops *ops = att_pattern_ops_of(&a->pattern);
    int64_t tr = rows ? (int64_t)hx * transposed_ld(rows) : 0;
    return 4 * (int64_t)ATT_TILE_ROWS * hx + 2 * ATT_TILE_ROWS + (int64_t)hd * means_cap(a) +
           ops->work_floats(&a->pattern, T, hd) + 2 * (int64_t)att_max_ranges(&a->pattern, T) +
           4 * (int64_t)rows * hx + 2 * tr + pair_state_floats(a, rows) + ATT_GATHER_FLOATS(hx) +
           16;
}

typedef struct {
    float *q, *o, *g, *dq, *lse, *delta; /* a tile: [ATT_TILE_ROWS][head_cols], [ATT_TILE_ROWS] */
    float *means, *work, *gather;
    float *K, *V, *dK, *dV; /* [rows][head_cols] */
    float *KT, *VT;         /* [head_cols][transposed_ld(rows)] */
    att_range *ranges;
    float *state; /* pair_state_floats */
} core_work;

static void core_work_layout(const attention *a, int T, int rows, float *buf, core_work *w)
{
    int hd = a->base.out / a->heads, hx = head_cols(a), tile = ATT_TILE_ROWS * hx;
    size_t tr = rows ? (size_t)hx * transposed_ld(rows) : 0;
    w->K = buf, w->V = w->K + (size_t)rows * hx, w->dK = w->V + (size_t)rows * hx;
    w->dV = w->dK + (size_t)rows * hx, w->KT = w->dV + (size_t)rows * hx, w->VT = w->KT + tr;
    w->gather = w->VT + tr, w->q = w->gather + ATT_GATHER_FLOATS(hx);
    w->o = w->q + tile, w->g = w->o + tile, w->dq = w->g + tile;
    w->lse = w->dq + tile, w->delta = w->lse + ATT_TILE_ROWS;
    w->means = w->delta + ATT_TILE_ROWS;
    w->state = w->means + (size_t)hd * means_cap(a);
    w->ranges = (att_range *)(w->state + pair_state_floats(a, rows));
    w->work = (float *)(w->ranges + att_max_ranges(&a->pattern, T));
}

static float *core_work_new(const attention *a, int T, int rows, core_work *w)
{
    float *buf = malloc(sizeof(float) * (size_t)core_work_floats(a, T, rows));
    RW_ASSERT(buf != NULL, "out of memory for attention's work buffer of layer %s", a->base.name);
    core_work_layout(a, T, rows, buf, w);
    return buf;
}

/* This thread's work area for a pass over sequences of T tokens: its slot
 * in the scratch after the per-row values (att_scratch_floats), or, with
 * more threads than when the workspace was made, a buffer of its own
 * (*own, to free). The slots live as long as the workspace because a
 * fresh buffer per pass costs its page faults every pass: ~100 MB per
 * head at T = 64k. */
static void core_work_at(const layer_io *io, const attention *a, int T, core_work *w, float **own)
{
    int64_t first = row_floats(a, io->bp), slot = core_slot_floats(a);
    int id = omp_get_thread_num();
    *own = NULL;
    if (core_work_floats(a, T, T) <= slot && first + (id + 1) * slot <= io->scratch_len)
        core_work_layout(a, T, T, io->scratch + first + id * slot, w);
    else
        *own = core_work_new(a, T, T, w);
}

/* Pair (sequence, head) c's keys and values from [3·dim][bp] into the
 * work's token-major K and V and transposed KT and VT, with the block
 * means of its complete blocks when the pattern reads them, and a
 * stateful pattern's per-key state, extra column (a zero column in V and
 * VT) and index. */
static att_kv pair_kv(const attention *a, const float *qkv, int bp, int c, int T, core_work *w)
{
    int dim = a->base.out, H = a->heads, hd = dim / H, h = c % H, c0 = (c / H) * T;
    int ldt = transposed_ld(T), hx = head_cols(a);
    gather_ld(qkv, bp, dim + h * hd, c0, T, hd, w->K, hx);
    gather_ld(qkv, bp, 2 * dim + h * hd, c0, T, hd, w->V, hx);
    for (int d = 0; d < hd; d++) {
        memcpy(w->KT + (size_t)d * ldt, qkv + (size_t)(dim + h * hd + d) * bp + c0, sizeof(float) * T);
        memcpy(w->VT + (size_t)d * ldt, qkv + (size_t)(2 * dim + h * hd + d) * bp + c0,
               sizeof(float) * T);
    }
    att_kv kv = {.k = w->K, .v = w->V, .ld = hx, .hd = hx,
                 .means = uses_means(a) ? w->means : NULL, .ldm = hd,
                 .head = head_blocks_of(a, h), .kt = w->KT, .vt = w->VT, .ldt = ldt,
                 .gather = w->gather};
    if (kv.means)
        for (int b = 0; b < T / a->pattern.block; b++)
            att_block_mean(&kv, b, a->pattern.block, w->means, kv.ldm);
    const att_state_ops *so = state_ops(a);
    if (so) {
        float *slot = w->state, scale = 1.0f / sqrtf((float)hd);
        float *kt = w->KT + (size_t)hd * ldt, *vt = w->VT + (size_t)hd * ldt;
        for (int s = 0; s < T; s++) {
            float *k = w->K + (size_t)s * hx, *v = w->V + (size_t)s * hx;
            float col = so->key_state(&a->pattern, state_of(a), h, hd, scale, k, v, slot + s);
            if (so->extra_column) kt[s] = k[hd] = col, vt[s] = v[hd] = 0.0f;
        }
        so->view(&a->pattern, state_of(a), h, hd, slot, 1, &kv);
        so->index(&a->pattern, T, slot + T, &kv);
    }
    return kv;
}

static void pad_columns(float *x, int rows, int n, int bp)
{
    for (int d = 0; d < rows; d++)
        for (int j = n; j < bp; j++) x[(size_t)d * bp + j] = 0.0f;
}

/* Rows r0 .. r0 + hd of [rows][bp], columns col .. col + R, into the
 * tile x [R][hx]; a column hd < hx (the pattern's extra one) gets `extra`. */
static void tile_in(const float *src, int bp, int r0, size_t c0, const int *pos, int R, int hd,
                    int hx, float extra, float *x)
{
    for (int d = 0; d < hd; d++)
        for (int r = 0; r < R; r++) x[(size_t)r * hx + d] = src[(size_t)(r0 + d) * bp + c0 + pos[r]];
    for (int r = 0; r < R && hx > hd; r++) x[(size_t)r * hx + hd] = extra;
}

/* The walk core_forward and core_backward share over one (sequence,
 * head) pair: the pattern's choices in order (a tile of choice_rows
 * rows, one row when it chooses per row), each run as sub-tiles of at
 * most ATT_TILE_ROWS rows over the choice's ranges (w->ranges); or, for
 * a pattern that groups rows sharing one key list (att_pattern_ops.groups),
 * each group's rows in sub-tiles over its list. */
typedef struct {
    const attention *a;
    const att_kv *kv;
    const float *qkv;
    core_work *w;
    int bp, h, T, rows;
    size_t c0;
    int t1;     /* the end of the current choice */
    int u0, R;  /* the current sub-tile: its rows' positions pos[0..R) */
    int nr;     /* its ranges */
    int pos[ATT_TILE_ROWS];
    /* groups: their rows, each group's first, their count, the current
     * group and its row at u0; its keys */
    const int *grows, *gfirst;
    int ng, g;
    const int *keys;
    int nkeys;
} tile_walk;

static tile_walk tile_walk_start(const attention *a, const att_kv *kv, const float *qkv, int bp,
                                 int c, int T, core_work *w)
{
    int hd = a->base.out / a->heads;
    tile_walk it = {.a = a, .kv = kv, .qkv = qkv, .w = w, .bp = bp, .h = c % a->heads, .T = T,
                    .rows = choice_rows(&a->pattern), .c0 = (size_t)(c / a->heads) * T};
    const att_pattern_ops *ops = att_pattern_ops_of(&a->pattern);
    if (ops->groups)
        it.ng = ops->groups(&a->pattern, kv, qkv + (size_t)it.h * hd * bp + it.c0, (size_t)bp, T,
                            w->work, &it.grows, &it.gfirst);
    return it;
}

/* The next sub-tile of a grouped pattern. */
static int group_walk_next(tile_walk *it)
{
    const att_pattern_ops *ops = att_pattern_ops_of(&it->a->pattern);
    it->u0 += it->R;
    while (it->g < it->ng && it->u0 >= it->gfirst[it->g + 1] - it->gfirst[it->g]) {
        it->g++, it->u0 = 0;
        it->keys = NULL;
    }
    if (it->g >= it->ng) return 0;
    if (!it->keys)
        it->keys = ops->group_keys(&it->a->pattern, it->kv, it->g, &it->nkeys, it->w->work);
    int left = it->gfirst[it->g + 1] - it->gfirst[it->g] - it->u0;
    it->R = left < ATT_TILE_ROWS ? left : ATT_TILE_ROWS;
    for (int r = 0; r < it->R; r++) it->pos[r] = it->grows[it->gfirst[it->g] + it->u0 + r];
    return 1;
}

/* The next sub-tile (its query tile loaded into w->q), 0 after the last. */
static int tile_walk_next(tile_walk *it)
{
    int hd = it->a->base.out / it->a->heads, hx = head_cols(it->a);
    if (it->grows) {
        if (!group_walk_next(it)) return 0;
    } else {
        it->u0 += it->R;
        if (it->u0 >= it->T) return 0;
        if (it->u0 >= it->t1) { /* a new choice, by the query at its first row */
            int t0 = it->u0;
            it->t1 = it->T - t0 < it->rows ? it->T : t0 + it->rows;
            tile_in(it->qkv, it->bp, it->h * hd, it->c0, &t0, 1, hd, hx, 1.0f, it->w->q);
            it->nr = choose(&it->a->pattern, it->kv, it->w->q, t0, it->t1, it->w->ranges,
                            it->w->work);
        }
        it->R = it->t1 - it->u0 < ATT_TILE_ROWS ? it->t1 - it->u0 : ATT_TILE_ROWS;
        for (int r = 0; r < it->R; r++) it->pos[r] = it->u0 + r;
    }
    tile_in(it->qkv, it->bp, it->h * hd, it->c0, it->pos, it->R, hd, hx, 1.0f, it->w->q);
    return 1;
}

/* The sub-tile's forward: over its choice's ranges or its group's keys;
 * returns the scores its rows computed. */
static int64_t walk_forward(const tile_walk *it, const attn_kernel_table *kern, float scale,
                            att_limit lim, float *o, float *lse)
{
    const core_work *w = it->w;
    int64_t computed = 0;
    if (it->grows) {
        att_rows_forward(kern, it->kv, w->q, it->pos, it->R, scale, it->keys, it->nkeys, o, lse);
        for (int r = 0; r < it->R; r++) computed += att_list_row_keys(it->keys, it->nkeys, it->pos[r]);
    } else {
        att_tile_forward(kern, it->kv, w->q, it->u0, it->R, scale, w->ranges, it->nr, lim, o, lse);
        for (int r = 0; r < it->R; r++) computed += att_row_keys(w->ranges, it->nr, it->u0 + r, lim);
    }
    return computed;
}

static int core_forward(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    const attn_kernel_table *kern = attn_kernels_active();
    int dim = ly->out, H = a->heads, hd = dim / H, hx = head_cols(a), T = io->seq_len, bp = io->bp;
    int pairs = io->n / T * H;
    att_limit lim = att_pattern_limit(&a->pattern);
    const float *qkv = io->in[0]->data;
    float *y = io->out->pre, scale = 1.0f / sqrtf((float)hd);
    TEAM_FOR(c, pairs + 1) {
        if (c == pairs) {
            pad_columns(y, dim, io->n, bp);
            team_chunk_done();
            continue;
        }
        int h = c % H;
        core_work w;
        float *buf;
        core_work_at(io, a, T, &w, &buf);
        att_kv kv = pair_kv(a, qkv, bp, c, T, &w);
        int64_t computed = 0;
        for (tile_walk it = tile_walk_start(a, &kv, qkv, bp, c, T, &w); tile_walk_next(&it);) {
            int R = it.R;
            const int *pos = it.pos;
            computed += walk_forward(&it, kern, scale, lim, w.o, w.lse);
            for (int r = 0; r < R; r++) io->scratch[(size_t)h * bp + it.c0 + pos[r]] = w.lse[r];
            for (int d = 0; d < hd; d++)
                for (int r = 0; r < R; r++)
                    y[(size_t)(h * hd + d) * bp + it.c0 + pos[r]] = w.o[(size_t)r * hx + d];
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
    int dim = ly->out, H = a->heads, hd = dim / H, hx = head_cols(a), T = io->seq_len, bp = io->bp;
    int pairs = io->n / T * H, add = io->accumulate[0];
    att_limit lim = att_pattern_limit(&a->pattern);
    const tensor *in = io->in[0];
    const float *qkv = in->data, *dy = io->out->grad, *y = io->out->pre;
    float scale = 1.0f / sqrtf((float)hd);
    RW_ASSERT(io->scratch_len >= row_floats(a, bp), "layer %s: its workspace was made for another "
              "attention pattern (set the pattern before making workspaces)", ly->name);
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
        memset(w.dK, 0, sizeof(float) * (size_t)T * hx);
        memset(w.dV, 0, sizeof(float) * (size_t)T * hx);
        for (tile_walk it = tile_walk_start(a, &kv, qkv, bp, c, T, &w); tile_walk_next(&it);) {
            int R = it.R;
            const int *pos = it.pos;
            tile_in(dy, bp, h * hd, it.c0, pos, R, hd, hx, 0.0f, w.g);
            /* feature by feature: a feature's row of y is read once for
             * the tile (row by row, the hd rows bp apart, often a multiple
             * of 4 KB, fell into the same cache sets and were read again
             * for every row of the tile) */
            double delta[ATT_TILE_ROWS] = {0};
            for (int d = 0; d < hd; d++) {
                const float *yd = y + (size_t)(h * hd + d) * bp + it.c0;
                for (int r = 0; r < R; r++) delta[r] += (double)w.g[(size_t)r * hx + d] * yd[pos[r]];
            }
            for (int r = 0; r < R; r++) {
                w.delta[r] = (float)delta[r];
                w.lse[r] = io->scratch[(size_t)h * bp + it.c0 + pos[r]];
            }
            memset(w.dq, 0, sizeof(float) * (size_t)R * hx);
            if (it.grows)
                att_rows_backward(kern, &kv, w.q, w.g, w.lse, w.delta, pos, R, scale, it.keys,
                                  it.nkeys, w.dq, w.dK, w.dV);
            else
                att_tile_backward(kern, &kv, w.q, w.g, w.lse, w.delta, it.u0, R, scale, w.ranges,
                                  it.nr, lim, w.dq, w.dK, w.dV);
            for (int d = 0; d < hd; d++)
                for (int r = 0; r < R; r++) {
                    float *g = in->grad + (size_t)(h * hd + d) * bp + it.c0 + pos[r];
                    *g = add ? *g + w.dq[(size_t)r * hx + d] : w.dq[(size_t)r * hx + d];
                }
        }
        scatter_ld(w.dK, hx, bp, dim + h * hd, c0, T, hd, in->grad, add);
        scatter_ld(w.dV, hx, bp, 2 * dim + h * hd, c0, T, hd, in->grad, add);
        if (hx > hd) /* the extra column's key gradients, for the pattern's step */
            for (int t = 0; t < T; t++)
                io->scratch[(size_t)bp * H + (size_t)h * bp + c0 + t] = w.dK[(size_t)t * hx + hd];
        free(buf);
        team_chunk_done();
    }
    /* The pattern's second step per head, over every sequence of the
     * batch in order. Without an extra column it gives no gradient and
     * only moves the state, which only a training step does. */
    const att_state_ops *so = state_ops(a);
    if (!so || !so->backward_head || !(io->grad || so->extra_column)) return pairs + 1;
    team_phase(pairs + 1);
    TEAM_FOR(h, H) {
        att_batch b = {qkv, in->grad, hx > hd ? io->scratch + (size_t)bp * H + (size_t)h * bp : NULL,
                       bp, io->n / T * T, dim, H, ly->name, io->grad != NULL};
        so->backward_head(&a->pattern, state_of(a), io->grad, h, &b);
        team_chunk_done();
    }
    return H;
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

/* The one-sample cache: keys and values token-major, [context][heads ·
 * head_cols] each, the block means [means_cap][dim], the keys transposed
 * [heads · head_cols][transposed_ld(context)], for a pattern choosing per
 * tile the query of each tile's first position [context / rows + 1][dim]
 * (the choice of a later position in the tile reads it), and per position
 * and head a stateful pattern's per-key state, [context][heads]. */
typedef struct {
    float *k, *v, *means, *kt, *tile_q, *state;
    int ld, ldt; /* floats between positions of k and v; between rows of kt */
} kv_cache;

static kv_cache cache_of(const attention *a, float *cache)
{
    int T = a->context, ld = a->heads * head_cols(a), rows = choice_rows(&a->pattern);
    kv_cache c = {.k = cache, .v = cache + (size_t)T * ld, .ld = ld, .ldt = transposed_ld(T)};
    c.means = c.v + (size_t)T * ld;
    c.kt = c.means + (size_t)a->base.out * means_cap(a);
    c.tile_q = c.kt + (size_t)ld * c.ldt;
    c.state = c.tile_q + (rows > 1 ? ((size_t)T / rows + 1) * a->base.out : 0);
    return c;
}

/* Head h's view of the cache for the core and the pattern. */
static att_kv cache_kv(const attention *a, const kv_cache *c, int h)
{
    int hd = a->base.out / a->heads, hx = head_cols(a);
    att_kv kv = {.k = c->k + (size_t)h * hx, .v = c->v + (size_t)h * hx, .ld = c->ld, .hd = hx,
                 .means = means_cap(a) ? c->means + (size_t)h * hd : NULL, .ldm = a->base.out,
                 .head = head_blocks_of(a, h), .kt = c->kt + (size_t)h * hx * c->ldt,
                 .ldt = c->ldt};
    if (state_ops(a))
        state_ops(a)->view(&a->pattern, state_of(a), h, hd, c->state + h, a->heads, &kv);
    return kv;
}

/* Head h of position s (its query, key and value rows at qkv[r * ld],
 * qkv[(dim + r) * ld] and qkv[(2 dim + r) * ld]) into the cache, with
 * what the pattern keeps per key; then, when s completes a block, that
 * block's mean. */
static void cache_put(const attention *a, const kv_cache *c, const float *qkv, size_t ld, int s,
                      int h)
{
    int dim = a->base.out, H = a->heads, hd = dim / H, hx = head_cols(a);
    int rows = choice_rows(&a->pattern);
    float *k = c->k + (size_t)s * c->ld + (size_t)h * hx, *v = c->v + (size_t)s * c->ld + (size_t)h * hx;
    float *kt = c->kt + (size_t)h * hx * c->ldt + s;
    for (int d = 0; d < hd; d++) {
        k[d] = kt[(size_t)d * c->ldt] = qkv[(size_t)(dim + h * hd + d) * ld];
        v[d] = qkv[(size_t)(2 * dim + h * hd + d) * ld];
    }
    if (rows > 1 && s % rows == 0)
        for (int d = 0; d < hd; d++)
            c->tile_q[(size_t)(s / rows) * dim + h * hd + d] = qkv[(size_t)(h * hd + d) * ld];
    const att_state_ops *so = state_ops(a);
    if (so) {
        float col = so->key_state(&a->pattern, state_of(a), h, hd, 1.0f / sqrtf((float)hd), k, v,
                                  c->state + (size_t)s * H + h);
        if (so->extra_column) k[hd] = kt[(size_t)hd * c->ldt] = col, v[hd] = 0.0f;
    }
    if (means_cap(a) && (s + 1) % a->pattern.block == 0) {
        att_kv kv = cache_kv(a, c, h);
        att_block_mean(&kv, s / a->pattern.block, a->pattern.block, (float *)kv.means, kv.ldm);
    }
}

/* One token at position pos0: its key and value join the cache (with what
 * cache_put keeps), and its query runs the core over the ranges its
 * pattern chooses, as the full forward pass's row. Heads are the chunks:
 * each writes only its own columns of the cache. */
static int att_forward_vector(const layer *ly, const layer_io *io)
{
    const attention *a = att_of(ly);
    int dim = ly->out, H = a->heads, hd = dim / H, hx = head_cols(a), t = io->pos0;
    int rows = choice_rows(&a->pattern);
    RW_ASSERT(io->scratch_len >= att_scratch_floats(ly, 1), "layer %s: its decoding cache was "
              "made for another attention pattern (set the pattern before making workspaces)",
              ly->name);
    const float *qkv = io->in[0]->data;
    float *y = io->out->pre, scale = 1.0f / sqrtf((float)hd);
    kv_cache cache = cache_of(a, io->scratch);
    TEAM_FOR(h, H) {
        core_work w;
        float *buf = core_work_new(a, a->context, 0, &w), lse;
        cache_put(a, &cache, qkv, 1, t, h);
        att_kv kv = cache_kv(a, &cache, h);
        kv.gather = w.gather;
        int first = 0;
        tile_in(qkv, 1, h * hd, 0, &first, 1, hd, hx, 1.0f, w.q);
        const float *q0 = rows > 1 ? cache.tile_q + (size_t)(t / rows) * dim + h * hd : w.q;
        int nr = choose(&a->pattern, &kv, q0, t - t % rows, t + 1, w.ranges, w.work);
        att_limit lim = att_pattern_limit(&a->pattern);
        count_scores(a, att_row_keys(w.ranges, nr, t, lim), t + 1);
        att_tile_forward(attn_kernels_active(), &kv, w.q, t, 1, scale, w.ranges, nr, lim, w.o,
                         &lse);
        memcpy(y + h * hd, w.o, sizeof(float) * (size_t)hd);
        free(buf);
        team_chunk_done();
    }
    return H;
}

void attention_fill_cache(const layer *ly, float *cache, const float *qkv, int ld, int T)
{
    const attention *a = att_of(ly);
    kv_cache c = cache_of(a, cache);
    for (int s = 0; s < T; s++)
        for (int h = 0; h < a->heads; h++) cache_put(a, &c, qkv + s, (size_t)ld, s, h);
}

/* Tensor k of the state of pattern p. */
static att_state_tensor state_tensor(const attention *a, const att_pattern *p, int k)
{
    return att_pattern_ops_of(p)->state->tensor(p, k, a->heads, a->base.out / a->heads);
}

static int64_t tensor_floats(att_state_tensor t) { return t.rows * (t.cols ? t.cols : 1); }

/* Floats of the state p has in this layer. */
static int64_t state_floats(const attention *a, const att_pattern *p)
{
    const att_state_ops *so = att_pattern_ops_of(p)->state;
    int64_t n = 0;
    for (int k = 0; so && k < so->n_tensors; k++) n += tensor_floats(state_tensor(a, p, k));
    return n;
}

static int is_trained(const attention *a) { return state_ops(a) && state_ops(a)->trained; }

/* A trained state's tensors: dense, not decayed, never pruned. */
static int att_params(layer *ly, param *out)
{
    attention *a = (attention *)ly;
    if (!is_trained(a)) return 0;
    int n = state_ops(a)->n_tensors;
    for (int k = 0; k < n; k++) {
        att_state_tensor t = state_tensor(a, &a->pattern, k);
        out[k] = param_dense(ly->name, t.name, (int)t.rows, t.cols ? (int)t.cols : 1,
                             &a->state[a->pattern.kind][k], 0);
    }
    return n;
}

static void att_shape(const layer *ly, const st_file *f, layer_shape *out)
{
    (void)f;
    const attention *a = att_of(ly);
    int64_t n = state_floats(a, &a->pattern);
    *out = (layer_shape){ly->in, ly->out, 4 * n, is_trained(a) ? n : 0, 0};
}

static void att_info(const layer *ly, rw_layer_info *out)
{
    const attention *a = att_of(ly);
    out->nonzeros = 0;
    out->bytes = out->dense_bytes = 4 * state_floats(a, &a->pattern);
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
    char name[LAYER_NAME_CAP + 16];
    if (keeps_blocks(a)) {
        if (!a->sparsed)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: layer %s attends sparsed but its blocks "
                           "were never chosen", path, ly->name);
        snprintf(name, sizeof name, "%s.sparsed", ly->name);
        int64_t shape[3] = {a->sparsed->heads, 2, a->sparsed->nb};
        return st_writer_add(w, name, ST_U8, 3, shape, a->sparsed->sel);
    }
    const att_state_ops *so = state_ops(a);
    for (int k = 0; so && k < so->n_tensors; k++) {
        att_state_tensor t = state_tensor(a, &a->pattern, k);
        int64_t shape[2] = {t.rows, t.cols};
        snprintf(name, sizeof name, "%s.%s", ly->name, t.name);
        rw_status st = st_writer_add(w, name, ST_F32, t.cols ? 2 : 1, shape, state_of(a)[k]);
        if (st != RW_OK) return st;
    }
    return RW_OK;
}

/* Tensor NAME.what of rows × cols (cols 0: a vector) into a new array,
 * every value finite. */
static rw_status load_state(const layer *ly, const st_file *f, const char *path, const char *what,
                            int64_t rows, int64_t cols, float **dst)
{
    char name[LAYER_NAME_CAP + 16];
    snprintf(name, sizeof name, "%s.%s", ly->name, what);
    const st_tensor *t;
    rw_status st = linear_want_tensor(f, path, name, ST_F32, cols ? 2 : 1, rows, cols, &t);
    if (st != RW_OK) return st;
    rw_free(*dst);
    if (!(*dst = rw_alloc(t->nbytes))) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for %s", path, name);
    memcpy(*dst, t->data, t->nbytes);
    for (int64_t i = 0; i < rows * (cols ? cols : 1); i++)
        if (!isfinite((*dst)[i]))
            return rw_fail(RW_ERR_FORMAT, "%s: tensor %s has a non-finite value at %lld", path, name,
                           (long long)i);
    return RW_OK;
}

static rw_status att_load(layer *ly, const st_file *f, const char *path)
{
    attention *a = (attention *)ly;
    const att_state_ops *so = state_ops(a);
    if (so) {
        a->state_made[a->pattern.kind] = 0; /* until every tensor is in */
        for (int k = 0; k < so->n_tensors; k++) {
            att_state_tensor t = state_tensor(a, &a->pattern, k);
            rw_status st = load_state(ly, f, path, t.name, t.rows, t.cols,
                                      &a->state[a->pattern.kind][k]);
            if (st != RW_OK) return st;
        }
        a->state_made[a->pattern.kind] = state_floats(a, &a->pattern);
        return RW_OK;
    }
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
    const attention *a = att_of(ly);
    size_t n = strlen(ly->name);
    if (strncmp(name, ly->name, n) != 0 || name[n] != '.') return 0;
    name += n + 1;
    if (keeps_blocks(a) && strcmp(name, "sparsed") == 0) return 1;
    for (int k = 0; state_ops(a) && k < state_ops(a)->n_tensors; k++)
        if (strcmp(name, state_tensor(a, &a->pattern, k).name) == 0) return 1;
    return 0;
}

/* A state that is not trained would be moved apart by each process's
 * own batch: the pattern says. */
static const char *att_single_process_only(const layer *ly, int dst_active)
{
    (void)dst_active;
    return state_ops(att_of(ly)) ? state_ops(att_of(ly))->single_process_only : NULL;
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
    attention *a = (attention *)ly;
    if (a) {
        free(a->counts);
        for (int kind = 0; kind < ATT_N_KINDS; kind++)
            for (int k = 0; k < ATT_STATE_TENSORS; k++) rw_free(a->state[kind][k]);
        att_sparsed_free(a->sparsed);
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
    .single_process_only = att_single_process_only,
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

/* A seed of the layer's own for its state: FNV-1a of its name and salt,
 * so every layer and head starts apart, the same in every run. */
static uint64_t name_seed(const char *name, uint64_t salt)
{
    uint64_t x = 1469598103934665603ull ^ salt;
    for (; *name; name++) x = (x ^ (unsigned char)*name) * 1099511628211ull;
    return x;
}

rw_status attention_set_pattern(layer *ly, const att_pattern *p)
{
    attention *a = (attention *)ly;
    int hd = ly->out / a->heads;
    const att_state_ops *so = att_pattern_ops_of(p)->state;
    if (so && a->state_made[p->kind] != state_floats(a, p)) { /* new, or of other clusters */
        float *t[ATT_STATE_TENSORS] = {NULL};
        int k = 0;
        while (k < so->n_tensors && (t[k] = rw_alloc(sizeof(float) * (size_t)tensor_floats(state_tensor(a, p, k)))))
            k++;
        if (k < so->n_tensors) {
            for (k = 0; k < so->n_tensors; k++) rw_free(t[k]);
            return rw_fail(RW_ERR_NO_MEMORY, "out of memory for the %s state of layer %s",
                           att_pattern_ops_of(p)->name, ly->name);
        }
        so->init(p, t, a->heads, hd, name_seed(ly->name, so->seed_salt));
        for (k = 0; k < so->n_tensors; k++) {
            rw_free(a->state[p->kind][k]);
            a->state[p->kind][k] = t[k];
        }
        a->state_made[p->kind] = state_floats(a, p);
    }
    a->pattern = *p;
    if (p->kind == ATT_SPARSED) a->pattern.max_blocks = a->sparsed ? a->sparsed->max_blocks : 0;
    return RW_OK;
}

float *attention_state(const layer *ly, const char *name)
{
    const attention *a = att_of(ly);
    for (int k = 0; state_ops(a) && k < state_ops(a)->n_tensors; k++)
        if (strcmp(name, state_tensor(a, &a->pattern, k).name) == 0) return state_of(a)[k];
    return NULL;
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
