"""PyTorch interop: a rewire MLP as a torch.nn.Sequential (sparse layers as
torch.sparse_csr_tensor weights) and back, and a Sequential of Linear and
activation modules (dense, sparse CSR, or masked by torch.nn.utils.prune)
as a rewire model. torch is imported only here, so the package works
without it."""

import os
import tempfile
import warnings

import numpy as np

from . import _safetensors
from ._lib import Error


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("this needs PyTorch (Debian: apt-get install python3-torch)") from None
    return torch


def _normalize_class():
    torch = _torch()

    class Normalize(torch.nn.Module):
        """x -> (x - mean) / std: the input normalisation a rewire model
        applies before its first layer. With `index` ([K] of the `features`
        raw inputs) only those inputs are read; with `feature_mean` and
        `feature_std` ([K]) each is standardised on its own, and one whose
        std is 0 gives 0 (rewire train --normalize feature). mean and std
        are then the global pair the model file also keeps."""

        def __init__(self, mean, std, feature_mean=None, feature_std=None, index=None,
                     features=None):
            super().__init__()
            self.register_buffer("mean", torch.tensor(float(mean), dtype=torch.float32))
            self.register_buffer("std", torch.tensor(float(std), dtype=torch.float32))
            if index is not None:
                self.register_buffer("index", torch.as_tensor(np.asarray(index, np.int64)))
                self.register_buffer("features", torch.tensor(int(features), dtype=torch.int64))
            else:
                self.index = None
            if feature_mean is not None:
                self.register_buffer("feature_mean", torch.as_tensor(np.asarray(feature_mean, np.float32)))
                self.register_buffer("feature_std", torch.as_tensor(np.asarray(feature_std, np.float32)))
            else:
                self.feature_mean = self.feature_std = None

        def forward(self, x):
            if self.index is not None:
                x = x.index_select(-1, self.index)
            if self.feature_mean is None:
                return (x - self.mean) / self.std
            live = self.feature_std > 0
            scale = torch.where(live, 1.0 / torch.where(live, self.feature_std, 1.0), 0.0)
            return (x - self.feature_mean) * scale

    return Normalize


_NORMALIZE = None


def Normalize(mean, std, **per_feature):
    global _NORMALIZE
    if _NORMALIZE is None:
        _NORMALIZE = _normalize_class()
    return _NORMALIZE(mean, std, **per_feature)


def parameter_to_torch(p):
    torch = _torch()
    if p.storage == "dense":
        return torch.from_numpy(np.array(p.values))
    if p.storage == "csr":
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(torch.from_numpy(p.indptr.astype(np.int64)),
                                           torch.from_numpy(p.indices.astype(np.int64)),
                                           torch.from_numpy(np.array(p.values)),
                                           size=(p.rows, p.cols))
    return torch.from_numpy(p.to_dense()).to_sparse_csr()


def _activation(name, slope):
    nn = _torch().nn
    return {"relu": nn.ReLU, "tanh": nn.Tanh}.get(name, lambda: None)() if name in ("relu", "tanh") \
        else nn.LeakyReLU(slope) if name == "leaky_relu" \
        else nn.GELU(approximate="tanh") if name == "gelu" else None


