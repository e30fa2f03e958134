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

/* Name of the kernel family chosen at first use: "avx512", "avx2" or
 * "scalar", the best the CPU and the OS support. The environment variable
 * REWIRE_KERNELS=scalar|avx2|avx512 asks for one; when the CPU cannot run
 * it, the best family below it that it can run is used (and named here),
 * so compare the two to tell (rw_kernel_get_info). */
const char *rw_kernel_isa(void);

/* What the kernel choice saw. Every string is static. */
typedef struct {
    const char *cpu;       /* the CPU's name (its CPUID brand string), "" if none */
    const char *features;  /* the instruction-set extensions the kernels use that
                              both the CPU and the OS support, space separated
                              ("avx2 fma avx512f ..."), or "none" */
    const char *runnable;  /* the kernel families this CPU runs, best last
                              ("scalar avx2 avx512") */
    const char *chosen;    /* rw_kernel_isa() */
    const char *requested; /* REWIRE_KERNELS, NULL when unset */
} rw_kernel_info;
void rw_kernel_get_info(rw_kernel_info *info);

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

/* The widest layer (inputs or outputs): activations are dense [width][batch]
 * buffers, so 2^24 units already take 64 MB per sample of a batch. Model
 * files declaring more are refused, as a few bytes could declare any width. */
#define RW_MAX_WIDTH (1 << 24)

typedef struct {
    const int *sizes;  /* sizes[0] = inputs, sizes[n_layers] = classes; each
                          in [1, RW_MAX_WIDTH] */
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
    int layer_norm;    /* 1: a LayerNorm (eps 1e-5, γ = 1, β = 0) after every hidden
                          layer's activation, named ln1, ln2, ...; the model then has
                          2 · n_layers - 1 layers (rw_model_layer_count) */
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
    char name[64];       /* "fc1": its tensors in files are "fc1.*" */
    char kind[32];       /* as model files name it: "sparse", "nm", "dense", "layer_norm" */
    int has_weights;     /* 1: a weight matrix of in·out (the layers sparsity counts);
                            0 for LayerNorm */
    int in, out;
    int sparse;          /* 1: CSR storage */
    int nm_n, nm_m;      /* N:M storage: N of every M inputs (0, 0 otherwise);
                            a layer is dense when neither sparse nor N:M */
    rw_activation activation;
    int64_t nonzeros;    /* stored weights (in·out for dense layers) */
    double sparsity;     /* 1 - nonzeros / (in·out) */
    int64_t bytes;       /* bytes stored for weights, indices and bias */
    int64_t dense_bytes; /* bytes the same layer would take dense */
    int64_t dense_weights; /* weights it would hold dense: in·out, or the sum over an
                              MoE layer's expert maps */
    int experts, top_k;  /* an MoE layer's (0, 0 otherwise) */
    int expert_hidden;   /* each expert's width */
    char gate[16];       /* "softmax" or "kmeans" */
} rw_layer_info;

rw_status rw_model_layer_info(const rw_model *model, int layer, rw_layer_info *out);

/* Overall fraction of zero weights: 1 - stored weights / (sum of in·out). */
double rw_model_sparsity(const rw_model *model);

/* Converts the weights of layer `layer` (or of every layer whose input size
 * is a multiple of m, when layer is -1) to N:M storage, keeping the n
 * largest-magnitude weights of each group of m consecutive inputs
 * ("Learning N:M Fine-grained Structured Sparse Neural Networks From
 * Scratch", Zhou et al. 2021). Fails, changing nothing, if a named layer's
 * input size is not a multiple of m or n, m are out of range (1 <= n <= m <= 64). */
rw_status rw_model_to_nm(rw_model *model, int layer, int n, int m);
/* N:M training from scratch. The chosen layers keep dense master weights
 * W (trained by the optimizer, whose state is over W); before every step
 * the mask is the n largest magnitudes of W in each group of m
 * consecutive inputs, and the forward and backward-data passes use the
 * N:M-compressed mask ⊙ W with the N:M kernels. The weight gradient is
 * the dense dY·Xᵀ, applied to all of W (straight-through): the method
 * needs it by its nature, so these runs cost a dense weight gradient.
 *   RW_NM_STE   plain straight-through estimator.
 *   RW_NM_SRSTE "Learning N:M Fine-grained Structured Sparse Neural Networks
 *               From Scratch", Zhou et al. 2021: the gradient of W gets
 *               srste_lambda · (1 − mask) ⊙ W added (sparse-refined STE).
 *   RW_NM_DECAY MDGF-Linear of "Progressive Gradient Flow for Robust N:M
 *               Sparsity Training in Transformers", Bambhaniya et al. 2024:
 *               the forward uses W ⊙ (mask + β(1 − mask)), β falling
 *               linearly from 1 at the first step to 0 at decay_end of the
 *               training steps; while β > 0 the forward is dense (own
 *               fixed-block products), from then on exactly N:M. */
typedef enum { RW_NM_STE = 0, RW_NM_SRSTE = 1, RW_NM_DECAY = 2 } rw_nm_method;

/* Which layers train N:M: every layer that produces hidden units (all but
 * the output layer), every layer, or the layers that are neither first
 * nor last (as the SR-STE paper keeps the first and last layers dense). */
typedef enum { RW_NM_HIDDEN = 0, RW_NM_ALL = 1, RW_NM_INNER = 2 } rw_nm_layers;

typedef struct {
    int n, m;              /* 1 <= n <= m <= 64; m divides each chosen layer's inputs */
    rw_nm_method method;
    rw_nm_layers layers;
    float srste_lambda;    /* SR-STE λ_W (default 2e-4, the paper's) */
    double decay_end;      /* decay: fraction of training where β reaches 0 (default 0.5) */
} rw_nm_train_config;

rw_nm_train_config rw_nm_train_config_default(void);

/* Turns the chosen layers of a dense model (rw_model_create with sparsity
 * 0) into N:M-trained layers, masks taken from the current weights.
 * Call before the first epoch; the trainer may be created before or after
 * (its state is over the dense W either way). Until rw_model_nm_train_end,
 * rw_model_save writes the dense master weights (kind "dense"). Fails, changing nothing, if
 * a chosen layer is not dense, its input size is not a multiple of m, or
 * the config is out of range. A checkpoint of the model's trainer holds
 * the N:M training state, and rw_trainer_load_checkpoint resumes it. */
rw_status rw_model_nm_train_begin(rw_model *model, const rw_nm_train_config *config);

/* Bytes rw_model_nm_train_begin adds to a model made from `model` (dense,
 * sparsity 0): per chosen layer the compressed copy and the last mask
 * (6 bytes per stored slot) and, for the decay method, W_eff (4 bytes per
 * weight). Add it to rw_estimate_memory's total. Fails on a config
 * rw_model_nm_train_begin would refuse for these sizes. */
rw_status rw_estimate_nm_train_memory(const rw_model_config *model,
                                      const rw_nm_train_config *config, int64_t *bytes);

/* 1 if layers of the model train N:M, the config that began it copied to
 * *config if not NULL (srste_lambda as the layers use it: 0 unless the
 * method is SR-STE); 0 if none does. */
int rw_model_nm_train_config(const rw_model *model, rw_nm_train_config *config);

/* Fraction of the mask entries of the N:M-trained layers that changed
 * since the previous call (or since rw_model_nm_train_begin): the SR-STE
 * paper's SAD, normalised by in·out. 0 when no layer trains N:M. */
double rw_model_nm_mask_change(rw_model *model);

/* The mask-decay factor β of the N:M-trained layers now (0 for STE and
 * SR-STE, and once the decay has ended). */
double rw_model_nm_decay_beta(const rw_model *model);

/* Ends N:M training: each N:M-trained layer keeps mask ⊙ W as N:M storage
 * (kind "nm" when saved) and drops W. A trainer made for the model must
 * not be used afterwards. */
void rw_model_nm_train_end(rw_model *model);

/* Connections per neuron of a layer: fan_in[o] (out entries) counts the
 * stored inputs of output o, fan_out[i] (in entries) the stored outputs of
 * input i. Either may be NULL. For the first layer of an image model,
 * fan_out is the connectivity map over pixels. */
rw_status rw_model_layer_fan(const rw_model *model, int layer, int32_t *fan_in,
                             int32_t *fan_out);

/* Input normalisation applied before the first layer: x' = (x - mean) / std,
 * where x is a raw feature in [0, 1]. Stored in the model file. */
void rw_model_set_normalization(rw_model *model, float mean, float std);
void rw_model_get_normalization(const rw_model *model, float *mean, float *std);

/* How inputs are standardised: one mean and std for every feature (the
 * default, rw_model_set_normalization) or one per feature. */
typedef enum { RW_NORMALIZE_GLOBAL = 0, RW_NORMALIZE_FEATURE = 1 } rw_normalize;

/* Per-feature normalisation: x'[f] = (x[f] - mean[f]) / std[f], and 0 for
 * a constant feature (std[f] = 0), so that it feeds the first layer
 * nothing. mean and std have rw_model_inputs entries (copied; take them
 * from rw_dataset_feature_stats of the training set). Stored in the model
 * file (metadata "input", version 1, tensors input.mean and input.std);
 * rw_model_set_normalization returns to the global form.
 * RW_ERR_INVALID_ARGUMENT for a NULL array, a non-finite value or a
 * negative std. */
rw_status rw_model_set_feature_normalization(rw_model *model, const float *mean, const float *std);

/* The form in use; mean and std (rw_model_inputs entries each, or NULL)
 * get every feature's (the global pair repeated in the global form; 0 and
 * 0 for a feature the model does not read, see rw_model_keep_inputs). */
rw_normalize rw_model_normalization(const rw_model *model, float *mean, float *std);

/* The inputs the model reads, ascending, into index (rw_model_inputs
 * entries at most; NULL to count only); returns how many:
 * rw_model_inputs unless inputs were removed (rw_model_keep_inputs, or
 * input-level dynamic sparse training: rw_dst_config.input_budget). */
int rw_model_kept_inputs(const rw_model *model, int32_t *index);

