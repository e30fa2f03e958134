#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static _Thread_local char last_error[1024];

rw_status rw_fail(rw_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
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
