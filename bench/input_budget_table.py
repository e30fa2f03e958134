#!/usr/bin/python3
"""Input-level dynamic sparse training (`rewire train --input-budget K`)
against the same budget of random inputs and of the highest-variance
inputs, each trained the same way (the same flags, only --input-select
differs), beside the model that reads every input. Two tables:

  - Fashion-MNIST, 784-1000-1000-1000-10, RigL at 98%, 10 epochs,
    --normalize feature, 196 of 784 pixels kept;
  - scikit-learn's breast cancer CSV (569 x 30; Debian's python3-sklearn),
    100-100, RigL at 80%, 50 epochs of batch 32, --normalize feature,
    5 of 30 features kept.

Writes a section of docs/results.md (between the input-budget markers; the
rest of the file is kept) and, with --plot, the kept pixels of the first
seed's importance model (rewire plot --connectivity).

    bench/input_budget_table.py                        # both tables (a few minutes on 2 cores)
    bench/input_budget_table.py --tables tabular --tab-seeds 1,2,3   # a slice

Every run's closing line is kept in --runs (default runs/input-budget),
with its model; a run whose result is already there is not run again, so
an interrupted table resumes where it stopped. Standard library only.
"""
import os
import platform
import subprocess
import sys
import time

from tablelib import fields, mean_std, result_line, training_parser, write_section

BEGIN, END = "<!-- input-budget:begin -->", "<!-- input-budget:end -->"
SELECTS = ["all", "importance", "random", "variance"]
ROW_NAMES = {"all": "every input (no budget)", "importance": "--input-select importance (DST)",
             "random": "--input-select random", "variance": "--input-select variance (highest variance kept)"}
CSV = "/usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv"


def parse_args():
    p = training_parser(__doc__)
    p.add_argument("--tables", default="images,tabular", help="images, tabular or both")
    p.add_argument("--sparsity", default="0.98")
    p.add_argument("--dst", default="rigl")
    p.add_argument("--budget", type=int, default=196, help="pixels kept (default 196 of 784)")
    p.add_argument("--normalize", default="feature")
    p.add_argument("--csv", default=CSV, help="the tabular data set (label in the last column, "
                   "one line of counts first)")
    p.add_argument("--tab-budget", type=int, default=5, help="features kept (default 5 of 30)")
    p.add_argument("--tab-hidden", default="100,100")
    p.add_argument("--tab-sparsity", default="0.8")
    p.add_argument("--tab-epochs", type=int, default=50)
    p.add_argument("--tab-seeds", default="1,2,3,4,5,6,7,8,9,10")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", default="runs/input-budget", help="folder for results and models")
    p.add_argument("--out", default="docs/results.md", help="the Markdown report ('-': stdout only)")
    p.add_argument("--plot", default="", help="write the kept pixels of the first seed's "
                   "importance model here (PNG or SVG)")
    p.add_argument("--plot-variance", default="", help="and those of its variance model here")
    p.add_argument("--compose-only", action="store_true",
                   help="run nothing: build the report from the results already in --runs")
    p.add_argument("--note", default="", help="a sentence about the conditions of the runs")
    return p.parse_args()


def images_cmd(a, select, seed, model):
    cmd = [a.rewire, "train", "--data", a.data, "--hidden", a.hidden, "--epochs", str(a.epochs),
           "--sparsity", a.sparsity, "--dst", a.dst, "--normalize", a.normalize, "--seed",
           str(seed), "--threads", str(a.threads), "--quiet", "--out", model]
    if select != "all":
        cmd += ["--input-budget", str(a.budget), "--input-select", select]
    return cmd


def tabular_cmd(a, select, seed, model):
    cmd = [a.rewire, "train", "--data", a.csv, "--skip-rows", "1", "--label-column", "-1",
           "--hidden", a.tab_hidden, "--epochs", str(a.tab_epochs), "--batch", "32",
           "--update-every", "10", "--sparsity", a.tab_sparsity, "--dst", a.dst, "--normalize",
           a.normalize, "--seed", str(seed), "--threads", str(a.threads), "--quiet", "--out", model]
    if select != "all":
        cmd += ["--input-budget", str(a.tab_budget), "--input-select", select]
    return cmd


def run_table(a, table, seeds, make_cmd):
    """{select: [result fields per seed]} for one table."""
    rows = {}
    for seed in seeds:
        for select in SELECTS:
            name = f"{table}-{select}-{seed}"
            cmd = make_cmd(a, select, seed, os.path.join(a.runs, name + ".safetensors"))
            line = result_line(a.runs, name, cmd, a.compose_only)
            if line is not None:
                rows.setdefault(select, []).append(fields(line))
    return rows


