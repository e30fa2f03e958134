#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const arg_spec *find_spec(const arg_parser *p, const char *name, size_t len)
{
    for (int i = 0; i < p->n_specs; i++)
        if (strlen(p->specs[i].name) == len && strncmp(p->specs[i].name, name, len) == 0)
            return &p->specs[i];
    return NULL;
}

static int fail(const arg_parser *p, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "rewire %s: ", p->command);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n(see 'rewire %s --help')\n", p->command);
    return 2;
}

static int set_value(const arg_parser *p, const arg_spec *s, const char *v)
{
    char *end;
    switch (s->type) {
    case ARG_FLAG:
        *(int *)s->target = 1;
        return 0;
    case ARG_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end != '\0')
            return fail(p, "--%s expects an integer, got '%s'", s->name, v);
        if ((double)x < s->min || (double)x > s->max) {
            char range[96];
            snprintf(range, sizeof range, "[%.0f, %.0f], got %s", s->min, s->max, v);
            return fail(p, "--%s must be in %s", s->name, range);
        }
        *(int *)s->target = (int)x;
        return 0;
    }
    case ARG_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end != '\0' || !isfinite(x))
            return fail(p, "--%s expects a number, got '%s'", s->name, v);
        if (x < s->min || x > s->max) {
            char range[96];
            snprintf(range, sizeof range, "[%g, %g], got %s", s->min, s->max, v);
            return fail(p, "--%s must be in %s", s->name, range);
        }
        *(double *)s->target = x;
        return 0;
    }
    case ARG_STRING:
        if (*v == '\0') return fail(p, "--%s expects a value%s", s->name, "");
        *(const char **)s->target = v;
        return 0;
    case ARG_CHOICE:
        for (int i = 0; s->choices[i]; i++)
            if (strcmp(s->choices[i], v) == 0) {
                *(int *)s->target = i;
                return 0;
            }
        {
            char list[256] = "";
            for (int i = 0; s->choices[i]; i++) {
                strncat(list, i ? "|" : "", sizeof list - strlen(list) - 1);
                strncat(list, s->choices[i], sizeof list - strlen(list) - 1);
            }
            fprintf(stderr, "rewire %s: --%s expects one of %s, got '%s'\n(see 'rewire %s --help')\n",
                    p->command, s->name, list, v, p->command);
            return 2;
        }
    }
    return 2;
}

int args_parse(arg_parser *p, int argc, char **argv)
{
    p->n_positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        /* -o is the short form of --out, for every command that has one. */
        if (strcmp(a, "-o") == 0 && find_spec(p, "out", 3)) a = "--out";
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args_print_help(p);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (a[0] == '-' && a[1] != '\0') return fail(p, "unknown flag '%s'%s", a, "");
            if (p->n_positional >= p->max_positional)
                return fail(p, "unexpected argument '%s'%s", a, "");
            p->positional[p->n_positional++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const arg_spec *s = find_spec(p, name, len);
        if (!s) return fail(p, "unknown flag '%s'%s", a, "");
        const char *value = NULL;
        if (s->type == ARG_FLAG) {
            if (eq) return fail(p, "--%s takes no value%s", s->name, "");
        } else if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) return fail(p, "--%s needs a value%s", s->name, "");
            value = argv[++i];
        }
        int rc = set_value(p, s, value);
        if (rc) return rc;
    }
    return 0;
}

void args_print_help(const arg_parser *p)
{
    printf("usage: %s\n\n%s\n\nflags:\n", p->usage, p->summary);
    for (int i = 0; i < p->n_specs; i++) {
        const arg_spec *s = &p->specs[i];
        char left[64];
        if (s->type == ARG_FLAG)
            snprintf(left, sizeof left, "--%s", s->name);
        else
            snprintf(left, sizeof left, "--%s %s", s->name, s->metavar ? s->metavar : "VALUE");
        printf("  %-32s %s\n", left, s->help);
    }
    printf("  %-32s %s\n", "--help", "show this help");
}

int args_parse_int_list(const char *s, int *out, int cap)
{
    int n = 0;
    const char *q = s;
    if (*q == '\0') return 0;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(q, &end, 10);
        if (errno || end == q || v < 1 || v > 1 << 30 || n >= cap) return -1;
        out[n++] = (int)v;
        if (*end == '\0') return n;
        if (*end != ',') return -1;
        q = end + 1;
    }
}

int args_parse_double_list(const char *s, double *out, int cap, double lo, double hi)
{
    int n = 0;
    const char *q = s;
    if (*q == '\0') return 0;
    for (;;) {
        char *end;
        errno = 0;
        double v = strtod(q, &end);
        if (errno || end == q || !isfinite(v) || v < lo || v > hi || n >= cap) return -1;
        out[n++] = v;
        if (*end == '\0') return n;
        if (*end != ',') return -1;
        q = end + 1;
    }
}
