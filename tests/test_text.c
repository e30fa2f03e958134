/* The text module: the byte and BPE tokenizers (held to the Python
 * reference tools/gpt2_bpe_reference.py on a 50257-token vocabulary), the
 * pre-tokeniser and Unicode classes, hostile vocab.json / merges.txt /
 * config.json files, and text corpora (split, random and sequential
 * windows). Runs from the tests folder, so its data is at data/text. */
#include "testbpe.h"
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text/byte_unicode.h"
#include "text/corpus.h"
#include "text/gpt2_config.h"
#include "text/hashmap.h"
#include "text/pretokenize.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

#define CASES_JSON "data/text/bpe-cases.json"

/* ---- helpers ------------------------------------------------------------ */

static void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *dup_str(const char *s)
{
    char *d = malloc(strlen(s) + 1);
    assert_non_null(d);
    strcpy(d, s);
    return d;
}

/* A fresh folder under the temp folder; returns its malloc'ed path. */
static char *temp_dir(const char *name)
{
    char *d = dup_str(tu_temp_path(name));
    mkdir(d, 0700);
    return d;
}

static char *join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static tokenizer *gpt2_test; /* loaded once by the group setup */
static char *gpt2_dir;

static int group_setup(void **state)
{
    (void)state;
    gpt2_dir = temp_dir("bpe50257");
    tu_write_test_bpe(gpt2_dir);
    rw_status st = tokenizer_bpe_load(gpt2_dir, &gpt2_test);
    if (st != RW_OK) {
        fprintf(stderr, "loading the test BPE: %s\n", rw_last_error());
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tokenizer_free(gpt2_test);
    char *vp = join(gpt2_dir, "vocab.json"), *mp = join(gpt2_dir, "merges.txt");
    unlink(vp);
    unlink(mp);
    rmdir(gpt2_dir);
    free(vp);
    free(mp);
    free(gpt2_dir);
    return 0;
}

/* Encodes and decodes data with t: the round trip must be exact and every
 * id in range. Returns the ids (caller frees). */
static token_array round_trip(tokenizer *t, const uint8_t *data, size_t len)
{
    token_array a = {0};
    assert_int_equal(tokenizer_encode(t, data, len, &a), RW_OK);
    for (size_t i = 0; i < a.count; i++)
        assert_true(a.ids[i] >= 0 && a.ids[i] < tokenizer_vocab_size(t));
    uint8_t *back;
    size_t blen;
    assert_int_equal(tokenizer_decode(t, a.ids, a.count, &back, &blen), RW_OK);
    if (blen != len || (len && memcmp(back, data, len) != 0))
        fail_msg("round trip of %zu bytes gave %zu different bytes", len, blen);
    assert_int_equal(back[blen], 0);
    free(back);
    return a;
}

/* ---- the byte tokenizer --------------------------------------------------- */

static void test_bytes_tokenizer(void **state)
{
    (void)state;
    tokenizer *t;
    assert_int_equal(tokenizer_bytes_create(&t), RW_OK);
    assert_int_equal(tokenizer_get_kind(t), TOKENIZER_BYTES);
    assert_int_equal(tokenizer_vocab_size(t), 256);
    assert_int_equal(tokenizer_eot(t), -1);
    const uint8_t text[] = {'a', 0, 0xFF, 0x80, '\n', 'z'};
    token_array a = round_trip(t, text, sizeof text);
    assert_int_equal(a.count, sizeof text);
    for (size_t i = 0; i < sizeof text; i++) assert_int_equal(a.ids[i], text[i]);
    /* Appending: a second encode goes after the first. */
    assert_int_equal(tokenizer_encode(t, "xy", 2, &a), RW_OK);
    assert_int_equal(a.count, sizeof text + 2);
    assert_int_equal(a.ids[sizeof text + 1], 'y');
    token_array_free(&a);

    /* Every byte, and more than one encoding block. */
    uint8_t all[3000];
    for (size_t i = 0; i < sizeof all; i++) all[i] = (uint8_t)(i * 7);
    a = round_trip(t, all, sizeof all);
    assert_int_equal(a.count, sizeof all);
    token_array_free(&a);

    size_t len;
    const uint8_t *b = tokenizer_token_bytes(t, 200, &len);
    assert_non_null(b);
    assert_int_equal(len, 1);
    assert_int_equal(b[0], 200);
    assert_null(tokenizer_token_bytes(t, 256, &len));
    assert_int_equal(tokenizer_find(t, "A", 1), 'A');
    assert_int_equal(tokenizer_find(t, "AB", 2), -1);

    int32_t bad[2] = {65, 256};
    uint8_t *out = (uint8_t *)&out;
    assert_int_equal(tokenizer_decode(t, bad, 2, &out, &len), RW_ERR_INVALID_ARGUMENT);
    assert_null(out);
    assert_string_equal(rw_last_error(), "token id 256 at position 1 is outside [0, 256) of the vocabulary");
    assert_int_equal(tokenizer_decode(t, NULL, 0, &out, &len), RW_OK);
    assert_int_equal(len, 0);
    free(out);
    tokenizer_free(t);
}

/* ---- Unicode classes and pre-tokenisation -------------------------------- */

static void test_unicode_classes(void **state)
{
    (void)state;
    assert_string_equal(unicode_table_version, "14.0.0");
    for (int k = 1; k < unicode_table_count; k++) {
        assert_true(unicode_table[k - 1].first <= unicode_table[k - 1].last);
        assert_true(unicode_table[k - 1].last < unicode_table[k].first);
    }
    struct { uint32_t cp; unicode_class cls; } cases[] = {
        {'a', UCLASS_LETTER}, {'Z', UCLASS_LETTER}, {'7', UCLASS_NUMBER}, {' ', UCLASS_SPACE},
        {'\t', UCLASS_SPACE}, {'\'', UCLASS_OTHER}, {0x1C, UCLASS_OTHER}, {0x7F, UCLASS_OTHER},
        {0xE9, UCLASS_LETTER} /* é */, {0xAA, UCLASS_LETTER} /* ª */, {0xB2, UCLASS_NUMBER} /* ² */,
        {0xBD, UCLASS_NUMBER} /* ½ */, {0xA0, UCLASS_SPACE}, {0x85, UCLASS_SPACE},
        {0x4E2D, UCLASS_LETTER} /* 中 */, {0x0663, UCLASS_NUMBER} /* ٣ */,
        {0x216B, UCLASS_NUMBER} /* Ⅻ, Nl */, {0x3000, UCLASS_SPACE}, {0x2028, UCLASS_SPACE},
        {0x200B, UCLASS_OTHER} /* zero width space: not White_Space */, {0x1F980, UCLASS_OTHER},
        {0x0301, UCLASS_OTHER} /* combining acute, Mn */, {0x20000, UCLASS_LETTER},
        {0x10FFFF, UCLASS_OTHER}, {UNICODE_INVALID, UCLASS_OTHER},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        if (unicode_classify(cases[k].cp) != cases[k].cls)
            fail_msg("U+%04X: class %d, expected %d", cases[k].cp, unicode_classify(cases[k].cp),
                     cases[k].cls);

    /* Well-formed UTF-8 decodes; overlong forms, surrogates, code points
     * above U+10FFFF and truncated sequences are one invalid byte. */
    struct { const char *s; int len; uint32_t cp; } utf[] = {
        {"\xC3\xA9", 2, 0xE9}, {"\xE4\xB8\xAD", 3, 0x4E2D}, {"\xF0\x9F\xA6\x80", 4, 0x1F980},
        {"\xF4\x8F\xBF\xBF", 4, 0x10FFFF}, {"\xC0\xAF", 1, UNICODE_INVALID},
        {"\xE0\x80\xAF", 1, UNICODE_INVALID}, {"\xED\xA0\x80", 1, UNICODE_INVALID},
        {"\xF4\x90\x80\x80", 1, UNICODE_INVALID}, {"\xE2\x82", 1, UNICODE_INVALID},
        {"\x80", 1, UNICODE_INVALID}, {"\xFF", 1, UNICODE_INVALID}, {"\xE2\x82(", 1, UNICODE_INVALID},
    };
    for (size_t k = 0; k < sizeof utf / sizeof utf[0]; k++) {
        uint32_t cp;
        int n = utf8_decode((const uint8_t *)utf[k].s, strlen(utf[k].s), &cp);
        assert_int_equal(n, utf[k].len);
        assert_int_equal(cp, utf[k].cp);
        if (cp != UNICODE_INVALID) {
            uint8_t back[4];
            assert_int_equal(utf8_encode(cp, back), n);
            assert_memory_equal(back, utf[k].s, (size_t)n);
        }
    }
    /* The byte-to-unicode alphabet is one to one. */
    for (int b = 0; b < 256; b++)
        assert_int_equal(gpt2_unicode_to_byte(gpt2_byte_to_unicode((uint8_t)b)), b);
    assert_int_equal(gpt2_byte_to_unicode(' '), 0x120);
    assert_int_equal(gpt2_byte_to_unicode('\n'), 0x10A);
    assert_int_equal(gpt2_byte_to_unicode(0xAD), 0x143);
    assert_int_equal(gpt2_unicode_to_byte(' '), -1);
    assert_int_equal(gpt2_unicode_to_byte(0x144), -1);
}

/* Cuts s into pre-tokens joined by '|'. */
static void pretokens(const char *s, char *out, size_t cap)
{
    size_t len = strlen(s), at = 0;
    for (size_t pos = 0; pos < len;) {
        size_t end = pretokenize_next((const uint8_t *)s, len, pos);
        assert_true(end > pos && end <= len);
        assert_true(at + (end - pos) + 2 < cap);
        if (pos) out[at++] = '|';
        memcpy(out + at, s + pos, end - pos);
        at += end - pos;
        pos = end;
    }
    out[at] = '\0';
}

static void test_pretokenize(void **state)
{
    (void)state;
    struct { const char *in, *want; } cases[] = {
        {"Hello world", "Hello| world"},
        {"it's they'll we'd've DON'T", "it|'s| they|'ll| we|'d|'ve| DON|'|T"}, /* lower case only */
        {"'sup 'x ''re", "'s|up| '|x| ''|re"},
        {"a  b", "a| | b"},
        {"a   \n\n  b", "a|   \n\n | b"},
        {"x\n\nfoo", "x|\n|\n|foo"},
        {"tail   ", "tail|   "},
        {" 123abc!!", " 123|abc|!!"},
        {"3.14", "3|.|14"},
        {"e\xCC\x81t\xC3\xA9", "e|\xCC\x81|t\xC3\xA9"}, /* a combining mark is "other" */
        {"caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87", "caf\xC3\xA9| \xE4\xB8\xAD\xE6\x96\x87"},
        /* invalid bytes are "other": they join punctuation, a space before them too */
        {"a\xFF\x62", "a|\xFF|b"},
        {" \xFF\xFE!x", " \xFF\xFE!|x"},
        {"\xE2\x82 ok", "\xE2\x82| ok"},
        {"x\xC2\xA0y", "x|\xC2\xA0|y"}, /* U+00A0 is white space, not a space for " ?" */
        {"\xC2\xA0\xC2\xA0y", "\xC2\xA0|\xC2\xA0|y"},
    };
    char got[256];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        pretokens(cases[k].in, got, sizeof got);
        if (strcmp(got, cases[k].want) != 0)
            fail_msg("pre-tokens of case %zu: \"%s\", expected \"%s\"", k, got, cases[k].want);
    }
}

/* ---- BPE against the reference ------------------------------------------- */

static size_t from_hex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void test_bpe_reference_cases(void **state)
{
    (void)state;
    assert_int_equal(tokenizer_get_kind(gpt2_test), TOKENIZER_BPE);
    assert_int_equal(tokenizer_vocab_size(gpt2_test), 50257);
    assert_int_equal(tokenizer_eot(gpt2_test), 50256);
    json_error_t err;
    json_t *cases = json_load_file(CASES_JSON, 0, &err);
    if (!cases) fail_msg("%s: %s", CASES_JSON, err.text);
    assert_true(json_array_size(cases) >= 40);
    size_t i;
    json_t *c;
    size_t total = 0;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *hex = json_string_value(json_object_get(c, "hex"));
        json_t *ids = json_object_get(c, "ids");
        uint8_t *data = malloc(strlen(hex) / 2 + 1);
        size_t len = from_hex(hex, data);
        token_array a = round_trip(gpt2_test, data, len);
        size_t want = json_array_size(ids);
        for (size_t k = 0; k < a.count && k < want; k++) {
            json_int_t w = json_integer_value(json_array_get(ids, k));
            if (a.ids[k] != w) fail_msg("%s: token %zu is %d, the reference says %lld", name, k, a.ids[k], (long long)w);
        }
        if (a.count != want) fail_msg("%s: %zu tokens, the reference has %zu", name, a.count, want);
        total += a.count;
        token_array_free(&a);
        free(data);
    }
    assert_true(total > 3000);
    json_decref(cases);

    /* "<|endoftext|>" in text is text; its id decodes to its spelling. */
    size_t len;
    const uint8_t *eot = tokenizer_token_bytes(gpt2_test, 50256, &len);
    assert_int_equal(len, 13);
    assert_memory_equal(eot, "<|endoftext|>", 13);
    assert_int_equal(tokenizer_find(gpt2_test, "<|endoftext|>", 13), 50256);
}

