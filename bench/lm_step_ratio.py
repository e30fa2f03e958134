#!/usr/bin/env python3
"""GPT training speed of one or more rewire binaries, interleaved in one run.

Each round runs, for every binary in turn (the order of the binaries flips
every round), `rewire bench lm` once per configuration:

  wide       4 layers, 8 heads, dim 512, dense path and 90% sparse
  small      4 layers, 4 heads, dim 128, dense path (the iso-FLOP yardstick)
  iso256     dim 256, 75% sparse; iso384: dim 384, 88.9% sparse

and reports per binary the per-round ratios (median and range) that issue
17 asks for: 90% sparse / dense tokens/s at dim 512, and the iso-FLOP step
time against dense dim 128 (dense tokens/s over the sparse model's); and
for every later binary its tokens/s over the first one's, per
configuration. The machine is shared: only ratios measured in the same
round mean anything.

    bench/lm_step_ratio.py --rounds 5 /tmp/rewire-before/build/rewire build/rewire

Standard library only.
"""
import argparse
import json
import statistics
import subprocess
import sys

CONFIGS = {
    "wide_dense": (["--layers", "4", "--heads", "8", "--dim", "512"], "0", 8),
    "wide_sparse": (["--layers", "4", "--heads", "8", "--dim", "512"], "0.9", 8),
    "small_dense": (["--layers", "4", "--heads", "4", "--dim", "128"], "0", 30),
    "iso256": (["--layers", "4", "--heads", "4", "--dim", "256"], "0.75", 20),
    "iso384": (["--layers", "4", "--heads", "4", "--dim", "384"], "0.889", 16),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binaries", nargs="+", help="rewire executables; the first is the baseline")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="bench lm --repeats (median inside)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="", help="comma-separated subset of " + ",".join(CONFIGS))
    p.add_argument("--raw", default="", help="append every JSON row to this file")
    return p.parse_args()


def tokens_per_second(a, binary, name):
    flags, sparsity, steps = CONFIGS[name]
    cmd = [binary, "bench", "lm", *flags, "--context", "64", "--batch", "12", "--sparsities",
           sparsity, "--steps", str(steps), "--repeats", str(a.repeats), "--gen-tokens", "1",
           "--threads", str(a.threads), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if row["bench"] == "lm_train":
                return row["tokens_per_second"], row, cmd
    raise SystemExit(f"lm_step_ratio.py: no lm_train row from {' '.join(cmd)}")


def summary(values):
    med = statistics.median(values)
    return f"{med:.3f} ({min(values):.3f}-{max(values):.3f})"


def main():
    a = parse_args()
    names = [n for n in CONFIGS if not a.only or n in a.only.split(",")]
    got = [[] for _ in a.binaries]  # got[binary][round][name]
    for k in range(a.rounds):
        order = list(range(len(a.binaries)))
        if k % 2:
            order.reverse()
        for i in order:
            res = {}
            for name in names:
                tps, row, cmd = tokens_per_second(a, a.binaries[i], name)
                res[name] = tps
                if a.raw:
                    with open(a.raw, "a") as f:
                        f.write(json.dumps(dict(row, round=k, binary=a.binaries[i],
                                                config=name)) + "\n")
            got[i].append(res)
            print(f"round {k} {a.binaries[i]}: " +
                  ", ".join(f"{n} {res[n]:.0f}" for n in names), file=sys.stderr, flush=True)
    print(f"{a.rounds} rounds, {a.threads} threads, bench lm --repeats {a.repeats}; "
          "per-round ratios, median (min-max)")
    for i, b in enumerate(a.binaries):
        rounds = got[i]
        print(f"\n{b}")
        for n in names:
            print(f"  {n:12s} tokens/s median {statistics.median(r[n] for r in rounds):9.0f}")
        if "wide_sparse" in names and "wide_dense" in names:
            print("  dim 512: 90% / dense tokens/s  " +
                  summary([r["wide_sparse"] / r["wide_dense"] for r in rounds]))
        for iso in ("iso256", "iso384"):
            if iso in names and "small_dense" in names:
                print(f"  {iso}: step time / dense dim 128  " +
                      summary([r["small_dense"] / r[iso] for r in rounds]))
        if i > 0:
            for n in names:
                print(f"  {n:12s} tokens/s / first binary's  " +
                      summary([r[n] / r0[n] for r, r0 in zip(rounds, got[0])]))


if __name__ == "__main__":
    main()
