/* Checkpoints (rw_trainer_save_checkpoint / rw_trainer_load_checkpoint): a
 * model file plus the trainer's state, so that a run resumed in a new
 * process ends bit-identical to one never interrupted.
 *
 * Layout, beside the model's own tensors and metadata (nn/model_file.h):
 *   metadata "checkpoint" = "1" (the checkpoint format version),
 *            "trainer"    = JSON {config, epoch, step, epoch_step,
 *                           epoch_samples, epoch_loss_sum, epoch_seconds,
 *                           data_samples, data_fingerprint},
 *            "note"       = the caller's string (optional);
 *   tensors  "opt.<param>.m1" for every parameter of the model's list
 *            (F32, parallel to its values; <param> is its record's tensor
 *            name: "fc1.values" for CSR weights, "fc1.weight" for dense and
 *            N:M ones, "fc1.bias"), and the same ".m2" for AdamW's second
 *            moments.
 *
 * Other modules add state through a section: a prefix ("dst") that owns
 * every tensor and metadata key starting with "PREFIX.", and a save/load
 * pair listed in `checkpoint_sections` in checkpoint.c. The loader refuses
 * any tensor that neither the model, the optimizer nor a section claims. */
#ifndef RW_RUN_CHECKPOINT_H
#define RW_RUN_CHECKPOINT_H

#include "io/safetensors.h"
#include "nn/trainer.h"

typedef struct {
    const char *prefix; /* "dst": owns tensors and metadata keys "dst.*" */
    /* Adds the section's tensors (borrowed until the write ends: point
     * them at the trainer's own arrays) and metadata to w. `path` is for
     * messages. */
    rw_status (*save)(const rw_trainer *t, st_writer *w, const char *path);
    /* Restores the section into t, after the model, the optimizer state
     * and the position are in place. Must validate every value it reads
     * and name `path` and the tensor in its messages; must decide what a
     * checkpoint without the section's entries means (an older file). */
    rw_status (*load)(rw_trainer *t, const st_file *f, const char *path);
} checkpoint_section;

/* rw_trainer_load_checkpoint on `size` bytes in memory; `name` stands
 * for the path in messages. Used by the fuzz harness. */
rw_status checkpoint_load_memory(const char *name, const void *bytes, size_t size,
                                 int64_t max_memory, rw_model **model, rw_trainer **trainer);

#endif
