#!/usr/bin/env python3
"""Issue 23's fixed costs, as a user sees them: `rewire train --epochs 1` at
95% sparsity and dense, timed whole (wall clock, as /usr/bin/time gives
it), beside the training time the run itself reports (train_seconds on
its closing line). Everything else (start, loading, evaluation, saving) is
the fixed cost. Rounds alternate sparse and dense so that a busy machine
slows both alike; the cache of inflated data (REWIRE_CACHE_DIR) is emptied
before the first round ("cold") and kept after ("warm").

    /usr/bin/python3 bench/fixed_costs.py --rewire build/rewire --rounds 5
    /usr/bin/python3 bench/fixed_costs.py --no-dense --rounds 8 --baseline OLD/rewire
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run(rewire, sparsity, threads, env):
    cmd = [rewire, "train", "--data", "fashion-mnist", "--epochs", "1", "--sparsity",
           str(sparsity), "--threads", str(threads), "--quiet"]
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - start
    train = float(re.search(r"train_seconds=([0-9.]+)", out).group(1))
    acc = float(re.search(r"test_accuracy=([0-9.]+)", out).group(1))
    return wall, train, acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rewire", default="build/rewire")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-dense", action="store_true",
                    help="skip the dense runs (only the fixed shares, faster on a busy machine)")
    ap.add_argument("--baseline", help="another rewire binary (an earlier build), "
                    "run at 95%% beside each round's runs; its fixed share is printed too")
    a = ap.parse_args()
    cache = tempfile.mkdtemp(prefix="rewire-cache-")
    env = dict(os.environ, REWIRE_CACHE_DIR=cache)
    # The baseline keeps a cache of its own: builds with another cache
    # format would otherwise rewrite each other's file on every run.
    base_cache = tempfile.mkdtemp(prefix="rewire-cache-base-")
    base_env = dict(os.environ, REWIRE_CACHE_DIR=base_cache)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = open("/proc/cpuinfo").read()
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "scalar"
    print(f"# {cpu} ({isa}), {os.cpu_count()} CPUs, {a.threads} threads, load {os.getloadavg()[0]:.1f}")
    rows = {"sparse": [], "dense": [], "baseline": []}
    try:
        for r in range(a.rounds):
            for name, sp in (("sparse", 0.95),) + ((("dense", 0.0),) if not a.no_dense else ()):
                if r == 0 and name == "sparse":
                    shutil.rmtree(cache)
                    os.makedirs(cache)
                wall, train, acc = run(a.rewire, sp, a.threads, env)
                rows[name].append((wall, train))
                tag = "cold" if r == 0 and name == "sparse" else "warm"
                print(f"round {r + 1} {name:6s} wall {wall:6.2f} s  train {train:6.2f} s  "
                      f"fixed {wall - train:5.2f} s ({(wall - train) / wall:5.1%})  acc {acc:.4f}  cache {tag}")
            if a.baseline:
                wall, train, acc = run(a.baseline, 0.95, a.threads, base_env)
                rows["baseline"].append((wall, train))
                print(f"round {r + 1} baseline 95% wall {wall:6.2f} s  train {train:6.2f} s  "
                      f"fixed {wall - train:5.2f} s ({(wall - train) / wall:5.1%})  acc {acc:.4f}")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(base_cache, ignore_errors=True)
    # Round 1's sparse run filled the cache: the warm rounds are 2 on.
    warm = rows["sparse"][1:] or rows["sparse"]
    frac = [(w - t) / w for w, t in warm]
    ratio = [s[0] / d[0] for s, d in list(zip(rows["sparse"], rows["dense"]))[1:]]
    print(f"sparse 95%: fixed share of wall time, median {statistics.median(frac):.1%} "
          f"[{min(frac):.1%}-{max(frac):.1%}] (warm cache; target <= 15%)")
    if ratio:
        print(f"sparse/dense epoch wall time, median {statistics.median(ratio):.3f} "
              f"[{min(ratio):.3f}-{max(ratio):.3f}] (target <= 0.2)")
    if rows["baseline"]:
        bf = [(w - t) / w for w, t in rows["baseline"]]
        wr = [b[0] / s[0] for b, s in zip(rows["baseline"][1:], rows["sparse"][1:])] or [0]
        print(f"baseline 95%: fixed share median {statistics.median(bf):.1%} "
              f"[{min(bf):.1%}-{max(bf):.1%}]; baseline wall / this wall, median "
              f"{statistics.median(wr):.2f} [{min(wr):.2f}-{max(wr):.2f}] (warm rounds)")
    s0 = rows["sparse"][0]
    print(f"cold cache (round 1): sparse wall {s0[0]:.2f} s, fixed {(s0[0] - s0[1]) / s0[0]:.1%}")


if __name__ == "__main__":
    sys.exit(main())
