#!/usr/bin/python3
"""N:M training-from-scratch results table: Fashion-MNIST, 784-1000-1000-1000-10,
dense against 2:4 and 1:4 trained with plain straight-through (STE), SR-STE
and mask decay (MDGF-Linear), the same epochs and optimizer for every row.
Writes its own section of docs/results.md, between the markers
<!-- nm-table:begin --> and <!-- nm-table:end -->, leaving the rest of the
file as it is (the section is appended when the markers are missing).

    bench/nm_table.py                                  # 7 rows x 3 seeds
    bench/nm_table.py --seeds 1 --configs dense,2:4-srste   # a slice
    bench/nm_table.py --configs 2:4-ste,2:4-srste@0.05 --a-priori-lambda 0.05

A configuration is dense, or PATTERN-METHOD with METHOD ste, srste or decay;
an SR-STE configuration may name its λ_W after '@' (2:4-srste@0.05 passes
--nm-lambda 0.05; plain 2:4-srste keeps the CLI's default). --a-priori-lambda
says which λ_W was chosen before its runs, so that the report can tell it
from a sweep.

Runs go seed by seed (every configuration of seed 1 first). Every run's
closing line and JSONL log are kept in --runs (default runs/nm-table); a run
whose result is already there is not run again, so an interrupted table
resumes where it stopped. Standard library only.
"""
import json
import math
import os
import re
import statistics
import sys
import time

from tablelib import fields, mean_std, result_line, training_parser, write_section

CONFIGS = ["dense", "2:4-ste", "2:4-srste", "2:4-decay", "1:4-ste", "1:4-srste", "1:4-decay"]
CONFIG = re.compile(r"^(dense|\d+:\d+-(ste|srste|decay))(?:@(.+))?$")
DEFAULT_LAMBDA = 2e-4  # the CLI's --nm-lambda default, for the report only
LR = 0.05  # the CLI's --lr default, which every run uses, for the report only
PAPER_PULL = 2e-4 * 0.05 * 600600  # SR-STE's ImageNet recipe: λ_W · mean lr · steps
BEGIN, END = "<!-- nm-table:begin -->", "<!-- nm-table:end -->"


def parse_args():
    p = training_parser(__doc__)
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--nm-layers", default="hidden", help="passed to --nm-layers (default hidden)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads per run (default 1: the machine is shared)")
    p.add_argument("--runs", default="runs/nm-table", help="folder for logs and results")
    p.add_argument("--out", default="docs/results.md", help="the Markdown report ('-': stdout only)")
    p.add_argument("--compose-only", action="store_true",
                   help="run nothing: build the section from the results already in --runs")
    p.add_argument("--note", default="", help="a sentence about the conditions of the runs")
    p.add_argument("--a-priori-lambda", type=float, default=None, metavar="L",
                   help="the SR-STE λ_W chosen before its runs (the report marks it; any other "
                        "λ_W in the table is reported as a sweep)")
    return p.parse_args()


def parse_config(c):
    """'2:4-srste@0.05' -> (canonical name, base configuration, λ_W or None)."""
    m = CONFIG.match(c)
    if not m:
        return None
    base, method, lam = m.group(1), m.group(2), m.group(3)
    if lam is None:
        return (c, base, None)
    try:
        lam = float(lam)
    except ValueError:
        return None
    if method != "srste" or not (math.isfinite(lam) and lam >= 0):
        return None
    return (f"{base}@{lam:g}", base, lam)


def sort_key(name):
    """Table order: the order of CONFIGS, SR-STE rows with an explicit λ_W
    after the default one, by λ_W."""
    _, base, lam = parse_config(name)
    order = CONFIGS.index(base) if base in CONFIGS else len(CONFIGS)
    return (order, -1 if lam is None else lam, base)


def lambda_of(name):
    """The λ_W an SR-STE configuration trains with, None for the others."""
    _, base, lam = parse_config(name)
    if not base.endswith("-srste"):
        return None
    return DEFAULT_LAMBDA if lam is None else lam


def run_one(a, config, seed):
    """Runs (or reuses) one training; returns the closing line's fields."""
    name = f"{config.replace(':', 'of')}-{seed}"
    cmd = [a.rewire, "train", "--data", a.data, "--hidden", a.hidden, "--epochs", str(a.epochs),
           "--seed", str(seed), "--threads", str(a.threads), "--quiet",
           "--log", os.path.join(a.runs, name + ".jsonl")]
    if config == "dense":
        cmd += ["--sparsity", "0"]
    else:
        _, base, lam = parse_config(config)
        pattern, method = base.split("-")
        cmd += ["--nm", pattern, "--nm-method", method, "--nm-layers", a.nm_layers]
        if lam is not None:
            cmd += ["--nm-lambda", f"{lam:g}"]
    line = result_line(a.runs, name, cmd, a.compose_only)
    if line is None:
        return None
    r = fields(line)
    r["steps"], r["mask_changes"] = from_log(os.path.join(a.runs, name + ".jsonl"))
    return r


