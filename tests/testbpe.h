/* The 50257-token BPE vocabulary the tests share (test_text.c,
 * test_gpt2_import.c) and a byte buffer to build files with. */
#ifndef RW_TESTBPE_H
#define RW_TESTBPE_H

#include <stddef.h>

/* A growing NUL-terminated byte buffer; start from {0}, free(p). */
typedef struct {
    char *p;
    size_t len, cap;
} tu_sbuf;

void tu_sb_add(tu_sbuf *b, const void *s, size_t n);
void tu_sb_str(tu_sbuf *b, const char *s);
void tu_sb_printf(tu_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a token's spelling as a JSON string: '"' and '\\' escaped, the
 * rest (printable in GPT-2's alphabet) as it is. */
void tu_sb_json_string(tu_sbuf *b, const char *s, size_t n);

/* The spelling of byte b in GPT-2's alphabet (UTF-8, NUL-terminated). */
const char *tu_byte_spelling(int b, char out[4]);

/* Writes DIR/vocab.json and DIR/merges.txt: the committed
 * data/text/bpe-50257/merges.txt.gz (made by tools/gpt2_bpe_reference.py
 * testdata) and the vocabulary that script builds from it: the 256 byte
 * tokens in GPT-2's order, each merge's new token in merge order, then
 * <|endoftext|> (id 50256). Run from the tests folder. */
void tu_write_test_bpe(const char *dir);

#endif
