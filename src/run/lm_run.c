/* Language models through the library (rewire.h): the loss over a text's
 * split, generation with a KV cache, and the training run with nanoGPT's
 * learning-rate schedule, estimates, the metrics log and checkpoints. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/metrics.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/network.h"
#include "nn/trainer.h"
#include "run/dist.h"
#include "run/run_internal.h"
#include "text/text_api.h"

/* Logits of an evaluation batch stay under this ([vocab][columns] floats). */
#define LM_EVAL_LOGIT_BYTES ((size_t)256 << 20)
/* A stream of the text's windows apart from the training steps'. */
#define LM_ESTIMATE_STREAM 0x6c6d5f6573746dull

rw_lm_schedule rw_lm_schedule_default(void)
{
    rw_lm_schedule s;
    memset(&s, 0, sizeof s);
    s.context = 64;
    s.steps = 2000;
    s.warmup_steps = 100;
    s.min_lr = 1e-4f;
    s.eval_every = 250;
    s.eval_batches = 20;
    s.seed = 1;
    return s;
}

/* The model must be a language model that takes `context` tokens and
 * predicts every token of `text`'s tokenizer. */
static rw_status check_lm(const rw_model *m, const rw_text *text, int context)
{
    int max = rw_model_context(m);
    if (max == 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "the model is a classifier, not a language model (its first layer is "
                       "%s, not token embeddings)", m->n_layers ? m->layers[0]->name : "none");
    if (context < 1 || context > max)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "context %d: the model takes sequences of 1 to %d tokens", context, max);
    if (text && text->c->vocab_size > rw_model_classes(m))
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "the tokenizer (%s) has %d tokens but the model predicts %d",
                       text->tok->spec, (int)text->c->vocab_size, rw_model_classes(m));
    return RW_OK;
}

/* ---- Evaluation --------------------------------------------------------- */

typedef struct {
    double loss;   /* summed, nats */
    int64_t tokens;
    int64_t bytes; /* the targets' bytes */
} lm_sums;

/* Adds the loss of every column of the last forward pass with a target. */
static void add_losses(const rw_model *m, const workspace *ws, const int32_t *targets, int n,
                       const tokenizer *tok, lm_sums *s, double *col)
{
    const float *logits = network_logits(m, ws);
    int vocab = rw_model_classes(m), bp = ws->bp;
    double *mx = col, *sum = col + n;
    for (int j = 0; j < n; j++) mx[j] = -INFINITY, sum[j] = 0;
    for (int v = 0; v < vocab; v++) {
        const float *row = logits + (size_t)v * bp;
        for (int j = 0; j < n; j++) mx[j] = row[j] > mx[j] ? row[j] : mx[j];
    }
    for (int v = 0; v < vocab; v++) {
        const float *row = logits + (size_t)v * bp;
        for (int j = 0; j < n; j++) sum[j] += exp((double)row[j] - mx[j]);
    }
    for (int j = 0; j < n; j++) {
        if (targets[j] < 0) continue;
        s->loss += log(sum[j]) + mx[j] - logits[(size_t)targets[j] * bp + j];
        s->tokens++;
        size_t len = 0;
        tokenizer_token_bytes(tok, targets[j], &len);
        s->bytes += (int64_t)len;
    }
}

/* An evaluator: a forward-only workspace for `windows` windows of T. */
typedef struct {
    workspace ws;
    int windows, T;
    int32_t *in, *tg;
    double *col;
} lm_evaluator;

static void evaluator_free(lm_evaluator *e)
{
    workspace_free(&e->ws);
    free(e->in);
    free(e->tg);
    free(e->col);
}

static rw_status evaluator_init(lm_evaluator *e, const rw_model *m, int T, int windows)
{
    memset(e, 0, sizeof *e);
    size_t per_window = (size_t)T * (size_t)rw_model_classes(m) * sizeof(float);
    size_t fit = LM_EVAL_LOGIT_BYTES / per_window;
    if (fit < 1) fit = 1;
    if ((size_t)windows > fit) windows = (int)fit;
    e->windows = windows;
    e->T = T;
    int n = windows * T;
    e->in = malloc(sizeof(int32_t) * (size_t)n);
    e->tg = malloc(sizeof(int32_t) * (size_t)n);
    e->col = malloc(sizeof(double) * 2 * (size_t)n);
    rw_status st = e->in && e->tg && e->col ? workspace_init(&e->ws, m, n, 0)
                                            : rw_fail(RW_ERR_NO_MEMORY, "out of memory evaluating");
    if (st != RW_OK) evaluator_free(e);
    return st;
}

