/* Causal multi-head self-attention as a layer kind (attention.c). */
#ifndef RW_NN_ATTENTION_H
#define RW_NN_ATTENTION_H

#include "nn/attn_pattern.h"
#include "nn/attn_sparsed.h"
#include "nn/layer.h"

#define ATTENTION_MAX_CONTEXT (1 << 20)
/* Dense attention runs through sgemm with its T×T probabilities kept up to
 * this context, through the block-sparse core beyond. */
#define ATTENTION_GEMM_MAX 1024

/* Reads the fused [3·dim] projection `input`, writes [dim]; heads divide
 * dim; sequences of at most `context` tokens. */
layer *attention_new(const char *name, int dim, int heads, int context, int input, int index);

/* 1 if ly is an attention layer; then its heads and longest sequence. */
int is_attention(const layer *ly);
int attention_heads(const layer *ly);
int attention_context(const layer *ly);

/* The pattern (dense for a new layer). Set it before any workspace of the
 * model is made: the scratch size depends on it. */
const att_pattern *attention_pattern(const layer *ly);
/* A pattern with layer state (nn/attn_learned.h: routing's centroids,
 * dma's mask parameters) makes it, seeded from the layer's name, unless
 * the layer has it in that size already. RW_ERR_NO_MEMORY with a message.
 * A layer keeps each pattern's state while another is set, but reports
 * (params) and saves only its pattern's. */
rw_status attention_set_pattern(layer *ly, const att_pattern *p);

/* The current pattern's state tensor `name` (routing: "centroids"
 * [heads][clusters][hd]; dma: "dma_proj" [heads][hd], "dma_a" [heads]),
 * or NULL when the pattern has none of that name or it was never made. */
float *attention_state(const layer *ly, const char *name);

/* The layer of a standalone rw_attention, and the gradient of its
 * parameter k (dma's: 0 the projection, 1 the coefficient) after its
 * last backward pass (tests read them). */
layer *attention_api_layer(rw_attention *a);
float *attention_api_grad(rw_attention *a, int k);
/* sparsed: the blocks each head keeps (the layer takes s and frees the
 * table it had; NULL: none), and those it has (NULL: none chosen). A
 * layer keeps its table while another pattern is set, but saves it only
 * while sparsed is. */
void attention_set_sparsed(layer *ly, att_sparsed *s);
const att_sparsed *attention_sparsed(const layer *ly);
/* Dense attention through the block-sparse core at every context (the
 * standalone layer of rw_attention_create, so benchmarks compare patterns
 * on one core). */
void attention_set_core_only(layer *ly);

/* Score entries computed over those causal dense attention computes, since
 * the last reset (1 when nothing ran); reset 1 starts a new count. Not
 * thread-safe against a running pass. */
double attention_density(const layer *ly, int reset);
/* Score entries computed since the last reset. */
int64_t attention_scores(const layer *ly);

/* Fills a one-sample scratch's KV cache (and block means) with positions
 * 0..T of a sequence's fused projection qkv [3·dim][ld], as T calls of
 * forward_vector would. */
void attention_fill_cache(const layer *ly, float *cache, const float *qkv, int ld, int T);

/* sparsed's calibration (attention_probe.c): adds the dense attention
 * mass of every head of the sequence at columns c0 .. c0 + T of qkv
 * [3·dim][bp] to mass [heads][nb][nb] (nb = ceil(context / block); query
 * block, then key block). */
rw_status attention_sparsed_mass(const layer *ly, int block, const float *qkv, int bp, int c0,
                                 int T, double *mass);
/* Chooses each head's blocks from that mass (nn/attn_sparsed.h) and sets
 * pattern p (sparsed); *covered (may be NULL) gets the share of the mass
 * the chosen blocks carry, averaged over the heads. */
rw_status attention_choose_sparsed(layer *ly, const att_pattern *p, const double *mass,
                                   double *covered);

extern const layer_kind attention_kind;

#endif
