/* rw_run_stop: a run asked to stop (here from its own progress callback,
 * as a signal handler or another thread would) stops after the step in
 * progress, in the middle of an epoch, checkpoints there, and the run
 * resumed from that checkpoint ends with the bytes of a run never
 * stopped; a stop asked before the call stops it after its first step
 * and is then forgotten; IMP stops at the end of the epoch in progress;
 * a language model's run stops as a classifier's does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

typedef struct {
    rw_run *run;
    int64_t stop_at; /* ask for a stop once this step is done (0: never) */
    int64_t last_step;
} stopper;

static int on_progress(const rw_progress *p, void *user)
{
    stopper *s = user;
    s->last_step = p->step;
    if (s->stop_at > 0 && p->step == s->stop_at) rw_run_stop(s->run);
    return 0;
}

static rw_model *make_model(void)
{
    static const int sizes[] = {784, 64, 32, 10};
    rw_model_config c = rw_model_config_default();
    c.sizes = sizes;
    c.n_layers = 3;
    c.sparsity = 0.9;
    c.seed = 2;
    rw_model *m;
    assert_int_equal(rw_model_create(&c, &m), RW_OK);
    rw_model_set_normalization(m, 0.28f, 0.35f);
    return m;
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    int same = 1, ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        same &= ca == cb;
    } while (ca != EOF && cb != EOF);
    fclose(fa);
    fclose(fb);
    return same;
}

static void test_stop_mid_epoch_and_resume(void **state)
{
    (void)state;
    rw_dataset *train, *test;
    assert_int_equal(tu_small_head(0, 600, &train), 0);
    assert_int_equal(tu_small_head(1, 200, &test), 0);
    rw_dst_config dst = rw_dst_config_preset(RW_DST_RIGL);
    dst.update_every = 6;
    char whole[256], part[256], ckpt[256];
    snprintf(whole, sizeof whole, "%s", tu_temp_path("stop-whole.safetensors"));
    snprintf(part, sizeof part, "%s", tu_temp_path("stop-part.safetensors"));
    snprintf(ckpt, sizeof ckpt, "%s", tu_temp_path("stop.ckpt"));
    /* 19 steps an epoch: step 25 is in the middle of the second. */
    for (int stopped = 0; stopped < 2; stopped++) {
        rw_model *m = make_model();
        rw_run_config c = rw_run_config_default();
        c.train.epochs = 3;
        c.train.batch = 32;
        c.dst = &dst;
        c.out = stopped ? part : whole;
        c.checkpoint = stopped ? ckpt : NULL;
        stopper s = {NULL, stopped ? 25 : 0, 0};
        c.progress = on_progress;
        c.user = &s;
        assert_int_equal(rw_run_new(m, &c, &s.run), RW_OK);
        rw_run_result res;
        assert_int_equal(rw_run_train(s.run, train, NULL, test, &res), RW_OK);
        assert_int_equal(res.stopped, stopped);
        assert_int_equal(res.steps, stopped ? 25 : 57);
        assert_int_equal(s.last_step, stopped ? 25 : 57);
        if (stopped) assert_int_equal(res.checkpoint_step, 25);
        assert_true(res.test.count == 200);
        rw_run_free(s.run);
        rw_model_free(m);
    }
    rw_model *m;
    rw_run *r;
    assert_int_equal(rw_run_resume(ckpt, 0, &m, &r, NULL), RW_OK);
    rw_progress pos;
    rw_trainer_position(rw_run_trainer(r), &pos);
    assert_int_equal(pos.step, 25);
    assert_int_equal(pos.epoch, 1);
    rw_run_config c = rw_run_config_default();
    c.dst = &dst;
    c.out = part;
    assert_int_equal(rw_run_configure(r, &c), RW_OK);
    rw_run_result res;
    assert_int_equal(rw_run_train(r, train, NULL, test, &res), RW_OK);
    assert_false(res.stopped);
    assert_int_equal(res.steps, 57);
    rw_run_free(r);
    rw_model_free(m);
    assert_true(same_file(whole, part));
    unlink(whole);
    unlink(part);
    unlink(ckpt);
    rw_dataset_free(train);
    rw_dataset_free(test);
}

/* Asked before the call: one step, then the flag is gone and the next
 * call trains to the end. */
