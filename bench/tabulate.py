#!/usr/bin/python3
"""Tabulates JSON rows of `rewire bench ... --json` and bench/peer_pytorch.py
as Markdown tables of speeds and ratios.

Input: JSON lines on stdin or in the files named. A line
{"bench": "round", "round": N} (written by bench/run_all.sh) starts round N;
ratios are taken within a round (both sides measured minutes apart at
most) and the median over rounds is shown, with the range in brackets.

Usage: /usr/bin/python3 bench/tabulate.py results.jsonl > tables.md
"""
import argparse
import json
import statistics
import sys
from collections import defaultdict


def load(paths):
    rows, rnd = [], 0
    files = [open(p) for p in paths] if paths else [sys.stdin]
    for f in files:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("bench") == "round":
                rnd = r["round"]
                continue
            r["round"] = rnd
            rows.append(r)
    return rows


def med(values):
    return statistics.median(values) if values else None


def fmt_ratio(values):
    if not values:
        return "-"
    m = med(values)
    if len(values) == 1:
        return f"{m:.1f}x"
    return f"{m:.1f}x [{min(values):.1f}-{max(values):.1f}]"


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def sp_key(s):
    return round(s, 3)


def kernel_table(rows):
    ks = [r for r in rows if r["bench"] == "kernel"]
    if not ks:
        return
    shape = f'{ks[0]["rows"]}x{ks[0]["cols"]}'
    print(f"### Kernels on a {shape} layer against OpenBLAS SGEMM on the same dense product\n")
    print("Medians over rounds; 'of SGEMM' is the median of the per-round ratio of useful "
          "GFLOP/s (2 nnz batch) to SGEMM's GFLOP/s measured next to it.\n")
    print("| op | density | batch | threads | time | GFLOP/s | SGEMM GFLOP/s | of SGEMM | best of SGEMM |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    groups = defaultdict(list)
    for r in ks:
        groups[(r["op"], r["density"], r["batch"], r["threads"])].append(r)
    order = {"spmm": 0, "spmv": 1, "spmm_t": 2, "sddmm": 3}
    for key in sorted(groups, key=lambda k: (-k[1], k[2], order.get(k[0], 9), k[3])):
        g = groups[key]
        t = med([r["seconds"] for r in g])
        unit, shown = ("us", t * 1e6) if t < 1e-3 else ("ms", t * 1e3)
        print(f"| {key[0]} | {key[1]:g} | {key[2]} | {key[3]} | {shown:.1f} {unit} | "
              f"{med([r['gflops'] for r in g]):.1f} | {med([r['sgemm_gflops'] for r in g]):.1f} | "
              f"{med([r['fraction'] for r in g]):.2f} | {max(r['best_fraction'] for r in g):.2f} |")
    print()


def by_round(rows, bench, impl, path):
    """{(sparsity, batch, threads): {round: row}}"""
    out = defaultdict(dict)
    for r in rows:
        if r["bench"] == bench and r["impl"] == impl and r["path"] == path:
            out[(sp_key(r["sparsity"]), r["batch"], r["threads"])][r["round"]] = r
    return out


def ratios(num, den, field, invert=False):
    """Per-round ratios num/den of `field` for rounds both have."""
    vals = []
    for rnd, a in num.items():
        b = den.get(rnd)
        if b:
            vals.append(b[field] / a[field] if invert else a[field] / b[field])
    return vals


def train_table(rows):
    tr = [r for r in rows if r["bench"] == "train"]
    if not tr:
        return
    net = tr[0]["net"]
    rs = by_round(rows, "train", "rewire", "sparse")
    rd = by_round(rows, "train", "rewire", "dense")
    pd = by_round(rows, "train", "pytorch", "dense")
    pm = by_round(rows, "train", "pytorch", "masked")
    print(f"### Training {net}, SGD with momentum, synthetic data\n")
    print("Samples per second (medians over rounds); ratios are per round, median [min-max].\n")
    print("| sparsity | batch | threads | rewire | PyTorch dense | PyTorch masked | "
          "rewire / PyTorch dense | rewire / PyTorch masked |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = sorted(set(rs) | set(rd), key=lambda k: (k[2], k[1], k[0]))
    for k in keys:
        sp, batch, th = k
        mine = rs.get(k) or rd.get(k)
        dense_key = (0.0, batch, th)
        p_dense = pd.get(dense_key, {})
        p_mask = pm.get(k, {}) if sp > 0 else {}
        label = f"{sp:g}" + (" (dense path)" if k in rd else "")
        print(f"| {label} | {batch} | {th} | "
              f"{fmt(med([r['samples_per_second'] for r in mine.values()]), '.0f')} | "
              f"{fmt(med([r['samples_per_second'] for r in p_dense.values()]), '.0f')} | "
              f"{fmt(med([r['samples_per_second'] for r in p_mask.values()]), '.0f')} | "
              f"{fmt_ratio(ratios(mine, p_dense, 'samples_per_second'))} | "
              f"{fmt_ratio(ratios(mine, p_mask, 'samples_per_second'))} |")
    # Thread scaling of rewire itself.
    threads = sorted({k[2] for k in rs})
    if len(threads) > 1:
        print("\nrewire's own scaling (per-round ratio of samples/s to the same run's 1 thread):\n")
        print("| sparsity | batch | " + " | ".join(f"{t} threads" for t in threads[1:]) + " |")
        print("|---:|---:|" + "---:|" * (len(threads) - 1))
        for sp, batch in sorted({(k[0], k[1]) for k in rs}):
            one = rs.get((sp, batch, threads[0]), {})
            cells = [fmt_ratio(ratios(rs.get((sp, batch, t), {}), one, "samples_per_second"))
                     for t in threads[1:]]
            print(f"| {sp:g} | {batch} | " + " | ".join(cells) + " |")
    print()


def infer_table(rows):
    inf = [r for r in rows if r["bench"] == "infer"]
    if not inf:
        return
    net = inf[0]["net"]
    rs = by_round(rows, "infer", "rewire", "sparse")
    rd = by_round(rows, "infer", "rewire", "dense")
    pd = by_round(rows, "infer", "pytorch", "dense")
    pc = by_round(rows, "infer", "pytorch", "sparse_csr")
    print(f"### Inference {net}\n")
    print("Latency per call of `batch` samples and samples per second (medians over rounds); "
          "'faster' columns are per-round latency ratios, median [min-max].\n")
    print("| sparsity | batch | threads | rewire latency | rewire samples/s | PyTorch dense latency | "
          "torch.sparse CSR latency | faster than PyTorch dense | faster than torch.sparse CSR |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = sorted(set(rs) | set(rd), key=lambda k: (k[2], k[1], k[0]))
    for k in keys:
        sp, batch, th = k
        mine = rs.get(k) or rd.get(k)
        p_dense = pd.get((0.0, batch, th), {})
        p_csr = pc.get(k, {}) if sp > 0 else {}

        def us(d):
            v = med([r["seconds"] for r in d.values()])
            return "-" if v is None else f"{v * 1e6:.0f} us"

        label = f"{sp:g}" + (" (dense path)" if k in rd else "")
        print(f"| {label} | {batch} | {th} | {us(mine)} | "
              f"{fmt(med([r['samples_per_second'] for r in mine.values()]), '.0f')} | "
              f"{us(p_dense)} | {us(p_csr)} | "
              f"{fmt_ratio(ratios(mine, p_dense, 'seconds', invert=True))} | "
              f"{fmt_ratio(ratios(mine, p_csr, 'seconds', invert=True))} |")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("files", nargs="*", metavar="RESULTS.jsonl",
                    help="JSON lines of the benchmarks (default: standard input)")
    a = ap.parse_args()
    try:
        rows = load(a.files)
    except OSError as e:
        ap.error(str(e))
    except ValueError as e:
        ap.error(f"a line is not JSON ({e})")
    kernel_table(rows)
    train_table(rows)
    infer_table(rows)


if __name__ == "__main__":
    main()
