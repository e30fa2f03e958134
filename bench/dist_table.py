#!/usr/bin/env python3
"""Tables of docs/distributed.md from bench/dist_speed.sh output, and the
time model of N machines.

Usage: bench/dist_table.py speed RESULTS.txt [STEPS]    ratio and where the time goes
       bench/dist_table.py model                        time per step for N machines
"""
import statistics
import sys


def fields(line):
    parts = line.split()
    out = {"round": int(parts[0]), "who": parts[1]}
    for p in parts[2:]:
        if "=" in p:
            k, v = p.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def speed(path, steps):
    rows = [fields(l) for l in open(path) if l.strip()]
    by = {}
    for r in rows:
        by.setdefault(r["round"], {})[r["who"]] = r
    ratios2, ratios_t = [], []
    for rnd, d in sorted(by.items()):
        if {"p1t1", "p2t1", "p1t2"} <= d.keys():
            base = d["p1t1"]["train_samples_per_second"]
            ratios2.append(d["p2t1"]["train_samples_per_second"] / base)
            ratios_t.append(d["p1t2"]["train_samples_per_second"] / base)
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    print(f"rounds: {len(ratios2)}")
    for who in ("p1t1", "p2t1", "p1t2"):
        v = [d[who]["train_samples_per_second"] for d in by.values() if who in d]
        print(f"{who}: median {med(v):,.0f} samples/s (min {min(v):,.0f}, max {max(v):,.0f})")
    print(f"2 processes x 1 thread / 1 x 1: median of per-round ratios {med(ratios2):.2f} "
          f"(min {min(ratios2):.2f}, max {max(ratios2):.2f})")
    print(f"1 process x 2 threads / 1 x 1:  median {med(ratios_t):.2f} "
          f"(min {min(ratios_t):.2f}, max {max(ratios_t):.2f})")
    p2 = [d["p2t1"] for d in by.values() if "p2t1" in d]
    for r in p2:
        r["compute"] = (r["train_seconds"] - r["wait_seconds"] - r["allreduce_seconds"]
                        - r.get("gather_seconds", 0))
    c = med([r["compute"] for r in p2])
    w = med([r["wait_seconds"] for r in p2])
    a = med([r["allreduce_seconds"] for r in p2])
    g = med([r.get("gather_seconds", 0) for r in p2])
    print(f"2 processes, per step (medians over runs, {steps} steps): compute {1e3 * c / steps:.2f} ms, "
          f"waiting {1e3 * w / steps:.2f} ms, all-reduce {1e3 * a / steps:.2f} ms, "
          f"gather+check {1e3 * g / steps:.2f} ms; all-reduce payload "
          f"{p2[0]['allreduce_bytes'] / 1e3:.1f} KB (dense {p2[0]['dense_bytes'] / 1e3:.1f} KB)")
    one = med([d["p1t1"]["train_samples_per_second"] for d in by.values() if "p1t1" in d])
    print(f"1 process compute per step of 128: {1e3 * 128 / one:.2f} ms")


def model():
    """Ring all-reduce: each machine sends and receives 2 (N-1)/N of the
    payload, in 2 (N-1) messages; compute divides by N."""
    nets = [
        # name, compute seconds per step (global batch 128) on one machine, all-reduce
        # payload bytes, batch gathered per topology update (RigL) in bytes.
        # 784-1000x3-10: one process x 1 thread, medians of bench/dist_speed.sh
        # (runs/dist-speed-95.txt, -99.txt: 4.25 and 1.70 ms); payloads from the
        # runs' closing lines. 1M neurons: docs/performance.md's epoch, 1,300 s of
        # CPU over 469 steps, as 2 threads of one machine.
        ("784-1000x3-10, 95%", 4.25e-3, 570840, (784 + 2 * 3000 + 2 * 10) * 128 * 4),
        ("784-1000x3-10, 99%", 1.70e-3, 123804, (784 + 2 * 3000 + 2 * 10) * 128 * 4),
        ("1M neurons, 99.99%", 1300 / 469 / 2, 4 * (18769849 + 1000010),
         (784 + 2 * 1000000 + 2 * 10) * 128 * 4),
    ]
    for name, comp, bts, gat in nets:
        for gbit in (10, 100):
            bw = gbit * 1e9 / 8
            alpha = 20e-6 if gbit == 10 else 5e-6
            cells = []
            for n in (1, 2, 4, 8, 16, 64):
                comm = 0 if n == 1 else 2 * (n - 1) / n * bts / bw + 2 * (n - 1) * alpha
                step = comp / n + comm
                cells.append(f"N={n}: {1e3 * step:.1f} ms ({comp / step:.1f}x)")
            print(f"{name} @ {gbit} Gbit/s: " + "; ".join(cells))
        print(f"{name}: a topology update gathers {gat / 1e6:.1f} MB: "
              f"{gat / (10e9 / 8):.3f} s at 10 Gbit/s, {gat / (100e9 / 8):.4f} s at 100 "
              f"(every 100 steps: {1e3 * gat / (10e9 / 8) / 100:.2f} and "
              f"{1e3 * gat / (100e9 / 8) / 100:.3f} ms a step)")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "speed":
        speed(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 157)
    elif len(sys.argv) == 2 and sys.argv[1] == "model":
        model()
    else:
        sys.exit(__doc__)
