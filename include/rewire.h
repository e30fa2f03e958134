/* rewire — truly sparse neural networks in C.
 *
 * The whole public API. Every fallible call returns an rw_status; on failure
 * a human-readable message naming the input and what was expected is left
 * behind rw_last_error() (per thread). Handles are opaque; each *_create /
 * *_load has a matching *_free that accepts NULL. The library never prints
 * and never exits.
 */
#ifndef REWIRE_H
#define REWIRE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RW_VERSION "0.1.0"

/* ---- Errors ------------------------------------------------------------ */

typedef enum {
    RW_OK = 0,
    RW_ERR_INVALID_ARGUMENT, /* a caller-supplied value is out of range */
    RW_ERR_NO_MEMORY,        /* an allocation failed */
    RW_ERR_IO,               /* a file could not be opened, read or written */
    RW_ERR_FORMAT,           /* a file's contents are malformed or inconsistent */
    RW_ERR_DIVERGED          /* training produced a NaN or Inf loss */
} rw_status;

/* The message of the last failed call on this thread ("" if none). The
 * pointer stays valid until the next rewire call on the same thread. */
const char *rw_last_error(void);

/* A short constant name for a status ("ok", "invalid argument", ...). */
const char *rw_status_string(rw_status status);

/* Number of OpenMP threads used by every kernel (default: OpenMP's own
 * default). Results are bit-identical for any thread count. */
void rw_set_num_threads(int threads);
int rw_get_num_threads(void);

/* Name of the kernel family chosen at start-up: "avx2" or "scalar". Setting
 * the environment variable REWIRE_KERNELS=scalar forces the reference. */
const char *rw_kernel_isa(void);

/* ---- Models ------------------------------------------------------------ */

typedef struct rw_model rw_model;

typedef enum {
    RW_ACT_RELU = 0,
    RW_ACT_LEAKY_RELU, /* slope rw_model_config.leaky_slope for x < 0 */
    RW_ACT_TANH,
    RW_ACT_GELU, /* tanh approximation, as torch's approximate="tanh" */
    RW_ACT_NONE
} rw_activation;

/* How an overall sparsity target is shared among layers. */
typedef enum {
    RW_DIST_UNIFORM = 0, /* every sparse layer gets the same density */
    RW_DIST_ER,  /* Erdős–Rényi (SET): density ∝ (in + out) / (in · out) */
    RW_DIST_ERK  /* Erdős–Rényi-Kernel (RigL); for fully connected layers the
                    same scale as ER, with densities capped at 1 and the rest
                    re-shared */
} rw_distribution;

typedef struct {
    const int *sizes;  /* sizes[0] = inputs, sizes[n_layers] = classes */
    int n_layers;      /* number of weight layers (>= 1) */
    double sparsity;   /* overall fraction of zero weights in [0, 1) */
    rw_distribution distribution;
    const double *layer_sparsity; /* optional [n_layers]: overrides sparsity
                                     and distribution when non-NULL */
    int dense_first;   /* keep the first layer dense */
    int dense_last;    /* keep the last layer dense */
    rw_activation activation; /* of every hidden layer */
    float leaky_slope; /* for RW_ACT_LEAKY_RELU (0 means 0.01) */
    uint64_t seed;     /* topology and weight initialisation */
} rw_model_config;

/* A config with defaults: ERK, ReLU, no dense layers, sparsity 0. */
rw_model_config rw_model_config_default(void);

/* Builds a model; weights are drawn uniformly with bound 1/sqrt(fan-in),
 * where fan-in is a row's stored inputs (so sparse rows are not too small).
 * Layers are stored dense (CBLAS) only when asked: dense_first, dense_last,
 * an overall sparsity of 0, or a layer_sparsity of 0. Every other layer is
 * CSR, even one the distribution fills completely, so its results do not
 * depend on the thread count (OpenBLAS's can). Caller frees. */
rw_status rw_model_create(const rw_model_config *config, rw_model **out);
void rw_model_free(rw_model *model);

int rw_model_inputs(const rw_model *model);
int rw_model_classes(const rw_model *model);
int rw_model_layer_count(const rw_model *model);

