#!/usr/bin/python3
"""Dense-to-sparse results table: Fashion-MNIST, 784-1000-1000-1000-10, one-shot
magnitude and Wanda pruning of a trained dense model (with and without
fine-tuning), gradual magnitude pruning (GMP), IMP with weight rewinding,
Sparse Model Soups and ISS-P at several sparsities and seeds, beside the best
dynamic sparse training row at the same sparsity. Writes a section of
docs/results.md (between the prune-table markers; the rest of the file, e.g.
the DST table, is kept).

    bench/prune_table.py                                   # the full grid (many hours on 2 cores)
    bench/prune_table.py --sparsities 0.9 --methods imp,soup --seeds 1,2,3   # a slice

Budget: every `rewire train --prune` run gets --epochs (default 10) as its whole
budget of training: GMP and ISS-P run it as one training; IMP splits it into
1 + rounds whole-epoch phases (first training, then one retrain per round; a
retrain starts at the rewind step, so it runs slightly fewer steps); soups
into 1 + rounds x soup-size phases, each member's retrain counted. One-shot
rows prune the dense model trained for --epochs; their fine-tuned variants
add --finetune-epochs more. The optimizer steps column gives what each run
actually did.

Every run's result (and JSONL log for training runs) is kept in --runs
(default runs/prune-table); a run whose result is already there is not run
again, so an interrupted grid resumes where it stopped. Standard library only.
"""
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tablelib import RESULT, fields, mean_std, training_parser

TRAIN_METHODS = ["gmp", "imp", "soup", "issp"]
ONESHOT = ["magnitude", "magnitude-ft", "wanda", "wanda-ft"]
METHODS = ONESHOT + TRAIN_METHODS
PRUNE_LINE = re.compile(r"sparsity [0-9.]+% -> ([0-9.]+)%, test accuracy [0-9.]+% -> ([0-9.]+)%"
                        r"(?:, after \d+ fine-tuning epochs ([0-9.]+)%)?")
BEGIN, END = "<!-- prune-table:begin -->", "<!-- prune-table:end -->"


