/* Attention patterns: which keys each query sees (attn_*.c, one file per
 * pattern), over the shared block-sparse core (attn_core.c).
 *
 * A pattern answers, for the query at position t of a sequence, a short
 * sorted list of disjoint key ranges [s0, s1) with s1 ≤ t + 1 that always
 * ends with the query's own position; the core runs attention over exactly
 * those keys and never holds a T×T buffer. A choice may read the query
 * and the keys before it (never later positions), so one token decoded
 * with a KV cache sees what the full forward pass showed it.
 *
 * A pattern may also choose once per tile of query positions (tile_ranges):
 * then the rows of a tile share their keys and the core runs them
 * together, loading each chunk of keys once for all of them. */
#ifndef RW_NN_ATTN_PATTERN_H
#define RW_NN_ATTN_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#include "rewire.h"

typedef enum {
    ATT_DENSE, ATT_WINDOW, ATT_BLOCK_TOPK, ATT_HIP, ATT_SPARSED,
    ATT_ROUTING, ATT_DMA, /* patterns with layer state (nn/attn_learned.h) */
    ATT_N_KINDS
} att_kind;

typedef struct {
    att_kind kind;
    int window, sink;  /* window: the last `window` positions and the first `sink` ones */
    int block, topk;   /* block-topk, hip: key blocks of `block` positions, `topk` of them;
                          dma: `topk` earlier keys */
    /* sparsed (also `block`): the share of calibration attention mass each
     * head keeps, and the most blocks any head of the layer keeps (set by
     * the layer from its chosen table, nn/attn_sparsed.h) */
    float keep;
    int max_blocks;
    int clusters;      /* routing: centroids per head */
} att_pattern;

typedef struct {
    int s0, s1;
} att_range;

/* The hooks of a pattern with layer state (nn/attn_learned.h). */
typedef struct att_state_ops att_state_ops;

/* sparsed: the key blocks one head sees besides its own, chosen once from
 * dense attention on calibration text (nn/attn_sparsed.c). */
typedef struct {
    int n_off, n_sink;
    const int *off;  /* [n_off] diagonals: blocks this many (>= 1) before the query's, descending */
    const int *sink; /* [n_sink] columns: key blocks counted from the first, ascending */
} att_head_blocks;
/* A sliding window over a tile's ranges: row t sees only keys s < sink or
 * s > t - window (window 0: no limit). */
typedef struct {
    int window, sink;
} att_limit;

/* One head's keys and values of one sequence, token-major: position s's
 * hd features at [s * ld] (for dma hd counts its mask column: the head's
 * size + 1). */
typedef struct {
    const float *k, *v;
    int ld, hd;
    /* The mean key of each complete block of pattern.block positions,
     * block b's at [b * ldm] (block-topk), or NULL. */
    const float *means;
    int ldm;
    /* sparsed: this head's blocks (NULL for the other patterns) */
    const att_head_blocks *head;
    /* The same keys (values) transposed, feature d of position s at
     * [d * ldt + s], for the core's scores (vt NULL when decoding). */
    const float *kt, *vt;
    int ldt;
    /* ATT_GATHER_FLOATS(hd) floats of the core's work, or NULL: a lone
     * query row over many short ranges runs their keys copied together. */
    float *gather;
    /* routing: this head's centroids [clusters][hd]; the cluster of the
     * key at s at route_cl[s * ldc] (a whole number), and for a whole
     * sequence also the clusters as lists of positions, cluster c's
     * ascending at route_pos[route_ptr[c] .. route_ptr[c + 1]) (NULL when
     * decoding). */
    const float *centroids, *route_cl;
    const int *route_ptr, *route_pos;
    int ldc;
    /* dma: each key's mask value at dma_mask[s * ldd]; for a whole
     * sequence also dma_exit[s], the first query that no longer keeps key
     * s, and the n_cand keys some query keeps, ascending, at dma_cand
     * (NULL when decoding: the top-k is chosen again). */
    const float *dma_mask;
    int ldd;
    const int *dma_exit, *dma_cand;
    int n_cand;
} att_kv;

