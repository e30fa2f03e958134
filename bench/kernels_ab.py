#!/usr/bin/env python3
"""Sparse kernels of two or more rewire binaries, interleaved in one run.

Each round runs `rewire bench kernels` once per shape and density for every
binary in turn (the order of the binaries flips every round) and keeps,
per kernel, its time and its fraction of the SGEMM timed next to it in
the same process. Reported per shape, density and kernel: each binary's
median fraction of SGEMM, and for every later binary the median over
rounds of the first binary's time over its own (its speed-up, measured
in the same round). The machine is shared: only numbers from the same
round mean anything.

    bench/kernels_ab.py --rounds 3 /tmp/k768-before/build/rewire build/rewire

Standard library only.
"""
import argparse
import json
import statistics
import subprocess

SHAPES = ["512x512", "1536x512", "2048x512", "512x2048"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binaries", nargs="+", help="rewire executables; the first is the baseline")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--shapes", default=",".join(SHAPES), help="OUTxIN,... (default: the GPT's)")
    p.add_argument("--densities", default="0.1,0.25")
    p.add_argument("--batch", type=int, default=768)
    p.add_argument("--isa", default="avx512")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5, help="bench kernels --repeats")
    return p.parse_args()


def run(a, binary, shape, density):
    cmd = [binary, "bench", "kernels", "--shape", shape, "--densities", density, "--batches",
           str(a.batch), "--nm", "none", "--isa", a.isa, "--threads", str(a.threads),
           "--repeats", str(a.repeats), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            if r.get("bench") == "kernel" and r["batch"] == a.batch:
                rows[r["op"]] = r
    return rows, cmd


def main():
    a = parse_args()
    jobs = [(s, d) for s in a.shapes.split(",") for d in a.densities.split(",")]
    seen = {}  # (shape, density, op) -> per binary: list of (seconds, fraction)
    first_cmd = None
    for rnd in range(a.rounds):
        order = list(range(len(a.binaries)))
        if rnd % 2:
            order.reverse()
        for shape, density in jobs:
            for i in order:
                rows, cmd = run(a, a.binaries[i], shape, density)
                first_cmd = first_cmd or cmd
                for op, r in rows.items():
                    per = seen.setdefault((shape, density, op), [[] for _ in a.binaries])
                    per[i].append((r["seconds"], r["fraction"]))
    print("command per binary:", " ".join(first_cmd[1:]))
    head = f"{'shape':>9} {'dens':>5} {'op':<10}" + "".join(
        f" {'frac' + str(i):>7}" for i in range(len(a.binaries))) + "".join(
        f" {'x' + str(i) + ' (min-max)':>20}" for i in range(1, len(a.binaries)))
    print(head)
    for (shape, density, op), per in seen.items():
        line = f"{shape:>9} {density:>5} {op:<10}"
        for runs in per:
            line += f" {statistics.median(f for _, f in runs):7.3f}"
        for runs in per[1:]:
            ratios = [b[0] / r[0] for b, r in zip(per[0], runs)]
            line += f" {statistics.median(ratios):6.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        print(line)


if __name__ == "__main__":
    main()
