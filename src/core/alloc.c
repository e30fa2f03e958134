#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *rw_alloc(size_t bytes)
{
    size_t rounded = (bytes + RW_ALIGN - 1) / RW_ALIGN * RW_ALIGN;
    if (rounded < bytes) return NULL; /* overflow */
    if (rounded == 0) rounded = RW_ALIGN;
    void *p = aligned_alloc(RW_ALIGN, rounded);
    if (p) memset(p, 0, rounded);
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
