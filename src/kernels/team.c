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

static _Thread_local team_sync *current;

void team_sync_init(team_sync *s)
{
    atomic_init(&s->arrived, 0);
    atomic_init(&s->round, 0u);
    atomic_init(&s->sleepers, 0);
}

void team_begin(team_sync *s) { current = s; }
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

void team_barrier(void)
{
    team_sync *s = current;
    if (!s) {
#pragma omp barrier
        return;
    }
    int threads = omp_get_num_threads();
    if (threads < 2) return;
    unsigned round = atomic_load(&s->round);
    if (atomic_fetch_add(&s->arrived, 1) == threads - 1) {
        /* Last to arrive: reset the count before opening the barrier, so a
         * thread that runs ahead to the next barrier counts from zero. */
        atomic_store(&s->arrived, 0);
        atomic_fetch_add(&s->round, 1u);
        if (atomic_load(&s->sleepers) > 0) wake_all(&s->round);
        return;
    }
    long long deadline = 0;
    for (int spins = 0; atomic_load_explicit(&s->round, memory_order_acquire) == round; spins++) {
        spin_pause();
        if ((spins & 15) != 15) continue;
        long long t = now_ns();
        if (!deadline) {
            deadline = t + SPIN_NS;
        } else if (t > deadline) {
            atomic_fetch_add(&s->sleepers, 1);
            while (atomic_load(&s->round) == round) sleep_while(&s->round, round);
            atomic_fetch_sub(&s->sleepers, 1);
            break;
        }
    }
}
