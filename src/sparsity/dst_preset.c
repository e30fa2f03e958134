/* The named algorithms as presets over the shared machinery: a drop
 * criterion, a grow criterion and a schedule, with each paper's settings
 * (adapted where noted to a 10-epoch, batch-128 run). */
#include <string.h>

#include "rewire.h"

rw_dst_config rw_dst_config_preset(rw_dst_method method)
{
    rw_dst_config c;
    memset(&c, 0, sizeof c);
    c.drop = RW_DROP_MAGNITUDE;
    c.grow = RW_GROW_RANDOM;
    c.update_every = 100;
    c.drop_schedule = RW_DROP_SCHEDULE_CONSTANT;
    c.update_until = 1.0;
    c.window = 1;
    c.mest_lambda = 1.0f;
    c.final_distribution = RW_DIST_ERK;
    c.prune_end = 1.0;
    c.seed = 1;
    /* Inputs go after a tenth of training, once the weights say which
     * matter, and are all gone by half, leaving the rest of the rewiring
     * (RigL's stops at 75%) to settle on the inputs kept. */
    c.input_start = 0.1;
    c.input_end = 0.5;
    switch (method) {
    case RW_DST_STATIC: /* no updates */
        break;
    case RW_DST_SET:
        /* "A Scalable Evolutionary Training of Artificial Neural Networks
         * with Adaptive Sparse Connectivity Inspired by Network Science",
         * Mocanu et al. 2018: SET's drop, random growth, ζ = 0.3. On the
         * update schedule "Rigging the Lottery" (Evci et al. 2020) ran its
         * SET baseline with: every 100 steps, cosine decay, none after 75%.
         * (Mocanu et al. update after every epoch without decay:
         * update_every 0, constant, update_until 1; in 10 epochs that ends
         * with 30% of the weights replaced at a near-zero learning rate.) */
        c.drop = RW_DROP_SET;
        c.drop_fraction = 0.3;
        c.drop_schedule = RW_DROP_SCHEDULE_COSINE;
        c.update_until = 0.75;
        break;
    case RW_DST_RIGL:
        /* "Rigging the Lottery: Making All Tickets Winners", Evci et al.
         * 2020: ΔT = 100, α = 0.3 with cosine decay, stop at 75%. */
        c.grow = RW_GROW_GRADIENT;
        c.drop_fraction = 0.3;
        c.drop_schedule = RW_DROP_SCHEDULE_COSINE;
        c.update_until = 0.75;
        break;
    case RW_DST_SNFS:
        /* "Sparse Networks from Scratch: Faster Training without Losing
         * Performance", Dettmers & Zettlemoyer 2019: prune rate 0.5 with
         * cosine decay at the end of every epoch, regrowth by momentum,
         * shared among layers by mean momentum. The momentum of absent
         * weights is truncated to the last 2 batches (the full one would be
         * an out × in array; each batch of the window costs one more dense
         * product per update). */
        c.grow = RW_GROW_MOMENTUM;
        c.update_every = 0;
        c.drop_fraction = 0.5;
        c.drop_schedule = RW_DROP_SCHEDULE_COSINE;
        c.redistribute = 1;
        c.window = 2;
        break;
    case RW_DST_MEST:
        /* "MEST: Accurate and Fast Memory-Economic Sparse Training
         * Framework on the Edge", Yuan et al. 2021: drop by |w| + λ|∇w|,
         * grow at random; mutation rate decayed and stopped before the end
         * (here: 0.3, cosine, every epoch, until 75%). */
        c.drop = RW_DROP_MEST;
        c.update_every = 0;
        c.drop_fraction = 0.3;
        c.drop_schedule = RW_DROP_SCHEDULE_COSINE;
        c.update_until = 0.75;
        break;
    case RW_DST_GRANET:
        /* "Sparse Training via Boosting Pruning Plasticity with
         * Neuroregeneration", Liu et al. 2021: from 50% sparsity, cubic
         * gradual magnitude pruning (here over the first half of training)
         * with zero-cost neuroregeneration by gradient every 100 steps,
         * rate 0.5 with cosine decay. */
        c.grow = RW_GROW_GRADIENT;
        c.drop_fraction = 0.5;
        c.drop_schedule = RW_DROP_SCHEDULE_COSINE;
        c.update_until = 0.75;
        c.initial_sparsity = 0.5;
        c.prune_start = 0.0;
        c.prune_end = 0.5;
        break;
    case RW_DST_HEBBIAN:
        /* "Neuro-inspired Ensemble-to-Ensemble Communication Primitives for
         * Sparse and Efficient ANNs" (G2GNet), Konstantaropoulos et al.
         * 2025: magnitude drop, regrowth where input and output activations
         * are most correlated over recent batches (here the last 2, 256
         * samples), on SET's schedule. */
        c.grow = RW_GROW_HEBBIAN;
        c.update_every = 0;
        c.drop_fraction = 0.3;
        c.window = 2;
        break;
    }
    return c;
}
