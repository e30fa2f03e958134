#!/usr/bin/env python3
"""A RigL run at 98% (by default the README's network on the whole of
Fashion-MNIST) trained twice, by `rewire train` and by rewire.train with
the same options: the model files compared byte for byte, the JSONL logs
line by line without their wall-clock fields.

    PYTHONPATH=python /usr/bin/python3 python/bench/same_as_cli.py [--epochs 10] [--keep DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import rewire

TIMING = {"seconds", "train_seconds", "samples_per_second", "update_seconds",
          "total_update_seconds"}


def lines(path):
    with open(path) as f:
        return [{k: v for k, v in json.loads(l).items() if k not in TIMING} for l in f]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--hidden", default="1000,1000,1000")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cli", default=os.path.join(os.path.dirname(os.path.realpath(
        rewire.LIBRARY_PATH)), "rewire"))
    ap.add_argument("--keep", help="write the files here instead of a temporary folder")
    a = ap.parse_args()
    d = a.keep or tempfile.mkdtemp()
    os.makedirs(d, exist_ok=True)
    flags = ["--data", a.data, "--hidden", a.hidden, "--sparsity", "0.98", "--dst", "rigl",
             "--epochs", str(a.epochs), "--threads", str(a.threads), "--seed", "1"]
    t = time.time()
    subprocess.run([a.cli, "train", *flags, "--out", os.path.join(d, "cli.safetensors"), "--log",
                    os.path.join(d, "cli.jsonl"), "--quiet"], check=True)
    t_cli = time.time() - t
    t = time.time()
    r = rewire.train(data=a.data, hidden=[int(h) for h in a.hidden.split(",")], sparsity=0.98,
                     dst="rigl", epochs=a.epochs, threads=a.threads, seed=1,
                     out=os.path.join(d, "py.safetensors"), log=os.path.join(d, "py.jsonl"))
    t_py = time.time() - t
    with open(os.path.join(d, "cli.safetensors"), "rb") as f1, \
            open(os.path.join(d, "py.safetensors"), "rb") as f2:
        a_bytes, b_bytes = f1.read(), f2.read()
    same_model = a_bytes == b_bytes
    la, lb = lines(os.path.join(d, "cli.jsonl")), lines(os.path.join(d, "py.jsonl"))
    same_log = la == lb
    print("command %.1f s, Python %.1f s; test accuracy %.4f, sparsity %.4f, %d topology updates"
          % (t_cli, t_py, r.test_accuracy, r.sparsity, r.updates))
    print("model files: %d bytes each, %s" % (len(a_bytes), "identical" if same_model else "DIFFERENT"))
    print("JSONL: %d lines each, %s (timings aside)" % (len(la), "identical" if same_log else "DIFFERENT"))
    print("result: same_model=%d same_log=%d lines=%d" % (same_model, same_log, len(la)))
    sys.exit(0 if same_model and same_log else 1)


if __name__ == "__main__":
    main()
