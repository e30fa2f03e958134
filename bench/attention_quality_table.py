#!/usr/bin/env python3
"""The README's sparse-attention quality table from bench/attention_quality.sh's
raw.txt: per pattern, the attention density and val loss (whole split) as
mean ± sample sd over the seeds (the value alone for one seed), and the loss minus the same seed's dense
model's (paired, so the spread of the seeds cancels), first for the models
trained with the pattern, then for the dense models evaluated with it.

    python3 bench/attention_quality_table.py OUTDIR/raw.txt [--per-seed]
"""
import json
import statistics
import sys


def mean_sd(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def pm(m_sd, form):
    """mean ± sd, or the mean alone when the seeds are one (no spread to show)."""
    m, sd = m_sd
    return form % m if sd == 0 else (form + " ± %.4f") % (m, sd)


def load(path):
    rows = {}  # (kind, spec) -> {seed: eval json}; a later line replaces an earlier one
    order = []
    logs = {}  # (spec, seed) -> mean attention_density of the training log's last line
    with open(path) as f:
        for line in f:
            parts = line.split(" ", 3)
            if len(parts) < 4:
                continue
            kind, seed, spec, js = parts
            if kind == "trainlog":
                # the run's last --log line: density of its last steps, one number per layer
                d = json.loads(js).get("attention_density", [1.0])
                logs[(spec, int(seed))] = statistics.mean(d)
                continue
            key = (kind, spec)
            if key not in rows:
                rows[key] = {}
                order.append(key)
            rows[key][int(seed)] = json.loads(js)
    return rows, order, logs


def table(rows, order, logs, kinds, title):
    dense = rows.get(("trained", "dense"), {})
    print(title)
    print()
    print("| SPEC | density%s | val loss (mean ± sd) | Δ dense (mean ± sd) | seeds |"
          % (" (train log / eval)" if kinds == {"trained"} else ""))
    print("|---|---:|---:|---:|---:|")
    for key in order:
        if key[0] not in kinds:
            continue
        per = rows[key]
        seeds = sorted(per)
        loss = mean_sd([per[s]["loss"] for s in seeds])
        dens = "%.3f" % statistics.mean(per[s]["attention_density"] for s in seeds)
        logged = [logs[(key[1], s)] for s in seeds if (key[1], s) in logs]
        if key[0] == "trained" and logged:
            dens = "%.3f / %s" % (statistics.mean(logged), dens)
        paired = [per[s]["loss"] - dense[s]["loss"] for s in seeds if s in dense]
        delta = pm(mean_sd(paired), "%+.4f") if paired else ""
        print("| `%s` | %s | %s | %s | %s |" %
              (key[1], dens, pm(loss, "%.4f"), delta, ",".join(map(str, seeds))))
    print()


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: attention_quality_table.py RAW.txt [--per-seed]")
    rows, order, logs = load(sys.argv[1])
    table(rows, order, logs, {"trained"}, "Trained with the pattern:")
    table(rows, order, logs, {"densevs", "sparsed"}, "Dense-trained weights evaluated with the pattern:")
    if "--per-seed" in sys.argv:
        print("Per seed (val loss over the whole split, attention density):")
        print()
        for key in order:
            for s in sorted(rows[key]):
                r = rows[key][s]
                print("%-8s %-18s seed %d  loss %.6f  density %.4f  tokens %d" %
                      (key[0], key[1], s, r["loss"], r["attention_density"], r["tokens"]))


if __name__ == "__main__":
    main()
