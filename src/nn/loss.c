#include "nn/loss.h"

#include <math.h>
#include <string.h>

#include "rewire.h"

int softmax_xent_columns(const float *logits, const uint8_t *labels, int classes, int b0, int b1,
                         int n, int bp, float *dlogits, double *loss)
{
    int right = 0;
    int last = b1 < n ? b1 : n;
    for (int b = b0; b < last; b++) {
        float best = logits[b];
        int arg = 0;
        for (int c = 1; c < classes; c++)
            if (logits[(size_t)c * bp + b] > best) {
                best = logits[(size_t)c * bp + b];
                arg = c;
            }
        /* Each exponential once: softmax = e / sum. */
        double e[RW_MAX_CLASSES], sum = 0;
        for (int c = 0; c < classes; c++) sum += e[c] = exp((double)logits[(size_t)c * bp + b] - best);
        double l = log(sum) + best - logits[(size_t)labels[b] * bp + b];
        if (loss) loss[b - b0] = l;
        right += arg == labels[b];
        if (dlogits)
            for (int c = 0; c < classes; c++)
                dlogits[(size_t)c * bp + b] = (float)((e[c] / sum - (c == labels[b])) / n);
    }
    if (dlogits && b1 > n)
        for (int c = 0; c < classes; c++) {
            int from = b0 > n ? b0 : n;
            memset(dlogits + (size_t)c * bp + from, 0, sizeof(float) * (size_t)(b1 - from));
        }
    return right;
}

double softmax_xent(const float *logits, const uint8_t *labels, int classes, int n, int bp,
                    float *dlogits, int64_t *correct)
{
    double total = 0;
    int64_t right = 0;
    for (int b = 0; b < n; b++) {
        double l;
        right += softmax_xent_columns(logits, labels, classes, b, b + 1, n, bp, dlogits, &l);
        total += l;
    }
    if (dlogits && bp > n) softmax_xent_columns(logits, labels, classes, n, bp, n, bp, dlogits, NULL);
    if (correct) *correct += right;
    return total;
}

void softmax_columns(const float *logits, int classes, int n, int bp, float *probs)
{
    for (int b = 0; b < n; b++) {
        float best = logits[b];
        for (int c = 1; c < classes; c++)
            if (logits[(size_t)c * bp + b] > best) best = logits[(size_t)c * bp + b];
        double sum = 0;
        for (int c = 0; c < classes; c++) sum += exp((double)logits[(size_t)c * bp + b] - best);
        for (int c = 0; c < classes; c++)
            probs[(size_t)b * classes + c] =
                (float)(exp((double)logits[(size_t)c * bp + b] - best) / sum);
    }
}
