/* Counts the heap allocations of a program, printed at exit, to check that
 * a training step allocates nothing: run the same training for 10 and for
 * 100 steps and compare the counts.
 *
 *   cc -O2 -shared -fPIC tools/count_allocs.c -o count_allocs.so
 *   LD_PRELOAD=./count_allocs.so build/rewire bench train --steps 10 --repeats 1 >/dev/null
 *   LD_PRELOAD=./count_allocs.so build/rewire bench train --steps 100 --repeats 1 >/dev/null
 *
 * glibc only (it forwards to glibc's __libc_* allocators). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static _Atomic long allocations;

void *malloc(size_t n)
{
    allocations++;
    return __libc_malloc(n);
}

void *calloc(size_t count, size_t n)
{
    allocations++;
    return __libc_calloc(count, n);
}

void *realloc(void *p, size_t n)
{
    allocations++;
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    allocations++;
    return __libc_memalign(align, n);
}

int posix_memalign(void **p, size_t align, size_t n)
{
    allocations++;
    *p = __libc_memalign(align, n);
    return *p ? 0 : ENOMEM;
}

__attribute__((destructor)) static void report(void)
{
    fprintf(stderr, "allocations: %ld\n", (long)allocations);
}
