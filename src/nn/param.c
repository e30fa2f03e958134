/* What the storages of a parameter have in common, asked in one place so
 * that nothing else branches on how a parameter is stored. */
#include "nn/param.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int64_t param_count(const param *p)
{
    switch (p->storage) {
    case PARAM_CSR: return p->csr->nnz;
    case PARAM_NM: return (int64_t)p->rows * nm_slots_per_row(p->nm);
    case PARAM_DENSE: break;
    }
    return (int64_t)p->rows * p->cols;
}

param param_dense(const char *layer, const char *what, int rows, int cols, float **values,
                  int decays)
{
    param p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s.%s", layer, what);
    snprintf(p.tensor, sizeof p.tensor, "%s.%s", layer, what);
    snprintf(p.layer_name, sizeof p.layer_name, "%s", layer);
    p.rows = rows;
    p.cols = cols;
    p.storage = PARAM_DENSE;
    p.values = values;
    p.decays = decays;
    p.x_tensor = p.y_tensor = -1;
    return p;
}

int param_same_layout(const param *a, const param *b)
{
    return a->storage == b->storage && a->rows == b->rows && a->cols == b->cols &&
           param_count(a) == param_count(b);
}

void param_fan(const param *p, int32_t *fan_in, int32_t *fan_out)
{
    switch (p->storage) {
    case PARAM_CSR: {
        const csr_matrix *w = p->csr;
        if (fan_in)
            for (int o = 0; o < w->rows; o++) fan_in[o] = w->indptr[o + 1] - w->indptr[o];
        if (fan_out)
            for (int i = 0; i < w->cols; i++) fan_out[i] = w->t_indptr[i + 1] - w->t_indptr[i];
        return;
    }
    case PARAM_NM: {
        /* Every row holds groups·n slots; count the inputs they reach. */
        const nm_matrix *w = p->nm;
        int slots = nm_slots_per_row(w);
        if (fan_in)
            for (int o = 0; o < w->rows; o++) fan_in[o] = slots;
        if (fan_out) {
            memset(fan_out, 0, sizeof(int32_t) * (size_t)w->cols);
            for (int o = 0; o < w->rows; o++)
                for (int k = 0; k < slots; k++)
                    fan_out[nm_slot_input(k, w->n, w->m, w->offsets + (size_t)o * slots)]++;
        }
        return;
    }
    case PARAM_DENSE: break;
    }
    if (fan_in)
        for (int o = 0; o < p->rows; o++) fan_in[o] = p->cols;
    if (fan_out)
        for (int i = 0; i < p->cols; i++) fan_out[i] = p->rows;
}

rw_status param_to_csr(const param *p, csr_matrix *out)
{
    int64_t count = param_count(p);
    if (count > 2147483647)
        return rw_fail(RW_ERR_INVALID_ARGUMENT, "%s: a %d x %d matrix has more than 2^31 - 1 entries",
                       p->name, p->rows, p->cols);
    rw_status st = csr_alloc(out, p->rows, p->cols, (int)count);
    if (st != RW_OK) return st;
    const float *v = param_values(p);
    int k = 0;
    for (int o = 0; o < p->rows; o++) {
        if (p->storage == PARAM_CSR) {
            const csr_matrix *w = p->csr;
            for (int q = w->indptr[o]; q < w->indptr[o + 1]; q++, k++) {
                out->indices[k] = w->indices[q];
                out->values[k] = w->values[q];
            }
        } else if (p->storage == PARAM_NM) {
            const nm_matrix *w = p->nm;
            int slots = nm_slots_per_row(w);
            for (int q = 0; q < slots; q++, k++) {
                size_t s = (size_t)o * slots + q;
                out->indices[k] = (q / w->n) * w->m + w->offsets[s];
                out->values[k] = w->values[s];
            }
        } else {
            for (int i = 0; i < p->cols; i++, k++) {
                out->indices[k] = i;
                out->values[k] = v[(size_t)o * p->cols + i];
            }
        }
        out->indptr[o + 1] = k;
    }
    return RW_OK;
}

