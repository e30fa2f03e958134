/* The calls of rewire.h about a model's inputs: their normalisation, the
 * inputs it keeps, and how much the first layer uses each. The input
 * stage itself is nn/input_stage.c. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/linear.h"
#include "nn/model.h"

/* The layer that reads the model's input, for a classifier whose only
 * reader of tensor 0 is its first layer; -1 (message set) otherwise. */
static int input_layer(const rw_model *m)
{
    if (model_reads_tokens(m) || m->n_layers < 1) {
        rw_fail(RW_ERR_INVALID_ARGUMENT, "the model is a language model: it reads tokens, not "
                "features");
        return -1;
    }
    for (int l = 1; l < m->n_layers; l++)
        for (int i = 0; i < m->layers[l]->n_inputs; i++)
            if (m->layers[l]->inputs[i] == 0) {
                rw_fail(RW_ERR_INVALID_ARGUMENT, "layer %s reads the model's input too: only a "
                        "model whose first layer alone reads it has an input selection",
                        m->layers[l]->name);
                return -1;
            }
    if (!model_layer_has_weight(m, 0)) {
        rw_fail(RW_ERR_INVALID_ARGUMENT, "the first layer %s has no weight matrix",
                m->layers[0]->name);
        return -1;
    }
    return 0;
}

rw_status rw_model_set_feature_normalization(rw_model *m, const float *mean, const float *std)
{
    if (!m || !mean || !std)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_model_set_feature_normalization: NULL argument");
    return input_stage_set_feature(&m->input, m->inputs, mean, std);
}

rw_normalize rw_model_normalization(const rw_model *m, float *mean, float *std)
{
    const input_stage *s = &m->input;
    int rows = model_input_rows(m);
    for (int f = 0; f < m->inputs; f++) {
        if (mean) mean[f] = s->index ? 0.0f : s->mean;
        if (std) std[f] = s->index ? 0.0f : s->std;
    }
    for (int j = 0; j < rows; j++) {
        int f = s->index ? s->index[j] : j;
        if (mean) mean[f] = s->feature ? s->fmean[j] : s->mean;
        if (std) std[f] = s->feature ? s->fstd[j] : s->std;
    }
    return s->feature ? RW_NORMALIZE_FEATURE : RW_NORMALIZE_GLOBAL;
}

int rw_model_kept_inputs(const rw_model *m, int32_t *index)
{
    int rows = model_input_rows(m);
    for (int j = 0; index && j < rows; j++) index[j] = m->input.index ? m->input.index[j] : j;
    return rows;
}

rw_status rw_model_keep_inputs(rw_model *m, const int32_t *index, int k)
{
    if (!m || !index || k < 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_model_keep_inputs: needs a model and at least "
                       "one input to keep");
    if (input_layer(m) < 0) return RW_ERR_INVALID_ARGUMENT;
    int rows = model_input_rows(m);
    int32_t *keep = malloc(sizeof(int32_t) * (size_t)k);
    if (!keep) return rw_fail(RW_ERR_NO_MEMORY, "out of memory keeping inputs");
    /* The rows of tensor 0 that read the inputs to keep. */
    rw_status st = RW_OK;
    for (int j = 0, row = 0; j < k && st == RW_OK; j++) {
        if (index[j] < 0 || index[j] >= m->inputs || (j > 0 && index[j] <= index[j - 1])) {
            st = rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_model_keep_inputs: entry %d is %d, expected "
                         "increasing inputs in [0, %d)", j, index[j], m->inputs);
            break;
        }
        while (row < rows && (m->input.index ? m->input.index[row] : row) < index[j]) row++;
        if (row == rows || (m->input.index ? m->input.index[row] : row) != index[j])
            st = rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_model_keep_inputs: input %d was removed "
                         "before", index[j]);
        keep[j] = row;
    }
    if (st == RW_OK && k == rows) {
        free(keep); /* every input read now stays */
        return RW_OK;
    }
    if (st == RW_OK) st = linear_keep_inputs(m, 0, keep, k);
    if (st == RW_OK) st = input_stage_select(&m->input, m->inputs, keep, k);
    free(keep);
    return st;
}

rw_status rw_model_input_importance(const rw_model *m, int32_t *connections, float *mass)
{
    if (input_layer(m) < 0) return RW_ERR_INVALID_ARGUMENT;
    const param *p = model_layer_params(m, 0);
    int rows = model_input_rows(m);
    int32_t *fan = malloc(sizeof(int32_t) * (size_t)rows + 1);
    float *sum = malloc(sizeof(float) * (size_t)rows + 1);
    if (!fan || !sum) {
        free(fan);
        free(sum);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for the inputs' importance");
    }
    param_fan(p, NULL, fan);
    param_column_mass(p, sum);
    if (connections) memset(connections, 0, sizeof(int32_t) * (size_t)m->inputs);
    if (mass) memset(mass, 0, sizeof(float) * (size_t)m->inputs);
    for (int j = 0; j < rows; j++) {
        int f = m->input.index ? m->input.index[j] : j;
        if (connections) connections[f] = fan[j];
        if (mass) mass[f] = sum[j];
    }
    free(fan);
    free(sum);
    return RW_OK;
}
