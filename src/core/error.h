/* Error reporting shared by every module: a status code for what the caller
 * can cause, plus a per-thread message; an assert for broken invariants. */
#ifndef RW_CORE_ERROR_H
#define RW_CORE_ERROR_H

#include "rewire.h"

/* Formats the message behind rw_last_error() and returns `status`, so that
 * callers can write `return rw_fail(RW_ERR_FORMAT, "%s: ...", path);`. */
rw_status rw_fail(rw_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears the message (used at the start of public calls that succeed). */
void rw_clear_error(void);

/* The second channel (ggml's GGML_ASSERT): an internal invariant that no
 * input can break is broken, so the state cannot be trusted. Prints the
 * file, line and message to stderr and aborts: the one place the library
 * prints or stops a program. Never for what a caller or a file can cause
 * (that is rw_fail's). Always compiled in. */
#define RW_ASSERT(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) rw_abort(__FILE__, __LINE__, #cond, __VA_ARGS__);                             \
    } while (0)

_Noreturn void rw_abort(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