void param_column_mass(const param *p, float *mass)
{
    double *sum = calloc((size_t)p->cols + 1, sizeof *sum);
    if (!sum) {
        /* A few bytes per input: summed in float instead. */
        memset(mass, 0, sizeof(float) * (size_t)p->cols);
    }
    const float *v = param_values(p);
    switch (p->storage) {
    case PARAM_CSR: {
        const csr_matrix *w = p->csr;
        for (int k = 0; k < w->nnz; k++) {
            if (sum) sum[w->indices[k]] += fabsf(w->values[k]);
            else mass[w->indices[k]] += fabsf(w->values[k]);
        }
        break;
    }
    case PARAM_NM: {
        const nm_matrix *w = p->nm;
        int slots = nm_slots_per_row(w);
        for (int o = 0; o < w->rows; o++)
            for (int k = 0; k < slots; k++) {
                size_t s = (size_t)o * slots + k;
                int i = nm_slot_input(k, w->n, w->m, w->offsets + (size_t)o * slots);
                if (sum) sum[i] += fabsf(w->values[s]);
                else mass[i] += fabsf(w->values[s]);
            }
        break;
    }
    case PARAM_DENSE:
        for (int o = 0; o < p->rows; o++)
            for (int i = 0; i < p->cols; i++) {
                float a = fabsf(v[(size_t)o * p->cols + i]);
                if (sum) sum[i] += a;
                else mass[i] += a;
            }
        break;
    }
    if (!sum) return;
    for (int i = 0; i < p->cols; i++) mass[i] = (float)sum[i];
    free(sum);
}

void param_to_dense(const param *p, float *d)
{
    size_t all = (size_t)p->rows * (size_t)p->cols;
    switch (p->storage) {
    case PARAM_CSR:
        memset(d, 0, sizeof(float) * all);
        for (int o = 0; o < p->rows; o++)
            for (int k = p->csr->indptr[o]; k < p->csr->indptr[o + 1]; k++)
                d[(size_t)o * p->cols + p->csr->indices[k]] = p->csr->values[k];
        return;
    case PARAM_NM: nm_to_dense(p->nm, d); return;
    case PARAM_DENSE: break;
    }
    memcpy(d, param_values(p), sizeof(float) * all);
}

void param_view(const param *p, rw_param_view *out)
{
    memset(out, 0, sizeof *out);
    out->name = p->name;
    out->layer = p->layer_name;
    out->layer_index = p->layer;
    out->rows = p->rows;
    out->cols = p->cols;
    out->is_weight = p->is_weight;
    out->count = param_count(p);
    out->values = param_values(p);
    switch (p->storage) {
    case PARAM_CSR:
        out->storage = RW_STORAGE_CSR;
        out->indptr = p->csr->indptr;
        out->indices = p->csr->indices;
        return;
    case PARAM_NM:
        out->storage = RW_STORAGE_NM;
        out->offsets = p->nm->offsets;
        out->nm_n = p->nm->n;
        out->nm_m = p->nm->m;
        return;
    case PARAM_DENSE: break;
    }
    out->storage = RW_STORAGE_DENSE;
}

/* FNV-1a over bytes, continuing from h. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < len; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t param_hash(const param *p, int with_values)
{
    int64_t count = param_count(p);
    int32_t head[4] = {(int32_t)p->storage, p->rows, p->cols, (int32_t)count};
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, head, sizeof head);
    if (p->storage == PARAM_CSR) {
        h = fnv1a(h, p->csr->indptr, sizeof(int32_t) * ((size_t)p->rows + 1));
        h = fnv1a(h, p->csr->indices, sizeof(int32_t) * (size_t)count);
    } else if (p->storage == PARAM_NM) {
        h = fnv1a(h, p->nm->offsets, (size_t)count);
    }
    if (with_values) h = fnv1a(h, param_values(p), sizeof(float) * (size_t)count);
    return h;
}
