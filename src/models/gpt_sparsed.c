/* rw_lm_sparsed: each attention head's sparsed blocks chosen once from the
 * trained model's dense attention on calibration windows ("SparseD:
 * Sparse Attention for Diffusion Language Models"); the choice itself is
 * nn/attn_sparsed.c. The windows run through the model up to its last
 * attention layer with every layer dense; each layer's fused projection
 * in the workspace then gives its heads' probabilities, summed per
 * (query block, key block) over the windows. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/attention.h"
#include "nn/model.h"
#include "nn/network.h"
#include "text/text_api.h"

/* Tokens per calibration batch: the dense product path keeps heads × T
 * probabilities per token. */
#define SPARSED_BATCH_TOKENS 2048

static rw_status check(const rw_model *m, const rw_text *text, const char *spec, int samples,
                       int T, att_pattern *p)
{
    if (!spec || att_pattern_parse(spec, p) != RW_OK || p->kind != ATT_SPARSED)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_sparsed: --attention '%s': expected "
                       "sparsed:B,KEEP", spec ? spec : "(null)");
    if (rw_model_attention_layers(m, NULL) == 0)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_sparsed: the model has no attention layer");
    if (!text)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_sparsed: calibration is NULL; sparsed "
                       "chooses its blocks from a calibration text");
    if (samples < 1 || samples > (1 << 16))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_sparsed: samples %d, expected 1 to %d",
                       samples, 1 << 16);
    int max = rw_model_context(m);
    if (T < 1 || T > max)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_sparsed: context %d, expected 1 to the "
                       "model's context %d", T, max);
    if (text->c->vocab_size > rw_model_classes(m))
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_sparsed: the calibration tokenizer (%s) has "
                       "%d tokens but the model predicts %d", text->tok->spec,
                       (int)text->c->vocab_size, rw_model_classes(m));
    if (corpus_split_size(text->c, CORPUS_TRAIN) < (size_t)T + 1)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "rw_lm_sparsed: the calibration text's training "
                       "split has fewer than context + 1 = %d tokens", T + 1);
    return RW_OK;
}

/* Sums every attention layer's mass over the windows, with every layer
 * dense (the patterns it had are put back after). */
static rw_status collect(rw_model *m, const int32_t *windows, int samples, int T, int block,
                         double **mass, int last)
{
    int per = SPARSED_BATCH_TOKENS / T < 1 ? 1 : SPARSED_BATCH_TOKENS / T;
    if (per > samples) per = samples;
    workspace ws;
    rw_status st = workspace_init(&ws, m, per * T, 0);
    for (int w0 = 0; st == RW_OK && w0 < samples; w0 += per) {
        int count = samples - w0 < per ? samples - w0 : per;
        ws.tokens = windows + (size_t)w0 * T;
        ws.n = count * T, ws.seq_len = T, ws.pos0 = 0;
        network_forward_layers(m, &ws, 0, last);
        for (int l = 0, k = 0; st == RW_OK && l <= last; l++) {
            const layer *ly = m->layers[l];
            if (!is_attention(ly)) continue;
            layer_io io = workspace_io(&ws, m, l);
            for (int w = 0; st == RW_OK && w < count; w++)
                st = attention_sparsed_mass(ly, block, io.in[0]->data, ws.bp, w * T, T, mass[k]);
            k++;
        }
    }
    workspace_free(&ws); /* zeroed by a failed init */
    return st;
}

rw_status rw_lm_sparsed(rw_model *m, const rw_text *text, const char *spec, int samples,
                        int context, uint64_t seed, rw_lm_sparsed_report *report)
{
    att_pattern p;
    int T = context ? context : rw_model_context(m);
    rw_status st = check(m, text, spec, samples, T, &p);
    if (st != RW_OK) return st;
    int n_att = rw_model_attention_layers(m, NULL), last = 0;
    att_pattern *had = calloc((size_t)n_att, sizeof *had);
    double **mass = calloc((size_t)n_att, sizeof *mass);
    int32_t *windows = malloc(sizeof(int32_t) * (size_t)samples * T);
    int32_t *targets = malloc(sizeof(int32_t) * (size_t)samples * T);
    if (!had || !mass || !windows || !targets) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory");
    att_pattern dense = {.kind = ATT_DENSE};
    for (int l = 0, k = 0; had && mass && l < m->n_layers; l++) {
        layer *ly = m->layers[l];
        if (!is_attention(ly)) continue;
        int nb = (attention_context(ly) + p.block - 1) / p.block;
        if (st == RW_OK && !(mass[k] = calloc((size_t)attention_heads(ly) * nb * nb, sizeof(double))))
            st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for %d x %d blocks of layer %s", nb, nb,
                         ly->name);
        had[k++] = *attention_pattern(ly);
        attention_set_pattern(ly, &dense);
        last = l;
    }
    if (st == RW_OK)
        st = corpus_sample_batch(text->c, CORPUS_TRAIN, T, samples, seed, 0, windows, targets);
    if (st == RW_OK) st = collect(m, windows, samples, T, p.block, mass, last);
    /* every layer's table first, so an error leaves the model as it was */
    att_sparsed **chosen = st == RW_OK ? calloc((size_t)n_att, sizeof *chosen) : NULL;
    if (st == RW_OK && !chosen) st = rw_fail(RW_ERR_NO_MEMORY, "out of memory");
    rw_lm_sparsed_report r = {n_att, 0, 0, 0, 0, 0};
    int64_t keys = 0, causal = 0;
    for (int l = 0, k = 0; st == RW_OK && l < m->n_layers; l++) {
        const layer *ly = m->layers[l];
        if (!is_attention(ly)) continue;
        att_sparsed *s = chosen[k] = att_sparsed_new(attention_heads(ly), attention_context(ly),
                                                     p.block, p.keep);
        if (!s) {
            st = rw_fail(RW_ERR_NO_MEMORY, "out of memory for the sparsed blocks of %s", ly->name);
            break;
        }
        for (int h = 0; h < s->heads; h++)
            r.covered += att_sparsed_choose(s, h, mass[k] + (size_t)h * s->nb * s->nb) /
                         (s->heads * n_att);
        if ((st = att_sparsed_index(s)) != RW_OK) break;
        r.heads = s->heads;
        for (int h = 0; h < s->heads; h++) {
            keys += att_sparsed_keys(s, h, T);
            causal += (int64_t)T * (T + 1) / 2;
            r.diagonals += (double)s->head[h].n_off / (s->heads * n_att);
            r.columns += (double)s->head[h].n_sink / (s->heads * n_att);
        }
        k++;
    }
    for (int l = 0, k = 0; had && mass && l < m->n_layers; l++) {
        layer *ly = m->layers[l];
        if (!is_attention(ly) || k >= n_att) continue;
        if (st == RW_OK) {
            attention_set_sparsed(ly, chosen[k]);
            attention_set_pattern(ly, &p);
            attention_density(ly, 1); /* the calibration's dense scores are not the pattern's */
        } else {
            attention_set_pattern(ly, &had[k]);
            if (chosen) att_sparsed_free(chosen[k]);
        }
        k++;
    }
    if (st == RW_OK) {
        r.density = causal ? (double)keys / (double)causal : 1.0;
        if (report) *report = r;
    }
    for (int k = 0; mass && k < n_att; k++) free(mass[k]);
    free(chosen), free(mass), free(had), free(windows), free(targets);
    return st;
}