/* Random byte strings of several kinds round-trip exactly, and encoding
 * the same text again (from the cache) gives the same ids. */
static void test_bpe_random_round_trip(void **state)
{
    (void)state;
    static const char *pieces[] = {"the", " of", "'s", " ", "  ", "\n", "\t", "7", "42", "!",
                                   "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\xA6\x80", "\xE2\x80\x83",
                                   "\xC2\xA0", "\xFF", "\x80", "\xE2\x82", "<|endoftext|>", "'ll"};
    rng_state r;
    rng_seed(&r, 20240501);
    uint8_t *buf = malloc(8192);
    for (int trial = 0; trial < 400; trial++) {
        size_t len = 0, want = (size_t)rng_below(&r, 4000);
        int kind = trial % 3;
        while (len < want) {
            if (kind == 0) {
                buf[len++] = (uint8_t)rng_below(&r, 256);
            } else if (kind == 1) {
                buf[len++] = (uint8_t)" aeiostnrl\n.,'"[rng_below(&r, 14)];
            } else {
                const char *p = pieces[rng_below(&r, sizeof pieces / sizeof pieces[0])];
                size_t n = strlen(p);
                memcpy(buf + len, p, n);
                len += n;
            }
        }
        token_array a = round_trip(gpt2_test, buf, len);
        token_array b = {0};
        assert_int_equal(tokenizer_encode(gpt2_test, buf, len, &b), RW_OK);
        assert_int_equal(a.count, b.count);
        if (a.count) assert_memory_equal(a.ids, b.ids, a.count * sizeof *a.ids);
        token_array_free(&a);
        token_array_free(&b);
    }
    free(buf);
}

