#!/usr/bin/env python3
"""Language-model speed, rewire beside PyTorch, interleaved in one run.

Training tokens/s (AdamW, batch 12 x context 64) and batch-1 generation
tokens/s (KV cache) of the GPT at nanoGPT's CPU size (4 layers, 4 heads,
dim 128) and at dim 512 (8 heads), where the linear maps dominate: rewire
dense (OpenBLAS) and with the blocks' maps 90% sparse (CSR), PyTorch dense
(bench/peer_pytorch_lm.py, on the OpenMP build of OpenBLAS, its best
setting). The machine is shared and noisy, so each round runs every
measurement once, in alternating order, and the report gives the ratios of
each round (median and range), never an absolute time alone.

    bench/lm_speed.py --rounds 3                     # writes docs/results-lm.md, section lm-speed

Standard library only; PyTorch is needed for the peer rows (/usr/bin/python3).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tablelib import write_section  # noqa: E402

OMP_OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
SHAPES = {"small": {"layers": 4, "heads": 4, "dim": 128},
          "wide": {"layers": 4, "heads": 8, "dim": 512},
          "iso256": {"layers": 4, "heads": 4, "dim": 256},
          "iso384": {"layers": 4, "heads": 4, "dim": 384}}
# The iso-FLOP models: their sparse maps cost the dense dim-128 maps' FLOPs.
ISO_SPARSITY = {"iso256": 0.75, "iso384": 0.889}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rewire", default="build/rewire")
    p.add_argument("--python", default="/usr/bin/python3", help="an interpreter with torch")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sparsity", type=float, default=0.9)
    p.add_argument("--out", default="docs/results-lm.md")
    p.add_argument("--section", default="lm-speed")
    p.add_argument("--raw", default="", help="also append every JSON row to this file")
    return p.parse_args()


def shape_flags(shape):
    s = SHAPES[shape]
    return ["--layers", str(s["layers"]), "--heads", str(s["heads"]), "--dim", str(s["dim"]),
            "--context", "64", "--batch", "12"]


def json_rows(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def rewire_rows(a, shape):
    steps = "6" if shape == "wide" else "20"
    sparsities = str(ISO_SPARSITY[shape]) if shape in ISO_SPARSITY else f"0,{a.sparsity}"
    cmd = [a.rewire, "bench", "lm", *shape_flags(shape), "--sparsities", sparsities,
           "--steps", steps, "--repeats", "3", "--gen-tokens", "63", "--threads", str(a.threads),
           "--json"]
    return cmd, json_rows(cmd)


def torch_rows(a, shape, mode):
    env = dict(os.environ, LD_LIBRARY_PATH=OMP_OPENBLAS)
    steps = "20" if shape == "small" else "6"
    cmd = [a.python, "bench/peer_pytorch_lm.py", mode, *shape_flags(shape), "--sparsity", "0",
           "--threads", str(a.threads), "--repeats", "3"]
    cmd += ["--steps", steps, "--warmup-steps", "3"] if mode == "--speed" else \
        ["--gen-tokens", "63", "--no-csr"]
    return cmd, json_rows(cmd, env)


def pick(rows, bench, sparsity=None):
    for r in rows:
        if r["bench"] == bench and (sparsity is None or abs(r["sparsity"] - sparsity) < 1e-9):
            return r["tokens_per_second"]
    raise SystemExit(f"lm_speed.py: no {bench} row at sparsity {sparsity} in {rows}")


def one_round(a, k, log):
    """Every measurement once; the order flips each round."""
    jobs = [("rewire", "small"), ("torch-train", "small"), ("torch-gen", "small"),
            ("rewire", "wide"), ("torch-train", "wide"), ("torch-gen", "wide"),
            ("rewire", "iso256"), ("rewire", "iso384")]
    if k % 2:
        jobs.reverse()
    got = {}
    for what, shape in jobs:
        if what == "rewire":
            cmd, rows = rewire_rows(a, shape)
        else:
            cmd, rows = torch_rows(a, shape, "--speed" if what == "torch-train" else
                                   "--generate-speed")
        got[(what, shape)] = rows
        if log:
            with open(log, "a") as f:
                for r in rows:
                    f.write(json.dumps(dict(r, round=k)) + "\n")
        print(f"round {k}: {' '.join(cmd)}", file=sys.stderr)
    s = a.sparsity
    rs, rw = got[("rewire", "small")], got[("rewire", "wide")]
    return {
        "small_dense": pick(rs, "lm_train", 0.0), "small_sparse": pick(rs, "lm_train", s),
        "small_torch": pick(got[("torch-train", "small")], "lm_train"),
        "gen_dense": pick(rs, "lm_generate", 0.0), "gen_sparse": pick(rs, "lm_generate", s),
        "gen_torch": pick(got[("torch-gen", "small")], "lm_generate"),
        "wide_dense": pick(rw, "lm_train", 0.0), "wide_sparse": pick(rw, "lm_train", s),
        "wide_torch": pick(got[("torch-train", "wide")], "lm_train"),
        "wgen_dense": pick(rw, "lm_generate", 0.0), "wgen_sparse": pick(rw, "lm_generate", s),
        "wgen_torch": pick(got[("torch-gen", "wide")], "lm_generate"),
        "iso256": pick(got[("rewire", "iso256")], "lm_train", ISO_SPARSITY["iso256"]),
        "iso384": pick(got[("rewire", "iso384")], "lm_train", ISO_SPARSITY["iso384"]),
    }


def summary(rounds, num, den):
    rs = [r[num] / r[den] for r in rounds]
    med = statistics.median(rs)
    return f"{med:.2f}x ({min(rs):.2f}-{max(rs):.2f})"


def tps(rounds, key):
    return f"{statistics.median(r[key] for r in rounds):,.0f}"


def main():
    a = parse_args()
    cpu = "unknown CPU"
    try:
        flags = open("/proc/cpuinfo").read()
        cpu = "AMD EPYC, AVX-512" if "avx512f" in flags else "AMD EPYC, AVX2 + FMA"
    except OSError:
        pass
    rounds = []
    for k in range(a.rounds):
        rounds.append(one_round(a, k, a.raw))
        print(json.dumps(rounds[-1]), file=sys.stderr)
    pct = round(100 * a.sparsity)
    lines = [
        "## Speed: rewire beside PyTorch",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {cpu} ({platform.machine()}), "
        f"{a.threads} threads, {a.rounds} interleaved rounds; ratios are per round, median "
        "(range). PyTorch 1.13 on the OpenMP build of OpenBLAS (its best setting here). "
        "Training: batch 12 x context 64 tokens a step, AdamW; generation: batch 1, KV cache, "
        "63 tokens. Command: `bench/lm_speed.py --rounds "
        f"{a.rounds}`.",
        "",
        "| measurement | rewire dense tok/s | rewire " f"{pct}% tok/s | PyTorch dense tok/s | "
        "rewire dense / PyTorch | rewire " f"{pct}% / rewire dense |",
        "|---|---:|---:|---:|---:|---:|",
        f"| training, 4 layers, dim 128 | {tps(rounds, 'small_dense')} | "
        f"{tps(rounds, 'small_sparse')} | {tps(rounds, 'small_torch')} | "
        f"{summary(rounds, 'small_dense', 'small_torch')} | "
        f"{summary(rounds, 'small_sparse', 'small_dense')} |",
        f"| training, 4 layers, dim 512, 8 heads | {tps(rounds, 'wide_dense')} | "
        f"{tps(rounds, 'wide_sparse')} | {tps(rounds, 'wide_torch')} | "
        f"{summary(rounds, 'wide_dense', 'wide_torch')} | "
        f"{summary(rounds, 'wide_sparse', 'wide_dense')} |",
        f"| generation, batch 1, dim 128 | {tps(rounds, 'gen_dense')} | "
        f"{tps(rounds, 'gen_sparse')} | {tps(rounds, 'gen_torch')} | "
        f"{summary(rounds, 'gen_dense', 'gen_torch')} | "
        f"{summary(rounds, 'gen_sparse', 'gen_dense')} |",
        f"| generation, batch 1, dim 512 | {tps(rounds, 'wgen_dense')} | "
        f"{tps(rounds, 'wgen_sparse')} | {tps(rounds, 'wgen_torch')} | "
        f"{summary(rounds, 'wgen_dense', 'wgen_torch')} | "
        f"{summary(rounds, 'wgen_sparse', 'wgen_dense')} |",
        "",
        "Iso-FLOP models against the dense dim-128 model, training tokens/s in the same rounds "
        "(the wall time of a run of as many steps is the inverse ratio):",
        "",
        "| model | rewire tok/s | wall time / dense dim 128 |",
        "|---|---:|---:|",
        f"| dim 128, dense | {tps(rounds, 'small_dense')} | 1 |",
        f"| dim 256, 75% | {tps(rounds, 'iso256')} | {summary(rounds, 'small_dense', 'iso256')} |",
        f"| dim 384, 88.9% | {tps(rounds, 'iso384')} | "
        f"{summary(rounds, 'small_dense', 'iso384')} |",
        "",
    ]
    text = "\n".join(lines)
    write_section(a.out, f"<!-- {a.section}:begin -->", f"<!-- {a.section}:end -->", text)
    print(text)


if __name__ == "__main__":
    main()
