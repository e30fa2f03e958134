/* The "dst" checkpoint section (nn/checkpoint.h): the state of dynamic
 * sparse training that a resumed run needs. Layout in dst_checkpoint.c. */
#ifndef RW_SPARSITY_DST_CHECKPOINT_H
#define RW_SPARSITY_DST_CHECKPOINT_H

#include "io/safetensors.h"
#include "rewire.h"

/* Adds the state of the trainer's DST, if any, to w (tensors borrowed from
 * the state until the write ends). */
rw_status dst_checkpoint_save(const rw_trainer *t, st_writer *w, const char *path);

/* Restores it into t (model, optimizer state and position already loaded):
 * a checkpoint without metadata dst.config had no DST and leaves t without
 * it. Every tensor is checked against the model and the config; an error
 * (RW_ERR_FORMAT) names `path` and the tensor or key. */
rw_status dst_checkpoint_load(rw_trainer *t, const st_file *f, const char *path);

/* The bytes dst_checkpoint_load would allocate for the DST state in f, for
 * model m (its layer shapes: a skeleton will do) trained with tc (0 when
 * f holds none), so that the memory limit
 * of rw_trainer_load_checkpoint counts them before anything is allocated. */
int64_t dst_checkpoint_memory(const st_file *f, const rw_model *m, const rw_train_config *tc);

#endif
