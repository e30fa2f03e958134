/* Data-parallel training over MPI (run/dist.h). Each process holds the
 * whole model and the whole data set and trains on a contiguous slice of
 * every global batch; after backward the stored weights' gradients (nnz
 * floats per sparse layer, never in x out) are summed with one
 * MPI_Allreduce, so every process makes the same optimizer step. The
 * topology stays identical by construction: SET's random choices come
 * from streams seeded alike everywhere, magnitudes are of identical
 * weights, and the batch that RigL's, SNFS's and Hebbian growth look at
 * is gathered whole before the update. A hash of every layer, compared
 * after each update, turns any divergence into a clear error. */
#include "run/dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "nn/model.h"
#include "sparsity/dst.h"

#ifdef REWIRE_HAVE_MPI
#include <mpi.h>
#endif

/* mpirun (Open MPI, or a PMI launcher) tells its processes so in their
 * environment: the number of processes it started, or 0 when none did. */
static int launcher_size(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return 0;
}

#ifndef REWIRE_HAVE_MPI

rw_status rw_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (launcher_size() > 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "mpirun started %d processes, but this rewire was built without MPI: "
                       "install libopenmpi-dev and build with -DREWIRE_MPI=ON",
                       launcher_size());
    return RW_OK;
}
int rw_dist_rank(void) { return 0; }
int rw_dist_size(void) { return 1; }
void rw_dist_end(int failed) { (void)failed; }
rw_status dist_attach(rw_trainer *t, int unit)
{
    (void)t;
    (void)unit;
    return RW_OK;
}
rw_status dist_check_model(const rw_model *m, const char *when)
{
    (void)m;
    (void)when;
    return RW_OK;
}
int dist_stats(const rw_trainer *t, rw_dist_stats *out)
{
    (void)t;
    memset(out, 0, sizeof *out);
    return 0;
}

#else

static int g_started, g_rank, g_size = 1;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The message of a failed MPI call. */
static rw_status mpi_fail(int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", code);
    return rw_fail(RW_ERR_IO, "process %d of %d: %s failed: %s (another process may have died)",
                   g_rank, g_size, what, text);
}

rw_status rw_dist_init(int *argc, char ***argv)
{
    if (g_started || launcher_size() == 0) return RW_OK;
    /* Open MPI polls while a process waits for another. On cores shared
     * with other work the polling process takes the core its partner needs
     * to finish: measured on 2 busy vCPUs, an all-reduce of 570 KB took
     * 38 ms polling and 0.3-1 ms yielding (docs/distributed.md). A user's
     * own setting (environment or mpirun --mca) wins. */
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
    int provided = 0;
    /* The gradient all-reduce runs on whichever OpenMP thread reaches the
     * hook first, never on two at once. */
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return rw_fail(RW_ERR_IO, "MPI_Init_thread failed (code %d)", rc);
    g_started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    /* Errors come back as codes with a message, not as an abort without one. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_SERIALIZED)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "this MPI gives thread level %d, below MPI_THREAD_SERIALIZED (%d), which "
                       "training with OpenMP threads needs", provided, MPI_THREAD_SERIALIZED);
    return RW_OK;
}

int rw_dist_rank(void) { return g_rank; }
int rw_dist_size(void) { return g_size; }

void rw_dist_end(int failed)
{
    if (!g_started) return;
    g_started = 0;
    if (failed && g_size > 1) {
        fflush(NULL);
        /* Most failures are every process's (a bad flag, a missing file):
         * give process 0 the time to print its message before the abort
         * ends it. */
        if (g_rank > 0) nanosleep(&(struct timespec){0, 500000000L}, NULL);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Finalize();
}

/* ---- The hooks ----------------------------------------------------------- */

typedef struct {
    int rank, size;
    float *buf;            /* packed gradients, then the packed batch */
    size_t buf_cap;
    float *all;            /* every process's packed batch */
    size_t all_cap;
    int *counts, *displs;  /* [size] for MPI_Allgatherv */
    uint8_t *want_data, *want_grad; /* [n_tensors] tensors the gather takes */
    int64_t updates_checked;
    rw_dist_stats stats;
} dist_state;

static void dist_free(void *state)
{
    dist_state *d = state;
    if (!d) return;
    rw_free(d->buf);
    rw_free(d->all);
    free(d->counts);
    free(d->displs);
    free(d->want_data);
    free(d->want_grad);
    free(d);
}

