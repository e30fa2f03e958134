/* The layer kinds a model file may name: one line per kind. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/layer_kinds.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/moe.h"
#include "nn/residual.h"

static const layer_kind *const kinds[] = {
    &linear_csr_kind,
    &linear_nm_kind,
    &linear_dense_kind,
    &layer_norm_kind,
    &embedding_kind,
    &attention_kind,
    &residual_kind,
    &lm_head_kind,
    &moe_kind,
};

const layer_kind *layer_kind_find(const char *name)
{
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strcmp(kinds[k]->kind, name) == 0) return kinds[k];
    return NULL;
}

void layer_kind_names(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0] && used < cap; k++) {
        const char *sep = k == 0 ? "" : k + 1 == sizeof kinds / sizeof kinds[0] ? " or " : ", ";
        int n = snprintf(buf + used, cap - used, "%s%s", sep, kinds[k]->kind);
        if (n < 0) break;
        used += (size_t)n;
    }
}
