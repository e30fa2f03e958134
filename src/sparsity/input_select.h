/* Input-level dynamic sparse training: the first layer loses whole inputs
 * on a schedule, the least important first, until a budget remains
 * (rw_dst_config.input_budget). This unit chooses which inputs and when;
 * the removal of their connections and the regrowth among the inputs left
 * are the topology update's (dst.c), over the shared machinery. */
#ifndef RW_SPARSITY_INPUT_SELECT_H
#define RW_SPARSITY_INPUT_SELECT_H

#include <stdint.h>

#include "nn/model.h"

typedef struct input_select input_select;

/* The state for model m's first-layer weight `p` (CSR, cols inputs):
 * every input open. RW_ERR_INVALID_ARGUMENT for a budget not below the
 * inputs, an unknown criterion, a schedule outside training, or the
 * variance criterion without per-feature normalisation. */
rw_status input_select_create(const rw_dst_config *c, const rw_model *m, const param *p,
                              input_select **out);
void input_select_free(input_select *s);

/* Inputs still open (kept). */
int input_select_kept(const input_select *s);

/* 1 when an update at `step` of total_steps removes inputs. */
int input_select_due(const input_select *s, int64_t step, int64_t total_steps);

/* Closes the inputs due at `step` (none when not due), by the criterion
 * over the weight p and the batch just trained on, x [cols][bp] with n
 * valid columns. Returns how many were closed; closed[i] is 2 for each of
 * them until input_select_settle. */
int input_select_close(input_select *s, const param *p, const float *x, int bp, int n,
                       int64_t step, int64_t total_steps);

/* [cols]: 0 for an open input, 1 for one closed earlier, 2 for one closed
 * by the update in progress. Growth keeps away from every nonzero. */
const uint8_t *input_select_closed(const input_select *s);

/* The update is done: the inputs it closed count as closed earlier. */
void input_select_settle(input_select *s);

/* Restores a checkpoint's closed inputs (closed[i] 0 or 1, [cols]). */
void input_select_restore(input_select *s, const uint8_t *closed);

/* The open inputs' columns, ascending, into index; returns how many. */
int input_select_open(const input_select *s, int32_t *index);

#endif
