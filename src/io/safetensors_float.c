/* Floating-point tensors of any stored width as floats: checkpoints of
 * other tools come in F32, F16 (IEEE 754 binary16) and BF16 (bfloat16, the
 * top half of a binary32). Both halves widen to binary32 exactly. */
#include <stdint.h>
#include <string.h>

#include "io/safetensors.h"

int st_dtype_is_float(st_dtype dtype)
{
    return dtype == ST_F32 || dtype == ST_F16 || dtype == ST_BF16;
}

static float bits_to_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* binary16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits. */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, frac = h & 0x3ffu;
    if (exp == 0x1f) /* infinity or NaN (payload kept) */
        return bits_to_float(sign | 0x7f800000u | (frac << 13));
    if (exp != 0) /* normal: rebias 15 -> 127 */
        return bits_to_float(sign | ((exp + 112) << 23) | (frac << 13));
    /* zero or subnormal: frac · 2^-24, exact in binary32 */
    float v = (float)frac * 0x1p-24f;
    return sign ? -v : v;
}

int st_tensor_to_f32(const st_tensor *t, float *out)
{
    const unsigned char *p = t->data;
    size_t n = (size_t)t->count;
    switch (t->dtype) {
    case ST_F32:
        if (n) memcpy(out, p, n * sizeof(float));
        return 0;
    case ST_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2); /* little-endian host, see safetensors.c */
            out[i] = f16_to_f32(h);
        }
        return 0;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = bits_to_float((uint32_t)h << 16);
        }
        return 0;
    default: return -1;
    }
}
