#include "core/alloc.h"

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
