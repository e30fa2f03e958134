"""Gives the PyTorch peers their best BLAS and says which one ran.

Debian's libopenblas-dev points libblas.so.3 at OpenBLAS's pthread build;
PyTorch's own OpenMP threads then fight OpenBLAS's pthreads over the cores
and dense training drops to about a quarter of its speed. The OpenMP build
of OpenBLAS (libopenblas0-openmp) shares PyTorch's OpenMP runtime, so the
peers restart themselves with it first on the library path when it is
installed (PEER_BLAS=system keeps the system's choice)."""
import os
import sys

OPENMP_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


def use_openmp_blas():
    """Re-executes this script with OpenBLAS's OpenMP build on
    LD_LIBRARY_PATH (once; the dynamic loader reads it only at start)."""
    if os.environ.get("PEER_BLAS", "openmp") == "system":
        return
    if not os.path.exists(os.path.join(OPENMP_DIR, "libblas.so.3")):
        print(f"# peer: {OPENMP_DIR} is not installed (apt-get install libopenblas0-openmp); "
              "PyTorch runs on the system BLAS", file=sys.stderr)
        return
    path = os.environ.get("LD_LIBRARY_PATH", "")
    if path.split(":")[0] == OPENMP_DIR:
        return
    env = dict(os.environ, LD_LIBRARY_PATH=OPENMP_DIR + (":" + path if path else ""))
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def blas_in_use():
    """The BLAS library this process mapped (after torch ran a product)."""
    import torch
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            name = line.split()[-1] if len(line.split()) >= 6 else ""
            if "blas" in os.path.basename(name):
                libs.add(name)
    return ",".join(sorted(libs)) or "unknown"
