#!/usr/bin/python3
"""N:M training-from-scratch results table: Fashion-MNIST, 784-1000-1000-1000-10,
dense against 2:4 and 1:4 trained with plain straight-through (STE), SR-STE
and mask decay (MDGF-Linear), the same epochs and optimizer for every row.
Writes its own section of docs/results.md, between the markers
<!-- nm-table:begin --> and <!-- nm-table:end -->, leaving the rest of the
file as it is (the section is appended when the markers are missing).

    bench/nm_table.py                                  # 7 rows x 3 seeds
    bench/nm_table.py --seeds 1 --configs dense,2:4-srste   # a slice

Runs go seed by seed (every configuration of seed 1 first). Every run's
closing line and JSONL log are kept in --runs (default runs/nm-table); a run
whose result is already there is not run again, so an interrupted table
resumes where it stopped. Standard library only.
"""
import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time

CONFIGS = ["dense", "2:4-ste", "2:4-srste", "2:4-decay", "1:4-ste", "1:4-srste", "1:4-decay"]
RESULT = re.compile(r"^result: (.*)$", re.M)
BEGIN, END = "<!-- nm-table:begin -->", "<!-- nm-table:end -->"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rewire", default="build/rewire", help="the rewire binary (default build/rewire)")
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--hidden", default="1000,1000,1000")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--nm-layers", default="hidden", help="passed to --nm-layers (default hidden)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads per run (default 1: the machine is shared)")
    p.add_argument("--runs", default="runs/nm-table", help="folder for logs and results")
    p.add_argument("--out", default="docs/results.md", help="the Markdown report ('-': stdout only)")
    p.add_argument("--compose-only", action="store_true",
                   help="run nothing: build the section from the results already in --runs")
    p.add_argument("--note", default="", help="a sentence about the conditions of the runs")
    return p.parse_args()


def run_one(a, config, seed):
    """Runs (or reuses) one training; returns the closing line's fields."""
    name = f"{config.replace(':', 'of')}-{seed}"
    result_path = os.path.join(a.runs, name + ".result")
    if os.path.exists(result_path):
        with open(result_path) as f:
            line = f.read()
    elif a.compose_only:
        return None
    else:
        cmd = [a.rewire, "train", "--data", a.data, "--hidden", a.hidden, "--epochs", str(a.epochs),
               "--seed", str(seed), "--threads", str(a.threads), "--quiet",
               "--log", os.path.join(a.runs, name + ".jsonl")]
        if config == "dense":
            cmd += ["--sparsity", "0"]
        else:
            pattern, method = config.split("-")
            cmd += ["--nm", pattern, "--nm-method", method, "--nm-layers", a.nm_layers]
        start = time.time()
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
        line = RESULT.search(out.stdout).group(1)
        with open(result_path, "w") as f:
            f.write(line)
        print(f"{name}: {line}  ({time.time() - start:.0f}s)", file=sys.stderr, flush=True)
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split())}


def mean_std(xs):
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)


def write_section(path, text):
    """Replaces the marked section of path (or appends it), keeping the rest."""
    old = open(path).read() if os.path.exists(path) else ""
    block = f"{BEGIN}\n{text}{END}\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + block + ("\n" + tail if tail else "")
    else:
        new = old + ("\n" if old and not old.endswith("\n\n") else "") + block
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(new)


def main():
    a = parse_args()
    os.makedirs(a.runs, exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    configs = [c for c in a.configs.split(",") if c]
    for c in configs:
        if c not in CONFIGS:
            sys.exit(f"unknown configuration {c} (expected some of {','.join(CONFIGS)})")
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
                                  ("runs", a.runs)]))
    w("```")
    w("")
    w(f"Fashion-MNIST, MLP {a.hidden.replace(',', '-')} with 784 inputs and 10 classes, "
      f"{a.epochs} epochs, SGD momentum 0.9, lr 0.05, batch 128, cosine learning rate; the N:M "
      f"rows train `--nm-layers {a.nm_layers}` N:M from scratch (`rewire train --nm N:M "
      "--nm-method ste|srste|decay`, defaults otherwise: SR-STE λ_W = 2e-4, decay factor falling "
      "linearly to 0 at half of training), the dense row is `--sparsity 0`. Test accuracy after "
      "the last epoch, mean ± sample standard deviation over the seeds each row has.")
    w("")
    w(f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work, {a.threads} "
      f"thread(s) per run; load average {load_start[0]:.1f} when this section was composed. "
      f"{a.note} Samples/s move with the machine's load. N:M training keeps dense master weights "
      "and a dense weight gradient by the method's nature, so it trains no faster than dense; the "
      "saved models are N:M (`rewire info`) and run with the N:M kernels.")
    w("")
    w("| configuration | seeds | test accuracy (%) | train samples/s | final sparsity |")
    w("|---|---|---|---|---|")
    for c in [c for c in CONFIGS if c in rows]:
        rs = rows[c]
        am, asd = acc(c)
        sm, ssd = mean_std([r["train_samples_per_second"] for r in rs])
        fin = statistics.mean(r["sparsity"] for r in rs)
        w(f"| {c} | {len(rs)} | {am:.2f} ± {asd:.2f} | {sm:,.0f} ± {ssd:,.0f} | {fin:.4f} |")
    w("")
    w("### Checks (issue 5, must-show 3)")
    w("")
    for pat in ("2:4", "1:4"):
        s, t = f"{pat}-srste", f"{pat}-ste"
        if s in rows and t in rows:
            (sm_, ssd), (tm, tsd) = acc(s), acc(t)
            verdict = "beats STE" if sm_ > tm else "does NOT beat STE"
            few = min(len(rows[s]), len(rows[t])) < 2
            spread = " (one seed: no spread to judge the difference by)" if few else \
                " by more than the spread" if sm_ - tm > ssd + tsd else \
                " (not by more than the seeds' spread)" if sm_ > tm else ""
            w(f"- {pat}: SR-STE {sm_:.2f} vs STE {tm:.2f} ({sm_ - tm:+.2f} points, spread "
              f"{ssd + tsd:.2f}, {min(len(rows[s]), len(rows[t]))} seed(s)): {verdict}{spread}.")
    if "2:4-srste" in rows and "dense" in rows:
        (sm_, _), (dm, _) = acc("2:4-srste"), acc("dense")
        w(f"- 2:4 SR-STE {sm_:.2f} ({len(rows['2:4-srste'])} seed(s)) vs dense {dm:.2f} "
          f"({len(rows['dense'])} seed(s)): {sm_ - dm:+.2f} points "
          f"({'within 0.5 points or better' if sm_ >= dm - 0.5 else 'MORE than 0.5 points below'}).")
    w("")
    w(f"This invocation took {elapsed / 60:.1f} minutes (runs already in {a.runs} are reused).")
    w("")
    text = "\n".join(lines)
    print(text)
    if a.out != "-":
        write_section(a.out, text)


if __name__ == "__main__":
    main()