/* Removes every input but index[0..k) (ascending, each one the model
 * still reads): the first layer loses the connections from the others and
 * its columns are renumbered, so the model reads only those features
 * (rw_predict, rw_evaluate and the trainer still take rw_model_inputs
 * features per sample and gather the kept ones). Stored in the model file
 * (tensor input.index). RW_ERR_INVALID_ARGUMENT for a bad list, a
 * language model, or a first layer stored N:M or in N:M training. A
 * trainer made for the model must not be used afterwards. */
rw_status rw_model_keep_inputs(rw_model *model, const int32_t *index, int k);

/* How much the first layer uses each input (rw_model_inputs entries each,
 * either may be NULL): connections[i] its stored connections from input
 * i, mass[i] the sum of their |w| (for per-feature normalised inputs, of
 * unit variance, a measure of how much the input moves the first layer).
 * 0 for an input the model does not read. RW_ERR_INVALID_ARGUMENT for a
 * language model. */
rw_status rw_model_input_importance(const rw_model *model, int32_t *connections, float *mass);

/* Text the model keeps with it in its files (metadata "info.<key>"): a
 * language model's tokenizer, say. Keys are 1 to 63 letters, digits, '_'
 * or '.'; values less than 4096 bytes; at most 16 keys. rw_model_get_info
 * returns NULL for a key the model does not have; the pointer lives as
 * long as the model or the next set of that key. */
rw_status rw_model_set_info(rw_model *model, const char *key, const char *value);
const char *rw_model_get_info(const rw_model *model, const char *key);

/* Saves to a safetensors file: written to PATH.tmp, fsynced, then renamed,
 * so a crash never leaves a half-written file at PATH. */
rw_status rw_model_save(const rw_model *model, const char *path);

/* Loads and validates every field of a safetensors model file (or a
 * checkpoint's model). A file whose declared layers would need more memory
 * than is available (rw_available_memory) is refused with RW_ERR_NO_MEMORY
 * before they are allocated: a few hundred bytes can declare any width. */
rw_status rw_model_load(const char *path, rw_model **out);

/* ---- Parameters ---------------------------------------------------------- *
 * Every tensor a model trains, by name, with the arrays the model itself
 * holds (no copy): for bindings that share memory with the model (the
 * Python package's numpy views) and for programs that read or edit
 * weights in place. */

typedef enum {
    RW_STORAGE_DENSE = 0, /* values [rows][cols], row-major (a vector: cols = 1) */
    RW_STORAGE_CSR,       /* the stored entries of a rows × cols matrix, row by row */
    RW_STORAGE_NM         /* N of every M consecutive inputs of each row */
} rw_storage;

typedef struct {
    const char *name;       /* "fc1.weight", "fc1.bias", "blocks.0.attn.qkv.weight" */
    const char *layer;      /* its layer's name ("fc1") */
    int layer_index;        /* that layer's index (rw_model_layer_info) */
    int rows, cols;         /* the dense shape, out × in; a vector has cols = 1 */
    rw_storage storage;
    int is_weight;          /* a weight matrix: counted by sparsity, changed by dynamic
                               sparse training and pruning */
    int64_t count;          /* values stored */
    float *values;          /* [count]: dense row-major; CSR in row order; N:M
                               [rows][cols / nm_m][nm_n] */
    const int32_t *indptr;  /* CSR: [rows + 1], indptr[0] = 0, indptr[rows] = count */
    const int32_t *indices; /* CSR: [count] columns, strictly increasing within a row */
    const uint8_t *offsets; /* N:M: [count] each slot's input within its group: slot j of
                               group g of row o is input g · nm_m + offsets[...] */
    int nm_n, nm_m;         /* N:M: the pattern (0, 0 otherwise) */
} rw_param_view;

/* Number of parameters (weights, biases, LayerNorm's γ and β, ...). */
int rw_model_param_count(const rw_model *model);

/* Parameter i (0 <= i < rw_model_param_count) as the model holds it. The
 * pointers are the model's own arrays: values may be written (the next
 * pass uses them; keep them finite), indptr, indices and offsets must not
 * be (the kernels keep copies derived from them). Every pointer, names
 * included, stays valid until the model's topology changes (a topology
 * update of dynamic sparse training, pruning, rw_model_to_nm, the begin
 * and end of N:M training, a run from dense to sparse) or the model is
 * freed. RW_ERR_INVALID_ARGUMENT for i out of range. */
rw_status rw_model_param(rw_model *model, int i, rw_param_view *out);

/* ---- Language models ---------------------------------------------------- *
 * A GPT-style transformer over the same layers: token and position
 * embeddings, n_layer pre-LayerNorm blocks of causal multi-head attention
 * and a GELU MLP (4·n_embd), a final LayerNorm and an LM head tied to the
 * token embedding. Tokens of a batch of sequences are the batch dimension
 * of every linear map, so the block's four maps (attn.qkv, attn.proj,
 * mlp.up, mlp.down) run on the sparse kernels; embeddings and LayerNorms
 * stay dense. Layers are named embed, blocks.N.ln_1, blocks.N.attn.qkv,
 * blocks.N.attn, blocks.N.attn.proj, blocks.N.attn_residual, blocks.N.ln_2,
 * blocks.N.mlp.up, blocks.N.mlp.down, blocks.N.mlp_residual, ln_f, lm_head;
 * parameters blocks.N.attn.qkv.weight and the like. */

typedef struct {
    int vocab;          /* tokens: 256 for bytes, 50257 for GPT-2's BPE */
    int context;        /* the longest sequence (positions) */
    int n_layer, n_head, n_embd; /* n_head divides n_embd */
    int bias;           /* 1: linear maps and LayerNorms have biases (GPT-2);
                           0: none (nanoGPT's bias=False) */
    double sparsity;    /* of the block's linear maps together, in [0, 1); 0: dense */
    rw_distribution distribution; /* how it is shared among them (ERK) */
    uint64_t seed;
    double layer_norm_eps; /* every LayerNorm's ε, in [0, 1) (0 means 1e-5, GPT-2's
                              and nanoGPT's); kept as a float */
    const char *attention; /* the attention pattern (rw_model_set_attention's spec);
                              NULL: dense */
    /* Mixture of experts (src/nn/moe.c): with moe_experts > 0 the MLP of
     * every moe_every-th block (blocks moe_every - 1, 2 moe_every - 1, ...)
     * is replaced by a layer blocks.N.moe of moe_experts GELU MLPs of
     * moe_hidden (0: 4·n_embd / moe_top_k, the dense MLP's active FLOPs),
     * whose maps blocks.N.moe.eK.up and .down are CSR or dense like the
     * other maps and share the sparsity with them. */
    int moe_experts;    /* 0: dense MLPs; 1 to 32 */
    int moe_top_k;      /* experts per token, 1 or 2 (0 means 1) */
    int moe_gate;       /* RW_MOE_SOFTMAX or RW_MOE_KMEANS (top-1) */
    int moe_every;      /* 0 means 1: every block */
    int moe_hidden;
    double moe_capacity; /* capacity factor; 0: dropless */
    double moe_balance;  /* load-balancing loss coefficient (softmax) */
    double moe_zloss;    /* router z-loss coefficient (softmax) */
} rw_gpt_config;

enum { RW_MOE_SOFTMAX = 0, RW_MOE_KMEANS = 1 };

/* vocab 256, context 64, 4 layers, 4 heads, 128 wide, no biases, dense,
 * ERK, seed 1, LayerNorm ε 1e-5. */
rw_gpt_config rw_gpt_config_default(void);

/* Builds the model, initialised as nanoGPT does (rw_gpt_create in
 * src/models/gpt.c). Caller frees with rw_model_free. */
rw_status rw_gpt_create(const rw_gpt_config *config, rw_model **out);

/* GPT-2 checkpoints in Hugging Face's layout: a folder DIR with
 * config.json and model.safetensors holding transformers' GPT2Model
 * tensors (wte.weight, wpe.weight, h.N.ln_1.weight, h.N.attn.c_attn.weight,
 * ..., ln_f.bias; Conv1D weights stored [in][out]), as the Hub publishes
 * GPT-2 and its fine-tunes.
 *
 * rw_gpt2_import builds a dense GPT with biases (rw_gpt_create's graph:
 * context = n_positions, LayerNorm ε = layer_norm_epsilon) holding those
 * weights. Tensors may be F32, F16 or BF16 (widened exactly to floats)
 * and may carry a "transformer." prefix; the buffers h.N.attn.bias and
 * h.N.attn.masked_bias are ignored (as transformers does); lm_head.weight,
 * when present, must equal wte.weight (the head is tied). When DIR also
 * holds vocab.json and merges.txt, they must load as GPT-2's BPE of at
 * most vocab_size tokens and the model's info "tokenizer" becomes
 * "bpe:DIR"; otherwise a vocabulary of 256 gets "bytes". Refused with
 * RW_ERR_FORMAT and a message naming the file and the field or tensor:
 * what rewire's GPT cannot compute (activation_function "gelu", the exact
 * erf GELU; n_inner other than 4 n_embd; scale_attn_weights false,
 * scale_attn_by_inverse_layer_idx or add_cross_attention true;
 * tie_word_embeddings false without an lm_head.weight equal to wte), a
 * missing, unexpected, repeated (with and without the prefix), mis-shaped
 * (against config.json) or non-float tensor, a NaN or Inf weight (with
 * its index), and every malformed config.json or safetensors container.
 * RW_ERR_IO when a file cannot be read (saying so for sharded and
 * pytorch_model.bin checkpoints, which are not read). The whole
 * model.safetensors is read into memory; the model is allocated only once
 * every tensor's shape has been checked. Caller frees with rw_model_free. */
rw_status rw_gpt2_import(const char *dir, rw_model **out);