static rw_status reserve(float **buf, size_t *cap, size_t n)
{
    if (n <= *cap) return RW_OK;
    float *b = rw_alloc(sizeof(float) * (n > 0 ? n : 1));
    if (!b) return rw_fail(RW_ERR_NO_MEMORY, "out of memory for a %zu-float MPI buffer", n);
    rw_free(*buf);
    *buf = b;
    *cap = n;
    return RW_OK;
}


/* After backward: each process's gradients are the mean over its own
 * columns; weighted by its share of the batch and summed, they are the
 * global batch's mean, as one process computes it. */
static rw_status after_backward(void *state, rw_trainer *t, trainer_step_info *s)
{
    dist_state *d = state;
    const rw_model *m = t->model;
    double t0 = now_seconds();
    /* Waiting here is time the slowest process still computes. */
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "the barrier before the gradient all-reduce");
    double t1 = now_seconds();
    double head[2] = {s->loss_sum, (double)s->counted};
    rc = MPI_Allreduce(MPI_IN_PLACE, head, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "the all-reduce of the batch's loss");
    double counted = head[1] > 0 ? head[1] : 1;
    float share = (float)((double)s->counted / counted);
    size_t total = 0;
    for (int p = 0; p < t->n_params; p++) total += (size_t)param_count(&m->params[p]);
    rw_status st = reserve(&d->buf, &d->buf_cap, total);
    if (st != RW_OK) return st;
    size_t at = 0;
    for (int p = 0; p < t->n_params; p++) {
        int64_t n = param_count(&m->params[p]);
        const float *g = t->ws.grad[p];
        for (int64_t k = 0; k < n; k++) d->buf[at + (size_t)k] = share * g[k];
        at += (size_t)n;
    }
    rc = MPI_Allreduce(MPI_IN_PLACE, d->buf, (int)total, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "the gradient all-reduce");
    at = 0;
    for (int p = 0; p < t->n_params; p++) {
        int64_t n = param_count(&m->params[p]);
        memcpy(t->ws.grad[p], d->buf + at, sizeof(float) * (size_t)n);
        at += (size_t)n;
    }
    s->loss_sum = head[0];
    s->counted = (int)llround(head[1]);
    double t2 = now_seconds();
    d->stats.steps++;
    d->stats.reduce_bytes = (int64_t)(sizeof(float) * total);
    int64_t dense = 0;
    for (int p = 0; p < t->n_params; p++) dense += param_dense_count(&m->params[p]);
    d->stats.dense_bytes = (int64_t)sizeof(float) * dense;
    d->stats.wait_seconds += t1 - t0;
    d->stats.reduce_seconds += t2 - t1;
    return RW_OK;
}

/* Marks the tensors growth reads: each weight's input, and its output's
 * activations and gradient. */
static rw_status mark_tensors(dist_state *d, const rw_trainer *t)
{
    int n = t->ws.n_tensors;
    free(d->want_data);
    free(d->want_grad);
    d->want_data = calloc((size_t)n, 1);
    d->want_grad = calloc((size_t)n, 1);
    if (!d->want_data || !d->want_grad)
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory gathering a batch");
    const rw_model *m = t->model;
    for (int p = 0; p < m->n_params; p++) {
        const param *q = &m->params[p];
        if (!q->is_weight) continue;
        d->want_data[q->x_tensor] = 1;
        d->want_data[q->y_tensor] = 1;
        d->want_grad[q->y_tensor] = t->ws.t[q->y_tensor].grad != NULL;
    }
    return RW_OK;
}

/* The global batch's tensors, gathered into the trainer's batch_data and
 * batch_grad in the columns a single process would hold them in. Each
 * process's gradients are of its own mean: scaled by its share, they are
 * of the global batch's. */
