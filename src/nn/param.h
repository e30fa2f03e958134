/* The named parameter list: every layer reports its parameters as records,
 * and everything that treats parameters alike — the optimizer, gradient
 * clipping, dynamic sparse training, pruning, checkpoints, model files, the
 * memory estimate, `rewire info` — loops over the list instead of knowing
 * layer kinds. A record describes the parameter; the arrays that run
 * parallel to its values (gradient, optimizer moments) belong to whoever
 * trains it and are indexed like the list.
 *
 * Records point into their layer, so they stay valid while the layer
 * exists: a topology update changes a CSR matrix's arrays, not where the
 * matrix lives. A layer that changes kind (pruned to CSR, converted to
 * N:M) is a new layer, and the model's list is rebuilt. */
#ifndef RW_NN_PARAM_H
#define RW_NN_PARAM_H

#include <stdint.h>

#include "core/csr.h"
#include "core/nm.h"

#define PARAM_NAME_CAP 96

/* How a parameter's values are stored. Only this module and the layer
 * files look at it; the rest asks the functions below. */
typedef enum {
    PARAM_DENSE = 0, /* values [rows][cols] row-major (a vector: cols = 1) */
    PARAM_CSR,       /* csr: the stored entries of a rows × cols matrix */
    PARAM_NM         /* nm: N of every M consecutive inputs of each row */
} param_storage;

typedef struct {
    char name[PARAM_NAME_CAP];   /* "fc1.weight", "blocks.0.attn.qkv.weight" */
    char tensor[PARAM_NAME_CAP]; /* what checkpoints call it ("opt.<tensor>.m1"):
                                    "fc1.values" (CSR), "fc1.weight" (dense,
                                    N:M), "fc1.bias" */
    char layer_name[PARAM_NAME_CAP]; /* its layer: "fc1" */
    int layer;                   /* index of that layer in the model */
    int rows, cols;              /* the dense shape; vectors have cols = 1 */
    param_storage storage;
    float **values;              /* by address: topology changes replace the array */
    csr_matrix *csr;             /* PARAM_CSR */
    nm_matrix *nm;               /* PARAM_NM */
    int is_weight;               /* a weight matrix: counted by sparsity, changed by
                                    dynamic sparse training and pruning */
    int decays;                  /* weight decay applies to it */
    /* Weights: the tensors (indices into the workspace) whose product
     * dy · xᵀ is the dense gradient, and the output y = act(W x + b) that
     * Hebbian growth correlates with x. */
    int x_tensor, y_tensor;
} param;

/* Values stored (nnz, N:M slots, rows · cols). */
int64_t param_count(const param *p);

/* The record of a dense parameter `layer`.`what` (its name and its tensor
 * in files and checkpoints alike), rows × cols values at *values, no
 * product tensors; every layer's vectors and tables are made by it. */
param param_dense(const char *layer, const char *what, int rows, int cols, float **values,
                  int decays);

/* The values array now. */
static inline float *param_values(const param *p) { return *p->values; }

/* 1 for a CSR parameter: the ones whose pattern can change. */
static inline int param_is_sparse(const param *p) { return p->storage == PARAM_CSR; }

/* Dense shape rows · cols. */
static inline int64_t param_dense_count(const param *p) { return (int64_t)p->rows * p->cols; }

/* 1 if a and b store their values alike, entry for entry (storage, shape
 * and count), so that arrays parallel to one fit the other. */
int param_same_layout(const param *a, const param *b);

/* Connections per output row (fan_in, rows entries) and per input column
 * (fan_out, cols entries) of a weight; either may be NULL. */
void param_fan(const param *p, int32_t *fan_in, int32_t *fan_out);

/* The sum of |w| over each input column's stored entries (mass, cols
 * entries), in double, stored as float. */
void param_column_mass(const param *p, float *mass);

/* The parameter's stored entries as a new CSR matrix (a dense one lists
 * all rows · cols). RW_ERR_INVALID_ARGUMENT beyond 2^31 - 1 entries. */
rw_status param_to_csr(const param *p, csr_matrix *out);

/* The values as a dense row-major [rows][cols] array (zeros elsewhere). */
void param_to_dense(const param *p, float *out);

/* A 64-bit hash (FNV-1a) of the parameter's pattern: storage, shape and
 * stored positions; with_values adds the values' bits. Equal patterns hash
 * equal, so processes compare patterns by comparing hashes. */
uint64_t param_hash(const param *p, int with_values);

/* The public view of p (rw_model_param): its own arrays, no copy. */
void param_view(const param *p, rw_param_view *out);

#endif
