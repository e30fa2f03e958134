/* Aligned allocation: every float buffer a kernel touches starts on a
 * 32-byte boundary so AVX2 loads never split a cache line needlessly. */
#ifndef RW_CORE_ALLOC_H
#define RW_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#define RW_ALIGN 32
/* Batch dimension padding: activations are [feature][batch_pad] and
 * batch_pad is a multiple of this, so rows stay aligned. */
#define RW_BATCH_PAD 8

static inline int rw_pad_batch(int batch) { return (batch + RW_BATCH_PAD - 1) / RW_BATCH_PAD * RW_BATCH_PAD; }

/* Returns zeroed, RW_ALIGN-aligned memory or NULL (also for bytes == 0 it
 * returns a valid unique pointer). Free with rw_free. */
void *rw_alloc(size_t bytes);
/* The same without the zeroing, for arrays written whole before anything
 * reads them (a topology update rebuilds a layer's arrays every ΔT steps,
 * and zeroing them first was a measurable part of it). */
void *rw_alloc_unset(size_t bytes);
void rw_free(void *p);

#endif
