#include "nn/input_stage.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "data/dataset.h"
#include "kernels/kernels.h"

#define INPUT_VERSION 1

void input_stage_init(input_stage *s)
{
    memset(s, 0, sizeof *s);
    s->std = 1.0f;
}

static void free_arrays(input_stage *s)
{
    free(s->index);
    free(s->fmean);
    free(s->fstd);
    free(s->shift);
    free(s->scale);
    s->index = NULL;
    s->fmean = s->fstd = s->shift = s->scale = NULL;
}

void input_stage_free(input_stage *s)
{
    free_arrays(s);
    s->feature = 0;
    s->kept = 0;
}

/* A copy of n values of size bytes each, or NULL for NULL (*ok cleared
 * when out of memory). */
static void *dup_array(const void *src, size_t n, size_t size, int *ok)
{
    if (!src) return NULL;
    void *d = malloc(n * size + 1);
    if (!d) {
        *ok = 0;
        return NULL;
    }
    memcpy(d, src, n * size);
    return d;
}

/* shift and scale from fmean and fstd. */
static void set_affine(input_stage *s, int rows)
{
    for (int j = 0; j < rows; j++) {
        s->shift[j] = s->fmean[j];
        s->scale[j] = s->fstd[j] > 0 ? 1.0f / s->fstd[j] : 0.0f;
    }
}

rw_status input_stage_copy(input_stage *dst, const input_stage *src)
{
    if (dst == src) return RW_OK;
    input_stage_free(dst);
    *dst = *src;
    dst->index = NULL;
    dst->fmean = dst->fstd = dst->shift = dst->scale = NULL;
    int ok = 1;
    size_t rows = src->index ? (size_t)src->kept : 0;
    dst->index = dup_array(src->index, rows, sizeof(int32_t), &ok);
    /* The per-feature arrays have `kept` rows, with or without an index. */
    if (src->feature) {
        size_t n = (size_t)src->kept;
        dst->fmean = dup_array(src->fmean, n, sizeof(float), &ok);
        dst->fstd = dup_array(src->fstd, n, sizeof(float), &ok);
        dst->shift = dup_array(src->shift, n, sizeof(float), &ok);
        dst->scale = dup_array(src->scale, n, sizeof(float), &ok);
    }
    if (ok) return RW_OK;
    input_stage_free(dst);
    return rw_fail(RW_ERR_NO_MEMORY, "out of memory copying the input normalisation");
}

rw_status input_stage_set_feature(input_stage *s, int features, const float *mean, const float *std)
{
    int rows = input_stage_rows(s, features);
    for (int j = 0; j < rows; j++) {
        int f = s->index ? s->index[j] : j;
        if (!isfinite(mean[f]) || !isfinite(std[f]) || std[f] < 0)
            return rw_fail(RW_ERR_INVALID_ARGUMENT,
                           "feature %d has mean %g and standard deviation %g: expected finite "
                           "values, the deviation >= 0", f, (double)mean[f], (double)std[f]);
    }
    size_t n = (size_t)(rows > 0 ? rows : 1);
    float *fm = malloc(sizeof(float) * n), *fs = malloc(sizeof(float) * n);
    float *sh = malloc(sizeof(float) * n), *sc = malloc(sizeof(float) * n);
    if (!fm || !fs || !sh || !sc) {
        free(fm), free(fs), free(sh), free(sc);
        return rw_fail(RW_ERR_NO_MEMORY, "out of memory for the input normalisation");
    }
    free(s->fmean), free(s->fstd), free(s->shift), free(s->scale);
    s->fmean = fm, s->fstd = fs, s->shift = sh, s->scale = sc;
    for (int j = 0; j < rows; j++) {
        int f = s->index ? s->index[j] : j;
        fm[j] = mean[f];
        fs[j] = std[f];
    }
    s->feature = 1;
    /* The per-feature arrays' length, with or without an index. */
    if (!s->index) s->kept = rows;
    set_affine(s, rows);
    return RW_OK;
}

