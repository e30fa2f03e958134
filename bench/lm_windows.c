/* Prints what `bench/peer_pytorch_lm.py --check-windows` prints, from
 * rewire itself: the split of a text (bytes tokenizer, 10% validation),
 * the window starts corpus_sample_batch draws for training steps 1 to
 * STEPS, and the first three numbers of the generator seeded with SEED.
 * Identical output means the Python port of the sampler is exact.
 *
 *   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2
 *   cc -O2 -Isrc -Iinclude bench/lm_windows.c build/librewire.a -ljansson -lm -fopenmp \
 *      -o build/lm_windows
 *   build/lm_windows FILE CONTEXT BATCH STEPS SEED > c.txt
 *   python3 bench/peer_pytorch_lm.py --check-windows --text FILE --context CONTEXT \
 *      --batch BATCH --steps STEPS --seed SEED | cmp - c.txt
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/rng.h"
#include "text/corpus.h"
#include "text/tokenizer.h"

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s FILE CONTEXT BATCH STEPS SEED\n", argv[0]);
        return 2;
    }
    int T = atoi(argv[2]), B = atoi(argv[3]), steps = atoi(argv[4]);
    uint64_t seed = strtoull(argv[5], NULL, 0);
    tokenizer *tok = NULL;
    text_corpus *c = NULL;
    if (T < 1 || B < 1 || steps < 0) {
        fprintf(stderr, "%s: CONTEXT and BATCH must be >= 1, STEPS >= 0\n", argv[0]);
        return 2;
    }
    if (tokenizer_bytes_create(&tok) != RW_OK || corpus_load(argv[1], tok, 0.1, T, &c) != RW_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], rw_last_error());
        tokenizer_free(tok);
        return 1;
    }
    printf("n_tokens %zu n_train %zu\n", c->n_tokens, c->n_train);
    /* The draws of corpus_sample_batch (src/text/corpus.c), step by step. */
    for (int s = 1; s <= steps; s++) {
        rng_state r;
        rng_seed_stream(&r, seed, (uint64_t)s);
        printf("starts %d:", s);
        for (int b = 0; b < B; b++)
            printf(" %llu", (unsigned long long)rng_below(&r, c->n_train - (size_t)T));
        printf("\n");
    }
    rng_state r;
    rng_seed(&r, seed);
    printf("raw:");
    for (int k = 0; k < 3; k++) printf(" %llu", (unsigned long long)rng_next(&r));
    printf("\n");
    corpus_free(c);
    tokenizer_free(tok);
    return 0;
}
