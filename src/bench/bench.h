/* Shared helpers of the benchmarks (src/bench/): a monotonic clock and the
 * statistics the rows report. */
#ifndef RW_BENCH_BENCH_H
#define RW_BENCH_BENCH_H

#include "rewire.h"

/* Seconds on a monotonic clock. */
double bench_now(void);
/* Median (the mean of the middle two for an even count) and minimum of n
 * values; v is left unchanged. */
double bench_median(const double *v, int n);
double bench_min(const double *v, int n);

#endif
