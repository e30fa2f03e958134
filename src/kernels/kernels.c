/* The kernel list (isa.h) and the one-time choice from it. The scalar
 * tables always run; the others only where kernels/cpu.c says the CPU and
 * the OS support them, so the library runs anywhere while only the
 * *_avx2.c and *_avx512.c files are built for those instruction sets. */
#include "kernels/isa.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DECLARE_TABLES(name, needs, check)                                                         \
    extern const kernel_table kernels_##name##_table;                                             \
    extern const nm_kernel_table nm_kernels_##name##_table;                                       \
    extern const attn_kernel_table attn_kernels_##name##_table;
KERNEL_ISA_LIST(DECLARE_TABLES)
#undef DECLARE_TABLES

static const kernel_isa isas[] = {
#define ENTRY(name, needs, check)                                                                  \
    {#name, needs, &kernels_##name##_table, &nm_kernels_##name##_table,                            \
     &attn_kernels_##name##_table, check},
    KERNEL_ISA_LIST(ENTRY)
#undef ENTRY
};
#define N_ISAS ((int)(sizeof isas / sizeof isas[0]))

int kernel_isa_count(void) { return N_ISAS; }

const kernel_isa *kernel_isa_at(int i) { return i >= 0 && i < N_ISAS ? &isas[i] : NULL; }

const kernel_isa *kernel_isa_named(const char *name)
{
    for (int i = 0; name && i < N_ISAS; i++)
        if (!strcmp(isas[i].name, name)) return &isas[i];
    return NULL;
}

/* Chosen on first use. Two threads racing here compute the same answer,
 * so an atomic pointer is all the synchronisation needed. */
static _Atomic(const kernel_isa *) active_isa;

const kernel_isa *kernel_isa_active(void)
{
    const kernel_isa *k = atomic_load_explicit(&active_isa, memory_order_acquire);
    if (k) return k;
    /* The best the CPU runs, at most the one asked for. */
    const kernel_isa *asked = kernel_isa_named(getenv("REWIRE_KERNELS"));
    int top = asked ? (int)(asked - isas) : N_ISAS - 1;
    k = &isas[0];
    for (int i = top; i > 0; i--)
        if (isas[i].cpu_runs()) {
            k = &isas[i];
            break;
        }
    atomic_store_explicit(&active_isa, k, memory_order_release);
    return k;
}

const kernel_table *kernels_scalar(void) { return isas[0].csr; }

const kernel_table *kernels_active(void) { return kernel_isa_active()->csr; }

const attn_kernel_table *attn_kernels_scalar(void) { return isas[0].attn; }

const attn_kernel_table *attn_kernels_active(void) { return kernel_isa_active()->attn; }

const char *rw_kernel_isa(void) { return kernel_isa_active()->name; }

/* Names of the entries the CPU runs, best last; filled once. */
static pthread_once_t runnable_once = PTHREAD_ONCE_INIT;
static char runnable[64];

static void fill_runnable(void)
{
    for (int i = 0; i < N_ISAS; i++)
        if (isas[i].cpu_runs()) {
            if (runnable[0]) strncat(runnable, " ", sizeof runnable - strlen(runnable) - 1);
            strncat(runnable, isas[i].name, sizeof runnable - strlen(runnable) - 1);
        }
}

void rw_kernel_get_info(rw_kernel_info *info)
{
    pthread_once(&runnable_once, fill_runnable);
    memset(info, 0, sizeof *info);
    info->cpu = cpu_name();
    info->features = cpu_features();
    info->runnable = runnable;
    info->chosen = rw_kernel_isa();
    info->requested = getenv("REWIRE_KERNELS");
}