def model_to_torch(model):
    """A Sequential computing the model's logits: Normalize, then each layer
    (nn.Linear whose weight is a sparse CSR tensor for a CSR or N:M layer,
    dense otherwise; nn.LayerNorm), its activation module."""
    torch = _torch()
    nn = torch.nn
    if model.is_language_model:
        raise Error("to_torch takes an MLP classifier, not a language model", "invalid argument")
    slope = _leaky_slope(model)
    mean, std = model.normalization
    kept = model.kept_inputs
    per_feature = {}
    if len(kept) < model.inputs:
        per_feature = dict(index=kept, features=model.inputs)
    fn = model.feature_normalization
    if fn is not None:
        per_feature.update(feature_mean=fn[0][kept], feature_std=fn[1][kept])
    mods = [Normalize(mean, std, **per_feature)]
    params = {p.name: p for p in model.parameters()}
    for li in model.layers:
        if li.kind == "layer_norm":
            ln = nn.LayerNorm(li.inputs, eps=1e-5)
            with torch.no_grad():
                ln.weight.copy_(torch.from_numpy(np.array(params[li.name + ".weight"].values)))
                ln.bias.copy_(torch.from_numpy(np.array(params[li.name + ".bias"].values)))
            mods.append(ln)
        elif li.has_weights:
            # Made on the meta device: no dense out x in array is ever allocated.
            lin = nn.Linear(li.inputs, li.outputs, device="meta")
            w = params[li.name + ".weight"]
            lin.bias = nn.Parameter(torch.from_numpy(np.array(params[li.name + ".bias"].values)))
            sparse = w.storage != "dense"
            lin.weight = nn.Parameter(parameter_to_torch(w), requires_grad=not sparse)
            mods.append(lin)
        else:
            raise Error("to_torch: layer %s of kind %s has no PyTorch counterpart here"
                        % (li.name, li.kind), "invalid argument")
        act = _activation(li.activation, slope)
        if act is not None:
            mods.append(act)
    return nn.Sequential(*mods)


def _leaky_slope(model):
    if not any(li.activation == "leaky_relu" for li in model.layers):
        return 0.01
    return _slope_of(model)


def _slope_of(model):
    # The slope is a model-wide setting kept in files; read it from one.
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.safetensors")
        model.save(path)
        meta = _safetensors.read_metadata(path)
    return float(meta.get("leaky_slope", "0.01"))


def _weight_arrays(torch, lin):
    """(kind, arrays) of a Linear's weight: CSR for a sparse CSR weight or a
    pruning mask, dense otherwise."""
    w = lin.weight.detach()
    mask = getattr(lin, "weight_mask", None)
    if w.layout == torch.sparse_csr:
        return "sparse", (w.crow_indices().numpy().astype(np.int32),
                          w.col_indices().numpy().astype(np.int32),
                          w.values().to(torch.float32).numpy())
    if w.layout != torch.strided:
        raise TypeError("Linear weight of layout %s: expected dense or sparse CSR" % w.layout)
    w = w.to(torch.float32).numpy()
    if mask is None:
        return "dense", (np.ascontiguousarray(w),)
    keep = mask.detach().numpy() != 0
    counts = keep.sum(axis=1)
    indptr = np.zeros(w.shape[0] + 1, np.int32)
    np.cumsum(counts, out=indptr[1:])
    rows, cols = np.nonzero(keep)
    return "sparse", (indptr, cols.astype(np.int32), w[rows, cols].astype(np.float32))


def _input_stage(norm):
    """({version, normalize, features, kept}, tensors) of a Normalize with
    kept inputs or per-feature statistics, as a model file keeps them; None
    for the global form over every input."""
    index = getattr(norm, "index", None)
    fmean = getattr(norm, "feature_mean", None)
    if index is None and fmean is None:
        return None
    tensors = {}
    if index is not None:
        tensors["input.index"] = index.detach().numpy().astype(np.int32)
        features, kept = int(norm.features), len(tensors["input.index"])
    else:
        features = kept = len(fmean)
    if fmean is not None:
        tensors["input.mean"] = fmean.detach().numpy().astype(np.float32)
        tensors["input.std"] = norm.feature_std.detach().numpy().astype(np.float32)
    info = {"version": 1, "normalize": "feature" if fmean is not None else "global",
            "features": features, "kept": kept}
    return info, tensors


