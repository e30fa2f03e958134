#!/usr/bin/env python3
"""A plain-Python GPT-2 byte-level BPE tokenizer, the reference that
src/text's C tokenizer is held to, and the maker of its test data.

Written from the published algorithm (Radford et al. 2019, "Language Models
are Unsupervised Multitask Learners", section 2.2; Sennrich et al. 2016,
"Neural Machine Translation of Rare Words with Subword Units"):

  1. Pre-tokenisation: the text is cut into words by the pattern
         's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
     matched with the `regex` module when it is installed (Debian:
     python3-regex), else with the hand-written port below (categories from
     unicodedata). Bytes are decoded with errors="surrogateescape", so a
     byte outside well-formed UTF-8 becomes a lone surrogate: a character
     that is neither a letter, a number nor white space.
  2. Each word's bytes become single-byte symbols; the adjacent pair with
     the lowest merge rank is merged everywhere in the word (left to right,
     no overlap), again and again until no pair has a rank.
  3. vocab.json writes each token's bytes in GPT-2's byte-to-unicode
     alphabet (printable Latin-1 bytes as themselves, the other 68 bytes as
     U+0100 to U+0143 in order).

Commands (run from the repository's root):

  train   learns merges on text files with a simple BPE trainer and writes
          vocab.json and merges.txt: the 256 byte tokens (in GPT-2's order),
          one token per merge, and <|endoftext|> last, 50257 tokens like
          GPT-2.
  cases   encodes the test strings (and seeded random ones) with a BPE
          folder and writes their bytes and ids as JSON.
  testdata  both, for the tests: trains on tinyshakespeare plus the text
          files given, writes tests/data/text/bpe-50257/merges.txt.gz (the
          C test rebuilds vocab.json from it: the id of a merge's token is
          256 + its line) and tests/data/text/bpe-cases.json.
  encode  prints the ids of a file's text (for comparisons by hand).
"""
import argparse
import collections
import gzip
import heapq
import json
import os
import random
import sys
import unicodedata

try:
    import regex
except ImportError:  # the port below does the same
    regex = None

PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = "<|endoftext|>"

# The White_Space property (what \s matches in `regex`), unchanged since
# Unicode 6.3; unicodedata does not have it.
WHITE_SPACE = frozenset([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] +
                        list(range(0x2000, 0x200B)) + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000])


# ---- the byte-to-unicode alphabet ----------------------------------------

def byte_order():
    """The 256 bytes in GPT-2's order: those printable in Latin-1 first."""
    printable = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or b >= 0xAE]
    return printable + [b for b in range(256) if b not in printable]


def byte_to_char():
    """byte -> the character that spells it in vocab.json and merges.txt."""
    table, spare = {}, 0
    for b in range(256):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or b >= 0xAE:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + spare)
            spare += 1
    return table


BYTE_CHAR = byte_to_char()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


def spell(token: bytes) -> str:
    return "".join(BYTE_CHAR[b] for b in token)


def unspell(text: str) -> bytes:
    return bytes(CHAR_BYTE[c] for c in text)


# ---- pre-tokenisation ----------------------------------------------------

def char_class(ch):
    """'L', 'N', 'S' (white space) or 'O' (anything else)."""
    if ord(ch) in WHITE_SPACE:
        return "S"
    major = unicodedata.category(ch)[0]
    return major if major in "LN" else "O"


def pretokenize_port(text):
    """The pattern, alternative by alternative, without a regex engine."""
    words, i, n = [], 0, len(text)
    while i < n:
        if text[i] == "'":
            if text[i + 1:i + 2] in ("s", "t", "m", "d"):
                words.append(text[i:i + 2])
                i += 2
                continue
            if text[i + 1:i + 3] in ("re", "ve", "ll"):
                words.append(text[i:i + 3])
                i += 3
                continue
        start, cls = i, char_class(text[i])
        if text[i] == " " and i + 1 < n and char_class(text[i + 1]) != "S":
            start, cls = i + 1, char_class(text[i + 1])
        if cls != "S":  # " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+"
            end = start + 1
            while end < n and char_class(text[end]) == cls:
                end += 1
        else:  # "\s+(?!\S)", then "\s+"
            end = i + 1
            while end < n and char_class(text[end]) == "S":
                end += 1
            if end < n and end - 1 > i:
                end -= 1
        words.append(text[i:end])
        i = end
    return words


_compiled = regex.compile(PATTERN) if regex else None


def pretokenize(text):
    return _compiled.findall(text) if _compiled else pretokenize_port(text)


def words_of(data: bytes):
    """The pre-tokens of a byte string, as byte strings."""
    text = data.decode("utf-8", "surrogateescape")
    return [w.encode("utf-8", "surrogateescape") for w in pretokenize(text)]


# ---- the tokenizer -------------------------------------------------------

