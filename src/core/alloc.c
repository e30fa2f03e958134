/* madvise and MADV_HUGEPAGE are outside POSIX. */
#define _DEFAULT_SOURCE
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* Buffers at least this big get 2 MB alignment and ask the kernel for huge
 * pages: the kernels read rows of a wide layer's activations (128 MB for
 * 250,000 features at batch 128) in random order, and with 4 KB pages
 * nearly every row is a TLB miss. */
#define HUGE_MIN ((size_t)8 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

static size_t rounded_size(size_t bytes)
{
    size_t rounded = (bytes + RW_ALIGN - 1) / RW_ALIGN * RW_ALIGN;
    if (rounded < bytes) return 0; /* overflow */
    return rounded == 0 ? RW_ALIGN : rounded;
}

void *rw_alloc_unset(size_t bytes)
{
    size_t rounded = rounded_size(bytes);
    if (rounded == 0) return NULL; /* overflow */
    void *p = NULL;
    if (rounded >= HUGE_MIN) {
        if (posix_memalign(&p, HUGE_ALIGN, rounded) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        madvise(p, rounded, MADV_HUGEPAGE); /* a hint: failure changes nothing */
#endif
    } else {
        p = aligned_alloc(RW_ALIGN, rounded);
    }
    return p;
}

void *rw_alloc(size_t bytes)
{
    void *p = rw_alloc_unset(bytes);
    /* Zeroed whole, the rounding up to RW_ALIGN included. */
    if (p) memset(p, 0, rounded_size(bytes));
    return p;
}

void rw_free(void *p) { free(p); }

int64_t rw_available_memory(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb > 0 ? (int64_t)kb * 1024 : 0;
}
