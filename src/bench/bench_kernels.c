/* rw_bench_kernels: each sparse kernel beside OpenBLAS SGEMM on the
 * equivalent dense product, measured in interleaved rounds so that a busy
 * machine slows both alike (and the per-round ratio stays honest).
 *
 *   spmm    Y[rows][b]  = W X          SGEMM NN  rows x b x cols
 *   spmm_t  dX[cols][b] = W^T dY       SGEMM TN  cols x b x rows
 *   sddmm   dW = dY X^T on the pattern SGEMM NT  rows x cols x b
 *   spmv    y = W x, one sample        SGEMM NN  rows x 1 x cols
 *   rigl_topk  the k = 0.3 nnz largest |dY X^T| outside the pattern, block
 *              by block with a bounded top-k (RigL's growth, sparsity/grow.c)
 *                                      SGEMM NT  rows x cols x b
 * For rigl_topk the useful work is the whole dense gradient it stands for
 * (2 rows cols b), so its fraction of SGEMM is SGEMM's time over its time.
 *   nm_*    spmm, spmm_t, sddmm with N:M storage (core/nm.h) and kernels,
 *           beside CSR at the same density n/m in the same cell
 * Each kernel can be timed under several tables of the kernel list
 * (kernels/isa.h) in the same rounds. rigl_topk runs the chosen table's
 * scan inside sparsity/grow.c, so it is timed under that one only.
 */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/isa.h"
#include "kernels/team.h"
#include "sparsity/distribution.h"
#include "sparsity/grow.h"

rw_bench_kernels_config rw_bench_kernels_config_default(void)
{
    rw_bench_kernels_config c;
    memset(&c, 0, sizeof c);
    c.rows = 1000;
    c.cols = 1000;
    c.repeats = 7;
    c.min_seconds = 0.02;
    c.seed = 1;
    return c;
}

enum {
    OP_SPMM,
    OP_SPMM_T,
    OP_SDDMM,
    OP_SPMV,
    OP_TOPK,
    OP_NM_SPMM,
    OP_NM_SPMM_T,
    OP_NM_SDDMM,
    OP_NM_SPMV,
    N_OPS
};
static const char *const op_names[N_OPS] = {"spmm",    "spmm_t",    "sddmm",    "spmv",   "rigl_topk",
                                            "nm_spmm", "nm_spmm_t", "nm_sddmm", "nm_spmv"};

static int is_nm_op(int op) { return op >= OP_NM_SPMM; }

/* Kernel families timed side by side at most. */
#define MAX_ISAS 8

/* RigL's default drop fraction: an update regrows this share of a layer. */
#define TOPK_SHARE 0.3

/* Buffers of one (density, batch) cell. Dense operands are packed
 * (leading dimension = batch), as a dense user would hold them. */
typedef struct {
    csr_matrix w;
    nm_matrix nm;                 /* an N:M cell only (nm.m > 0) */
    float *nm_dw;                 /* [slots] its weight gradient */
    int rows, cols, batch, bp;
    float *x, *y, *dy, *dx, *dw;  /* sparse path, [..][bp] */
    float *xv, *yv;               /* one sample */
    float *a, *bx, *c;            /* dense path: A [rows][cols], B, C */
    int64_t *pos;                 /* rigl_topk: the positions chosen */
    int k;                        /* rigl_topk: how many */
    grow_scratch scratch;         /* rigl_topk: kept across calls, as in training */
    team_sync sync;
    const kernel_isa *isa;        /* the tables timed now */
} cell;

static void cell_free(cell *c)
{
    csr_free(&c->w);
    nm_free(&c->nm);
    rw_free(c->nm_dw);
    rw_free(c->x), rw_free(c->y), rw_free(c->dy), rw_free(c->dx), rw_free(c->dw);
    rw_free(c->xv), rw_free(c->yv);
    rw_free(c->a), rw_free(c->bx), rw_free(c->c);
    free(c->pos);
    grow_scratch_free(&c->scratch);
    memset(c, 0, sizeof *c);
}

static void fill(float *p, size_t n, rng_state *r)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)(2.0 * rng_uniform(r) - 1.0);
}