void input_stage_load_rows(const input_stage *s, const float *x, int features, const int *index,
                           int n, float *a, int bp, int r0, int r1)
{
    const kernel_table *k = kernels_active();
    if (!s->index && !s->feature) {
        k->load_batch(x, features, index, n, s->mean, 1.0f / s->std, a, bp, r0, r1);
        return;
    }
    if (!s->index) {
        /* Transposed by the kernel as it is, then each row standardised
         * where it lies (in cache). */
        k->load_batch(x, features, index, n, 0.0f, 1.0f, a, bp, r0, r1);
        for (int j = r0; j < r1; j++) {
            float *row = a + (size_t)j * bp, sh = s->shift[j], sc = s->scale[j];
            for (int b = 0; b < n; b++) row[b] = (row[b] - sh) * sc;
        }
        return;
    }
    /* The kept features only: a gather, for a model that reads few. */
    float gscale = 1.0f / s->std;
    for (int j = r0; j < r1; j++) {
        float *row = a + (size_t)j * bp;
        float sh = s->feature ? s->shift[j] : s->mean, sc = s->feature ? s->scale[j] : gscale;
        const float *col = x + s->index[j];
        for (int b = 0; b < n; b++) row[b] = (col[(size_t)(index ? index[b] : b) * features] - sh) * sc;
        for (int b = n; b < bp; b++) row[b] = 0.0f;
    }
}

/* Samples a group of the byte loader takes at once. */
#define BYTE_GROUP 16

void input_stage_load_byte_rows(const input_stage *s, const uint8_t *x, int features,
                                const int *index, int n, float *a, int bp, int r0, int r1)
{
    /* One normalisation for every row: a table of the 256 results. */
    float table[256];
    if (!s->feature) {
        float sh = s->mean, sc = 1.0f / s->std;
        for (int v = 0; v < 256; v++) table[v] = (dataset_byte_value[v] - sh) * sc;
    }
    /* Sample group by sample group rather than feature by feature:
     * reading one feature of every sample of the batch touches a page per
     * sample for each feature, as the rows of a shuffled training set lie
     * far apart. Where those pages are 4 KB (a file the kernel maps
     * without huge pages) that overflows the first-level TLB; a group's 16
     * rows stay in it. (Fashion-MNIST's cache file was mapped mostly with
     * 2 MB pages on the machine measured, where the gain is not
     * established: docs/performance.md.) */
    for (int b0 = 0; b0 < n; b0 += BYTE_GROUP) {
        int g = n - b0 < BYTE_GROUP ? n - b0 : BYTE_GROUP;
        const uint8_t *src[BYTE_GROUP];
        for (int b = 0; b < g; b++)
            src[b] = x + (size_t)(index ? index[b0 + b] : b0 + b) * (size_t)features;
        for (int j = r0; j < r1; j++) {
            float *row = a + (size_t)j * bp + b0;
            int c = s->index ? s->index[j] : j;
            if (s->feature) {
                float sh = s->shift[j], sc = s->scale[j];
                for (int b = 0; b < g; b++) row[b] = (dataset_byte_value[src[b][c]] - sh) * sc;
            } else {
                for (int b = 0; b < g; b++) row[b] = table[src[b][c]];
            }
        }
    }
    for (int j = r0; j < r1; j++)
        for (int b = n; b < bp; b++) a[(size_t)j * bp + b] = 0.0f;
}

void input_stage_load_one(const input_stage *s, const float *x, int features, float *in)
{
    int rows = input_stage_rows(s, features);
    float gscale = 1.0f / s->std;
    for (int j = 0; j < rows; j++) {
        float sh = s->feature ? s->shift[j] : s->mean, sc = s->feature ? s->scale[j] : gscale;
        in[j] = (x[s->index ? s->index[j] : j] - sh) * sc;
    }
}