typedef struct {
    int in, out;
    int sparse;          /* 1: CSR storage */
    int nm_n, nm_m;      /* N:M storage: N of every M inputs (0, 0 otherwise);
                            a layer is dense when neither sparse nor N:M */
    rw_activation activation;
    int64_t nonzeros;    /* stored weights (in·out for dense layers) */
    double sparsity;     /* 1 - nonzeros / (in·out) */
    int64_t bytes;       /* bytes stored for weights, indices and bias */
    int64_t dense_bytes; /* bytes the same layer would take dense */
} rw_layer_info;

rw_status rw_model_layer_info(const rw_model *model, int layer, rw_layer_info *out);

/* Converts the weights of layer `layer` (or of every layer whose input size
 * is a multiple of m, when layer is -1) to N:M storage, keeping the n
 * largest-magnitude weights of each group of m consecutive inputs
 * ("Learning N:M Fine-grained Structured Sparse Neural Networks From
 * Scratch", Zhou et al. 2021). Fails, changing nothing, if a named layer's
 * input size is not a multiple of m or n, m are out of range (1 <= n <= m <= 64). */
rw_status rw_model_to_nm(rw_model *model, int layer, int n, int m);

/* Input normalisation applied before the first layer: x' = (x - mean) / std,
 * where x is a raw feature in [0, 1]. Stored in the model file. */
void rw_model_set_normalization(rw_model *model, float mean, float std);
void rw_model_get_normalization(const rw_model *model, float *mean, float *std);

/* Saves to a safetensors file: written to PATH.tmp, fsynced, then renamed,
 * so a crash never leaves a half-written file at PATH. */
rw_status rw_model_save(const rw_model *model, const char *path);

/* Loads and validates every field of a safetensors model file. */
rw_status rw_model_load(const char *path, rw_model **out);

/* ---- Datasets ---------------------------------------------------------- */

typedef struct rw_dataset rw_dataset;

/* Loads an IDX image file and an IDX label file (gzipped or not). Pixels are
 * scaled to [0, 1]. */
rw_status rw_dataset_load_idx(const char *images_path, const char *labels_path,
                              rw_dataset **out);

/* Loads the train or test split from a folder holding the standard names
 * (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
 * t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]). The name
 * "fashion-mnist" means Debian's dataset-fashion-mnist folder. */
rw_status rw_dataset_load(const char *dir_or_name, int test_split, rw_dataset **out);

/* Copies n samples of f features (values in [0, 1]) with labels < classes. */
rw_status rw_dataset_from_memory(const float *features, const uint8_t *labels,
                                 int n, int f, int classes, rw_dataset **out);

/* Splits off the last `count` samples of a seeded permutation into *val and
 * keeps the rest in *train. Both are new datasets; src is unchanged. */
rw_status rw_dataset_split(const rw_dataset *src, int count, uint64_t seed,
                           rw_dataset **train, rw_dataset **val);

/* A new dataset holding the first n samples (n is clamped to the size). */
rw_status rw_dataset_head(const rw_dataset *src, int n, rw_dataset **out);

int rw_dataset_count(const rw_dataset *data);
int rw_dataset_features(const rw_dataset *data);
int rw_dataset_classes(const rw_dataset *data);
/* Mean and standard deviation of all features, for rw_model_set_normalization. */
void rw_dataset_stats(const rw_dataset *data, float *mean, float *std);
void rw_dataset_free(rw_dataset *data);

/* ---- Training ---------------------------------------------------------- */

typedef enum { RW_OPT_SGD = 0, RW_OPT_ADAMW } rw_optimizer;
typedef enum { RW_SCHED_CONSTANT = 0, RW_SCHED_STEP, RW_SCHED_COSINE } rw_schedule;

typedef struct {
    rw_optimizer optimizer;
    float lr;
    float momentum;     /* SGD */
    int nesterov;       /* SGD */
    float beta1, beta2, eps; /* AdamW */
    float weight_decay; /* SGD: L2 added to the gradient; AdamW: decoupled */
    rw_schedule schedule;
    int warmup_epochs;  /* linear warm-up before the schedule (cosine/step) */
    int step_every;     /* RW_SCHED_STEP: multiply by step_gamma every N epochs */
    float step_gamma;
    float clip_norm;    /* clip the global gradient norm to this (0: off) */
    int batch;
    int epochs;         /* total, used by schedules */
    uint64_t seed;      /* data order */
} rw_train_config;

/* Defaults: SGD, lr 0.05, momentum 0.9, batch 128, cosine, 10 epochs. */
rw_train_config rw_train_config_default(void);

