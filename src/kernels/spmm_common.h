/* What the AVX2 and AVX-512 CSR kernels (spmm_avx2.c, spmm_avx512.c)
 * share that needs no instruction set: the epilogue modes, the 16/32-bit
 * index arrays, and the dispatch that makes both constants. */
#ifndef RW_KERNELS_SPMM_COMMON_H
#define RW_KERNELS_SPMM_COMMON_H

#include "kernels/kernels.h"

/* Epilogue modes of the row core (kernels.h): plain, the forward activation
 * of the result, or the backward derivative taken from a gate row. Every
 * call site passes a constant, so each mode compiles to its own loop. */
enum { MODE_PLAIN, MODE_FWD_RELU, MODE_FWD_LEAKY, MODE_BWD_RELU, MODE_BWD_LEAKY };

static inline int epilogue_mode(kernel_epilogue e, int backward)
{
    if (e.act == KACT_RELU) return backward ? MODE_BWD_RELU : MODE_FWD_RELU;
    if (e.act == KACT_LEAKY) return backward ? MODE_BWD_LEAKY : MODE_FWD_LEAKY;
    return MODE_PLAIN;
}

/* A column (or row) index array, 32-bit or its 16-bit copy; `narrow` is a
 * constant at every call site, so each width compiles to its own loop. */
typedef struct {
    const int32_t *wide;
    const uint16_t *narrow;
} index_ref;

#define IDX(r, k) (narrow ? (int)(r).narrow[k] : (int)(r).wide[k])

static inline index_ref index_at(const int32_t *wide, const uint16_t *narrow, int offset)
{
    index_ref r = {wide ? wide + offset : NULL, narrow ? narrow + offset : NULL};
    return r;
}

/* Calls F(..., mode, narrow, slope) with both as constants (slope is the
 * caller's vector of the leaky slope). */
#define DISPATCH(F, mode, narrow, ...)                                                             \
    do {                                                                                           \
        if (narrow) {                                                                              \
            if ((mode) == MODE_FWD_RELU) F(__VA_ARGS__, MODE_FWD_RELU, 1, slope);                  \
            else if ((mode) == MODE_FWD_LEAKY) F(__VA_ARGS__, MODE_FWD_LEAKY, 1, slope);           \
            else if ((mode) == MODE_BWD_RELU) F(__VA_ARGS__, MODE_BWD_RELU, 1, slope);             \
            else if ((mode) == MODE_BWD_LEAKY) F(__VA_ARGS__, MODE_BWD_LEAKY, 1, slope);           \
            else F(__VA_ARGS__, MODE_PLAIN, 1, slope);                                             \
        } else {                                                                                   \
            if ((mode) == MODE_FWD_RELU) F(__VA_ARGS__, MODE_FWD_RELU, 0, slope);                  \
            else if ((mode) == MODE_FWD_LEAKY) F(__VA_ARGS__, MODE_FWD_LEAKY, 0, slope);           \
            else if ((mode) == MODE_BWD_RELU) F(__VA_ARGS__, MODE_BWD_RELU, 0, slope);             \
            else if ((mode) == MODE_BWD_LEAKY) F(__VA_ARGS__, MODE_BWD_LEAKY, 0, slope);           \
            else F(__VA_ARGS__, MODE_PLAIN, 0, slope);                                             \
        }                                                                                          \
    } while (0)

/* The transposed view reaches a value through t_perm, a random 4-byte read
 * that costs a whole cache line per nonzero and per batch chunk. So the
 * backward kernels gather the values of a block of columns once into a
 * contiguous buffer of this many, and the chunks then read that. */
#define GATHER_MAX 4096

#endif