static rw_status gather_batch(dist_state *d, rw_trainer *t, int batch_n)
{
    const workspace *ws = &t->ws;
    int n_t = ws->n_tensors, gbp = trainer_batch_bp(t), size = d->size, lo;
    rw_status st = d->want_data ? RW_OK : mark_tensors(d, t);
    if (st != RW_OK) return st;
    if (!t->batch_data) {
        t->batch_data = calloc((size_t)n_t, sizeof(float *));
        t->batch_grad = calloc((size_t)n_t, sizeof(float *));
        if (!t->batch_data || !t->batch_grad)
            return rw_fail(RW_ERR_NO_MEMORY, "out of memory gathering a batch");
        for (int i = 0; i < n_t; i++) {
            size_t len = sizeof(float) * (size_t)ws->t[i].rows * (size_t)gbp;
            if (d->want_data[i] && !(t->batch_data[i] = rw_alloc(len)))
                return rw_fail(RW_ERR_NO_MEMORY, "out of memory gathering a batch");
            if (d->want_grad[i] && !(t->batch_grad[i] = rw_alloc(len)))
                return rw_fail(RW_ERR_NO_MEMORY, "out of memory gathering a batch");
        }
    }
    /* Floats per column of the batch, over every tensor gathered. */
    size_t per_col = 0;
    for (int i = 0; i < n_t; i++)
        per_col += (size_t)ws->t[i].rows * (size_t)(d->want_data[i] + d->want_grad[i]);
    int mine = trainer_shard_part(batch_n, d->rank, size, t->shard_unit, &lo);
    if ((st = reserve(&d->buf, &d->buf_cap, per_col * (size_t)mine)) != RW_OK) return st;
    if ((st = reserve(&d->all, &d->all_cap, per_col * (size_t)batch_n)) != RW_OK) return st;
    size_t at = 0;
    for (int i = 0; i < n_t; i++)
        for (int g = 0; g < 2; g++) {
            if (!(g ? d->want_grad[i] : d->want_data[i])) continue;
            const float *src = g ? ws->t[i].grad : ws->t[i].data;
            for (int row = 0; row < ws->t[i].rows; row++, at += (size_t)mine)
                memcpy(d->buf + at, src + (size_t)row * ws->bp, sizeof(float) * (size_t)mine);
        }
    for (int r = 0, off = 0; r < size; r++) {
        d->counts[r] = (int)(per_col * (size_t)trainer_shard_part(batch_n, r, size, t->shard_unit, &lo));
        d->displs[r] = off;
        off += d->counts[r];
    }
    int rc = MPI_Allgatherv(d->buf, (int)at, MPI_FLOAT, d->all, d->counts, d->displs, MPI_FLOAT,
                            MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "gathering the batch for a topology update");
    d->stats.gathers++;
    d->stats.gather_bytes += (int64_t)(sizeof(float) * per_col * (size_t)batch_n);
    for (int r = 0; r < size; r++) {
        int cols = trainer_shard_part(batch_n, r, size, t->shard_unit, &lo);
        float share = batch_n > 0 ? (float)cols / (float)batch_n : 0.0f;
        const float *from = d->all + d->displs[r];
        for (int i = 0; i < n_t; i++)
            for (int g = 0; g < 2; g++) {
                if (!(g ? d->want_grad[i] : d->want_data[i])) continue;
                float *dst = g ? t->batch_grad[i] : t->batch_data[i];
                for (int row = 0; row < ws->t[i].rows; row++, from += cols) {
                    float *out = dst + (size_t)row * gbp + lo;
                    if (g)
                        for (int b = 0; b < cols; b++) out[b] = share * from[b];
                    else
                        memcpy(out, from, sizeof(float) * (size_t)cols);
                    /* Padding columns stay zero, as a single process's do. */
                    if (r == size - 1) memset(out + cols, 0, sizeof(float) * (size_t)(gbp - lo - cols));
                }
            }
    }
    return RW_OK;
}

/* Before dynamic sparse training's hook: the global batch, when it will
 * look at it. */
static rw_status before_dst(void *state, rw_trainer *t, const trainer_step_info *s)
{
    dist_state *d = state;
    if (!dst_wants_batch(t, s)) return RW_OK;
    double t0 = now_seconds();
    rw_status st = gather_batch(d, t, s->batch_n);
    d->stats.gather_seconds += now_seconds() - t0;
    return st;
}

