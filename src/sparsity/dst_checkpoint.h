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

#endif
