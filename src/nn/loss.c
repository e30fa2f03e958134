#include "nn/loss.h"

#include <math.h>
#include <string.h>

double softmax_xent(const float *logits, const uint8_t *labels, int classes, int n, int bp,
                    float *dlogits, int64_t *correct)
{
    double total = 0;
    int64_t right = 0;
    for (int b = 0; b < n; b++) {
        float best = logits[b];
        int arg = 0;
        for (int c = 1; c < classes; c++)
            if (logits[(size_t)c * bp + b] > best) {
                best = logits[(size_t)c * bp + b];
                arg = c;
            }
        double sum = 0;
        for (int c = 0; c < classes; c++) sum += exp((double)logits[(size_t)c * bp + b] - best);
        double log_sum = log(sum) + best;
        total += log_sum - logits[(size_t)labels[b] * bp + b];
        right += arg == labels[b];
        if (dlogits)
            for (int c = 0; c < classes; c++) {
                double p = exp((double)logits[(size_t)c * bp + b] - log_sum);
                dlogits[(size_t)c * bp + b] = (float)((p - (c == labels[b])) / n);
            }
    }
    if (dlogits)
        for (int c = 0; c < classes; c++)
            memset(dlogits + (size_t)c * bp + n, 0, sizeof(float) * (size_t)(bp - n));
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
