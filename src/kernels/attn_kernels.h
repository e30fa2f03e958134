/* The inner loops of the block-sparse attention core (nn/attn_core.c):
 * a tile of at most ATTN_TILE_ROWS query rows against one chunk of at
 * most ATTN_CHUNK consecutive keys, forward (FlashAttention's online
 * softmax, "FlashAttention: Fast and Memory-Efficient Exact Attention
 * with IO-Awareness", Dao et al. 2022) and backward (the probabilities
 * recomputed from each row's log-sum-exp, as FlashAttention-2 does).
 *
 * Row r of a tile sees the chunk's keys lo[r] <= j < nv[r] (0 <= lo[r],
 * nv[r] <= n): the causal limit of each row inside a chunk shared by the
 * tile, and the start of a sliding window. Scores
 * read the keys transposed (feature d of the chunk's key j at
 * kt[d * ldt + j]) so that one vector holds the scores of consecutive
 * keys; the products with values and the gradients read them token-major
 * (key j's features at k[j * ld]).
 *
 * A scalar reference and AVX2+FMA / AVX-512 twins (attn_scalar.c,
 * attn_avx2.c, attn_avx512.c over attn_simd.h), reached through the
 * kernel list (kernels/isa.h); tests/test_attention.c holds each twin to
 * the reference. */
#ifndef RW_KERNELS_ATTN_H
#define RW_KERNELS_ATTN_H

#define ATTN_TILE_ROWS 16
#define ATTN_CHUNK 128

/* One chunk of keys and values of one head, each pointer at the chunk's
 * first key. kt/vt are read up to ldt-aligned rows; k, v, and the
 * gradients dk, dv of the backward pass share the token-major ld. */
typedef struct {
    const float *kt, *vt; /* [hd][ldt] */
    const float *k, *v;   /* [n][ld] */
    int ldt, ld, hd;
} attn_chunk;

typedef struct {
    const char *name;
    /* Rows r < R of q [R][hd] (unscaled) over the chunk's n keys: with
     * s_j = scale · q_r·k_j over lo[r] <= j < nv[r], the running maximum m[r], the
     * running sum l[r] of exp(s_j - m[r]) and the unnormalised output
     * o[r][hd] = sum exp(s_j - m[r]) v_j are brought up to date (a new
     * maximum rescales what was summed). A row that sees no key is left
     * as it was; start a row with m = -inf, l = 0, o = 0. */
    void (*forward)(const attn_chunk *c, int n, const float *q, int R, const int *lo,
                    const int *nv, float scale, float *m, float *l, float *o);
    /* Its backward, for rows r < R with output gradient dout [R][hd],
     * log-sum-exp lse[r] and delta[r] = dout_r·o_r: with
     * p_j = exp(scale · q_r·k_j - lse[r]) and ds_j = p_j (dout_r·v_j - delta[r])
     * over lo[r] <= j < nv[r], adds scale · sum ds_j k_j to dq[r], and to the
     * token-major dk[j] and dv[j] (at [j * c->ld]) scale · ds_j q_r and
     * p_j dout_r. */
    void (*backward)(const attn_chunk *c, int n, const float *q, const float *dout, int R,
                     const int *lo, const int *nv, float scale, const float *lse,
                     const float *delta, float *dq, float *dk, float *dv);
} attn_kernel_table;

/* The reference; the others through the kernel list (kernels/isa.h). */
const attn_kernel_table *attn_kernels_scalar(void);
/* The table of the chosen entry of the kernel list (kernel_isa_active). */
const attn_kernel_table *attn_kernels_active(void);

#endif
