/* rw_bench_training and rw_bench_inference: a whole network, end to end,
 * through the public API a user would call (rw_trainer_epoch,
 * rw_predictor_run), on synthetic data. Sparsity 0 is the dense path. */
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"

rw_bench_net_config rw_bench_net_config_default(void)
{
    rw_bench_net_config c;
    memset(&c, 0, sizeof c);
    c.distribution = RW_DIST_ERK;
    c.activation = RW_ACT_RELU;
    c.batch = 128;
    c.steps = 50;
    c.repeats = 5;
    c.min_seconds = 0.2;
    c.train = rw_train_config_default();
    c.train.schedule = RW_SCHED_CONSTANT;
    c.train.lr = 0.01f;
    c.seed = 1;
    return c;
}

static rw_status check_config(const rw_bench_net_config *c)
{
    if (!c->sizes || c->n_layers < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: the network has no layers");
    if (c->batch < 1 || c->batch > 1 << 16)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: batch %d is outside [1, 65536]", c->batch);
    if (c->nm_m > 0 && (c->nm_n < 1 || c->nm_n > c->nm_m || c->sparsity != 0.0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "bench: N:M %d:%d needs 1 <= N <= M and sparsity 0 (it sets the sparsity)",
                       c->nm_n, c->nm_m);
    if (c->steps < 1 || c->repeats < 1 || c->repeats > 1000 || !(c->min_seconds >= 0.0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: steps %d, repeats %d or time %g out of range",
                       c->steps, c->repeats, c->min_seconds);
    return RW_OK;
}

/* The model of the config, and n synthetic samples for it. */
static rw_status make_model_and_data(const rw_bench_net_config *c, int n, rw_model **m,
                                     rw_dataset **data)
{
    *m = NULL;
    *data = NULL;
    rw_model_config mc = rw_model_config_default();
    mc.sizes = c->sizes;
    mc.n_layers = c->n_layers;
    mc.sparsity = c->sparsity;
    mc.distribution = c->distribution;
    mc.activation = c->activation;
    mc.seed = c->seed;
    rw_status st = rw_model_create(&mc, m);
    if (st == RW_OK && c->nm_m > 0) st = rw_model_to_nm(*m, -1, c->nm_n, c->nm_m);
    if (st != RW_OK) {
        rw_model_free(*m);
        *m = NULL;
        return st;
    }
    int f = c->sizes[0], classes = c->sizes[c->n_layers];
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)f);
    uint8_t *y = malloc((size_t)n);
    if (!x || !y) {
        free(x), free(y);
        rw_model_free(*m);
        *m = NULL;
        return rw_fail(RW_ERR_NO_MEMORY, "bench: out of memory for %d synthetic samples", n);
    }
    rng_state r;
    rng_seed_stream(&r, c->seed, 0xbe7c4ULL);
    for (size_t i = 0; i < (size_t)n * (size_t)f; i++) x[i] = (float)rng_uniform(&r);
    for (int i = 0; i < n; i++) y[i] = (uint8_t)rng_below(&r, (uint64_t)(classes < 256 ? classes : 256));
    st = rw_dataset_from_memory(x, y, n, f, classes, data);
    free(x), free(y);
    if (st != RW_OK) {
        rw_model_free(*m);
        *m = NULL;
        return st;
    }
    rw_model_set_normalization(*m, 0.5f, 0.29f);
    return RW_OK;
}

static void fill_row(const rw_bench_net_config *c, const rw_model *m, rw_bench_net_row *out)
{
    memset(out, 0, sizeof *out);
    int64_t nnz = 0, all = 0;
    for (int l = 0; l < rw_model_layer_count(m); l++) {
        rw_layer_info li;
        rw_model_layer_info(m, l, &li);
        nnz += li.nonzeros;
        all += (int64_t)li.in * li.out;
    }
    out->nonzeros = nnz;
    out->sparsity = all ? 1.0 - (double)nnz / (double)all : 0.0;
    out->batch = c->batch;
    out->threads = rw_get_num_threads();
    out->steps = c->steps;
    out->repeats = c->repeats;
}

rw_status rw_bench_training(const rw_bench_net_config *c, rw_bench_net_row *out)
{
    rw_status st = check_config(c);
    if (st != RW_OK) return st;
    int saved = rw_get_num_threads();
    if (c->threads > 0) rw_set_num_threads(c->threads);
    int n = c->steps * c->batch;
    rw_model *m;
    rw_dataset *data;
    rw_trainer *t = NULL;
    double *sps = malloc(sizeof(double) * (size_t)c->repeats);
    st = sps ? make_model_and_data(c, n, &m, &data)
             : rw_fail(RW_ERR_NO_MEMORY, "bench: out of memory");
    if (st != RW_OK) goto done_early;
    rw_train_config tc = c->train;
    tc.batch = c->batch;
    tc.epochs = c->repeats + 1;
    st = rw_trainer_create(m, &tc, &t);
    /* One warm-up epoch (page faults, caches, thread start), then one epoch
     * per measurement. */
    for (int r = -1; r < c->repeats && st == RW_OK; r++) {
        rw_epoch_stats s;
        st = rw_trainer_epoch(t, data, NULL, NULL, &s);
        if (st == RW_OK && r >= 0) sps[r] = s.samples_per_second;
    }
    if (st == RW_OK) {
        fill_row(c, m, out);
        out->samples_per_second = bench_median(sps, c->repeats);
        double best = sps[0];
        for (int r = 1; r < c->repeats; r++)
            if (sps[r] > best) best = sps[r];
        out->best_samples_per_second = best;
        out->seconds = c->batch / out->samples_per_second;
        out->best_seconds = c->batch / best;
    }
    rw_trainer_free(t);
    rw_model_free(m);
    rw_dataset_free(data);
done_early:
    free(sps);
    rw_set_num_threads(saved);
    return st;
}

rw_status rw_bench_inference(const rw_bench_net_config *c, rw_bench_net_row *out)
{
    rw_status st = check_config(c);
    if (st != RW_OK) return st;
    int saved = rw_get_num_threads();
    if (c->threads > 0) rw_set_num_threads(c->threads);
    /* A pool of distinct samples, so one call's input is not still in
     * cache from the last (weights are, as in a serving loop). */
    int pool = c->batch < 64 ? 64 : c->batch;
    rw_model *m;
    rw_dataset *data;
    rw_predictor *p = NULL;
    float *probs = NULL;
    double *per = malloc(sizeof(double) * (size_t)c->repeats);
    st = per ? make_model_and_data(c, pool, &m, &data)
             : rw_fail(RW_ERR_NO_MEMORY, "bench: out of memory");
    if (st != RW_OK) goto done_early;
    const float *x = data->x;
    int f = c->sizes[0], classes = c->sizes[c->n_layers];
    probs = malloc(sizeof(float) * (size_t)c->batch * (size_t)classes);
    st = probs ? rw_predictor_create(m, c->batch, &p)
               : rw_fail(RW_ERR_NO_MEMORY, "bench: out of memory");
    if (st == RW_OK) st = rw_predictor_run(p, x, c->batch, probs); /* warm-up */
    for (int r = 0; r < c->repeats && st == RW_OK; r++) {
        int calls = 0;
        double start = bench_now(), elapsed;
        do {
            int first = (int)(((int64_t)calls * c->batch) % (pool - c->batch + 1));
            st = rw_predictor_run(p, x + (size_t)first * f, c->batch, probs);
            calls++;
            elapsed = bench_now() - start;
        } while (st == RW_OK && elapsed < c->min_seconds);
        per[r] = elapsed / calls;
    }
    if (st == RW_OK) {
        fill_row(c, m, out);
        out->steps = 0;
        out->seconds = bench_median(per, c->repeats);
        out->best_seconds = bench_min(per, c->repeats);
        out->samples_per_second = c->batch / out->seconds;
        out->best_samples_per_second = c->batch / out->best_seconds;
    }
    rw_predictor_free(p);
    rw_model_free(m);
    rw_dataset_free(data);
done_early:
    free(probs);
    free(per);
    rw_set_num_threads(saved);
    return st;
}