rw_status input_stage_select(input_stage *s, int features, const int32_t *keep, int k)
{
    int rows = input_stage_rows(s, features);
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)(k > 0 ? k : 1));
    if (!idx) return rw_fail(RW_ERR_NO_MEMORY, "out of memory selecting inputs");
    for (int j = 0; j < k; j++) {
        RW_ASSERT(keep[j] >= 0 && keep[j] < rows && (j == 0 || keep[j] > keep[j - 1]),
                  "input row %d to keep is out of order or range", keep[j]);
        idx[j] = s->index ? s->index[keep[j]] : keep[j];
    }
    /* Compacted in place: row keep[j] moves to j <= keep[j]. */
    if (s->feature)
        for (int j = 0; j < k; j++) {
            s->fmean[j] = s->fmean[keep[j]];
            s->fstd[j] = s->fstd[keep[j]];
            s->shift[j] = s->shift[keep[j]];
            s->scale[j] = s->scale[keep[j]];
        }
    free(s->index);
    s->index = idx;
    s->kept = k;
    return RW_OK;
}

/* ---- Files -------------------------------------------------------------- */

rw_status input_stage_save(const input_stage *s, int features, st_writer *w, const char *path)
{
    if (!s->feature && !s->index) return RW_OK;
    int rows = input_stage_rows(s, features);
    json_t *o = json_pack("{s:i, s:s, s:i, s:i}", "version", INPUT_VERSION, "normalize",
                          s->feature ? "feature" : "global", "features", features, "kept", rows);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text) return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory saving", path);
    rw_status st = st_writer_meta(w, "input", text);
    free(text);
    int64_t n = rows;
    if (st == RW_OK && s->index) st = st_writer_add(w, "input.index", ST_I32, 1, &n, s->index);
    if (st == RW_OK && s->feature) st = st_writer_add(w, "input.mean", ST_F32, 1, &n, s->fmean);
    if (st == RW_OK && s->feature) st = st_writer_add(w, "input.std", ST_F32, 1, &n, s->fstd);
    return st;
}

int input_stage_owns_tensor(const char *name)
{
    return strcmp(name, "input.index") == 0 || strcmp(name, "input.mean") == 0 ||
           strcmp(name, "input.std") == 0;
}

/* Tensor `name`: F32 or I32 of shape [n], or absent when `want` is 0. */
static rw_status want_tensor(const st_file *f, const char *path, const char *name, int want,
                             st_dtype dtype, int64_t n, const char *why, const st_tensor **out)
{
    const st_tensor *t = st_find(f, name);
    *out = NULL;
    if (!want) {
        if (t) return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s (%s)", path, name, why);
        return RW_OK;
    }
    if (!t) return rw_fail(RW_ERR_FORMAT, "%s: tensor %s is missing (%s)", path, name, why);
    if (t->dtype != dtype || t->ndim != 1 || t->shape[0] != n)
        return rw_fail(RW_ERR_FORMAT, "%s: tensor %s should be %s of shape [%lld]", path, name,
                       st_dtype_name(dtype), (long long)n);
    *out = t;
    return RW_OK;
}

/* Reads the "input" metadata: its version, form, features and kept rows. */
static rw_status parse_meta(const char *text, const char *path, int *feature, int *features,
                            int *kept)
{
    json_error_t jerr;
    json_t *o = strlen(text) <= 4096 ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    json_int_t version = 0, n = 0, k = 0;
    const char *form = NULL;
    int ok = o && json_unpack(o, "{s:I, s:s, s:I, s:I !}", "version", &version, "normalize", &form,
                              "features", &n, "kept", &k) == 0;
    rw_status st = RW_OK;
    if (!ok)
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata input is not a JSON object of exactly version, "
                     "normalize, features, kept", path);
    else if (version != INPUT_VERSION)
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata input has version %lld, expected %d (a newer "
                     "rewire's file?)", path, (long long)version, INPUT_VERSION);
    else if (strcmp(form, "global") != 0 && strcmp(form, "feature") != 0)
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata input normalize is \"%.40s\", expected \"global\" "
                     "or \"feature\"", path, form);
    else if (n < 1 || n > RW_MAX_WIDTH || k < 1 || k > n)
        st = rw_fail(RW_ERR_FORMAT, "%s: metadata input has %lld features and keeps %lld, expected "
                     "1 <= kept <= features <= %d", path, (long long)n, (long long)k, RW_MAX_WIDTH);
    if (st == RW_OK) {
        *feature = strcmp(form, "feature") == 0;
        *features = (int)n;
        *kept = (int)k;
    }
    json_decref(o);
    return st;
}

