/* The attention kernels (attn_kernels.h) written once over a vector of VW
 * floats; attn_avx2.c and attn_avx512.c define the vector operations and
 * include this (ggml's way of keeping one body for several instruction
 * sets). Include only from those files.
 *
 * Three products make a chunk, each register-blocked so that a loaded
 * vector feeds several FMAs:
 *   scores   S[r][j] = q_r·k_j: keys across the vector (the transposed
 *            keys kt), 4 rows x 2 vectors of keys, q_r[d] broadcast;
 *   rows     o_r += sum_j P[r][j] x_j: features across the vector, 4 rows
 *            x up to 4 vectors of features, P[r][j] broadcast (P·V
 *            forward, dS·K for dq);
 *   keys     y_j += sum_r P[r][j] x_r: 4 keys x up to 4 vectors of
 *            features (dS·Q for dk, P·dO for dv).
 * The vector ISA file defines:
 *   vf, vmask, VW                   the vector, a lane mask, the lanes
 *   V_ZERO() V_SET1(x)              constants
 *   V_LOADU(p) V_STOREU(p, v)       unaligned whole vectors
 *   V_MASK(n)                       the first n lanes (none if n <= 0)
 *   V_ANDNOT(a, b)                  the lanes of mask a not in mask b
 *   V_LOADM(p, m) V_STOREM(p, m, v) the lanes of m (others read as 0)
 *   V_SELECT(m, v, w)               v in the lanes of m, w elsewhere
 *   V_FMA(a, b, c) V_MAX(a, b) V_MIN(a, b)
 *   V_HMAX(v) V_HSUM(v)             over the lanes
 *   V_ROUND(v)                      to the nearest integer
 *   V_LDEXP(v, n)                   v · 2^n for integer-valued n
 *   ATTN_TABLE                      the table's name, ATTN_ISA its string */
#ifndef RW_KERNELS_ATTN_SIMD_H
#define RW_KERNELS_ATTN_SIMD_H

#include <math.h>
#include <stddef.h>

#include "kernels/attn_kernels.h"

#define INLINE static inline __attribute__((always_inline))

/* exp(x) for x <= 88: Cody and Waite's range reduction and the degree-5
 * polynomial of Cephes' expf (within 2 ulp of libm); below -87.3 it gives
 * about 1e-38 rather than 0, so callers zero masked lanes themselves. */
INLINE vf v_exp(vf x)
{
    x = V_MIN(V_MAX(x, V_SET1(-87.33654f)), V_SET1(88.0f));
    vf n = V_ROUND(x * V_SET1(1.44269504088896341f));
    vf r = V_FMA(n, V_SET1(-0.693359375f), x);
    r = V_FMA(n, V_SET1(2.12194440e-4f), r);
    vf p = V_SET1(1.9875691500e-4f);
    p = V_FMA(p, r, V_SET1(1.3981999507e-3f));
    p = V_FMA(p, r, V_SET1(8.3334519073e-3f));
    p = V_FMA(p, r, V_SET1(4.1665795894e-2f));
    p = V_FMA(p, r, V_SET1(1.6666665459e-1f));
    p = V_FMA(p, r, V_SET1(5.0000001201e-1f));
    p = V_FMA(p, r * r, r + V_SET1(1.0f));
    return V_LDEXP(p, n);
}

/* S[r][j] = scale · x_r·t_j for r < ROWS, j < n (lanes up to the next
 * KV·VW written as 0): x [ROWS][ldx], t transposed [hd][ldt], S rows of
 * ATTN_CHUNK (a multiple of KV·VW). A lone row takes 4 vectors of keys at
 * a time, so that 4 independent FMA chains hide the FMA's latency. */
INLINE void scores(const float *t, int ldt, int hd, const float *x, int ldx, int n, float scale,
                   float *S, const int ROWS, const int KV)
{
    for (int j0 = 0; j0 < n; j0 += KV * VW) {
        vmask mk[4];
        vf acc[4][4];
        for (int u = 0; u < KV; u++) mk[u] = V_MASK(n - j0 - u * VW);
        for (int r = 0; r < ROWS; r++)
            for (int u = 0; u < KV; u++) acc[r][u] = V_ZERO();
        for (int d = 0; d < hd; d++) {
            const float *td = t + (size_t)d * ldt + j0;
            vf k[4];
            for (int u = 0; u < KV; u++) k[u] = V_LOADM(td + u * VW, mk[u]);
            for (int r = 0; r < ROWS; r++) {
                vf b = V_SET1(x[(size_t)r * ldx + d]);
                for (int u = 0; u < KV; u++) acc[r][u] = V_FMA(b, k[u], acc[r][u]);
            }
        }
        for (int r = 0; r < ROWS; r++)
            for (int u = 0; u < KV; u++)
                V_STOREU(S + (size_t)r * ATTN_CHUNK + j0 + u * VW, acc[r][u] * V_SET1(scale));
    }
}

