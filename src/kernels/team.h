/* Barriers for the phases of one parallel region.
 *
 * A training step is a dozen phases, each ending in a barrier, and an epoch
 * runs all its steps in one OpenMP parallel region. OpenMP's own barrier
 * spins for a long time before sleeping (libgomp: 300,000 spins). On a
 * machine shared with other work that is the worst case: when the OS
 * deschedules one of our threads, the other spins on the core the first one
 * is waiting for, and every barrier costs a scheduler time slice (measured
 * here: 2 threads 8x slower than 1 while other programs ran). These
 * barriers spin only briefly (a phase's imbalance is tens of microseconds),
 * then sleep in the kernel (Linux futex; elsewhere they yield), which hands
 * the core to the thread everyone waits for. */
#ifndef RW_KERNELS_TEAM_H
#define RW_KERNELS_TEAM_H

typedef struct {
    _Atomic int arrived;      /* threads at the barrier in this round */
    _Atomic unsigned round;   /* bumped by the last thread to arrive */
    _Atomic int sleepers;     /* threads asleep (or about to be) on round */
} team_sync;

/* Set up by the thread that opens the region, before it does. */
void team_sync_init(team_sync *s);

/* Every thread of the region calls team_begin first and team_end last;
 * in between, team_barrier waits for all of them on s. Outside a region
 * (or in a region that did not call team_begin), team_barrier is OpenMP's
 * own barrier, a no-op for a single thread. */
void team_begin(team_sync *s);
void team_end(void);
void team_barrier(void);

#endif
