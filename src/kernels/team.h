/* Phases of one parallel region, synchronised by completed work rather
 * than by arriving threads.
 *
 * A training step is a dozen phases and an epoch runs all its steps in one
 * OpenMP parallel region. Each phase is cut into chunks that the threads
 * take dynamically (an orphaned `omp for schedule(dynamic) nowait`), and a
 * thread may start the next phase as soon as every chunk of this one is
 * done, whichever threads did them. A thread the OS has descheduled (a
 * machine shared with other work) therefore holds up the others only while
 * it holds an unfinished chunk; when it runs again it finds the chunks of
 * the phases it missed taken and catches up. With a barrier instead, every
 * phase waits for every thread: measured on 2 busy cores, 2 threads ran
 * 3-8x slower than 1. Results do not change: which thread computes a chunk
 * never changes the chunk's bytes.
 *
 * Waiting spins briefly (a phase's imbalance is tens of microseconds), then
 * sleeps in the kernel (Linux futex; elsewhere it yields), which hands the
 * core to the thread everyone waits for.
 *
 * Chunks are claimed from one atomic counter shared by the team, not by
 * OpenMP's `omp for schedule(dynamic) nowait`: libgomp takes a lock to
 * open each worksharing loop, and a thread that found it held slept in
 * the kernel; on this project's 2-core virtual machines that cost tens of
 * microseconds per phase, more than a 99%-sparse phase's work.
 *
 * Rules for code inside a team: all work of a phase is done in chunk loops,
 * TEAM_FOR(c, count) { ...; team_chunk_done(); } (no thread-number tests:
 * any thread may take any chunk, or none); each phase ends with
 * team_phase(chunks) where chunks counts the phase's loop iterations; every
 * thread runs the same loops with the same counts. */
#ifndef RW_KERNELS_TEAM_H
#define RW_KERNELS_TEAM_H

typedef struct {
    _Atomic unsigned done;    /* chunks completed in the region so far */
    _Atomic unsigned claimed; /* chunks taken by a thread so far */
    _Atomic int sleepers;     /* threads asleep (or about to be) on done */
} team_sync;

/* One chunk loop, as seen by the calling thread. */
typedef struct {
    team_sync *sync; /* NULL outside a team */
    unsigned base;   /* the team's count of chunks before this loop */
    int count, next, stride;
} team_loop;

/* Starts a loop of `count` chunks. Outside a team the threads of the
 * enclosing region (or the lone caller) take chunks id, id + threads, ... */
team_loop team_loop_begin(int count);

/* The next chunk for this thread to run, or -1 when none is left for it. */
int team_loop_next(team_loop *l);

/* TEAM_FOR(c, count) { ... team_chunk_done(); } runs the chunks c of a
 * loop that this thread takes (the outer `for` only scopes the loop's
 * state: it runs once). */
#define TEAM_FOR(var, count)                                                                       \
    for (team_loop var##_loop = team_loop_begin(count); var##_loop.stride > 0;                     \
         var##_loop.stride = 0)                                                                    \
        for (int var; (var = team_loop_next(&var##_loop)) >= 0;)

/* Set up by the thread that opens the region, before it does. */
void team_sync_init(team_sync *s);

/* Every thread of the region calls team_begin first and team_end last. */
void team_begin(team_sync *s);
void team_end(void);

/* This thread finished one chunk of the current phase. */
void team_chunk_done(void);

/* End of a phase of `chunks` chunks: returns once all of them, and all of
 * the earlier phases', are done. Outside a team it is OpenMP's barrier (a
 * no-op for a single thread) and team_chunk_done does nothing. */
void team_phase(int chunks);

#endif