/* Writes `model` to DIR (created if missing; its parent must exist) as
 * config.json and model.safetensors (F32, no prefix, no lm_head.weight:
 * transformers ties it; metadata format "pt"), which rw_gpt2_import and
 * transformers' GPT2LMHeadModel.from_pretrained read. Sparse and N:M maps
 * are written densified; a model without biases (bias 0) gets zero
 * biases and LayerNorm β, which computes the same. Both files are written
 * in full under temporary names (*.new) and then renamed over the old
 * ones, so a failure leaves DIR as it was. The tokenizer files are not
 * copied. RW_ERR_INVALID_ARGUMENT, changing nothing, for a model that is
 * not rw_gpt_create's graph (the message names the first layer that
 * differs), one in the middle of N:M training, or one holding a NaN or
 * Inf weight; RW_ERR_IO when a file cannot be written. Takes memory for a
 * dense copy of the weights while writing. */
rw_status rw_gpt2_export(const rw_model *model, const char *dir);

/* Tokenizers: text to token ids and back. "bytes" has a vocabulary of 256
 * (a token per byte); GPT-2's byte-level BPE reads a folder's vocab.json
 * and merges.txt. decode(encode(x)) is x for any bytes. */
typedef struct rw_tokenizer rw_tokenizer;
rw_status rw_tokenizer_bytes(rw_tokenizer **out);
rw_status rw_tokenizer_bpe(const char *dir, rw_tokenizer **out);
/* Tokens of the vocabulary. */
int rw_tokenizer_vocab(const rw_tokenizer *t);
/* "bytes", or "bpe:DIR": what rw_tokenizer_open takes back. */
const char *rw_tokenizer_spec(const rw_tokenizer *t);
/* A tokenizer from its spec ("bytes" or "bpe:DIR"). */
rw_status rw_tokenizer_open(const char *spec, rw_tokenizer **out);
/* *ids gets a malloc'ed array of *count ids (free()). Not from two
 * threads at once on one tokenizer. */
rw_status rw_tokenizer_encode(rw_tokenizer *t, const void *text, size_t len, int32_t **ids,
                              size_t *count);
/* *text gets a malloc'ed, NUL-terminated buffer of *len bytes (free()). */
rw_status rw_tokenizer_decode(const rw_tokenizer *t, const int32_t *ids, size_t count, char **text,
                              size_t *len);
void rw_tokenizer_free(rw_tokenizer *t);

/* A text file, tokenized and split: the first (1 - val_fraction) of its
 * tokens for training, the rest for validation (as nanoGPT splits), each
 * at least context + 1 tokens. The tokenizer must outlive it. */
typedef struct rw_text rw_text;
rw_status rw_text_load(const char *path, rw_tokenizer *t, double val_fraction, int context,
                       rw_text **out);
/* The same from bytes in memory; `name` stands for a path in messages. */
rw_status rw_text_from_memory(const char *name, const void *bytes, size_t len, rw_tokenizer *t,
                              double val_fraction, int context, rw_text **out);
int64_t rw_text_tokens(const rw_text *t, int val);
void rw_text_free(rw_text *t);

typedef struct {
    double loss;          /* mean over the tokens, nats */
    int64_t tokens;       /* predicted */
    double bits_per_byte; /* the summed loss in bits over the bytes those tokens stand for */
} rw_lm_eval;

/* The loss of `model` over the validation split (val 1) or the training
 * split (0), in non-overlapping windows of `context` tokens (each token
 * predicted from the ones before it in its window), `batch` windows at a
 * time (0: 8). */
rw_status rw_lm_evaluate(const rw_model *model, const rw_text *text, int val, int context, int batch,
                         rw_lm_eval *out);

/* Attention patterns (src/nn/attn_*.c): every attention layer of `model`
 * attends as `spec` says: "dense", "window:W[,sink:S]" (the last W
 * positions and the first S), "block-topk:B,K" (its own block of B
 * positions and the K blocks whose mean key scores highest),
 * "hip:B,K" (K blocks found by a hierarchical descent), "sparsed:B,KEEP"
 * (blocks of B positions each head chose from dense attention on
 * calibration text, rw_lm_sparsed: only a model whose every attention
 * layer holds blocks chosen for this B and KEEP), "routing:C" (the
 * earlier keys of its own cluster of C, by centroids that training moves;
 * saved with the model), "dma:K" (the K earlier keys whose learned mask
 * from their values is largest; the mask's parameters join the model's).
 * Saved with the model. Call it before passes of the model begin (evaluation, generation,
 * a run): RW_ERR_INVALID_ARGUMENT for a bad spec or a model without
 * attention. */
rw_status rw_model_set_attention(rw_model *model, const char *spec);

/* RW_OK if `spec` names an attention pattern, else RW_ERR_INVALID_ARGUMENT
 * with a message saying what was expected. */
rw_status rw_attention_check(const char *spec);

/* The pattern of the model's first attention layer into buf (cap bytes);
 * 0 and "" when it has none. */
int rw_model_attention(const rw_model *model, char *buf, size_t cap);

/* One attention layer alone, for benchmarks and checks: `heads` heads of
 * head_dim over sequences of at most `context` positions, with pattern
 * `spec` (as above). Activations are feature-major: qkv
 * [3·heads·head_dim][T] (queries, keys, values), y and dy
 * [heads·head_dim][T]. forward then backward (the same T, the same
 * buffers alive) writes dqkv; decode runs position pos alone (qkv and y
 * of one column) after positions 0..pos-1 were decoded or given to
 * prefill. rw_attention_scores counts the score entries computed
 * (reset 1: from zero again); rw_attention_bytes the layer's buffers. */
typedef struct rw_attention rw_attention;
rw_status rw_attention_create(const char *spec, int heads, int head_dim, int context,
                              rw_attention **out);
rw_status rw_attention_forward(rw_attention *a, int T, const float *qkv, float *y);
rw_status rw_attention_backward(rw_attention *a, const float *dy, float *dqkv);
rw_status rw_attention_prefill(rw_attention *a, int T, const float *qkv);
rw_status rw_attention_decode(rw_attention *a, int pos, const float *qkv, float *y);
int64_t rw_attention_scores(rw_attention *a, int reset);
int64_t rw_attention_bytes(const rw_attention *a);
void rw_attention_free(rw_attention *a);
/* sparsed:B,KEEP: chooses each head's blocks from the dense attention of
 * one sequence qkv [3·heads·head_dim][T] (as forward reads it), replacing
 * any earlier choice; forward and decode refuse a sparsed layer before
 * this. *covered (may be NULL) gets the share of that attention's mass
 * the chosen blocks carry, averaged over the heads. RW_ERR_INVALID_ARGUMENT
 * for another pattern or T outside 1 .. context. */
rw_status rw_attention_calibrate(rw_attention *a, int T, const float *qkv, double *covered);

/* SparseD ("SparseD: Sparse Attention for Diffusion Language Models"):
 * runs `samples` windows of `context` tokens (0: the model's context)
 * drawn with `seed` from the calibration text's training split through
 * the trained model with dense attention, sums each head's attention
 * probabilities per (query block, key block) of B positions, and keeps
 * per head diagonals (the key block d blocks before the query's) and
 * columns (key block j from the start: attention sinks), greedily the one
 * carrying the most mass not yet covered, until they and the own block
 * carry KEEP of it.
 * Every attention layer then attends as spec ("sparsed:B,KEEP") says,
 * its blocks saved with the model, at any length up to the context and
 * with no further dense pass. RW_ERR_INVALID_ARGUMENT naming the argument
 * (a spec that is not sparsed, samples outside 1 .. 65536, a context
 * past the model's, a text too short or with a larger vocabulary, a model
 * without attention); the model is unchanged on any error. */
typedef struct {
    int layers, heads;    /* attention layers, heads of each */
    double covered;       /* calibration mass the kept blocks carry, mean over heads */
    double density;       /* score entries at the calibration length over causal dense's */
    double diagonals, columns; /* kept per head besides the own block, mean */
} rw_lm_sparsed_report;
rw_status rw_lm_sparsed(rw_model *model, const rw_text *calibration, const char *spec,
                        int samples, int context, uint64_t seed, rw_lm_sparsed_report *report);

/* Score entries the model's attention layers computed over those causal
 * dense attention computes, since the last reset (1 when none ran);
 * reset 1 starts a new count. */
double rw_model_attention_density(const rw_model *model, int reset);

/* Attention layers of the model (0 for none); *heads (may be NULL) gets
 * the first one's heads. */
int rw_model_attention_layers(const rw_model *model, int *heads);

/* What head `head` of attention layer `attn` (counted from 0) attends to
 * on one sequence under the model's pattern: runs tokens[0..n) (n from 1
 * to the context) through the model and writes p [n][n], p[t·n + s] the
 * probability query t gives key s, -1 where it computes no score (s > t,
 * or a key its pattern skips). RW_ERR_INVALID_ARGUMENT naming the
 * argument out of range. */
rw_status rw_model_attention_map(const rw_model *model, const int32_t *tokens, int n, int attn,
                                 int head, float *p);

/* The longest sequence a language model takes (its position embeddings),
 * or 0 for a model that is not one. */
int rw_model_context(const rw_model *model);

/* Continues `prompt` (n_prompt >= 1 tokens) by n_new tokens, one at a
 * time with a KV cache (batch 1, the single-sample path: the sparse maps
 * run as matrix-vector products): logits / temperature, the top_k most
 * likely (0: all), sampled with `seed`; temperature 0 takes the most
 * likely. Past the model's context it restarts from the last context / 2
 * tokens. out gets n_new tokens. */
rw_status rw_lm_generate(const rw_model *model, const int32_t *prompt, int n_prompt, int n_new,
                         float temperature, int top_k, uint64_t seed, int32_t *out);

/* Post-training pruning of a trained language model (rw_gpt_create's
 * graph: rewire's own or an imported GPT-2): the block maps (attn.qkv,
 * attn.proj, mlp.up, mlp.down) are pruned one block at a time, each
 * block's inputs computed from calibration windows through the blocks
 * already pruned (as the papers do), and stored as CSR layers, or N:M
 * layers for an N:M target, that run on the sparse kernels. Embeddings,
 * LayerNorms and the head stay dense. */