static void test_stop_before_the_call(void **state)
{
    (void)state;
    rw_dataset *train, *test;
    assert_int_equal(tu_small_head(0, 200, &train), 0);
    assert_int_equal(tu_small_head(1, 100, &test), 0);
    rw_model *m = make_model();
    rw_run_config c = rw_run_config_default();
    c.train.epochs = 2;
    c.train.batch = 50;
    rw_run *r;
    assert_int_equal(rw_run_new(m, &c, &r), RW_OK);
    rw_run_stop(r);
    rw_run_result res;
    assert_int_equal(rw_run_train(r, train, NULL, test, &res), RW_OK);
    assert_true(res.stopped);
    assert_int_equal(res.steps, 1);
    assert_int_equal(rw_run_train(r, train, NULL, test, &res), RW_OK);
    assert_false(res.stopped);
    assert_int_equal(res.steps, 8);
    rw_run_stop(NULL);
    rw_run_free(r);
    rw_model_free(m);
    rw_dataset_free(train);
    rw_dataset_free(test);
}

typedef struct {
    rw_run *run;
    int epochs;
} round_stopper;

static int on_round_epoch(const rw_run_epoch *e, void *user)
{
    round_stopper *s = user;
    (void)e;
    s->epochs++;
    return 0;
}

/* IMP rewinds and retrains in phases with no step-level stop: it stops
 * at the end of the epoch in progress. */
static void test_stop_imp_at_epoch_end(void **state)
{
    (void)state;
    rw_dataset *train, *test;
    assert_int_equal(tu_small_head(0, 200, &train), 0);
    assert_int_equal(tu_small_head(1, 100, &test), 0);
    rw_prune_schedule ps = rw_prune_schedule_preset(RW_PRUNE_IMP, 0.95);
    ps.rounds = 2;
    rw_run_config c = rw_run_config_default();
    c.train.epochs = 3;
    c.train.batch = 50;
    c.prune = &ps;
    round_stopper s = {NULL, 0};
    c.on_epoch = on_round_epoch;
    c.user = &s;
    /* Dense at the start, as IMP begins. */
    rw_model *m;
    static const int sizes[] = {784, 64, 32, 10};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 3;
    assert_int_equal(rw_model_create(&mc, &m), RW_OK);
    assert_int_equal(rw_run_new(m, &c, &s.run), RW_OK);
    rw_run_stop(s.run);
    rw_run_result res;
    assert_int_equal(rw_run_train(s.run, train, NULL, test, &res), RW_OK);
    assert_true(res.stopped);
    assert_int_equal(s.epochs, 1);
    rw_run_free(s.run);
    rw_model_free(m);
    rw_dataset_free(train);
    rw_dataset_free(test);
}

/* A language model's run: stopped after its first step, checkpointed there. */
static void test_stop_language_model(void **state)
{
    (void)state;
    char s[4000];
    for (size_t i = 0; i < sizeof s; i++) s[i] = "abcde fgh\n"[(i * 7 + i / 13) % 10];
    rw_tokenizer *tok;
    rw_text *text;
    assert_int_equal(rw_tokenizer_bytes(&tok), RW_OK);
    assert_int_equal(rw_text_from_memory("made.txt", s, sizeof s, tok, 0.1, 16, &text), RW_OK);
    rw_gpt_config g = rw_gpt_config_default();
    g.n_layer = 1;
    g.n_head = 2;
    g.n_embd = 16;
    g.context = 16;
    rw_model *m;
    assert_int_equal(rw_gpt_create(&g, &m), RW_OK);
    rw_lm_schedule sch = rw_lm_schedule_default();
    sch.context = 16;
    sch.steps = 30;
    sch.warmup_steps = 2;
    sch.eval_every = 10;
    sch.eval_batches = 1;
    char ckpt[256];
    snprintf(ckpt, sizeof ckpt, "%s", tu_temp_path("stop-lm.ckpt"));
    rw_run_config c = rw_run_config_default();
    c.train.optimizer = RW_OPT_ADAMW;
    c.train.lr = 1e-3f;
    c.train.batch = 2;
    c.lm = &sch;
    c.checkpoint = ckpt;
    rw_run *r;
    assert_int_equal(rw_run_new(m, &c, &r), RW_OK);
    rw_run_stop(r);
    rw_run_result res;
    rw_lm_eval fin;
    assert_int_equal(rw_run_train_text(r, text, &res, &fin), RW_OK);
    assert_true(res.stopped);
    assert_int_equal(res.steps, 1);
    assert_int_equal(res.checkpoint_step, 1);
    assert_true(rw_is_checkpoint(ckpt));
    rw_run_free(r);
    rw_model_free(m);
    unlink(ckpt);
    rw_text_free(text);
    rw_tokenizer_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_mid_epoch_and_resume),
        cmocka_unit_test(test_stop_before_the_call),
        cmocka_unit_test(test_stop_imp_at_epoch_end),
        cmocka_unit_test(test_stop_language_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
