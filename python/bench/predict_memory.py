#!/usr/bin/env python3
"""Zero copy: predicting on a large float32 array raises the process's peak
resident memory by the outputs and the predictor's buffers, not by a copy
of the input; a float64 or non-contiguous array is refused, with its
message, instead of being converted.

The peak is Linux's VmHWM, reset just before the call (writing 5 to
/proc/self/clear_refs), against VmRSS just before it; the input is made
and touched first.

    PYTHONPATH=python /usr/bin/python3 python/bench/predict_memory.py [--mb 100]
"""
import argparse
import sys

import rewire  # before numpy: see rewire/__init__.py
import numpy as np

MB = 1 << 20


def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=100, help="input size in MiB (100)")
    ap.add_argument("--hidden", default="1000,1000,1000")
    ap.add_argument("--sparsity", type=float, default=0.95)
    a = ap.parse_args()
    sizes = [784] + [int(h) for h in a.hidden.split(",")] + [10]
    model = rewire.Model.mlp(sizes, a.sparsity, seed=1, normalization=(0.286, 0.353))
    n = int(a.mb * MB) // (784 * 4)
    x = np.random.default_rng(1).random((n, 784), dtype=np.float32)  # made and touched
    print("predict_memory: %s MLP at sparsity %g; input float32 [%d, 784] = %.1f MiB"
          % ("-".join(map(str, sizes)), a.sparsity, n, x.nbytes / MB))
    reset_peak()
    before = status("VmRSS")
    out = model.predict(x)
    peak = status("VmHWM")
    rise = peak - before
    beyond = rise - out.nbytes
    print("peak RSS rise during predict: %.2f MiB; outputs %.2f MiB; beyond the outputs %.2f MiB "
          "(the predictor's buffers for batches of 256)" % (rise / MB, out.nbytes / MB, beyond / MB))
    for bad, what in ((x[:1000].astype(np.float64), "float64"),
                      (x[:2000:2], "every other row (not contiguous)")):
        try:
            model.predict(bad)
            print("%s: accepted (unexpected)" % what)
            sys.exit(1)
        except (TypeError, ValueError) as e:
            print("%s: %s: %s" % (what, type(e).__name__, e))
    print("result: input_mib=%.1f rise_mib=%.2f outputs_mib=%.2f beyond_outputs_mib=%.2f"
          % (x.nbytes / MB, rise / MB, out.nbytes / MB, beyond / MB))
    if beyond >= 10 * MB:
        sys.exit("beyond the outputs: %.2f MiB, not under 10 MiB" % (beyond / MB))


if __name__ == "__main__":
    main()