typedef enum {
    RW_LM_PRUNE_MAGNITUDE = 0,    /* |w|, per output row */
    RW_LM_PRUNE_MAGNITUDE_GLOBAL, /* |w|, one threshold over all the block maps */
    RW_LM_PRUNE_WANDA,     /* |w| · ‖x‖₂ per output row ("A Simple and Effective Pruning
                              Approach for Large Language Models", Sun et al. 2023) */
    RW_LM_PRUNE_SPARSEGPT, /* OBS reconstruction ("SparseGPT: Massive Language Models Can Be
                              Accurately Pruned in One-Shot", Frantar and Alistarh 2023) */
    RW_LM_PRUNE_DSNOT      /* Wanda's mask, then prune-and-grow swaps per row that lower the
                              reconstruction error, weights unchanged ("Dynamic Sparse No
                              Training: Training-Free Fine-tuning for Sparse LLMs", Zhang et
                              al. 2024); a map's error never rises above Wanda's */
} rw_lm_prune_method;

/* One map pruned, as rw_lm_prune reports it. */
typedef struct {
    const char *name;  /* "blocks.0.attn.qkv" (valid during the call) */
    int rows, cols;    /* out × in */
    int64_t kept;      /* weights stored now */
    double error;      /* ‖W X − Ŵ X‖² / ‖W X‖² over the calibration tokens (X the map's
                          input, W before and Ŵ after); NAN for the methods that collect no
                          X Xᵀ (magnitude, Wanda) */
    double seconds;    /* choosing and updating this map's weights */
} rw_lm_prune_map;

typedef void (*rw_lm_prune_fn)(const rw_lm_prune_map *map, void *user);

typedef struct {
    rw_lm_prune_method method;
    double sparsity;     /* unstructured: the fraction of every map's rows · cols removed
                            (rounded per row, per block of SparseGPT columns, or over all
                            maps for the global magnitude), in [0, 1) */
    int nm_n, nm_m;      /* nm_m > 0: N:M instead, nm_n of every nm_m inputs per row
                            (1 <= nm_n < nm_m <= 64, nm_m dividing n_embd); not with the
                            global magnitude */
    const rw_text *calibration; /* Wanda, SparseGPT, DSnoT: windows are drawn from its training split
                                   (magnitude reads none; may be NULL) */
    int calib_samples;   /* windows (>= 1; 128 by default) */
    int calib_context;   /* tokens per window, 1 to the model's context (0: 256 or the model's
                            context if shorter) */
    uint64_t seed;       /* which windows */
    int block;           /* SparseGPT's lazy column block (0: 128, the paper's) */
    int cycles;          /* DSnoT's most swaps per row (0: 50, the paper's) */
    const double *map_sparsity; /* NULL: every map at `sparsity`; otherwise one sparsity per
                                   block map, [rw_lm_prune_map_count], in the order of
                                   rw_lm_prune_map_name, each in [0, 1) (unstructured only, not
                                   with the global magnitude) */
    int dense_inputs;    /* 1: each block's calibration inputs come through the dense blocks
                            before it instead of the pruned ones (EvoPress's database is built
                            so, for a map's pruned weights not to depend on the other maps') */
    rw_lm_prune_fn on_map; /* after each map (NULL: none) */
    void *user;
} rw_lm_prune_config;

/* Magnitude per row, 50%, 128 windows, context 0, seed 1, block 0, cycles 0. */
rw_lm_prune_config rw_lm_prune_config_default(void);

/* Prunes `model` in place. RW_ERR_INVALID_ARGUMENT, naming the field, for
 * a config out of range, a missing calibration text, a tokenizer the
 * model does not predict, a model that is not rw_gpt_create's graph or is
 * in the middle of N:M training; RW_ERR_NO_MEMORY. On an error after the
 * first map was replaced the model holds the maps pruned so far (still a
 * valid model). */
rw_status rw_lm_prune(rw_model *model, const rw_lm_prune_config *config);

/* The block maps rw_lm_prune prunes: 4 per block (0 for a model that is
 * not rw_gpt_create's graph), and map i's name ("blocks.0.attn.qkv",
 * "blocks.0.attn.proj", "blocks.0.mlp.up", "blocks.0.mlp.down",
 * "blocks.1.attn.qkv", ...; NULL out of range; valid while the model is). */
int rw_lm_prune_map_count(const rw_model *model);
const char *rw_lm_prune_map_name(const rw_model *model, int i);

/* EvoPress ("EvoPress: Towards Optimal Dynamic Model Compression via
 * Evolutionary Search", Sieberling et al. 2024): per-map sparsities whose
 * average, weighted by the maps' sizes, is exactly config->sparsity. A
 * database holds every map pruned (by config's method, inputs from the
 * dense model) at each level: level j of a map of rows · cols weights is
 * the target plus j · step · S / (rows · cols), S the smallest map's size,
 * so one level of any map is the same number of weights, within ±range of
 * the target and [0, 0.99]. The (1+λ) search starts from the uniform
 * profile; an offspring moves 1 to max_mutations levels from one map to
 * another; it is ranked by the KL divergence of its stitched model's next
 * token distribution from the dense model's, on windows/16, windows/4
 * (the best offspring/4 and 2 go on) and all `windows` calibration
 * windows, and replaces the parent if lower there. */
typedef struct {
    double step;       /* one level, as a fraction of the smallest map (0: 0.05) */
    double range;      /* how far a map's sparsity may move from the target (0: 0.3) */
    int generations;   /* (0: 200) */
    int offspring;     /* λ (0: 16) */
    int max_mutations; /* level switches per offspring, 1 to this (0: 3) */
    int windows;       /* fitness windows of calib_context tokens, drawn from the calibration
                          text apart from the pruning's (0: 32) */
    uint64_t seed;     /* mutations and fitness windows */
    void (*on_generation)(int generation, double kl, void *user); /* NULL: none */
    void *user;
} rw_lm_evopress_config;

/* What the search did. */
typedef struct {
    int levels;            /* pruned maps in the database */
    double kl_uniform;     /* fitness of the uniform start (all windows) */
    double kl;             /* of the profile chosen, never above kl_uniform */
    double database_seconds, search_seconds;
} rw_lm_evopress_report;

/* All zeros: every default. */
rw_lm_evopress_config rw_lm_evopress_config_default(void);

/* Prunes `model` in place with the profile EvoPress finds, the maps the
 * database's (so the uniform start is rw_lm_prune with dense_inputs 1).
 * config as for rw_lm_prune with an unstructured target (not N:M, not the
 * global magnitude, map_sparsity NULL), and a calibration text for every
 * method (the fitness reads it). map_sparsity [rw_lm_prune_map_count] gets
 * each map's sparsity; report may be NULL. RW_ERR_INVALID_ARGUMENT naming
 * the field, RW_ERR_NO_MEMORY; on an error the model may hold some maps
 * from the database (still a valid model). */
rw_status rw_lm_prune_evopress(rw_model *model, const rw_lm_prune_config *config,
                               const rw_lm_evopress_config *search, double *map_sparsity,
                               rw_lm_evopress_report *report);

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

/* Copies n samples of f features (any finite values; NaN and Inf are
 * refused) with labels < classes. */
rw_status rw_dataset_from_memory(const float *features, const uint8_t *labels,
                                 int n, int f, int classes, rw_dataset **out);

/* Splits off the last `count` samples of a seeded permutation into *val and
 * keeps the rest in *train. Both are new datasets; src is unchanged. */
rw_status rw_dataset_split(const rw_dataset *src, int count, uint64_t seed,
                           rw_dataset **train, rw_dataset **val);

/* A new dataset holding the first n samples (n is clamped to the size). */
rw_status rw_dataset_head(const rw_dataset *src, int n, rw_dataset **out);

/* rw_dataset_load; then, when limit > 0, rw_dataset_head(limit); then,
 * when val is not NULL, rw_dataset_split with count round(val_fraction x
 * samples) (at most samples - 1) and seed, *out taking the training part.
 * The same datasets as those calls, without copying the samples kept: the
 * training part reaches the loaded rows through a shuffled index, so that
 * they are never moved (and a cached split stays a read-only mapping of
 * its cache file). val_fraction is in [0, 1); with val NULL the samples
 * keep the file's order. */
rw_status rw_dataset_load_part(const char *dir_or_name, int test_split, int limit,
                              double val_fraction, uint64_t seed, rw_dataset **out,
                              rw_dataset **val);

int rw_dataset_count(const rw_dataset *data);
int rw_dataset_features(const rw_dataset *data);
int rw_dataset_classes(const rw_dataset *data);
/* Mean and standard deviation of all features, for rw_model_set_normalization. */
void rw_dataset_stats(const rw_dataset *data, float *mean, float *std);
/* The samples as the dataset holds them, without a copy: *x gets
 * [count][features] floats, *y count labels (either may be NULL). Valid
 * while the dataset lives; not to be written. */
void rw_dataset_arrays(const rw_dataset *data, const float **x, const uint8_t **y);
void rw_dataset_free(rw_dataset *data);

/* Tabular data. Features are stored as the file gives them (any finite
 * float, not rescaled: normalise per feature with rw_dataset_feature_stats);
 * labels become classes 0..classes-1 (at most RW_MAX_CLASSES). Every error
 * of a malformed file is RW_ERR_FORMAT with a message that starts with the
 * file's path and names the line and column (CSV) or the field (.npy);
 * a missing or unreadable file is RW_ERR_IO. Both read gzipped files too. */

typedef enum {
    RW_CSV_HEADER_AUTO = 0, /* the first row is a header when one of its cells
                               is not a number while the cell below it is */
    RW_CSV_HEADER_YES,
    RW_CSV_HEADER_NO
} rw_csv_header;

typedef struct {
    int skip_rows;          /* lines skipped before anything else (default 0) */
    const char *label_name; /* the label column by its header name (implies a
                               header); NULL: by label_index (default) */
    int label_index;        /* 0-based; negative counts from the end: -1 (the
                               default) is the last column */
    rw_csv_header header;   /* default RW_CSV_HEADER_AUTO */
    char delimiter;         /* ',' (default), ';', '\t', ...; 0: whichever of
                               ',', ';' and tab the first row holds most of */
} rw_csv_options;

rw_csv_options rw_csv_options_default(void);

