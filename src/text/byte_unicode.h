/* GPT-2's byte-to-unicode alphabet: vocab.json and merges.txt write each
 * byte of a token as one printable code point. The 188 bytes that are
 * printable in Latin-1 ('!' to '~', U+00A1 to U+00AC, U+00AE to U+00FF)
 * stand for themselves; the other 68 (0x00-0x20, 0x7F-0xA0, 0xAD), in
 * increasing order, become U+0100 to U+0143. So a space is "Ġ" (U+0120)
 * and a newline "Ċ" (U+010A). */
#ifndef RW_TEXT_BYTE_UNICODE_H
#define RW_TEXT_BYTE_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* The code point that stands for byte b. */
static inline uint32_t gpt2_byte_to_unicode(uint8_t b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 0x100 + b;
    if (b <= 0xA0) return 0x100 + 33 + (uint32_t)(b - 0x7F);
    return 0x143; /* 0xAD, the last */
}

/* The byte code point cp stands for, or -1 when cp is not in the alphabet. */
static inline int gpt2_unicode_to_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 0x100 && cp < 0x100 + 33) return (int)(cp - 0x100);
    if (cp >= 0x100 + 33 && cp < 0x143) return (int)(0x7F + cp - (0x100 + 33));
    if (cp == 0x143) return 0xAD;
    return -1;
}

/* Decodes s[0, len), a string in the alphabet (UTF-8), into out (room for
 * len bytes: each byte takes 1 or 2 bytes of s). Returns the number of
 * bytes written, or -1 with *bad set to the offset in s of the first
 * character that is not in the alphabet (or not UTF-8). */
static inline long gpt2_unicode_to_bytes(const uint8_t *s, size_t len, uint8_t *out, size_t *bad)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        int b = -1, k = 1;
        if (s[i] < 0x80) {
            b = gpt2_unicode_to_byte(s[i]);
        } else if (s[i] >= 0xC2 && s[i] <= 0xC5 && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
            b = gpt2_unicode_to_byte((uint32_t)(s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F));
            k = 2;
        }
        if (b < 0) {
            *bad = i;
            return -1;
        }
        out[n++] = (uint8_t)b;
        i += (size_t)k;
    }
    return (long)n;
}

#endif
