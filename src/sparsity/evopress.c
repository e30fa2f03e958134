/* EvoPress's (1+λ) evolutionary search with level-switch mutations and
 * multi-step selection ("EvoPress: Towards Optimal Dynamic Model
 * Compression via Evolutionary Search", Sieberling et al. 2024). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "sparsity/evopress.h"

static rw_status check(const evopress_config *c, const int *level)
{
    if (c->units < 2 || !c->lo || !c->hi)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "evopress: %d units, expected at least 2 with "
                       "their level ranges", c->units);
    if (c->generations < 0 || c->offspring < 1 || c->max_mutations < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "evopress: generations %d, offspring %d, mutations "
                       "%d; expected >= 0, >= 1, >= 1", c->generations, c->offspring,
                       c->max_mutations);
    if (c->stages < 1 || c->stages > EVOPRESS_MAX_STAGES || (c->stages > 1 && !c->survivors))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "evopress: %d selection stages, expected 1 to %d "
                       "with the survivors of each", c->stages, EVOPRESS_MAX_STAGES);
    int prev = c->offspring;
    for (int s = 0; s + 1 < c->stages; s++) {
        if (c->survivors[s] < 1 || c->survivors[s] > prev)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "evopress: %d survivors of stage %d, expected 1 "
                           "to %d", c->survivors[s], s, prev);
        prev = c->survivors[s];
    }
    long sum = 0;
    for (int u = 0; u < c->units; u++) {
        if (c->lo[u] > 0 || c->hi[u] < 0 || level[u] < c->lo[u] || level[u] > c->hi[u])
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "evopress: unit %d at level %d of [%d, %d]", u,
                           level[u], c->lo[u], c->hi[u]);
        sum += level[u];
    }
    if (sum != 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "evopress: the start's levels sum to %ld, not 0 "
                       "(the average would not be the target)", sum);
    return RW_OK;
}

/* One level switch: a unit that can go up goes up, another that can go
 * down goes down. Returns 0 when no pair exists (every range empty). */
static int level_switch(const evopress_config *c, int *level, rng_state *r)
{
    int up_ok = 0, down_ok = 0;
    for (int u = 0; u < c->units; u++) up_ok += level[u] < c->hi[u], down_ok += level[u] > c->lo[u];
    if (!up_ok || !down_ok) return 0;
    /* Rejection over uniform picks: a few tries suffice unless nearly every
     * unit is at one end of its range, where the scan below takes over. */
    for (int tries = 0; tries < 64; tries++) {
        int a = (int)rng_below(r, (uint64_t)c->units), b = (int)rng_below(r, (uint64_t)c->units);
        if (a != b && level[a] < c->hi[a] && level[b] > c->lo[b]) {
            level[a]++, level[b]--;
            return 1;
        }
    }
    int a = -1, b = -1;
    for (int u = 0; u < c->units && a < 0; u++)
        if (level[u] < c->hi[u]) a = u;
    for (int u = 0; u < c->units && b < 0; u++)
        if (u != a && level[u] > c->lo[u]) b = u;
    if (a < 0 || b < 0) return 0;
    level[a]++, level[b]--;
    return 1;
}

typedef struct {
    double fitness;
    int index;
} ranked;

static int by_fitness(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    if (a->fitness != b->fitness) return a->fitness < b->fitness ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

rw_status evopress_search(const evopress_config *c, evopress_fitness_fn f, void *user, int *level,
                          double *fitness)
{
    rw_status st = check(c, level);
    if (st != RW_OK) return st;
    int U = c->units, L = c->offspring;
    int *kids = malloc(sizeof *kids * (size_t)U * L);
    ranked *rank = malloc(sizeof *rank * (size_t)L);
    if (!kids || !rank) {
        free(kids), free(rank);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for %d offspring", L);
    }
    rng_state r;
    rng_seed_stream(&r, c->seed, 0x45766f5072657373ull); /* "EvoPress" */
    double best = f(level, c->stages - 1, user);
    for (int g = 0; g < c->generations; g++) {
        for (int k = 0; k < L; k++) {
            int *kid = kids + (size_t)k * U;
            memcpy(kid, level, sizeof *kid * (size_t)U);
            int n = 1 + (int)rng_below(&r, (uint64_t)c->max_mutations);
            for (int q = 0; q < n; q++) level_switch(c, kid, &r);
            rank[k] = (ranked){0, k};
        }
        int alive = L;
        for (int s = 0; s < c->stages; s++) {
            for (int q = 0; q < alive; q++)
                rank[q].fitness = f(kids + (size_t)rank[q].index * U, s, user);
            qsort(rank, (size_t)alive, sizeof *rank, by_fitness);
            if (s + 1 < c->stages) alive = c->survivors[s];
        }
        /* Elitism: the parent, judged on the last stage's tokens, stays
         * unless an offspring is strictly better there. */
        if (rank[0].fitness < best) {
            best = rank[0].fitness;
            memcpy(level, kids + (size_t)rank[0].index * U, sizeof *level * (size_t)U);
        }
        if (c->on_generation) c->on_generation(g, best, level, c->user);
    }
    *fitness = best;
    free(kids), free(rank);
    return RW_OK;
}
