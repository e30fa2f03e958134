/* Seeded, splittable random numbers: xoshiro256** seeded through splitmix64.
 * Every random choice in rewire (topology, weights, data order) draws from
 * an rng_state derived from the user's seed, so runs are reproducible. */
#ifndef RW_CORE_RNG_H
#define RW_CORE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} rng_state;

void rng_seed(rng_state *r, uint64_t seed);
/* An independent stream for a purpose (e.g. layer index), from a seed. */
void rng_seed_stream(rng_state *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(rng_state *r);
/* Uniform in [0, 1). */
double rng_uniform(rng_state *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(rng_state *r, uint64_t n);
/* Standard normal (Box–Muller). */
double rng_normal(rng_state *r);

#endif