typedef struct rw_trainer rw_trainer;

/* The trainer keeps a pointer to the model (which must outlive it) and owns
 * its gradients, optimizer state and activation buffers. */
rw_status rw_trainer_create(rw_model *model, const rw_train_config *config,
                            rw_trainer **out);
void rw_trainer_free(rw_trainer *trainer);

typedef struct {
    int epoch;          /* 0-based epoch in progress */
    int64_t step;       /* optimizer steps done so far, over the whole run */
    int64_t samples;    /* samples seen in this epoch */
    int64_t epoch_samples; /* samples in the full epoch */
    double loss;        /* mean training loss over this epoch so far */
    double seconds;     /* wall time in this epoch so far */
} rw_progress;

/* Called after every step of an epoch, from one of the library's threads
 * (never two calls at once); return nonzero to stop early. */
typedef int (*rw_progress_fn)(const rw_progress *progress, void *user);

typedef struct {
    double loss;        /* mean training loss over the epoch */
    double seconds;     /* wall time of the epoch (training steps only) */
    double samples_per_second;
    int64_t step;       /* steps done so far over the whole run */
    float lr;           /* learning rate of the last step */
} rw_epoch_stats;

/* Runs one epoch over `train` in a seeded shuffled order (the last partial
 * batch is used). Returns RW_ERR_DIVERGED, naming the step and layer, if a
 * loss or gradient becomes NaN or Inf. */
rw_status rw_trainer_epoch(rw_trainer *trainer, const rw_dataset *train,
                           rw_progress_fn progress, void *user, rw_epoch_stats *stats);

/* ---- Evaluation and prediction ----------------------------------------- */

#define RW_MAX_CLASSES 256

typedef struct {
    double accuracy;    /* fraction in [0, 1] */
    double loss;        /* mean cross-entropy */
    int64_t count;
    int classes;
    double class_accuracy[RW_MAX_CLASSES];
    int64_t class_count[RW_MAX_CLASSES];
} rw_eval_result;

rw_status rw_evaluate(const rw_model *model, const rw_dataset *data, rw_eval_result *out);

/* Class probabilities of n samples. x is [n][inputs] with raw features in
 * [0, 1] (normalisation is applied inside); probs is [n][classes]. Allocates
 * its buffers on each call; for repeated calls use an rw_predictor. */
rw_status rw_predict(const rw_model *model, const float *x, int n, float *probs);

/* ---- Pruning ----------------------------------------------------------- */

/* One-shot pruning of a trained model. */
typedef enum {
    RW_PRUNE_MAGNITUDE = 0, /* score |w| */
    RW_PRUNE_WANDA /* score |w| · ||x_in||, the input's norm over calibration samples ("A Simple
                      and Effective Pruning Approach for Large Language Models", Sun et al. 2023) */
} rw_prune_criterion;

typedef enum {
    RW_PRUNE_PER_LAYER = 0, /* each layer keeps the same fraction (Wanda: each output row) */
    RW_PRUNE_GLOBAL         /* one magnitude threshold over all layers */
} rw_prune_scope;

typedef struct {
    double sparsity;   /* target fraction of zero weights, of in·out per layer, in [0, 1) */
    rw_prune_criterion criterion;
    rw_prune_scope scope;
    const rw_dataset *calibration; /* Wanda: samples whose activations give the norms */
    int calibration_count;         /* Wanda: how many of them (0: all) */
} rw_prune_config;

/* Keeps, per layer (or row, or over the whole model), the weights of
 * largest score and stores every pruned layer as CSR; weights already
 * absent stay absent, so a layer sparser than the target is unchanged.
 * Wanda compares within each output row, as in the paper, and so rejects
 * RW_PRUNE_GLOBAL. */
rw_status rw_model_prune(rw_model *model, const rw_prune_config *config);

/* A prediction context: buffers for batches of up to max_batch samples and
 * for single samples, allocated once, so that rw_predictor_run allocates
 * nothing. A single sample takes its own path (sparse matrix times vector),
 * not a padded batch, so its probabilities can differ from the same sample's
 * in a batch in the last bits (another summation order). The model must
 * outlive the predictor; one predictor serves one thread at a time. */
typedef struct rw_predictor rw_predictor;
rw_status rw_predictor_create(const rw_model *model, int max_batch, rw_predictor **out);
/* Like rw_predict, in batches of at most max_batch. */
rw_status rw_predictor_run(rw_predictor *predictor, const float *x, int n, float *probs);
void rw_predictor_free(rw_predictor *predictor);