/* A word too long for the cache is merged in the cache's spare room and
 * must not overwrite the words cached before it (the fuzzer found that it
 * did: those words then decoded to the long word's tokens). */
static void test_bpe_cache_and_long_words(void **state)
{
    (void)state;
    tokenizer *t;
    assert_int_equal(tokenizer_bpe_load(gpt2_dir, &t), RW_OK);
    const char *words = "The cat, the dog; and 42 birds!";
    token_array first = round_trip(t, (const uint8_t *)words, strlen(words));
    char longword[400];
    for (size_t len = 100; len < sizeof longword; len += 37) {
        for (size_t i = 0; i < len; i++) longword[i] = (char)("xyzzy"[i % 5]);
        token_array a = round_trip(t, (const uint8_t *)longword, len);
        token_array_free(&a);
        token_array again = round_trip(t, (const uint8_t *)words, strlen(words));
        assert_int_equal(again.count, first.count);
        assert_memory_equal(again.ids, first.ids, first.count * sizeof *first.ids);
        token_array_free(&again);
    }
    token_array_free(&first);
    tokenizer_free(t);
}

/* Words longer than the cache takes, and very long runs, encode in
 * O(n log n): a run of a million letters or spaces takes well under a
 * second. */
static void test_bpe_long_words(void **state)
{
    (void)state;
    size_t n = 1000000;
    uint8_t *buf = malloc(n);
    const uint8_t fill[] = {'a', ' ', '\n', 0xFF};
    for (size_t k = 0; k < sizeof fill; k++) {
        memset(buf, fill[k], n);
        token_array a = round_trip(gpt2_test, buf, n);
        if (fill[k] != 0xFF) assert_true(a.count <= n / 2); /* no merge has byte 0xFF */
        token_array_free(&a);
    }
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)"abcdefghij"[(i * 7 + i / 13) % 10];
    token_array a = round_trip(gpt2_test, buf, n);
    token_array_free(&a);
    free(buf);
}

/* A merges list whose order is not the order of training: the pair made
 * by one merge ("ab a", rank 0) outranks the merge that makes its part
 * ("a b", rank 1). GPT-2 merges every "a b" of the word before it looks
 * at the new pairs: "abab" -> "ab ab", not "aba b". */
