#!/usr/bin/python3
"""Summarises `rewire bench kernels --json` runs for issue 5's must-show 4:
for every N:M pattern, each N:M kernel beside CSR at the same density (the
same cell of the same run), with weight storage bytes. Reads the JSONL
files given (one run each) and prints, per pattern and operation, the
range over runs of CSR's and N:M's best and median times and of their
ratio (CSR time / N:M time: above 1 means N:M is faster).

    rewire bench kernels --shape 1000x1000 --densities 0.5 --nm 2:4,1:4,1:8 \\
        --batches 128 --repeats 11 --time 0.04 --threads 1 --json > run1.jsonl
    bench/nm_kernels.py run1.jsonl run2.jsonl run3.jsonl

Standard library only.
"""
import json
import sys


def cells(path):
    """The N:M cells of one run: {pattern: {op: row}} with CSR rows as csr_<op>."""
    out, cell = {}, None
    for line in open(path):
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r.get("bench") != "kernel":
            continue
        if r["op"] == "spmm":
            cell = {}
        cell[r["op"] if r["format"] == "csr" else r["op"]] = r
        if r["op"].startswith("nm_"):
            out.setdefault(r["format"], {}).update(cell)
    return out


def span(xs, fmt):
    lo, hi = min(xs), max(xs)
    return fmt.format(lo) if lo == hi else (fmt + "–" + fmt).format(lo, hi)


def main():
    runs = [cells(p) for p in sys.argv[1:]]
    if not runs:
        sys.exit(__doc__)
    patterns = [p for p in runs[0]]
    print(f"{len(runs)} run(s); times in ms per call, range over runs; ratio = CSR time / N:M time")
    print()
    print("| pattern | density | op | CSR best | N:M best | ratio (best) | ratio (median) | CSR bytes | N:M bytes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for p in patterns:
        for op in ("spmm", "spmm_t", "sddmm"):
            rs = [r[p] for r in runs if p in r]
            csr = [c[op] for c in rs]
            nm = [c["nm_" + op] for c in rs]
            cb = [1e3 * r["best_seconds"] for r in csr]
            nb = [1e3 * r["best_seconds"] for r in nm]
            rb = [c["best_seconds"] / n["best_seconds"] for c, n in zip(csr, nm)]
            rm = [c["seconds"] / n["seconds"] for c, n in zip(csr, nm)]
            print(f"| {p} | {nm[0]['density']:.4g} | {op} | {span(cb, '{:.2f}')} | {span(nb, '{:.2f}')} | "
                  f"{span(rb, '{:.2f}')} | {span(rm, '{:.2f}')} | {csr[0]['bytes']:,} | {nm[0]['bytes']:,} |")


if __name__ == "__main__":
    main()
