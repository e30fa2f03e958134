/* Model files (safetensors, io/safetensors.h): the metadata lists the
 * layers, and each layer writes and reads its own tensors (its kind's save
 * and load). A checkpoint (run/checkpoint.c) is a model file plus the
 * trainer's state, so it writes and reads the model through these. */
#ifndef RW_NN_MODEL_FILE_H
#define RW_NN_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"
#include "rewire.h"

/* Adds the model's metadata (format, layers, normalisation) and tensors
 * (each layer's) to w. The tensors are borrowed: m must outlive the write. */
rw_status model_add_to_writer(const rw_model *m, const char *path, st_writer *w);

/* Builds and validates a model from a parsed file. In a checkpoint (the
 * metadata has "checkpoint"), tensors no layer claims belong to the
 * trainer and are left to the caller; otherwise every tensor must be
 * claimed by a layer. With max_bytes > 0, a model whose layers would take
 * more memory than that is refused (RW_ERR_NO_MEMORY) before anything is
 * allocated. */
rw_status model_from_file(const st_file *f, const char *path, int64_t max_bytes, rw_model **out);

/* model_from_file in two steps: the skeleton (layers from the metadata,
 * nothing allocated for weights), then the tensors. In between,
 * model_file_memory tells what the model (and a trainer with config
 * `train`, which may be NULL) will take. */
rw_status model_skeleton(const st_file *f, const char *path, rw_model **out);
rw_status model_fill(const st_file *f, const char *path, rw_model *m);
rw_status model_file_memory(const rw_model *skeleton, const st_file *f,
                            const rw_train_config *train, rw_memory_estimate *out);

/* 1 if some layer of m claims the tensor `name`. */
int model_owns_tensor(const rw_model *m, const char *name);

/* rw_model_load on `size` bytes in memory; `name` stands for the path in
 * messages. Used by the fuzz harnesses. */
rw_status model_load_memory(const char *name, const void *bytes, size_t size, int64_t max_bytes,
                            rw_model **out);

#endif
