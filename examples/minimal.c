/* The smallest rewire program: build a 90%-sparse MLP, train it for a few
 * epochs on random two-class data, and print its accuracy.
 * Build against an installed rewire:
 *   cc minimal.c $(pkg-config --cflags --libs rewire) -o minimal */
#include <stdio.h>
#include <stdlib.h>

#include <rewire.h>

static int check(rw_status st)
{
    if (st != RW_OK) {
        fprintf(stderr, "rewire: %s\n", rw_last_error());
        exit(1);
    }
    return 0;
}

int main(void)
{
    enum { N = 512, F = 32 };
    float *x = malloc(sizeof(float) * N * F);
    uint8_t *y = malloc(N);
    srand(1);
    for (int i = 0; i < N; i++) {
        y[i] = (uint8_t)(i % 2);
        for (int f = 0; f < F; f++)
            x[i * F + f] = (float)rand() / RAND_MAX * 0.5f + (f < F / 2 ? 0.5f * y[i] : 0.0f);
    }
    rw_dataset *data;
    check(rw_dataset_from_memory(x, y, N, F, 2, &data));

    int sizes[] = {F, 256, 2};
    rw_model_config mc = rw_model_config_default();
    mc.sizes = sizes;
    mc.n_layers = 2;
    mc.sparsity = 0.9;
    rw_model *model;
    check(rw_model_create(&mc, &model));

    rw_train_config tc = rw_train_config_default();
    tc.epochs = 5;
    tc.batch = 32;
    rw_trainer *trainer;
    check(rw_trainer_create(model, &tc, &trainer));
    for (int e = 0; e < tc.epochs; e++) check(rw_trainer_epoch(trainer, data, NULL, NULL, NULL));

    rw_eval_result r;
    check(rw_evaluate(model, data, &r));
    printf("accuracy %.3f loss %.4f (kernels: %s)\n", r.accuracy, r.loss, rw_kernel_isa());
    rw_trainer_free(trainer);
    rw_model_free(model);
    rw_dataset_free(data);
    free(x);
    free(y);
    return r.accuracy > 0.9 ? 0 : 1;
}
