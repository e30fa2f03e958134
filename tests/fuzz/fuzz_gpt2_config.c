/* libFuzzer harness for GPT-2's config.json (src/text/gpt2_config.c): any
 * bytes must parse into a config within every bound, or fail with a
 * message naming the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/gpt2_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char name[] = "fuzz/config.json";
    gpt2_config c;
    rw_status st = gpt2_config_parse(name, data, size, &c);
    if (st != RW_OK) {
        if (st != RW_ERR_FORMAT || strncmp(rw_last_error(), name, strlen(name)) != 0) abort();
        return 0;
    }
    if (c.n_layer < 1 || c.n_layer > GPT2_MAX_LAYERS || c.n_head < 1 || c.n_head > GPT2_MAX_HEADS ||
        c.n_embd < 1 || c.n_embd > GPT2_MAX_EMBD || c.n_embd % c.n_head != 0 || c.n_positions < 1 ||
        c.n_positions > GPT2_MAX_POSITIONS || c.vocab_size < 1 || c.vocab_size > GPT2_MAX_VOCAB ||
        c.n_inner < 1 || c.n_inner > GPT2_MAX_INNER || !(c.layer_norm_epsilon > 0) ||
        !(c.layer_norm_epsilon < 1) || (c.activation != GPT2_GELU_TANH && c.activation != GPT2_GELU_ERF) ||
        (c.scale_attn_weights | c.scale_attn_by_inverse_layer_idx | c.tie_word_embeddings |
         c.add_cross_attention) & ~1)
        abort();
    return 0;
}
