/* The metrics log (io/metrics.h): JSONL lines written with jansson. */
#include "io/metrics.h"

#include <jansson.h>
#include <stdio.h>

static const char *const prune_names[] = {"gmp", "imp", "soup", "issp"};
static const char *const nm_method_names[] = {"ste", "srste", "decay"};
static const char *const nm_layer_names[] = {"hidden", "all", "inner"};

const char *metrics_prune_name(rw_prune_method m) { return prune_names[m]; }
const char *metrics_nm_method_name(rw_nm_method m) { return nm_method_names[m]; }
const char *metrics_nm_layers_name(rw_nm_layers l) { return nm_layer_names[l]; }

static void write_line(FILE *log, json_t *o)
{
    json_dumpf(o, log, JSON_COMPACT | JSON_REAL_PRECISION(10));
    fputc('\n', log);
    json_decref(o);
}

static json_t *real_or_null(int has, double v) { return has ? json_real(v) : json_null(); }

void metrics_epoch_line(FILE *log, const rw_run_epoch *e)
{
    const rw_epoch_stats *s = e->stats;
    const rw_eval_result *val = e->val, *test = e->test;
    json_t *o;
    if (!e->prune) {
        o = json_pack("{s:i, s:I, s:f, s:o, s:o, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
                      "epoch", e->epoch, "step", (json_int_t)e->step, "train_loss", s->loss,
                      "val_accuracy", real_or_null(val != NULL, val ? val->accuracy : 0),
                      "val_loss", real_or_null(val != NULL, val ? val->loss : 0),
                      "test_accuracy", test->accuracy, "test_loss", test->loss,
                      "samples_per_second", s->samples_per_second, "lr", (double)s->lr,
                      "seconds", e->seconds, "train_seconds", s->seconds, "update_seconds",
                      e->update_seconds, "sparsity", e->sparsity);
    } else {
        o = json_pack("{s:i, s:I, s:o, s:o, s:o, s:f, s:f, s:o, s:o, s:f, s:o, s:f, s:f, s:s, "
                      "s:i, s:i, s:i, s:i}",
                      "epoch", e->epoch, "step", (json_int_t)e->step, "train_loss",
                      real_or_null(s != NULL, s ? s->loss : 0), "val_accuracy",
                      real_or_null(val != NULL, val ? val->accuracy : 0), "val_loss",
                      real_or_null(val != NULL, val ? val->loss : 0), "test_accuracy",
                      test->accuracy, "test_loss", test->loss, "samples_per_second",
                      real_or_null(s != NULL, s ? s->samples_per_second : 0), "lr",
                      real_or_null(s != NULL, s ? (double)s->lr : 0), "seconds", e->seconds,
                      "train_seconds", real_or_null(s != NULL, s ? s->seconds : 0),
                      "update_seconds", e->update_seconds, "sparsity", e->sparsity, "prune",
                      prune_names[e->prune_method], "phase", e->phase, "member", e->member,
                      "phase_epoch", e->phase_epoch, "phase_epochs", e->phase_epochs);
    }
    if (o && e->inputs_kept > 0) json_object_set_new(o, "inputs_kept", json_integer(e->inputs_kept));
    write_line(log, o);
}

static json_t *int_array(const int64_t *x, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer((json_int_t)x[i]));
    return a;
}

void metrics_topology_line(FILE *log, const rw_topology_stats *s)
{
    json_t *density = json_array();
    for (int l = 0; l < s->n_layers; l++) json_array_append_new(density, json_real(s->density[l]));
    json_t *o = json_pack("{s:s, s:I, s:I, s:i, s:f, s:o, s:o, s:o, s:o, s:f, s:I, s:f, s:o, s:I, "
                          "s:f, s:f}",
                          "event", "topology", "update", (json_int_t)s->update, "step",
                          (json_int_t)s->step, "epoch", s->epoch + 1, "drop_fraction",
                          s->drop_fraction, "dropped", int_array(s->dropped, s->n_layers), "grown",
                          int_array(s->grown, s->n_layers), "nonzeros",
                          int_array(s->nonzeros, s->n_layers), "density", density, "itop_rate",
                          s->itop_rate, "sad", (json_int_t)s->sad, "sad_rate", s->sad_rate,
                          "dead_neurons", int_array(s->dead_neurons, s->n_layers - 1),
                          "unconnected_inputs", (json_int_t)s->unconnected_inputs,
                          "update_seconds", s->seconds, "total_update_seconds", s->total_seconds);
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)s->topology_hash);
    json_object_set_new(o, "topology_hash", json_string(hash));
    if (s->shrunk) json_object_set_new(o, "shrunk", int_array(s->shrunk, s->n_layers));
    /* Input-level DST only, so that other runs' lines are what they were. */
    if (s->inputs_kept > 0) {
        json_object_set_new(o, "inputs_kept", json_integer(s->inputs_kept));
        json_object_set_new(o, "inputs_removed", json_integer(s->inputs_removed));
    }
    write_line(log, o);
}

void metrics_nm_line(FILE *log, const rw_nm_train_config *c, int epoch, long long step,
                     double mask_change, double beta)
{
    char pattern[32];
    snprintf(pattern, sizeof pattern, "%d:%d", c->n, c->m);
    write_line(log, json_pack("{s:s, s:i, s:I, s:s, s:s, s:s, s:f, s:f}", "event", "nm", "epoch",
                              epoch, "step", (json_int_t)step, "pattern", pattern, "method",
                              nm_method_names[c->method], "layers", nm_layer_names[c->layers],
                              "mask_change", mask_change, "decay_beta", beta));
}

void metrics_lm_line(FILE *log, const rw_lm_report *r, const double *attn_density, int n_attn)
{
    json_t *o = json_pack("{s:s, s:I, s:I, s:f, s:f, s:f, s:b, s:f, s:f, s:f, s:f, s:I, s:f}",
                          "event", "lm", "step", (json_int_t)r->step, "steps", (json_int_t)r->steps,
                          "train_loss", r->train_loss, "val_loss", r->val_loss, "val_bits_per_byte",
                          r->val_bits_per_byte, "whole_split", r->whole_split, "lr", (double)r->lr,
                          "tokens_per_second", r->tokens_per_second, "seconds", r->seconds,
                          "sparsity", r->sparsity, "updates", (json_int_t)r->updates, "itop_rate",
                          r->itop_rate);
    if (o && n_attn > 0) {
        json_t *a = json_array();
        for (int i = 0; i < n_attn; i++) json_array_append_new(a, json_real(attn_density[i]));
        json_object_set_new(o, "attention_density", a);
    }
    if (o) write_line(log, o);
}
