/* libFuzzer harness for model files (io/model_io.c): any bytes must either
 * load into a model that predicts without touching memory it does not own,
 * or fail with a message naming the file. Declared shapes decide what a
 * load allocates (a sparse layer's input count is not backed by bytes), so
 * the harness loads with a 64 MB limit: above it the loader must refuse
 * cleanly, which is itself under test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model_file.h"
#include "nn/model.h"

#define NAME "fuzz.safetensors"
#define LIMIT (64 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rw_model *m = NULL;
    if (model_load_memory(NAME, data, size, LIMIT, &m) != RW_OK) {
        if (m || strncmp(rw_last_error(), NAME ": ", strlen(NAME) + 2) != 0) abort();
        return 0;
    }
    /* A language model generates 3 tokens (every weight read through the
     * one-token path); the classifiers' paths must refuse it. */
    int in = rw_model_inputs(m), classes = rw_model_classes(m);
    if (rw_model_context(m) > 0) {
        float x[1], p[1];
        if (rw_predict(m, x, 1, p) != RW_ERR_INVALID_ARGUMENT) abort();
        int32_t prompt[1] = {0}, out[3];
        if (rw_lm_generate(m, prompt, 1, 3, 1.0f, 2, 1, out) != RW_OK) abort();
        for (int i = 0; i < 3; i++)
            if (out[i] < 0 || out[i] >= classes) abort();
        rw_model_free(m);
        return 0;
    }
    /* A forward pass over 3 samples walks every stored index. The batch
     * buffers take inputs x 8 floats; keep them inside the limit too. */
    if ((int64_t)in * 3 * 4 < LIMIT / 4) {
        float *x = calloc((size_t)in * 3, sizeof(float));
        float *p = calloc((size_t)classes * 3, sizeof(float));
        if (x && p) {
            for (int i = 0; i < in * 3; i++) x[i] = (float)(i % 7) / 7.0f;
            if (rw_predict(m, x, 3, p) != RW_OK) abort();
        }
        free(x);
        free(p);
    }
    rw_model_free(m);
    return 0;
}
