/* Which runs the training steps faster, one thread or all of them: timed
 * on a segment of steps with each now and then, the faster kept until the
 * next such pair. A second thread can cost more than it gives when a
 * step's work is small (99% sparsity) and the cores share data slowly,
 * and on a virtual machine which case holds changes within minutes
 * (docs/performance.md, "Why two threads give little"). Results do not
 * depend on the thread count, so the choice changes only the speed. */
#ifndef RW_NN_THREAD_TUNER_H
#define RW_NN_THREAD_TUNER_H

#include <stdint.h>

#define TUNER_SEGMENT_STEPS 32
/* Segments between the ends of two probe pairs (one at each setting). */
#define TUNER_PROBE_EVERY 16

typedef struct {
    int max;            /* the threads the run may use */
    int tune;           /* 0: every step on max */
    int best;           /* the faster setting found, 1 or max */
    int left;           /* segments before the next probe pair */
    int probe;          /* 0: not probing; 1: timing max threads; 2: timing one */
    double seconds[2];  /* per step of the probe pair: [0] max threads, [1] one */
    int64_t steps_at_one, steps; /* steps run at one thread, and in all */
} thread_tuner;

/* max: the thread count asked for; tune 0 runs every step on max. */
void thread_tuner_init(thread_tuner *t, int max, int tune);

/* The threads for the next segment of steps (TUNER_SEGMENT_STEPS). */
int thread_tuner_threads(const thread_tuner *t);

/* A segment of `steps` steps ran on `threads` threads in `seconds`. */
void thread_tuner_record(thread_tuner *t, int threads, int64_t steps, double seconds);

#endif
