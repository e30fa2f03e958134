#!/usr/bin/env python3
"""Batch-1 generation speed of one or more rewire binaries, interleaved.

Each round runs, for every binary in turn (the order flips every round),
`rewire bench lm --models DENSE,SPARSE` (greedy, KV cache, batch 1: both
models generate in turn, --repeats times, and the medians are kept), and
reports per binary the per-round ratio issue 17 asks for, sparse over
dense tokens/s, and for every later binary its tokens/s over the first
one's, per model: median (range) over the rounds. The machine is shared:
only ratios measured in the same round mean anything.

Two models of the same shape, e.g. dim 512, 4 layers, 4 heads, dense and
90% sparse (speed does not depend on what the weights say, so a step of
training is enough):

    for s in 0 0.9; do rewire lm train --text FILE --dim 512 --layers 4 --heads 4 \\
        --context 64 --steps 1 --sparsity $s --out g$s.safetensors; done
    bench/lm_gen_ratio.py --rounds 5 --threads 2 --dense g0.safetensors \\
        --sparse g0.9.safetensors /tmp/rewire-before/build/rewire build/rewire

Standard library only.
"""
import argparse
import json
import statistics
import subprocess
import sys


def summary(xs):
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binaries", nargs="+", help="rewire executables; the first is the baseline")
    p.add_argument("--dense", required=True, help="the dense model file")
    p.add_argument("--sparse", required=True, help="the sparse model file of the same shape")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="generations per model per run")
    p.add_argument("--tokens", type=int, default=63, help="tokens per generation")
    a = p.parse_args()
    if a.rounds < 1 or a.repeats < 1 or a.tokens < 1 or a.threads < 1:
        sys.exit("lm_gen_ratio.py: --rounds, --repeats, --tokens and --threads must be >= 1")
    runs = {b: [] for b in a.binaries}  # per binary: (dense, sparse) tokens/s per round
    for r in range(a.rounds):
        order = a.binaries if r % 2 == 0 else list(reversed(a.binaries))
        for b in order:
            cmd = [b, "bench", "lm", "--models", f"{a.dense},{a.sparse}", "--threads",
                   str(a.threads), "--repeats", str(a.repeats), "--gen-tokens", str(a.tokens),
                   "--eval-batches", "1", "--json"]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"lm_gen_ratio.py: {' '.join(cmd)} failed:\n{out.stderr}")
            rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
            d, s = (row["generate_tokens_per_second"] for row in rows[:2])
            runs[b].append((d, s))
            print(f"round {r + 1} {b}: dense {d:.1f} tokens/s, sparse {s:.1f}, "
                  f"sparse/dense {s / d:.3f}", flush=True)
    print(f"\n{a.rounds} rounds, {a.threads} threads, {a.tokens} tokens x {a.repeats} per run")
    for b in a.binaries:
        ds, ss = [x[0] for x in runs[b]], [x[1] for x in runs[b]]
        print(f"{b}: sparse/dense {summary([s / d for d, s in runs[b]])}; "
              f"dense tokens/s {summary(ds)}, sparse {summary(ss)}")
    first = a.binaries[0]
    for b in a.binaries[1:]:
        pairs = list(zip(runs[first], runs[b]))
        print(f"{b} over {first}: dense {summary([y[0] / x[0] for x, y in pairs])}, "
              f"sparse {summary([y[1] / x[1] for x, y in pairs])}")


if __name__ == "__main__":
    main()
