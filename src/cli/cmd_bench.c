/* rewire bench kernels|train|infer: flags in, rows of rw_bench_* out, as a
 * table or as JSON lines (one object per row). The measuring is done by the
 * library (src/bench/). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rewire.h"

#define MAX_LIST 64

static void print_json(json_t *o)
{
    json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
    printf("\n");
    fflush(stdout);
    json_decref(o);
}

static int bad_list(const char *cmd, const char *flag, const char *value, const char *what)
{
    fprintf(stderr, "rewire bench %s: --%s expects %s, got '%s'\n(see 'rewire bench %s --help')\n",
            cmd, flag, what, value, cmd);
    return 2;
}

/* Says on stderr when REWIRE_KERNELS asked for kernels that did not run. */
static void warn_kernel_choice(void)
{
    rw_kernel_info k;
    rw_kernel_get_info(&k);
    if (k.requested && strcmp(k.requested, k.chosen))
        fprintf(stderr, "rewire bench: warning: REWIRE_KERNELS=%s not run (this CPU runs %s); "
                        "running the %s kernels\n", k.requested, k.runnable, k.chosen);
}

/* ---- kernels ------------------------------------------------------------ */

typedef struct {
    int json;
    int header_done;
    int several;           /* more than one kernel family: an isa column */
    const char *first_isa; /* the family the others are compared with */
} kernel_out;

static int kernel_row(const rw_bench_kernel_row *r, void *user)
{
    kernel_out *o = user;
    if (o->json) {
        print_json(json_pack("{s:s, s:s, s:s, s:f, s:i, s:i, s:f, s:i, s:i, s:I, s:f, s:f, s:f, s:f, "
                             "s:f, s:f, s:f, s:f, s:s, s:I, s:I}",
                             "bench", "kernel", "op", r->op, "isa", r->isa, "isa_speedup",
                             r->isa_speedup, "rows", r->rows,
                             "cols", r->cols, "density", r->density, "batch", r->batch, "threads",
                             r->threads, "nonzeros", (json_int_t)r->nonzeros, "seconds", r->seconds,
                             "best_seconds", r->best_seconds, "gflops", r->gflops, "sgemm_seconds",
                             r->sgemm_seconds, "sgemm_best_seconds", r->sgemm_best_seconds,
                             "sgemm_gflops", r->sgemm_gflops, "fraction", r->fraction,
                             "best_fraction", r->best_fraction, "format", r->format, "bytes",
                             (json_int_t)r->bytes, "memory_bytes", (json_int_t)r->memory_bytes));
        return 0;
    }
    if (!o->header_done) {
        char vs[32];
        snprintf(vs, sizeof vs, "vs %s", o->first_isa);
        printf("%-9s %8s %6s %9s %11s %9s %11s %8s %8s %6s %10s", "op", "density", "batch",
               "nonzeros", "time", "GFLOP/s", "SGEMM GF/s", "of SGEMM", "(best)", "format",
               "bytes");
        if (o->several) printf(" %-7s %11s", "isa", vs);
        printf("\n");
        o->header_done = 1;
    }
    double t = r->seconds;
    const char *unit = t < 1e-3 ? "us" : "ms";
    double shown = t < 1e-3 ? t * 1e6 : t * 1e3;
    printf("%-9s %8.4g %6d %9lld %8.1f %-2s %9.2f %11.2f %8.3f %8.3f %6s %10lld", r->op,
           r->density, r->batch, (long long)r->nonzeros, shown, unit, r->gflops, r->sgemm_gflops,
           r->fraction, r->best_fraction, r->format, (long long)r->bytes);
    if (o->several) printf(" %-7s %10.3fx", r->isa, r->isa_speedup);
    printf("\n");
    fflush(stdout);
    return 0;
}

#define NM_LIST_EXPECTED "N:M patterns with 1 <= N <= M <= 64, e.g. 2:4,1:4, or none"

/* "2:4,1:4" into n[], m[]: the count, 0 for "none" or "", -1 if malformed. */
static int parse_nm_list(const char *list, int *n, int *m)
{
    int count = 0;
    if (!strcmp(list, "none")) return 0;
    for (const char *s = list; *s;) {
        int used = 0;
        if (count == MAX_LIST || sscanf(s, "%d:%d%n", &n[count], &m[count], &used) != 2 ||
            n[count] < 1 || n[count] > m[count] || m[count] > 64 || (s[used] && s[used] != ','))
            return -1;
        count++;
        s += used + (s[used] == ',');
    }
    return count;
}

