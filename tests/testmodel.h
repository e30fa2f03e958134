/* Test access to a model's parameters by layer, for the tests that look
 * inside a model (an MLP: layer l's records are its weight, then its
 * bias). */
#ifndef RW_TESTMODEL_H
#define RW_TESTMODEL_H

#include "nn/model.h"
#include "nn/network.h"
#include "nn/nm_train.h"

static inline const param *tw(const rw_model *m, int l) { return &m->params[m->first_param[l]]; }
static inline const param *tb(const rw_model *m, int l) { return &m->params[m->first_param[l] + 1]; }
static inline int t_sparse(const rw_model *m, int l) { return param_is_sparse(tw(m, l)); }
static inline int t_nm(const rw_model *m, int l) { return tw(m, l)->storage == PARAM_NM; }
static inline csr_matrix *t_csr(const rw_model *m, int l) { return tw(m, l)->csr; }
static inline nm_matrix *t_nmw(const rw_model *m, int l) { return tw(m, l)->nm; }
static inline float *t_w(const rw_model *m, int l) { return param_values(tw(m, l)); }
static inline float *t_b(const rw_model *m, int l) { return param_values(tb(m, l)); }
static inline int64_t t_count(const rw_model *m, int l) { return param_count(tw(m, l)); }
/* Gradients of layer l's weight and bias in a workspace with gradients. */
static inline float *t_gw(const workspace *ws, const rw_model *m, int l) { return ws->grad[m->first_param[l]]; }
static inline float *t_gb(const workspace *ws, const rw_model *m, int l) { return ws->grad[m->first_param[l] + 1]; }

/* The same from a layer: its weight's and bias's values, and its N:M
 * training state (NULL when it does not train N:M). */
static inline linear_nm_train *t_nmt(const layer *ly) { return nm_train_of((layer *)ly); }
static inline float *t_lw(const layer *ly)
{
    param p[LAYER_MAX_PARAMS];
    ly->ops->params((layer *)ly, p);
    return *p[0].values;
}
static inline float *t_lb(const layer *ly)
{
    param p[LAYER_MAX_PARAMS];
    ly->ops->params((layer *)ly, p);
    return *p[1].values;
}

#endif