def section(a, title, setup, command, rows, kept_word):
    lines = [f"### {title}", "", setup, "", "```sh", command, "```", "",
             "| inputs | seeds | test accuracy (%) | per seed |", "|---|---|---|---|"]
    acc = {}
    for select in SELECTS:
        if select not in rows:
            continue
        xs = [100 * r["test_accuracy"] for r in rows[select]]
        acc[select] = xs
        m, sd = mean_std(xs)
        lines.append(f"| {ROW_NAMES[select]} | {len(xs)} | {m:.2f} ± {sd:.2f} | "
                     f"{', '.join(f'{x:.2f}' for x in xs)} |")
    lines.append("")
    if "importance" in acc:
        im, isd = mean_std(acc["importance"])
        for other in ("random", "variance"):
            if other not in acc:
                continue
            om, osd = mean_std(acc[other])
            verdict = ("beats it by more than the spread" if im - om > isd + osd
                       else "beats it, but NOT by more than the spread" if im > om
                       else "does NOT beat it")
            wins = sum(x > y for x, y in zip(acc["importance"], acc[other]))
            ties = sum(x == y for x, y in zip(acc["importance"], acc[other]))
            lines.append(f"- importance {im:.2f} ± {isd:.2f} against {other} {om:.2f} ± {osd:.2f}: "
                         f"{im - om:+.2f} points, spread (the two standard deviations added) "
                         f"{isd + osd:.2f}: {verdict}; higher on {wins} of {len(acc[other])} "
                         f"seeds{f' ({ties} ties)' if ties else ''}.")
        lines.append("")
    return lines


def main():
    a = parse_args()
    os.makedirs(a.runs, exist_ok=True)
    tables = [t for t in a.tables.split(",") if t]
    load_start = os.getloadavg()
    t0 = time.time()
    out = [BEGIN, "## Input-level DST: choosing the inputs (issue 24, must-show 3)", "",
           "Generated by `bench/input_budget_table.py` (rerun it to regenerate this section; runs "
           f"already in `{a.runs}` are reused). Every row of a table is trained the same way; only "
           "`--input-select` differs: `importance` removes the inputs whose first-layer "
           "connections carry the least |w| mass (times their RMS over the batch), `random` a "
           "random order drawn from the seed, `variance` the inputs that vary least over the "
           "training set, so the highest-variance ones are kept. Inputs go on a cubic schedule "
           "between 10% and 50% of training (the preset); the connections they held are regrown "
           "among the inputs left. Test accuracy after the last epoch, mean ± sample standard "
           "deviation over seeds (each seed also draws the random order).", "",
           f"Machine: {platform.machine()}, {os.cpu_count()} cores, {a.threads} threads per run; "
           f"load average {load_start[0]:.1f} at the start. {a.note}", ""]
    if "images" in tables:
        seeds = [int(s) for s in a.seeds.split(",")]
        rows = run_table(a, "images", seeds, images_cmd)
        cmd = " ".join(images_cmd(a, "importance", "SEED", "M.safetensors")).replace(a.rewire, "rewire", 1)
        out += section(a, f"Fashion-MNIST, {a.budget} of 784 pixels",
                       f"MLP {a.hidden.replace(',', '-')}, {a.dst} at {float(a.sparsity):.0%}, "
                       f"{a.epochs} epochs, `--normalize {a.normalize}`, seeds {a.seeds}.",
                       cmd, rows, "pixels")
        for select, png in (("importance", a.plot), ("variance", a.plot_variance)):
            if not png or not rows.get(select):
                continue
            model = os.path.join(a.runs, f"images-{select}-{seeds[0]}.safetensors")
            subprocess.run([a.rewire, "plot", "--connectivity", model, "-o", png, "--title",
                            f"kept pixels: connections per pixel, --input-budget {a.budget} "
                            f"--input-select {select}, seed {seeds[0]}"],
                           check=True, capture_output=True)
            out += [f"Kept pixels of seed {seeds[0]}, `--input-select {select}` (`rewire plot "
                    f"--connectivity`): ![kept pixels, {select}]"
                    f"({os.path.relpath(png, os.path.dirname(a.out) or '.')})", ""]
    if "tabular" in tables:
        seeds = [int(s) for s in a.tab_seeds.split(",")]
        rows = run_table(a, "tabular", seeds, tabular_cmd)
        cmd = " ".join(tabular_cmd(a, "importance", "SEED", "M.safetensors")).replace(a.rewire, "rewire", 1)
        out += section(a, f"Breast cancer, {a.tab_budget} of 30 features",
                       f"`{a.csv}` (569 samples, 20% held out by the seeded --test-split, the "
                       f"same split for every run), MLP {a.tab_hidden.replace(',', '-')}, "
                       f"{a.dst} at {float(a.tab_sparsity):.0%}, {a.tab_epochs} epochs of batch "
                       f"32, an update every 10 steps, `--normalize {a.normalize}`, seeds "
                       f"{a.tab_seeds}.", cmd, rows, "features")
    out += [f"This invocation took {(time.time() - t0) / 60:.1f} minutes." if not a.compose_only
            else f"Composed from the runs in `{a.runs}`.", END]
    text = "\n".join(out[1:-1]) + "\n"
    print(text)
    if a.out != "-":
        write_section(a.out, BEGIN, END, text)


if __name__ == "__main__":
    main()
