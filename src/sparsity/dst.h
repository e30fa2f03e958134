/* Dynamic sparse training: when a topology update is due, how many weights
 * each sparse weight drops and grows, and the update itself over the
 * shared machinery (topology.h) with a drop criterion (drop.h) and a grow
 * criterion (grow.h). The algorithms are presets (dst_preset.c).
 *
 * It works on the model's parameter list (nn/param.h): every weight
 * record is counted in the statistics, and every CSR one is updated,
 * whatever layer it belongs to. It attaches to a trainer as a hook that
 * runs after each optimizer step (nn/trainer.h). */
#ifndef RW_SPARSITY_DST_H
#define RW_SPARSITY_DST_H

#include "nn/trainer.h"

typedef struct dst_state dst_state;

/* Validates the config and prepares the state for model m (batches padded
 * to bp columns): the GraNet targets, the record of positions ever stored,
 * the windows of recent batches. */
rw_status dst_create(const rw_dst_config *c, const rw_model *m, int bp, dst_state **out);
void dst_free(dst_state *d);

/* Called after the optimizer step that made s->step steps done. Keeps the
 * recent batches a grow criterion needs, and runs an update when one is
 * due; then *stats points at its statistics (else NULL). */
rw_status dst_after_step(dst_state *d, rw_trainer *t, const trainer_step_info *s,
                         const rw_topology_stats **stats);

/* The first layer's open inputs, ascending, into index (its cols entries
 * at most); returns how many, or -1 when the DST attached to t selects no
 * inputs (or none is attached). */
int dst_kept_inputs(const rw_trainer *t, int32_t *index);

/* The dynamic sparse training attached to t, or NULL. */
dst_state *trainer_dst(const rw_trainer *t);

/* 1 if an update runs after `step` of total_steps steps. */
/* 1 if the DST attached to t looks at the batch of the step just made
 * (an update is due, or the batch goes into a window): a data-parallel run
 * gathers the global batch for it. 0 without DST. */
int dst_wants_batch(const rw_trainer *t, const trainer_step_info *si);

int dst_update_due(const dst_state *d, int64_t step, int64_t steps_per_epoch,
                   int64_t total_steps);

/* The scheduled drop fraction at `step` (0 from update_until on). */
double dst_drop_fraction(const rw_dst_config *c, int64_t step, int64_t total_steps);

/* Shares `total` grown weights among n layers in proportion to weight[l],
 * none above cap[l] (what a capped layer cannot take goes to the others);
 * integer shares by largest remainder. Returns the number placed (less
 * than total only when every cap is reached). */
int64_t dst_share(int n, const double *weight, const int64_t *cap, int64_t total, int64_t *share);

#endif
