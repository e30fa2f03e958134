/* Elementwise activations over [features][bp] buffers. */
#ifndef RW_NN_ACTIVATION_H
#define RW_NN_ACTIVATION_H

#include <stddef.h>

#include "rewire.h"

/* a = f(z) over n values; a may alias z (in place). Threaded over large
 * buffers (elementwise, so the result does not depend on it). */
void activation_forward(rw_activation act, float slope, const float *z, float *a, size_t n);
/* g *= f'(z) over n values, given z and a = f(z). For ReLU and leaky ReLU
 * z may be a itself: a > 0 exactly when z > 0. */
void activation_backward(rw_activation act, float slope, const float *z, const float *a,
                         float *g, size_t n);
/* The same on the calling thread only, for use inside a parallel region. */
void activation_forward_range(rw_activation act, float slope, const float *z, float *a, size_t n);
void activation_backward_range(rw_activation act, float slope, const float *z, const float *a,
                               float *g, size_t n);
/* Whether a layer keeps its pre-activation z apart from its output a:
 * GELU's derivative needs z, and for tanh z still names a diverging layer
 * (tanh(inf) is finite). ReLU, leaky ReLU and none work from a alone, so
 * their output is written in place and z is a. */
int activation_needs_z(rw_activation act);
const char *activation_name(rw_activation act);
/* Parses "relu", "leaky_relu", "tanh", "gelu", "none"; returns -1 if unknown. */
int activation_parse(const char *name);

#endif
