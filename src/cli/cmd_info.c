/* rewire info MODEL [--json]: what a model file holds; rewire info --cpu:
 * what the kernel choice saw. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rewire.h"

static const char *act_names[] = {"relu", "leaky_relu", "tanh", "gelu", "none"};

/* The CPU, the features the kernels use that it and the OS support, the
 * kernel families it runs and the one chosen (REWIRE_KERNELS may ask for
 * one: a warning says when it did not run). */
static int print_cpu(int json)
{
    rw_kernel_info k;
    rw_kernel_get_info(&k);
    int unmet = k.requested && strcmp(k.requested, k.chosen);
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "cpu", k.cpu, "features", k.features,
                              "runnable", k.runnable, "kernels", k.chosen);
        if (k.requested) json_object_set_new(o, "requested", json_string(k.requested));
        json_dumpf(o, stdout, JSON_COMPACT);
        printf("\n");
        json_decref(o);
    } else {
        printf("cpu:       %s\n", k.cpu[0] ? k.cpu : "(no name)");
        printf("features:  %s\n", k.features);
        printf("runnable:  %s\n", k.runnable);
        printf("kernels:   %s%s%s%s\n", k.chosen, k.requested ? " (REWIRE_KERNELS=" : "",
               k.requested ? k.requested : "", k.requested ? ")" : "");
    }
    if (unmet)
        fprintf(stderr, "rewire info: warning: REWIRE_KERNELS=%s not run (this CPU runs %s); "
                        "running the %s kernels\n", k.requested, k.runnable, k.chosen);
    return 0;
}

/* Input i's place when inputs are ordered by a key, largest first. */
typedef struct {
    double key;
    int input;
} ranked;

static int by_key_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return (x->input > y->input) - (x->input < y->input);
}

/* rank[i] (1-based) of every input by key[i], largest first, ties by index;
 * order gets the inputs in that order. */
static int rank_inputs(int n, const double *key, int *rank, int *order)
{
    ranked *r = malloc(sizeof *r * (size_t)(n > 0 ? n : 1));
    if (!r) return 1;
    for (int i = 0; i < n; i++) r[i] = (ranked){key[i], i};
    qsort(r, (size_t)n, sizeof *r, by_key_desc);
    for (int k = 0; k < n; k++) {
        rank[r[k].input] = k + 1;
        if (order) order[k] = r[k].input;
    }
    free(r);
    return 0;
}

/* rewire info MODEL --inputs: the inputs ranked by the |w| mass of their
 * first-layer connections, with their connection count and its rank. */
static int print_inputs(const char *path, const rw_model *m, int top, int json)
{
    int n = rw_model_inputs(m), kept = rw_model_kept_inputs(m, NULL);
    int32_t *conn = malloc(sizeof(int32_t) * (size_t)n);
    float *mass = malloc(sizeof(float) * (size_t)n);
    double *key = malloc(sizeof(double) * (size_t)n);
    int *rank_mass = malloc(sizeof(int) * (size_t)n), *rank_conn = malloc(sizeof(int) * (size_t)n);
    int *order = malloc(sizeof(int) * (size_t)n);
    int rc = !conn || !mass || !key || !rank_mass || !rank_conn || !order;
    if (!rc && rw_model_input_importance(m, conn, mass) != RW_OK) rc = report_failure("info");
    else if (rc) fprintf(stderr, "rewire info: out of memory\n");
    if (!rc) {
        for (int i = 0; i < n; i++) key[i] = conn[i];
        rc = rank_inputs(n, key, rank_conn, NULL);
        for (int i = 0; i < n; i++) key[i] = mass[i];
        rc |= rank_inputs(n, key, rank_mass, order);
    }
    int shown = top > 0 && top < n ? top : n, unconnected = 0;
    int64_t total = 0;
    for (int i = 0; !rc && i < n; i++) unconnected += conn[i] == 0, total += conn[i];
    if (!rc && json) {
        json_t *list = json_array();
        for (int k = 0; k < shown; k++) {
            int i = order[k];
            json_array_append_new(list, json_pack("{s:i, s:i, s:f, s:i, s:i}", "input", i,
                                                  "connections", (int)conn[i], "mass",
                                                  (double)mass[i], "rank_mass", rank_mass[i],
                                                  "rank_connections", rank_conn[i]));
        }
        json_t *o = json_pack("{s:s, s:i, s:i, s:s, s:I, s:i, s:o}", "model", path, "inputs", n,
                              "kept", kept, "normalize",
                              rw_model_normalization(m, NULL, NULL) == RW_NORMALIZE_FEATURE
                                  ? "feature"
                                  : "global",
                              "connections", (json_int_t)total, "unconnected", unconnected,
                              "ranked", list);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(8));
        printf("\n");
        json_decref(o);
    } else if (!rc) {
        printf("%s: %d inputs, %d read by the model, %d without a connection; %lld connections "
               "in the first layer\n", path, n, kept, unconnected, (long long)total);
        printf("%-6s %8s %12s %12s %12s\n", "rank", "input", "mass", "connections", "rank (conn)");
        for (int k = 0; k < shown; k++) {
            int i = order[k];
            printf("%-6d %8d %12.5g %12d %12d\n", k + 1, i, (double)mass[i], (int)conn[i],
                   rank_conn[i]);
        }
        if (shown < n) printf("(%d more; --top 0 lists all)\n", n - shown);
    }
    free(conn);
    free(mass);
    free(key);
    free(rank_mass);
    free(rank_conn);
    free(order);
    return rc;
}