/* Loads a CSV file (NULL options: the defaults): one sample per row, every
 * column but the label column a feature. Cells may be quoted ("a, b" with
 * "" for a quote; no line breaks inside quotes); spaces around a cell are
 * ignored; lines end in LF or CRLF; blank lines and a UTF-8 byte-order mark
 * are skipped. Features must be finite numbers (C locale strtod: 1, -2.5,
 * 3e-4, 0x1p3; no empty cells, no NaN or Inf, within float range). Labels:
 * when every label is a finite number, classes are the distinct values in
 * numeric order (1 and 1.0 are one class); otherwise the distinct strings
 * in byte order. rw_dataset_class_name gives each class's label as
 * written. Errors (RW_ERR_FORMAT, naming line and column, 1-based): a row
 * with another number of cells than the first, a cell that is not a number
 * (quoted, truncated), NaN or Inf, a label name not in the header (the
 * header's names listed) or an index outside the row, more than
 * RW_MAX_CLASSES labels (with their count), no data rows, fewer than two
 * columns, a line longer than 16 MiB, a NUL byte, an unclosed quote.
 * RW_ERR_INVALID_ARGUMENT for options out of range (negative skip_rows,
 * a label name with RW_CSV_HEADER_NO). The whole file is read into memory
 * first. */
rw_status rw_dataset_load_csv(const char *path, const rw_csv_options *options,
                              rw_dataset **out);

/* Loads NumPy .npy files (format versions 1.0, 2.0 and 3.0): features X of
 * shape (n, f) and dtype '<f4', '<f8' or '|u1' (stored as floats, not
 * rescaled: u1 stays 0..255), C or Fortran order (a Fortran-order array is
 * read transposed into rows); labels Y of shape (n,) or (n, 1) and any
 * integer dtype ('|i1', '|u1', '<i2' ... '<u8'), each in [0, 255]: labels
 * are kept as they are, classes = the largest label + 1. Errors
 * (RW_ERR_FORMAT, naming the file and the field): bad magic or version, a
 * header that is not the dict numpy writes ('descr', 'fortran_order',
 * 'shape'), an unsupported dtype (named, e.g. big-endian '>f4'), a wrong
 * number of dimensions, a zero dimension, data shorter or longer than the
 * shape says, a NaN or Inf feature (its row and column), a label outside
 * [0, 255] (its index), X and Y disagreeing in n. The dataset has no class
 * names. Each file is read into memory whole first. */
rw_status rw_dataset_load_npy(const char *x_path, const char *y_path, rw_dataset **out);

/* The name of class k: its label as written in the CSV file (for numeric
 * labels, the first spelling met, e.g. "2" or "2.0"). NULL when k is out of
 * range or the dataset has no names (IDX, .npy, from memory: class k is
 * label k). Valid until the dataset is freed; splits and heads carry the
 * names over. */
const char *rw_dataset_class_name(const rw_dataset *data, int k);

/* Per-feature mean and population standard deviation (mean[f], std[f],
 * f = rw_dataset_features), summed in double in sample order, so the same
 * data gives the same bytes. A constant feature has std 0 (the caller
 * chooses what to divide by); an empty dataset gives mean 0, std 1.
 * RW_ERR_INVALID_ARGUMENT for a NULL argument, RW_ERR_NO_MEMORY. */
rw_status rw_dataset_feature_stats(const rw_dataset *data, float *mean, float *std);

/* rw_dataset_split holding out round(fraction x samples) samples (at most
 * samples - 1) as *test, the rest as *train: a seeded test split for data
 * that comes as one file. fraction is in [0, 1); the same fraction and
 * seed give the same split. */
rw_status rw_dataset_split_fraction(const rw_dataset *src, double fraction, uint64_t seed,
                                    rw_dataset **train, rw_dataset **test);

/* A copy of d whose classes are names[0..n_names) in that order: each
 * sample's label is renumbered to the name equal to its class's
 * (rw_dataset_class_name, or the class number for a dataset without
 * names; two names that are both numbers are compared as numbers, so "1"
 * and "1.0" are one class). A CSV test file that lacks one of the
 * training file's labels numbers its classes differently: align it to the
 * training set's names (or a model's). RW_ERR_FORMAT naming the label
 * when a class that some sample has is not among the names (the message
 * does not name the file: callers add it). */
rw_status rw_dataset_align_classes(const rw_dataset *d, const char *const *names, int n_names,
                                   rw_dataset **out);

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
 * (never two calls at once); return nonzero to stop after that step. The
 * epoch then stays in progress: the next rw_trainer_epoch (or a checkpoint
 * saved now and resumed later) continues it at the next step. */
typedef int (*rw_progress_fn)(const rw_progress *progress, void *user);

typedef struct {
    double loss;        /* mean training loss over the epoch */
    double seconds;     /* wall time of the epoch (training steps only) */
    double samples_per_second;
    int64_t step;       /* steps done so far over the whole run */
    float lr;           /* learning rate of the last step */
    int finished;       /* 1: the epoch ran to its end; 0: progress stopped it */
} rw_epoch_stats;

/* Runs one epoch over `train` in a seeded shuffled order (the last partial
 * batch is used), or the rest of an epoch a progress callback stopped.
 * The order depends only on the config's seed and the epoch number. The
 * stats cover the whole epoch so far. Returns RW_ERR_DIVERGED, naming the
 * step and layer, if a loss or gradient becomes NaN or Inf; and
 * RW_ERR_INVALID_ARGUMENT if `train` is not the training set the run (or
 * the checkpoint it was resumed from) started on. */
rw_status rw_trainer_epoch(rw_trainer *trainer, const rw_dataset *train,
                           rw_progress_fn progress, void *user, rw_epoch_stats *stats);

/* Where the run stands: epoch = epochs finished (the one in progress,
 * 0-based), step = optimizer steps done, samples = samples seen in the
 * epoch in progress, loss = their mean loss (0 if none); epoch_samples
 * and seconds are 0. */
void rw_trainer_position(const rw_trainer *trainer, rw_progress *out);

/* The trainer's config (as created, or as stored in a checkpoint). */
rw_train_config rw_trainer_config(const rw_trainer *trainer);

/* ---- Checkpoints -------------------------------------------------------- */

/* Saves everything a run needs to continue bit-identically in another
 * process: the model (a checkpoint is a model file: rw_model_load and
 * `rewire info` read it), the optimizer state, the train config, the
 * position (epoch, step, the epoch's progress) and a fingerprint of the
 * training set, plus `note` (any UTF-8 string of the caller's, or NULL),
 * and the dynamic sparse training attached, if any (its config, update
 * count, starting sizes, ever-stored patterns and windows of recent
 * batches), and the N:M training of the model, if any (its config and the
 * masks its mask-change count compares with; the model holds the dense
 * master weights W, from which the masks follow). Atomic: written to PATH.tmp, fsynced, renamed over PATH, directory
 * fsynced, so PATH always holds a whole checkpoint. Refuses with
 * RW_ERR_DIVERGED, naming the step and layer, to save a NaN or Inf weight
 * or optimizer state: a diverged run never replaces a good checkpoint. */
rw_status rw_trainer_save_checkpoint(const rw_trainer *trainer, const char *path,
                                     const char *note);

/* Loads a checkpoint into a new model and a new trainer positioned where
 * the run stopped; the caller frees both (the trainer first). *note, if
 * note is not NULL, gets a malloc'ed copy of the saved note (free()) or
 * NULL. Every field is validated as rw_model_load does, plus the trainer
 * state against the model and config. Dynamic sparse training saved with
 * the run comes back attached, in the state it was (rw_trainer_dst tells;
 * rw_trainer_set_dst would start it afresh); so does N:M training
 * (rw_model_nm_train_config tells), its masks and decay factor as they
 * were. With max_memory > 0, a checkpoint
 * whose model and trainer would need more bytes than that is refused with
 * RW_ERR_NO_MEMORY, giving both numbers, before anything is allocated. */
rw_status rw_trainer_load_checkpoint(const char *path, int64_t max_memory, rw_model **model,
                                     rw_trainer **trainer, char **note);

/* 1 if PATH is a readable safetensors file marked as a checkpoint, else 0. */
int rw_is_checkpoint(const char *path);

/* ---- Memory ------------------------------------------------------------- */

/* The memory the system can give without swapping (MemAvailable in
 * /proc/meminfo), in bytes; 0 if unknown. */
int64_t rw_available_memory(void);

typedef struct {
    int64_t model;       /* weights, indices, transposed views, biases */
    int64_t optimizer;   /* momentum / Adam moments */
    int64_t gradients;   /* weight and bias gradients */
    int64_t activations; /* a training batch's and an evaluation batch's buffers */
    int64_t total;       /* the sum */
} rw_memory_estimate;

/* What rw_model_create and rw_trainer_create will allocate for these
 * configs (train may be NULL: the model alone), computed from the layer
 * sizes and the nonzeros the distribution gives, without allocating. */
rw_status rw_estimate_memory(const rw_model_config *model, const rw_train_config *train,
                             rw_memory_estimate *out);

/* The same for a trainer over an existing model (e.g. one just loaded),
 * counting the N:M training state of a model under N:M training. */
rw_status rw_estimate_trainer_memory(const rw_model *model, const rw_train_config *train,
                                     rw_memory_estimate *out);
/* ---- Dynamic sparse training ------------------------------------------- */

/* Every `update_every` steps a topology update, in each sparse (CSR) layer,
 * removes k stored weights by a drop criterion and adds k absent ones by a
 * grow criterion (k = drop_fraction · the layer's weights), after that
 * step's optimizer update. Removed weights lose their optimizer state;
 * grown ones start at zero weight and zero state, and are always positions
 * that were absent before the update. A layer with no absent position (one
 * the distribution filled) is left alone. Layers stored dense are never
 * changed. Memory stays O(weights + neurons · batch): no out × in buffer. */

typedef enum {
    RW_DROP_MAGNITUDE = 0, /* the smallest |w| */
    RW_DROP_SET,           /* the fraction closest to zero on each side: the
                              smallest positive and the largest negative */
    RW_DROP_MEST,          /* the smallest |w| + mest_lambda · |dL/dw| */
    RW_DROP_RANDOM         /* uniformly at random */
} rw_drop_criterion;

