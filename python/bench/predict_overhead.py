#!/usr/bin/env python3
"""What Python adds to a prediction at batch 1: model.predict(row) beside
the C call that `rewire bench infer --batches 1` times, on the same MLP.

Two measurements, because a shared machine's noise (other programs taking
the cores for milliseconds) is larger than the few microseconds asked
about:

1. Side by side, in interleaved rounds of --time seconds each: C is
   rw_bench_inference (the C loop over rw_predictor_run that `rewire
   bench infer` prints), Python is model.predict over the same 64-row
   pool, one row a call. Medians over the rounds and the median of each
   round's difference.
2. Paired per call, in one loop that alternates them: model.predict(row)
   against the bare cffi call lib.rw_predictor_run with its pointers made
   beforehand; each call timed alone, so a hiccup hits one call, not a
   whole measurement. The median of the per-call differences is the
   package's own cost; what any Python caller pays to reach C (cffi's
   crossing) is measured beside it as a call of rw_model_inputs.
   Python's total over C = the two added.

    PYTHONPATH=python /usr/bin/python3 python/bench/predict_overhead.py [--threads 1]
"""
import argparse
import statistics
import sys
import time

import rewire  # before numpy: see rewire/__init__.py
from rewire._lib import ffi, lib
import numpy as np

med = statistics.median


def c_latency(sizes, sparsity, threads, seconds, seed):
    c = ffi.new("rw_bench_net_config *", lib.rw_bench_net_config_default())
    arr = ffi.new("int[]", sizes)
    c.sizes, c.n_layers = arr, len(sizes) - 1
    c.sparsity, c.distribution, c.batch, c.threads = sparsity, 2, 1, threads
    c.repeats, c.min_seconds, c.seed = 1, seconds, seed
    row = ffi.new("rw_bench_net_row *")
    if lib.rw_bench_inference(c, row) != 0:
        sys.exit("rw_bench_inference: " + ffi.string(lib.rw_last_error()).decode())
    return row.seconds


def loop(fn, rows, seconds):
    calls, start = 0, time.perf_counter()
    while True:
        for r in rows:
            fn(r)
        calls += len(rows)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / calls


def paired(a, b, rows, calls):
    """Per-call times of a and b, alternating (which goes first alternates too)."""
    now = time.perf_counter_ns
    ta, tb = [], []
    for i in range(calls):
        r = rows[i % len(rows)]
        first, second, t1, t2 = (a, b, ta, tb) if i % 2 == 0 else (b, a, tb, ta)
        t0 = now()
        first(r)
        t_mid = now()
        second(r)
        t_end = now()
        t1.append(t_mid - t0)
        t2.append(t_end - t_mid)
    return ta, tb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", default="1000,1000,1000")
    ap.add_argument("--sparsity", type=float, default=0.95)
    ap.add_argument("--threads", type=int, default=0, help="0: the current setting")
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--time", type=float, default=0.1, help="seconds per measurement (0.1)")
    ap.add_argument("--calls", type=int, default=20000, help="paired calls (20000)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    sizes = [784] + [int(h) for h in a.hidden.split(",")] + [10]
    threads = a.threads or rewire.get_num_threads()
    rewire.set_num_threads(threads)
    model = rewire.Model.mlp(sizes, a.sparsity, init="erk", seed=a.seed)
    pool = np.random.default_rng(a.seed).random((64, 784), dtype=np.float32)
    rows = [pool[i:i + 1] for i in range(64)]
    predict = model.predict
    pred = ffi.new("rw_predictor **")
    lib.rw_predictor_create(model._handle.ptr, 256, pred)
    out = np.empty((1, 10), np.float32)
    ptrs = {id(r): ffi.from_buffer("float[]", r) for r in rows}
    optr = ffi.from_buffer("float[]", out)
    run, p0 = lib.rw_predictor_run, pred[0]

    def bare(r):
        return run(p0, ptrs[id(r)], 1, optr)

    for r in rows:
        predict(r), bare(r)
    k = rewire.kernels()
    print("predict_overhead: %s MLP, sparsity %g (ERK), batch 1, %d threads, kernels %s, cpu %s"
          % ("-".join(map(str, sizes)), a.sparsity, threads, k["chosen"], k["cpu"]))

    print("\n1. side by side, %d rounds of %.2f s each (us per call; bare cffi: a Python loop "
          "calling rw_predictor_run with ready pointers)" % (a.rounds, a.time))
    print("round   C (rewire bench infer)   Python model.predict   bare cffi   Python - C")
    cs, ps, bs = [], [], []
    for i in range(a.rounds):
        c = c_latency(sizes, a.sparsity, threads, a.time, a.seed)
        p = loop(predict, rows, a.time)
        b = loop(bare, rows, a.time)
        cs.append(c), ps.append(p), bs.append(b)
        print("%5d %24.2f %22.2f %11.2f %12.2f" % (i + 1, c * 1e6, p * 1e6, b * 1e6, (p - c) * 1e6))
    diffs = [p - c for p, c in zip(ps, cs)]
    print("median %23.2f %22.2f %11.2f %12.2f" % (med(cs) * 1e6, med(ps) * 1e6, med(bs) * 1e6,
                                                  med(diffs) * 1e6))
    print("best %25.2f %22.2f %11.2f %12.2f" % (min(cs) * 1e6, min(ps) * 1e6, min(bs) * 1e6,
                                                (min(ps) - min(cs)) * 1e6))

    print("\n2. paired per call, %d calls each (us)" % a.calls)
    tp, tb = paired(predict, bare, rows, a.calls)
    d = [x - y for x, y in zip(tp, tb)]
    inputs, mp = lib.rw_model_inputs, model._handle.ptr
    n = 200000
    t0 = time.perf_counter()
    for _ in range(n):
        inputs(mp)
    t1 = time.perf_counter()
    for _ in range(n):
        pass
    t2 = time.perf_counter()
    crossing = max(0.0, ((t1 - t0) - (t2 - t1)) / n)
    print("model.predict median %.2f, bare cffi rw_predictor_run median %.2f"
          % (med(tp) / 1e3, med(tb) / 1e3))
    print("the package's own cost (median per-call difference): %.2f" % (med(d) / 1e3))
    print("cffi's crossing (a call of rw_model_inputs): %.2f" % (crossing * 1e6))
    total = med(d) / 1e3 + crossing * 1e6
    print("Python over C = %.2f" % total)
    print("result: side_by_side_c_us=%.2f side_by_side_python_us=%.2f side_by_side_diff_us=%.2f "
          "best_c_us=%.2f best_python_us=%.2f package_us=%.2f crossing_us=%.2f overhead_us=%.2f"
          % (med(cs) * 1e6, med(ps) * 1e6, med(diffs) * 1e6, min(cs) * 1e6, min(ps) * 1e6,
             med(d) / 1e3, crossing * 1e6, total))
    lib.rw_predictor_free(pred[0])


if __name__ == "__main__":
    main()
