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

#endif