def parse_args():
    p = training_parser(__doc__, epochs_help="the training budget of every run (default 10)")
    p.add_argument("--finetune-epochs", type=int, default=2,
                   help="fine-tuning after one-shot pruning, for the -ft rows (default 2)")
    p.add_argument("--sparsities", default="0.5,0.75,0.9,0.95")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--soup-rounds", type=int, default=3, help="soup: pruning rounds (default 3)")
    p.add_argument("--soup-size", type=int, default=3, help="soup: members per round (default 3)")
    p.add_argument("--imp-rounds", type=int, default=4, help="imp: pruning rounds (default 4)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads per run (default 1: on a shared 2-core machine a second "
                        "OpenMP thread waits on busy cores)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    p.add_argument("--runs", default="runs/prune-table", help="folder for logs, models and results")
    p.add_argument("--dst-table", default="docs/results.md",
                   help="where the DST table's rows are read from (default docs/results.md)")
    p.add_argument("--out", default="docs/results.md",
                   help="the Markdown report whose prune-table section is replaced ('-': stdout only)")
    p.add_argument("--compose-only", action="store_true",
                   help="run nothing: build the report from the results already in --runs")
    p.add_argument("--note", default="", help="a sentence about the conditions of the runs, added to the report")
    return p.parse_args()


def run(cmd, name):
    start = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
    print(f"{name}: done ({time.time() - start:.0f}s)", file=sys.stderr, flush=True)
    return out.stdout


def run_tag(a, method):
    """The run-name prefix: the method, with its rounds when not the preset's."""
    if method == "soup" and (a.soup_rounds, a.soup_size) != (3, 3):
        return f"soup-r{a.soup_rounds}k{a.soup_size}"
    if method == "imp" and a.imp_rounds != 4:
        return f"imp-r{a.imp_rounds}"
    return method


def train_run(a, method, sparsity, seed):
    """A `rewire train --prune` run (or the dense model for one-shot rows)."""
    name = f"dense-{seed}" if method == "dense" else f"{run_tag(a, method)}-{sparsity}-{seed}"
    result_path = os.path.join(a.runs, name + ".result")
    if os.path.exists(result_path):
        with open(result_path) as f:
            return fields(f.read())
    if a.compose_only:
        return None
    cmd = [a.rewire, "train", "--data", a.data, "--hidden", a.hidden, "--epochs", str(a.epochs),
           "--seed", str(seed), "--threads", str(a.threads), "--quiet",
           "--log", os.path.join(a.runs, name + ".jsonl")]
    if method == "dense":
        cmd += ["--sparsity", "0", "--out", os.path.join(a.runs, name + ".safetensors")]
    else:
        cmd += ["--sparsity", str(sparsity), "--prune", method]
        if method == "soup":
            cmd += ["--rounds", str(a.soup_rounds), "--soup-size", str(a.soup_size)]
        if method == "imp":
            cmd += ["--rounds", str(a.imp_rounds)]
    line = RESULT.search(run(cmd, name)).group(1)
    with open(result_path, "w") as f:
        f.write(line)
    return fields(line)


def oneshot_run(a, method, sparsity, seed):
    """One-shot pruning of the dense model of `seed` (trained first if needed)."""
    name = f"{method}-{sparsity}-{seed}"
    result_path = os.path.join(a.runs, name + ".result")
    if os.path.exists(result_path):
        with open(result_path) as f:
            return fields(f.read())
    if a.compose_only:
        return None
    dense = train_run(a, "dense", 0, seed)
    if dense is None:
        return None
    criterion = method.split("-")[0]
    ft = method.endswith("-ft")
    cmd = [a.rewire, "prune", os.path.join(a.runs, f"dense-{seed}.safetensors"), "--sparsity",
           str(sparsity), "--criterion", criterion, "--data", a.data, "--eval", "--threads",
           str(a.threads), "-o", os.path.join(a.runs, name + ".safetensors")]
    if ft:
        cmd += ["--finetune-epochs", str(a.finetune_epochs), "--seed", str(seed)]
    m = PRUNE_LINE.search(run(cmd, name))
    acc = float(m.group(3) if ft else m.group(2)) / 100
    # Optimizer steps: the dense training's (its log's last epoch line),
    # plus fine-tuning's at the same steps per epoch.
    steps = 0
    with open(os.path.join(a.runs, f"dense-{seed}.jsonl")) as f:
        for l in f:
            s = re.search(r'"step":(\d+)', l)
            if s and '"event"' not in l:
                steps = int(s.group(1))
    if ft:
        steps += a.finetune_epochs * steps // a.epochs
    line = (f"test_accuracy={acc:.4f} sparsity={float(m.group(1)) / 100:.4f} "
            f"steps={steps} epochs={a.epochs + (a.finetune_epochs if ft else 0)}")
    with open(result_path, "w") as f:
        f.write(line)
    return fields(line)


def one(a, method, sparsity, seed):
    if method in ONESHOT:
        return oneshot_run(a, method, sparsity, seed)
    return train_run(a, method, sparsity, seed)


def dst_best(path):
    """{sparsity: (method, mean, std, seeds)} for the best DST row, from the DST table."""
    best = {}
    if not os.path.exists(path):
        return best
    row = re.compile(r"^\| (\d+(?:\.\d+)?)% \| (\w+) \| (\d+) \| ([0-9.]+) ± ([0-9.]+) \|")
    with open(path) as f:
        text = f.read()
    text = text.split(BEGIN)[0] + (text.split(END)[1] if END in text else "")
    for line in text.splitlines():
        m = row.match(line)
        if not m:
            continue
        s = round(float(m.group(1)) / 100, 6)
        mean = float(m.group(4))
        if s not in best or mean > best[s][1]:
            best[s] = (m.group(2), mean, float(m.group(5)), int(m.group(3)))
    return best


def main():
    a = parse_args()
    os.makedirs(a.runs, exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    sparsities = [float(s) for s in a.sparsities.split(",")]
    methods = [m for m in a.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            sys.exit(f"unknown method {m} (expected some of {','.join(METHODS)})")
    load_start = os.getloadavg()
    t0 = time.time()
    # Dense models first (one-shot rows share them), then everything else.
    jobs = [(m, s, seed) for s in sparsities for seed in seeds for m in methods]
    if any(m in ONESHOT for m in methods) and not a.compose_only:
        with ThreadPoolExecutor(a.jobs) as ex:
            list(ex.map(lambda seed: train_run(a, "dense", 0, seed), seeds))
    with ThreadPoolExecutor(a.jobs) as ex:
        results = list(ex.map(lambda j: one(a, *j), jobs))
    rows = {}
    for (m, s, _), r in zip(jobs, results):
        if r:
            rows.setdefault((m, s), []).append(r)
    elapsed = time.time() - t0
    best = dst_best(a.dst_table)

    def acc(key):
        return mean_std([100 * r["test_accuracy"] for r in rows[key]])

    lines = []
    w = lines.append
    w(BEGIN)
    w("# Dense-to-sparse results (pruning)")
    w("")
    w("Generated by `bench/prune_table.py` (rerun it to regenerate this section; it keeps the rest "
      "of the file). Command:")
    w("")
    w("```sh")
    w("bench/prune_table.py " + " ".join(
        f"--{k} {v}" for k, v in [("rewire", a.rewire), ("data", a.data), ("hidden", a.hidden),
                                  ("epochs", a.epochs), ("finetune-epochs", a.finetune_epochs),
                                  ("seeds", a.seeds), ("sparsities", a.sparsities),
                                  ("soup-rounds", a.soup_rounds), ("soup-size", a.soup_size),
                                  ("imp-rounds", a.imp_rounds),
                                  ("methods", a.methods), ("threads", a.threads), ("runs", a.runs)]))
    w("```")
    w("")
    w(f"Fashion-MNIST, MLP {a.hidden.replace(',', '-')} with 784 inputs and 10 classes, SGD momentum "
      f"0.9, lr 0.05, batch 128, cosine learning rate (restarted in every IMP/soup phase), "
      f"seeds {a.seeds}; every method with its `--prune` preset (see the README). Budget: "
      f"{a.epochs} epochs of training per run. GMP and ISS-P: one training, pruning from dense "
      "between 10% and 60% of it every 100 steps to the ERK distribution of the target (ISS-P: "
      f"shrink 0.5, removal at 60%). IMP: {a.imp_rounds} rounds, 1 + {a.imp_rounds} whole-epoch "
      "phases (the remainder to the first), rewinding to 5% of a retrain phase, per-layer "
      f"magnitude. Soup: {a.soup_rounds} rounds of {a.soup_size} members, 1 + "
      f"{a.soup_rounds * a.soup_size} whole-epoch phases (each member's retrain counted in the "
      "budget; the remainder to the first), per-layer magnitude. One-shot rows prune the dense model trained for the budget "
      f"(per-layer magnitude; Wanda per output row with 128 calibration samples); `-ft` rows "
      f"then fine-tune {a.finetune_epochs} epochs on the mask at lr 0.01 (budget "
      f"{a.epochs} + {a.finetune_epochs}). Test accuracy after the last epoch, mean ± sample "
      "standard deviation over seeds. Best DST: the best row of the dynamic sparse training "
      "table above at the same sparsity (10 epochs, ERK), where it has one.")
    w("")
    w(f"Machine: {platform.machine()}, {os.cpu_count()} cores, {a.threads} thread(s) per run; "
      f"load average {load_start[0]:.1f} when this report was composed. {a.note}")
    w("")
    w("| sparsity | method | seeds | test accuracy (%) | budget (epochs) | optimizer steps | final sparsity |")
    w("|---|---|---|---|---|---|---|")
    for s in sorted(sparsities):
        for m in methods:
            if (m, s) not in rows:
                continue
            rs = rows[(m, s)]
            am, asd = acc((m, s))
            steps = statistics.mean(r.get("steps", 0) for r in rs)
            budget = a.epochs + (a.finetune_epochs if m.endswith("-ft") else 0)
            fin = statistics.mean(r["sparsity"] for r in rs)
            w(f"| {100 * s:g}% | {m} | {len(rs)} | {am:.2f} ± {asd:.2f} | {budget} | {steps:,.0f} | {fin:.4f} |")
            if m == "soup":
                mm = [100 * r["member_accuracy_mean"] for r in rs if "member_accuracy_mean" in r]
                if mm:
                    w(f"| {100 * s:g}% | soup: its members (mean) | {len(mm)} | "
                      f"{statistics.mean(mm):.2f} ± {statistics.stdev(mm) if len(mm) > 1 else 0:.2f} "
                      f"| (in the soup's) | | |")
        key = round(s, 6)
        if key in best:
            bm, bmean, bstd, bn = best[key]
            w(f"| {100 * s:g}% | best DST ({bm}) | {bn} | {bmean:.2f} ± {bstd:.2f} | 10 | | |")
    w("")
    w("## Checks (pruning)")
    w("")
    checked = False
    w("Must-show 2 asks for 90% or 95%; the other sparsities are listed for comparison.")
    w("")
    for s in sorted(sparsities):
        if ("soup", s) not in rows:
            continue
        rs = [r for r in rows[("soup", s)] if "member_accuracy_mean" in r]
        if not rs:
            continue
        checked = True
        soup = [100 * r["test_accuracy"] for r in rs]
        mem = [100 * r["member_accuracy_mean"] for r in rs]
        memb = [100 * r["member_accuracy_best"] for r in rs]
        (sm, ssd), (mm, msd), (bm, bsd) = mean_std(soup), mean_std(mem), mean_std(memb)
        diffs = [x - y for x, y in zip(soup, mem)]
        ok = sm - mm > ssd + msd
        w(f"- {100 * s:g}%: soup {sm:.2f} ± {ssd:.2f} vs the single models it averages (same mask, "
          f"mean of members) {mm:.2f} ± {msd:.2f}: {sm - mm:+.2f} points (per seed "
          f"{', '.join(f'{d:+.2f}' for d in diffs)}), spread (std soup + std members) "
          f"{ssd + msd:.2f}: {'beats them by more than the spread' if ok else 'NOT more than the spread'}; "
          f"best member {bm:.2f} ± {bsd:.2f} ({sm - bm:+.2f}).")
        if ("imp", s) in rows:
            im, isd = acc(("imp", s))
            ok = sm - im > ssd + isd
            w(f"- {100 * s:g}%: soup {sm:.2f} vs IMP with rewinding {im:.2f} ± {isd:.2f}: "
              f"{sm - im:+.2f} points, spread {ssd + isd:.2f}: "
              f"{'beats it by more than the spread' if ok else 'NOT more than the spread'}.")
    if not checked:
        w("- Must-show 2 (soup vs the single models it averages at 90% or 95%): no soup runs yet.")
    w("")
    w(f"This invocation took {elapsed / 60:.1f} minutes (runs already in {a.runs} are reused).")
    w(END)
    section = "\n".join(lines) + "\n"
    print(section)
    if a.out != "-":
        old = open(a.out).read() if os.path.exists(a.out) else ""
        if BEGIN in old and END in old:
            text = old.split(BEGIN)[0] + section.rstrip("\n") + old.split(END, 1)[1]
        else:
            text = old + ("\n" if old and not old.endswith("\n") else "") + ("\n" if old else "") + section
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
