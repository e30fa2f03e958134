#!/usr/bin/python3
"""Peak memory of RigL on one 20000 x 20000 layer at 99.9% sparsity.

Writes a synthetic IDX data set (20000 features as 100 x 200 images, 10
classes: each class brightens its own band of pixels over uniform noise),
then trains 20000 -> 20000 -> 10 with --init uniform (every layer 99.9%
sparse: 400,000 weights in the big layer) under /usr/bin/time -v, static
and RigL, and prints each run's peak resident memory next to what one dense
20000 x 20000 float matrix takes (1.6 GB). Standard library only.

    bench/big_layer.py [--rewire build/rewire] [--dir runs/big-layer] [--threads 1]
"""
import argparse
import os
import random
import re
import struct
import subprocess
import sys

ROWS, COLS, CLASSES = 100, 200, 10


def write_idx(folder, prefix, n, rng):
    images = bytearray(n * ROWS * COLS)
    labels = bytearray(n)
    band = ROWS * COLS // CLASSES
    for s in range(n):
        c = rng.randrange(CLASSES)
        labels[s] = c
        base = s * ROWS * COLS
        for i in range(ROWS * COLS):
            images[base + i] = rng.randrange(128)
        for i in range(c * band, (c + 1) * band, 3):
            images[base + i] = min(255, images[base + i] + 100)
    with open(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, ROWS, COLS) + bytes(images))
    with open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))


def peak_rss_kb(stderr):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(m.group(1)) if m else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rewire", default="build/rewire")
    p.add_argument("--dir", default="runs/big-layer")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train", type=int, default=512, help="synthetic training samples")
    p.add_argument("--epochs", type=int, default=4)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    if not os.path.exists(os.path.join(a.dir, "t10k-labels-idx1-ubyte")):
        rng = random.Random(1)
        write_idx(a.dir, "train", a.train, rng)
        write_idx(a.dir, "t10k", 256, rng)
    dense_gb = 20000 * 20000 * 4 / 1e9
    print(f"dense 20000 x 20000 float matrix: {dense_gb:.1f} GB")
    for dst in ["static", "rigl"]:
        cmd = ["/usr/bin/time", "-v", a.rewire, "train", "--data", a.dir, "--hidden", "20000",
               "--sparsity", "0.999", "--init", "uniform", "--epochs", str(a.epochs),
               "--batch", "128", "--threads", str(a.threads), "--dst", dst, "--quiet",
               "--log", os.path.join(a.dir, dst + ".jsonl")]
        if dst == "rigl":
            cmd += ["--update-every", "2"]  # a few updates within the short run
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd[2:])} failed:\n{out.stderr}")
        rss = peak_rss_kb(out.stderr)
        print(f"{dst}: peak RSS {rss / 1024:.0f} MiB ({rss * 1024 / 1e9 / dense_gb * 100:.1f}% of "
              f"the dense matrix)\n  {' '.join(cmd[2:])}\n  {out.stdout.strip()}")


if __name__ == "__main__":
    main()
