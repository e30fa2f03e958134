#include "cli/train_checkpoint.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Flags that do not change what is trained: they may differ on resume. */
static const char *const free_flags[] = {"threads", "out", "log", "quiet", "checkpoint",
                                         "checkpoint-every", "resume", "max-memory", NULL};

/* Flags newer than the checkpoint format: a note holds them only when
 * they are not at their default, and a note without one means the
 * default, so that checkpoints from before them resume unchanged. */
static const char *const late_flags[] = {"layer-norm",  "labels",     "test-data",
                                         "test-labels", "test-split", "split-seed",
                                         "skip-rows",   "label-column", "normalize",
                                         "input-budget", "input-select", "input-start",
                                         "input-end",   NULL};

static int is_late(const arg_spec *s)
{
    for (int i = 0; late_flags[i]; i++)
        if (strcmp(s->name, late_flags[i]) == 0) return 1;
    return 0;
}

static int shapes_run(const arg_spec *s)
{
    for (int i = 0; free_flags[i]; i++)
        if (strcmp(s->name, free_flags[i]) == 0) return 0;
    return 1;
}

int64_t parse_memory_size(const char *s)
{
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0) || !isfinite(v)) return -1;
    double unit = 1;
    switch (*end) {
    case 'k': case 'K': unit = 1024.0; end++; break;
    case 'm': case 'M': unit = 1024.0 * 1024; end++; break;
    case 'g': case 'G': unit = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': unit = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (unit > 1 && (*end == 'i' || *end == 'I')) end++;
    if (*end == 'b' || *end == 'B') end++;
    if (*end != '\0') return -1;
    double bytes = v * unit;
    if (bytes >= 9.2e18) return -1;
    return (int64_t)bytes;
}

void format_bytes(char *buf, size_t size, int64_t bytes)
{
    const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 6) v /= 1024, u++;
    if (u == 0)
        snprintf(buf, size, "%lld bytes", (long long)bytes);
    else
        snprintf(buf, size, "%.2f %s", v, units[u]);
}

static json_t *flag_value(const arg_spec *s)
{
    switch (s->type) {
    case ARG_FLAG:
    case ARG_INT:
    case ARG_CHOICE: return json_integer(*(const int *)s->target);
    case ARG_DOUBLE: return json_real(*(const double *)s->target);
    case ARG_STRING: {
        const char *v = *(const char *const *)s->target;
        return v ? json_string(v) : json_null();
    }
    }
    return json_null();
}

static const void *default_of(const arg_spec *s, const void *flags, const void *defaults);
static int same(const arg_spec *s, const void *a, const void *b);