static rw_status cell_make(cell *c, int rows, int cols, double density, int batch, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    rng_state r;
    rng_seed(&r, seed);
    rw_status st = sparsity_random_pattern(&c->w, rows, cols, density, &r);
    if (st != RW_OK) return st;
    fill(c->w.values, (size_t)c->w.nnz, &r);
    c->rows = rows, c->cols = cols, c->batch = batch, c->bp = rw_pad_batch(batch);
    size_t bp = (size_t)c->bp, big = (size_t)(rows > cols ? rows : cols);
    c->x = rw_alloc(sizeof(float) * cols * bp);
    c->y = rw_alloc(sizeof(float) * rows * bp);
    c->dy = rw_alloc(sizeof(float) * rows * bp);
    c->dx = rw_alloc(sizeof(float) * cols * bp);
    c->dw = rw_alloc(sizeof(float) * ((size_t)c->w.nnz + 1));
    c->xv = rw_alloc(sizeof(float) * cols);
    c->yv = rw_alloc(sizeof(float) * rows);
    c->a = rw_alloc(sizeof(float) * rows * (size_t)cols);
    c->bx = rw_alloc(sizeof(float) * big * (size_t)batch);
    /* C holds the largest result: rows x cols (the SDDMM's dense twin). */
    c->c = rw_alloc(sizeof(float) * (big * (size_t)batch > (size_t)rows * cols
                                         ? big * (size_t)batch
                                         : (size_t)rows * cols));
    int64_t free_count = (int64_t)rows * cols - c->w.nnz;
    c->k = (int)(TOPK_SHARE * (double)c->w.nnz + 0.5);
    if (c->k > free_count) c->k = (int)free_count;
    c->pos = malloc(sizeof(int64_t) * (size_t)(c->k > 0 ? c->k : 1));
    if (!c->x || !c->y || !c->dy || !c->dx || !c->dw || !c->xv || !c->yv || !c->a || !c->bx ||
        !c->c || !c->pos) {
        cell_free(c);
        return rw_fail(RW_ERR_NO_MEMORY, "bench: out of memory for a %d x %d layer at batch %d",
                       rows, cols, batch);
    }
    /* Valid columns random, padding zero, as the library keeps them. */
    for (int i = 0; i < cols; i++) fill(c->x + i * bp, (size_t)batch, &r);
    for (int o = 0; o < rows; o++) fill(c->dy + o * bp, (size_t)batch, &r);
    fill(c->xv, (size_t)cols, &r);
    fill(c->a, (size_t)rows * cols, &r);
    fill(c->bx, big * (size_t)batch, &r);
    return RW_OK;
}

/* An N:M cell: a CSR cell at density n/m, plus the n largest of every m of
 * the random dense matrix as N:M weights. */
static rw_status cell_make_nm(cell *c, int rows, int cols, int n, int m, int batch, uint64_t seed)
{
    rw_status st = cell_make(c, rows, cols, (double)n / m, batch, seed);
    if (st != RW_OK) return st;
    st = nm_alloc(&c->nm, rows, cols, n, m);
    if (st == RW_OK) {
        nm_from_dense_magnitude(&c->nm, c->a);
        st = nm_prepare_backward(&c->nm);
    }
    if (st == RW_OK) {
        c->nm_dw = rw_alloc(sizeof(float) * (size_t)rows * nm_slots_per_row(&c->nm));
        if (!c->nm_dw) st = rw_fail(RW_ERR_NO_MEMORY, "bench: out of memory for N:M weights");
    }
    if (st != RW_OK) cell_free(c);
    return st;
}

/* Weight storage bytes, as rw_model_layer_info counts them (without bias). */
static int64_t cell_bytes(const cell *c, int op)
{
    if (is_nm_op(op)) return nm_weight_bytes(&c->nm);
    return 4 * ((int64_t)c->rows + 1) + 8 * c->w.nnz;
}

/* The same in memory: CSR's transposed view (column starts, a row and a
 * value position per entry) and 16-bit index copies, N:M's view when its
 * pattern gets one (nm_prepare_backward). */
static int64_t cell_memory_bytes(const cell *c, int op)
{
    if (is_nm_op(op)) return nm_memory_bytes(c->rows, c->cols, c->nm.n, c->nm.m);
    const csr_matrix *w = &c->w;
    int64_t narrow = (w->indices16 ? 2 : 0) + (w->t_rows16 ? 2 : 0);
    return cell_bytes(c, op) + 4 * ((int64_t)c->cols + 1) + (8 + narrow) * w->nnz;
}