static void test_bpe_merge_order(void **state)
{
    (void)state;
    tu_sbuf v = {0};
    tu_sb_str(&v, "{");
    for (int b = 0; b < 256; b++) {
        char sp[4];
        tu_byte_spelling(b, sp);
        tu_sb_str(&v, b ? ", " : "");
        tu_sb_json_string(&v, sp, strlen(sp));
        tu_sb_printf(&v, ": %d", b);
    }
    tu_sb_str(&v, ", \"ab\": 256, \"aba\": 257, \"abab\": 258}");
    const char *merges = "ab a\na b\nab ab\n";
    tokenizer *t;
    assert_int_equal(tokenizer_bpe_load_memory("v.json", v.p, v.len, "m.txt", merges, strlen(merges), &t),
                     RW_OK);
    assert_int_equal(tokenizer_eot(t), -1);
    token_array a = round_trip(t, (const uint8_t *)"abab", 4);
    assert_int_equal(a.count, 1);
    assert_int_equal(a.ids[0], 258); /* ab ab, then abab */
    token_array_free(&a);
    a = round_trip(t, (const uint8_t *)"aba", 3);
    assert_int_equal(a.count, 1);
    assert_int_equal(a.ids[0], 257);
    token_array_free(&a);
    a = round_trip(t, (const uint8_t *)"aaab", 4); /* no merge "a a" */
    assert_int_equal(a.count, 3);
    token_array_free(&a);
    tokenizer_free(t);
    free(v.p);
}

/* ---- hostile vocab.json and merges.txt ----------------------------------- */

/* A small valid vocabulary: the 256 byte tokens (byte b has id b), then
 * "Ġt", "he", "Ġthe", "<|endoftext|>"; `skip` leaves one byte out (and
 * the ids after it shift down), `extra` is appended inside the object. */
static char *small_vocab(int skip, const char *extra)
{
    tu_sbuf v = {0};
    tu_sb_str(&v, "{");
    int id = 0;
    for (int b = 0; b < 256; b++) {
        if (b == skip) continue;
        char sp[4];
        tu_byte_spelling(b, sp);
        tu_sb_str(&v, id ? ", " : "");
        tu_sb_json_string(&v, sp, strlen(sp));
        tu_sb_printf(&v, ": %d", id++);
    }
    tu_sb_printf(&v, ", \"\xC4\xA0t\": %d, \"he\": %d, \"\xC4\xA0the\": %d, \"<|endoftext|>\": %d", id,
              id + 1, id + 2, id + 3);
    if (extra) tu_sb_str(&v, extra);
    tu_sb_str(&v, "}");
    return v.p;
}

static const char *small_merges = "#version: 0.2\n\xC4\xA0 t\nh e\n\xC4\xA0t he\n";

static void expect_bpe_fail(const char *vocab, size_t vlen, const char *merges, rw_status want,
                            const char *needle)
{
    tokenizer *t = (tokenizer *)&t;
    rw_status st = tokenizer_bpe_load_memory("V/vocab.json", vocab, vlen, "V/merges.txt", merges,
                                             strlen(merges), &t);
    const char *msg = rw_last_error();
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", msg);
    if (st != want || !strstr(msg, needle))
        fail_msg("status %s, message \"%s\"; expected %s with \"%s\"", rw_status_string(st), msg,
                 rw_status_string(want), needle);
    assert_null(t);
}

static void expect_vocab_fail(const char *vocab, const char *needle)
{
    expect_bpe_fail(vocab, strlen(vocab), small_merges, RW_ERR_FORMAT, needle);
}

static void expect_merges_fail(const char *merges, const char *needle)
{
    char *v = small_vocab(-1, NULL);
    expect_bpe_fail(v, strlen(v), merges, RW_ERR_FORMAT, needle);
    free(v);
}

static void test_small_vocab_loads(void **state)
{
    (void)state;
    char *v = small_vocab(-1, NULL);
    tokenizer *t;
    assert_int_equal(tokenizer_bpe_load_memory("v", v, strlen(v), "m", small_merges,
                                               strlen(small_merges), &t),
                     RW_OK);
    assert_int_equal(tokenizer_vocab_size(t), 260);
    assert_int_equal(tokenizer_eot(t), 259);
    token_array a = round_trip(t, (const uint8_t *)"the the", 7);
    int32_t want[] = {'t', 257, 258}; /* t he Ġthe */
    assert_int_equal(a.count, 3);
    assert_memory_equal(a.ids, want, sizeof want);
    token_array_free(&a);
    tokenizer_free(t);
    /* Windows line ends, no final newline, no #version line. */
    const char *crlf = "\xC4\xA0 t\r\nh e\r\n\xC4\xA0t he";
    assert_int_equal(tokenizer_bpe_load_memory("v", v, strlen(v), "m", crlf, strlen(crlf), &t), RW_OK);
    tokenizer_free(t);
    free(v);
}

