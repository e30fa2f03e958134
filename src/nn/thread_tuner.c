#include "nn/thread_tuner.h"

void thread_tuner_init(thread_tuner *t, int max, int tune)
{
    *t = (thread_tuner){.max = max, .tune = tune && max > 1, .best = max};
    /* Probe at once: the first segments tell which setting to start on. */
    if (t->tune) t->probe = 1;
}

int thread_tuner_threads(const thread_tuner *t)
{
    if (t->probe == 1) return t->max;
    if (t->probe == 2) return 1;
    return t->best;
}

void thread_tuner_record(thread_tuner *t, int threads, int64_t steps, double seconds)
{
    t->steps += steps;
    if (threads == 1) t->steps_at_one += steps;
    if (!t->tune || steps < 1) return;
    if (t->probe) {
        /* A short segment (an epoch's last) measures too little: the probe
         * repeats on the next one. */
        if (steps < TUNER_SEGMENT_STEPS / 2) return;
        t->seconds[t->probe - 1] = seconds / (double)steps;
        if (t->probe == 1) {
            t->probe = 2;
            return;
        }
        t->best = t->seconds[1] < t->seconds[0] ? 1 : t->max;
        t->probe = 0;
        t->left = TUNER_PROBE_EVERY - 2;
        return;
    }
    if (--t->left <= 0) t->probe = 1;
}