typedef enum {
    RW_GROW_RANDOM = 0, /* uniformly at random among the absent positions */
    RW_GROW_GRADIENT,   /* the largest |dL/dw| of the current batch, computed
                           block by block with a bounded top-k */
    RW_GROW_MOMENTUM,   /* the largest |momentum of dL/dw|, the momentum
                           truncated to the last `window` batches */
    RW_GROW_HEBBIAN,    /* the largest |Pearson correlation| of the input and
                           output activations over the last `window` batches */
    RW_GROW_UNFIRED     /* toward the output neurons that fired least (output > 0)
                           on the batch just trained on, inputs at random ("unfired"
                           growth, "Continual Learning with Dynamic Sparse Training:
                           Exploring Algorithms for Effective Model Updates",
                           Yildirim et al. 2024) */
} rw_grow_criterion;

/* The name the command line and logs give a grow criterion ("gradient"),
 * or NULL for an unknown one. */
const char *rw_grow_name(rw_grow_criterion g);

typedef enum { RW_DROP_SCHEDULE_CONSTANT = 0, RW_DROP_SCHEDULE_COSINE } rw_drop_schedule;

/* Named algorithms; rw_dst_config_preset fills their published settings. */
typedef enum {
    RW_DST_STATIC = 0, /* no updates: the baseline */
    RW_DST_SET,     /* "A Scalable Evolutionary Training of Artificial Neural
                       Networks..." (Mocanu et al. 2018): SET drop, random
                       growth, ζ = 0.3, on the schedule RigL's paper ran SET
                       with (ΔT = 100, cosine decay, stop at 75%) */
    RW_DST_RIGL,    /* "Rigging the Lottery: Making All Tickets Winners" (Evci
                       et al. 2020): magnitude drop, gradient growth, ΔT = 100,
                       α = 0.3 with cosine decay, updates stop at 75% */
    RW_DST_SNFS,    /* "Sparse Networks from Scratch: Faster Training without
                       Losing Performance" (Dettmers & Zettlemoyer 2019):
                       magnitude drop, momentum growth, regrowth shared among
                       layers by mean momentum, p = 0.5 cosine, every epoch */
    RW_DST_MEST,    /* "MEST: Accurate and Fast Memory-Economic Sparse Training
                       Framework on the Edge" (Yuan et al. 2021): drop by
                       |w| + λ|∇w|, random growth */
    RW_DST_GRANET,  /* "Sparse Training via Boosting Pruning Plasticity with
                       Neuroregeneration" (Liu et al. 2021): start denser
                       (initial_sparsity), prune to final_sparsity on a cubic
                       schedule while regrowing by gradient */
    RW_DST_HEBBIAN  /* "Neuro-inspired Ensemble-to-Ensemble Communication
                       Primitives for Sparse and Efficient ANNs" (G2GNet,
                       2025): magnitude drop, Hebbian (correlation) growth */
} rw_dst_method;

/* Input-level dynamic sparse training: how the inputs to remove are
 * chosen, the lowest score first. */
typedef enum {
    RW_INPUT_IMPORTANCE = 0, /* the |w| mass of the input's first-layer connections times
                                its root mean square over the batch just trained on (an
                                input that is always 0 scores 0) */
    RW_INPUT_RANDOM,         /* a random order, drawn from the seed when attached */
    RW_INPUT_VARIANCE        /* the training set's variance of the input, as the model's
                                per-feature normalisation keeps it (needs
                                RW_NORMALIZE_FEATURE): the least varying first */
} rw_input_criterion;

/* The name the command line and logs give an input criterion
 * ("importance"), or NULL for an unknown one. */
const char *rw_input_criterion_name(rw_input_criterion c);

typedef struct {
    rw_drop_criterion drop;
    rw_grow_criterion grow;
    int update_every;      /* steps between updates (ΔT); 0: once per epoch */
    double drop_fraction;  /* fraction of a layer's weights replaced per
                              update (α, ζ), in [0, 1); 0: no drop and grow */
    rw_drop_schedule drop_schedule; /* cosine: drop_fraction/2 ·
                              (1 + cos(π · step / (update_until · steps))) */
    double update_until;   /* no drop and grow from this fraction of the
                              training steps on, in (0, 1] */
    int redistribute;      /* 1: regrowth is shared among layers in proportion
                              to the mean |momentum| of their weights (SNFS);
                              layers then change size */
    int window;            /* batches RW_GROW_MOMENTUM / RW_GROW_HEBBIAN
                              look back over, in [1, 64] */
    float mest_lambda;     /* λ of RW_DROP_MEST, >= 0 */
    /* Gradual pruning (GraNet): when final_sparsity > 0, the sparse layers
     * shrink from their size when the config is attached to the sizes that
     * final_distribution gives final_sparsity, on the cubic schedule
     * d(t) = d_final + (d_start - d_final)(1 - p)³, p going from 0 to 1
     * between prune_start and prune_end (fractions of the training steps),
     * by magnitude, at update steps. */
    double final_sparsity;
    rw_distribution final_distribution;
    double prune_start, prune_end;
    double initial_sparsity; /* the sparsity to create the model at (GraNet's
                              preset says 0.5); read by callers, not by the
                              trainer, which starts from the model as it is */
    uint64_t seed;         /* random drop and growth */
    /* ISS-P soft shrinkage, in [0, 1): 0 removes the weights gradual
     * pruning selects; above 0 multiplies them by `shrink` at every pruning
     * step instead, leaving them stored and trainable, and removes those
     * selected only at the first pruning step at or after prune_end. */
    double shrink;
    /* Input-level dynamic sparse training ("DynST: Dynamic Sparse Training
     * for Resource-Constrained Spatio-Temporal Forecasting"): when
     * input_budget > 0, update steps between input_start and input_end
     * (fractions of the training steps) remove whole inputs from the first
     * layer (every connection of an input column), those input_select
     * scores lowest first, until input_budget remain, the count following
     * GMP's cubic schedule k(t) = budget + (n - budget)(1 - p)³; the
     * connections removed are regrown among the inputs left by the grow
     * criterion, and every later growth of the first layer keeps to them.
     * The first layer must be CSR. rw_run_train then leaves the model
     * reading only the inputs kept (rw_model_keep_inputs). */
    int input_budget;
    rw_input_criterion input_select;
    double input_start, input_end;
} rw_dst_config;

/* The settings of a named algorithm (seed 1; final_sparsity 0, to be set
 * by the caller for GraNet). */
rw_dst_config rw_dst_config_preset(rw_dst_method method);

/* Attaches dynamic sparse training to a trainer (config copied; NULL
 * detaches). Starting sizes for gradual pruning are the model's when this
 * is called. Fails with RW_ERR_INVALID_ARGUMENT on a value out of range. */
rw_status rw_trainer_set_dst(rw_trainer *trainer, const rw_dst_config *config);

/* What the attached dynamic sparse training has done so far. */
typedef struct {
    int64_t updates;      /* topology updates run */
    double total_seconds; /* spent in them */
    double itop_rate;     /* as rw_topology_stats.itop_rate, now */
    int inputs_kept;      /* input-level DST: the first layer's inputs left (0 without) */
} rw_dst_totals;

/* 1 if dynamic sparse training is attached (by rw_trainer_set_dst, or
 * restored by rw_trainer_load_checkpoint), its config and totals copied to
 * the outputs that are not NULL; 0 if none is. */
int rw_trainer_dst(const rw_trainer *trainer, rw_dst_config *config, rw_dst_totals *totals);

/* What one topology update did. The arrays have n_layers entries (0 for a
 * layer that was not changed) and are valid only during the callback. */
typedef struct {
    int64_t update;            /* 1 for the run's first update */
    int64_t step;              /* optimizer steps done when it ran */
    int epoch;                 /* 0-based epoch in progress */
    int n_layers;
    const int64_t *dropped;    /* weights removed (drop and prune) */
    const int64_t *grown;      /* weights added */
    const int64_t *nonzeros;   /* weights stored after the update */
    const double *density;     /* nonzeros / (in · out) */
    double drop_fraction;      /* the scheduled fraction at this step */
    /* In-time over-parameterisation rate: the fraction of all possible
     * connections (over all layers) that have ever been stored ("Do We
     * Actually Need Dense Over-Parameterization? In-Time
     * Over-Parameterization in Sparse Training", Liu et al. 2021). */
    double itop_rate;
    /* Sparse Architecture Divergence between the topologies before and
     * after: positions stored in exactly one of them ("Learning N:M
     * Fine-grained Structured Sparse Neural Networks From Scratch", Zhou et
     * al. 2021); sad_rate divides it by the weights stored before. */
    int64_t sad;
    double sad_rate;
    const int64_t *dead_neurons; /* [n_layers - 1]: hidden neurons of each
                                    hidden layer with no input or no output */
    int64_t unconnected_inputs;  /* network inputs with no connection */
    double seconds;            /* wall time of this update, statistics included */
    double total_seconds;      /* of every update so far */
    const int64_t *shrunk;     /* [n_layers] ISS-P: weights multiplied by the
                                  shrink factor and kept (NULL otherwise) */
    int inputs_kept;           /* input-level DST: inputs left after the update (0 without) */
    int inputs_removed;        /*   and removed by it */
    /* A 64-bit hash (FNV-1a) of every weight's pattern after the update:
     * runs whose hashes agree at every update held the same topology (the
     * check of a data-parallel run against one process). */
    uint64_t topology_hash;
} rw_topology_stats;

typedef void (*rw_topology_fn)(const rw_topology_stats *stats, void *user);

/* Called after every topology update (NULL: none). */
void rw_trainer_set_topology_callback(rw_trainer *trainer, rw_topology_fn fn, void *user);

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

/* ---- Training from dense to sparse ------------------------------------- *
 * Methods that start dense (or at `initial` sparsity) and end at a target
 * sparsity, driving rw_trainer over the same CSR topology machinery as
 * dynamic sparse training. Layers stored dense or N:M are first converted
 * to CSR (a dense layer at density 1). */

