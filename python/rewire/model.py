"""rewire.Model: a model of the library (an MLP classifier or a GPT), its
files, its parameters as numpy arrays that share the model's memory, and
prediction."""

import threading
from dataclasses import dataclass, field

import numpy as np

from . import _arrays
from ._lib import Error, check, cstr, ffi, lib

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "gelu", "none")
DISTRIBUTIONS = ("uniform", "er", "erk")
STORAGES = ("dense", "csr", "nm")

# A predictor keeps the activations of this many samples; a wide model's
# batch is cut so they stay under PREDICT_BYTES (as rw_evaluate does).
PREDICT_BATCH = 256
PREDICT_BYTES = 64 << 20

_FLOATS = ffi.typeof("float[]")
_F32 = np.dtype(np.float32)
_from_buffer = ffi.from_buffer
_ndarray = np.ndarray
_empty = np.empty
_run = lib.rw_predictor_run
_logits = lib.rw_predictor_logits


def choice(value, names, what):
    """The index of `value` among `names`, or a ValueError listing them."""
    if isinstance(value, str) and value in names:
        return names.index(value)
    raise ValueError("%s must be one of %s, got %r" % (what, ", ".join(names), value))


class _Handle:
    """Owns an rw_model* and its predictor. The Model holds one, and so does
    every numpy view of the model's arrays: the memory is freed when the
    last of them goes, so closing a model never leaves a view dangling."""

    def __init__(self, ptr):
        self.ptr = ptr
        self.predictor = None
        self.lock = threading.Lock()  # one predictor serves one thread at a time
        self.views = _arrays.new_registry()
        self.version = 0  # counts topology changes: parameters made before are stale
        self.busy = None  # what holds the model now ("training"), or None

    def drop_predictor(self):
        if self.predictor is not None:
            lib.rw_predictor_free(self.predictor)
            self.predictor = None

    def __del__(self):
        if getattr(self, "ptr", None) is not None:
            self.drop_predictor()
            lib.rw_model_free(self.ptr)
            self.ptr = None


@dataclass(frozen=True)
class LayerInfo:
    """One layer as rw_layer_info reports it."""
    name: str
    kind: str          # "sparse", "nm", "dense", "layer_norm", "embedding", ...
    has_weights: bool
    inputs: int
    outputs: int
    sparse: bool       # CSR storage
    nm: tuple          # (N, M), or None
    activation: str
    nonzeros: int
    sparsity: float
    bytes: int
    dense_bytes: int


@dataclass
class EvalResult:
    accuracy: float
    loss: float
    count: int
    class_accuracy: list = field(default_factory=list)
    class_count: list = field(default_factory=list)


def eval_result(r):
    k = r.classes
    return EvalResult(r.accuracy, r.loss, r.count, [r.class_accuracy[c] for c in range(k)],
                      [r.class_count[c] for c in range(k)])