def from_log(log_path):
    """From a run's JSONL log: the step count of its last epoch record, and
    the sum over epochs of the N:M event's mask_change (None when absent)."""
    step = changes = None
    if os.path.exists(log_path):
        with open(log_path) as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("event") == "nm":
                    changes = (changes or 0.0) + rec["mask_change"]
                elif "event" not in rec and "step" in rec:
                    step = rec["step"]
    return step, changes


def main():
    a = parse_args()
    os.makedirs(a.runs, exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    configs = []
    for c in (c for c in a.configs.split(",") if c):
        parsed = parse_config(c)
        if not parsed or parsed[1] not in CONFIGS:
            sys.exit(f"unknown configuration {c} (expected some of {','.join(CONFIGS)}, an SR-STE "
                     "one optionally with @λ_W, e.g. 2:4-srste@0.05)")
        configs.append(parsed[0])
    load_start = os.getloadavg()
    t0 = time.time()
    rows = {}
    for seed in seeds:
        for c in configs:
            r = run_one(a, c, seed)
            if r:
                rows.setdefault(c, []).append(r)
    elapsed = time.time() - t0

    def acc(c):
        return mean_std([100 * r["test_accuracy"] for r in rows[c]])

    lines = []
    w = lines.append
    w("## N:M training from scratch")
    w("")
    w("Generated by `bench/nm_table.py` (rerun it to regenerate this section). Command:")
    w("")
    w("```sh")
    w("bench/nm_table.py " + " ".join(
        f"--{k} {v}" for k, v in [("rewire", a.rewire), ("data", a.data), ("hidden", a.hidden),
                                  ("epochs", a.epochs), ("seeds", a.seeds), ("configs", a.configs),
                                  ("nm-layers", a.nm_layers), ("threads", a.threads),
                                  ("runs", a.runs)]) +
      (f" --a-priori-lambda {a.a_priori_lambda:g}" if a.a_priori_lambda is not None else ""))
    w("```")
    w("")
    srste_rows = [c for c in sorted(rows, key=sort_key) if lambda_of(c) is not None]
    lambdas = sorted({lambda_of(c) for c in srste_rows})
    w(f"Fashion-MNIST, MLP {a.hidden.replace(',', '-')} with 784 inputs and 10 classes, "
      f"{a.epochs} epochs, SGD momentum 0.9, lr {LR}, batch 128, cosine learning rate; the N:M "
      f"rows train `--nm-layers {a.nm_layers}` N:M from scratch (`rewire train --nm N:M "
      "--nm-method ste|srste|decay`, defaults otherwise: SR-STE λ_W = 2e-4 unless the "
      "configuration names it after `@` (`--nm-lambda`), decay factor falling linearly to 0 at "
      "half of training), the dense row is `--sparsity 0`. Test accuracy after the last epoch, "
      "mean ± sample standard deviation over the seeds each row has.")
    w("")
    all_steps = [r["steps"] for rs in rows.values() for r in rs if r.get("steps")]
    if srste_rows and all_steps:
        sum_lr = LR * statistics.mean(all_steps) / 2
        w("SR-STE adds λ_W·(1 − mask) ⊙ W to the gradient of W, so over training it pulls a "
          "masked-out weight towards 0 by about λ_W·Σ_t lr_t (momentum 0.9 multiplies that by up "
          "to 10, alike here and in the authors' recipe). The column *pull* is λ_W·Σ_t lr_t for "
          f"these runs: cosine from lr {LR} to 0 over {statistics.mean(all_steps):,.0f} steps, "
          f"Σ_t lr_t ≈ {sum_lr:.0f}. The authors' ImageNet recipe (their "
          "`config_resnet50_2by4.yaml`: ResNet-50, batch 256, 120 epochs, 600,600 steps; lr 0.1 "
          "with 5 warm-up epochs then cosine, mean lr 0.05, Σ_t lr_t ≈ 30,030) has, with their "
          f"λ_W = 2e-4, a pull of about {PAPER_PULL:.1f}: {PAPER_PULL / (DEFAULT_LAMBDA * sum_lr):.0f} "
          "times the pull of the same λ_W here. (Their train_imagenet.py divides the loss by the "
          "number of GPUs before the gradient all-reduce, which suggests the all-reduce sums; the "
          "SR-STE term, added on every GPU, would then be summed too, making their effective "
          "λ_W 2e-4 times the number of GPUs. That is not assumed here.)")
        if a.a_priori_lambda is not None:
            w("")
            w(f"λ_W = {a.a_priori_lambda:g} was chosen before its runs to give the authors' pull "
              f"({PAPER_PULL:.1f} / {sum_lr:.0f} = {PAPER_PULL / sum_lr:.3f}); every other λ_W in "
              "the table except the default is a sweep around it, reported in full.")
        w("")
    w("*mask changes* is the sum over epochs of the log's `mask_change` (the fraction of N:M mask "
      "entries that changed during the epoch), mean over the seeds: how much the mask moved.")
    w("")
    w("| configuration | λ_W | pull | seeds | test accuracy (%) | mask changes | train samples/s "
      "| final sparsity |")
    w("|---|---|---|---|---|---|---|---|")
    for c in sorted(rows, key=sort_key):
        rs = rows[c]
        am, asd = acc(c)
        sm, ssd = mean_std([r["train_samples_per_second"] for r in rs])
        fin = statistics.mean(r["sparsity"] for r in rs)
        lam = lambda_of(c)
        steps = [r["steps"] for r in rs if r.get("steps")]
        lam_s = "–" if lam is None else f"{lam:g}"
        pull_s = "–" if lam is None or not steps else f"{lam * LR * statistics.mean(steps) / 2:.2g}"
        ch = [r["mask_changes"] for r in rs if r.get("mask_changes") is not None]
        ch_s = f"{statistics.mean(ch):.3f}" if ch else "–"
        one = len(rs) < 2  # no spread to show
        acc_s = f"{am:.2f}" if one else f"{am:.2f} ± {asd:.2f}"
        sps_s = f"{sm:,.0f}" if one else f"{sm:,.0f} ± {ssd:,.0f}"
        w(f"| {c} | {lam_s} | {pull_s} | {len(rs)} | {acc_s} | {ch_s} | {sps_s} | {fin:.4f} |")
    w("")
    w("### Checks (issue 5, must-show 3)")
    w("")

    def role(lam):
        if a.a_priori_lambda is not None and math.isclose(lam, a.a_priori_lambda):
            return "chosen a priori"
        if math.isclose(lam, DEFAULT_LAMBDA):
            return "the default, the authors' value"
        return "sweep"

    judged = {}  # λ_W -> {pattern: beats STE by more than the spread}, rows with >= 2 seeds
    for pat in ("2:4", "1:4"):
        t = f"{pat}-ste"
        ss = [c for c in srste_rows if c.startswith(pat + "-")]
        if t not in rows or not ss:
            continue
        tm, tsd = acc(t)
        w(f"- {pat}: STE {tm:.2f} ± {tsd:.2f} ({len(rows[t])} seed(s)) against SR-STE at each λ_W:")
        for s in ss:
            sm_, ssd = acc(s)
            n = min(len(rows[s]), len(rows[t]))
            verdict = "beats STE" if sm_ > tm else "does NOT beat STE"
            spread = " (one seed: no spread to judge the difference by)" if n < 2 else \
                " by more than the spread" if sm_ - tm > ssd + tsd else \
                " (not by more than the seeds' spread)" if sm_ > tm else ""
            sd_s = "" if len(rows[s]) < 2 else f" ± {ssd:.2f}"
            w(f"  - λ_W {lambda_of(s):g} ({role(lambda_of(s))}): {sm_:.2f}{sd_s} "
              f"({len(rows[s])} seed(s)), {sm_ - tm:+.2f} points, spread {ssd + tsd:.2f}: "
              f"{verdict}{spread}.")
            if n >= 2:
                judged.setdefault(lambda_of(s), {})[pat] = sm_ - tm > ssd + tsd
    both = sorted(l for l, v in judged.items() if len(v) == 2)
    if both:
        wins = [l for l in both if all(judged[l].values())]
        w(f"- SR-STE beats STE at both 2:4 and 1:4 by more than the seeds' spread at λ_W: "
          f"{', '.join(f'{l:g}' for l in wins) if wins else 'none'} (of the λ_W with at least two "
          f"seeds at both patterns: {', '.join(f'{l:g}' for l in both)}).")
    if len(lambdas) > 2 or (len(lambdas) == 2 and a.a_priori_lambda is None):
        w("- Only the default and the a-priori λ_W test a hypothesis; the others are a sweep "
          "judged on the same test set, so the best of them is biased upwards (picking λ_W by "
          "test accuracy would need a validation split).")
    if "dense" in rows:
        dm, _ = acc("dense")
        for s in (c for c in srste_rows if c.startswith("2:4-")):
            sm_, _ = acc(s)
            w(f"- 2:4 SR-STE λ_W {lambda_of(s):g} {sm_:.2f} ({len(rows[s])} seed(s)) vs dense "
              f"{dm:.2f} ({len(rows['dense'])} seed(s)): {sm_ - dm:+.2f} points "
              f"({'within 0.5 points or better' if sm_ >= dm - 0.5 else 'MORE than 0.5 points below'}).")
    w("")
    w(f"This invocation took {elapsed / 60:.1f} minutes (runs already in {a.runs} are reused).")
    w("")
    text = "\n".join(lines)
    print(text)
    if a.out != "-":
        write_section(a.out, BEGIN, END, text)


if __name__ == "__main__":
    main()
