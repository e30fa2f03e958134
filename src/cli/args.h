/* A small table-driven flag parser for the rewire subcommands: every flag
 * is declared once with its type, target and help text, so parsing, error
 * messages and --help stay in step. */
#ifndef RW_CLI_ARGS_H
#define RW_CLI_ARGS_H

typedef enum { ARG_FLAG, ARG_INT, ARG_DOUBLE, ARG_STRING, ARG_CHOICE } arg_type;

typedef struct {
    const char *name;      /* without the leading "--" */
    arg_type type;
    void *target;          /* int* (FLAG, INT, CHOICE), double*, const char** */
    const char *metavar;   /* shown in help, e.g. "N" */
    const char *help;
    const char *const *choices; /* ARG_CHOICE: NULL-terminated; target gets the index */
    double min, max;       /* INT and DOUBLE: accepted range (inclusive) */
} arg_spec;

typedef struct {
    const char *command;   /* "train" */
    const char *usage;     /* "rewire train [flags]" */
    const char *summary;   /* one paragraph */
    const arg_spec *specs;
    int n_specs;
    const char **positional; /* filled with positional args (may be NULL) */
    int max_positional;
    int n_positional;      /* set by args_parse */
} arg_parser;

/* Returns 0 on success, 1 if --help was printed (exit 0), 2 after printing
 * an error naming the flag and what was expected (exit 2). */
int args_parse(arg_parser *p, int argc, char **argv);
void args_print_help(const arg_parser *p);

/* Parses "1000,500" into at most `cap` positive ints; returns the count or
 * -1 if malformed. */
int args_parse_int_list(const char *s, int *out, int cap);

/* Parses "0,0.95,0.99" into at most `cap` finite numbers in [lo, hi];
 * returns the count or -1 if malformed or out of range. */
int args_parse_double_list(const char *s, double *out, int cap, double lo, double hi);

#endif
