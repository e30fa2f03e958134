/* Dynamic mask attention: "Trainable Dynamic Mask Sparse Attention" (Shi
 * et al. 2025). What we follow: the mask is computed from the values —
 * per head, a learned projection of each key's value vector to a scalar
 * z = w·v, gated as m = exp(a · softplus(z)) with a learned coefficient a
 * per head (the paper's and its reference code's δ = exp(A · τ(vΔ))) —
 * each query keeps the K earlier keys of largest m (its own position is
 * always kept), and m is added to the scaled scores of the kept keys, so
 * the projection, the coefficient and (through m) the values get
 * gradients end to end; the top-K choice itself has none, as in the
 * paper. Where we simplify: the paper projects the values of all heads
 * (its Δ maps the whole value state to one scalar per head); here each
 * head projects its own value only (hd weights per head), which keeps
 * heads independent. The paper's w init follows the model's linear maps
 * and a starts at zero, as here: at first every m is 1, and a learns
 * before w does. Ties go to the later key (the paper leaves them to
 * torch.topk), so a fresh mask keeps each query's last K keys, a sliding
 * window, and training moves it from there: with ties to the earlier keys
 * every query began on the sequence's first K, and a character model
 * trained 3,000 steps at context 512 with dma:80 ended 0.12 nats above
 * dense (README, the quality table).
 *
 * The mask depends only on the key, so the K kept keys of the query at t
 * are the top K of m[0..t): one ranking for all queries. Over a whole
 * sequence a heap of the K best so far gives, in O(T log K), the query at
 * which each key drops out (dma_prepare); a query then scans only the keys
 * some query keeps. Decoding ranks m[0..t) again (O(t), no state). Ranks
 * use one total order, the larger m first, then the later position, NaN
 * last, so both ways keep the same keys. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "core/rng.h"
#include "nn/attn_core.h"
#include "nn/attn_learned.h"

static float softplus(float z) { return z > 20.0f ? z : log1pf(expf(z)); }

float dma_mask(const float *w, float a, const float *v, int hd, float *z)
{
    *z = att_dot(w, v, hd);
    return expf(a * softplus(*z));
}

void dma_mask_grads(float z, float a, float m, float *dm_dz, float *dm_da)
{
    float sig = 1.0f / (1.0f + expf(-z));
    *dm_dz = m * a * sig;
    *dm_da = m * softplus(z);
}

void dma_init(float *w, float *a, int heads, int hd, uint64_t seed)
{
    rng_state r;
    rng_seed(&r, seed);
    for (int64_t i = 0; i < (int64_t)heads * hd; i++) w[i] = (float)(0.02 * rng_normal(&r));
    for (int h = 0; h < heads; h++) a[h] = 0.0f;
}

/* The rank key of a mask value: NaN below every number. */
static float rank_key(float m) { return m == m ? m : -INFINITY; }

/* Key x ranks below key y. */
static int worse(const float *m, int x, int y)
{
    float a = rank_key(m[x]), b = rank_key(m[y]);
    return a < b || (a == b && x < y);
}

/* Restores the heap (worst kept key on top) below slot i. */
static void sift_down(const float *m, int *heap, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(m, heap[l], heap[w])) w = l;
        if (r < n && worse(m, heap[r], heap[w])) w = r;
        if (w == i) return;
        int tmp = heap[i];
        heap[i] = heap[w];
        heap[w] = tmp;
        i = w;
    }
}

int dma_prepare(const float *m, int T, int K, int *exit, int *cand, int *heap)
{
    int n = 0;
    for (int s = 0; s < T; s++) { /* queries from s + 1 on may keep key s */
        exit[s] = T + 1;
        if (n < K) {
            int i = n++;
            heap[i] = s;
            while (i > 0 && worse(m, heap[i], heap[(i - 1) / 2])) { /* sift up */
                int up = (i - 1) / 2, tmp = heap[i];
                heap[i] = heap[up];
                heap[up] = tmp;
                i = up;
            }
        } else if (worse(m, heap[0], s)) {
            exit[heap[0]] = s + 1;
            heap[0] = s;
            sift_down(m, heap, n, 0);
        } else {
            exit[s] = s + 1;
        }
    }
    int nc = 0;
    for (int s = 0; s < T; s++)
        if (exit[s] > s + 1) cand[nc++] = s;
    return nc;
}

