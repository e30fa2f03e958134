/* Parsing GPT-2's config.json (see gpt2_config.h). Each field is checked
 * for presence, JSON type and range, and a refusal names the field. */
#include "text/gpt2_config.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/text_util.h"

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown JSON value";
}

/* Reads field `key` as an integer in [lo, hi]. A missing field is an
 * error when `required`, else leaves *out alone and sets *found to 0. */
static rw_status get_int(const char *name, const json_t *root, const char *key, long lo, long hi,
                         int required, int *out, int *found)
{
    const json_t *v = json_object_get(root, key);
    if (found) *found = v != NULL;
    if (!v) {
        if (!required) return RW_OK;
        return rw_fail(RW_ERR_FORMAT, "%s: field \"%s\" is missing, expected an integer in [%ld, %ld]",
                       name, key, lo, hi);
    }
    if (!json_is_integer(v))
        return rw_fail(RW_ERR_FORMAT, "%s: field \"%s\" is %s, expected an integer in [%ld, %ld]",
                       name, key, json_kind(v), lo, hi);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return rw_fail(RW_ERR_FORMAT, "%s: field \"%s\" is %lld, outside [%ld, %ld]", name, key,
                       (long long)x, lo, hi);
    *out = (int)x;
    return RW_OK;
}

/* Reads field `key` as a boolean; a missing field leaves *out alone. */
static rw_status get_bool(const char *name, const json_t *root, const char *key, int *out)
{
    const json_t *v = json_object_get(root, key);
    if (!v) return RW_OK;
    if (!json_is_boolean(v))
        return rw_fail(RW_ERR_FORMAT, "%s: field \"%s\" is %s, expected true or false", name, key,
                       json_kind(v));
    *out = json_is_true(v);
    return RW_OK;
}

