/* UTF-8 decoding (RFC 3629, "UTF-8, a transformation format of ISO
 * 10646") and character classes for GPT-2's pre-tokenisation. The
 * letter and number ranges come from the generated unicode_table.c. */
#include "text/unicode.h"

#define L UCLASS_LETTER
#define N UCLASS_NUMBER
#define S UCLASS_SPACE
#define O UCLASS_OTHER
/* \t \n \v \f \r and ' ' are white space; 0x1C-0x1F are not (they are not
 * White_Space, though Python's str.isspace() says so). */
const uint8_t unicode_ascii_class[128] = {
    O, O, O, O, O, O, O, O, O, S, S, S, S, S, O, O, /* 0x00 */
    O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, /* 0x10 */
    S, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, /* ' ' to '/' */
    N, N, N, N, N, N, N, N, N, N, O, O, O, O, O, O, /* '0' to '?' */
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* '@' to 'O' */
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O, /* 'P' to '_' */
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* '`' to 'o' */
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O, /* 'p' to DEL */
};
#undef L
#undef N
#undef S
#undef O

int utf8_decode(const uint8_t *s, size_t len, uint32_t *cp)
{
    uint8_t c = s[0];
    *cp = UNICODE_INVALID;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n;
    uint32_t v;
    uint8_t lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;      /* no overlong forms */
        else if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;      /* no overlong forms */
        else if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 1; /* a continuation byte, C0, C1 or F5-FF */
    }
    if (len < (size_t)n || s[1] < lo || s[1] > hi) return 1;
    v = v << 6 | (s[1] & 0x3F);
    for (int k = 2; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80) return 1;
        v = v << 6 | (s[k] & 0x3F);
    }
    *cp = v;
    return n;
}

int utf8_encode(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* White_Space above ASCII: U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000 (unchanged since Unicode 6.3). */
static int is_white_space(uint32_t cp)
{
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

unicode_class unicode_classify(uint32_t cp)
{
    if (cp < 0x80) return (unicode_class)unicode_ascii_class[cp];
    if (cp == UNICODE_INVALID) return UCLASS_OTHER;
    if (is_white_space(cp)) return UCLASS_SPACE;
    /* Binary search for the last range starting at or before cp. */
    int lo = 0, hi = unicode_table_count;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (unicode_table[mid].first <= cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo > 0 && cp <= unicode_table[lo - 1].last) return (unicode_class)unicode_table[lo - 1].cls;
    return UCLASS_OTHER;
}