class Bpe:
    def __init__(self, vocab, merges):
        """vocab: bytes -> id; merges: [(bytes, bytes)] in priority order."""
        self.vocab = vocab
        self.token = {i: t for t, i in vocab.items()}
        self.rank = {}
        for r, pair in enumerate(merges):
            self.rank.setdefault(pair, r)
        self.cache = {}

    @classmethod
    def load(cls, folder):
        with open(os.path.join(folder, "vocab.json"), encoding="utf-8") as f:
            vocab = {unspell(s): i for s, i in json.load(f).items()}
        merges = []
        with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as f:
            for k, line in enumerate(f.read().split("\n")):
                if (k == 0 and line.startswith("#version")) or not line:
                    continue
                a, b = line.split(" ")
                merges.append((unspell(a), unspell(b)))
        return cls(vocab, merges)

    def merge_word(self, word: bytes):
        if word in self.cache:
            return self.cache[word]
        parts = [bytes([b]) for b in word]
        while len(parts) > 1:
            best = min(range(len(parts) - 1),
                       key=lambda k: self.rank.get((parts[k], parts[k + 1]), float("inf")))
            pair = (parts[best], parts[best + 1])
            if pair not in self.rank:
                break
            merged, k = [], 0
            while k < len(parts):
                if k + 1 < len(parts) and (parts[k], parts[k + 1]) == pair:
                    merged.append(pair[0] + pair[1])
                    k += 2
                else:
                    merged.append(parts[k])
                    k += 1
            parts = merged
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, data: bytes):
        ids = []
        for w in words_of(data):
            ids.extend(self.merge_word(w))
        return ids

    def decode(self, ids):
        return b"".join(self.token[i] for i in ids)


# ---- a simple BPE trainer ------------------------------------------------