static void evaluator_pass(lm_evaluator *e, const rw_model *m, int windows, const tokenizer *tok,
                           lm_sums *s)
{
    e->ws.tokens = e->in;
    e->ws.n = windows * e->T;
    e->ws.seq_len = e->T;
    e->ws.pos0 = 0;
    network_forward(m, &e->ws);
    add_losses(m, &e->ws, e->tg, windows * e->T, tok, s, e->col);
}

static void sums_to_eval(const lm_sums *s, rw_lm_eval *out)
{
    out->tokens = s->tokens;
    out->loss = s->tokens ? s->loss / (double)s->tokens : 0;
    out->bits_per_byte = s->bytes ? s->loss / log(2.0) / (double)s->bytes : 0;
}

/* The whole split, window after window. */
static rw_status evaluate_split(lm_evaluator *e, const rw_model *m, const rw_text *text,
                                corpus_split split, rw_lm_eval *out)
{
    corpus_iter it;
    rw_status st = corpus_iter_begin(&it, text->c, split, e->T);
    if (st != RW_OK) return st;
    lm_sums s = {0};
    int got;
    while ((got = corpus_iter_next(&it, e->windows, e->in, e->tg)) > 0)
        evaluator_pass(e, m, got, text->tok->t, &s);
    sums_to_eval(&s, out);
    return RW_OK;
}

/* `batches` batches of random windows of the split (the same ones at
 * every call with the same seed). */
static rw_status estimate_split(lm_evaluator *e, const rw_model *m, const rw_text *text,
                                corpus_split split, int batches, uint64_t seed, rw_lm_eval *out)
{
    lm_sums s = {0};
    for (int k = 0; k < batches; k++) {
        rw_status st = corpus_sample_batch(text->c, split, e->T, e->windows,
                                           seed ^ LM_ESTIMATE_STREAM, (uint64_t)k, e->in, e->tg);
        if (st != RW_OK) return st;
        evaluator_pass(e, m, e->windows, text->tok->t, &s);
    }
    sums_to_eval(&s, out);
    return RW_OK;
}

rw_status rw_lm_evaluate(const rw_model *model, const rw_text *text, int val, int context,
                         int batch, rw_lm_eval *out)
{
    memset(out, 0, sizeof *out);
    rw_status st = check_lm(model, text, context);
    if (st != RW_OK) return st;
    if (batch < 0) return rw_fail(RW_ERR_INVALID_ARGUMENT, "evaluation batch %d is negative", batch);
    corpus_split split = val ? CORPUS_VAL : CORPUS_TRAIN;
    if (corpus_split_size(text->c, split) < 2)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the text has no %s split to evaluate",
                       val ? "validation" : "training");
    lm_evaluator e;
    if ((st = evaluator_init(&e, model, context, batch ? batch : 8)) != RW_OK) return st;
    st = evaluate_split(&e, model, text, split, out);
    evaluator_free(&e);
    return st;
}

/* ---- Generation --------------------------------------------------------- */

