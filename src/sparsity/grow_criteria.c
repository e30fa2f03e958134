/* The grow criteria dynamic sparse training can use, by id. Each is a
 * choose function over grow_input (grow.h); a new one is a small file and
 * a line here. */
#include "sparsity/grow.h"

#include <stddef.h>

/* SET ("A Scalable Evolutionary Training of Artificial Neural Networks",
 * Mocanu et al. 2018) and MEST: uniformly among the absent positions. */
static int choose_random(const grow_input *in, int k, int64_t *pos)
{
    return grow_random(in->p->csr, k, in->rng, pos, in->closed);
}

/* RigL ("Rigging the Lottery: Making All Tickets Winners", Evci et al.
 * 2020): the dense gradient dL/dW = dY · Xᵀ of the batch just trained on,
 * only its top k outside the pattern kept. */
static int choose_gradient(const grow_input *in, int k, int64_t *pos)
{
    return grow_top_outer(in->p->csr, in->dy, in->x, in->bp, k, pos, NULL, in->scratch, in->closed);
}

/* SNFS's momentum and G2GNet's Hebbian correlation: the same top-k of an
 * outer product, over the window the criterion keeps. */
static int choose_window(const grow_input *in, int k, int64_t *pos)
{
    return grow_top_outer(in->p->csr, in->win_post, in->win_pre, in->win_cols, k, pos, NULL,
                          in->scratch, in->closed);
}

static const grow_criterion grow_random_c = {RW_GROW_RANDOM, "random", GROW_WINDOW_NONE,
                                            choose_random};
static const grow_criterion grow_gradient_c = {RW_GROW_GRADIENT, "gradient", GROW_WINDOW_NONE,
                                              choose_gradient};
static const grow_criterion grow_momentum_c = {RW_GROW_MOMENTUM, "momentum",
                                              GROW_WINDOW_MOMENTUM, choose_window};
static const grow_criterion grow_hebbian_c = {RW_GROW_HEBBIAN, "hebbian", GROW_WINDOW_ACTIVATIONS,
                                             choose_window};
extern const grow_criterion grow_unfired; /* grow_unfired.c */

/* Every criterion, in the order of rw_grow_criterion. */
static const grow_criterion *const criteria[] = {&grow_random_c, &grow_gradient_c,
                                                 &grow_momentum_c, &grow_hebbian_c, &grow_unfired};

const grow_criterion *grow_criterion_get(rw_grow_criterion id)
{
    for (size_t i = 0; i < sizeof criteria / sizeof criteria[0]; i++)
        if (criteria[i]->id == id) return criteria[i];
    return NULL;
}

const char *rw_grow_name(rw_grow_criterion id)
{
    const grow_criterion *g = grow_criterion_get(id);
    return g ? g->name : NULL;
}
