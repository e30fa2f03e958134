/* Elementwise activations over [features][bp] buffers. */
#ifndef RW_NN_ACTIVATION_H
#define RW_NN_ACTIVATION_H

#include <stddef.h>

#include "rewire.h"

/* a = f(z) over n values (a may alias z only for RW_ACT_NONE). */
void activation_forward(rw_activation act, float slope, const float *z, float *a, size_t n);
/* g *= f'(z) over n values, given z and a = f(z). */
void activation_backward(rw_activation act, float slope, const float *z, const float *a,
                         float *g, size_t n);
const char *activation_name(rw_activation act);
/* Parses "relu", "leaky_relu", "tanh", "gelu", "none"; returns -1 if unknown. */
int activation_parse(const char *name);

#endif
