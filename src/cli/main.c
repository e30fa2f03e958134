/* rewire: the command-line tool, a thin layer over include/rewire.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "rewire.h"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: rewire COMMAND [flags]\n\n"
            "Train, evaluate and inspect truly sparse neural networks.\n\n"
            "commands:\n"
            "  train    train a sparse (or dense) MLP and optionally save it\n"
            "  eval     accuracy, loss and per-class accuracy of a saved model\n"
            "  info     layers, shapes, nonzeros and bytes of a saved model\n"
            "  prune    one-shot pruning of a saved model (magnitude, Wanda, N:M)\n"
            "  plot     accuracy and loss curves of runs (SVG), or a model's input connectivity\n"
            "           as a heat map (PNG)\n"
            "  bench    kernels, training and inference speed against the dense path\n"
            "  lm       language models: train, eval, generate\n\n"
            "Run 'rewire COMMAND --help' for the flags of a command.\n"
            "'rewire --version' prints the version.\n");
}

/* Under mpirun, processes other than 0 print nothing but their failures
 * (process 0 prints the same progress and results): their stderr goes to
 * /dev/null and failures to this copy of it. */
static FILE *failures;

int report_failure(const char *command)
{
    if (failures)
        fprintf(failures, "rewire %s (process %d of %d): %s\n", command, rw_dist_rank(),
                rw_dist_size(), rw_last_error());
    else
        fprintf(stderr, "rewire %s: %s\n", command, rw_last_error());
    return 1;
}

static void quiet_other_processes(void)
{
    if (rw_dist_rank() == 0) return;
    int fd = dup(STDERR_FILENO);
    if (fd >= 0 && (failures = fdopen(fd, "w"))) setvbuf(failures, NULL, _IONBF, 0);
    if (!freopen("/dev/null", "w", stdout) || (failures && !freopen("/dev/null", "w", stderr)))
        fprintf(stderr, "rewire: process %d cannot silence its output\n", rw_dist_rank());
}

/* libgomp, the OpenMP runtime, reads its settings once, when it is loaded:
 * by default a thread waiting at a barrier or for the next parallel region
 * spins 300,000 times (about 12 ms here) before it sleeps. When other
 * programs share the cores and the OS deschedules one of our threads, the
 * others spin that long on a core it could use: measured on 2 busy cores,
 * each kernel call took 12 ms instead of 0.06-1 ms. A spin of 2,500 (about
 * 0.1 ms, as long as the library's own barriers spin) costs nothing on an
 * idle machine. So, unless the user chose a setting, set it and start again. */
#define GOMP_SPIN_DEFAULT "2500"

static void tune_openmp_runtime(char **argv)
{
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY")) return;
    if (setenv("GOMP_SPINCOUNT", GOMP_SPIN_DEFAULT, 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* No /proc (or exec failed): run with libgomp's defaults. */
}

static int run_command(int argc, char **argv);

int main(int argc, char **argv)
{
    tune_openmp_runtime(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    /* Under mpirun every process runs the command; process 0 speaks. */
    if (rw_dist_init(&argc, &argv) != RW_OK) {
        fprintf(stderr, "rewire: %s\n", rw_last_error());
        rw_dist_end(1);
        return 1;
    }
    quiet_other_processes();
    int rc = run_command(argc, argv);
    rw_dist_end(rc != 0);
    return rc;
}

static int run_command(int argc, char **argv)
{
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("rewire %s (kernels: %s)\n", RW_VERSION, rw_kernel_isa());
        return 0;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "prune")) return cmd_prune(argc - 2, argv + 2);
    if (!strcmp(cmd, "plot")) return cmd_plot(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "lm")) return cmd_lm(argc - 2, argv + 2);
    fprintf(stderr, "rewire: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
