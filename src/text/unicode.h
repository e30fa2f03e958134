/* UTF-8 decoding and the character classes of GPT-2's pre-tokenisation
 * pattern: letters (\p{L}), numbers (\p{N}), white space (\s) and the rest.
 *
 * Bytes that do not belong to a well-formed UTF-8 sequence (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF; a truncated
 * sequence counts byte by byte) are decoded one byte at a time as
 * UNICODE_INVALID, whose class is "other", like punctuation. This is what
 * Python gives for text decoded with errors="surrogateescape": each such
 * byte becomes a lone surrogate, which is neither a letter, a number nor
 * white space. */
#ifndef RW_TEXT_UNICODE_H
#define RW_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    UCLASS_OTHER = 0,
    UCLASS_LETTER, /* general category L*: Lu Ll Lt Lm Lo */
    UCLASS_NUMBER, /* general category N*: Nd Nl No */
    UCLASS_SPACE   /* the White_Space property (the 25 code points of \s) */
} unicode_class;

#define UNICODE_INVALID 0xFFFFFFFFu

/* One row of the generated table (src/text/unicode_table.c). */
typedef struct {
    uint32_t first, last; /* inclusive */
    uint32_t cls;         /* UCLASS_LETTER or UCLASS_NUMBER */
} unicode_range;

extern const unicode_range unicode_table[];
extern const int unicode_table_count;
extern const char unicode_table_version[]; /* e.g. "14.0.0" */
/* The class of each ASCII byte (src/text/unicode.c). */
extern const uint8_t unicode_ascii_class[128];

/* Decodes the character at s[0] (len >= 1 bytes available): returns its
 * length in bytes (1 to 4) and sets *cp, or returns 1 with *cp =
 * UNICODE_INVALID when s[0] does not start a well-formed sequence. */
int utf8_decode(const uint8_t *s, size_t len, uint32_t *cp);

/* Writes cp (at most U+10FFFF, not a surrogate) as UTF-8 into out[4];
 * returns the length. */
int utf8_encode(uint32_t cp, uint8_t *out);

/* The class of a code point; UNICODE_INVALID is UCLASS_OTHER. */
unicode_class unicode_classify(uint32_t cp);

/* The class and byte length of the character at s[0] (len >= 1). */
static inline int unicode_char_at(const uint8_t *s, size_t len, unicode_class *cls)
{
    if (s[0] < 0x80) {
        *cls = (unicode_class)unicode_ascii_class[s[0]];
        return 1;
    }
    uint32_t cp;
    int n = utf8_decode(s, len, &cp);
    *cls = unicode_classify(cp);
    return n;
}

#endif