class Parameter:
    """A parameter of a model (rewire.h, "Parameters"), its arrays shared with
    the model: `values` is writable (writes change the model), `indptr`,
    `indices` (CSR) and `offsets` (N:M) are read-only. For a dense matrix
    `values` has its [rows, cols] shape; for a vector, [rows]; for CSR and
    N:M, the stored values in row order.

    The arrays stay valid for as long as they exist: they keep the model's
    memory alive even after Model.close(). A change of topology (dynamic
    sparse training, pruning, to_nm) is refused while any of them exists,
    and makes this Parameter stale: ask model.parameters() again."""

    def __init__(self, model, handle, index):
        self._model, self._handle, self._index = model, handle, index
        self._version = handle.version
        v = self._view()
        self.name = ffi.string(v.name).decode()
        self.layer = ffi.string(v.layer).decode()
        self.layer_index = v.layer_index
        self.is_weight = bool(v.is_weight)
        self.storage = STORAGES[v.storage]
        self.rows, self.cols = v.rows, v.cols
        self.shape = (v.rows, v.cols) if (v.is_weight or v.cols > 1) else (v.rows,)
        self.nm = (v.nm_n, v.nm_m) if v.storage == 2 else None

    def _view(self):
        h = self._handle
        if h.ptr is None or self._model._handle is not h:
            raise Error("parameter of a closed model", "invalid argument")
        if h.version != self._version:
            raise Error("parameter %s is stale: the model's topology changed since "
                        "model.parameters() (ask for it again)" % getattr(self, "name", "?"),
                        "invalid argument")
        out = ffi.new("rw_param_view *")
        check(lib.rw_model_param(h.ptr, self._index, out))
        return out

    @property
    def nnz(self):
        """Values stored (rows * cols for a dense matrix)."""
        return self._view().count

    @property
    def values(self):
        v = self._view()
        shape = self.shape if self.storage == "dense" else (v.count,)
        return _arrays.view(self._handle, v.values, shape, np.float32, True, self._handle.views)

    @property
    def indptr(self):
        v = self._view()
        if self.storage != "csr":
            return None
        return _arrays.view(self._handle, v.indptr, (v.rows + 1,), np.int32, False, self._handle.views)

    @property
    def indices(self):
        v = self._view()
        if self.storage != "csr":
            return None
        return _arrays.view(self._handle, v.indices, (v.count,), np.int32, False, self._handle.views)

    @property
    def offsets(self):
        v = self._view()
        if self.storage != "nm":
            return None
        return _arrays.view(self._handle, v.offsets, (v.count,), np.uint8, False, self._handle.views)

    def to_dense(self):
        """A new dense array of the parameter's shape (zeros where nothing is stored)."""
        if self.storage == "dense":
            return np.array(self.values)
        out = np.zeros((self.rows, self.cols), np.float32)
        values = self.values
        if self.storage == "csr":
            indptr, indices = self.indptr, self.indices
            rows = np.repeat(np.arange(self.rows), np.diff(indptr))
            out[rows, indices] = values
        else:
            n, m = self.nm
            slots = self.cols // m * n
            k = np.arange(self.rows * slots)
            cols = (k % slots) // n * m + self.offsets
            out[k // slots, cols] = values
        return out

    def to_torch(self):
        """The parameter as a torch tensor: a CSR matrix as
        torch.sparse_csr_tensor (int64 indices, values copied), anything
        else dense. Needs PyTorch."""
        from ._torch import parameter_to_torch
        return parameter_to_torch(self)

    def __repr__(self):
        return "<rewire.Parameter %s %s %s, %d stored>" % (
            self.name, "x".join(map(str, self.shape)), self.storage, self.nnz)


class Model:
    """A rewire model. Make one with Model.mlp(...), Model.load(path),
    rewire.lm.gpt(...), rewire.from_torch(...) or by training (rewire.train).
    Use it as a context manager, or close() it, to free its memory at once
    (numpy views of its parameters keep that memory until they go)."""

    def __init__(self, ptr):
        if ptr == ffi.NULL:
            raise Error("no model", "invalid argument")
        self._handle = _Handle(ptr)
        self._inputs = lib.rw_model_inputs(ptr)
        self._classes = lib.rw_model_classes(ptr)
        self._lm = lib.rw_model_context(ptr) > 0

    # ---- making, loading, saving ----------------------------------------

    @classmethod
    def mlp(cls, sizes, sparsity=0.0, *, init="erk", layer_sparsity=None, dense_first=False,
            dense_last=False, activation="relu", leaky_slope=0.01, layer_norm=False, seed=1,
            normalization=(0.0, 1.0)):
        """An MLP classifier: sizes = [inputs, hidden..., classes]. `sparsity`
        is the overall fraction of zero weights, shared among the layers by
        `init` (uniform, er, erk) unless `layer_sparsity` gives one per layer.
        `normalization` = (mean, std) of the raw features (rewire train uses
        the training set's)."""
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError("sizes must list the inputs, any hidden layers and the classes "
                             "(at least 2 numbers), got %r" % (sizes,))
        c = ffi.new("rw_model_config *", lib.rw_model_config_default())
        keep = [ffi.new("int[]", sizes)]
        c.sizes = keep[0]
        c.n_layers = len(sizes) - 1
        c.sparsity = float(sparsity)
        c.distribution = choice(init, DISTRIBUTIONS, "init")
        if layer_sparsity is not None:
            ls = [float(s) for s in layer_sparsity]
            if len(ls) != len(sizes) - 1:
                raise ValueError("layer_sparsity has %d entries; the model has %d layers"
                                 % (len(ls), len(sizes) - 1))
            keep.append(ffi.new("double[]", ls))
            c.layer_sparsity = keep[-1]
        c.dense_first = bool(dense_first)
        c.dense_last = bool(dense_last)
        c.activation = choice(activation, ACTIVATIONS[:4], "activation")
        c.leaky_slope = float(leaky_slope)
        c.layer_norm = bool(layer_norm)
        c.seed = int(seed)
        out = ffi.new("rw_model **")
        check(lib.rw_model_create(c, out))
        m = cls(out[0])
        m.normalization = normalization
        return m

    @classmethod
    def gpt(cls, **config):
        """A GPT-style language model: rewire.lm.gpt(**config)."""
        from .lm import gpt
        return gpt(**config)

    @classmethod
    def load(cls, path):
        """Loads a model file (or a checkpoint's model), validating every field."""
        out = ffi.new("rw_model **")
        check(lib.rw_model_load(cstr(path), out))
        return cls(out[0])

    def save(self, path):
        """Saves atomically (PATH.tmp, fsync, rename)."""
        check(lib.rw_model_save(self._ptr(), cstr(path)))

    def close(self):
        """Frees the model now (or, while views of its arrays exist, when the
        last goes). Any later call is refused with rewire.Error."""
        h, self._handle = self._handle, None
        if h is not None and h.busy:
            self._handle = h
            raise Error("the model is %s; it cannot be closed now" % h.busy, "invalid argument")
        if h is not None:
            with h.lock:
                h.drop_predictor()

    @property
    def closed(self):
        return self._handle is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ptr(self):
        h = self._handle
        if h is None:
            raise Error("the model is closed", "invalid argument")
        if h.busy:
            raise Error("the model is %s (in another thread); wait for it to finish" % h.busy,
                        "invalid argument")
        return h.ptr

    def _topology_change(self, what):
        """Called before anything that may move the model's arrays: refuses
        while numpy views of them exist, then makes Parameters stale."""
        h = self._handle
        self._ptr()
        live = len(h.views)
        if live:
            raise Error("%s would change the model's topology and move its arrays, but %d numpy "
                        "view%s of them %s alive (from model.parameters()); delete them or keep "
                        "copies (array.copy()) first" % (what, live, "s" if live > 1 else "",
                                                         "are" if live > 1 else "is"),
                        "invalid argument")
        with h.lock:
            h.drop_predictor()
        h.version += 1

    # ---- what it is ------------------------------------------------------

    @property
    def inputs(self):
        """Features per sample (0 for a language model, which reads tokens)."""
        return self._inputs

    @property
    def classes(self):
        """Outputs per sample: classes, or a language model's vocabulary."""
        return self._classes

    @property
    def is_language_model(self):
        return self._lm

    @property
    def context(self):
        """The longest sequence a language model takes (0 for a classifier)."""
        return lib.rw_model_context(self._ptr())

    @property
    def sparsity(self):
        return lib.rw_model_sparsity(self._ptr())

    @property
    def normalization(self):
        """(mean, std): raw features x become (x - mean) / std before the
        first layer. Stored in the model file."""
        mean, std = ffi.new("float *"), ffi.new("float *")
        lib.rw_model_get_normalization(self._ptr(), mean, std)
        return (mean[0], std[0])

    @normalization.setter
    def normalization(self, value):
        mean, std = value
        if not std > 0:
            raise ValueError("normalization std must be positive, got %r" % (std,))
        lib.rw_model_set_normalization(self._ptr(), float(mean), float(std))

    @property
    def feature_normalization(self):
        """(mean, std), float32 [inputs] each, when every feature is
        standardised on its own (rewire train --normalize feature; a
        feature whose std is 0 feeds 0; 0 and 0 for one the model does not
        read); None in the global form (`normalization`)."""
        if self._lm:
            return None
        mean = np.empty(self.inputs, np.float32)
        std = np.empty(self.inputs, np.float32)
        form = lib.rw_model_normalization(self._ptr(), ffi.from_buffer("float[]", mean),
                                          ffi.from_buffer("float[]", std))
        return (mean, std) if form == 1 else None

    def set_feature_normalization(self, mean, std):
        """Standardises every feature with its own mean and std ([inputs]
        each; Dataset.feature_stats of the training set); `normalization =`
        returns to the global form."""
        mean = np.ascontiguousarray(mean, np.float32)
        std = np.ascontiguousarray(std, np.float32)
        if mean.shape != (self.inputs,) or std.shape != (self.inputs,):
            raise ValueError("mean and std must have shape (%d,), got %s and %s"
                             % (self.inputs, mean.shape, std.shape))
        check(lib.rw_model_set_feature_normalization(self._ptr(), ffi.from_buffer("float[]", mean),
                                                     ffi.from_buffer("float[]", std)))

    @property
    def kept_inputs(self):
        """The inputs the first layer reads, ascending, int32: all of them
        unless some were removed (keep_inputs, train(input_budget=K))."""
        if self._lm:
            return np.arange(0, dtype=np.int32)
        n = lib.rw_model_kept_inputs(self._ptr(), ffi.NULL)
        out = np.empty(n, np.int32)
        lib.rw_model_kept_inputs(self._ptr(), ffi.from_buffer("int32_t[]", out))
        return out

    def keep_inputs(self, index):
        """Keeps only the inputs in `index` (ascending, each one still read):
        the first layer drops the others' connections; predict and evaluate
        still take every feature and pick these out."""
        idx = np.ascontiguousarray(index, np.int32)
        if idx.ndim != 1:
            raise ValueError("index must be one-dimensional, got shape %s" % (idx.shape,))
        check(lib.rw_model_keep_inputs(self._ptr(), ffi.from_buffer("int32_t[]", idx), len(idx)))

    def input_importance(self):
        """(connections int32 [inputs], mass float32 [inputs]): each input's
        first-layer connections and the sum of their |w| (rewire info
        --inputs); 0 for an input the model does not read."""
        conn = np.empty(self.inputs, np.int32)
        mass = np.empty(self.inputs, np.float32)
        check(lib.rw_model_input_importance(self._ptr(), ffi.from_buffer("int32_t[]", conn),
                                            ffi.from_buffer("float[]", mass)))
        return conn, mass

    @property
    def layers(self):
        p = self._ptr()
        out = []
        li = ffi.new("rw_layer_info *")
        for l in range(lib.rw_model_layer_count(p)):
            check(lib.rw_model_layer_info(p, l, li))
            out.append(LayerInfo(ffi.string(li.name).decode(), ffi.string(li.kind).decode(),
                                 bool(li.has_weights), getattr(li, "in"), li.out, bool(li.sparse),
                                 (li.nm_n, li.nm_m) if li.nm_m else None,
                                 ACTIVATIONS[li.activation] if 0 <= li.activation < 5 else "?",
                                 li.nonzeros, li.sparsity, li.bytes, li.dense_bytes))
        return out

    def info(self):
        """What `rewire info --json` tells of a model, as a dict."""
        layers = self.layers
        weights = [l for l in layers if l.has_weights]
        mean, std = self.normalization
        return {
            "inputs": self.inputs, "classes": self.classes, "sparsity": self.sparsity,
            "nonzeros": sum(l.nonzeros for l in weights),
            "bytes": sum(l.bytes for l in layers), "dense_bytes": sum(l.dense_bytes for l in weights),
            "input_mean": mean, "input_std": std,
            "normalize": "global" if self.feature_normalization is None else "feature",
            "inputs_kept": len(self.kept_inputs), "language_model": self.is_language_model,
            "context": self.context,
            "layers": [l.__dict__.copy() for l in layers],
        }

    def get_info(self, key):
        """Text the model keeps in its files under "info.<key>" (None if absent)."""
        s = lib.rw_model_get_info(self._ptr(), cstr(key, "a key"))
        return None if s == ffi.NULL else ffi.string(s).decode()

    def set_info(self, key, value):
        check(lib.rw_model_set_info(self._ptr(), cstr(key, "a key"), cstr(value, "a value")))

    def fan(self, layer):
        """(fan_in [out], fan_out [in]): stored connections per neuron of a layer."""
        li = self.layers[layer]
        fi = np.zeros(li.outputs, np.int32)
        fo = np.zeros(li.inputs, np.int32)
        check(lib.rw_model_layer_fan(self._ptr(), layer, ffi.from_buffer("int32_t[]", fi), ffi.from_buffer("int32_t[]", fo)))
        return fi, fo

    def __repr__(self):
        if self.closed:
            return "<rewire.Model (closed)>"
        kinds = ", ".join("%s %d->%d %s" % (l.name, l.inputs, l.outputs, l.kind)
                          for l in self.layers if l.has_weights)
        return "<rewire.Model %s | sparsity %.4f>" % (kinds, self.sparsity)

    # ---- parameters ------------------------------------------------------

    def parameters(self):
        """Every parameter (weights, biases, LayerNorm's), in the model's order."""
        p = self._ptr()
        return [Parameter(self, self._handle, i) for i in range(lib.rw_model_param_count(p))]

    def parameter(self, name):
        for prm in self.parameters():
            if prm.name == name:
                return prm
        raise KeyError("the model has no parameter %r (it has %s)"
                       % (name, ", ".join(q.name for q in self.parameters())))

    # ---- prediction ------------------------------------------------------

    def _predictor(self, h):
        if h.predictor is None:
            per_sample = self._inputs + sum(l.outputs for l in self.layers)
            batch = max(8, min(PREDICT_BATCH, PREDICT_BYTES // (4 * max(per_sample, 1))))
            out = ffi.new("rw_predictor **")
            check(lib.rw_predictor_create(h.ptr, batch, out))
            h.predictor = out[0]
        return h.predictor

    def _checked(self, x):
        """x if it is what predict takes; else the error that says why."""
        self._ptr()
        if self._lm:
            raise Error("the model is a language model (it reads tokens, not features): use "
                        "rewire.lm.generate or rewire.lm.evaluate", "invalid argument")
        return _arrays.samples(x, self._inputs)

    def _call(self, fn, x, n):
        out = _empty((n, self._classes), _F32)
        if n == 0:
            return out
        h = self._handle
        lock = h.lock
        lock.acquire()
        try:
            rc = fn(h.predictor or self._predictor(h), _from_buffer(_FLOATS, x), n,
                    _from_buffer(_FLOATS, out))
        finally:
            lock.release()
        if rc:
            check(rc)
        return out

    def predict(self, x):
        """Class probabilities [batch, classes] of x [batch, features]: float32,
        C-contiguous, raw features as the training data holds them (the model's
        normalisation is applied inside, as `rewire eval` does). The array is
        read where it lies (no copy); the call releases the GIL."""
        # The common case in as few steps as Python allows (a call at batch
        # 1 is a few microseconds of C); anything else goes through the
        # checks that say what is wrong. from_buffer refuses an array that
        # is not C-contiguous.
        h = self._handle
        try:
            n, f = x.shape
            if f != self._inputs or x.dtype is not _F32 or h.busy is not None:
                raise LookupError
            xp = _from_buffer(_FLOATS, x)
        except Exception:
            x = self._checked(x)
            h, n = self._handle, x.shape[0]
            xp = _from_buffer(_FLOATS, x)
        out = _empty((n, self._classes), _F32)
        if n == 0:
            return out
        lock = h.lock
        lock.acquire()
        try:
            rc = _run(h.predictor or self._predictor(h), xp, n, _from_buffer(_FLOATS, out))
        finally:
            lock.release()
        if rc:
            check(rc)
        return out

    def logits(self, x):
        """The last layer's outputs before the softmax, [batch, classes]."""
        x = self._checked(x)
        return self._call(_logits, x, x.shape[0])

    def evaluate(self, data):
        """Accuracy and mean cross-entropy on a rewire.Dataset, as `rewire eval`."""
        from .data import Dataset
        if not isinstance(data, Dataset):
            raise TypeError("evaluate takes a rewire.Dataset, got %s" % type(data).__name__)
        r = ffi.new("rw_eval_result *")
        check(lib.rw_evaluate(self._ptr(), data._ptr(), r))
        return eval_result(r)

    # ---- changing the model ----------------------------------------------

    def to_nm(self, n, m, layer=None):
        """Converts the weights of `layer` (or every layer whose inputs m
        divides) to N:M storage, keeping the n largest of every m inputs."""
        self._topology_change("to_nm")
        check(lib.rw_model_to_nm(self._ptr(), -1 if layer is None else int(layer), int(n), int(m)))

    def to_torch(self):
        """A torch.nn.Sequential computing the same logits: a normalisation
        module, then each layer (CSR weights as sparse CSR tensors), its
        activation. Needs PyTorch."""
        from ._torch import model_to_torch
        return model_to_torch(self)

    @classmethod
    def from_torch(cls, module, normalization=None):
        """See rewire.from_torch."""
        from ._torch import model_from_torch
        return model_from_torch(module, normalization)