static void swap_floats(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

static float median_of_three(float a, float b, float c)
{
    if (a > b) swap_floats(&a, &b);
    if (b > c) swap_floats(&b, &c);
    return a > b ? a : b;
}

/* Quickselect with a three-way partition around a median of three, so
 * runs of equal values (tied logits) end a round instead of costing one
 * each: O(n) on average, where sorting GPT-2's 50,257 logits per token
 * took milliseconds. */
float lm_kth_largest(float *x, int n, int k)
{
    int lo = 0, hi = n, want = k - 1;
    while (hi - lo > 1) {
        float pivot = median_of_three(x[lo], x[lo + (hi - lo) / 2], x[hi - 1]);
        /* [lo, gt) above the pivot, [gt, lt) equal (or unordered: NaN), [lt, hi) below */
        int i = lo, gt = lo, lt = hi;
        while (i < lt) {
            if (x[i] > pivot) swap_floats(&x[i++], &x[gt++]);
            else if (x[i] < pivot) swap_floats(&x[i], &x[--lt]);
            else i++;
        }
        if (want < gt) hi = gt;
        else if (want < lt) return pivot;
        else lo = lt;
    }
    return x[lo];
}

int32_t lm_sample_token(float *logits, int vocab, float temperature, int top_k, float *sorted,
                        rng_state *rng)
{
    int best = 0;
    for (int v = 1; v < vocab; v++)
        if (logits[v] > logits[best]) best = v;
    if (temperature == 0) return best;
    float cut = -INFINITY;
    if (top_k > 0 && top_k < vocab) {
        memcpy(sorted, logits, sizeof(float) * (size_t)vocab);
        cut = lm_kth_largest(sorted, vocab, top_k);
    }
    double total = 0, top = logits[best]; /* logits[] is overwritten as it goes */
    for (int v = 0; v < vocab; v++) {
        double p = logits[v] >= cut ? exp(((double)logits[v] - top) / temperature) : 0;
        logits[v] = (float)p;
        total += p;
    }
    double u = rng_uniform(rng) * total, acc = 0;
    for (int v = 0; v < vocab; v++) {
        acc += logits[v];
        if (u < acc && logits[v] > 0) return v;
    }
    return best;
}

/* Feeds h[start + fed] at position fed: every layer's one-token pass, as
 * phases of the caller's team. ws is the calling thread's own copy of the
 * workspace (the tensors are shared, the token and position are its own). */
static void feed(const rw_model *m, workspace *ws, const int32_t *h, int start, int fed)
{
    ws->tokens = h + start + fed;
    ws->n = 1;
    ws->seq_len = 1;
    ws->pos0 = fed;
    network_forward_vector_phases(m, ws);
}

rw_status rw_lm_generate(const rw_model *model, const int32_t *prompt, int n_prompt, int n_new,
                         float temperature, int top_k, uint64_t seed, int32_t *out)
{
    rw_status st = check_lm(model, NULL, 1);
    if (st != RW_OK) return st;
    int vocab = rw_model_classes(model), T = rw_model_context(model);
    if (n_prompt < 1 || n_new < 0 || n_prompt > INT32_MAX - n_new)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "generation needs a prompt of at least one token and n_new >= 0 (got %d "
                       "and %d)", n_prompt, n_new);
    if (!(temperature >= 0) || !isfinite(temperature) || top_k < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "temperature %g must be a finite number >= 0 and top_k %d >= 0",
                       (double)temperature, top_k);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= vocab)
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "prompt token %d at position %d is outside the vocabulary [0, %d)",
                           prompt[i], i, vocab);
    int32_t *h = malloc(sizeof(int32_t) * ((size_t)n_prompt + (size_t)n_new));
    float *logits = malloc(sizeof(float) * (size_t)vocab * 2);
    workspace ws;
    memset(&ws, 0, sizeof ws);
    if (!h || !logits || workspace_init_vector(&ws, model) != RW_OK) {
        free(h);
        free(logits);
        workspace_free(&ws);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory generating");
    }
    memcpy(h, prompt, sizeof(int32_t) * (size_t)n_prompt);
    rng_state rng;
    rng_seed(&rng, seed);
    team_sync sync;
    team_sync_init(&sync);
    /* One parallel region for the whole generation, each token's sampling
     * a phase of one chunk: a region per token made every token wait for
     * all threads twice (OpenMP's fork and join), and at batch 1 a token
     * is short enough for those waits to show. Every thread runs the same
     * loop over the same h, synchronised by the team's phases. */
