/* Aligned allocation: every float buffer a kernel touches starts on a
 * cache line (64 bytes), so that with bp a multiple of 16 no AVX-512 load
 * of a row splits a line, nor any AVX2 load with bp a multiple of 8.
 * Measured with 32-byte alignment (Zen 5, 1000 x 1000, density 0.05,
 * batch 32-128): the AVX-512 SpMM, SpMMT and SDDMM ran at 0.84-1.0x the
 * AVX2 speed; with 64, 1.0-1.45x. */
#ifndef RW_CORE_ALLOC_H
#define RW_CORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#define RW_ALIGN 64
/* Batch dimension padding: activations are [feature][batch_pad] and
 * batch_pad is a multiple of this, so rows stay aligned. */
#define RW_BATCH_PAD 8

/* A row stride of a multiple of 2 KB from 1,024 columns on maps the rows
 * of a batch chunk onto a few cache sets, which then evict each other:
 * such a width gets 16 more columns (SpMM at 3072 x 768, density 0.5,
 * Zen 5: batch 2048 at 0.39 of SGEMM, 2064 at 0.50; 1024 at 0.37, 1040 at
 * 0.47). */
#define RW_BATCH_ALIAS 512

static inline int rw_pad_batch(int batch)
{
    int bp = (batch + RW_BATCH_PAD - 1) / RW_BATCH_PAD * RW_BATCH_PAD;
    return bp >= 2 * RW_BATCH_ALIAS && bp % RW_BATCH_ALIAS == 0 ? bp + 16 : bp;
}

/* Returns zeroed, RW_ALIGN-aligned memory or NULL (also for bytes == 0 it
 * returns a valid unique pointer). Free with rw_free. */
void *rw_alloc(size_t bytes);
/* The same without the zeroing, for arrays written whole before anything
 * reads them (a topology update rebuilds a layer's arrays every ΔT steps,
 * and zeroing them first was a measurable part of it). */
void *rw_alloc_unset(size_t bytes);
void rw_free(void *p);

#endif