typedef struct {
    const char *name;
    /* The ranges of the query q (hd floats, unscaled) at position t into
     * out[0 .. max_ranges); returns their count. work holds
     * att_pattern_work_floats floats. */
    int (*ranges)(const att_pattern *p, const att_kv *kv, const float *q, int t, att_range *out,
                  float *work);
    /* The most ranges `ranges` writes at sequences of T positions. */
    int (*max_ranges)(const att_pattern *p, int T);
    /* Floats of work `ranges` needs for sequences of T positions. */
    int64_t (*work_floats)(const att_pattern *p, int T, int hd);
    int uses_block_means;
    /* Optional (NULL: one choice per row through `ranges`). Positions
     * come in tiles of tile_rows(p), the first at 0; the query q at a
     * tile's first position t0 chooses for the whole tile: a row t in
     * [t0, t1) sees the keys s <= t of the ranges returned (at most
     * max_ranges, the last ending at t1, the tile's end or the decoded
     * position + 1) within att_pattern_limit(p). The choice reads q and
     * positions before t0 only. */
    int (*tile_ranges)(const att_pattern *p, const att_kv *kv, const float *q, int t0, int t1,
                       att_range *out, float *work);
    int (*tile_rows)(const att_pattern *p);
    /* Optional, for a whole sequence of T positions (the passes over
     * every row; decoding and the plot ask `ranges`, which must give the
     * same keys): the rows as groups that share one list of keys. Group
     * g's rows, ascending, are rows[first[g] .. first[g + 1]); each sees
     * the keys group_keys lists (ascending, *n of them) before its own
     * position, and its own position. The query at t has feature d at
     * q[d * ldq + t]. Returns the number of groups; *rows and *first
     * point into work (work_floats), which group_keys shares. */
    int (*groups)(const att_pattern *p, const att_kv *kv, const float *q, size_t ldq, int T,
                  float *work, const int **rows, const int **first);
    const int *(*group_keys)(const att_pattern *p, const att_kv *kv, int g, int *n, float *work);
    /* The pattern's layer state, or NULL when it has none. */
    const att_state_ops *state;
} att_pattern_ops;

extern const att_pattern_ops att_dense_ops, att_window_ops, att_block_topk_ops, att_hip_ops,
    att_sparsed_ops, att_routing_ops, att_dma_ops;

const att_pattern_ops *att_pattern_ops_of(const att_pattern *p);

/* The most ranges p's `ranges` writes at sequences of T positions. */
int att_max_ranges(const att_pattern *p, int T);

/* Sorted distinct positions pos[0..n) (all < t), then t itself, merged
 * into ranges at out; returns their count (at most n + 1). */
int att_positions_to_ranges(const int *pos, int n, int t, att_range *out);

/* Parses "dense", "window:W[,sink:S]", "block-topk:B,K", "hip:B,K",
 * "sparsed:B,KEEP" (KEEP in (0, 1]), "routing:C", "dma:K";
 * RW_ERR_INVALID_ARGUMENT with a message naming the spec and what was
 * expected. */
rw_status att_pattern_parse(const char *spec, att_pattern *out);

/* What limits each row of a tile beyond its ranges: window:W,sink:S's
 * window, nothing for the other patterns. */
att_limit att_pattern_limit(const att_pattern *p);

/* The spec att_pattern_parse reads back to p. */
void att_pattern_format(const att_pattern *p, char *buf, size_t cap);

/* Sorted block indices `idx[0..n)` of `block` positions each, then the
 * own partial block [own * block, t + 1), merged into ranges; returns
 * their count. */
int att_blocks_to_ranges(int *idx, int n, int block, int own, int t, att_range *out);

/* A tile's ranges from the per-row choice of its first query at t0, the
 * last range (which ends at t0 + 1) stretched to t1: tile_ranges for a
 * pattern whose rows of one query block share their first row's choice. */
int att_tile_from_first(const att_pattern *p, const att_kv *kv, const float *q, int t0, int t1,
                        att_range *out, float *work);

/* Of scores sc[0..n) (ties: lower index first), moves the indices of the
 * k best to idx[0..k) in ascending order; idx holds n ints of work. */
void att_top_k(const float *sc, int n, int k, int *idx);

#endif