def model_from_torch(module, normalization=None):
    torch = _torch()
    nn = torch.nn
    from .model import Model
    if not isinstance(module, nn.Sequential):
        raise TypeError("from_torch takes a torch.nn.Sequential, got %s" % type(module).__name__)
    mods = list(module)
    mean, std = normalization if normalization is not None else (0.0, 1.0)
    stage = None  # the model file's "input" metadata and tensors, if any
    if mods and type(mods[0]).__name__ == "Normalize" and hasattr(mods[0], "mean"):
        if normalization is not None:
            raise ValueError("the Sequential has a Normalize module and normalization was given")
        mean, std = float(mods[0].mean), float(mods[0].std)
        stage = _input_stage(mods[0])
        mods = mods[1:]
    while mods and isinstance(mods[0], nn.Flatten):
        mods = mods[1:]
    while mods and isinstance(mods[-1], (nn.Softmax, nn.LogSoftmax)):
        mods = mods[:-1]  # rewire's predict gives the softmax itself
    layers, tensors, slope = [], {}, None
    n_fc = n_ln = 0
    for i, m in enumerate(mods):
        acts = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.LeakyReLU: "leaky_relu", nn.GELU: "gelu"}
        if type(m) in acts:
            if not layers or layers[-1]["activation"] != "none" or layers[-1]["kind"] == "layer_norm":
                raise TypeError("module %d (%s) does not follow a Linear" % (i, type(m).__name__))
            if isinstance(m, nn.GELU) and m.approximate != "tanh":
                raise TypeError("module %d: rewire's GELU is the tanh form; use "
                                "nn.GELU(approximate='tanh')" % i)
            if isinstance(m, nn.LeakyReLU):
                if slope is not None and slope != m.negative_slope:
                    raise TypeError("LeakyReLU slopes differ; a rewire model has one")
                slope = m.negative_slope
            layers[-1]["activation"] = acts[type(m)]
        elif isinstance(m, nn.Linear):
            n_fc += 1
            name = "fc%d" % n_fc
            kind, arrays = _weight_arrays(torch, m)
            if kind == "sparse":
                tensors[name + ".indptr"], tensors[name + ".indices"], tensors[name + ".values"] = arrays
            else:
                tensors[name + ".weight"] = arrays[0]
            b = m.bias.detach().to(torch.float32).numpy() if m.bias is not None else \
                np.zeros(m.out_features, np.float32)
            tensors[name + ".bias"] = np.ascontiguousarray(b)
            layers.append({"name": name, "kind": kind, "in": m.in_features, "out": m.out_features,
                           "activation": "none"})
        elif isinstance(m, nn.LayerNorm):
            n_ln += 1
            name = "ln%d" % n_ln
            if len(m.normalized_shape) != 1 or not m.elementwise_affine:
                raise TypeError("module %d: LayerNorm over one dimension with weight and bias only" % i)
            tensors[name + ".weight"] = m.weight.detach().to(torch.float32).numpy().copy()
            tensors[name + ".bias"] = m.bias.detach().to(torch.float32).numpy().copy()
            n = m.normalized_shape[0]
            layers.append({"name": name, "kind": "layer_norm", "in": n, "out": n,
                           "activation": "none", "eps": float(np.float32(m.eps))})
        elif isinstance(m, (nn.Identity, nn.Dropout)):
            continue
        else:
            raise TypeError("module %d is %s: from_torch takes Linear, ReLU, LeakyReLU, Tanh, "
                            "GELU(approximate='tanh'), LayerNorm, Dropout and Identity"
                            % (i, type(m).__name__))
    if not any(l["kind"] != "layer_norm" for l in layers):
        raise TypeError("the Sequential has no Linear module")
    if layers[-1]["activation"] != "none":
        raise TypeError("the last Linear has an activation: a rewire classifier's last layer gives "
                        "the logits")
    meta = {"format": "rewire", "format_version": "1",
            "layers": _safetensors.json_compact(layers),
            "input_mean": "%.9g" % mean, "input_std": "%.9g" % std,
            "leaky_slope": "%.9g" % np.float32(slope if slope is not None else 0.01)}
    if stage is not None:
        info, arrays = stage
        first = next(l for l in layers if l["kind"] != "layer_norm")
        if first["in"] != info["kept"]:
            raise TypeError("Normalize reads %d inputs but the first Linear takes %d"
                            % (info["kept"], first["in"]))
        meta["input"] = _safetensors.json_compact(info)
        tensors.update(arrays)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "from_torch.safetensors")
        _safetensors.write(path, tensors, meta)
        return Model.load(path)
