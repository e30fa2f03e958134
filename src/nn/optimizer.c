#include "nn/optimizer.h"

#include <math.h>
#include <omp.h>

/* Every update is elementwise: threads cannot change a result. */
#define PARALLEL_MIN 65536

/* The update loops run 16 (AVX-512) or 8 (AVX2) weights at a time where
 * the CPU has them, chosen when the library loads. A weight's update is
 * the same IEEE operations in the same order at any width (ISO C mode
 * contracts no FMAs), so every clone gives the same bytes. This file is
 * compiled without errno for sqrtf (CMakeLists.txt): the second moment is
 * never negative, and with errno the square root was a call and a branch
 * per weight that kept AdamW's loop scalar. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__)
#define OPT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OPT_CLONES
#endif

/* Three loops without branches inside, so the compiler vectorises them
 * (with the options read inside the loop it did not: 2.6 ns per weight). */
OPT_CLONES static void sgd_range(const rw_train_config *c, float lr, float *restrict w,
                      const float *restrict g, float *restrict buf, int64_t k0, int64_t k1)
{
    const float mu = c->momentum, wd = c->weight_decay;
    if (mu == 0.0f) {
        for (int64_t k = k0; k < k1; k++) w[k] -= lr * (g[k] + wd * w[k]);
    } else if (!c->nesterov) {
        for (int64_t k = k0; k < k1; k++) {
            float b = mu * buf[k] + (g[k] + wd * w[k]);
            buf[k] = b;
            w[k] -= lr * b;
        }
    } else {
        for (int64_t k = k0; k < k1; k++) {
            float grad = g[k] + wd * w[k];
            float b = mu * buf[k] + grad;
            buf[k] = b;
            w[k] -= lr * (grad + mu * b);
        }
    }
}

/* AdamW: "Decoupled Weight Decay Regularization", Loshchilov & Hutter 2019. */
OPT_CLONES static void adamw_range(const rw_train_config *c, float lr, int64_t t, float *restrict w,
                        const float *restrict g, float *restrict m, float *restrict v, int64_t k0,
                        int64_t k1)
{
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    float c1 = 1.0f - powf(b1, (float)t), c2 = 1.0f - powf(b2, (float)t);
    float step = lr / c1, root_c2 = sqrtf(c2), decay = 1.0f - lr * c->weight_decay;
    for (int64_t k = k0; k < k1; k++) {
        m[k] = b1 * m[k] + (1.0f - b1) * g[k];
        v[k] = b2 * v[k] + (1.0f - b2) * g[k] * g[k];
        w[k] = w[k] * decay - step * m[k] / (sqrtf(v[k]) / root_c2 + eps);
    }
}

static void step_range(const rw_train_config *c, float lr, int64_t t, float *w, const float *g,
                       float *m1, float *m2, int64_t k0, int64_t k1)
{
    if (c->optimizer == RW_OPT_ADAMW)
        adamw_range(c, lr, t, w, g, m1, m2, k0, k1);
    else
        sgd_range(c, lr, w, g, m1, k0, k1);
}

void optimizer_step_range(const rw_train_config *c, float lr, int64_t t, float *w, const float *g,
                          float *m1, float *m2, int64_t k0, int64_t k1)
{
    /* Inside a parallel region (a training step's team) this is one chunk
     * of a phase: run it here. Even a parallel construct whose `if` is
     * false costs a nested team of one and a futex call per call in
     * libgomp, which was a visible share of a 99%-sparse step. */
    if (k1 - k0 < PARALLEL_MIN || omp_in_parallel()) {
        step_range(c, lr, t, w, g, m1, m2, k0, k1);
        return;
    }
#pragma omp parallel
    {
        int id = omp_get_thread_num(), parts = omp_get_num_threads();
        step_range(c, lr, t, w, g, m1, m2, k0 + (k1 - k0) * id / parts,
                   k0 + (k1 - k0) * (id + 1) / parts);
    }
}

void optimizer_step(const rw_train_config *c, float lr, int64_t t, float *w, const float *g,
                    float *m1, float *m2, int64_t n)
{
    optimizer_step_range(c, lr, t, w, g, m1, m2, 0, n);
}

float schedule_lr(const rw_train_config *c, int64_t step, int64_t steps_per_epoch,
                  int64_t total_steps)
{
    int64_t warm = (int64_t)c->warmup_epochs * steps_per_epoch;
    if (warm > 0 && step < warm) return c->lr * (float)(step + 1) / (float)warm;
    switch (c->schedule) {
    case RW_SCHED_STEP: {
        int64_t epoch = steps_per_epoch > 0 ? step / steps_per_epoch : 0;
        int every = c->step_every > 0 ? c->step_every : 1;
        return c->lr * powf(c->step_gamma, (float)(epoch / every));
    }
    case RW_SCHED_COSINE: {
        int64_t span = total_steps - warm;
        if (span <= 0) return c->lr;
        double progress = (double)(step - warm) / (double)span;
        if (progress > 1.0) progress = 1.0;
        return (float)(c->lr * 0.5 * (1.0 + cos(3.141592653589793 * progress)));
    }
    case RW_SCHED_CONSTANT:
        break;
    }
    return c->lr;
}
