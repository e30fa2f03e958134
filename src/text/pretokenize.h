/* GPT-2's pre-tokenisation: text is cut into words before byte-pair
 * merging, so that no token spans a letter and a digit, or a word and the
 * punctuation after it. The pattern, from "Language Models are
 * Unsupervised Multitask Learners" (Radford et al. 2019) and its released
 * encoder, is
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * matched repeatedly from the start of the text (the first alternative
 * that matches wins). It is written out by hand here over UTF-8, with the
 * classes of src/text/unicode.h; a byte outside well-formed UTF-8 is one
 * character of the class "other" (see unicode.h). */
#ifndef RW_TEXT_PRETOKENIZE_H
#define RW_TEXT_PRETOKENIZE_H

#include <stddef.h>
#include <stdint.h>

/* The end of the pre-token that starts at s[pos], pos < len: the next
 * pre-token is s[pos, returned). Always returns more than pos. */
size_t pretokenize_next(const uint8_t *s, size_t len, size_t pos);

#endif