def train(texts, vocab_size, log=sys.stderr):
    """Learns merges on the pre-tokens of `texts` (byte strings) until the
    vocabulary (256 bytes, the merges' tokens, <|endoftext|>) has
    vocab_size tokens. Each step merges the most frequent adjacent pair;
    ties go to the pair whose (left, right) bytes sort first."""
    counts = collections.Counter()
    for data in texts:
        counts.update(words_of(data))
    tokens = [bytes([b]) for b in byte_order()]
    index = {t: i for i, t in enumerate(tokens)}
    words = [[index[bytes([b])] for b in w] for w in counts]
    freq = list(counts.values())
    pair_count = collections.Counter()
    where = collections.defaultdict(set)
    for k, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[a, b] += freq[k]
            where[a, b].add(k)
    heap = [(-c, tokens[a], tokens[b], a, b) for (a, b), c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    while len(tokens) < vocab_size - 1 and heap:
        negc, _, _, a, b = heapq.heappop(heap)
        if pair_count.get((a, b), 0) != -negc or negc == 0:
            continue  # stale
        merges.append((tokens[a], tokens[b]))
        joined = tokens[a] + tokens[b]
        if joined not in index:
            index[joined] = len(tokens)
            tokens.append(joined)
        to = index[joined]
        changed = set()
        for k in list(where[a, b]):
            w, f = words[k], freq[k]
            for p in zip(w, w[1:]):
                pair_count[p] -= f
                changed.add(p)
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(to)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[k] = out
            for p in zip(out, out[1:]):
                pair_count[p] += f
                where[p].add(k)
                changed.add(p)
        for p in changed:
            c = pair_count[p]
            if c > 0:
                heapq.heappush(heap, (-c, tokens[p[0]], tokens[p[1]], p[0], p[1]))
            else:
                del pair_count[p]
                where.pop(p, None)
        if len(merges) % 5000 == 0:
            print("train: %d merges, %d tokens" % (len(merges), len(tokens)), file=log)
    if len(tokens) < vocab_size - 1:
        raise SystemExit("train: the texts ran out of pairs at %d tokens, %d wanted"
                         % (len(tokens), vocab_size - 1))
    vocab = {t: i for i, t in enumerate(tokens)}
    vocab[EOT.encode()] = len(tokens)
    return vocab, merges


def write_bpe(folder, vocab, merges):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({spell(t): i for t, i in sorted(vocab.items(), key=lambda x: x[1])}, f,
                  ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (spell(a), spell(b)))


def vocab_from_merges(merges):
    """The vocabulary `train` gives for these merges: the C test rebuilds
    vocab.json this way from the committed merges.txt.gz."""
    tokens = [bytes([b]) for b in byte_order()]
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            seen.add(a + b)
            tokens.append(a + b)
    vocab = {t: i for i, t in enumerate(tokens)}
    vocab[EOT.encode()] = len(tokens)
    return vocab


# ---- test strings ----------------------------------------------------------

PARAGRAPH = (
    "The committee met on a grey Tuesday in March to decide, once and for all, whether the "
    "old bridge over the river should be repaired or replaced. Nobody could remember who had "
    "built it; the town records said 1887, the stone above the arch said 1889, and Mrs. "
    "Pemberton, who was ninety-four and had opinions about everything, insisted it was older "
    "than both. \"My grandmother crossed it as a girl,\" she said, \"and she was born in 1861.\" "
    "The engineer's report ran to 212 pages. It found cracks in 14 of the 23 piers, a 3.5% "
    "lean on the eastern span, and water damage that would cost between $1.2M and $1.9M to "
    "fix -- roughly what a new bridge would cost, give or take. The mayor wanted to know why "
    "they'd waited so long; the engineer replied that they hadn't been asked. After four hours "
    "of argument (and two pots of coffee), they voted 5-4 to repair it. Mrs. Pemberton said "
    "she'd known all along.\n\n    Minutes recorded by J. Alvarez, clerk.\n"
)

CASES = [
    ("empty", b""),
    ("ascii", b"Hello, world! This is a test of the tokenizer."),
    ("contractions", b"I'm sure you've seen it: they'll say it's John's, and we'd've known. "
                     b"DON'T 'S 'x 'll'd ''re"),
    ("whitespace_runs", b"a  b   c\t\td\n\n\ne \r\n f   \n  g    \n\n   "),
    ("whitespace_only", b"    \t \n"),
    ("unicode_whitespace", "x\u00a0y\u3000\u3000z\u2028w \u0085 \u2003end \u200a".encode()),
    ("numbers", "1234567890 3.14159 -42 1e10 007 \u0663\u0664 \u216b \u00bd 2\u00b3".encode()),
    ("punctuation", b"!!! ??? ... --- ((([[[{{{ ]]])))}}} @#$%^&*_+=~`|\\/<> ,;: \"'\""),
    ("accented_latin", "Caf\u00e9 d\u00e9j\u00e0 vu, na\u00efve fa\u00e7ade, \u00c6r\u00f8sk\u00f8bing, "
                       "S\u00e3o Paulo, \u00c5ngstr\u00f6m, \u0141\u00f3d\u017a, stra\u00dfe".encode()),
    ("cjk", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002\u4e2d\u6587\u6587"
            "\u672c\uff0c\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8".encode()),
    ("emoji", "I \u2764\ufe0f \U0001f980 and \U0001f468\u200d\U0001f469\u200d\U0001f467 family "
              "\U0001f1eb\U0001f1f7 \U0001f44d\U0001f3fd!".encode()),
    ("invalid_utf8", b"abc\xff\xfe def \xc3( \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 \xc0\xaf "
                     b"\xf4\x90\x80\x80 end\x80 \xe0\x80\x80x"),
    ("control_bytes", b"\x00\x01\x1c\x1f\x7f tab\tend\x1b[0m"),
    ("endoftext", b"first<|endoftext|>second <|endoftext|>"),
    ("code", b"def f(x):\n    return x ** 2  # square\n\nprint(f(3))\n"),
    ("repeated_letters", b"a" * 41 + b" " + b"ab" * 20),
    ("long_space_run", b" " * 100 + b"x" + b"\n" * 30),
    ("long_paragraph", PARAGRAPH.encode()),
]


def random_cases(seed=1, count=24):
    """Seeded random strings: raw bytes, and text drawn from every class
    (code points of Unicode 14 on which `regex` and unicodedata agree)."""
    rnd = random.Random(seed)
    pools = {
        "ascii": [chr(c) for c in range(0x20, 0x7F)] + ["\n", "\t"],
        "letters": [chr(c) for c in list(range(0xC0, 0x250)) + list(range(0x3040, 0x30FF)) +
                    list(range(0x4E00, 0x4F00)) + list(range(0x0400, 0x0460))],
        "numbers": [chr(c) for c in list(range(0x30, 0x3A)) + [0xB2, 0xBD, 0x663, 0x2160, 0xFF11]],
        "spaces": [chr(c) for c in sorted(WHITE_SPACE)],
        "symbols": [chr(c) for c in list(range(0x2190, 0x21A0)) + list(range(0x1F600, 0x1F610)) +
                    [0x27, 0x2D, 0x2E, 0xFE0F, 0x200D, 0x301]],
    }
    out = []
    for k in range(count):
        if k % 3 == 0:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
        else:
            chars = []
            for _ in range(rnd.randrange(1, 120)):
                pool = pools[rnd.choice(sorted(pools))]
                chars.append(rnd.choice(pool))
            data = "".join(chars).encode("utf-8")
            if k % 3 == 2:  # splice in a few stray bytes
                data = bytearray(data)
                for _ in range(3):
                    data.insert(rnd.randrange(len(data) + 1), rnd.choice([0x80, 0xBF, 0xC3, 0xE2, 0xF0, 0xFF]))
                data = bytes(data)
        out.append(("random_%02d" % k, data))
    return out


def check_port(cases):
    """The hand-written pre-tokeniser must agree with `regex` on the cases."""
    if not regex:
        return
    for name, data in cases:
        text = data.decode("utf-8", "surrogateescape")
        if pretokenize_port(text) != _compiled.findall(text):
            raise SystemExit("cases: the pre-tokeniser port disagrees with regex on %s" % name)


def write_cases(bpe, path):
    cases = CASES + random_cases()
    check_port(cases)
    rows = []
    for name, data in cases:
        ids = bpe.encode(data)
        if bpe.decode(ids) != data:
            raise SystemExit("cases: %s does not round-trip" % name)
        rows.append({"name": name, "hex": data.hex(), "ids": ids})
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(r) for r in rows))
        f.write("\n]\n")
    print("cases: %d strings, %d tokens -> %s" % (len(rows), sum(len(r["ids"]) for r in rows), path))