static void test_hostile_vocab(void **state)
{
    (void)state;
    expect_vocab_fail("[1, 2]", "V/vocab.json: expected a JSON object mapping each token to its id, got an array");
    expect_vocab_fail("{\"a\": 0", "V/vocab.json: not valid JSON (line 1, column 7)");
    expect_vocab_fail("{}", "V/vocab.json: the vocabulary is empty, expected at least the 256 single-byte tokens");
    expect_vocab_fail("{\"a\": 0, \"a\": 1}", "duplicate object key");

    char *v = small_vocab(-1, ", \"xy\": \"7\"");
    expect_vocab_fail(v, "V/vocab.json: token \"xy\": id is a string, expected an integer");
    free(v);
    v = small_vocab(-1, ", \"xy\": 1.5");
    expect_vocab_fail(v, "V/vocab.json: token \"xy\": id is a real number, expected an integer");
    free(v);
    v = small_vocab(-1, ", \"xy\": 7");
    expect_vocab_fail(v, "V/vocab.json: tokens \"");
    expect_vocab_fail(v, "\" both have id 7");
    expect_vocab_fail(v, "\"xy\"");
    expect_vocab_fail(v, "\"\xC4\x87\""); /* byte 7's token, spelled "ć" */
    free(v);
    v = small_vocab(-1, ", \"xy\": 261");
    expect_vocab_fail(v, "V/vocab.json: token \"xy\": id 261 is outside [0, 261) (the 261 tokens must have the ids 0 to 260, one each)");
    free(v);
    v = small_vocab(-1, ", \"xy\": -1");
    expect_vocab_fail(v, "token \"xy\": id -1 is outside [0, 261)");
    free(v);
    /* A token spelled with a character outside the alphabet (a plain
     * space is "Ġ" there), with a CJK character, or empty. */
    v = small_vocab(-1, ", \"a b\": 260");
    expect_vocab_fail(v, "V/vocab.json: token \"a b\" (id 260): character U+0020 at byte 1 is not in GPT-2's byte-to-unicode alphabet");
    free(v);
    v = small_vocab(-1, ", \"\xE4\xB8\xAD\": 260");
    expect_vocab_fail(v, "token \"\xE4\xB8\xAD\" (id 260): character U+4E2D at byte 0 is not in");
    free(v);
    v = small_vocab(-1, ", \"\\n\": 260");
    expect_vocab_fail(v, "token \"\\x0A\" (id 260): character U+000A at byte 0");
    free(v);
    v = small_vocab(-1, ", \"\": 260");
    expect_vocab_fail(v, "V/vocab.json: token \"\" (id 260) is empty, expected at least one character");
    free(v);
    /* A byte without its token (newline is "Ċ"). */
    v = small_vocab('\n', NULL);
    expect_vocab_fail(v, "V/vocab.json: no token for byte 0x0A (\"\xC4\x8A\" in GPT-2's alphabet): a byte-level vocabulary needs all 256 single-byte tokens");
    free(v);
    /* More members than any vocabulary may have, refused before parsing. */
    size_t n = BPE_MAX_TOKENS + 10;
    char *many = malloc(n + 3);
    many[0] = '{';
    memset(many + 1, ':', n);
    many[n + 1] = '}';
    many[n + 2] = '\0';
    expect_bpe_fail(many, n + 2, small_merges, RW_ERR_FORMAT,
                    "V/vocab.json: holds 2097162 or more tokens, more than the limit of 2097152");
    free(many);
}

static void test_hostile_merges(void **state)
{
    (void)state;
    expect_merges_fail("#version: 0.2\n\xC4\xA0t\n", "V/merges.txt: line 2: \"\xC4\xA0t\" has 1 space-separated parts, expected 2 (a merge \"A B\")");
    expect_merges_fail("h e x\n", "V/merges.txt: line 1: \"h e x\" has 3 space-separated parts");
    expect_merges_fail("h  e\n", "line 1: \"h  e\" has 3 space-separated parts");
    expect_merges_fail("h \n", "V/merges.txt: line 1: \"h \" has an empty part, expected a merge \"A B\" of two tokens");
    expect_merges_fail("h e\n\n\xC4\xA0 t\n", "V/merges.txt: line 2: \"\" has 0 space-separated parts");
    expect_merges_fail(" e\n", "line 1: \" e\" has an empty part");
    expect_merges_fail("h e\n#version: 0.2\n", "V/merges.txt: line 2: \"#version:\" is not a token of V/vocab.json");
    expect_merges_fail("h zz\n", "V/merges.txt: line 1: \"zz\" is not a token of V/vocab.json");
    expect_merges_fail("\xFF t\n", "V/merges.txt: line 1: \"\\xFF\" is not a token of V/vocab.json");
    expect_merges_fail("h e\n\xC4\xA0 a\n", "V/merges.txt: line 2: merging \"\xC4\xA0\" and \"a\" gives \"\xC4\xA0" "a\", which is not a token of V/vocab.json");
    expect_merges_fail("h e\n\xC4\xA0 t\nh e\n", "V/merges.txt: line 3 repeats the merge \"h e\" of line 1");
}

/* Files on disk: missing ones, a folder, and files over the size limit
 * (sparse, so nothing is written). */
static void test_bpe_files(void **state)
{
    (void)state;
    char *dir = temp_dir("bpefiles");
    char *vp = join(dir, "vocab.json"), *mp = join(dir, "merges.txt");
    tokenizer *t = (tokenizer *)&t;
    assert_int_equal(tokenizer_bpe_load(dir, &t), RW_ERR_IO);
    assert_null(t);
    assert_non_null(strstr(rw_last_error(), "/vocab.json: cannot open: No such file or directory"));

    char *v = small_vocab(-1, NULL);
    write_bytes(vp, v, strlen(v));
    assert_int_equal(tokenizer_bpe_load(dir, &t), RW_ERR_IO);
    assert_non_null(strstr(rw_last_error(), "/merges.txt: cannot open: No such file or directory"));
    write_bytes(mp, small_merges, strlen(small_merges));
    char slash[600];
    snprintf(slash, sizeof slash, "%s//", dir); /* trailing slashes are fine */
    assert_int_equal(tokenizer_bpe_load(slash, &t), RW_OK);
    assert_int_equal(tokenizer_vocab_size(t), 260);
    tokenizer_free(t);

    FILE *f = fopen(mp, "r+b");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)BPE_MAX_FILE_BYTES + 1), 0);
    fclose(f);
    assert_int_equal(tokenizer_bpe_load(dir, &t), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "/merges.txt: file is 67108865 bytes, more than the limit of 67108864 for a merges list"));
    unlink(mp);
    mkdir(mp, 0700);
    assert_int_equal(tokenizer_bpe_load(dir, &t), RW_ERR_IO);
    assert_non_null(strstr(rw_last_error(), "/merges.txt: is a folder, expected a merges list file"));
    rmdir(mp);
    unlink(vp);
    rmdir(dir);
    free(v);
    free(vp);
    free(mp);
    free(dir);
}

