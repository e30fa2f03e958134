/* The attention kernels' scalar reference (attn_kernels.h): one row, one
 * key and one feature at a time, in the order the formulas read. */
#include <math.h>
#include <stddef.h>

#include "kernels/attn_kernels.h"

static float dot_t(const float *x, const float *t, int ldt, int j, int hd)
{
    float s = 0.0f;
    for (int d = 0; d < hd; d++) s += x[d] * t[(size_t)d * ldt + j];
    return s;
}

static void forward(const attn_chunk *c, int n, const float *q, int R, const int *lo,
                    const int *nv, float scale, float *m, float *l, float *o)
{
    (void)n;
    int hd = c->hd;
    for (int r = 0; r < R; r++) {
        const float *qr = q + (size_t)r * hd;
        float *out = o + (size_t)r * hd, cm = -INFINITY;
        if (lo[r] >= nv[r]) continue;
        for (int j = lo[r]; j < nv[r]; j++) cm = fmaxf(cm, scale * dot_t(qr, c->kt, c->ldt, j, hd));
        if (cm > m[r]) { /* a new maximum rescales what was summed so far */
            float a = m[r] == -INFINITY ? 0.0f : expf(m[r] - cm);
            for (int d = 0; d < hd; d++) out[d] *= a;
            l[r] *= a;
            m[r] = cm;
        }
        for (int j = lo[r]; j < nv[r]; j++) {
            float p = expf(scale * dot_t(qr, c->kt, c->ldt, j, hd) - m[r]);
            const float *v = c->v + (size_t)j * c->ld;
            l[r] += p;
            for (int d = 0; d < hd; d++) out[d] += p * v[d];
        }
    }
}

static void backward(const attn_chunk *c, int n, const float *q, const float *dout, int R,
                     const int *lo, const int *nv, float scale, const float *lse,
                     const float *delta, float *dq, float *dk, float *dv)
{
    (void)n;
    int hd = c->hd;
    for (int r = 0; r < R; r++) {
        const float *qr = q + (size_t)r * hd, *gr = dout + (size_t)r * hd;
        for (int j = lo[r]; j < nv[r]; j++) {
            const float *k = c->k + (size_t)j * c->ld;
            float p = expf(scale * dot_t(qr, c->kt, c->ldt, j, hd) - lse[r]);
            float ds = scale * p * (dot_t(gr, c->vt, c->ldt, j, hd) - delta[r]);
            float *dkj = dk + (size_t)j * c->ld, *dvj = dv + (size_t)j * c->ld;
            for (int d = 0; d < hd; d++) {
                dq[(size_t)r * hd + d] += ds * k[d];
                dkj[d] += ds * qr[d];
                dvj[d] += p * gr[d];
            }
        }
    }
}

const attn_kernel_table attn_kernels_scalar_table = {"scalar", forward, backward};