/* One call of an N:M kernel as a phase: equal row (or group) ranges. */
static int run_nm_phase(cell *c, int op)
{
    const nm_kernel_table *k = c->isa->nm;
    int parts = omp_get_num_threads();
    int count = op == OP_NM_SPMM_T ? c->nm.groups : c->rows;
    TEAM_FOR(t, parts) {
        int r0 = (int)((int64_t)count * t / parts), r1 = (int)((int64_t)count * (t + 1) / parts);
        if (op == OP_NM_SPMM)
            k->forward(&c->nm, NULL, c->x, c->y, c->bp, r0, r1);
        else if (op == OP_NM_SPMV)
            k->forward_vector(&c->nm, NULL, c->xv, c->yv, r0, r1);
        else if (op == OP_NM_SPMM_T)
            k->backward_data(&c->nm, c->dy, c->dx, c->bp, r0, r1);
        else
            k->weight_grad(&c->nm, c->dy, c->x, c->nm_dw, c->bp, r0, r1);
        team_chunk_done();
    }
    return parts;
}

/* One call of a sparse kernel as a phase of the enclosing team. */
static int run_sparse_phase(cell *c, int op)
{
    const kernel_table *k = c->isa->csr;
    const kernel_epilogue none = {KACT_NONE, 0.0f};
    if (is_nm_op(op)) return run_nm_phase(c, op);
    switch (op) {
    case OP_SPMM:
        return team_forward(k, &c->w, NULL, c->x, c->y, c->bp, none);
    case OP_SPMM_T:
        return team_backward(k, &c->w, c->dy, NULL, NULL, NULL, c->dx, NULL, c->bp, none);
    case OP_SDDMM:
        return team_backward(k, &c->w, c->dy, c->x, c->dw, NULL, NULL, NULL, c->bp, none);
    default:
        return team_spmv(k, &c->w, NULL, c->xv, c->yv, none);
    }
}

/* `calls` calls of a sparse kernel in one parallel region, as training runs
 * them (an epoch is one region): the time of a call without the fork and
 * join a region costs. Seconds per call. */
static double run_sparse(cell *c, int op, int calls)
{
    team_sync_init(&c->sync);
    double start = bench_now();
#pragma omp parallel if (omp_get_max_threads() > 1)
    {
        team_begin(&c->sync);
        for (int i = 0; i < calls; i++) team_phase(run_sparse_phase(c, op));
        team_end();
    }
    return (bench_now() - start) / calls;
}

static void run_dense(cell *c, int op)
{
    int m = c->rows, n = c->cols, b = c->batch;
    switch (op) {
    case OP_SPMM:
    case OP_SPMV:
    case OP_NM_SPMM:
    case OP_NM_SPMV:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, b, n, 1.0f, c->a, n, c->bx, b,
                    0.0f, c->c, b);
        break;
    case OP_SPMM_T:
    case OP_NM_SPMM_T:
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, b, m, 1.0f, c->a, n, c->bx, b,
                    0.0f, c->c, b);
        break;
    case OP_SDDMM:
    case OP_TOPK:
    case OP_NM_SDDMM:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, b, 1.0f, c->bx, b, c->bx, b,
                    0.0f, c->c, n);
        break;
    }
}

/* RigL's growth on this cell: the k best of dY X^T outside the pattern. */
static void run_topk(cell *c)
{
    if (c->k > 0)
        grow_top_outer(&c->w, c->dy, c->x, c->bp, c->k, c->pos, NULL, &c->scratch, NULL);
}

/* The forward of a single sample is an SpMV; batch 1 also shows the padded
 * SpMM that training at batch 1 would run. */
static int op_applies(const cell *c, int op, int batch)
{
    if (is_nm_op(op)) return c->nm.m > 0 && (op != OP_NM_SPMV || batch == 1);
    /* N:M cells compare the three kernels only; a full layer has no
     * position left to grow into; the growth runs the chosen table. */
    if (op == OP_TOPK) return c->nm.m == 0 && c->k > 0 && c->isa == kernel_isa_active();
    return op != OP_SPMV || batch == 1;
}

/* Seconds per call, over calls repeated for at least min_seconds. SGEMM
 * is called as a dense user calls it (OpenBLAS opens its parallel region
 * in each call); the sparse kernels run as phases of one region. */
static double time_calls(cell *c, int op, int dense, double min_seconds)
{
    if (!dense && op == OP_TOPK) {
        /* grow_top_outer opens its own region, as the topology update
         * between training steps does. */
        int calls = 0;
        double start = bench_now(), t;
        do {
            run_topk(c);
            calls++;
            t = bench_now() - start;
        } while (t < min_seconds);
        return t / calls;
    }
    if (!dense) {
        double one = run_sparse(c, op, 1);
        int calls = one > 0 ? (int)(min_seconds / one) : 1;
        if (calls < 1) calls = 1;
        if (calls > 1000000) calls = 1000000;
        return run_sparse(c, op, calls);
    }
    int calls = 0;
    double start = bench_now(), t;
    do {
        run_dense(c, op);
        calls++;
        t = bench_now() - start;
    } while (t < min_seconds);
    return t / calls;
}