static int bench_kernels(int argc, char **argv)
{
    const char *shape = "1000x1000", *densities = "1,0.5,0.2,0.1,0.05,0.02,0.01,0.001",
               *batches = "1,32,128,256", *nm = "2:4,1:4,1:8", *isa = NULL;
    int threads = 0, repeats = 7, json = 0, seed = 1;
    double seconds = 0.02;
    arg_spec specs[] = {
        {"shape", ARG_STRING, &shape, "OUTxIN", "layer shape (default 1000x1000)", NULL, 0, 0},
        {"densities", ARG_STRING, &densities, "D,D,...",
         "stored fractions of the weights (default 1,0.5,0.2,0.1,0.05,0.02,0.01,0.001)", NULL, 0, 0},
        {"batches", ARG_STRING, &batches, "N,N,...", "batch sizes (default 1,32,128,256)", NULL, 0,
         0},
        {"nm", ARG_STRING, &nm, "N:M,...",
         "N:M patterns, each timed with the N:M kernels beside CSR at density N/M; M must divide "
         "the columns, 'none' for no N:M rows (default 2:4,1:4,1:8)",
         NULL, 0, 0},
        {"threads", ARG_INT, &threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"isa", ARG_STRING, &isa, "NAME,...",
         "kernel families to time side by side in the same rounds, e.g. avx2,avx512, or 'all' "
         "that this CPU runs; rows then say how much faster than the first each is "
         "(default: the chosen family)",
         NULL, 0, 0},
        {"repeats", ARG_INT, &repeats, "N", "interleaved rounds, medians reported (default 7)",
         NULL, 1, 1000},
        {"time", ARG_DOUBLE, &seconds, "S",
         "seconds per measurement of one kernel and its SGEMM (default 0.02)", NULL, 0, 60},
        {"seed", ARG_INT, &seed, "N", "random pattern and data (default 1)", NULL, 0, 2147483647.0},
        {"json", ARG_FLAG, &json, NULL, "one JSON object per row instead of a table", NULL, 0, 0},
    };
    arg_parser p = {
        "bench kernels", "rewire bench kernels [flags]",
        "Times each sparse kernel (forward SpMM, backward SpMM^T, weight-gradient SDDMM, and\n"
        "the single-sample SpMV at batch 1) on a random sparse layer beside OpenBLAS SGEMM on\n"
        "the same dense product, in interleaved rounds. GFLOP/s count useful work,\n"
        "2 * nonzeros * batch; 'of SGEMM' is the median over rounds of the ratio of the\n"
        "kernel's GFLOP/s to SGEMM's measured next to it ('best': best over best).\n"
        "rigl_topk is RigL's growth: the 0.3 * nonzeros largest entries of the dense gradient\n"
        "dY X^T outside the pattern, found block by block with a bounded top-k; its GFLOP/s\n"
        "count the whole dense gradient it replaces (2 * out * in * batch), so 'of SGEMM' is\n"
        "SGEMM's time for that gradient over the top-k's time.\n"
        "Each --nm pattern adds the N:M kernels (nm_spmm, nm_spmm_t, nm_sddmm, and nm_spmv at\n"
        "batch 1) beside CSR at\n"
        "the same density N/M; 'bytes' is the weight storage of the row's format (--json rows\n"
        "also give memory_bytes: that storage with the transposed views the kernels read).",
        specs, sizeof specs / sizeof specs[0], NULL, 0, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    rw_bench_kernels_config c = rw_bench_kernels_config_default();
    char extra;
    if (sscanf(shape, "%dx%d%c", &c.rows, &c.cols, &extra) != 2 || c.rows < 1 || c.cols < 1)
        return bad_list("kernels", "shape", shape, "OUTxIN, e.g. 1000x1000");
    double d[MAX_LIST];
    int b[MAX_LIST];
    c.n_densities = args_parse_double_list(densities, d, MAX_LIST, 1e-9, 1.0);
    if (c.n_densities < 1) return bad_list("kernels", "densities", densities, "numbers in (0, 1]");
    c.n_batches = args_parse_int_list(batches, b, MAX_LIST);
    if (c.n_batches < 1) return bad_list("kernels", "batches", batches, "positive integers");
    int nm_n[MAX_LIST], nm_m[MAX_LIST];
    c.n_nm = parse_nm_list(nm, nm_n, nm_m);
    if (c.n_nm < 0) return bad_list("kernels", "nm", nm, NM_LIST_EXPECTED);
    for (int i = 0; i < c.n_nm; i++)
        if (c.cols % nm_m[i] != 0) {
            fprintf(stderr, "rewire bench kernels: --nm %d:%d needs the %d columns of --shape to be "
                            "a multiple of %d\n", nm_n[i], nm_m[i], c.cols, nm_m[i]);
            return 2;
        }
    c.nm_n = nm_n;
    c.nm_m = nm_m;
    c.densities = d;
    c.batches = b;
    c.threads = threads;
    c.repeats = repeats;
    c.min_seconds = seconds;
    c.seed = (uint64_t)seed;
    /* --isa: a list of names, or every family this CPU runs. */
    char isa_text[128], *isa_names[16];
    rw_kernel_info info;
    rw_kernel_get_info(&info);
    if (isa) {
        snprintf(isa_text, sizeof isa_text, "%s", strcmp(isa, "all") ? isa : info.runnable);
        for (char *save = NULL, *t = strtok_r(isa_text, strcmp(isa, "all") ? "," : " ", &save);
             t && c.n_isas < 16; t = strtok_r(NULL, strcmp(isa, "all") ? "," : " ", &save))
            isa_names[c.n_isas++] = t;
        if (c.n_isas < 1) return bad_list("kernels", "isa", isa, "names like avx2,avx512, or all");
        c.isas = (const char *const *)isa_names;
    }
    warn_kernel_choice();
    /* A family this CPU does not run: no header, the library's error. */
    int runnable = 1;
    for (int i = 0; i < c.n_isas; i++) {
        size_t len = strlen(isa_names[i]);
        const char *at = info.runnable;
        while ((at = strstr(at, isa_names[i])) &&
               !((at == info.runnable || at[-1] == ' ') && (at[len] == ' ' || !at[len])))
            at += len;
        if (!at) runnable = 0;
    }
    if (!json && runnable) {
        char families[128] = "";
        for (int i = 0; i < c.n_isas; i++)
            snprintf(families + strlen(families), sizeof families - strlen(families), "%s%s",
                     i ? ", " : "", isa_names[i]);
        printf("rewire bench kernels: %dx%d layer, uniformly random pattern, %d threads, kernels "
               "%s;\nmedians of %d interleaved rounds of %.3g s (kernel and SGEMM each half)\n",
               c.rows, c.cols, threads > 0 ? threads : rw_get_num_threads(),
               c.n_isas ? families : rw_kernel_isa(), repeats, seconds);
    }
    kernel_out o = {json, 0, c.n_isas > 1, c.n_isas ? isa_names[0] : rw_kernel_isa()};
    if (rw_bench_kernels(&c, kernel_row, &o) != RW_OK) return report_failure("bench kernels");
    return 0;
}

/* ---- train and infer ---------------------------------------------------- */

static const char *init_names[] = {"uniform", "er", "erk", NULL};

typedef struct {
    const char *hidden, *sparsities, *threads, *batches, *nm;
    int inputs, classes, init, batch, steps, repeats, json, seed;
    double seconds, lr;
} net_flags;

static int net_command(int argc, char **argv, int training)
{
    const char *cmd = training ? "train" : "infer";
    net_flags f = {.hidden = "1000,1000,1000", .sparsities = "0,0.95,0.99", .threads = "0",
                   .batches = "1,256", .nm = "none", .inputs = 784, .classes = 10, .init = 2, .batch = 128,
                   .steps = 50, .repeats = 5, .seconds = 0.2, .lr = 0.01, .seed = 1};
    arg_spec common[] = {
        {"hidden", ARG_STRING, &f.hidden, "N,N,...", "hidden layer sizes (default 1000,1000,1000)",
         NULL, 0, 0},
        {"inputs", ARG_INT, &f.inputs, "N", "input features (default 784)", NULL, 1, 1 << 30},
        {"classes", ARG_INT, &f.classes, "N", "classes (default 10)", NULL, 2, 256},
        {"sparsities", ARG_STRING, &f.sparsities, "S,S,...",
         "overall sparsities; 0 is the dense path through OpenBLAS (default 0,0.95,0.99)", NULL, 0,
         0},
        {"init", ARG_CHOICE, &f.init, "uniform|er|erk",
         "how sparsity is shared among layers (default erk)", init_names, 0, 0},
        {"threads", ARG_STRING, &f.threads, "N,N,...",
         "thread counts, each measured in turn (default: all cores)", NULL, 0, 0},
        {"repeats", ARG_INT, &f.repeats, "N", "measurements, median reported (default 5)", NULL, 1,
         1000},
        {"seed", ARG_INT, &f.seed, "N", "topology, weights and data (default 1)", NULL, 0,
         2147483647.0},
        {"json", ARG_FLAG, &f.json, NULL, "one JSON object per row instead of a table", NULL, 0, 0},
    };
    arg_spec train_only[] = {
        {"batch", ARG_INT, &f.batch, "N", "batch size (default 128)", NULL, 1, 65536},
        {"steps", ARG_INT, &f.steps, "N", "optimizer steps per measurement (default 50)", NULL, 1,
         1 << 20},
        {"lr", ARG_DOUBLE, &f.lr, "LR", "SGD learning rate (momentum 0.9; default 0.01)", NULL,
         1e-9, 10},
    };
    arg_spec infer_only[] = {
        {"batches", ARG_STRING, &f.batches, "N,N,...",
         "samples per call; 1 is the single-sample path (default 1,256)", NULL, 0, 0},
        {"time", ARG_DOUBLE, &f.seconds, "S", "seconds per measurement (default 0.2)", NULL, 0, 60},
        {"nm", ARG_STRING, &f.nm, "N:M,...",
         "also each N:M pattern: the dense net converted to N:M in every layer whose input size M "
         "divides (default none)",
         NULL, 0, 0},
    };
    arg_spec mine[16];
    int n_mine = 0, n_common = sizeof common / sizeof common[0];
    for (int i = 0; i < n_common; i++) mine[n_mine++] = common[i];
    if (training)
        for (size_t i = 0; i < sizeof train_only / sizeof train_only[0]; i++) mine[n_mine++] = train_only[i];
    else
        for (size_t i = 0; i < sizeof infer_only / sizeof infer_only[0]; i++) mine[n_mine++] = infer_only[i];
    arg_parser p = {
        training ? "bench train" : "bench infer",
        training ? "rewire bench train [flags]" : "rewire bench infer [flags]",
        training ? "End-to-end training speed of an MLP (SGD, momentum 0.9, constant learning\n"
                   "rate) on synthetic data (uniform features, random labels), at each sparsity\n"
                   "and thread count: samples per second over --steps steps after a warm-up\n"
                   "epoch, median of --repeats. Sparsity 0 is rewire's dense path (OpenBLAS)."
                 : "Inference speed of an MLP through rw_predictor at each sparsity, batch size\n"
                   "and thread count: latency per call (median of --repeats measurements of\n"
                   "--time seconds) and samples per second. Batch 1 is the single-sample\n"
                   "(SpMV) path; sparsity 0 the dense path (OpenBLAS).",
        mine, n_mine, NULL, 0, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;

    int sizes[MAX_LIST + 2], threads[MAX_LIST], batches[MAX_LIST];
    double sparsities[MAX_LIST];
    int n_hidden = args_parse_int_list(f.hidden, sizes + 1, MAX_LIST);
    if (n_hidden < 0) return bad_list(cmd, "hidden", f.hidden, "positive sizes");
    sizes[0] = f.inputs;
    sizes[n_hidden + 1] = f.classes;
    int n_sp = args_parse_double_list(f.sparsities, sparsities, MAX_LIST, 0.0, 0.999999);
    if (n_sp < 1) return bad_list(cmd, "sparsities", f.sparsities, "numbers in [0, 1)");
    int n_th;
    if (strcmp(f.threads, "0") == 0)
        threads[0] = 0, n_th = 1;
    else if ((n_th = args_parse_int_list(f.threads, threads, MAX_LIST)) < 1)
        return bad_list(cmd, "threads", f.threads, "positive integers");
    int nm_n[MAX_LIST], nm_m[MAX_LIST], n_nm = 0;
    if (!training && (n_nm = parse_nm_list(f.nm, nm_n, nm_m)) < 0)
        return bad_list(cmd, "nm", f.nm, NM_LIST_EXPECTED);
    int n_b = 1;
    batches[0] = f.batch;
    if (!training && (n_b = args_parse_int_list(f.batches, batches, MAX_LIST)) < 1)
        return bad_list(cmd, "batches", f.batches, "positive integers");

    char net[512];
    int len = snprintf(net, sizeof net, "%d", sizes[0]);
    for (int l = 1; l <= n_hidden + 1 && len < (int)sizeof net; l++)
        len += snprintf(net + len, sizeof net - (size_t)len, "-%d", sizes[l]);
    warn_kernel_choice();
    if (!f.json) {
        printf("rewire bench %s: %s MLP, ReLU, %s sparsity, kernels %s, synthetic data%s\n", cmd,
               net, init_names[f.init], rw_kernel_isa(),
               training ? ", SGD momentum 0.9" : "");
        if (training)
            printf("%8s %11s %6s %7s %12s %9s %10s\n", "sparsity", "nonzeros", "batch", "threads",
                   "samples/s", "(best)", "vs dense");
        else
            printf("%8s %11s %6s %7s %12s %12s %10s %s\n", "sparsity", "nonzeros", "batch", "threads",
                   "latency", "samples/s", "vs dense", n_nm ? "N:M" : "");
    }
    for (int ti = 0; ti < n_th; ti++)
        for (int bi = 0; bi < n_b; bi++) {
            double dense = 0;
            for (int si = 0; si < n_sp + n_nm; si++) {
                int is_nm = si >= n_sp;
                rw_bench_net_config c = rw_bench_net_config_default();
                c.sizes = sizes;
                c.n_layers = n_hidden + 1;
                c.sparsity = is_nm ? 0.0 : sparsities[si];
                c.nm_n = is_nm ? nm_n[si - n_sp] : 0;
                c.nm_m = is_nm ? nm_m[si - n_sp] : 0;
                c.distribution = (rw_distribution)f.init;
                c.batch = batches[bi];
                c.threads = threads[ti];
                c.steps = f.steps;
                c.repeats = f.repeats;
                c.min_seconds = f.seconds;
                c.train.lr = (float)f.lr;
                c.seed = (uint64_t)f.seed;
                rw_bench_net_row r;
                if ((training ? rw_bench_training(&c, &r) : rw_bench_inference(&c, &r)) != RW_OK)
                    return report_failure(training ? "bench train" : "bench infer");
                char pattern[16] = "";
                if (is_nm) snprintf(pattern, sizeof pattern, "%d:%d", c.nm_n, c.nm_m);
                const char *path = is_nm ? "nm" : sparsities[si] == 0.0 ? "dense" : "sparse";
                if (!is_nm && sparsities[si] == 0.0) dense = r.samples_per_second;
                if (f.json) {
                    json_t *o = json_pack(
                        "{s:s, s:s, s:s, s:s, s:f, s:I, s:i, s:i, s:s, s:f, s:f, s:f, s:f, s:s, s:s}",
                        "bench", cmd, "impl", "rewire", "path", path, "net", net, "sparsity",
                        r.sparsity, "nonzeros", (json_int_t)r.nonzeros, "batch", r.batch,
                        "threads", r.threads, "optimizer", "sgd", "samples_per_second",
                        r.samples_per_second, "best_samples_per_second",
                        r.best_samples_per_second, "seconds", r.seconds, "best_seconds",
                        r.best_seconds, "data", "synthetic", "isa", rw_kernel_isa());
                    if (training) json_object_set_new(o, "steps", json_integer(r.steps));
                    if (is_nm) json_object_set_new(o, "pattern", json_string(pattern));
                    print_json(o);
                    continue;
                }
                char ratio[32] = "";
                if (dense > 0 && (is_nm || sparsities[si] > 0))
                    snprintf(ratio, sizeof ratio, "%.1fx", r.samples_per_second / dense);
                if (training)
                    printf("%8.4f %11lld %6d %7d %12.0f %9.0f %10s\n", r.sparsity,
                           (long long)r.nonzeros, r.batch, r.threads, r.samples_per_second,
                           r.best_samples_per_second, ratio);
                else
                    printf("%8.4f %11lld %6d %7d %9.1f us %12.0f %10s %s\n", r.sparsity,
                           (long long)r.nonzeros, r.batch, r.threads, r.seconds * 1e6,
                           r.samples_per_second, ratio, is_nm ? pattern : "");
                fflush(stdout);
            }
        }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    static const char usage[] =
        "usage: rewire bench kernels|train|infer|lm|attention [flags]\n\n"
        "Benchmarks (programs, not tests), each beside the dense path in the same run:\n"
        "  kernels  sparse kernels against OpenBLAS SGEMM on the same dense product\n"
        "  train    end-to-end training samples/s of an MLP at given sparsities\n"
        "  infer    inference latency and throughput of that MLP\n"
        "  lm       training and generation tokens/s of a GPT at given sparsities\n"
        "  attention  forward+backward time per token and decoding tokens/s of attention\n"
        "           patterns at growing sequence lengths, beside dense attention\n\n"
        "Run 'rewire bench COMMAND --help' for the flags; --json prints one JSON object per row.\n";
    if (argc < 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(argv[0], "kernels")) return bench_kernels(argc - 1, argv + 1);
    if (!strcmp(argv[0], "train")) return net_command(argc - 1, argv + 1, 1);
    if (!strcmp(argv[0], "infer")) return net_command(argc - 1, argv + 1, 0);
    if (!strcmp(argv[0], "lm")) return bench_lm(argc - 1, argv + 1);
    if (!strcmp(argv[0], "attention")) return bench_attention(argc - 1, argv + 1);
    fprintf(stderr, "rewire bench: unknown benchmark '%s'\n\n%s", argv[0], usage);
    return 2;
}
