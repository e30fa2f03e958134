/* The state of dynamic sparse training, shared by the update (dst.c) and
 * its checkpoint section (dst_checkpoint.c), which must save and restore
 * every field an update reads. Nothing else looks inside. */
#ifndef RW_SPARSITY_DST_INTERNAL_H
#define RW_SPARSITY_DST_INTERNAL_H

#include "sparsity/dst.h"
#include "sparsity/grow.h"
#include "sparsity/input_select.h"
#include "sparsity/topology_stats.h"

#define DST_MAX_WINDOW 64

/* What a resumed run needs (dst_checkpoint.c saves it) and what it does
 * not: the config, updates (each update's random stream is drawn from
 * (seed, updates), so no generator state is kept), total_seconds,
 * start_nnz (final_nnz and pruning_done follow from it and the model), the
 * ever-stored patterns and the windows. The schedule's position is the
 * trainer's step. The rest is scratch, refilled by every update. */
struct dst_state {
    rw_dst_config cfg;
    const grow_criterion *grow;
    /* The weights of the model's parameter list it works on: weight w is
     * params[weight[w]]; every per-weight array below has n_layers entries
     * (for an MLP, weight w is layer w's). */
    int n_layers, bp;
    int batch_n;            /* valid columns of the batch just trained on */
    int *weight;
    int64_t updates;
    double total_seconds;
    int pruning_done;       /* every layer reached its GraNet target */
    int64_t *start_nnz;     /* [n_layers] size when attached (GraNet) */
    int64_t *final_nnz;     /* [n_layers] GraNet target */
    pattern *ever;          /* [n_layers] positions ever stored */
    grow_scratch *scratch;  /* [scratch_n] buffers of the blocked top-k, one per layer at once */
    int scratch_n;
    /* Recent batches for momentum and Hebbian growth, per sparse layer:
     * pre [in][window·bp], post [out][window·bp]; slot j holds columns
     * [j·bp, (j+1)·bp), slot_n[j] of them valid. */
    float **win_pre, **win_post;
    int32_t slot_n[DST_MAX_WINDOW];
    /* Input-level DST (rw_dst_config.input_budget): which inputs of weight
     * input_weight (the first layer's) are open, NULL without; the
     * connections the update in progress removes with the inputs it
     * closes. */
    input_select *inputs;
    int input_weight;
    int64_t input_drop;
    int inputs_removed;
    /* Per-update counts and statistics ([n_layers]). */
    int64_t *drop_n, *grow_n, *prune_n;
    int64_t *dropped, *grown, *nonzeros, *dead, *shrunk;
    double *density;
    rw_topology_stats stats;
};

/* 1 if the grow criterion keeps windows of recent batches. */
int dst_uses_window(const rw_dst_config *c);

/* Sets final_nnz from start_nnz and the config (GraNet's targets). */
rw_status dst_granet_targets(dst_state *d, const rw_model *m);

/* Attaches d to t (replacing any DST attached; d NULL detaches). On
 * failure d is freed. */
rw_status dst_attach(rw_trainer *t, dst_state *d);

/* The weight's record in m. */
static inline const param *dst_param(const dst_state *d, const rw_model *m, int w)
{
    return &m->params[d->weight[w]];
}

#endif
