"""Shared fixtures. rewire is imported first so that its OpenMP build of
OpenBLAS is the one loaded (numpy's import would load the pthreads one)."""
import os
import shutil
import subprocess

import rewire  # noqa: F401  (first: see the docstring)
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = os.path.join(REPO, "tests", "data", "fashion-small")


def _cli():
    env = os.environ.get("REWIRE_CLI")
    if env:
        return env
    lib_dir = os.path.dirname(os.path.realpath(rewire.LIBRARY_PATH)) if os.sep in rewire.LIBRARY_PATH else ""
    for c in (os.path.join(lib_dir, "rewire"), os.path.join(REPO, "build", "rewire"),
              shutil.which("rewire")):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


CLI = _cli()
needs_cli = pytest.mark.skipif(CLI is None, reason="the rewire command is not built")


def run_cli(*args, check=True):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError("rewire %s failed (%d): %s" % (" ".join(map(str, args)), r.returncode,
                                                           r.stderr))
    return r


@pytest.fixture(scope="session")
def small():
    return SMALL


@pytest.fixture(scope="session")
def small_sets():
    return (rewire.Dataset.load(SMALL, "train"), rewire.Dataset.load(SMALL, "test"))


@pytest.fixture
def mlp():
    m = rewire.Model.mlp([784, 64, 32, 10], 0.9, seed=2, normalization=(0.28, 0.35))
    yield m
    m.close()


TIMING = {"seconds", "train_seconds", "samples_per_second", "update_seconds",
          "total_update_seconds", "tokens_per_second"}


def jsonl_without_timings(path):
    import json
    out = []
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            out.append({k: v for k, v in o.items() if k not in TIMING})
    return out


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def random_x(n, features=784, seed=0):
    return np.random.default_rng(seed).random((n, features), dtype=np.float32)