rw_status input_stage_load(input_stage *s, const st_file *f, const char *path, int *features)
{
    const char *text = st_meta(f, "input");
    if (!text) {
        /* Only the global pair, as every file before the input stage. */
        for (int i = 0; i < f->count; i++)
            if (input_stage_owns_tensor(f->tensors[i].name))
                return rw_fail(RW_ERR_FORMAT, "%s: unexpected tensor %s (no metadata input)", path,
                               f->tensors[i].name);
        return RW_OK;
    }
    int feature = 0, n = 0, k = 0;
    rw_status st = parse_meta(text, path, &feature, &n, &k);
    const st_tensor *ti = NULL, *tm = NULL, *ts = NULL;
    if (st == RW_OK)
        st = want_tensor(f, path, "input.index", k < n, ST_I32, k,
                         k < n ? "the model keeps fewer inputs than it has" : "the model keeps every input", &ti);
    if (st == RW_OK)
        st = want_tensor(f, path, "input.mean", feature, ST_F32, k,
                         feature ? "per-feature normalisation" : "the normalisation is global", &tm);
    if (st == RW_OK)
        st = want_tensor(f, path, "input.std", feature, ST_F32, k,
                         feature ? "per-feature normalisation" : "the normalisation is global", &ts);
    if (st != RW_OK) return st;
    input_stage_free(s);
    int ok = 1;
    if (ti) {
        const int32_t *v = (const int32_t *)ti->data;
        for (int j = 0; j < k; j++) {
            int32_t c;
            memcpy(&c, &v[j], sizeof c);
            int32_t before = 0;
            if (j > 0) memcpy(&before, &v[j - 1], sizeof before);
            if (c < 0 || c >= n || (j > 0 && c <= before))
                return rw_fail(RW_ERR_FORMAT, "%s: tensor input.index: entry %d is %d, expected "
                               "increasing inputs in [0, %d)", path, j, c, n);
        }
        s->index = dup_array(ti->data, (size_t)k, sizeof(int32_t), &ok);
    }
    if (tm) {
        for (int j = 0; j < k; j++) {
            float m, d;
            memcpy(&m, (const char *)tm->data + 4 * (size_t)j, 4);
            memcpy(&d, (const char *)ts->data + 4 * (size_t)j, 4);
            if (!isfinite(m))
                return rw_fail(RW_ERR_FORMAT, "%s: tensor input.mean has a non-finite value at %d",
                               path, j);
            if (!isfinite(d) || d < 0)
                return rw_fail(RW_ERR_FORMAT, "%s: tensor input.std has %g at %d, expected a "
                               "finite value >= 0", path, (double)d, j);
        }
        s->fmean = dup_array(tm->data, (size_t)k, sizeof(float), &ok);
        s->fstd = dup_array(ts->data, (size_t)k, sizeof(float), &ok);
        s->shift = malloc(sizeof(float) * (size_t)k);
        s->scale = malloc(sizeof(float) * (size_t)k);
        ok = ok && s->shift && s->scale;
    }
    s->feature = feature;
    s->kept = k;
    if (!ok) {
        input_stage_free(s);
        return rw_fail(RW_ERR_NO_MEMORY, "%s: out of memory for the input normalisation", path);
    }
    if (feature) set_affine(s, k);
    *features = n;
    return RW_OK;
}
