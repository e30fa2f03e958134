#!/usr/bin/env python3
"""Picks each method's learning rate on a validation split, then reports the
test accuracy at that rate: a fair way to compare methods that prefer
different rates (a sparse network trains best at a larger rate than the
dense one). For every method, rate and seed it runs (or reuses)

  rewire train --val-split F --lr LR --seed N [--sparsity S --dst METHOD]

reads the last epoch's validation accuracy from the run's JSONL log, picks
per method the rate with the best mean validation accuracy over seeds (the
test set is not looked at to choose), and prints a Markdown table of every
rate with the chosen one marked. Standard library only."""
import json
import os
import sys

from tablelib import fields, mean_std, result_line, training_parser


def parse_args():
    p = training_parser(__doc__)
    p.add_argument("--sparsity", type=float, default=0.95, help="sparsity of the non-dense methods")
    p.add_argument("--methods", default="dense,static,rigl",
                   help="dense and --dst presets, comma-separated (default dense,static,rigl)")
    p.add_argument("--lrs", default="0.05,0.1,0.2", help="peak learning rates to choose from")
    p.add_argument("--val-split", type=float, default=0.1,
                   help="fraction of the training set held out to choose the rate (default 0.1)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default="runs/lr-select", help="folder for logs and results")
    p.add_argument("--compose-only", action="store_true",
                   help="run nothing: build the table from the results already in --runs")
    return p.parse_args()


def last_val_accuracy(log):
    val = None
    with open(log) as f:
        for line in f:
            rec = json.loads(line)
            if "val_accuracy" in rec and "event" not in rec:
                val = rec["val_accuracy"]
    if val is None:
        sys.exit(f"{log}: no epoch line with val_accuracy")
    return val


def run(a, method, lr, seed):
    name = f"{method}-{a.sparsity if method != 'dense' else 0}-lr{lr:g}-{seed}"
    log = os.path.join(a.runs, name + ".jsonl")
    cmd = [a.rewire, "train", "--data", a.data, "--hidden", a.hidden, "--epochs", str(a.epochs),
           "--lr", f"{lr:g}", "--val-split", f"{a.val_split:g}", "--seed", str(seed),
           "--threads", str(a.threads), "--quiet", "--log", log]
    cmd += ["--sparsity", "0"] if method == "dense" else ["--sparsity", str(a.sparsity), "--dst", method]
    line = result_line(a.runs, name, cmd, a.compose_only)
    if line is None:
        return None
    r = fields(line)
    r["val_accuracy"] = last_val_accuracy(log)
    return r


def main():
    a = parse_args()
    os.makedirs(a.runs, exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    lrs = [float(x) for x in a.lrs.split(",")]
    methods = [m for m in a.methods.split(",") if m]
    rows = {}
    for seed in seeds:
        for lr in lrs:
            for m in methods:
                r = run(a, m, lr, seed)
                if r:
                    rows.setdefault((m, lr), []).append(r)
    print(f"Fashion-MNIST, MLP {a.hidden.replace(',', '-')}, {a.epochs} epochs, SGD momentum 0.9, "
          f"cosine learning rate, batch 128, {100 * a.val_split:g}% of the training set held out; "
          f"sparse methods at {100 * a.sparsity:g}% (ERK, their `--dst` preset); seeds {a.seeds}. "
          "Validation and test accuracy after the last epoch, mean ± sample std over seeds; "
          "**chosen** marks each method's rate with the best mean validation accuracy.")
    print()
    print("| method | lr | seeds | validation accuracy (%) | test accuracy (%) | |")
    print("|---|---|---|---|---|---|")
    chosen = {}
    for m in methods:
        have = [lr for lr in lrs if (m, lr) in rows]
        if have:
            chosen[m] = max(have, key=lambda lr: mean_std([r["val_accuracy"] for r in rows[(m, lr)]])[0])
        for lr in have:
            rs = rows[(m, lr)]
            vm, vs = mean_std([100 * r["val_accuracy"] for r in rs])
            tm, ts = mean_std([100 * r["test_accuracy"] for r in rs])
            mark = "**chosen**" if chosen[m] == lr else ""
            print(f"| {m} | {lr:g} | {len(rs)} | {vm:.2f} ± {vs:.2f} | {tm:.2f} ± {ts:.2f} | {mark} |")
    print()
    if "dense" in chosen:
        dm, ds = mean_std([100 * r["test_accuracy"] for r in rows[("dense", chosen["dense"])]])
        for m in methods:
            if m == "dense" or m not in chosen:
                continue
            tm, ts = mean_std([100 * r["test_accuracy"] for r in rows[(m, chosen[m])]])
            print(f"- {m} at its chosen lr {chosen[m]:g}: {tm:.2f} ± {ts:.2f}, against dense at its "
                  f"chosen lr {chosen['dense']:g}: {dm:.2f} ± {ds:.2f} ({tm - dm:+.2f} points).")


if __name__ == "__main__":
    main()
