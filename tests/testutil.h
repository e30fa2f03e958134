/* Small helpers shared by the tests: deterministic random data and
 * temporary paths. Each test file is a cmocka program. */
#ifndef RW_TESTUTIL_H
#define RW_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/csr.h"
#include "rewire.h"
#include "core/rng.h"

/* Fills n floats uniformly in [lo, hi). */
void tu_fill_uniform(float *x, size_t n, float lo, float hi, rng_state *r);

/* A random rows × cols CSR with each entry kept with probability `density`,
 * values uniform in [-1, 1), transposed view built. */
void tu_random_csr(csr_matrix *m, int rows, int cols, double density, rng_state *r);

/* A path under the system temp folder unique to this process. Returns a
 * static buffer (copy it before the next call). */
const char *tu_temp_path(const char *name);

/* The first n samples of the shipped subset tests/data/fashion-small
 * (test split when `test`), run from the tests folder. 0 on success. */
int tu_small_head(int test, int n, rw_dataset **out);

/* About 6,000 bytes of words drawn from words[0..n) (seeded), for
 * language-model tests; *len gets the length. Free with free(). */
char *tu_word_text(const char *const *words, int n, uint64_t seed, size_t *len);

/* A tiny GPT for the pruning tests: 2 layers, 2 heads, dim 16, context
 * 16, biases, byte vocabulary, weights drawn from seed. */
rw_model *tu_tiny_gpt(uint64_t seed);

/* Max |a-b| / max(1, |b|) over n entries. */
double tu_max_rel_diff(const float *a, const float *b, size_t n);

#endif