#pragma omp parallel if (network_vector_worth_threading(model))
    {
        team_begin(&sync);
        workspace mine = ws;
        /* The cache holds h[start, start + fed); when it is full, it
         * restarts from the last keep tokens. */
        int len = n_prompt, start = 0, fed = 0, keep = T / 2 > 0 ? T / 2 : 1;
        for (int k = 0; k < n_new; k++, len++) {
            while (start + fed < len) {
                if (fed == T) start = len - keep, fed = 0;
                feed(model, &mine, h, start, fed);
                fed++;
            }
            TEAM_FOR(one, 1) {
                memcpy(logits, network_logits(model, &mine), sizeof(float) * (size_t)vocab);
                h[len] = lm_sample_token(logits, vocab, temperature, top_k, logits + vocab, &rng);
                team_chunk_done();
            }
            team_phase(1);
        }
        team_end();
    }
    memcpy(out, h + n_prompt, sizeof(int32_t) * (size_t)n_new);
    free(h);
    free(logits);
    workspace_free(&ws);
    return RW_OK;
}

/* ---- The training run --------------------------------------------------- */

rw_status lm_check_schedule(const rw_lm_schedule *s, int batch)
{
    if (s->context < 1 || s->context > CORPUS_MAX_CONTEXT)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "context %d is outside [1, %d]", s->context,
                       CORPUS_MAX_CONTEXT);
    if ((int64_t)batch * s->context > 1 << 20)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "a batch of %d sequences of %d tokens is more than 1048576 tokens", batch,
                       s->context);
    if (s->steps < 1) return rw_fail(RW_ERR_INVALID_ARGUMENT, "steps %lld must be >= 1",
                                     (long long)s->steps);
    if (s->warmup_steps < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "warm-up of %lld steps is negative",
                       (long long)s->warmup_steps);
    if (!(s->min_lr >= 0) || !isfinite(s->min_lr))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "min_lr %g must be a finite number >= 0",
                       (double)s->min_lr);
    if (s->eval_every < 0 || s->eval_batches < 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "eval_every %lld and eval_batches %d must be >= 0",
                       (long long)s->eval_every, s->eval_batches);
    return RW_OK;
}

/* nanoGPT's get_lr at iteration it (step it + 1): linear warm-up, then a
 * cosine from lr down to min_lr at the last step. */
static float lm_lr(const rw_lm_schedule *s, float lr, int64_t it)
{
    if (it < s->warmup_steps) return lr * (float)(it + 1) / (float)(s->warmup_steps + 1);
    if (it >= s->steps) return s->min_lr;
    double span = (double)(s->steps - s->warmup_steps);
    double ratio = span > 0 ? (double)(it - s->warmup_steps) / span : 1.0;
    double coeff = 0.5 * (1.0 + cos(3.14159265358979323846 * ratio));
    return (float)(s->min_lr + coeff * ((double)lr - s->min_lr));
}

json_t *lm_note(const rw_run *r)
{
    const rw_lm_schedule *s = &r->lm_cfg;
    char fp[17];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)r->lm_fingerprint);
    return json_pack("{s:i, s:I, s:I, s:f, s:I, s:i, s:I, s:i, s:s}", "context", s->context,
                     "steps", (json_int_t)s->steps, "warmup_steps", (json_int_t)s->warmup_steps,
                     "min_lr", (double)s->min_lr, "eval_every", (json_int_t)s->eval_every,
                     "eval_batches", s->eval_batches, "seed", (json_int_t)s->seed, "batch",
                     r->lm_batch, "text", fp);
}

rw_status lm_parse_note(rw_run *r, const json_t *o, const char *path)
{
    rw_lm_schedule s;
    memset(&s, 0, sizeof s);
    json_int_t steps, warmup, every, seed;
    double min_lr;
    const char *fp;
    int batch;
    if (json_unpack((json_t *)o, "{s:i, s:I, s:I, s:F, s:I, s:i, s:I, s:i, s:s}", "context",
                    &s.context, "steps", &steps, "warmup_steps", &warmup, "min_lr", &min_lr,
                    "eval_every", &every, "eval_batches", &s.eval_batches, "seed", &seed, "batch",
                    &batch, "text", &fp) != 0 ||
        strlen(fp) != 16)
        return rw_fail(RW_ERR_FORMAT,
                       "%s: the note's \"lm\" object is not a language model run's (expected "
                       "context, steps, warmup_steps, min_lr, eval_every, eval_batches, seed, "
                       "batch and text)", path);
    s.steps = steps;
    s.warmup_steps = warmup;
    s.min_lr = (float)min_lr;
    s.eval_every = every;
    s.seed = (uint64_t)seed;
    rw_status st = batch >= 1 ? lm_check_schedule(&s, batch)
                              : rw_fail(RW_ERR_INVALID_ARGUMENT, "batch %d", batch);
    if (st != RW_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rw_last_error());
        return rw_fail(RW_ERR_FORMAT, "%s: the note's language model run: %s", path, msg);
    }
    r->lm = 1;
    r->lm_cfg = s;
    r->lm_batch = batch;
    r->lm_fingerprint = strtoull(fp, NULL, 16);
    return RW_OK;
}

