/* libFuzzer harness for the BPE loader (src/text/bpe_load.c) and encoder:
 * the input is vocab.json, a 0x00 byte, then merges.txt (no 0x00: all of
 * it is vocab.json and merges.txt is empty). Any bytes must load or fail
 * with a message naming one of the two files. A tokenizer that loads must
 * round-trip the input itself and a few fixed strings exactly, with every
 * id in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer.h"

static void check_round_trip(tokenizer *t, const void *text, size_t len)
{
    token_array a = {0};
    if (tokenizer_encode(t, text, len, &a) != RW_OK) abort();
    int32_t n = tokenizer_vocab_size(t);
    for (size_t i = 0; i < a.count; i++)
        if (a.ids[i] < 0 || a.ids[i] >= n) abort();
    uint8_t *back;
    size_t blen;
    if (tokenizer_decode(t, a.ids, a.count, &back, &blen) != RW_OK) abort();
    if (blen != len || (len && memcmp(back, text, len) != 0)) abort();
    free(back);
    token_array_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char vname[] = "fuzz/vocab.json", mname[] = "fuzz/merges.txt";
    const uint8_t *sep = memchr(data, 0, size);
    size_t vlen = sep ? (size_t)(sep - data) : size;
    const uint8_t *merges = sep ? sep + 1 : data + size;
    size_t mlen = sep ? size - vlen - 1 : 0;

    tokenizer *t = (tokenizer *)&t;
    rw_status st = tokenizer_bpe_load_memory(vname, data, vlen, mname, merges, mlen, &t);
    if (st != RW_OK) {
        const char *msg = rw_last_error();
        if (t || (strncmp(msg, vname, strlen(vname)) != 0 && strncmp(msg, mname, strlen(mname)) != 0))
            abort();
        return 0;
    }
    if (tokenizer_vocab_size(t) < 256) abort();
    for (int32_t id = 0; id < tokenizer_vocab_size(t); id++) {
        size_t len;
        if (!tokenizer_token_bytes(t, id, &len) || len == 0) abort();
    }
    static const char *texts[] = {"", "Hello world, it's 2024!\n\n  x", "caf\xC3\xA9 \xE4\xB8\xAD \xFF\x80",
                                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++)
        check_round_trip(t, texts[k], strlen(texts[k]));
    check_round_trip(t, data, size);
    tokenizer_free(t);
    return 0;
}
