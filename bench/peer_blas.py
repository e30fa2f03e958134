"""Gives the PyTorch peers their best BLAS and says which one ran.

Debian's libopenblas-dev points libblas.so.3 at OpenBLAS's pthread build;
PyTorch's own OpenMP threads then fight OpenBLAS's pthreads over the cores
and dense training drops to about a quarter of its speed. The OpenMP build
of OpenBLAS (libopenblas0-openmp) shares PyTorch's OpenMP runtime, so the
peers restart themselves with it first on the library path when it is
installed (PEER_BLAS=system keeps the system's choice).

OpenBLAS 0.3.21 picks its kernels by CPU model and does not know Zen 5;
these machines set OPENBLAS_CORETYPE=Haswell (AVX2 kernels) in the
environment. On a CPU with AVX-512 the peers ask for OpenBLAS's AVX-512
kernels (SkylakeX) instead, which made PyTorch's dense MLP training
2.7x and 9.2x faster in two interleaved rounds on a loaded Zen 5 (a quiet
measurement is still to be made; PEER_CORETYPE=keep
leaves the environment's choice; PEER_CORETYPE=NAME asks for NAME)."""
import os
import sys

OPENMP_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


def best_coretype():
    """OpenBLAS's kernel family for this CPU: SkylakeX where AVX-512 F, BW,
    DQ and VL are all present, else the environment's choice (None)."""
    want = os.environ.get("PEER_CORETYPE", "auto")
    if want == "keep":
        return None
    if want != "auto":
        return want
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return None
    return "SkylakeX" if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= set(flags) else None


def use_openmp_blas():
    """Re-executes this script once with OpenBLAS's OpenMP build first on
    LD_LIBRARY_PATH and its best kernel family in OPENBLAS_CORETYPE: the
    dynamic loader and OpenBLAS read them only when the process starts."""
    env = dict(os.environ)
    core = best_coretype()
    if core:
        env["OPENBLAS_CORETYPE"] = core
    if os.environ.get("PEER_BLAS", "openmp") != "system":
        if not os.path.exists(os.path.join(OPENMP_DIR, "libblas.so.3")):
            print(f"# peer: {OPENMP_DIR} is not installed (apt-get install "
                  "libopenblas0-openmp); PyTorch runs on the system BLAS", file=sys.stderr)
        else:
            path = env.get("LD_LIBRARY_PATH", "")
            if path.split(":")[0] != OPENMP_DIR:
                env["LD_LIBRARY_PATH"] = OPENMP_DIR + (":" + path if path else "")
    if env != dict(os.environ):
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def blas_in_use():
    """The BLAS library this process mapped (after torch ran a product),
    with the OpenBLAS kernel family asked for."""
    import torch
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            name = line.split()[-1] if len(line.split()) >= 6 else ""
            if "blas" in os.path.basename(name):
                libs.add(name)
    core = os.environ.get("OPENBLAS_CORETYPE", "auto")
    return (",".join(sorted(libs)) or "unknown") + f" (OPENBLAS_CORETYPE {core})"
