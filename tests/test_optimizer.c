/* Optimizers against torch.optim (three steps on fixed gradients, vectors
 * from tools/make_reference.py) and the learning-rate schedules. */
#include <math.h>
#include <string.h>

#include "io/safetensors.h"
#include "nn/optimizer.h"
#include "testutil.h"

static void copy_floats(const st_file *f, const char *name, float *out, int64_t n)
{
    const st_tensor *t = st_find(f, name);
    assert_non_null(t);
    assert_int_equal(t->count, n);
    memcpy(out, t->data, sizeof(float) * (size_t)n);
}

static void check_optimizer(const char *name, rw_train_config c, float lr)
{
    st_file f;
    assert_int_equal(st_read("data/reference/optimizers.ref.safetensors", &f), RW_OK);
    float w[16], g[3][16], want[16], m1[16] = {0}, m2[16] = {0};
    copy_floats(&f, "w0", w, 16);
    copy_floats(&f, "grads", &g[0][0], 48);
    copy_floats(&f, name, want, 16);
    st_file_free(&f);
    for (int t = 0; t < 3; t++) optimizer_step(&c, lr, t + 1, w, g[t], m1, m2, 16);
    double diff = tu_max_rel_diff(w, want, 16);
    if (diff >= 1e-6) fail_msg("%s: weights after 3 steps off by %g", name, diff);
}

static void test_sgd_momentum(void **state)
{
    (void)state;
    rw_train_config c = rw_train_config_default();
    c.momentum = 0.9f;
    c.weight_decay = 0.01f;
    check_optimizer("sgd", c, 0.1f);
    c.nesterov = 1;
    check_optimizer("nesterov", c, 0.1f);
    c = rw_train_config_default();
    c.momentum = 0;
    check_optimizer("plain_sgd", c, 0.1f);
}

static void test_adamw(void **state)
{
    (void)state;
    rw_train_config c = rw_train_config_default();
    c.optimizer = RW_OPT_ADAMW;
    c.weight_decay = 0.01f;
    check_optimizer("adamw", c, 0.01f);
}

static void test_schedules(void **state)
{
    (void)state;
    rw_train_config c = rw_train_config_default();
    c.lr = 1.0f;
    c.schedule = RW_SCHED_CONSTANT;
    assert_true(schedule_lr(&c, 0, 10, 100) == 1.0f && schedule_lr(&c, 99, 10, 100) == 1.0f);

    c.schedule = RW_SCHED_COSINE;
    assert_true(schedule_lr(&c, 0, 10, 100) == 1.0f);
    assert_true(fabsf(schedule_lr(&c, 50, 10, 100) - 0.5f) < 1e-6f);
    assert_true(schedule_lr(&c, 99, 10, 100) < 0.001f);

    c.warmup_epochs = 2; /* 20 steps of linear warm-up, then cosine over 80 */
    assert_true(fabsf(schedule_lr(&c, 0, 10, 100) - 0.05f) < 1e-6f);
    assert_true(fabsf(schedule_lr(&c, 9, 10, 100) - 0.5f) < 1e-6f);
    assert_true(schedule_lr(&c, 20, 10, 100) == 1.0f);
    assert_true(fabsf(schedule_lr(&c, 60, 10, 100) - 0.5f) < 1e-6f);

    c.warmup_epochs = 0;
    c.schedule = RW_SCHED_STEP;
    c.step_every = 3;
    c.step_gamma = 0.5f;
    assert_true(schedule_lr(&c, 29, 10, 100) == 1.0f);
    assert_true(schedule_lr(&c, 30, 10, 100) == 0.5f);
    assert_true(schedule_lr(&c, 65, 10, 100) == 0.25f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
