/* rewire eval MODEL --data D [--json]: accuracy, loss, per-class accuracy. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/data_flags.h"
#include "rewire.h"

static const char *split_names[] = {"test", "train", NULL};

int cmd_eval(int argc, char **argv)
{
    int json = 0, split = 0, limit = 0, threads = 0;
    const char *pos[1];
    data_flags df;
    data_flags_init(&df);
    arg_spec specs[5 + DATA_TABULAR_FLAG_COUNT] = {
        data_flags_data_spec(&df),
        {"split", ARG_CHOICE, &split, "test|train", "which split to evaluate (default test)",
         split_names, 0, 0},
        {"limit", ARG_INT, &limit, "N", "evaluate only the first N samples (default all)", NULL, 0,
         2147483647.0},
        {"threads", ARG_INT, &threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object", NULL, 0, 0},
    };
    data_flags_tabular_specs(&df, specs + 5);
    arg_parser p = {"eval", "rewire eval MODEL.safetensors [--data PATH] [--json]",
                    "Evaluates a saved model: accuracy, mean cross-entropy loss and accuracy per "
                    "class. A CSV or .npy --data is split as rewire train split it (the same "
                    "--test-split and --split-seed give the same test set).",
                    specs, sizeof specs / sizeof specs[0], pos, 1, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (data_flags_check(&df, "eval")) return 2;
    if (p.n_positional != 1) {
        fprintf(stderr, "rewire eval: expected one model file\n(see 'rewire eval --help')\n");
        return 2;
    }
    if (threads > 0) rw_set_num_threads(threads);
    rw_model *m = NULL;
    rw_dataset *d = NULL, *head = NULL;
    if (rw_model_load(pos[0], &m) != RW_OK) return report_failure("eval");
    if (data_load_one(&df, "eval", split == 0, rw_model_get_info(m, "class_names"), &d)) {
        rw_model_free(m);
        return 1;
    }
    if (limit > 0) {
        if (rw_dataset_head(d, limit, &head) != RW_OK) {
            rw_model_free(m);
            rw_dataset_free(d);
            return report_failure("eval");
        }
        rw_dataset_free(d);
        d = head;
    }
    rw_eval_result r;
    rw_status st = rw_evaluate(m, d, &r);
    rw_model_free(m);
    rw_dataset_free(d);
    if (st != RW_OK) return report_failure("eval");
    if (json) {
        json_t *per = json_array();
        for (int c = 0; c < r.classes; c++) json_array_append_new(per, json_real(r.class_accuracy[c]));
        json_t *o = json_pack("{s:s, s:s, s:f, s:f, s:I, s:o}", "model", pos[0], "split",
                              split_names[split], "accuracy", r.accuracy, "loss", r.loss, "count",
                              (json_int_t)r.count, "class_accuracy", per);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10));
        printf("\n");
        json_decref(o);
        return 0;
    }
    printf("%s on %s (%s split, %lld samples)\n", pos[0], df.data, split_names[split],
           (long long)r.count);
    printf("accuracy %.2f%%  loss %.4f\n", 100.0 * r.accuracy, r.loss);
    printf("per class:");
    for (int c = 0; c < r.classes; c++)
        printf("%s %d: %.1f%%", c % 5 == 0 ? "\n " : "", c, 100.0 * r.class_accuracy[c]);
    printf("\n");
    return 0;
}