int cmd_info(int argc, char **argv)
{
    int json = 0, cpu = 0, list_inputs = 0, top = 20;
    const char *pos[1];
    arg_spec specs[] = {
        {"json", ARG_FLAG, &json, NULL, "print one JSON object instead of a table", NULL, 0, 0},
        {"cpu", ARG_FLAG, &cpu, NULL,
         "the CPU, the instruction-set features the kernels use that it and the OS support, the "
         "kernel families it runs and the one chosen (before the model, if one is given)",
         NULL, 0, 0},
        {"inputs", ARG_FLAG, &list_inputs, NULL,
         "rank the model's inputs by the |w| mass of their first-layer connections, with their "
         "connection count and its rank (per-feature normalised inputs make the masses "
         "comparable)", NULL, 0, 0},
        {"top", ARG_INT, &top, "K", "with --inputs: list the first K (default 20; 0: all)", NULL, 0,
         2147483647.0},
    };
    arg_parser p = {"info",
                    "rewire info MODEL.safetensors [--json] | rewire info MODEL --inputs [--top K] "
                    "[--json] | rewire info --cpu [--json]",
                    "Shows each layer's shape, kind, nonzeros, sparsity and bytes stored against "
                    "the bytes the same layer would take dense; or, with --inputs, how much the "
                    "first layer uses each input.",
                    specs, sizeof specs / sizeof specs[0], pos, 1, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (cpu) print_cpu(json);
    if (cpu && p.n_positional == 0) return 0;
    if (p.n_positional != 1) {
        fprintf(stderr, "rewire info: expected one model file\n(see 'rewire info --help')\n");
        return 2;
    }
    rw_model *m;
    if (rw_model_load(pos[0], &m) != RW_OK) return report_failure("info");
    if (list_inputs) {
        int rc = print_inputs(pos[0], m, top, json);
        rw_model_free(m);
        return rc;
    }
    /* A checkpoint is checked whole (trainer state too) and says where it
     * stands. */
    rw_progress at = {0};
    rw_train_config tc = {0};
    int checkpoint = rw_is_checkpoint(pos[0]);
    if (checkpoint) {
        rw_model *cm;
        rw_trainer *t;
        if (rw_trainer_load_checkpoint(pos[0], 0, &cm, &t, NULL) != RW_OK) {
            rw_model_free(m);
            return report_failure("info");
        }
        rw_trainer_position(t, &at);
        tc = rw_trainer_config(t);
        rw_trainer_free(t);
        rw_model_free(cm);
    }

    int n = rw_model_layer_count(m);
    int64_t nnz = 0, all = 0, bytes = 0, dense_bytes = 0;
    json_t *layers = json_array();
    if (!json) {
        printf("%s\n", pos[0]);
        printf("%-6s %-7s %-13s %-11s %12s %9s %12s %12s\n", "layer", "kind", "shape", "activation",
               "nonzeros", "sparsity", "bytes", "dense bytes");
    }
    for (int l = 0; l < n; l++) {
        rw_layer_info li;
        rw_model_layer_info(m, l, &li);
        if (li.has_weights) { /* LayerNorm's few values count in bytes, not weights */
            nnz += li.nonzeros;
            all += li.dense_weights;
        }
        bytes += li.bytes;
        dense_bytes += li.dense_bytes;
        char shape[32], kind_text[32];
        const char *kind = li.kind;
        if (li.nm_n)
            snprintf(kind_text, sizeof kind_text, "%d:%d", li.nm_n, li.nm_m);
        else
            snprintf(kind_text, sizeof kind_text, "%s", kind);
        snprintf(shape, sizeof shape, "%dx%d", li.out, li.in);
        if (json) {
            json_t *lo = json_pack(
                "{s:s, s:s, s:i, s:i, s:s, s:I, s:f, s:I, s:I}", "name", li.name, "kind", kind, "in",
                li.in, "out", li.out, "activation", act_names[li.activation], "nonzeros",
                (json_int_t)li.nonzeros, "sparsity", li.sparsity, "bytes", (json_int_t)li.bytes,
                "dense_bytes", (json_int_t)li.dense_bytes);
            if (lo && li.nm_n) json_object_set_new(lo, "pattern", json_string(kind_text));
            if (lo && li.experts)
                json_object_update_new(lo, json_pack("{s:i, s:i, s:i, s:s}", "experts", li.experts,
                                                     "top_k", li.top_k, "expert_hidden",
                                                     li.expert_hidden, "gate", li.gate));
            json_array_append_new(layers, lo);
        } else {
            printf("%-6s %-7s %-13s %-11s %12lld %8.2f%% %12lld %12lld\n", li.name, kind_text,
                   shape, act_names[li.activation], (long long)li.nonzeros, 100.0 * li.sparsity,
                   (long long)li.bytes, (long long)li.dense_bytes);
            if (li.experts)
                printf("       %d experts (GELU MLPs %d wide, %s), top-%d %s gate\n", li.experts,
                       li.expert_hidden, li.sparse ? "sparse maps" : "dense maps", li.top_k,
                       li.gate);
        }
    }
    double sparsity = all ? 1.0 - (double)nnz / (double)all : 0.0;
    float mean, std;
    rw_model_get_normalization(m, &mean, &std);
    int per_feature = rw_model_normalization(m, NULL, NULL) == RW_NORMALIZE_FEATURE;
    int kept = rw_model_kept_inputs(m, NULL), inputs = rw_model_inputs(m);
    if (json) {
        json_t *o = json_pack("{s:s, s:i, s:i, s:I, s:I, s:f, s:I, s:I, s:f, s:f, s:o}", "file",
                              pos[0], "inputs", rw_model_inputs(m), "classes", rw_model_classes(m),
                              "nonzeros", (json_int_t)nnz, "weights", (json_int_t)all, "sparsity",
                              sparsity, "bytes", (json_int_t)bytes, "dense_bytes",
                              (json_int_t)dense_bytes, "input_mean", (double)mean, "input_std",
                              (double)std, "layers", layers);
        /* Only when not the defaults, so older files' output is unchanged. */
        if (per_feature) json_object_set_new(o, "normalize", json_string("feature"));
        if (kept < inputs) json_object_set_new(o, "inputs_kept", json_integer(kept));
        if (checkpoint)
            json_object_set_new(o, "checkpoint",
                                json_pack("{s:i, s:i, s:I, s:I}", "epoch", at.epoch, "epochs",
                                          tc.epochs, "step", (json_int_t)at.step,
                                          "epoch_samples", (json_int_t)at.samples));
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
        printf("\n");
        json_decref(o);
    } else {
        json_decref(layers);
        printf("total: %lld of %lld weights stored (sparsity %.2f%%), %lld bytes against %lld dense "
               "(%.1fx smaller)\n",
               (long long)nnz, (long long)all, 100.0 * sparsity, (long long)bytes,
               (long long)dense_bytes, bytes ? (double)dense_bytes / (double)bytes : 0.0);
        if (per_feature)
            printf("input normalisation: per feature (each input's mean and std over the "
                   "training set)\n");
        else
            printf("input normalisation: mean %.6g, std %.6g\n", mean, std);
        if (kept < inputs)
            printf("inputs: the model reads %d of %d (rewire info --inputs lists them)\n", kept,
                   inputs);
        if (checkpoint)
            printf("checkpoint: %d of %d epochs done, step %lld, %lld samples into epoch %d\n",
                   at.epoch, tc.epochs, (long long)at.step, (long long)at.samples,
                   at.epoch < tc.epochs ? at.epoch + 1 : tc.epochs);
    }
    rw_model_free(m);
    return 0;
}
