/* The "nm" checkpoint section (nn/checkpoint.h): the state of N:M training
 * from scratch that a resumed run needs. Layout in nm_checkpoint.c. */
#ifndef RW_NN_NM_TRAIN_CHECKPOINT_H
#define RW_NN_NM_TRAIN_CHECKPOINT_H

#include "io/safetensors.h"
#include "rewire.h"

/* Adds the N:M training state of the trainer's model, if any, to w
 * (tensors borrowed from the model until the write ends). */
rw_status nm_checkpoint_save(const rw_trainer *t, st_writer *w, const char *path);

/* Restores it (model, optimizer state and position already loaded): a
 * checkpoint without metadata nm.config had no N:M training and leaves
 * the model as it is. Every value is checked against the model before the
 * model changes; an error (RW_ERR_FORMAT) names `path` and the tensor or
 * key. */
rw_status nm_checkpoint_load(rw_trainer *t, const st_file *f, const char *path);

/* The bytes nm_checkpoint_load would allocate for the N:M training in f,
 * for model m (its layer shapes: a skeleton will do), 0 when f holds
 * none, so that the memory limit of rw_trainer_load_checkpoint counts
 * them before anything is allocated. */
int64_t nm_checkpoint_memory(const st_file *f, const rw_model *m);

#endif