# ---- commands ------------------------------------------------------------

def read_texts(paths):
    out = []
    for p in paths:
        with open(p, "rb") as f:
            out.append(f.read())
    return out


def multilingual_text():
    """A few lines of non-English text (and their repeats), so that some
    merges join bytes of multi-byte characters."""
    lines = [
        "Le caf\u00e9 est d\u00e9j\u00e0 pr\u00eat, dit la na\u00efve h\u00e9ro\u00efne fran\u00e7aise.",
        "Die Stra\u00dfe f\u00fchrt \u00fcber die Br\u00fccke nach S\u00fcden; \u00e4hnlich gr\u00f6\u00dfer.",
        "S\u00e3o Paulo e Bras\u00edlia s\u00e3o cidades do Brasil, n\u00e3o \u00e9?",
        "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3068\u4e2d\u6587\u7684\u53e5\u5b50\u3002\u6771\u4eac\u3068\u5317\u4eac\u3002",
        "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u042d\u0442\u043e \u0442\u0435\u043a\u0441\u0442 \u043d\u0430 \u0440\u0443\u0441\u0441\u043a\u043e\u043c.",
        "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u03ba\u03cc\u03c3\u03bc\u03b5, \u03b1\u03c5\u03c4\u03cc \u03b5\u03af\u03bd\u03b1\u03b9 \u03b5\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac.",
        "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uacfc \uc774\ubaa8\uc9c0 \U0001f600 \U0001f44d \u2764\ufe0f \u2014 \u201cquoted\u201d \u2018text\u2019 \u2026",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8") * 50


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", required=True)
    t.add_argument("--vocab-size", type=int, default=50257)
    t.add_argument("texts", nargs="+")
    c = sub.add_parser("cases")
    c.add_argument("--bpe", required=True)
    c.add_argument("--out", required=True)
    d = sub.add_parser("testdata")
    d.add_argument("--shakespeare", default="/work/shared/data/tinyshakespeare.txt")
    d.add_argument("--out-dir", default="tests/data/text")
    d.add_argument("texts", nargs="*", help="more training text (the default adds Python's own "
                   "library sources, for code and a larger vocabulary)")
    e = sub.add_parser("encode")
    e.add_argument("--bpe", required=True)
    e.add_argument("file")
    args = ap.parse_args()

    if args.cmd == "train":
        vocab, merges = train(read_texts(args.texts), args.vocab_size)
        write_bpe(args.out, vocab, merges)
    elif args.cmd == "cases":
        write_cases(Bpe.load(args.bpe), args.out)
    elif args.cmd == "encode":
        bpe = Bpe.load(args.bpe)
        with open(args.file, "rb") as f:
            print(" ".join(map(str, bpe.encode(f.read()))))
    elif args.cmd == "testdata":
        texts = read_texts([args.shakespeare] + default_extra_texts(args.texts))
        texts.append(multilingual_text())
        vocab, merges = train(texts, 50257)
        if vocab != vocab_from_merges(merges):
            raise SystemExit("testdata: the vocabulary does not follow from the merges")
        folder = os.path.join(args.out_dir, "bpe-50257")
        os.makedirs(folder, exist_ok=True)
        with gzip.GzipFile(os.path.join(folder, "merges.txt.gz"), "wb", mtime=0) as f:
            f.write(b"#version: 0.2\n")
            for a, b in merges:
                f.write(("%s %s\n" % (spell(a), spell(b))).encode("utf-8"))
        write_cases(Bpe(vocab, merges), os.path.join(args.out_dir, "bpe-cases.json"))


def default_extra_texts(given):
    """The extra training texts: those given, else the .py files directly
    in Python's library folder (sorted, so the choice is reproducible for
    one Python version)."""
    if given:
        return given
    lib = os.path.dirname(os.__file__)
    return sorted(os.path.join(lib, f) for f in os.listdir(lib) if f.endswith(".py"))


if __name__ == "__main__":
    main()