static rw_status check_config(const rw_bench_kernels_config *k)
{
    if (k->rows < 1 || k->cols < 1 || k->rows > 1 << 16 || k->cols > 1 << 16)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "bench: a %d x %d layer is outside 1 .. 65536 on each side", k->rows,
                       k->cols);
    if (k->n_batches < 1 || !k->batches || (k->n_densities > 0 && !k->densities))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: no densities or no batch sizes given");
    for (int i = 0; i < k->n_densities; i++)
        if (!(k->densities[i] > 0.0 && k->densities[i] <= 1.0))
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: density %g is outside (0, 1]",
                           k->densities[i]);
    for (int i = 0; i < k->n_batches; i++)
        if (k->batches[i] < 1 || k->batches[i] > 65536)
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: batch %d is outside [1, 65536]",
                           k->batches[i]);
    for (int i = 0; i < k->n_nm; i++) {
        if (k->nm_m[i] < 1 || k->nm_m[i] > NM_MAX_M || k->nm_n[i] < 1 || k->nm_n[i] > k->nm_m[i])
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: N:M pattern %d:%d needs 1 <= N <= M <= %d",
                           k->nm_n[i], k->nm_m[i], NM_MAX_M);
        if (k->cols % k->nm_m[i] != 0)
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "bench: N:M pattern %d:%d needs the %d columns to be a multiple of %d",
                           k->nm_n[i], k->nm_m[i], k->cols, k->nm_m[i]);
    }
    if (k->n_densities < 0 || (k->n_densities == 0 && k->n_nm == 0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: no densities and no N:M patterns given");
    if (k->repeats < 1 || k->repeats > 1000 || !(k->min_seconds >= 0.0))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: repeats %d or time %g out of range",
                       k->repeats, k->min_seconds);
    if (k->n_isas < 0 || k->n_isas > MAX_ISAS || (k->n_isas > 0 && !k->isas))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: %d kernel families, expected 0 to %d",
                       k->n_isas, MAX_ISAS);
    for (int i = 0; i < k->n_isas; i++) {
        const kernel_isa *isa = kernel_isa_named(k->isas[i]);
        if (!isa) {
            char names[64] = "";
            for (int j = 0; j < kernel_isa_count(); j++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", j ? ", " : "",
                         kernel_isa_at(j)->name);
            return rw_fail(RW_ERR_INVALID_ARGUMENT, "bench: no kernel family '%s' (there are %s)",
                           k->isas[i] ? k->isas[i] : "(null)", names);
        }
        if (!isa->cpu_runs())
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "bench: this CPU cannot run the %s kernels: they need %s, it has %s",
                           isa->name, isa->needs, cpu_features());
    }
    return RW_OK;
}