/* The share of positions that have held a weight: DST's count, or the
 * density of a fixed topology. */
static double itop(const rw_run *r)
{
    return r->dst_active ? r->itop_rate : 1.0 - rw_model_sparsity(r->model);
}

/* The lines layers have to say after each estimate (layer_ops.take_log),
 * each with the event, step and layer first. */
static void layer_lines(FILE *log, const rw_model *m, int64_t step)
{
    for (int l = 0; l < m->n_layers; l++) {
        const layer *ly = m->layers[l];
        const char *event = NULL;
        json_t *fields = ly->ops->take_log ? ly->ops->take_log(ly, &event) : NULL;
        if (!fields) continue;
        json_t *o = json_pack("{s:s, s:I, s:s}", "event", event, "step", (json_int_t)step,
                              "layer", ly->name);
        if (o && json_object_update(o, fields) == 0) {
            json_dumpf(o, log, JSON_COMPACT);
            fputc('\n', log);
        }
        json_decref(o);
        json_decref(fields);
    }
}

/* What a report says and where it goes: the log, the caller. */
static int report(rw_run *r, const rw_lm_report *p)
{
    if (r->log) {
        double density[256];
        int n = 0;
        for (int l = 0; l < r->model->n_layers; l++)
            if (is_attention(r->model->layers[l])) {
                double d = attention_density(r->model->layers[l], 1);
                if (n < 256) density[n++] = d;
            }
        metrics_lm_line(r->log, p, density, n);
        layer_lines(r->log, r->model, p->step);
        fflush(r->log);
    }
    return r->on_lm_report ? r->on_lm_report(p, r->user) : 0;
}

