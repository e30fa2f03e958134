#include "cli/train_nm.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *method_names[] = {"ste", "srste", "decay", NULL};
static const char *layer_names[] = {"hidden", "all", "inner", NULL};

void nm_flags_init(nm_flags *f)
{
    f->pattern = NULL;
    f->method = f->layers = -1;
    f->lambda = f->decay_end = -1;
}

void nm_flags_specs(nm_flags *f, arg_spec *s)
{
    arg_spec specs[NM_FLAG_COUNT] = {
        {"nm", ARG_STRING, &f->pattern, "N:M",
         "train N:M sparse layers from scratch: at most N nonzeros in every M consecutive inputs "
         "(e.g. 2:4); dense master weights, N:M kernels forward and backward, a dense weight "
         "gradient; saves N:M layers. Not with --sparsity or --dst",
         NULL, 0, 0},
        {"nm-method", ARG_CHOICE, &f->method, "ste|srste|decay",
         "N:M training: straight-through, SR-STE (Zhou et al. 2021) or mask decay (MDGF-Linear, "
         "Bambhaniya et al. 2024) (default srste)",
         method_names, 0, 0},
        {"nm-layers", ARG_CHOICE, &f->layers, "hidden|all|inner",
         "which layers train N:M: all but the output layer, every layer, or neither first nor "
         "last (default hidden)",
         layer_names, 0, 0},
        {"nm-lambda", ARG_DOUBLE, &f->lambda, "L",
         "SR-STE decay of the masked-out weights, lambda_W (default 2e-4, the SR-STE authors' "
         "value for ImageNet, ~600k steps; its pull on masked-out weights grows with steps x lr, "
         "so on a 10-epoch Fashion-MNIST run it is ~250 times weaker; docs/results.md compares "
         "larger values)",
         NULL, 0, 1e3},
        {"nm-decay-end", ARG_DOUBLE, &f->decay_end, "F",
         "decay: the factor of masked-out weights falls linearly from 1 to 0 at this fraction of "
         "training (default 0.5)",
         NULL, 1e-6, 1},
    };
    memcpy(s, specs, sizeof specs);
}

/* Whether --name (or --name=...) is among the arguments. */
static int given(int argc, char **argv, const char *name)
{
    size_t len = strlen(name);
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--", 2) && !strncmp(argv[i] + 2, name, len) &&
            (argv[i][2 + len] == '\0' || argv[i][2 + len] == '='))
            return 1;
    return 0;
}

static int fail(const char *message, const char *detail)
{
    fprintf(stderr, "rewire train: ");
    fprintf(stderr, message, detail);
    fprintf(stderr, "\n(see 'rewire train --help')\n");
    return 2;
}

int nm_flags_check(const nm_flags *f, int argc, char **argv, rw_nm_train_config *c, int *active)
{
    static const char *excluded[] = {"sparsity", "dst", "drop", "grow", "update-every",
                                     "drop-fraction", "drop-schedule", "update-until",
                                     "redistribute", "window", "mest-lambda", "initial-sparsity",
                                     "prune-start", "prune-end", "init", "dense-first",
                                     "dense-last", "prune", "rounds", "rewind-step", "soup-size",
                                     "prune-scope", "shrink"};
    for (size_t i = 0; f->pattern && i < sizeof excluded / sizeof *excluded; i++)
        if (given(argc, argv, excluded[i]))
            return fail("--nm cannot be used with --%s: N:M training fixes the sparsity "
                        "(1 - N/M in the N:M layers) and changes the mask itself",
                        excluded[i]);
    return nm_flags_config(f, c, active);
}

int nm_flags_config(const nm_flags *f, rw_nm_train_config *c, int *active)
{
    *c = rw_nm_train_config_default();
    *active = f->pattern != NULL;
    if (!*active) {
        if (f->method >= 0 || f->layers >= 0 || f->lambda >= 0 || f->decay_end >= 0)
            return fail("--nm-method, --nm-layers, --nm-lambda and --nm-decay-end need --nm N:M%s",
                        "");
        return 0;
    }
    int n, m, used = 0;
    if (sscanf(f->pattern, "%d:%d%n", &n, &m, &used) != 2 || f->pattern[used] != '\0' || n < 1 ||
        m < 1 || n > m || m > 64)
        return fail("--nm expects N:M with 1 <= N <= M <= 64 (e.g. 2:4), got '%s'", f->pattern);
    c->n = n;
    c->m = m;
    if (f->method >= 0) c->method = (rw_nm_method)f->method;
    if (f->layers >= 0) c->layers = (rw_nm_layers)f->layers;
    if (f->lambda >= 0) {
        if (c->method != RW_NM_SRSTE) return fail("--nm-lambda needs --nm-method srste%s", "");
        c->srste_lambda = (float)f->lambda;
    }
    if (f->decay_end >= 0) {
        if (c->method != RW_NM_DECAY) return fail("--nm-decay-end needs --nm-method decay%s", "");
        c->decay_end = f->decay_end;
    }
    return 0;
}

/* What differs between two configs, as the flags name it; 0 if nothing
 * does. Lambda counts only for SR-STE, the decay's end only for decay. */
static int config_differs(const rw_nm_train_config *a, const rw_nm_train_config *b, char *why,
                          size_t size)
{
    if (a->n != b->n || a->m != b->m)
        snprintf(why, size, "--nm %d:%d, not %d:%d", a->n, a->m, b->n, b->m);
    else if (a->method != b->method)
        snprintf(why, size, "--nm-method %s, not %s", method_names[a->method],
                 method_names[b->method]);
    else if (a->layers != b->layers)
        snprintf(why, size, "--nm-layers %s, not %s", layer_names[a->layers],
                 layer_names[b->layers]);
    else if (a->method == RW_NM_SRSTE && a->srste_lambda != b->srste_lambda)
        snprintf(why, size, "--nm-lambda %.9g, not %.9g", (double)a->srste_lambda,
                 (double)b->srste_lambda);
    else if (a->method == RW_NM_DECAY && a->decay_end != b->decay_end)
        snprintf(why, size, "--nm-decay-end %.17g, not %.17g", a->decay_end, b->decay_end);
    else
        return 0;
    return 1;
}

int nm_resume(const rw_model *model, const char *path, int active, const rw_nm_train_config *c)
{
    rw_nm_train_config saved;
    int has = rw_model_nm_train_config(model, &saved);
    char why[256];
    if (active && !has) {
        fprintf(stderr, "rewire train: %s: the checkpoint's flags turn N:M training on, but it "
                        "holds no N:M training state (metadata nm.config is missing)\n", path);
        return 1;
    }
    if (!active && has) {
        fprintf(stderr, "rewire train: %s: the checkpoint holds N:M training state (metadata "
                        "nm.config), but its flags turn N:M training off\n", path);
        return 1;
    }
    if (has && config_differs(&saved, c, why, sizeof why)) {
        fprintf(stderr, "rewire train: %s: the checkpoint's N:M training settings (metadata "
                        "nm.config) are not those of its flags (%s)\n", path, why);
        return 1;
    }
    return 0;
}

