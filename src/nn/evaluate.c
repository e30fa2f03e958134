/* Evaluation and prediction: forward passes only, in batches, with a
 * workspace of their own so a const model can be shared. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/dataset.h"
#include "nn/loss.h"
#include "kernels/kernels.h"
#include "kernels/team.h"
#include "nn/network.h"

#define EVAL_BATCH 256
/* ... but a wide model's activations of 256 samples would outweigh its
 * weights (4 x 250,000 features: 1 GB): evaluation keeps them under this. */
#define EVAL_ACTIVATION_BYTES ((size_t)64 << 20)

/* The evaluation batch for m: 256 samples, fewer for very wide models. */
static int eval_batch(const rw_model *m)
{
    size_t per_sample = (size_t)model_input_rows(m);
    for (int l = 0; l < m->n_layers; l++) per_sample += (size_t)m->layers[l]->out;
    size_t fit = EVAL_ACTIVATION_BYTES / (sizeof(float) * per_sample);
    if (fit < 8) fit = 8;
    return fit < EVAL_BATCH ? (int)fit : EVAL_BATCH;
}

rw_status rw_evaluate(const rw_model *m, const rw_dataset *data, rw_eval_result *out)
{
    memset(out, 0, sizeof *out);
    int classes = rw_model_classes(m);
    if (model_reads_tokens(m))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the model is a language model (it reads tokens, "
                       "not features): use rw_lm_evaluate");
    if (data->features != m->inputs)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the data has %d features but the model takes %d",
                       data->features, m->inputs);
    if (data->classes > classes)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the data has %d classes but the model has %d",
                       data->classes, classes);
    workspace ws;
    int batch = eval_batch(m);
    rw_status st = workspace_init(&ws, m, batch, 0);
    if (st != RW_OK) return st;
    int64_t right[RW_MAX_CLASSES] = {0};
    double loss = 0;
    for (int b0 = 0; b0 < data->n; b0 += batch) {
        int count = data->n - b0 < batch ? data->n - b0 : batch;
        network_load_batch(m, &ws, dataset_rows(data, b0), NULL, count);
        network_forward(m, &ws);
        const float *logits = network_logits(m, &ws);
        loss += softmax_xent(logits, data->y + b0, classes, count, ws.bp, NULL, NULL);
        for (int b = 0; b < count; b++) {
            int arg = 0;
            for (int c = 1; c < classes; c++)
                if (logits[(size_t)c * ws.bp + b] > logits[(size_t)arg * ws.bp + b]) arg = c;
            int label = data->y[b0 + b];
            out->class_count[label]++;
            right[label] += arg == label;
        }
    }
    workspace_free(&ws);
    int64_t total_right = 0;
    for (int c = 0; c < classes; c++) {
        total_right += right[c];
        out->class_accuracy[c] = out->class_count[c] ? (double)right[c] / out->class_count[c] : 0;
    }
    out->count = data->n;
    out->classes = classes;
    out->accuracy = data->n ? (double)total_right / data->n : 0;
    out->loss = data->n ? loss / data->n : 0;
    return RW_OK;
}

/* A reusable prediction context: the buffers of a batch and of a single
 * sample are allocated once, so a call allocates nothing. */
struct rw_predictor {
    const rw_model *model;
    int max_batch;
    workspace ws;    /* batches of 2 .. max_batch */
    workspace one;   /* one sample, plain vectors */
    team_sync sync;
};

void rw_predictor_free(rw_predictor *p)
{
    if (!p) return;
    workspace_free(&p->one);
    workspace_free(&p->ws);
    free(p);
}

rw_status rw_predictor_create(const rw_model *m, int max_batch, rw_predictor **out)
{
    *out = NULL;
    if (max_batch < 1 || max_batch > 1 << 20)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "predictor batch %d is outside [1, 1048576]",
                       max_batch);
    if (model_reads_tokens(m))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the model is a language model (it reads tokens, "
                       "not features): use rw_lm_evaluate or rw_lm_generate");
    rw_predictor *p = calloc(1, sizeof *p);
    if (!p) return rw_fail(RW_ERR_NO_MEMORY, "out of memory creating a predictor");
    p->model = m;
    p->max_batch = max_batch;
    rw_status st = workspace_init_vector(&p->one, m);
    if (st == RW_OK && max_batch > 1) st = workspace_init(&p->ws, m, max_batch, 0);
    if (st != RW_OK) {
        rw_predictor_free(p);
        return st;
    }
    *out = p;
    return RW_OK;
}

/* One sample x [features] to probabilities [classes], or to its logits. */
static void predict_one(rw_predictor *p, const float *x, float *out, int logits)
{
    const rw_model *m = p->model;
    int features = m->inputs, classes = rw_model_classes(m);
    input_stage_load_one(&m->input, x, features, p->one.t[0].data);
    network_forward_vector(m, &p->one, &p->sync);
    if (logits)
        memcpy(out, network_logits(m, &p->one), sizeof(float) * (size_t)classes);
    else
        softmax_columns(network_logits(m, &p->one), classes, 1, 1, out);
}

/* n samples x [n][features] to out [n][classes]: probabilities, or logits. */
static rw_status predictor_pass(rw_predictor *p, const float *x, int n, float *out, int logits)
{
    if (n < 0) return rw_fail(RW_ERR_INVALID_ARGUMENT, "cannot predict %d samples", n);
    const rw_model *m = p->model;
    int classes = rw_model_classes(m), features = m->inputs;
    for (int b0 = 0; b0 < n; b0 += p->max_batch) {
        int count = n - b0 < p->max_batch ? n - b0 : p->max_batch;
        const float *xb = x + (size_t)b0 * features;
        float *ob = out + (size_t)b0 * classes;
        if (count == 1) {
            predict_one(p, xb, ob, logits);
            continue;
        }
        network_load_batch(m, &p->ws, (sample_rows){.x = xb, .features = features}, NULL, count);
        network_forward(m, &p->ws);
        const float *z = network_logits(m, &p->ws); /* [classes][bp] */
        if (!logits) {
            softmax_columns(z, classes, count, p->ws.bp, ob);
            continue;
        }
        for (int b = 0; b < count; b++)
            for (int c = 0; c < classes; c++) ob[(size_t)b * classes + c] = z[(size_t)c * p->ws.bp + b];
    }
    return RW_OK;
}

rw_status rw_predictor_run(rw_predictor *p, const float *x, int n, float *probs)
{
    return predictor_pass(p, x, n, probs, 0);
}

rw_status rw_predictor_logits(rw_predictor *p, const float *x, int n, float *logits)
{
    return predictor_pass(p, x, n, logits, 1);
}

rw_status rw_predict(const rw_model *m, const float *x, int n, float *probs)
{
    if (n < 0) return rw_fail(RW_ERR_INVALID_ARGUMENT, "cannot predict %d samples", n);
    rw_predictor *p;
    int batch = eval_batch(m);
    rw_status st = rw_predictor_create(m, n < 1 ? 1 : n < batch ? n : batch, &p);
    if (st != RW_OK) return st;
    st = rw_predictor_run(p, x, n, probs);
    rw_predictor_free(p);
    return st;
}