/* After it: every process holds the same topology, checked once per update. */
static rw_status after_dst(void *state, rw_trainer *t, const trainer_step_info *s)
{
    (void)s;
    dist_state *d = state;
    rw_dst_totals totals;
    if (!rw_trainer_dst(t, NULL, &totals) || totals.updates == d->updates_checked) return RW_OK;
    d->updates_checked = totals.updates;
    char when[64];
    snprintf(when, sizeof when, "after topology update %lld", (long long)totals.updates);
    double t0 = now_seconds();
    rw_status st = dist_check_model(t->model, when);
    d->stats.gather_seconds += now_seconds() - t0;
    if (st == RW_OK) d->stats.checks++;
    return st;
}

static void no_free(void *state) { (void)state; }

/* Three hooks over one state: the all-reduce (which owns the state), the
 * gather, placed before DST's hook, and the check after it. Without DST
 * only the first, so that an epoch stays one parallel region. */
static const trainer_hook_ops reduce_hook = {"dist_reduce", after_backward, NULL, dist_free};
static const trainer_hook_ops gather_hook = {"dist_gather", NULL, before_dst, no_free};
static const trainer_hook_ops check_hook = {"dist_check", NULL, after_dst, no_free};

rw_status dist_attach(rw_trainer *t, int unit)
{
    if (g_size < 2 || trainer_find_hook(t, &reduce_hook)) return RW_OK;
    rw_status st = trainer_set_shard(t, g_rank, g_size, unit);
    if (st != RW_OK) return st;
    dist_state *d = calloc(1, sizeof *d);
    if (!d || !(d->counts = calloc((size_t)g_size, sizeof(int))) ||
        !(d->displs = calloc((size_t)g_size, sizeof(int)))) {
        dist_free(d);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for data-parallel training");
    }
    d->rank = g_rank;
    d->size = g_size;
    d->stats.processes = g_size;
    rw_dst_totals totals;
    if (rw_trainer_dst(t, NULL, &totals)) d->updates_checked = totals.updates;
    if ((st = trainer_add_hook(t, &reduce_hook, d)) != RW_OK) {
        dist_free(d);
        return st;
    }
    if (!trainer_dst(t)) return RW_OK;
    st = trainer_add_hook_first(t, &gather_hook, d);
    if (st == RW_OK) st = trainer_add_hook(t, &check_hook, d);
    return st;
}

rw_status dist_check_model(const rw_model *m, const char *when)
{
    if (g_size < 2) return RW_OK;
    int n = m->n_params;
    /* Per parameter: pattern hash, then pattern and values, as min and max. */
    uint64_t *lo = malloc(sizeof(uint64_t) * 2 * ((size_t)n + 1));
    uint64_t *hi = malloc(sizeof(uint64_t) * 2 * ((size_t)n + 1));
    if (!lo || !hi) {
        free(lo);
        free(hi);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory checking the topology");
    }
    for (int p = 0; p < n; p++) {
        lo[2 * p] = hi[2 * p] = param_hash(&m->params[p], 0);
        lo[2 * p + 1] = hi[2 * p + 1] = param_hash(&m->params[p], 1);
    }
    int rc = MPI_Allreduce(MPI_IN_PLACE, lo, 2 * n, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allreduce(MPI_IN_PLACE, hi, 2 * n, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    rw_status st = rc == MPI_SUCCESS ? RW_OK : mpi_fail(rc, "comparing the topology");
    for (int p = 0; p < n && st == RW_OK; p++) {
        if (lo[2 * p] != hi[2 * p])
            st = rw_fail(RW_ERR_INVALID_ARGUMENT,
                         "the %d processes hold different topologies of layer %s (%s) %s: "
                         "data-parallel training must keep them identical",
                         g_size, m->params[p].layer_name, m->params[p].name, when);
        else if (lo[2 * p + 1] != hi[2 * p + 1])
            st = rw_fail(RW_ERR_INVALID_ARGUMENT,
                         "the %d processes hold different weights of layer %s (%s) %s: "
                         "data-parallel training must keep them identical",
                         g_size, m->params[p].layer_name, m->params[p].name, when);
    }
    free(lo);
    free(hi);
    return st;
}

int dist_stats(const rw_trainer *t, rw_dist_stats *out)
{
    memset(out, 0, sizeof *out);
    const dist_state *d = t ? trainer_find_hook(t, &reduce_hook) : NULL;
    if (!d) return 0;
    *out = d->stats;
    return 1;
}

#endif

int rw_run_dist_stats(const rw_run *run, rw_dist_stats *out)
{
    return dist_stats(rw_run_trainer((rw_run *)run), out);
}