char *train_flags_json(const arg_spec *specs, int n_specs, const void *values,
                       const void *defaults)
{
    json_t *flags = json_object();
    for (int i = 0; i < n_specs && flags; i++) {
        const arg_spec *s = &specs[i];
        if (!shapes_run(s)) continue;
        if (is_late(s) && same(s, s->target, default_of(s, values, defaults))) continue;
        json_object_set_new(flags, s->name, flag_value(s));
    }
    char *s = flags ? json_dumps(flags, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(flags);
    return s;
}

/* The value of a spec's target in the defaults copy. */
static const void *default_of(const arg_spec *s, const void *flags, const void *defaults)
{
    return (const char *)defaults + ((const char *)s->target - (const char *)flags);
}

static int same(const arg_spec *s, const void *a, const void *b)
{
    switch (s->type) {
    case ARG_FLAG:
    case ARG_INT:
    case ARG_CHOICE: return *(const int *)a == *(const int *)b;
    case ARG_DOUBLE: return *(const double *)a == *(const double *)b;
    case ARG_STRING: {
        const char *x = *(const char *const *)a, *y = *(const char *const *)b;
        return x == y || (x && y && strcmp(x, y) == 0);
    }
    }
    return 0;
}

static void show(const arg_spec *s, const void *v, char *buf, size_t size)
{
    switch (s->type) {
    case ARG_FLAG: snprintf(buf, size, "%s", *(const int *)v ? "on" : "off"); break;
    /* -1 is how the flags that default to a preset's value say "not given". */
    case ARG_INT:
        if (*(const int *)v == -1) snprintf(buf, size, "(not given)");
        else snprintf(buf, size, "%d", *(const int *)v);
        break;
    case ARG_CHOICE: {
        int c = *(const int *)v;
        snprintf(buf, size, "%s", c >= 0 ? s->choices[c] : "(not given)");
        break;
    }
    case ARG_DOUBLE:
        if (*(const double *)v == -1) snprintf(buf, size, "(not given)");
        else snprintf(buf, size, "%g", *(const double *)v);
        break;
    case ARG_STRING: {
        const char *x = *(const char *const *)v;
        snprintf(buf, size, "%s", x ? x : "(none)");
        break;
    }
    }
}

/* Reads a stored value into `out` (same type as the spec's target). */
static int stored_value(const arg_spec *s, const json_t *j, const void *def, void *out)
{
    switch (s->type) {
    case ARG_FLAG:
    case ARG_INT:
    case ARG_CHOICE: {
        if (!json_is_integer(j)) return -1;
        json_int_t v = json_integer_value(j);
        if (v < -2147483647 || v > 2147483647) return -1;
        if (s->type == ARG_CHOICE) {
            int n = 0;
            while (s->choices[n]) n++;
            /* -1 means "left to a preset" (the --dst flags): valid only for
             * a choice whose default is that. */
            int unset_ok = *(const int *)def == -1;
            if (v < (unset_ok ? -1 : 0) || v >= n) return -1;
        }
        *(int *)out = (int)v;
        return 0;
    }
    case ARG_DOUBLE:
        if (!json_is_number(j)) return -1;
        *(double *)out = json_number_value(j);
        return 0;
    case ARG_STRING:
        if (json_is_null(j)) {
            *(const char **)out = NULL;
            return 0;
        }
        if (!json_is_string(j)) return -1;
        *(const char **)out = json_string_value(j);
        return 0;
    }
    return -1;
}

int resume_flags(const char *stored_flags, const char *path, const arg_spec *specs, int n_specs,
                 const void *flags, const void *defaults, void **keep)
{
    *keep = NULL;
    json_error_t err;
    json_t *root = stored_flags ? json_loads(stored_flags, 0, &err) : NULL, *stored = root;
    if (!json_is_object(stored)) {
        fprintf(stderr, "rewire train: %s: the checkpoint does not record the flags of "
                        "`rewire train` (was it written by another program?)\n", path);
        json_decref(root);
        return 1;
    }
    for (int i = 0; i < n_specs; i++) {
        const arg_spec *s = &specs[i];
        if (!shapes_run(s)) continue;
        union {
            int i;
            double d;
            const char *s;
        } v;
        const json_t *j = json_object_get(stored, s->name);
        if (!j && is_late(s)) continue; /* a checkpoint from before the flag: its default */
        if (stored_value(s, j, default_of(s, flags, defaults), &v) != 0) {
            fprintf(stderr, "rewire train: %s: the checkpoint's flag --%s is missing or "
                            "malformed\n", path, s->name);
            json_decref(root);
            return 1;
        }
        const void *def = default_of(s, flags, defaults);
        if (!same(s, s->target, def) && !same(s, s->target, &v)) {
            char given[256], saved[256];
            show(s, s->target, given, sizeof given);
            show(s, &v, saved, sizeof saved);
            fprintf(stderr, "rewire train: --%s %s differs from the checkpoint's %s: a resumed "
                            "run keeps the settings it started with\n(see 'rewire train --help')\n",
                    s->name, given, saved);
            json_decref(root);
            return 2;
        }
        switch (s->type) {
        case ARG_FLAG:
        case ARG_INT:
        case ARG_CHOICE: *(int *)s->target = v.i; break;
        case ARG_DOUBLE: *(double *)s->target = v.d; break;
        case ARG_STRING: *(const char **)s->target = v.s; break;
        }
    }
    *keep = root;
    return 0;
}

void resume_note_free(void *keep) { json_decref(keep); }
