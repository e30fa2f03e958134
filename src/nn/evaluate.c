/* Evaluation and prediction: forward passes only, in batches, with a
 * workspace of their own so a const model can be shared. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/dataset.h"
#include "nn/loss.h"
#include "nn/network.h"

#define EVAL_BATCH 256

rw_status rw_evaluate(const rw_model *m, const rw_dataset *data, rw_eval_result *out)
{
    memset(out, 0, sizeof *out);
    int classes = m->layers[m->n_layers - 1].out;
    if (data->features != m->layers[0].in)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the data has %d features but the model takes %d",
                       data->features, m->layers[0].in);
    if (data->classes > classes)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "the data has %d classes but the model has %d",
                       data->classes, classes);
    workspace ws;
    rw_status st = workspace_init(&ws, m, EVAL_BATCH, 0);
    if (st != RW_OK) return st;
    int64_t right[RW_MAX_CLASSES] = {0};
    double loss = 0;
    for (int b0 = 0; b0 < data->n; b0 += EVAL_BATCH) {
        int count = data->n - b0 < EVAL_BATCH ? data->n - b0 : EVAL_BATCH;
        network_load_batch(m, &ws, data->x + (size_t)b0 * data->features, data->features, NULL,
                           count);
        network_forward(m, &ws);
        const float *logits = ws.a[m->n_layers];
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

rw_status rw_predict(const rw_model *m, const float *x, int n, float *probs)
{
    if (n < 0) return rw_fail(RW_ERR_INVALID_ARGUMENT, "cannot predict %d samples", n);
    int classes = m->layers[m->n_layers - 1].out, features = m->layers[0].in;
    workspace ws;
    rw_status st = workspace_init(&ws, m, n < EVAL_BATCH ? n : EVAL_BATCH, 0);
    if (st != RW_OK) return st;
    for (int b0 = 0; b0 < n; b0 += EVAL_BATCH) {
        int count = n - b0 < EVAL_BATCH ? n - b0 : EVAL_BATCH;
        network_load_batch(m, &ws, x + (size_t)b0 * features, features, NULL, count);
        network_forward(m, &ws);
        softmax_columns(ws.a[m->n_layers], classes, count, ws.bp, probs + (size_t)b0 * classes);
    }
    workspace_free(&ws);
    return RW_OK;
}
