/* rewire prune MODEL -o OUT: one-shot pruning of a trained model, by
 * magnitude or Wanda, or to an N:M pattern. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rewire.h"

static const char *criterion_names[] = {"magnitude", "wanda", NULL};
static const char *scope_names[] = {"layer", "global", NULL};

/* Test accuracy on `data`, or a negative number when not asked for. */
static int evaluate(const rw_model *m, const rw_dataset *test, double *accuracy)
{
    rw_eval_result r;
    if (rw_evaluate(m, test, &r) != RW_OK) return report_failure("prune");
    *accuracy = r.accuracy;
    return 0;
}

int cmd_prune(int argc, char **argv)
{
    double sparsity = -1;
    int criterion = 0, scope = 0, calib = 128, eval = 0, threads = 0, finetune = 0, seed = 1;
    double finetune_lr = 0.01;
    const char *out = NULL, *nm = NULL, *data = NULL, *pos[1];
    arg_spec specs[] = {
        {"sparsity", ARG_DOUBLE, &sparsity, "S", "target fraction of zero weights in each layer",
         NULL, 0, 0.999999},
        {"criterion", ARG_CHOICE, &criterion, "magnitude|wanda",
         "score |w|, or |w| times the input's norm over calibration samples (default magnitude)",
         criterion_names, 0, 0},
        {"scope", ARG_CHOICE, &scope, "layer|global",
         "magnitude: the same sparsity in every layer, or one threshold over all (default layer)",
         scope_names, 0, 0},
        {"calib", ARG_INT, &calib, "N", "Wanda: calibration samples from the training split (default 128)",
         NULL, 1, 2147483647.0},
        {"data", ARG_STRING, &data, "DIR",
         "dataset for Wanda's calibration and --eval (default fashion-mnist)", NULL, 0, 0},
        {"nm", ARG_STRING, &nm, "N:M",
         "instead of --sparsity: keep the N largest of every M consecutive inputs (e.g. 2:4)", NULL,
         0, 0},
        {"eval", ARG_FLAG, &eval, NULL, "print test accuracy before and after", NULL, 0, 0},
        {"finetune-epochs", ARG_INT, &finetune, "N",
         "then train the pruned model N epochs on the training split, its mask fixed (SGD "
         "momentum 0.9, batch 128, cosine; default 0)", NULL, 0, 100000},
        {"finetune-lr", ARG_DOUBLE, &finetune_lr, "LR", "peak learning rate of fine-tuning "
         "(default 0.01)", NULL, 1e-12, 1e6},
        {"seed", ARG_INT, &seed, "N", "data order of fine-tuning (default 1)", NULL, 0,
         2147483647.0},
        {"threads", ARG_INT, &threads, "N", "threads (default: all cores)", NULL, 0, 1024},
        {"out", ARG_STRING, &out, "PATH", "where to write the pruned model (required; also -o)",
         NULL, 0, 0},
    };
    arg_parser p = {"prune",
                    "rewire prune MODEL.safetensors (--sparsity S [--criterion magnitude|wanda] "
                    "[--scope layer|global] [--calib N] | --nm N:M) [--finetune-epochs N] -o "
                    "OUT.safetensors",
                    "One-shot pruning of a trained model: keeps the weights of largest score and "
                    "stores pruned layers as CSR, or converts layers to N:M structured storage. "
                    "Layers already sparser than the target are left as they are.",
                    specs, sizeof specs / sizeof specs[0], pos, 1, 0};
    int rc = args_parse(&p, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    if (p.n_positional != 1 || !out) {
        fprintf(stderr, "rewire prune: expected one model file and -o OUT\n"
                        "(see 'rewire prune --help')\n");
        return 2;
    }
    int n = 0, m = 0;
    if (nm) {
        char tail;
        if (sscanf(nm, "%d:%d%c", &n, &m, &tail) != 2 || n < 1 || m < n) {
            fprintf(stderr, "rewire prune: --nm expects N:M with 1 <= N <= M, got '%s'\n", nm);
            return 2;
        }
    }
    if ((sparsity < 0) == !nm) {
        fprintf(stderr, "rewire prune: give exactly one of --sparsity and --nm\n"
                        "(see 'rewire prune --help')\n");
        return 2;
    }
    if (threads > 0) rw_set_num_threads(threads);
    if (!data) data = "fashion-mnist";

    rw_model *model = NULL;
    rw_dataset *train = NULL, *test = NULL;
    rc = 1;
    double before = -1, after = -1;
    if (rw_model_load(pos[0], &model) != RW_OK) goto fail;
    if (((finetune > 0 || (criterion == 1 && !nm)) && rw_dataset_load(data, 0, &train) != RW_OK) ||
        (eval && rw_dataset_load(data, 1, &test) != RW_OK))
        goto fail;
    if (eval && evaluate(model, test, &before)) goto done;
    double s0 = rw_model_sparsity(model);
    if (nm) {
        if (rw_model_to_nm(model, -1, n, m) != RW_OK) goto fail;
    } else {
        rw_prune_config pc = {sparsity, (rw_prune_criterion)criterion, (rw_prune_scope)scope, train,
                              calib};
        if (rw_model_prune(model, &pc) != RW_OK) goto fail;
    }
    if (eval && evaluate(model, test, &after)) goto done;
    double tuned = -1;
    if (finetune > 0) {
        /* Fine-tuning: the pruned pattern is kept, only the values train. */
        rw_train_config tc = rw_train_config_default();
        tc.epochs = finetune;
        tc.lr = (float)finetune_lr;
        tc.seed = (uint64_t)seed;
        rw_trainer *t = NULL;
        if (rw_trainer_create(model, &tc, &t) != RW_OK) goto fail;
        for (int e = 0; e < finetune; e++)
            if (rw_trainer_epoch(t, train, NULL, NULL, NULL) != RW_OK) {
                rw_trainer_free(t);
                goto fail;
            }
        rw_trainer_free(t);
        if (eval && evaluate(model, test, &tuned)) goto done;
    }
    if (rw_model_save(model, out) != RW_OK) goto fail;
    printf("%s: sparsity %.2f%% -> %.2f%%", out, 100 * s0, 100 * rw_model_sparsity(model));
    if (eval) printf(", test accuracy %.2f%% -> %.2f%%", 100 * before, 100 * after);
    if (eval && finetune > 0)
        printf(", after %d fine-tuning epochs %.2f%%", finetune, 100 * tuned);
    printf("\n");
    rc = 0;
    goto done;
fail:
    rc = report_failure("prune");
done:
    rw_model_free(model);
    rw_dataset_free(train);
    rw_dataset_free(test);
    return rc;
}
