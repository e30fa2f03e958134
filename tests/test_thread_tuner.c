/* The thread tuner's schedule (nn/thread_tuner.h): a probe pair (all
 * threads, then one), the faster kept until the next pair, short segments
 * not counted, and no tuning when asked for none. The trainer's results
 * do not depend on its choices: test_training compares 1, 2 and 5
 * threads, which the tuner mixes within a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nn/thread_tuner.h"

/* Runs one segment of `steps` at the tuner's choice, a step taking `one`
 * seconds on one thread and `all` on all of them; returns the threads it
 * ran on. */
static int segment(thread_tuner *t, int64_t steps, double one, double all)
{
    int threads = thread_tuner_threads(t);
    thread_tuner_record(t, threads, steps, (double)steps * (threads == 1 ? one : all));
    return threads;
}

static void one_thread_wins_until_it_does_not(void **state)
{
    (void)state;
    thread_tuner t;
    thread_tuner_init(&t, 2, 1);
    assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 2.0), 2); /* probe: all */
    assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 2.0), 1); /* probe: one */
    for (int i = 0; i < TUNER_PROBE_EVERY - 2; i++)
        assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 2.0), 1);
    /* The next pair finds two threads faster now. */
    assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 0.6), 2);
    assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 0.6), 1);
    for (int i = 0; i < TUNER_PROBE_EVERY - 2; i++)
        assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 0.6), 2);
    assert_int_equal(t.steps, (int64_t)TUNER_SEGMENT_STEPS * 2 * TUNER_PROBE_EVERY);
    assert_int_equal(t.steps_at_one, (int64_t)TUNER_SEGMENT_STEPS * (TUNER_PROBE_EVERY - 1 + 1));
}

static void a_short_segment_repeats_the_probe(void **state)
{
    (void)state;
    thread_tuner t;
    thread_tuner_init(&t, 4, 1);
    assert_int_equal(segment(&t, 3, 1.0, 9.0), 4); /* an epoch's last 3 steps: not counted */
    assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 9.0), 4);
    assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 9.0), 1);
    assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 9.0), 1);
}

static void no_tuning_keeps_every_thread(void **state)
{
    (void)state;
    thread_tuner t;
    thread_tuner_init(&t, 2, 0);
    for (int i = 0; i < 3 * TUNER_PROBE_EVERY; i++)
        assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 5.0), 2);
    thread_tuner_init(&t, 1, 1); /* one thread: nothing to choose */
    for (int i = 0; i < 3 * TUNER_PROBE_EVERY; i++)
        assert_int_equal(segment(&t, TUNER_SEGMENT_STEPS, 1.0, 5.0), 1);
    assert_int_equal(t.steps_at_one, t.steps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_thread_wins_until_it_does_not),
        cmocka_unit_test(a_short_segment_repeats_the_probe),
        cmocka_unit_test(no_tuning_keeps_every_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
