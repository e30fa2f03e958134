#!/usr/bin/python3
"""A random GPT-2 checkpoint in Hugging Face's layout and reference logits
from a PyTorch reimplementation of GPT-2's forward pass, for
tests/test_gpt2_import.c.

The checkpoint (2 blocks, n_embd 64, 4 heads, 64 positions, GPT-2's
vocabulary size 50257) is 13 MB at F32, too large to commit. Its weights
therefore come from a counter-based generator simple enough to write twice,
here with numpy and in the C test, which rebuilds the very same
model.safetensors without PyTorch:

    z = splitmix64(fnv1a64(name) + (i + 1) * 0x9E3779B97F4A7C15)   (mod 2^64)
    k = (z >> 40) - 2^23                     an integer in [-2^23, 2^23)
    value(name, i) = float32(k * 2^(e - 23)) + offset      (float32 sum)

for element i (row-major, in the checkpoint's own layout: Conv1D weights
[in][out]) of the tensor `name`, with amplitude 2^e and offset 0 (1 for
LayerNorm weights) from TENSORS below. splitmix64 is Steele, Lea and
Flood's finaliser ("Fast Splittable Pseudorandom Number Generators", 2014);
fnv1a64 the Fowler-Noll-Vo hash of the name's bytes. k * 2^(e-23) is exact
in float32, so both sides get the same bits; reference.json records each
tensor's FNV-1a hash of its F32 bytes, which the test checks.

The forward pass is GPT-2's as transformers' GPT2LMHeadModel computes it,
written here from the paper and the checkpoint layout (no transformers
package): token plus position embeddings; per block x += c_proj(attn(ln_1
x)), x += mlp.c_proj(gelu_new(mlp.c_fc(ln_2 x))) with Conv1D maps y = x W
+ b; causal attention with scores q k^T / sqrt(head size), q, k, v the
thirds of c_attn's output, heads consecutive columns; ln_f; logits = x
wte^T (the tied head). It runs in float64 on the float32 weights.

Token ids come from tools/gpt2_bpe_reference.py over the test vocabulary
(tests/data/text/bpe-50257/merges.txt.gz, the vocabulary rebuilt from it),
so the test also holds rewire's tokenizer to them.

Commands (from the repository's root):
  testdata            writes tests/data/gpt2/reference.json (config,
                      generator table with hashes, the strings and their
                      ids, a greedy continuation) and
                      tests/data/gpt2/logits.safetensors (for every token
                      of every string: the logits at every 397th column
                      and the last, and over the whole vocabulary the
                      arg max and max, log-sum-exp and max |logit|)
  checkpoint --out D  writes D/config.json, D/model.safetensors (F32),
                      D/vocab.json and D/merges.txt, to try by hand
Rerun with: /usr/bin/python3 tools/make_gpt2_checkpoint.py testdata
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_bpe_reference as bpe_ref  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "gpt2")
MERGES_GZ = os.path.join(ROOT, "tests", "data", "text", "bpe-50257", "merges.txt.gz")

CONFIG = {
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "vocab_size": 50257,
    "n_positions": 64,
    "n_ctx": 64,
    "n_embd": 64,
    "n_layer": 2,
    "n_head": 4,
    "activation_function": "gelu_new",
    "layer_norm_epsilon": 1e-05,
}

# Per tensor (after "h.N." for a block's): log2 of the amplitude, offset.
# Large enough that attention is far from uniform and GELU far from linear.
GLOBAL_TENSORS = [("wte.weight", -3, 0.0), ("wpe.weight", -3, 0.0),
                  ("ln_f.weight", -2, 1.0), ("ln_f.bias", -3, 0.0)]
BLOCK_TENSORS = [("ln_1.weight", -2, 1.0), ("ln_1.bias", -3, 0.0),
                 ("attn.c_attn.weight", -2, 0.0), ("attn.c_attn.bias", -3, 0.0),
                 ("attn.c_proj.weight", -3, 0.0), ("attn.c_proj.bias", -4, 0.0),
                 ("ln_2.weight", -2, 1.0), ("ln_2.bias", -3, 0.0),
                 ("mlp.c_fc.weight", -2, 0.0), ("mlp.c_fc.bias", -3, 0.0),
                 ("mlp.c_proj.weight", -4, 0.0), ("mlp.c_proj.bias", -4, 0.0)]

# The strings whose tokens are run through the model (bytes; the last one
# longer than the context: its first 64 tokens are used).
CASES = [
    ("hello", b"Hello, world! This is rewire importing a GPT-2 checkpoint."),
    ("shakespeare", b"First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak."),
    ("unicode", "Caf\u00e9 d\u00e9j\u00e0 vu \u2014 na\u00efve fa\u00e7ade, \u65e5\u672c\u8a9e "
                "\U0001f980!".encode()),
    ("code_bytes", b"def f(x):\n    return x ** 2  # \xff\xfe not UTF-8\n"),
    ("long", (b"The committee met on a grey Tuesday in March to decide, once and for all, "
              b"whether the old bridge over the river should be repaired or replaced. Nobody "
              b"could remember who had built it; the town records said 1887, the stone above "
              b"the arch said 1889, and Mrs. Pemberton, who was ninety-four and had opinions "
              b"about everything, insisted it was older than both.")),
]
PROMPT_CASE, PROMPT_TOKENS, GREEDY_TOKENS = "hello", 6, 8
COLUMN_STRIDE = 397
M64 = (1 << 64) - 1


# ---- the generator ---------------------------------------------------------

def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def splitmix64(z):
    """Over a uint64 numpy array (arithmetic wraps mod 2^64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def generate(name, shape, log2_amp, offset):
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(fnv1a64(name.encode())) + i * np.uint64(0x9E3779B97F4A7C15)
        z = splitmix64(z)
    k = (z >> np.uint64(40)).astype(np.int64) - (1 << 23)
    v = k.astype(np.float32) * np.float32(2.0 ** (log2_amp - 23))
    v = v + np.float32(offset)
    return v.astype(np.float32).reshape(shape)


def tensor_table(c):
    """[(name, shape, log2_amp, offset)] in checkpoint order."""
    C, V, P = c["n_embd"], c["vocab_size"], c["n_positions"]
    shapes = {"wte.weight": [V, C], "wpe.weight": [P, C], "ln_f.weight": [C], "ln_f.bias": [C],
              "ln_1.weight": [C], "ln_1.bias": [C], "ln_2.weight": [C], "ln_2.bias": [C],
              "attn.c_attn.weight": [C, 3 * C], "attn.c_attn.bias": [3 * C],
              "attn.c_proj.weight": [C, C], "attn.c_proj.bias": [C],
              "mlp.c_fc.weight": [C, 4 * C], "mlp.c_fc.bias": [4 * C],
              "mlp.c_proj.weight": [4 * C, C], "mlp.c_proj.bias": [C]}
    table = [(n, shapes[n], e, o) for n, e, o in GLOBAL_TENSORS]
    for b in range(c["n_layer"]):
        table += [("h.%d.%s" % (b, n), shapes[n], e, o) for n, e, o in BLOCK_TENSORS]
    return table


def make_weights(c):
    return {name: generate(name, shape, e, o) for name, shape, e, o in tensor_table(c)}


# ---- GPT-2's forward pass ----------------------------------------------------

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def conv1d(x, w, b):
    """transformers' Conv1D: w is [in][out]."""
    return x @ w + b


def forward(W, c, ids):
    """Logits [T][vocab] of one sequence, in the weights' dtype."""
    T, C, H = len(ids), c["n_embd"], c["n_head"]
    hd, eps = C // H, c["layer_norm_epsilon"]
    x = W["wte.weight"][torch.tensor(ids)] + W["wpe.weight"][:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for b in range(c["n_layer"]):
        p = lambda n: W["h.%d.%s" % (b, n)]  # noqa: E731
        h = layer_norm(x, p("ln_1.weight"), p("ln_1.bias"), eps)
        qkv = conv1d(h, p("attn.c_attn.weight"), p("attn.c_attn.bias"))
        q, k, v = (t.reshape(T, H, hd).transpose(0, 1) for t in qkv.split(C, dim=-1))
        s = q @ k.transpose(-1, -2) / math.sqrt(hd)
        s = s.masked_fill(~causal, float("-inf"))
        y = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(T, C)
        x = x + conv1d(y, p("attn.c_proj.weight"), p("attn.c_proj.bias"))
        h = layer_norm(x, p("ln_2.weight"), p("ln_2.bias"), eps)
        h = gelu_new(conv1d(h, p("mlp.c_fc.weight"), p("mlp.c_fc.bias")))
        x = x + conv1d(h, p("mlp.c_proj.weight"), p("mlp.c_proj.bias"))
    x = layer_norm(x, W["ln_f.weight"], W["ln_f.bias"], eps)
    return x @ W["wte.weight"].T


def greedy(W, c, prompt, n):
    ids, margins = list(prompt), []
    for _ in range(n):
        logits = forward(W, c, ids)[-1]
        top = torch.topk(logits, 2).values
        margins.append(float((top[0] - top[1]) / logits.abs().max()))
        ids.append(int(logits.argmax()))
    return ids[len(prompt):], min(margins)


# ---- files ---------------------------------------------------------------------

ST_DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int32"): "I32"}


def write_safetensors(path, tensors, metadata=None):
    """A safetensors file: 8-byte header length, JSON header padded with
    spaces to 8 bytes, the little-endian tensor bytes in order."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": ST_DTYPES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def load_bpe():
    with gzip.open(MERGES_GZ, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = [tuple(bpe_ref.unspell(s) for s in line.split(" "))
              for k, line in enumerate(lines) if line and not (k == 0 and line.startswith("#version"))]
    return bpe_ref.Bpe(bpe_ref.vocab_from_merges(merges), merges), merges


def testdata():
    c = CONFIG
    bpe, _ = load_bpe()
    W32 = make_weights(c)
    W = {n: torch.from_numpy(a).double() for n, a in W32.items()}
    Wf = {n: torch.from_numpy(a) for n, a in W32.items()}
    cases, rows, f32_err = [], [], 0.0
    for name, data in CASES:
        ids = bpe.encode(data)
        assert bpe.decode(ids) == data, name
        used = ids[:c["n_positions"]]
        with torch.no_grad():
            logits = forward(W, c, used)
            ref32 = forward(Wf, c, used).double()
        f32_err = max(f32_err, float(((ref32 - logits).abs().max(-1).values /
                                      logits.abs().max(-1).values).max()))
        rows.append(logits)
        cases.append({"name": name, "hex": data.hex(), "ids": ids, "logit_tokens": len(used)})
    logits = torch.cat(rows)
    columns = sorted(set(range(0, c["vocab_size"], COLUMN_STRIDE)) | {c["vocab_size"] - 1})
    prompt = cases[[n for n, _ in CASES].index(PROMPT_CASE)]["ids"][:PROMPT_TOKENS]
    with torch.no_grad():
        cont, margin = greedy(W, c, prompt, GREEDY_TOKENS)
    if margin < 1e-3:
        raise SystemExit("testdata: a greedy step is a near tie (margin %.2g); change the prompt" % margin)

    os.makedirs(OUT, exist_ok=True)
    table = [{"name": n, "shape": s, "log2_amplitude": e, "offset": o,
              "fnv1a64": "%016x" % fnv1a64(W32[n].astype("<f4").tobytes())}
             for n, s, e, o in tensor_table(c)]
    ref = {"config": c, "tensors": table, "cases": cases,
           "generate": {"prompt": prompt, "greedy": cont, "min_margin": margin}}
    with open(os.path.join(OUT, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    write_safetensors(os.path.join(OUT, "logits.safetensors"), {
        "columns": np.array(columns, dtype=np.int32),
        "logits": logits[:, columns].float().numpy(),
        "argmax": logits.argmax(-1).int().numpy(),
        "max": logits.max(-1).values.float().numpy(),
        "logsumexp": torch.logsumexp(logits, -1).numpy(),
        "max_abs": logits.abs().max(-1).values.numpy(),
    }, {"note": "tools/make_gpt2_checkpoint.py: float64 GPT-2 forward on float32 weights"})
    print("testdata: %d strings, %d logit rows x %d columns, greedy %s (margin %.3g); "
          "float32 torch vs float64: %.2e of max |logit|"
          % (len(cases), logits.shape[0], len(columns), cont, margin, f32_err))


def checkpoint(out):
    c = CONFIG
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), make_weights(c), {"format": "pt"})
    bpe, merges = load_bpe()
    bpe_ref.write_bpe(out, bpe.vocab, merges)
    print("checkpoint: %s" % out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("testdata")
    k = sub.add_parser("checkpoint")
    k.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.cmd == "testdata":
        testdata()
    else:
        checkpoint(args.out)


if __name__ == "__main__":
    main()
