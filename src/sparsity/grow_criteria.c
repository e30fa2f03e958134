/* The grow criteria dynamic sparse training can use, by id. Each is a
 * choose function over grow_input (grow.h); a new one is a small file and
 * a line here. */
#include "sparsity/grow.h"

#include <stddef.h>

/* SET ("A Scalable Evolutionary Training of Artificial Neural Networks",
 * Mocanu et al. 2018) and MEST: uniformly among the absent positions. */
static int choose_random(const grow_input *in, int k, int64_t *pos)
{
    return grow_random(in->p->csr, k, in->rng, pos);
}

/* RigL ("Rigging the Lottery: Making All Tickets Winners", Evci et al.
 * 2020): the dense gradient dL/dW = dY · Xᵀ of the batch just trained on,
 * only its top k outside the pattern kept. */
static int choose_gradient(const grow_input *in, int k, int64_t *pos)
{
    return grow_top_outer(in->p->csr, in->dy, in->x, in->bp, k, pos, NULL, in->scratch);
}

/* SNFS's momentum and G2GNet's Hebbian correlation: the same top-k of an
 * outer product, over the window the criterion keeps. */
static int choose_window(const grow_input *in, int k, int64_t *pos)
{
    return grow_top_outer(in->p->csr, in->win_post, in->win_pre, in->win_cols, k, pos, NULL,
                          in->scratch);
}

static const grow_criterion builtin[] = {
    {RW_GROW_RANDOM, "random", GROW_WINDOW_NONE, choose_random},
    {RW_GROW_GRADIENT, "gradient", GROW_WINDOW_NONE, choose_gradient},
    {RW_GROW_MOMENTUM, "momentum", GROW_WINDOW_MOMENTUM, choose_window},
    {RW_GROW_HEBBIAN, "hebbian", GROW_WINDOW_ACTIVATIONS, choose_window},
};

const grow_criterion *grow_criterion_get(rw_grow_criterion id)
{
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (builtin[i].id == id) return &builtin[i];
    return NULL;
}
