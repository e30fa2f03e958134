/* GPT-2's pre-tokenisation pattern, alternative by alternative (see
 * pretokenize.h). Every character is a letter, a number, white space or
 * "other", so one of the alternatives always matches at least one
 * character. */
#include "text/pretokenize.h"

#include "text/unicode.h"

/* 's 't 'm 'd 're 've 'll: the length of the contraction at s[pos], or 0.
 * Only lower case ASCII, as in the pattern. */
static size_t contraction(const uint8_t *s, size_t len, size_t pos)
{
    if (s[pos] != '\'' || pos + 1 >= len) return 0;
    uint8_t a = s[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= len) return 0;
    uint8_t b = s[pos + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

size_t pretokenize_next(const uint8_t *s, size_t len, size_t pos)
{
    size_t n = contraction(s, len, pos);
    if (n) return pos + n;

    unicode_class cls, next;
    size_t start = pos;
    int clen = unicode_char_at(s + pos, len - pos, &cls);
    /* " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": one optional space
     * (U+0020 only), then a run of one class that is not white space. */
    if (s[pos] == ' ' && pos + 1 < len) {
        int nlen = unicode_char_at(s + pos + 1, len - pos - 1, &next);
        if (next != UCLASS_SPACE) {
            start = pos + 1;
            cls = next;
            clen = nlen;
        }
    }
    if (cls != UCLASS_SPACE) {
        size_t end = start + (size_t)clen;
        while (end < len) {
            int k = unicode_char_at(s + end, len - end, &next);
            if (next != cls) break;
            end += (size_t)k;
        }
        return end;
    }

    /* White space from pos: "\s+(?!\S)" takes the run up to the end of
     * the text, or all of it but its last character when something
     * follows (that character may then begin the next word, as in " the");
     * when that leaves nothing (a run of one), "\s+" takes the one. */
    size_t end = pos + (size_t)clen, last = pos;
    while (end < len) {
        int k = unicode_char_at(s + end, len - end, &next);
        if (next != UCLASS_SPACE) break;
        last = end;
        end += (size_t)k;
    }
    if (end == len) return len;
    return last > pos ? last : end;
}
