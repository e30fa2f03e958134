/* Kernel tables and the one-time choice between them. The scalar table
 * always exists; the AVX2 one only when the CPU has AVX2 and FMA, so the
 * library runs anywhere while spmm_avx2.c alone is built with -mavx2. */
#include "kernels/kernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Defined in spmm_scalar.c and spmm_avx2.c. */
extern const kernel_table kernels_scalar_table;
extern const kernel_table kernels_avx2_table;

const kernel_table *kernels_scalar(void) { return &kernels_scalar_table; }

const kernel_table *kernels_avx2(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &kernels_avx2_table;
    return NULL;
}

/* Chosen on first use. Two threads racing here compute the same answer,
 * so an atomic pointer is all the synchronisation needed. */
static _Atomic(const kernel_table *) active_table;

const kernel_table *kernels_active(void)
{
    const kernel_table *k = atomic_load_explicit(&active_table, memory_order_acquire);
    if (k) return k;
    const char *env = getenv("REWIRE_KERNELS");
    k = env && strcmp(env, "scalar") == 0 ? NULL : kernels_avx2();
    if (!k) k = kernels_scalar();
    atomic_store_explicit(&active_table, k, memory_order_release);
    return k;
}

const char *rw_kernel_isa(void) { return kernels_active()->name; }