typedef enum {
    RW_PRUNE_GMP = 0, /* "To prune, or not to prune: exploring the efficacy of
                         pruning for model compression" (Zhu & Gupta 2017):
                         magnitude pruning on the cubic schedule between
                         prune_start and prune_end, no regrowth; the CSR
                         arrays and the optimizer state shrink at each step */
    RW_PRUNE_IMP,     /* "Linear Mode Connectivity and the Lottery Ticket
                         Hypothesis" (Frankle et al. 2020): train, prune by
                         magnitude, rewind the survivors (weights, biases,
                         optimizer state, learning-rate position) to step
                         rewind_step of the first phase, retrain; `rounds`
                         times */
    RW_PRUNE_SOUP,    /* "Sparse Model Soups: A Recipe for Improved Pruning via
                         Model Averaging" (Zimmer et al. 2023): train, then
                         `rounds` times: prune, retrain soup_size copies with
                         different data orders (fresh optimizer state and
                         learning-rate schedule), average them (same mask) */
    RW_PRUNE_ISSP     /* "Iterative Soft Shrinkage Learning for Efficient Image
                         Super-Resolution" (Wang et al. 2023): GMP's schedule,
                         but the selected weights are multiplied by `shrink`
                         and stay trainable; removed only at prune_end */
} rw_prune_method;

typedef struct {
    rw_prune_method method;
    double sparsity;       /* final overall fraction of zero weights, (0, 1) */
    rw_distribution distribution; /* GMP, ISS-P: how `sparsity` is shared
                              among layers (as rw_dst_config.final_distribution) */
    rw_prune_scope scope;  /* IMP, soup: each layer the same fraction, or one
                              magnitude threshold over all layers */
    double prune_start, prune_end; /* GMP, ISS-P: fractions of training steps,
                              0 <= start < end <= 1 */
    int update_every;      /* GMP, ISS-P: steps between pruning steps (0: once
                              per epoch) */
    double shrink;         /* ISS-P: factor in (0, 1) */
    int rounds;            /* IMP, soup: prune-retrain rounds (>= 1); round r
                              prunes to density d0 · (d_final / d0)^(r / rounds) */
    int64_t rewind_step;   /* IMP: the first phase's step to rewind to, below
                              the steps of a retrain phase; -1: 5% of them */
    int soup_size;         /* soup: retrains averaged per round (>= 1) */
} rw_prune_schedule;

/* GMP and ISS-P: 10%..60% of training, every 100 steps, shrink 0.5, ERK;
 * IMP: 4 rounds, rewind_step -1, per layer; soup: 3 rounds of 3, per layer. */
rw_prune_schedule rw_prune_schedule_preset(rw_prune_method method, double sparsity);

/* The training budget. train->epochs is the total: GMP and ISS-P run it as
 * one training; IMP and soup split it into whole-epoch phases, one for the
 * first training and one per retrain (IMP: rounds; soup: rounds ·
 * soup_size, each member's retrain counted), the remainder going to the
 * first phase. Fails with RW_ERR_INVALID_ARGUMENT, naming both numbers, if
 * there are more phases than epochs. */
rw_status rw_prune_phase_epochs(const rw_train_config *train, const rw_prune_schedule *s,
                                int *first_epochs, int *phase_epochs);

typedef struct {
    int phase;        /* 0: the first training; r: the retrain after round r */
    int member;       /* soup: the retrain in the round (0-based), or -1 for
                         the soup just averaged (stats then NULL); else 0 */
    int epoch, epochs;/* 1-based epoch of the phase, and the phase's epochs */
    int64_t steps;    /* optimizer steps of the whole run so far, every
                         phase and member counted */
    const rw_epoch_stats *stats;
    const rw_model *model; /* the model just trained; valid during the call */
} rw_prune_epoch;

/* Called after every finished epoch; return nonzero to stop the run (then
 * rw_train_prune returns RW_OK with the model as it stands). */
typedef int (*rw_prune_epoch_fn)(const rw_prune_epoch *e, void *user);

/* Trains `model` on `data` with train's optimizer and schedule (per phase)
 * and prunes it to s->sparsity. Pruning steps are reported through
 * on_prune with the statistics of dynamic sparse training (NULL: none).
 * On RW_OK the model is CSR at the target sparsity (IMP and soup: the
 * final retrain, or the final soup). Every result is the same for any
 * thread count. */
rw_status rw_train_prune(rw_model *model, const rw_train_config *train,
                         const rw_prune_schedule *s, const rw_dataset *data,
                         rw_prune_epoch_fn on_epoch, rw_topology_fn on_prune, void *user);

/* The first steps of rw_train_prune, for a caller that drives the training
 * itself (to checkpoint it, say): checks the schedule and that the model
 * is below the target sparsity, then converts every layer to CSR (a dense
 * one at density 1). RW_ERR_INVALID_ARGUMENT with a message otherwise. */
rw_status rw_train_prune_prepare(rw_model *model, const rw_prune_schedule *s);

/* GMP and ISS-P are one training with this dynamic-sparse-training
 * configuration (magnitude pruning on the cubic schedule, no regrowth,
 * ISS-P's shrink): rw_train_prune runs a trainer with it, and a trainer
 * given it by rw_trainer_set_dst, on a model rw_train_prune_prepare has
 * seen, trains exactly as rw_train_prune does, and its checkpoints carry
 * the pruning state. RW_ERR_INVALID_ARGUMENT for a bad schedule or for IMP
 * and soups (several phases, no one configuration). */
rw_status rw_prune_schedule_dst_config(const rw_prune_schedule *s, rw_dst_config *out);

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
/* The same pass, giving the logits (the last layer's outputs, before the
 * softmax): logits is [n][classes]. */
rw_status rw_predictor_logits(rw_predictor *predictor, const float *x, int n, float *logits);
void rw_predictor_free(rw_predictor *predictor);

/* ---- Runs ------------------------------------------------------------- *
 * The whole of a training run as one library call, so that the command
 * line, a Python program or an MPI driver are thin shells over the same
 * loop: epochs on the training set, evaluation after every epoch
 * (validation and test), the metrics log (JSONL), checkpoints at a cadence,
 * dynamic sparse training, training from dense to sparse (every
 * rw_prune_method, rounds and all), N:M training, and the model file at
 * the end. `rewire train` is this call with its flags. */

/* A language model's run: train.batch sequences of `context` tokens per
 * step, `steps` steps, the learning rate nanoGPT's (linear warm-up over
 * warmup_steps, then cosine from train.lr to min_lr at the last step). */
typedef struct rw_lm_schedule {
    int context;
    int64_t steps;
    int64_t warmup_steps;
    float min_lr;
    int64_t eval_every;   /* steps between validation estimates (0: at the end only) */
    int eval_batches;     /* batches of `train.batch` windows per estimate (0: the whole
                             validation split) */
    uint64_t seed;        /* which windows each step trains on */
} rw_lm_schedule;

/* rw_lm_schedule: context 64, 2000 steps, 100 of warm-up, min_lr 1e-4,
 * an estimate every 250 steps over 20 batches, seed 1. */
rw_lm_schedule rw_lm_schedule_default(void);

/* A language model's run has no epochs: dynamic sparse training whose
 * updates are once per epoch (update_every 0: the SNFS, MEST and Hebbian
 * presets) updates every RW_LM_UPDATE_EVERY steps instead, the interval
 * of the SET and RigL presets. */
#define RW_LM_UPDATE_EVERY 100

/* What a language model's run reports at every validation estimate. */
typedef struct {
    int64_t step, steps;
    double train_loss;        /* mean of the training batches since the last report */
    double val_loss;          /* the estimate (or, at the end, the whole split's) */
    double val_bits_per_byte;
    int whole_split;          /* 1: val_* cover the whole validation split */
    float lr;
    double tokens_per_second; /* of the training steps since the last report */
    double seconds;           /* since the run started (in this process) */
    double sparsity;
    int64_t updates;          /* topology updates so far */
    double itop_rate;
} rw_lm_report;

typedef int (*rw_lm_report_fn)(const rw_lm_report *r, void *user);

/* What the run reports after every finished epoch (through on_epoch; the
 * pointers are valid during the call). */
typedef struct {
    int epoch;               /* epochs finished over the run, 1-based */
    int epochs;              /* of the run */
    int64_t step;            /* optimizer steps over the run */
    const rw_epoch_stats *stats; /* this epoch's training; NULL for a soup just averaged */
    const rw_eval_result *val;   /* NULL without a validation set */
    const rw_eval_result *test;
    double seconds;          /* wall time since the run started (in this process) */
    double sparsity;         /* of the model now */
    double update_seconds;   /* in topology updates: this epoch's (DST), the run's so far
                                (training from dense to sparse) */
    int dst;                 /* dynamic sparse training (or gradual pruning) is attached: */
    int64_t updates;         /*   topology updates so far */
    double total_update_seconds;
    double itop_rate;        /*   after the last update */
    int inputs_kept;         /*   input-level DST: the inputs left (0 without) */
    int nm;                  /* N:M training: */
    double nm_mask_change;   /*   mask change over the epoch (rw_model_nm_mask_change) */
    double nm_beta;          /*   decay factor now */
    int prune;               /* training from dense to sparse: */
    rw_prune_method prune_method;
    int phase, member;       /*   as rw_prune_epoch */
    int phase_epoch, phase_epochs;
    const rw_model *model;   /* the model just trained */
} rw_run_epoch;

/* Return nonzero to stop the run after this epoch. */
typedef int (*rw_run_epoch_fn)(const rw_run_epoch *e, void *user);

