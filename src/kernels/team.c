/* syscall() is a GNU/BSD extension. */
#define _GNU_SOURCE
#include "kernels/team.h"

#include <limits.h>
#include <omp.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define spin_pause() _mm_pause()
#else
#define spin_pause() ((void)0)
#endif

/* How long a thread spins before it sleeps: longer than the usual
 * imbalance of a phase, much shorter than a scheduler time slice. */
#define SPIN_NS 100000

/* Per thread: the team, and the chunks of every phase so far (the same on
 * all threads once they reach the same phase). */
static _Thread_local team_sync *current;
static _Thread_local unsigned expected;
static _Thread_local unsigned loop_base; /* chunks of every loop so far */

void team_sync_init(team_sync *s)
{
    atomic_init(&s->done, 0u);
    atomic_init(&s->claimed, 0u);
    atomic_init(&s->sleepers, 0);
}

void team_begin(team_sync *s)
{
    current = s;
    expected = 0;
    loop_base = 0;
}

void team_end(void) { current = NULL; }

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_while(_Atomic unsigned *word, unsigned value)
{
#if defined(__linux__)
    /* Returns at once if *word already differs: no wake-up is lost. */
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
#else
    (void)word, (void)value;
    sched_yield();
#endif
}

static void wake_all(_Atomic unsigned *word)
{
#if defined(__linux__)
    syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)word;
#endif
}

/* Whether `done` has reached `target` (counters wrap; phases are far
 * fewer than 2^31 chunks apart). */
static int reached(unsigned done, unsigned target) { return (int)(done - target) >= 0; }

team_loop team_loop_begin(int count)
{
    team_loop l = {current, 0, count > 0 ? count : 0, 0, 1};
    if (current) {
        l.base = loop_base;
        loop_base += (unsigned)l.count;
    } else if (omp_in_parallel()) {
        l.next = omp_get_thread_num();
        l.stride = omp_get_num_threads();
    }
    return l;
}

int team_loop_next(team_loop *l)
{
    if (!l->sync) {
        int c = l->next;
        if (c >= l->count) return -1;
        l->next += l->stride;
        return c;
    }
    /* Loops are numbered one after another on the shared counter. While an
     * earlier loop of the same phase still has chunks to take, this thread
     * leaves its loop to the thread taking them, which reaches it next
     * (earlier phases are complete, so their chunks were all taken). */
    unsigned c = atomic_load_explicit(&l->sync->claimed, memory_order_relaxed);
    for (;;) {
        if (!reached(c, l->base) || reached(c, l->base + (unsigned)l->count)) return -1;
        if (atomic_compare_exchange_weak_explicit(&l->sync->claimed, &c, c + 1u,
                                                  memory_order_relaxed, memory_order_relaxed))
            return (int)(c - l->base);
    }
}

/* Published at once, chunk by chunk, so that a thread descheduled between
 * two chunks holds nobody up. */
void team_chunk_done(void)
{
    team_sync *s = current;
    if (!s) return;
    atomic_fetch_add(&s->done, 1u);
    if (atomic_load(&s->sleepers) > 0) wake_all(&s->done);
}

void team_phase(int chunks)
{
    team_sync *s = current;
    if (!s) {
#pragma omp barrier
        return;
    }
    expected += (unsigned)chunks;
    long long deadline = 0;
    for (int spins = 0;; spins++) {
        unsigned now = atomic_load_explicit(&s->done, memory_order_acquire);
        if (reached(now, expected)) return;
        spin_pause();
        if ((spins & 15) != 15) continue;
        long long t = now_ns();
        if (!deadline) {
            deadline = t + SPIN_NS;
        } else if (t > deadline) {
            atomic_fetch_add(&s->sleepers, 1);
            while (!reached(now = atomic_load(&s->done), expected)) sleep_while(&s->done, now);
            atomic_fetch_sub(&s->sleepers, 1);
            return;
        }
    }
}