/* ---- Benchmarks -------------------------------------------------------- *
 * Programs, not tests: each measures rewire's sparse path beside the dense
 * one in the same run, on the same shapes and threads, so that ratios stay
 * meaningful on a busy machine. `rewire bench` prints these. */

typedef struct {
    int rows, cols;         /* the layer, out x in (1000 x 1000) */
    const double *densities; /* stored fraction of the weights, each in (0, 1] */
    int n_densities;
    const int *batches;     /* each >= 1 */
    int n_batches;
    int threads;            /* 0: the current setting */
    int repeats;            /* interleaved rounds; medians are reported (7) */
    double min_seconds;     /* least time of one measurement (0.02) */
    uint64_t seed;
} rw_bench_kernels_config;

/* rows 1000, cols 1000, no densities or batches, repeats 7, 0.02 s, seed 1. */
rw_bench_kernels_config rw_bench_kernels_config_default(void);

typedef struct {
    const char *op;         /* "spmm" forward Y = W X; "spmm_t" backward dX = W^T dY;
                               "sddmm" weight gradient dW = (dY X^T) on the pattern;
                               "spmv" forward of a single sample (batch 1 only) */
    int rows, cols, batch, threads;
    double density;
    int64_t nonzeros;
    double seconds;         /* per call, median over the rounds */
    double best_seconds;    /* per call, fastest round */
    double gflops;          /* useful GFLOP/s: 2 * nonzeros * batch / seconds */
    double sgemm_seconds;   /* OpenBLAS SGEMM on the equivalent dense product
                               (rows x cols x batch, same transposition), median */
    double sgemm_best_seconds;
    double sgemm_gflops;    /* 2 * rows * cols * batch / sgemm_seconds */
    double fraction;        /* median over rounds of this round's GFLOP/s over
                               the SGEMM's measured next to it */
    double best_fraction;   /* best GFLOP/s over SGEMM's best */
} rw_bench_kernel_row;

/* Called once per row; return nonzero to stop. */
typedef int (*rw_bench_kernel_fn)(const rw_bench_kernel_row *row, void *user);

/* For each density and batch: every kernel and its SGEMM, interleaved. The
 * sparse matrices are uniformly random; the thread setting is restored. */
rw_status rw_bench_kernels(const rw_bench_kernels_config *config, rw_bench_kernel_fn fn,
                           void *user);

typedef struct {
    const int *sizes;       /* sizes[0] inputs ... sizes[n_layers] classes */
    int n_layers;
    double sparsity;        /* overall; 0 is the dense path (OpenBLAS) */
    rw_distribution distribution;
    rw_activation activation;
    int batch;
    int threads;            /* 0: the current setting */
    int steps;              /* training: optimizer steps per measurement (50) */
    int repeats;            /* measurements; the median is reported (5) */
    double min_seconds;     /* inference: least time of one measurement (0.2) */
    rw_train_config train; /* optimizer settings (rw_train_config_default, constant lr) */
    uint64_t seed;
} rw_bench_net_config;

/* 784-1000-1000-1000-10 is not filled in: sizes must be set. ERK, ReLU,
 * batch 128, 50 steps, 5 repeats, 0.2 s, SGD with momentum 0.9, lr 0.01. */
rw_bench_net_config rw_bench_net_config_default(void);

typedef struct {
    double sparsity;        /* as built (overall) */
    int64_t nonzeros;       /* stored weights */
    int batch, threads, steps, repeats;
    double seconds;         /* training: per step; inference: per call of
                               `batch` samples; medians */
    double best_seconds;
    double samples_per_second;      /* from the median */
    double best_samples_per_second; /* from the best */
} rw_bench_net_row;

/* End-to-end training on synthetic data (uniform features, random labels):
 * rw_trainer_epoch over `steps` batches, after one warm-up epoch. */
rw_status rw_bench_training(const rw_bench_net_config *config, rw_bench_net_row *out);

/* Inference through an rw_predictor of `batch` samples per call (batch 1
 * is the single-sample path): latency per call and samples per second. */
rw_status rw_bench_inference(const rw_bench_net_config *config, rw_bench_net_row *out);

#ifdef __cplusplus
}
#endif
#endif
