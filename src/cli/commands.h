/* The rewire subcommands; each returns the process exit status:
 * 0 success, 1 a failure the library reported, 2 bad usage. */
#ifndef RW_CLI_COMMANDS_H
#define RW_CLI_COMMANDS_H

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_lm(int argc, char **argv);
/* rewire bench lm (bench_lm.c). */
int bench_lm(int argc, char **argv);

/* rewire bench attention (bench_attention.c). */
int bench_attention(int argc, char **argv);

/* Prints "rewire CMD: <rw_last_error()>" to stderr and returns 1. */
int report_failure(const char *command);

#endif
