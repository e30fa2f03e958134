/* libFuzzer harness for the GPT-2 import (src/models/gpt2_import.c): any
 * bytes as model.safetensors beside a fixed, valid config.json (1 block,
 * n_embd 4, 2 heads, 4 positions, 16 tokens) must either import into the
 * GPT that config describes, every weight finite, that then runs a forward
 * pass over 4 tokens; or fail with RW_ERR_FORMAT (RW_ERR_NO_MEMORY under
 * allocator_may_return_null) and a message that begins with the weights'
 * name, the model NULL. Sanitizers catch the rest. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/gpt.h"
#include "models/gpt2_hf.h"
#include "nn/model.h"
#include "nn/network.h"

#define CONFIG_NAME "fuzz/config.json"
#define WEIGHTS_NAME "fuzz/model.safetensors"

static const char config[] =
    "{\"model_type\": \"gpt2\", \"vocab_size\": 16, \"n_positions\": 4, \"n_embd\": 4, "
    "\"n_layer\": 1, \"n_head\": 2, \"layer_norm_epsilon\": 1e-5}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rw_model *m = (rw_model *)1;
    rw_status st = gpt2_import_memory(CONFIG_NAME, config, strlen(config), WEIGHTS_NAME, data, size,
                                      &m);
    if (st != RW_OK) {
        if (m || (st != RW_ERR_FORMAT && st != RW_ERR_NO_MEMORY) ||
            strncmp(rw_last_error(), WEIGHTS_NAME ": ", strlen(WEIGHTS_NAME) + 2) != 0)
            abort();
        return 0;
    }
    rw_gpt_config c;
    if (gpt_config_of(m, &c) != RW_OK || c.vocab != 16 || c.context != 4 || c.n_embd != 4 ||
        c.n_layer != 1 || c.n_head != 2 || !c.bias)
        abort();
    for (int i = 0; i < m->n_params; i++)
        for (int64_t k = 0; k < param_count(&m->params[i]); k++)
            if (!isfinite(param_values(&m->params[i])[k])) abort();
    workspace ws;
    if (workspace_init(&ws, m, 4, 0) == RW_OK) {
        const int32_t tokens[4] = {0, 15, 7, 7};
        ws.tokens = tokens;
        ws.n = ws.seq_len = 4;
        ws.pos0 = 0;
        network_forward(m, &ws);
        workspace_free(&ws);
    }
    rw_model_free(m);
    return 0;
}