rw_status rw_bench_kernels(const rw_bench_kernels_config *k, rw_bench_kernel_fn fn, void *user)
{
    rw_status st = check_config(k);
    if (st != RW_OK) return st;
    const kernel_isa *isas[MAX_ISAS];
    int n_isa = k->n_isas > 0 ? k->n_isas : 1;
    for (int i = 0; i < n_isa; i++)
        isas[i] = k->n_isas > 0 ? kernel_isa_named(k->isas[i]) : kernel_isa_active();
    int saved = rw_get_num_threads();
    if (k->threads > 0) rw_set_num_threads(k->threads);
    int R = k->repeats;
    /* Seconds per call: sparse[((round * N_OPS + op) * n_isa + isa], dense[round * N_OPS + op]. */
    double *ts = malloc(sizeof(double) * (size_t)R * N_OPS * (size_t)n_isa);
    double *td = malloc(sizeof(double) * (size_t)R * N_OPS);
    double *sparse = malloc(sizeof(double) * (size_t)R), *dense = malloc(sizeof(double) * (size_t)R);
    double *ratio = malloc(sizeof(double) * (size_t)R), *speedup = malloc(sizeof(double) * (size_t)R);
    if (!ts || !td || !sparse || !dense || !ratio || !speedup) {
        free(ts), free(td), free(sparse), free(dense), free(ratio), free(speedup);
        rw_set_num_threads(saved);
        return rw_fail(RW_ERR_NO_MEMORY, "bench: out of memory");
    }
#define T_SPARSE(r, op, i) ts[((size_t)(r) * N_OPS + (op)) * (size_t)n_isa + (i)]
#define T_DENSE(r, op) td[(size_t)(r) * N_OPS + (op)]
    int stop = 0;
    /* Cells: the densities, then the N:M patterns (each with CSR beside). */
    for (int di = 0; di < k->n_densities + k->n_nm && !stop && st == RW_OK; di++)
        for (int bi = 0; bi < k->n_batches && !stop; bi++) {
            int batch = k->batches[bi], pi = di - k->n_densities;
            cell c;
            if (pi < 0)
                st = cell_make(&c, k->rows, k->cols, k->densities[di], batch,
                               k->seed + (uint64_t)di);
            else
                st = cell_make_nm(&c, k->rows, k->cols, k->nm_n[pi], k->nm_m[pi], batch,
                                  k->seed + (uint64_t)di);
            if (st != RW_OK) break;
            double density = pi < 0 ? k->densities[di] : (double)k->nm_n[pi] / k->nm_m[pi];
            char pattern[16];
            if (pi >= 0) snprintf(pattern, sizeof pattern, "%d:%d", k->nm_n[pi], k->nm_m[pi]);
            for (int op = 0; op < N_OPS; op++)
                for (int i = 0; i < n_isa; i++) {
                    c.isa = isas[i];
                    if (!op_applies(&c, op, batch)) continue;
                    /* warm-up */
                    if (op == OP_TOPK)
                        run_topk(&c);
                    else
                        run_sparse(&c, op, 1);
                    if (i == 0) run_dense(&c, op);
                }
            for (int r = 0; r < R; r++)
                for (int op = 0; op < N_OPS; op++) {
                    int dense_done = 0;
                    for (int i = 0; i < n_isa; i++) {
                        c.isa = isas[i];
                        if (!op_applies(&c, op, batch)) continue;
                        if (!dense_done) T_DENSE(r, op) = time_calls(&c, op, 1, k->min_seconds / 2);
                        dense_done = 1;
                        T_SPARSE(r, op, i) = time_calls(&c, op, 0, k->min_seconds / 2);
                    }
                }
            double full = 2.0 * (double)k->rows * (double)k->cols * batch;
            for (int op = 0; op < N_OPS && !stop; op++)
                for (int i = 0; i < n_isa && !stop; i++) {
                    c.isa = isas[i];
                    if (!op_applies(&c, op, batch)) continue;
                    int64_t stored = is_nm_op(op) ? (int64_t)c.rows * nm_slots_per_row(&c.nm) : c.w.nnz;
                    double work = op == OP_TOPK ? full : 2.0 * (double)stored * batch;
                    for (int r = 0; r < R; r++) {
                        sparse[r] = T_SPARSE(r, op, i);
                        dense[r] = T_DENSE(r, op);
                        ratio[r] = (work / sparse[r]) / (full / dense[r]);
                        speedup[r] = op == OP_TOPK ? 1.0 : T_SPARSE(r, op, 0) / sparse[r];
                    }
                    rw_bench_kernel_row row;
                    memset(&row, 0, sizeof row);
                    row.op = op_names[op];
                    row.rows = k->rows, row.cols = k->cols, row.batch = batch;
                    row.threads = rw_get_num_threads();
                    row.density = density;
                    row.nonzeros = stored;
                    row.format = is_nm_op(op) ? pattern : "csr";
                    row.bytes = cell_bytes(&c, op);
                    row.memory_bytes = cell_memory_bytes(&c, op);
                    row.seconds = bench_median(sparse, R);
                    row.best_seconds = bench_min(sparse, R);
                    row.gflops = work / row.seconds * 1e-9;
                    row.sgemm_seconds = bench_median(dense, R);
                    row.sgemm_best_seconds = bench_min(dense, R);
                    row.sgemm_gflops = full / row.sgemm_seconds * 1e-9;
                    row.fraction = bench_median(ratio, R);
                    row.best_fraction = (work / row.best_seconds) / (full / row.sgemm_best_seconds);
                    row.isa = isas[i]->name;
                    row.isa_speedup = bench_median(speedup, R);
                    if (fn && fn(&row, user)) stop = 1;
                }
            cell_free(&c);
        }
#undef T_SPARSE
#undef T_DENSE
    free(ts), free(td), free(sparse), free(dense), free(ratio), free(speedup);
    rw_set_num_threads(saved);
    return st;
}
