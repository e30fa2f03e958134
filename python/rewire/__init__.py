"""rewire: truly sparse neural networks (CSR weights, zeros never stored or
multiplied), from Python.

    import rewire
    result = rewire.train(data="fashion-mnist", hidden=[300, 100], sparsity=0.98,
                          dst="rigl", epochs=3, out="rigl.safetensors")
    model = rewire.Model.load("rigl.safetensors")
    probs = model.predict(x)            # x: float32 [batch, 784], pixels in [0, 1]

The package calls librewire.so through cffi (ABI mode: nothing to compile).
README.md, section "Python", has the whole tour."""

# The library is loaded before numpy: numpy may load the pthreads build of
# OpenBLAS under the soname rewire's OpenMP build also has, and the first
# one loaded is the one both get (see _warn_openblas).
from ._lib import Error, LIBRARY_PATH, HEADER_PATH, lib as _clib, ffi as _ffi, openblas_build

from .model import Model, Parameter, LayerInfo, EvalResult  # noqa: E402
from .data import Dataset  # noqa: E402
from .train import (train, Trainer, RunResult, Progress, EpochReport,  # noqa: E402
                    TopologyEvent)
from .prune import prune  # noqa: E402
from . import lm  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Error", "Model", "Parameter", "LayerInfo", "EvalResult", "Dataset", "train", "Trainer",
           "RunResult", "Progress", "EpochReport", "TopologyEvent", "prune", "lm", "from_torch",
           "set_num_threads", "get_num_threads", "kernels", "LIBRARY_PATH", "HEADER_PATH"]


def from_torch(module, normalization=None):
    """A rewire model from a torch.nn.Sequential of Linear and ReLU (or
    LeakyReLU, Tanh, GELU(approximate='tanh')) modules, optionally led by
    the Normalize module to_torch() makes. A Linear whose weight is a
    sparse CSR tensor, or carries a mask (torch.nn.utils.prune's
    weight_mask), becomes a CSR layer holding the mask's positions; any
    other Linear stays dense. `normalization` = (mean, std) of the raw
    features, if the Sequential has no Normalize module."""
    return Model.from_torch(module, normalization)


def set_num_threads(n):
    """OpenMP threads for the calling thread's calls and the runs it starts
    (results do not depend on it for sparse layers)."""
    _clib.rw_set_num_threads(int(n))


def get_num_threads():
    return _clib.rw_get_num_threads()


def kernels():
    """The kernel family in use and what the CPU offers (rw_kernel_get_info)."""
    k = _ffi.new("rw_kernel_info *")
    _clib.rw_kernel_get_info(k)
    s = lambda p: None if p == _ffi.NULL else _ffi.string(p).decode()  # noqa: E731
    return {"cpu": s(k.cpu), "features": s(k.features), "runnable": s(k.runnable),
            "chosen": s(k.chosen), "requested": s(k.requested), "openblas": openblas_build()}


def _warn_openblas():
    if openblas_build() == "pthreads":
        import warnings
        warnings.warn("rewire: the pthreads build of OpenBLAS was loaded before rewire (by numpy or "
                      "another module imported first), and rewire's dense layers share it: its "
                      "threads compete with rewire's OpenMP threads. Import rewire before numpy to "
                      "get the OpenMP build (libopenblas-openmp).", RuntimeWarning, stacklevel=3)


_warn_openblas()