rw_status rw_run_train_text(rw_run *r, const rw_text *text, rw_run_result *out, rw_lm_eval *final)
{
    memset(out, 0, sizeof *out);
    memset(final, 0, sizeof *final);
    out->checkpoint_step = r->saved_step;
    if (!r->lm)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "rw_run_train_text needs a run made with a language model schedule "
                       "(rw_run_config.lm)");
    if (!r->configured)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "a resumed run needs rw_run_configure first");
    const rw_lm_schedule *s = &r->lm_cfg;
    int B = r->lm_batch, T = s->context;
    rw_status st = check_lm(r->model, text, T);
    if (st != RW_OK) return st;
    if (corpus_split_size(text->c, CORPUS_VAL) < (size_t)T + 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "the text has no validation split of a window of %d tokens (a validation "
                       "fraction of 0?): the run estimates its loss there", T);
    rw_progress pos;
    rw_trainer_position(r->t, &pos);
    if (pos.step > 0 && r->lm_fingerprint != text->fingerprint)
        return rw_fail(RW_ERR_INVALID_ARGUMENT,
                       "%s: the checkpoint's run trained on other text (or another tokenizer or "
                       "split): its tokens differ from this text's",
                       r->resume_path ? r->resume_path : "run");
    r->lm_fingerprint = text->fingerprint;
    r->start = run_now();

    int32_t *in = malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    int32_t *tg = malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    lm_evaluator ev;
    memset(&ev, 0, sizeof ev);
    st = in && tg ? evaluator_init(&ev, r->model, T, B)
                  : rw_fail(RW_ERR_NO_MEMORY, "out of memory for a batch of text");
    double seg_loss = 0, seg_seconds = 0;
    int64_t seg_steps = 0, seg_tokens = 0, step = pos.step;
    int every = r->checkpoint_path ? (int)r->checkpoint_every : 0;
    while (st == RW_OK && step < s->steps) {
        step++;
        st = corpus_sample_batch(text->c, CORPUS_TRAIN, T, B, s->seed, (uint64_t)step, in, tg);
        if (st != RW_OK) break;
        float lr = lm_lr(s, r->train.lr, step - 1);
        double loss, t0 = run_now();
        st = trainer_lm_step(r->t, in, tg, B, T, step, s->steps, lr, &loss);
        double dt = run_now() - t0;
        if (st != RW_OK) {
            if (st == RW_ERR_DIVERGED && r->saved_step >= 0)
                out->checkpoint_kept = r->checkpoint_path ? r->checkpoint_path : r->resume_path;
            break;
        }
        seg_loss += loss, seg_steps++, seg_seconds += dt, seg_tokens += (int64_t)B * T;
        out->train_seconds += dt;
        out->train_samples += (int64_t)B * T;
        if (r->progress) {
            rw_progress p = {0, step, step * B * T, s->steps * B * T, seg_loss / seg_steps,
                             run_now() - r->start};
            if (r->progress(&p, r->user)) out->stopped = 1;
        }
        if (run_stop_asked(r)) out->stopped = 1;
        int last = step == s->steps;
        int estimate = !last && s->eval_every > 0 && step % s->eval_every == 0;
        if (estimate) {
            rw_lm_eval e;
            st = s->eval_batches > 0
                     ? estimate_split(&ev, r->model, text, CORPUS_VAL, s->eval_batches, s->seed, &e)
                     : evaluate_split(&ev, r->model, text, CORPUS_VAL, &e);
            if (st != RW_OK) break;
            rw_lm_report p = {step, s->steps, seg_loss / seg_steps, e.loss, e.bits_per_byte,
                              s->eval_batches == 0, lr, seg_tokens / seg_seconds,
                              run_now() - r->start, rw_model_sparsity(r->model), r->updates,
                              itop(r)};
            if (report(r, &p)) out->stopped = 1;
            seg_loss = seg_seconds = 0, seg_steps = seg_tokens = 0;
        }
        int due = every > 0 ? step % every == 0 : estimate;
        if (r->checkpoint_path && (due || out->stopped) && step != r->saved_step) {
            st = run_save_checkpoint(r);
            if (st != RW_OK) {
                if (r->saved_step >= 0) out->checkpoint_kept = r->checkpoint_path;
                break;
            }
        }
        if (out->stopped) break;
    }
    if (st == RW_OK) st = evaluate_split(&ev, r->model, text, CORPUS_VAL, final);
    if (st == RW_OK && !out->stopped) {
        rw_lm_report p = {step, s->steps, seg_steps ? seg_loss / seg_steps : 0, final->loss,
                          final->bits_per_byte, 1, lm_lr(s, r->train.lr, step - 1),
                          seg_seconds > 0 ? seg_tokens / seg_seconds : 0, run_now() - r->start,
                          rw_model_sparsity(r->model), r->updates, itop(r)};
        report(r, &p);
        if (r->checkpoint_path && step != r->saved_step) {
            st = run_save_checkpoint(r);
            if (st != RW_OK && r->saved_step >= 0) out->checkpoint_kept = r->checkpoint_path;
        }
    }
    free(in);
    free(tg);
    evaluator_free(&ev);
    atomic_store(&r->stop_asked, 0);
    out->checkpoint_step = r->saved_step;
    if (st != RW_OK) return st;
    out->steps = step;
    out->test.loss = final->loss;
    out->test.count = final->tokens;
    out->sparsity = rw_model_sparsity(r->model);
    out->updates = r->updates;
    out->update_seconds = r->total_update_seconds;
    out->itop_rate = itop(r);
    out->train_samples_per_second =
        out->train_seconds > 0 ? (double)out->train_samples / out->train_seconds : 0.0;
    if (r->dst_active) out->target_sparsity = r->dst.final_sparsity;
    if ((st = dist_check_model(r->model, "at the end of training")) != RW_OK) return st;
    if (r->out_path && dist_writes_files()) st = rw_model_save(r->model, r->out_path);
    return st;
}
