#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];

rw_status rw_fail(rw_status status, const char *fmt, ...)
{
    /* Formatted apart first: a caller may pass rw_last_error() itself as
     * an argument, to put context before the message it already holds. */
    char message[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    memcpy(last_error, message, sizeof last_error);
    return status;
}

void rw_clear_error(void) { last_error[0] = '\0'; }

void rw_abort(const char *file, int line, const char *cond, const char *fmt, ...)
{
    fprintf(stderr, "rewire: internal error at %s:%d: %s: ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

const char *rw_last_error(void) { return last_error; }

const char *rw_status_string(rw_status status)
{
    switch (status) {
    case RW_OK: return "ok";
    case RW_ERR_INVALID_ARGUMENT: return "invalid argument";
    case RW_ERR_NO_MEMORY: return "out of memory";
    case RW_ERR_IO: return "i/o error";
    case RW_ERR_FORMAT: return "malformed input";
    case RW_ERR_DIVERGED: return "training diverged";
    }
    return "unknown status";
}
