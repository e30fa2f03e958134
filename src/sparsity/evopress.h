/* The search of EvoPress ("EvoPress: Towards Optimal Dynamic Model
 * Compression via Evolutionary Search", Sieberling et al. 2024) over
 * per-unit compression levels, apart from what a level means: each unit
 * (a linear map) has integer levels lo[u] <= 0 <= hi[u], level 0 the
 * uniform target, and one level step of every unit removes or restores the
 * same number of weights, so a profile whose levels sum to zero has the
 * target's average exactly. The caller's fitness says how good a profile
 * is (lower is better; models/gpt_evopress.c: the KL divergence of the
 * stitched model from the dense one on calibration tokens). */
#ifndef RW_SPARSITY_EVOPRESS_H
#define RW_SPARSITY_EVOPRESS_H

#include <stdint.h>

#include "rewire.h"

/* Fitness of the profile level[units] at selection stage `stage` (0 to
 * stages - 1, each on more calibration tokens than the one before; the
 * last is the one the parent is judged by). Must be deterministic: the
 * same profile and stage give the same number. */
typedef double (*evopress_fitness_fn)(const int *level, int stage, void *user);

/* After each generation: the parent's fitness at the last stage. */
typedef void (*evopress_generation_fn)(int generation, double fitness, const int *level,
                                       void *user);

typedef struct {
    int units;
    const int *lo, *hi;  /* [units] each unit's level range, lo <= 0 <= hi */
    int generations;     /* >= 0 */
    int offspring;       /* λ >= 1 */
    int max_mutations;   /* each offspring gets 1 to max_mutations level switches */
    int stages;          /* 1 to EVOPRESS_MAX_STAGES */
    const int *survivors; /* [stages - 1] offspring kept after each stage but the last,
                             decreasing, the first <= offspring (NULL when stages == 1) */
    uint64_t seed;
    evopress_generation_fn on_generation; /* NULL: none */
    void *user;          /* for on_generation */
} evopress_config;

#define EVOPRESS_MAX_STAGES 8

/* The (1+λ) search with level-switch mutations (one unit a level up, an
 * other a level down, both within their ranges) and multi-step selection:
 * the λ offspring of the parent are ranked at stage 0, the best
 * survivors[0] at stage 1, ..., and the best at the last stage replaces
 * the parent only if its fitness there is strictly lower. level [units]
 * holds the start (its levels summing to zero) and gets the best profile;
 * *fitness its fitness at the last stage, never above the start's.
 * RW_ERR_INVALID_ARGUMENT for a config out of range or a start outside
 * the ranges or not summing to zero, RW_ERR_NO_MEMORY. */
rw_status evopress_search(const evopress_config *c, evopress_fitness_fn f, void *user, int *level,
                          double *fitness);

#endif
