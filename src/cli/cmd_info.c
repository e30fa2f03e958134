/* rewire info MODEL [--json]: what a model file holds; rewire info --cpu:
 * what the kernel choice saw. */
#include <jansson.h>
#include <stdio.h>
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

int cmd_info(int argc, char **argv)
{
    int json = 0, cpu = 0;
    const char *pos[1];
    arg_spec specs[] = {
        {"json", ARG_FLAG, &json, NULL, "print one JSON object instead of a table", NULL, 0, 0},
        {"cpu", ARG_FLAG, &cpu, NULL,
         "the CPU, the instruction-set features the kernels use that it and the OS support, the "
         "kernel families it runs and the one chosen (before the model, if one is given)",
         NULL, 0, 0},
    };
    arg_parser p = {"info", "rewire info MODEL.safetensors [--json] | rewire info --cpu [--json]",
                    "Shows each layer's shape, kind, nonzeros, sparsity and bytes stored against "
                    "the bytes the same layer would take dense.",
                    specs, 2, pos, 1, 0};
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
            all += (int64_t)li.in * li.out;
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
            json_array_append_new(layers, lo);
        } else {
            printf("%-6s %-7s %-13s %-11s %12lld %8.2f%% %12lld %12lld\n", li.name, kind_text,
                   shape, act_names[li.activation], (long long)li.nonzeros, 100.0 * li.sparsity,
                   (long long)li.bytes, (long long)li.dense_bytes);
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