static void scores_tile(const float *t, int ldt, int hd, const float *x, int R, int n, float scale,
                        float *S)
{
    int r = 0;
    for (; r + 4 <= R; r += 4)
        scores(t, ldt, hd, x + (size_t)r * hd, hd, n, scale, S + (size_t)r * ATTN_CHUNK, 4, 2);
    for (; r < R; r++)
        scores(t, ldt, hd, x + (size_t)r * hd, hd, n, scale, S + (size_t)r * ATTN_CHUNK, 1, 4);
}

/* y_r[d0 ..] += sum_{j < n} P[r][j] x_j[d0 ..] over `rem` features (NV
 * vectors, the last maybe partial), r < ROWS: y rows of ldy, x [n][ldx],
 * P rows of ATTN_CHUNK. */
INLINE void rows_acc(const float *P, const float *x, int ldx, int n, float *y, int ldy, int rem,
                     const int ROWS, const int NV)
{
    vmask mk[4];
    vf acc[4][4];
    for (int u = 0; u < NV; u++) mk[u] = V_MASK(rem - u * VW);
    for (int r = 0; r < ROWS; r++)
        for (int u = 0; u < NV; u++) acc[r][u] = V_LOADM(y + (size_t)r * ldy + u * VW, mk[u]);
    for (int j = 0; j < n; j++) {
        const float *xj = x + (size_t)j * ldx;
        vf xv[4];
        for (int u = 0; u < NV; u++) xv[u] = V_LOADM(xj + u * VW, mk[u]);
        for (int r = 0; r < ROWS; r++) {
            vf p = V_SET1(P[(size_t)r * ATTN_CHUNK + j]);
            for (int u = 0; u < NV; u++) acc[r][u] = V_FMA(p, xv[u], acc[r][u]);
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int u = 0; u < NV; u++) V_STOREM(y + (size_t)r * ldy + u * VW, mk[u], acc[r][u]);
}

/* y_j[d0 ..] += sum_{r < R} P[r][j] x_r[d0 ..] for the KEYS keys from j
 * (y [..][ldy] at key j, x [R][ldx]), `rem` features in NV vectors. */
INLINE void keys_acc(const float *P, int j, const float *x, int ldx, int R, float *y, int ldy,
                     int rem, const int KEYS, const int NV)
{
    vmask mk[4];
    vf acc[4][4];
    for (int u = 0; u < NV; u++) mk[u] = V_MASK(rem - u * VW);
    for (int k = 0; k < KEYS; k++)
        for (int u = 0; u < NV; u++) acc[k][u] = V_LOADM(y + (size_t)k * ldy + u * VW, mk[u]);
    for (int r = 0; r < R; r++) {
        const float *xr = x + (size_t)r * ldx;
        vf xv[4];
        for (int u = 0; u < NV; u++) xv[u] = V_LOADM(xr + u * VW, mk[u]);
        for (int k = 0; k < KEYS; k++) {
            vf p = V_SET1(P[(size_t)r * ATTN_CHUNK + j + k]);
            for (int u = 0; u < NV; u++) acc[k][u] = V_FMA(p, xv[u], acc[k][u]);
        }
    }
    for (int k = 0; k < KEYS; k++)
        for (int u = 0; u < NV; u++) V_STOREM(y + (size_t)k * ldy + u * VW, mk[u], acc[k][u]);
}

/* The register blocks need their counts as constants: one call per count. */
#define BY_NV(call, nv)                                                                            \
    switch (nv) {                                                                                  \
    case 1: call(1); break;                                                                        \
    case 2: call(2); break;                                                                        \
    case 3: call(3); break;                                                                        \
    default: call(4); break;                                                                       \
    }

/* y_r += sum_j P[r][j] x_j for r < R, every feature of hd; row r stops at
 * key nv[r] (P beyond it is 0, so a block of rows runs to its largest). */
static void rows_tile(const float *P, const float *x, int ldx, int hd, int R, const int *nv,
                      float *y)
{
    for (int d0 = 0; d0 < hd; d0 += 4 * VW) {
        int rem = hd - d0, nvec = (rem + VW - 1) / VW;
        int r = 0;
        for (; r + 4 <= R; r += 4) {
            int n = nv[r] > nv[r + 3] ? nv[r] : nv[r + 3];
            n = n > nv[r + 1] ? n : nv[r + 1];
            n = n > nv[r + 2] ? n : nv[r + 2];
#define ROWS4(NV) rows_acc(P + (size_t)r * ATTN_CHUNK, x + d0, ldx, n, y + (size_t)r * hd + d0, hd, rem, 4, NV)
            BY_NV(ROWS4, nvec)
#undef ROWS4
        }
        for (; r < R; r++) {
#define ROWS1(NV) rows_acc(P + (size_t)r * ATTN_CHUNK, x + d0, ldx, nv[r], y + (size_t)r * hd + d0, hd, rem, 1, NV)
            BY_NV(ROWS1, nvec)
#undef ROWS1
        }
    }
}

/* y_j += sum_r P[r][j] x_r for j < n (y token-major with ldy). */
static void keys_tile(const float *P, int n, const float *x, int hd, int R, float *y, int ldy)
{
    for (int d0 = 0; d0 < hd; d0 += 4 * VW) {
        int rem = hd - d0, nvec = (rem + VW - 1) / VW;
        int j = 0;
        for (; j + 4 <= n; j += 4) {
#define KEYS4(NV) keys_acc(P, j, x + d0, hd, R, y + (size_t)j * ldy + d0, ldy, rem, 4, NV)
            BY_NV(KEYS4, nvec)
#undef KEYS4
        }
        for (; j < n; j++) {
#define KEYS1(NV) keys_acc(P, j, x + d0, hd, R, y + (size_t)j * ldy + d0, ldy, rem, 1, NV)
            BY_NV(KEYS1, nvec)
#undef KEYS1
        }
    }
}

/* Lanes j0 + i in [lo, hi) of the vector at j0. */
#define V_LANES(j0, lo, hi) V_ANDNOT(V_MASK((hi) - (j0)), V_MASK((lo) - (j0)))

/* Zeroes S[j] for j in [from, to) in whole vectors (from a multiple of VW). */
static void zero_from(float *s, int from, int to)
{
    for (int j = from; j < to; j += VW) V_STOREU(s + j, V_ZERO());
}

static void forward(const attn_chunk *c, int n, const float *q, int R, const int *lo,
                    const int *nv, float scale, float *m, float *l, float *o)
{
    float S[ATTN_TILE_ROWS * ATTN_CHUNK] __attribute__((aligned(64)));
    int hd = c->hd;
    scores_tile(c->kt, c->ldt, hd, q, R, n, scale, S);
    for (int r = 0; r < R; r++) {
        float *s = S + (size_t)r * ATTN_CHUNK;
        int nr = nv[r], j0 = lo[r] / VW * VW, j;
        if (lo[r] >= nr) {
            zero_from(s, 0, n);
            continue;
        }
        zero_from(s, 0, j0);
        vf mx = V_SET1(-INFINITY);
        for (j = j0; j < nr; j += VW)
            mx = V_MAX(mx, V_SELECT(V_LANES(j, lo[r], nr), V_LOADU(s + j), V_SET1(-INFINITY)));
        float cm = V_HMAX(mx);
        if (cm > m[r]) { /* a new maximum rescales what was summed so far */
            float a = m[r] == -INFINITY ? 0.0f : expf(m[r] - cm);
            for (int d = 0; d < hd; d++) o[(size_t)r * hd + d] *= a;
            l[r] *= a;
            m[r] = cm;
        }
        vf mv = V_SET1(m[r]), sum = V_ZERO();
        for (j = j0; j < nr; j += VW) {
            vf p = V_SELECT(V_LANES(j, lo[r], nr), v_exp(V_LOADU(s + j) - mv), V_ZERO());
            V_STOREU(s + j, p);
            sum = sum + p;
        }
        zero_from(s, j, n);
        l[r] += V_HSUM(sum);
    }
    rows_tile(S, c->v, c->ld, hd, R, nv, o);
}

static void backward(const attn_chunk *c, int n, const float *q, const float *dout, int R,
                     const int *lo, const int *nv, float scale, const float *lse,
                     const float *delta, float *dq, float *dk, float *dv)
{
    float P[ATTN_TILE_ROWS * ATTN_CHUNK] __attribute__((aligned(64)));
    float D[ATTN_TILE_ROWS * ATTN_CHUNK] __attribute__((aligned(64)));
    int hd = c->hd, most = 0;
    scores_tile(c->kt, c->ldt, hd, q, R, n, scale, P);
    scores_tile(c->vt, c->ldt, hd, dout, R, n, 1.0f, D);
    for (int r = 0; r < R; r++) {
        float *p = P + (size_t)r * ATTN_CHUNK, *g = D + (size_t)r * ATTN_CHUNK;
        vf lv = V_SET1(lse[r]), dl = V_SET1(delta[r]), sc = V_SET1(scale);
        int j0 = lo[r] < nv[r] ? lo[r] / VW * VW : 0, j;
        most = nv[r] > most ? nv[r] : most;
        zero_from(p, 0, j0);
        zero_from(g, 0, j0);
        for (j = j0; j < nv[r]; j += VW) {
            vmask mk = V_LANES(j, lo[r], nv[r]);
            vf pj = V_SELECT(mk, v_exp(V_LOADU(p + j) - lv), V_ZERO());
            V_STOREU(p + j, pj);
            V_STOREU(g + j, pj * (V_LOADU(g + j) - dl) * sc);
        }
        zero_from(p, j, n);
        zero_from(g, j, n);
    }
    rows_tile(D, c->k, c->ld, hd, R, nv, dq);
    keys_tile(D, most, q, hd, R, dk, c->ld);
    keys_tile(P, most, dout, hd, R, dv, c->ld);
}

const attn_kernel_table ATTN_TABLE = {ATTN_ISA, forward, backward};

#endif
