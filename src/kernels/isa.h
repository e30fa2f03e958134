/* The kernel list: one entry per instruction set rewire has kernels for,
 * each a CSR table (kernels.h), an N:M table (nm_kernels.h) and a check
 * that the CPU and the OS can run them. The dispatcher, the twin tests
 * (tests/test_kernels.c, tests/test_nm.c) and the benchmarks (rewire bench
 * kernels --isa) all walk this one list, so a new instruction set is one
 * line in KERNEL_ISA_LIST and its tables (XNNPACK's pattern:
 * src/f32-spmm/f32-spmm-minmax.inc drives its dispatch, tests and
 * benchmarks). */
#ifndef RW_KERNELS_ISA_H
#define RW_KERNELS_ISA_H

#include "kernels/attn_kernels.h"
#include "kernels/kernels.h"
#include "kernels/nm_kernels.h"

/* X(name, what the CPU needs, its check), worst first. Each name has the
 * tables kernels_<name>_table, nm_kernels_<name>_table and
 * attn_kernels_<name>_table, and is a value of REWIRE_KERNELS. */
#define KERNEL_ISA_LIST(X)                                                                         \
    X(scalar, "", cpu_runs_scalar)                                                                 \
    X(avx2, "avx2 fma", cpu_runs_avx2)                                                             \
    X(avx512, "avx512f avx512vl avx512bw avx512dq fma", cpu_runs_avx512)

typedef struct {
    const char *name;     /* "scalar", "avx2", "avx512" */
    const char *needs;    /* the CPU features it needs, space separated */
    const kernel_table *csr;
    const nm_kernel_table *nm;
    const attn_kernel_table *attn;
    int (*cpu_runs)(void); /* 1 when the CPU and the OS support `needs` */
} kernel_isa;

/* The entries, worst first: i in [0, kernel_isa_count()); entry 0 is the
 * scalar reference, which every CPU runs. */
int kernel_isa_count(void);
const kernel_isa *kernel_isa_at(int i);
/* The entry of that name, or NULL. */
const kernel_isa *kernel_isa_named(const char *name);

/* The entry chosen at first use: the best the CPU runs, or, when
 * REWIRE_KERNELS names an entry, that one if the CPU runs it and else the
 * best below it that it runs. */
const kernel_isa *kernel_isa_active(void);

/* Checks (kernels/cpu.c). */
int cpu_runs_scalar(void);
int cpu_runs_avx2(void);
int cpu_runs_avx512(void);
/* The CPU's name (CPUID brand string, "" if it has none) and the features
 * the kernel list asks about that the CPU and the OS support, space
 * separated. Static strings. */
const char *cpu_name(void);
const char *cpu_features(void);

#endif
