#!/usr/bin/env python3
"""Checks rewire's forward pass against PyTorch and against tools/rewire_numpy.py.

Loads MODEL with rewire_numpy, rebuilds the network in PyTorch and runs it on
the first N test images of a folder of (gzipped) IDX files. Sparse layers
become torch.sparse_csr_tensor matmuls fed the file's indptr/indices/values
as they are, so torch reads the CSR itself instead of trusting
rewire_numpy.dense_weight; dense layers become torch.nn.Linear. Then:

  * torch's accuracy must equal `rewire eval MODEL --json --limit N` exactly,
    and its mean cross-entropy loss must agree within 1e-4 relative;
  * rewire_numpy.predict must give torch's probabilities within 1e-5.

Exits 1 naming every mismatch, 2 on bad input or a failing rewire, 0 after
a short summary.

Usage: python3 tools/check_torch.py MODEL [--rewire build/rewire]
           [--data /usr/share/datasets/fashion-mnist] [--limit 10000]
"""

import argparse
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rewire_numpy  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# torch 1.13 warns once that CSR support is "beta"; the matmul used here works.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


class RewireNet(torch.nn.Module):
    """The model's layers in torch: CSR matmul or nn.Linear, then the activation."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.ops = []  # one callable per layer: h (n, in) -> (n, out), before the activation
        for ly in model.layers:
            bias = torch.from_numpy(ly.bias.copy())  # copy: the file's arrays are read-only
            if ly.kind == "dense":
                lin = torch.nn.Linear(ly.shape[1], ly.shape[0])
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(ly.weight.copy()))
                    lin.bias.copy_(bias)
                self.ops.append(lin)
            else:
                w = torch.sparse_csr_tensor(torch.from_numpy(ly.indptr.astype(np.int64)),
                                            torch.from_numpy(ly.indices.astype(np.int64)),
                                            torch.from_numpy(ly.values.copy()), size=ly.shape)
                self.ops.append(lambda h, w=w, b=bias: (w @ h.T).T + b)

    def forward(self, x):  # x is (n, in), raw in [0, 1]; returns logits (n, classes)
        m = self.model
        h = (x - m.input_mean) / m.input_std
        for ly, op in zip(m.layers, self.ops):
            h = op(h)
            if ly.activation == "relu":
                h = torch.relu(h)
            elif ly.activation == "leaky_relu":
                h = F.leaky_relu(h, m.leaky_slope)
            elif ly.activation == "tanh":
                h = torch.tanh(h)
            elif ly.activation == "gelu":
                h = F.gelu(h, approximate="tanh")
        return h


def die(msg):
    print(f"check_torch: {msg}", file=sys.stderr)
    sys.exit(2)


def find_idx(folder, stem):
    """folder/stem.gz or folder/stem, the names rewire looks for."""
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    die(f"{folder} holds neither {stem}.gz nor {stem}")


def rewire_eval(rewire, model, data, limit):
    cmd = [rewire, "eval", model, "--data", data, "--json", "--limit", str(limit)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        die(f"`{' '.join(cmd)}` failed ({run.returncode}): {run.stderr.strip()}")
    try:
        return json.loads(run.stdout)
    except json.JSONDecodeError:
        die(f"`{' '.join(cmd)}` printed {run.stdout!r}, not JSON")


def main():
    ap = argparse.ArgumentParser(description="Compare rewire with PyTorch and numpy on one model.")
    ap.add_argument("model")
    ap.add_argument("--rewire", default=os.path.join(REPO, "build", "rewire"))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--limit", type=int, default=10000)
    args = ap.parse_args()
    if args.limit < 1:
        die("--limit must be at least 1")
    # rewire also takes the names "fashion-mnist" and "mnist" for Debian's folders.
    folder = args.data
    if not os.path.isdir(folder) and args.data in ("fashion-mnist", "mnist"):
        folder = os.path.join("/usr/share/datasets", args.data)
    try:
        model = rewire_numpy.load(args.model)
        images = rewire_numpy.read_idx(find_idx(folder, "t10k-images-idx3-ubyte"))[:args.limit]
        labels = rewire_numpy.read_idx(find_idx(folder, "t10k-labels-idx1-ubyte"))[:args.limit]
    except (OSError, rewire_numpy.FormatError) as e:
        die(e)
    n = len(images)
    # Same float32 division as rewire's IDX loader.
    x = images.reshape(n, -1).astype(np.float32) / np.float32(255)

    with torch.no_grad():
        logits = RewireNet(model)(torch.from_numpy(x))
        # Loss and softmax in double, like rewire's softmax_xent.
        loss = F.cross_entropy(logits.double(), torch.from_numpy(labels.astype(np.int64))).item()
        probs = torch.softmax(logits.double(), dim=1).numpy()
    z = logits.numpy()
    correct = int((z.argmax(1) == labels).sum())  # numpy argmax: first maximum wins, as in rewire
    top2 = np.sort(z, axis=1)[:, -2:]
    near_ties = int((top2[:, 1] - top2[:, 0] < 1e-4).sum())

    rw = rewire_eval(args.rewire, args.model, args.data, args.limit)
    rw_correct = round(rw["accuracy"] * rw["count"])
    np_diff = float(np.abs(rewire_numpy.predict(model, x) - probs).max())
    loss_rel = abs(loss - rw["loss"]) / max(abs(rw["loss"]), 1e-12)

    failures = []
    if rw["count"] != n:
        failures.append(f"rewire evaluated {rw['count']} samples, torch {n}")
    if rw_correct != correct:
        failures.append(f"accuracy: torch {correct}/{n}, rewire {rw_correct}/{rw['count']} "
                        f"({near_ties} samples have their top two logits within 1e-4)")
    if not loss_rel <= 1e-4:
        failures.append(f"loss: torch {loss:.9g}, rewire {rw['loss']:.9g}, "
                        f"relative difference {loss_rel:.2e} > 1e-4")
    if not np_diff < 1e-5:
        failures.append(f"probabilities: numpy predict() and torch differ by up to {np_diff:.2e}"
                        " (limit 1e-5)")

    kinds = "+".join(f"{ly.kind[0]}{ly.shape[0]}" for ly in model.layers)
    acts = ",".join(sorted({ly.activation for ly in model.layers} - {"none"}))
    print(f"{args.model} [{kinds}, {acts}] on {n} test images of {args.data}")
    print(f"  accuracy  torch {correct / n:.4f} ({correct}/{n})  rewire {rw['accuracy']:.4f}")
    print(f"  loss      torch {loss:.7f}  rewire {rw['loss']:.7f}  rel diff {loss_rel:.1e}")
    print(f"  numpy vs torch probabilities: max abs diff {np_diff:.1e}; near ties {near_ties}")
    if failures:
        print("MISMATCH:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)
    print("OK: torch, numpy and rewire agree")


if __name__ == "__main__":
    main()