static int dma_ranges(const att_pattern *p, const att_kv *kv, const float *q, int t,
                      att_range *out, float *work)
{
    (void)q;
    int *pos = (int *)work, n = 0;
    if (kv->dma_exit) {
        for (int i = 0; i < kv->n_cand && kv->dma_cand[i] < t; i++)
            if (kv->dma_exit[kv->dma_cand[i]] > t) pos[n++] = kv->dma_cand[i];
        return att_positions_to_ranges(pos, n, t, out);
    }
    /* decoding: rank m[0..t) again, latest first (att_top_k gives ties to
     * the lower index: here the later position) */
    float *key = work + t;
    int k = t < p->topk ? t : p->topk;
    for (int s = 0; s < t; s++) key[s] = rank_key(kv->dma_mask[(size_t)(t - 1 - s) * kv->ldd]);
    att_top_k(key, t, p->topk, pos);
    for (int i = 0; i < k / 2; i++) { /* back to positions, ascending */
        int x = pos[i];
        pos[i] = pos[k - 1 - i];
        pos[k - 1 - i] = x;
    }
    for (int i = 0; i < k; i++) pos[i] = t - 1 - pos[i];
    return att_positions_to_ranges(pos, k, t, out);
}

static int dma_max(const att_pattern *p, int T) { return (T < p->topk ? T : p->topk) + 1; }

/* ranges: 2T + 1; groups: T, the group whose keys `list` holds and their
 * count, the rows, each group's first and the list (3, T, T + 1 and T
 * ints) */
static int64_t dma_work(const att_pattern *p, int T, int hd)
{
    (void)p, (void)hd;
    return 3 * (int64_t)T + 4;
}

/* A whole sequence's rows in runs that keep the same keys: a run ends
 * where key t - 1 enters the K kept ones for row t (a key only ever leaves
 * them when another enters), so every row of a run sees the same list, all
 * of it before the run's first row, and they run together as tiles
 * (attn_core.c, att_rows_forward). A trained mask changes its top K less
 * and less often along the sequence (a key enters at t with a chance of
 * about K / t), so the runs grow with the position. */
static int dma_groups(const att_pattern *p, const att_kv *kv, const float *q, size_t ldq, int T,
                      float *work, const int **rows, const int **first)
{
    (void)p, (void)q, (void)ldq;
    int *head = (int *)work, *row = head + 3, *start = row + T, n = 0;
    head[0] = T, head[1] = -1, head[2] = 0;
    for (int t = 0; t < T; t++) {
        row[t] = t;
        if (t == 0 || kv->dma_exit[t - 1] > t) start[n++] = t;
    }
    start[n] = T;
    *rows = row, *first = start;
    return n;
}

/* The keys a run's rows keep: those before its first row a still kept at
 * a, ascending. Asked in order, each run's list is the last one's with
 * key a - 1 added and the one it replaced dropped (O(K) a run, where a
 * mask that keeps taking new keys makes runs of one row); else made
 * again from the candidates. */
static const int *dma_group_keys(const att_pattern *p, const att_kv *kv, int g, int *n,
                                 float *work)
{
    (void)p;
    int *head = (int *)work, T = head[0], *start = head + 3 + T, *list = start + T + 1;
    int a = start[g], m = head[2];
    if (g > 0 && head[1] == g - 1) {
        int kept = 0;
        for (int i = 0; i < m; i++)
            if (kv->dma_exit[list[i]] > a) list[kept++] = list[i];
        m = kept;
        list[m++] = a - 1; /* it entered at a: the run began there */
    } else {
        m = 0;
        for (int i = 0; i < kv->n_cand && kv->dma_cand[i] < a; i++)
            if (kv->dma_exit[kv->dma_cand[i]] > a) list[m++] = kv->dma_cand[i];
    }
    head[1] = g, head[2] = m;
    *n = m;
    return list;
}

/* ---- the layer state: the mask's projection and coefficient ------------ */

static att_state_tensor dma_tensor(const att_pattern *p, int k, int heads, int hd)
{
    (void)p;
    return k == 0 ? (att_state_tensor){"dma_proj", heads, hd} : (att_state_tensor){"dma_a", heads, 0};
}

static void dma_init_state(const att_pattern *p, float *const *state, int heads, int hd,
                           uint64_t seed)
{
    (void)p;
    dma_init(state[0], state[1], heads, hd, seed);
}

/* A key's mask value m; its column entry m / scale meets the query's 1
 * and is scaled back to m in the score. */