/* ---- config.json ----------------------------------------------------------- */

static const char *gpt2_small_config =
    "{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"],"
    " \"attn_pdrop\": 0.1, \"bos_token_id\": 50256, \"embd_pdrop\": 0.1, \"eos_token_id\": 50256,"
    " \"initializer_range\": 0.02, \"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\","
    " \"n_ctx\": 1024, \"n_embd\": 768, \"n_head\": 12, \"n_layer\": 12, \"n_positions\": 1024,"
    " \"resid_pdrop\": 0.1, \"summary_activation\": null, \"vocab_size\": 50257}";

static void expect_config_fail(const char *json, const char *needle)
{
    gpt2_config c;
    rw_status st = gpt2_config_parse("C/config.json", json, strlen(json), &c);
    const char *msg = rw_last_error();
    if (getenv("RW_TEST_SHOW")) print_message("%s\n", msg);
    if (st != RW_ERR_FORMAT || !strstr(msg, needle))
        fail_msg("status %s, message \"%s\"; expected malformed input with \"%s\"",
                 rw_status_string(st), msg, needle);
}

static void test_gpt2_config(void **state)
{
    (void)state;
    gpt2_config c;
    assert_int_equal(gpt2_config_parse("c", gpt2_small_config, strlen(gpt2_small_config), &c), RW_OK);
    assert_int_equal(c.n_layer, 12);
    assert_int_equal(c.n_head, 12);
    assert_int_equal(c.n_embd, 768);
    assert_int_equal(c.n_positions, 1024);
    assert_int_equal(c.vocab_size, 50257);
    assert_int_equal(c.n_inner, 3072);
    assert_true(c.layer_norm_epsilon == 1e-5);
    assert_int_equal(c.activation, GPT2_GELU_TANH);

    const char *minimal = "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256,"
                          " \"n_inner\": null, \"activation_function\": \"gelu\"}";
    assert_int_equal(gpt2_config_parse("c", minimal, strlen(minimal), &c), RW_OK);
    assert_int_equal(c.n_positions, 16);
    assert_int_equal(c.n_inner, 32);
    assert_true(c.layer_norm_epsilon == 1e-5);
    assert_int_equal(c.activation, GPT2_GELU_ERF);
    const char *inner = "{\"n_layer\": 1, \"n_head\": 1, \"n_embd\": 4, \"n_positions\": 8, \"vocab_size\": 9,"
                        " \"n_inner\": 10, \"layer_norm_epsilon\": 1e-6}";
    assert_int_equal(gpt2_config_parse("c", inner, strlen(inner), &c), RW_OK);
    assert_int_equal(c.n_inner, 10);
    assert_true(c.layer_norm_epsilon == 1e-6);

    expect_config_fail("[]", "C/config.json: expected a JSON object of the model's settings, got an array");
    expect_config_fail("{\"n_layer\": 1,", "C/config.json: not valid JSON (line 1");
    expect_config_fail("{\"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256}",
                       "C/config.json: field \"n_layer\" is missing, expected an integer in [1, 1024]");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": \"2\", \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256}",
                       "C/config.json: field \"n_head\" is a string, expected an integer in [1, 1024]");
    expect_config_fail("{\"n_layer\": 2.0, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256}",
                       "field \"n_layer\" is a real number, expected an integer");
    expect_config_fail("{\"n_layer\": 0, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256}",
                       "C/config.json: field \"n_layer\" is 0, outside [1, 1024]");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 100000, \"n_ctx\": 16, \"vocab_size\": 256}",
                       "field \"n_embd\" is 100000, outside [1, 65536]");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 99999999999}",
                       "field \"vocab_size\" is 99999999999, outside [1, 2097152]");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 3, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256}",
                       "C/config.json: n_embd 8 is not divisible by n_head 3");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"vocab_size\": 256}",
                       "C/config.json: field \"n_positions\" (or \"n_ctx\") is missing");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"n_positions\": 32, \"vocab_size\": 256}",
                       "C/config.json: n_ctx 16 disagrees with n_positions 32");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_positions\": -5, \"vocab_size\": 256}",
                       "field \"n_positions\" is -5, outside [1, 1048576]");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256, \"n_inner\": \"x\"}",
                       "field \"n_inner\" is a string, expected an integer");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256, \"layer_norm_epsilon\": 0}",
                       "C/config.json: field \"layer_norm_epsilon\" is 0, outside (0, 1)");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256, \"layer_norm_epsilon\": \"1e-5\"}",
                       "field \"layer_norm_epsilon\" is a string, expected a number in (0, 1)");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256, \"activation_function\": \"relu\"}",
                       "C/config.json: activation_function \"relu\" is not supported, expected \"gelu_new\" or \"gelu\"");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256, \"activation_function\": 1}",
                       "field \"activation_function\" is an integer, expected the string");
    expect_config_fail("{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 16, \"vocab_size\": 256, \"model_type\": \"llama\"}",
                       "C/config.json: model_type is \"llama\", expected \"gpt2\"");
    expect_config_fail("{\"n_layer\": 1, \"n_layer\": 2}", "duplicate object key");

    /* From a file: missing, too large (sparse), good. */
    const char *path = tu_temp_path("config.json");
    unlink(path);
    assert_int_equal(gpt2_config_read(path, &c), RW_ERR_IO);
    assert_non_null(strstr(rw_last_error(), "config.json: cannot open: No such file or directory"));
    write_bytes(path, gpt2_small_config, strlen(gpt2_small_config));
    assert_int_equal(gpt2_config_read(path, &c), RW_OK);
    assert_int_equal(c.n_embd, 768);
    assert_int_equal(truncate(path, (off_t)GPT2_MAX_CONFIG_BYTES + 1), 0);
    assert_int_equal(gpt2_config_read(path, &c), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "config.json: file is 1048577 bytes, more than the limit of 1048576 for a config"));
    unlink(path);
}

