/* The model's input stage: which of a sample's features the network reads
 * and how each is standardised before the first layer. It fills tensor 0
 * of a pass while a batch is moved into the [feature][batch] layout, so it
 * costs no pass of its own, and it is no layer: the input needs no
 * gradient, and the first linear layer stays layer 0 of the model
 * (rw_model_layer_fan, files and logs name it as before).
 *
 *   global  x' = (x - mean) / std, one mean and std for every feature (the
 *           only form before per-feature statistics; a file without the
 *           "input" metadata has it);
 *   feature x'[j] = (x[f] - mean[j]) / std[j] for the j-th kept feature f,
 *           0 for a constant feature (std 0);
 * and either form may keep only some features (input selection): tensor 0
 * then holds `kept` rows, index[j] the sample's feature each reads.
 *
 * In a model file (nn/model_file.c) the global pair stays where it always
 * was (metadata input_mean, input_std); the rest is written only when
 * used, so files of the global form without selection are byte for byte
 * what they were:
 *   metadata "input" = {"version": 1, "normalize": "global"|"feature",
 *                       "features": N, "kept": K}
 *   tensors  "input.mean", "input.std"  F32 [K]  feature form
 *            "input.index"              I32 [K]  K < N: increasing, in [0, N) */
#ifndef RW_NN_INPUT_STAGE_H
#define RW_NN_INPUT_STAGE_H

#include <stdint.h>

#include "io/safetensors.h"
#include "rewire.h"

typedef struct {
    float mean, std;      /* the global form (also kept, unused, in the feature form) */
    int feature;          /* 1: the per-feature form */
    int kept;             /* rows of tensor 0, when index is set or the form is per-feature */
    int32_t *index;       /* [kept] the features read, increasing; NULL: all of them */
    float *fmean, *fstd;  /* [rows] feature form: per row of tensor 0 (std 0: constant) */
    float *shift, *scale; /* [rows] feature form: x' = (x - shift) * scale */
} input_stage;

/* The global form, mean 0, std 1, every feature read. */
void input_stage_init(input_stage *s);
void input_stage_free(input_stage *s);

/* dst becomes a copy of src (dst freed first). RW_ERR_NO_MEMORY. */
rw_status input_stage_copy(input_stage *dst, const input_stage *src);

/* Rows of tensor 0 for samples of `features` features. */
static inline int input_stage_rows(const input_stage *s, int features)
{
    return s->index ? s->kept : features;
}

/* Sets the per-feature form from mean[features], std[features] (copied):
 * finite means, finite stds >= 0. Keeps the global pair. */
rw_status input_stage_set_feature(input_stage *s, int features, const float *mean, const float *std);

/* Rows [r0, r1) of tensor 0, a [rows][bp], from n samples of x
 * [samples][features] (sample b is x[index[b]], or b when index is NULL);
 * columns n .. bp - 1 are zero. The global form without selection is the
 * kernel's load_batch itself, byte for byte. */
void input_stage_load_rows(const input_stage *s, const float *x, int features, const int *index,
                           int n, float *a, int bp, int r0, int r1);

/* As input_stage_load_rows from samples of bytes, each read as the float
 * byte / 255 (data/dataset.h): the same floats, bit for bit, as
 * input_stage_load_rows gives from those floats. */
void input_stage_load_byte_rows(const input_stage *s, const uint8_t *x, int features,
                                const int *index, int n, float *a, int bp, int r0, int r1);

/* Tensor 0 of one sample x [features]: in [rows]. The same arithmetic as
 * a batch, so the same bytes. */
void input_stage_load_one(const input_stage *s, const float *x, int features, float *in);

/* Keeps only rows keep[0..k) of tensor 0 (increasing indices into the
 * rows it has now): the sample's features they read become the index.
 * RW_ERR_NO_MEMORY. */
rw_status input_stage_select(input_stage *s, int features, const int32_t *keep, int k);

/* Writes the "input" metadata and tensors (nothing for the global form
 * without selection; the global pair is the model file's). */
rw_status input_stage_save(const input_stage *s, int features, st_writer *w, const char *path);

/* Reads what input_stage_save wrote (the global pair already in s):
 * *features is the sample width the metadata gives (unchanged without
 * it), to be checked against the first layer's input by the caller. Each
 * malformed field is RW_ERR_FORMAT naming the file and the field. */
rw_status input_stage_load(input_stage *s, const st_file *f, const char *path, int *features);

/* 1 if the file's tensor `name` is the input stage's. */
int input_stage_owns_tensor(const char *name);

#endif