static float dma_key_state(const att_pattern *p, float *const *state, int h, int hd, float scale,
                           const float *k, const float *v, float *slot)
{
    (void)p, (void)k;
    float z;
    *slot = dma_mask(state[0] + (size_t)h * hd, state[1][h], v, hd, &z);
    return *slot / scale;
}

static void dma_view(const att_pattern *p, float *const *state, int h, int hd, const float *slots,
                     int lds, att_kv *kv)
{
    (void)p, (void)state, (void)h, (void)hd;
    kv->dma_mask = slots, kv->ldd = lds;
}

/* exit, cand [T] and the heap [K] */
static int64_t dma_index_floats(const att_pattern *p, int T) { return 2 * (int64_t)T + p->topk; }

static void dma_index(const att_pattern *p, int T, float *work, att_kv *kv)
{
    int *exit = (int *)work, *cand = exit + T, *heap = cand + T;
    kv->n_cand = dma_prepare(kv->dma_mask, T, p->topk, exit, cand, heap);
    kv->dma_exit = exit, kv->dma_cand = cand;
}

/* Values read at once, feature by feature (one value's hd features lie
 * bp apart, often a multiple of 4 KB: read value by value they fall into
 * the same cache sets). */
#define VALUE_BLOCK 64

/* The mask gradients (the core's gradient of each key's column entry,
 * times 1/scale) through m = exp(a · softplus(w · v)): into head h's w
 * and a (when training) and added to the values' gradient. */
static void dma_backward_head(const att_pattern *p, float *const *state, float *const *grad, int h,
                              const att_batch *b)
{
    (void)p;
    int dim = b->dim, hd = dim / b->heads, bp = b->bp;
    float scale = 1.0f / sqrtf((float)hd);
    const float *w = state[0] + (size_t)h * hd, a = state[1][h];
    /* a block of values token-major, and each one's g = d loss / d (w·v) */
    float *v = malloc(sizeof(float) * (size_t)VALUE_BLOCK * (hd + 1)), *g = v + (size_t)VALUE_BLOCK * hd;
    double *dw = calloc((size_t)hd, sizeof(double)), da = 0;
    RW_ASSERT(v && dw, "out of memory for the mask gradient of layer %s", b->layer);
    for (int j0 = 0; j0 < b->n; j0 += VALUE_BLOCK) {
        int n = b->n - j0 < VALUE_BLOCK ? b->n - j0 : VALUE_BLOCK;
        for (int d = 0; d < hd; d++) {
            const float *src = b->qkv + (size_t)(2 * dim + h * hd + d) * bp + j0;
            for (int i = 0; i < n; i++) v[(size_t)i * hd + d] = src[i];
        }
        for (int i = 0; i < n; i++) {
            float z, dz, dA, m = dma_mask(w, a, v + (size_t)i * hd, hd, &z);
            float dm = b->key_grad[j0 + i] / scale;
            dma_mask_grads(z, a, m, &dz, &dA);
            g[i] = dm * dz;
            da += (double)dm * dA;
        }
        for (int d = 0; d < hd; d++) { /* in the order of the values, as one sum per d */
            float *dst = b->dqkv + (size_t)(2 * dim + h * hd + d) * bp + j0;
            for (int i = 0; i < n; i++) {
                dw[d] += (double)g[i] * v[(size_t)i * hd + d];
                dst[i] += g[i] * w[d];
            }
        }
    }
    if (grad) {
        for (int d = 0; d < hd; d++) grad[0][(size_t)h * hd + d] = (float)dw[d];
        grad[1][h] = (float)da;
    }
    free(v), free(dw);
}

static const att_state_ops dma_state = {
    .n_tensors = 2,
    .tensor = dma_tensor,
    .trained = 1,
    .extra_column = 1,
    .init = dma_init_state,
    .seed_salt = 0x646d61ull, /* "dma" */
    .key_state = dma_key_state,
    .view = dma_view,
    .index = dma_index,
    .index_floats = dma_index_floats,
    .backward_head = dma_backward_head,
    .single_process_only = NULL,
};

const att_pattern_ops att_dma_ops = {
    .name = "dma",
    .ranges = dma_ranges,
    .max_ranges = dma_max,
    .work_floats = dma_work,
    .groups = dma_groups,
    .group_keys = dma_group_keys,
    .state = &dma_state,
};
