/* rewire: the command-line tool, a thin layer over include/rewire.h. */
#include <stdio.h>
#include <string.h>

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
            "  bench    kernels, training and inference speed against the dense path\n\n"
            "Run 'rewire COMMAND --help' for the flags of a command.\n"
            "'rewire --version' prints the version.\n");
}

int report_failure(const char *command)
{
    fprintf(stderr, "rewire %s: %s\n", command, rw_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
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
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 2, argv + 2);
    fprintf(stderr, "rewire: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