typedef struct {
    rw_train_config train;
    const rw_dst_config *dst;       /* dynamic sparse training, or NULL; for GMP and ISS-P
                                       the run makes it from `prune` */
    const rw_prune_schedule *prune; /* training from dense to sparse, or NULL */
    const rw_nm_train_config *nm;   /* N:M training of the model (dense), or NULL */
    const struct rw_lm_schedule *lm; /* a language model's run (rw_run_train_text), or NULL */
    const char *log;                /* metrics log (JSONL), or NULL */
    const char *checkpoint;         /* checkpoint path, or NULL */
    int64_t checkpoint_every;       /* steps between checkpoints; 0: every epoch */
    const char *checkpoint_flags;   /* a JSON object kept in every checkpoint's note and
                                       handed back by rw_run_resume (the CLI keeps its
                                       flags there); NULL: {} */
    const char *out;                /* where the model is saved at the end, or NULL */
    rw_progress_fn progress;        /* after every step (NULL: none); its return value is
                                       ignored: stop through on_epoch */
    rw_run_epoch_fn on_epoch;       /* after every finished epoch (NULL: none) */
    rw_topology_fn on_topology;     /* after every topology update (NULL: none) */
    rw_lm_report_fn on_lm_report;   /* a language model's: after every estimate (NULL: none) */
    void *user;
} rw_run_config;

/* Defaults: rw_train_config_default, nothing else. */
rw_run_config rw_run_config_default(void);

typedef struct {
    rw_eval_result test, val;       /* after the last epoch */
    int has_val;
    int64_t steps;                  /* optimizer steps over the run */
    double train_seconds;           /* training time of the epochs finished, the part this
                                       process trained (a resumed epoch's earlier part was
                                       another process's) */
    int64_t train_samples;          /* samples trained in that time */
    double train_samples_per_second;/* the two divided */
    double sparsity;
    int64_t updates;                /* topology updates (DST, pruning rounds) */
    double update_seconds;
    double itop_rate;
    int members;                    /* soups: members of the last round, their test */
    double member_accuracy_mean, member_accuracy_best; /* accuracy mean and best */
    int stopped;                    /* on_epoch stopped the run */
    int64_t checkpoint_step;        /* step of the last checkpoint written or resumed (-1:
                                       none) */
    const char *checkpoint_kept;    /* after a failure, the file that holds the last good
                                       checkpoint (NULL: none); valid while the run lives */
    double target_sparsity;         /* gradual pruning's target (0: none); the run ended
                                       short of it when sparsity is below */
    int inputs_kept;                /* input-level DST: the inputs the saved model reads
                                       (0 without); above the budget when no update came
                                       after input_end */
} rw_run_result;

typedef struct rw_run rw_run;

/* A new run over `model`, built by the caller at the run's starting
 * sparsity (rw_model_create; for N:M training dense), its normalisation
 * set. Starts N:M training when config->nm is set, converts the model to
 * CSR for training from dense to sparse, creates the trainer and attaches
 * dynamic sparse training. The model must outlive the run. The config is
 * copied (strings and pointed-to configs too). IMP and soups take no
 * checkpoint (they rewind and retrain in phases): RW_ERR_INVALID_ARGUMENT. */
rw_status rw_run_new(rw_model *model, const rw_run_config *config, rw_run **out);

/* Loads a checkpoint (within max_memory, as rw_trainer_load_checkpoint)
 * into a new model and run positioned where it stopped. *flags, if flags
 * is not NULL, gets a malloc'ed copy of the JSON object the run was given
 * as checkpoint_flags (free()), or NULL for a checkpoint without one. Call
 * rw_run_configure before rw_run_train. */
rw_status rw_run_resume(const char *checkpoint, int64_t max_memory, rw_model **model,
                        rw_run **out, char **flags);

/* Gives a resumed run its config: the dynamic sparse training and N:M
 * training it names must be those the checkpoint holds
 * (RW_ERR_INVALID_ARGUMENT naming the first difference); the train config
 * is the checkpoint's whatever config->train says. The log, if any, is cut
 * back to what the checkpoint had seen and appended to. */
rw_status rw_run_configure(rw_run *run, const rw_run_config *config);

/* The run's trainer (NULL for IMP and soups, which make one per phase). */
rw_trainer *rw_run_trainer(rw_run *run);

/* Trains until the run's epochs are done or on_epoch stops it, evaluating
 * after each epoch; then ends N:M training, leaves a model under
 * input-level DST reading only the inputs kept (rw_model_keep_inputs),
 * saves the model to `out` and fills *result. The training set must be the checkpoint's when resumed.
 * val may be NULL or empty. On failure (a diverged run, a file that cannot
 * be written) *result still says which checkpoint is kept. */
rw_status rw_run_train(rw_run *run, const rw_dataset *train, const rw_dataset *val,
                       const rw_dataset *test, rw_run_result *result);

/* A language model's run (config->lm set at rw_run_new): trains until
 * lm->steps, estimating the validation loss every eval_every steps, then
 * over the whole validation split; saves the model to `out`. *result
 * as rw_run_train's (train_samples counts tokens; val is unused; test
 * holds the final validation loss in `loss`), and *final the whole
 * split's evaluation. */
rw_status rw_run_train_text(rw_run *run, const rw_text *text, rw_run_result *result,
                            rw_lm_eval *final);

/* Asks a run to stop, from any thread or from a signal handler (it only
 * sets a flag): rw_run_train or rw_run_train_text, in this call or the
 * next, stops after the optimizer step in progress (IMP and soups: after
 * the epoch in progress), writes a checkpoint there if the run has a
 * checkpoint path, evaluates the model and saves it to `out`, as when
 * on_epoch stops the run, and returns RW_OK with result->stopped set.
 * The flag is cleared when the call returns. A run resumed from that
 * checkpoint ends bit-identical to one never stopped. */
void rw_run_stop(rw_run *run);

void rw_run_free(rw_run *run);

/* ---- Data-parallel training over MPI (docs/distributed.md) ------------
 * Under `mpirun -np N`, every process runs the same program on the same
 * data: a run's trainer takes its process's slice of every global batch
 * (--batch stays the global batch), sums the gradients of the stored
 * weights with MPI_Allreduce, and every process makes the same optimizer
 * step and the same topology updates. Process 0 alone writes the log,
 * checkpoints and the model. MPI's state is the process's (one world per
 * program), so these calls have no handle. */

/* Starts MPI when the program was launched by mpirun (its environment
 * says so); otherwise, or in a build without MPI (-DREWIRE_MPI=OFF), does
 * nothing and the program is one process. RW_ERR_INVALID_ARGUMENT when mpirun
 * launched a build without MPI with more than one process. */
rw_status rw_dist_init(int *argc, char ***argv);

/* This process's number (0 alone) and the number of processes (1 alone). */
int rw_dist_rank(void);
int rw_dist_size(void);

/* Ends MPI: finalizes after `failed` 0; otherwise aborts every process
 * (a process that failed alone would leave the others waiting for it in
 * the next all-reduce). Nothing without MPI. */
void rw_dist_end(int failed);

/* Where a data-parallel run's time and bytes went (this process's). */
typedef struct {
    int processes;
    int64_t steps;             /* all-reduces of gradients */
    int64_t reduce_bytes;      /* gradient values summed per step, bytes (nnz floats) */
    int64_t dense_bytes;       /* the same parameters stored dense (in x out floats) */
    int64_t gather_bytes;      /* batches gathered for topology updates, total bytes */
    int64_t gathers, checks;   /* gathers made; topology checks passed */
    double wait_seconds;       /* waiting for the slowest process before each all-reduce */
    double reduce_seconds;     /* in the gradient all-reduces */
    double gather_seconds;     /* gathering batches, checking topology */
} rw_dist_stats;

/* Fills *out and returns 1 if the run trains over several processes;
 * returns 0 otherwise. */
int rw_run_dist_stats(const rw_run *run, rw_dist_stats *out);

/* GraNet's starting point: a preset's initial_sparsity (0.5) that is not
 * below the target `sparsity` becomes half the target. Then, when the
 * config starts sparser than dense (initial_sparsity > 0), final_sparsity
 * becomes `sparsity` and *model_sparsity the sparsity to create the model
 * at; otherwise *model_sparsity is `sparsity`. RW_ERR_INVALID_ARGUMENT
 * when initial_sparsity is not below sparsity. `explicit_initial` says the
 * caller set initial_sparsity itself (the rule then leaves it alone). */
rw_status rw_dst_config_target(rw_dst_config *c, double sparsity, int explicit_initial,
                               double *model_sparsity);

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
    /* N:M patterns (nm_n[i]:nm_m[i]), each also measured as CSR at the
     * same density n/m; cols must be a multiple of every m. */
    const int *nm_n, *nm_m;
    int n_nm;
    /* Kernel families to time side by side, each kernel of each round
     * under every one of them in turn ("avx2", "avx512": names as
     * rw_kernel_isa gives them); NULL or n_isas 0: the chosen one. A
     * family the CPU cannot run is an error. */
    const char *const *isas;
    int n_isas;
} rw_bench_kernels_config;

/* rows 1000, cols 1000, no densities or batches, repeats 7, 0.02 s, seed 1. */
rw_bench_kernels_config rw_bench_kernels_config_default(void);

typedef struct {
    const char *op;         /* "spmm" forward Y = W X; "spmm_t" backward dX = W^T dY;
                               "sddmm" weight gradient dW = (dY X^T) on the pattern;
                               "spmv" forward of a single sample (batch 1 only);
                               "nm_spmm", "nm_spmm_t", "nm_sddmm": the same three with
                               N:M storage and kernels */
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
    const char *format;     /* "csr", or the N:M pattern ("2:4") for the "nm_" ops */
    int64_t bytes;          /* weight storage: values + indices (+ row pointers for CSR) */
    int64_t memory_bytes;   /* the same in memory, with the transposed views the kernels read */
    const char *isa;        /* the kernel family timed ("avx512", "avx2", "scalar") */
    double isa_speedup;     /* median over rounds of the first family's time in the
                               round over this one's (1 for the first family) */
} rw_bench_kernel_row;

/* Called once per row; return nonzero to stop. */
typedef int (*rw_bench_kernel_fn)(const rw_bench_kernel_row *row, void *user);

/* For each density and batch: every kernel, under each kernel family
 * asked for, and its SGEMM, interleaved; rows come kernel by kernel, the
 * families in the order given. The sparse matrices are uniformly random;
 * the thread setting is restored. */
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
    int nm_n, nm_m;         /* inference: when nm_m > 0 (sparsity 0), the dense model is
                               converted to nm_n:nm_m in every layer whose inputs nm_m divides */
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
