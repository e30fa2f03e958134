#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"

void tu_fill_uniform(float *x, size_t n, float lo, float hi, rng_state *r)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)rng_uniform(r);
}

void tu_random_csr(csr_matrix *m, int rows, int cols, double density, rng_state *r)
{
    int cap = rows * cols;
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)(cap > 0 ? cap : 1));
    int32_t *ptr = malloc(sizeof(int32_t) * ((size_t)rows + 1));
    int nnz = 0;
    ptr[0] = 0;
    for (int o = 0; o < rows; o++) {
        for (int i = 0; i < cols; i++)
            if (rng_uniform(r) < density) idx[nnz++] = i;
        ptr[o + 1] = nnz;
    }
    assert_int_equal(csr_alloc(m, rows, cols, nnz), RW_OK);
    for (int o = 0; o <= rows; o++) m->indptr[o] = ptr[o];
    for (int k = 0; k < nnz; k++) {
        m->indices[k] = idx[k];
        m->values[k] = (float)(2.0 * rng_uniform(r) - 1.0);
    }
    csr_build_transpose(m);
    free(idx);
    free(ptr);
}

const char *tu_temp_path(const char *name)
{
    static char buf[512];
    const char *dir = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/rewire-test-%ld-%s", dir ? dir : "/tmp", (long)getpid(), name);
    return buf;
}

double tu_max_rel_diff(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i]));
        if (d > worst || isnan(d)) worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

int tu_small_head(int test, int n, rw_dataset **out)
{
    rw_dataset *all;
    if (rw_dataset_load("data/fashion-small", test, &all) != RW_OK) return -1;
    rw_status st = rw_dataset_head(all, n, out);
    rw_dataset_free(all);
    return st == RW_OK ? 0 : -1;
}

char *tu_word_text(const char *const *words, int n, uint64_t seed, size_t *len)
{
    size_t cap = 6000, at = 0;
    char *s = malloc(cap + 64);
    assert_non_null(s);
    rng_state r;
    rng_seed(&r, seed);
    while (at < cap) {
        const char *w = words[rng_below(&r, (uint64_t)n)];
        size_t k = strlen(w);
        assert_true(k < 64);
        memcpy(s + at, w, k);
        at += k;
    }
    *len = at;
    return s;
}

rw_model *tu_tiny_gpt(uint64_t seed)
{
    rw_gpt_config g = rw_gpt_config_default();
    g.n_layer = 2;
    g.n_head = 2;
    g.n_embd = 16;
    g.context = 16;
    g.bias = 1;
    g.seed = seed;
    rw_model *m = NULL;
    assert_int_equal(rw_gpt_create(&g, &m), RW_OK);
    return m;
}