/* ---- corpora ----------------------------------------------------------------- */

/* A corpus whose token i is i (built by hand: the struct is plain data),
 * so a window's position can be read off its tokens. */
static text_corpus *counting_corpus(size_t n, size_t n_train)
{
    text_corpus *c = malloc(sizeof *c);
    c->tokens = malloc(n * sizeof *c->tokens);
    for (size_t i = 0; i < n; i++) c->tokens[i] = (int32_t)i;
    c->n_tokens = n;
    c->n_train = n_train;
    c->vocab_size = (int32_t)n;
    return c;
}

static void test_corpus_split(void **state)
{
    (void)state;
    tokenizer *bytes;
    assert_int_equal(tokenizer_bytes_create(&bytes), RW_OK);
    char text[1000];
    for (int i = 0; i < 1000; i++) text[i] = (char)('a' + i % 26);
    text_corpus *c;
    assert_int_equal(corpus_from_memory("t", text, 1000, bytes, 0.1, 8, &c), RW_OK);
    assert_int_equal(c->n_tokens, 1000);
    assert_int_equal(c->n_train, 900); /* the last 10% validate, as nanoGPT's int(n * 0.9) */
    assert_int_equal(corpus_split_size(c, CORPUS_TRAIN), 900);
    assert_int_equal(corpus_split_size(c, CORPUS_VAL), 100);
    assert_int_equal(c->tokens[999], 'a' + 999 % 26);
    corpus_free(c);
    assert_int_equal(corpus_from_memory("t", text, 1000, bytes, 0.0, 8, &c), RW_OK);
    assert_int_equal(c->n_train, 1000);
    corpus_free(c);

    /* From a file, with the BPE tokenizer: the tokens are the encoding. */
    const char *path = tu_temp_path("corpus.txt");
    const char *words = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n";
    write_bytes(path, words, strlen(words));
    assert_int_equal(corpus_load(path, gpt2_test, 0.25, 3, &c), RW_OK);
    token_array a = {0};
    assert_int_equal(tokenizer_encode(gpt2_test, words, strlen(words), &a), RW_OK);
    assert_int_equal(c->n_tokens, a.count);
    assert_memory_equal(c->tokens, a.ids, a.count * sizeof *a.ids);
    assert_int_equal(c->n_train, (size_t)floor(a.count * 0.75));
    assert_int_equal(c->vocab_size, 50257);
    token_array_free(&a);
    corpus_free(c);

    /* Errors. */
    c = (text_corpus *)&c;
    assert_int_equal(corpus_from_memory("t", text, 1000, bytes, 1.0, 8, &c), RW_ERR_INVALID_ARGUMENT);
    assert_null(c);
    assert_string_equal(rw_last_error(), "validation fraction 1 is outside [0, 1)");
    assert_int_equal(corpus_from_memory("t", text, 1000, bytes, -0.1, 8, &c), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(corpus_from_memory("t", text, 1000, bytes, NAN, 8, &c), RW_ERR_INVALID_ARGUMENT);
    assert_int_equal(corpus_from_memory("t", text, 1000, bytes, 0.1, 0, &c), RW_ERR_INVALID_ARGUMENT);
    assert_string_equal(rw_last_error(), "context 0 is outside [1, 16777216]");
    assert_int_equal(corpus_from_memory("F", text, 0, bytes, 0.1, 8, &c), RW_ERR_FORMAT);
    assert_string_equal(rw_last_error(), "F: file is empty, expected text");
    tokenizer_free(bytes);
}

static void test_corpus_split_errors(void **state)
{
    (void)state;
    tokenizer *bytes;
    assert_int_equal(tokenizer_bytes_create(&bytes), RW_OK);
    char text[100];
    memset(text, 'x', sizeof text);
    text_corpus *c = (text_corpus *)&c;
    assert_int_equal(corpus_from_memory("F", text, 100, bytes, 0.1, 10, &c), RW_ERR_FORMAT);
    assert_null(c);
    assert_string_equal(rw_last_error(), "F: the validation split holds 10 tokens (10% of 100), fewer than the 11 that one window of context 10 needs");
    assert_int_equal(corpus_from_memory("F", text, 100, bytes, 0.5, 60, &c), RW_ERR_FORMAT);
    assert_string_equal(rw_last_error(), "F: the training split holds 50 tokens (50% of 100), fewer than the 61 that one window of context 60 needs");
    assert_int_equal(corpus_from_memory("F", text, 100, bytes, 0.0, 100, &c), RW_ERR_FORMAT);
    assert_int_equal(corpus_from_memory("F", text, 100, bytes, 0.0, 99, &c), RW_OK);
    corpus_free(c);
    const char *path = tu_temp_path("missing.txt");
    unlink(path);
    assert_int_equal(corpus_load(path, bytes, 0.1, 4, &c), RW_ERR_IO);
    assert_non_null(strstr(rw_last_error(), "missing.txt: cannot open: No such file or directory"));
    write_bytes(path, "", 0);
    assert_int_equal(corpus_load(path, bytes, 0.1, 4, &c), RW_ERR_FORMAT);
    assert_non_null(strstr(rw_last_error(), "missing.txt: file is empty, expected text"));
    unlink(path);
    tokenizer_free(bytes);
}

static void test_corpus_sample(void **state)
{
    (void)state;
    enum { T = 6, B = 16 };
    text_corpus *c = counting_corpus(200, 150);
    int32_t in[B * T], tg[B * T], in2[B * T], tg2[B * T];
    for (int split = 0; split < 2; split++) {
        size_t base = split ? 150 : 0, n = split ? 50 : 150;
        for (uint64_t step = 0; step < 50; step++) {
            assert_int_equal(corpus_sample_batch(c, (corpus_split)split, T, B, 7, step, in, tg), RW_OK);
            for (int b = 0; b < B; b++) {
                int32_t start = in[b * T];
                /* Inside the split, consecutive, targets one ahead. */
                assert_true((size_t)start >= base && (size_t)start + T + 1 <= base + n);
                for (int t = 0; t < T; t++) {
                    assert_int_equal(in[b * T + t], start + t);
                    assert_int_equal(tg[b * T + t], start + t + 1);
                    if (t + 1 < T) assert_int_equal(in[b * T + t + 1], tg[b * T + t]);
                }
            }
            /* The same (seed, step) gives the same batch. */
            assert_int_equal(corpus_sample_batch(c, (corpus_split)split, T, B, 7, step, in2, tg2), RW_OK);
            assert_memory_equal(in, in2, sizeof in);
            assert_memory_equal(tg, tg2, sizeof tg);
        }
    }
    /* Another step or seed, another batch. */
    assert_int_equal(corpus_sample_batch(c, CORPUS_TRAIN, T, B, 7, 1, in, tg), RW_OK);
    assert_int_equal(corpus_sample_batch(c, CORPUS_TRAIN, T, B, 7, 2, in2, tg2), RW_OK);
    assert_true(memcmp(in, in2, sizeof in) != 0);
    assert_int_equal(corpus_sample_batch(c, CORPUS_TRAIN, T, B, 8, 1, in2, tg2), RW_OK);
    assert_true(memcmp(in, in2, sizeof in) != 0);
    corpus_free(c);

    /* A split of 10 tokens and context 6 has 4 windows: all are drawn, the
     * last one included. */
    c = counting_corpus(20, 10);
    int seen[4] = {0};
    for (uint64_t step = 0; step < 20; step++) {
        assert_int_equal(corpus_sample_batch(c, CORPUS_VAL, T, B, 1, step, in, tg), RW_OK);
        for (int b = 0; b < B; b++) {
            int s = in[b * T] - 10;
            assert_true(s >= 0 && s < 4);
            seen[s]++;
        }
    }
    for (int s = 0; s < 4; s++) assert_true(seen[s] > 0);
    assert_int_equal(corpus_sample_batch(c, CORPUS_VAL, 10, 1, 1, 0, in, tg), RW_ERR_INVALID_ARGUMENT);
    assert_string_equal(rw_last_error(), "the validation split holds 10 tokens, fewer than the 11 a window of context 10 needs");
    assert_int_equal(corpus_sample_batch(c, CORPUS_VAL, T, 0, 1, 0, in, tg), RW_ERR_INVALID_ARGUMENT);
    corpus_free(c);
}

static void test_corpus_eval_windows(void **state)
{
    (void)state;
    enum { T = 5, B = 3 };
    text_corpus *c = counting_corpus(100, 77); /* 23 validation tokens: 100 - 77 */
    assert_int_equal(corpus_eval_windows(c, CORPUS_VAL, T), 5); /* 22 targets: 4 full windows and 2 */
    corpus_iter it;
    assert_int_equal(corpus_iter_begin(&it, c, CORPUS_VAL, T), RW_OK);
    int32_t in[B * T], tg[B * T];
    int targeted[100] = {0}, windows = 0, got;
    while ((got = corpus_iter_next(&it, B, in, tg)) > 0) {
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                int32_t x = in[b * T + t], y = tg[b * T + t];
                if (y < 0) { /* padding: after the windows, or at the end of the last */
                    assert_int_equal(x, 0);
                    assert_true(b >= got || windows + b == 4);
                    continue;
                }
                assert_true(b < got);
                assert_int_equal(y, x + 1);
                assert_int_equal(x, 77 + (windows + b) * T + t);
                targeted[y]++;
            }
        windows += got;
    }
    assert_int_equal(windows, 5);
    for (int i = 0; i < 100; i++) assert_int_equal(targeted[i], i >= 78 ? 1 : 0);
    assert_int_equal(corpus_iter_next(&it, B, in, tg), 0);

    /* The training split the same way: 77 tokens, 76 targets, context 4. */
    assert_int_equal(corpus_eval_windows(c, CORPUS_TRAIN, 4), 19);
    assert_int_equal(corpus_iter_begin(&it, c, CORPUS_TRAIN, 4), RW_OK);
    int32_t in1[4], tg1[4];
    size_t count = 0;
    while (corpus_iter_next(&it, 1, in1, tg1) == 1) {
        assert_int_equal(in1[0], (int32_t)(count * 4));
        count++;
    }
    assert_int_equal(count, 19);
    assert_int_equal(corpus_iter_begin(&it, c, CORPUS_TRAIN, 0), RW_ERR_INVALID_ARGUMENT);
    corpus_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_tokenizer),
        cmocka_unit_test(test_unicode_classes),
        cmocka_unit_test(test_pretokenize),
        cmocka_unit_test(test_bpe_reference_cases),
        cmocka_unit_test(test_bpe_random_round_trip),
        cmocka_unit_test(test_bpe_cache_and_long_words),
        cmocka_unit_test(test_bpe_long_words),
        cmocka_unit_test(test_bpe_merge_order),
        cmocka_unit_test(test_small_vocab_loads),
        cmocka_unit_test(test_hostile_vocab),
        cmocka_unit_test(test_hostile_merges),
        cmocka_unit_test(test_bpe_files),
        cmocka_unit_test(test_gpt2_config),
        cmocka_unit_test(test_corpus_split),
        cmocka_unit_test(test_corpus_split_errors),
        cmocka_unit_test(test_corpus_sample),
        cmocka_unit_test(test_corpus_eval_windows),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