static rw_status parse_fields(const char *name, const json_t *root, gpt2_config *c)
{
    rw_status st;
    if ((st = get_int(name, root, "n_layer", 1, GPT2_MAX_LAYERS, 1, &c->n_layer, NULL)) != RW_OK ||
        (st = get_int(name, root, "n_head", 1, GPT2_MAX_HEADS, 1, &c->n_head, NULL)) != RW_OK ||
        (st = get_int(name, root, "n_embd", 1, GPT2_MAX_EMBD, 1, &c->n_embd, NULL)) != RW_OK ||
        (st = get_int(name, root, "vocab_size", 1, GPT2_MAX_VOCAB, 1, &c->vocab_size, NULL)) != RW_OK)
        return st;
    if (c->n_embd % c->n_head != 0)
        return rw_fail(RW_ERR_FORMAT, "%s: n_embd %d is not divisible by n_head %d (each head "
                       "takes n_embd / n_head channels)", name, c->n_embd, c->n_head);

    int has_pos, has_ctx, n_ctx = 0;
    if ((st = get_int(name, root, "n_positions", 1, GPT2_MAX_POSITIONS, 0, &c->n_positions,
                      &has_pos)) != RW_OK ||
        (st = get_int(name, root, "n_ctx", 1, GPT2_MAX_POSITIONS, 0, &n_ctx, &has_ctx)) != RW_OK)
        return st;
    if (!has_pos && !has_ctx)
        return rw_fail(RW_ERR_FORMAT, "%s: field \"n_positions\" (or \"n_ctx\") is missing, expected "
                       "an integer in [1, %d]", name, GPT2_MAX_POSITIONS);
    if (!has_pos) c->n_positions = n_ctx;
    else if (has_ctx && n_ctx != c->n_positions)
        return rw_fail(RW_ERR_FORMAT, "%s: n_ctx %d disagrees with n_positions %d", name, n_ctx,
                       c->n_positions);

    const json_t *v = json_object_get(root, "n_inner");
    c->n_inner = 4 * c->n_embd;
    if (v && !json_is_null(v) &&
        (st = get_int(name, root, "n_inner", 1, GPT2_MAX_INNER, 1, &c->n_inner, NULL)) != RW_OK)
        return st;

    c->layer_norm_epsilon = 1e-5;
    if ((v = json_object_get(root, "layer_norm_epsilon"))) {
        if (!json_is_number(v))
            return rw_fail(RW_ERR_FORMAT, "%s: field \"layer_norm_epsilon\" is %s, expected a number "
                           "in (0, 1)", name, json_kind(v));
        double e = json_number_value(v);
        if (!(e > 0 && e < 1))
            return rw_fail(RW_ERR_FORMAT, "%s: field \"layer_norm_epsilon\" is %g, outside (0, 1)",
                           name, e);
        c->layer_norm_epsilon = e;
    }

    c->activation = GPT2_GELU_TANH;
    if ((v = json_object_get(root, "activation_function"))) {
        const char *a = json_string_value(v);
        if (a && strcmp(a, "gelu_new") == 0) c->activation = GPT2_GELU_TANH;
        else if (a && strcmp(a, "gelu") == 0) c->activation = GPT2_GELU_ERF;
        else if (a) {
            char q[200];
            return rw_fail(RW_ERR_FORMAT, "%s: activation_function \"%s\" is not supported, expected "
                           "\"gelu_new\" or \"gelu\"", name,
                           text_quote(q, sizeof q, a, json_string_length(v)));
        } else
            return rw_fail(RW_ERR_FORMAT, "%s: field \"activation_function\" is %s, expected the "
                           "string \"gelu_new\" or \"gelu\"", name, json_kind(v));
    }
    c->scale_attn_weights = 1;
    c->scale_attn_by_inverse_layer_idx = 0;
    c->tie_word_embeddings = 1;
    c->add_cross_attention = 0;
    if ((st = get_bool(name, root, "scale_attn_weights", &c->scale_attn_weights)) != RW_OK ||
        (st = get_bool(name, root, "scale_attn_by_inverse_layer_idx",
                       &c->scale_attn_by_inverse_layer_idx)) != RW_OK ||
        (st = get_bool(name, root, "tie_word_embeddings", &c->tie_word_embeddings)) != RW_OK ||
        (st = get_bool(name, root, "add_cross_attention", &c->add_cross_attention)) != RW_OK)
        return st;
    if ((v = json_object_get(root, "model_type"))) {
        const char *t = json_string_value(v);
        char q[200];
        if (!t)
            return rw_fail(RW_ERR_FORMAT, "%s: field \"model_type\" is %s, expected \"gpt2\"", name,
                           json_kind(v));
        if (strcmp(t, "gpt2") != 0)
            return rw_fail(RW_ERR_FORMAT, "%s: model_type is \"%s\", expected \"gpt2\"", name,
                           text_quote(q, sizeof q, t, json_string_length(v)));
    }
    return RW_OK;
}

rw_status gpt2_config_parse(const char *name, const void *json, size_t len, gpt2_config *out)
{
    if (!name || (!json && len) || !out)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "gpt2_config_parse: NULL argument");
    memset(out, 0, sizeof *out);
    if (len > GPT2_MAX_CONFIG_BYTES)
        return rw_fail(RW_ERR_FORMAT, "%s: file is %zu bytes, more than the limit of %zu for a "
                       "config", name, len, GPT2_MAX_CONFIG_BYTES);
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return rw_fail(RW_ERR_FORMAT, "%s: not valid JSON (line %d, column %d): %s", name, err.line,
                       err.column, err.text);
    rw_status st;
    gpt2_config c = {0};
    if (!json_is_object(root))
        st = rw_fail(RW_ERR_FORMAT, "%s: expected a JSON object of the model's settings, got %s",
                     name, json_kind(root));
    else
        st = parse_fields(name, root, &c);
    json_decref(root);
    if (st == RW_OK) *out = c;
    return st;
}

rw_status gpt2_config_read(const char *path, gpt2_config *out)
{
    if (!path || !out) return rw_fail(RW_ERR_INVALID_ARGUMENT, "gpt2_config_read: NULL argument");
    uint8_t *buf;
    size_t len;
    rw_status st = text_read_file(path, GPT2_MAX_CONFIG_BYTES, "config", &buf, &len);
    if (st != RW_OK) return st;
    st = gpt2_config_parse(path, buf, len, out);
    free(buf);
    return st;
}
