/* RigL with checkpoints through the library alone: what `rewire train
 * --dst rigl --checkpoint ... --resume ...` does, as a C program.
 *
 *   rigl_checkpoint DATA_DIR WORK_DIR [STOP_EPOCH]
 *
 * Trains a 95%-sparse 784-300-100-10 MLP on an IDX image folder (e.g.
 * /usr/share/datasets/fashion-mnist, or tests/data/fashion-small) for 4
 * epochs with RigL, logging JSONL to WORK_DIR/run.jsonl and checkpointing
 * to WORK_DIR/run.ckpt after every epoch. With STOP_EPOCH it stops after
 * that many epochs, as a killed job would; run it again without and it
 * resumes from the checkpoint and finishes the same run, bit for bit.
 * Build against an installed rewire:
 *   cc rigl_checkpoint.c $(pkg-config --cflags --libs rewire) -o rigl_checkpoint */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rewire.h>

static int fail(const char *what)
{
    fprintf(stderr, "rigl_checkpoint: %s: %s\n", what, rw_last_error());
    return 1;
}

/* Stops the run after `stop` epochs (0: never). */
static int on_epoch(const rw_run_epoch *e, void *user)
{
    int stop = *(const int *)user;
    printf("epoch %d/%d  step %lld  loss %.4f  test %.2f%%  sparsity %.4f  %lld updates\n",
           e->epoch, e->epochs, (long long)e->step, e->stats->loss, 100 * e->test->accuracy,
           e->sparsity, (long long)e->updates);
    return stop > 0 && e->epoch >= stop;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: rigl_checkpoint DATA_DIR WORK_DIR [STOP_EPOCH]\n");
        return 2;
    }
    int stop = argc > 3 ? atoi(argv[3]) : 0;
    char log[4096], ckpt[4096], out[4096];
    snprintf(log, sizeof log, "%s/run.jsonl", argv[2]);
    snprintf(ckpt, sizeof ckpt, "%s/run.ckpt", argv[2]);
    snprintf(out, sizeof out, "%s/model.safetensors", argv[2]);

    rw_dataset *train, *test;
    if (rw_dataset_load(argv[1], 0, &train) != RW_OK) return fail("training set");
    if (rw_dataset_load(argv[1], 1, &test) != RW_OK) return fail("test set");

    rw_dst_config rigl = rw_dst_config_preset(RW_DST_RIGL);
    rigl.update_every = 50;
    rw_run_config c = rw_run_config_default();
    c.train.epochs = 4;
    c.dst = &rigl;
    c.log = log;
    c.checkpoint = ckpt;
    c.out = out;
    c.on_epoch = on_epoch;
    c.user = &stop;

    rw_model *model = NULL;
    rw_run *run = NULL;
    if (rw_is_checkpoint(ckpt)) {
        /* The checkpoint holds the model, the optimizer, RigL's state and
         * the position; the config must ask for the same RigL. */
        if (rw_run_resume(ckpt, 0, &model, &run, NULL) != RW_OK) return fail(ckpt);
        if (rw_run_configure(run, &c) != RW_OK) return fail("resume");
        rw_progress at;
        rw_trainer_position(rw_run_trainer(run), &at);
        printf("resuming %s at epoch %d, step %lld\n", ckpt, at.epoch + 1, (long long)at.step);
    } else {
        int sizes[] = {rw_dataset_features(train), 300, 100, rw_dataset_classes(train)};
        rw_model_config mc = rw_model_config_default();
        mc.sizes = sizes;
        mc.n_layers = 3;
        mc.sparsity = 0.95;
        if (rw_model_create(&mc, &model) != RW_OK) return fail("model");
        float mean, std;
        rw_dataset_stats(train, &mean, &std);
        rw_model_set_normalization(model, mean, std);
        if (rw_run_new(model, &c, &run) != RW_OK) return fail("run");
    }
    rw_run_result r;
    if (rw_run_train(run, train, NULL, test, &r) != RW_OK) {
        if (r.checkpoint_kept) fprintf(stderr, "the last good checkpoint is %s\n", r.checkpoint_kept);
        return fail("training");
    }
    printf("%s: test accuracy %.2f%%, sparsity %.4f, %lld topology updates, %.0f samples/s%s\n",
           r.stopped ? "stopped" : "done", 100 * r.test.accuracy, r.sparsity,
           (long long)r.updates, r.train_samples_per_second, r.stopped ? " (run again to resume)" : "");
    rw_run_free(run);
    rw_model_free(model);
    rw_dataset_free(train);
    rw_dataset_free(test);
    return 0;
}
