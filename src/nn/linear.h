/* Linear layers y = act(W x + b), in four kinds that differ only in how W
 * is stored and multiplied, one file each:
 *   linear_csr.c       CSR (truly sparse: rewire's own kernels)
 *   linear_nm.c        N:M structured (N of every M inputs)
 *   linear_dense.c     dense row-major (OpenBLAS)
 *   linear_nm_train.c  N:M training from scratch over dense master weights
 * A kind's struct begins with `linear`, so the bias and the parameter
 * naming are shared here. Changing a layer's kind (pruning to CSR,
 * converting to N:M) builds a new layer that takes over the bias and
 * replaces the old one in its model. */
#ifndef RW_NN_LINEAR_H
#define RW_NN_LINEAR_H

#include "core/csr.h"
#include "core/nm.h"
#include "nn/layer.h"

typedef struct {
    layer base;
    float *bias;  /* [out], or NULL for a layer without one (GPT-style) */
    int has_bias; /* 1: bias is (or, in a skeleton, will be) there */
    int bias_decays; /* weight decay applies to the bias (1: the MLP's way) */
} linear;

/* The linear layer behind ly, or NULL if ly is of another family. */
linear *linear_of(layer *ly);
const linear *linear_of_const(const layer *ly);

/* Fills the base of a new linear layer: name, sizes, activation, and the
 * chain's tensors (layer l reads tensor l, writes tensor l + 1). */
void linear_init(linear *lin, const layer_ops *ops, const char *name, int in, int out,
                 rw_activation act, float slope, int index);

/* Copies what a layer that replaces `from` inherits: name, sizes, graph
 * position, activation; the new layer takes over the bias (from's is
 * then NULL). */
void linear_inherit(linear *to, const layer_ops *ops, linear *from);

/* The layer's records after the weight's: its bias's, if it has one.
 * Returns how many (0 or 1). */
int linear_bias_params(linear *lin, param *out);

/* The bias gradient in a pass (NULL without a bias). */
static inline float *linear_bias_grad(const linear *lin, const layer_io *io)
{
    return lin->has_bias ? io->grad[1] : NULL;
}

/* What every linear kind adds to its metadata entry: "bias": false when it
 * has none (an entry without the key has one, as version 1 files do). */
void linear_describe(const layer *ly, json_t *entry);

/* The weight's record, with the names, shape and tensors filled from the
 * layer; the kind sets storage and arrays. */
param linear_weight_param(const linear *lin, const char *values_tensor);

/* Bias gradient of rows [r0, r1): the sum of each row of dz [out][bp]. */
void linear_bias_grad_rows(const float *dz, float *gb, int bp, int r0, int r1);

/* Reads and checks `name.bias` of a file into a new array (nothing for a
 * layer without a bias). */
rw_status linear_load_bias(linear *lin, const st_file *f, const char *path);
rw_status linear_save_bias(const linear *lin, st_writer *w);

/* Finds a tensor and checks its dtype and 1-D or 2-D shape (d0 < 0: any
 * length). */
rw_status linear_want_tensor(const st_file *f, const char *path, const char *name,
                             st_dtype dtype, int ndim, int64_t d0, int64_t d1,
                             const st_tensor **out);

/* 1 if `name` is "<layer name>.<field>" for one of the NULL-terminated fields. */
int linear_tensor_is(const linear *lin, const char *name, const char *const *fields);

/* The kinds' constructors. Each takes ownership of the arrays it is given
 * (also on failure). */
layer *linear_csr_new(const char *name, int in, int out, rw_activation act, float slope,
                      int index, csr_matrix *w, float *bias);
layer *linear_dense_new(const char *name, int in, int out, rw_activation act, float slope,
                        int index, float *w, float *bias);

/* Replaces layer l of m by a CSR layer holding w (taken, transposed view
 * built here), keeping its bias, name and activation. */
rw_status linear_replace_csr(rw_model *m, int l, csr_matrix *w);

/* Replaces layer l of m by an N:M layer keeping the n largest magnitudes
 * of every m consecutive inputs of its current weights. */
rw_status linear_replace_nm(rw_model *m, int l, int n, int mm);

/* Replaces layer l of m by a layer of the same kind (CSR or dense) that
 * reads only inputs keep[0..k) (increasing) of the old one, renumbered
 * 0..k-1: its connections from every other input are dropped. N:M layers
 * (groups of consecutive inputs) are refused with RW_ERR_INVALID_ARGUMENT. */
rw_status linear_keep_inputs(rw_model *m, int l, const int32_t *keep, int k);

/* The kinds, for the model loader's table (nn/model_file.c). */
extern const layer_ops linear_csr_ops, linear_nm_ops, linear_dense_ops, linear_nm_train_ops;
extern const layer_kind linear_csr_kind, linear_nm_kind, linear_dense_kind;

/* The base of a linear layer from its metadata, for the kinds' from_meta
 * (reads "bias"); RW_ERR_FORMAT for a malformed field. */
rw_status linear_from_meta(linear *lin, const layer_ops *ops, const json_t *entry,
                           const layer_meta *m, const char *path);

/* The dense and N:M matrix-vector passes of one sample (bp = 1), over
 * row ranges shared among the threads; the N:M-trained kind runs its
 * current weights through them. */
int linear_dense_vector(const float *w, const float *bias, const layer *ly, const layer_io *io);
int linear_nm_vector(const nm_matrix *w, const float *bias, const layer *ly, const layer_io *io);

/* A new N:M layer replacing `from` (taking its bias) with the n largest
 * magnitudes of every mm consecutive inputs of dense [out][in]; NULL with
 * the message set on failure (from is then unchanged). */
layer *linear_nm_from_dense(linear *from, const float *dense, int n, int mm);

/* Takes a dense layer's weights (the layer keeps NULL), for N:M
 * training, which makes them its master weights. */
float *linear_dense_take_weights(layer *ly);

/* A new N:M layer replacing `from`, taking its bias and w. */
layer *linear_nm_take(linear *from, nm_matrix *w);

/* Model bytes of a layer of each kind, from its sizes alone (memory
 * estimates before anything is allocated). */
int64_t linear_csr_bytes_for(int64_t in, int64_t out, int64_t nnz);
int64_t linear_dense_bytes_for(int64_t in, int64_t out);

#endif
