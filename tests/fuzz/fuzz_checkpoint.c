/* libFuzzer harness for checkpoints (nn/checkpoint.c): any bytes must
 * either load into a model and a trainer that can train on (an epoch over a
 * few synthetic samples, which walks every weight and every optimizer
 * state array), or fail with a message naming the file. Loaded with a
 * 64 MB limit on what the declared shapes may allocate. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "run/checkpoint.h"

#define NAME "fuzz.safetensors"
#define LIMIT (64 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rw_model *m = NULL;
    rw_trainer *t = NULL;
    if (checkpoint_load_memory(NAME, data, size, LIMIT, &m, &t) != RW_OK) {
        if (m || t || strncmp(rw_last_error(), NAME ": ", strlen(NAME) + 2) != 0) abort();
        return 0;
    }
    int in = rw_model_inputs(m), classes = rw_model_classes(m);
    rw_train_config c = rw_trainer_config(t);
    rw_progress pos;
    rw_trainer_position(t, &pos);
    /* Train the rest of the run on 5 samples, when that stays small. */
    if (in <= 4096 && c.epochs - pos.epoch <= 3 && pos.epoch < c.epochs) {
        enum { N = 5 };
        float *x = calloc((size_t)in * N, sizeof(float));
        uint8_t y[N];
        for (int i = 0; i < N; i++) y[i] = (uint8_t)(i % classes);
        for (int i = 0; x && i < in * N; i++) x[i] = (float)(i % 11) / 11.0f;
        rw_dataset *d = NULL;
        if (x && rw_dataset_from_memory(x, y, N, in, classes, &d) == RW_OK) {
            rw_status st = rw_trainer_epoch(t, d, NULL, NULL, NULL);
            /* A checkpoint made on other data is refused; a run may
             * diverge; nothing else may fail. */
            if (st != RW_OK && st != RW_ERR_INVALID_ARGUMENT && st != RW_ERR_DIVERGED) abort();
        }
        rw_dataset_free(d);
        free(x);
    }
    rw_trainer_free(t);
    rw_model_free(m);
    return 0;
}
