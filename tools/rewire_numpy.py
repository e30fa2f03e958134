#!/usr/bin/env python3
"""Reads rewire model files and runs them, with numpy alone.

A rewire model file is safetensors (see the top comment of src/io/model_io.c):
an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the tensor bytes. Per layer fcN it holds
either fcN.indptr/indices/values (CSR, shape out x in) or fcN.weight
[out, in], plus fcN.bias [out]; __metadata__ carries the layer list and the
input normalisation. This module parses that by hand, checks everything it
reads, and offers:

    load(path)              -> Model (layers, input_mean, input_std, leaky_slope)
    dense_weight(layer)     -> the layer's weight as a dense [out, in] array
    predict(model, x)       -> class probabilities [n, classes] for x [n, in] in [0, 1]
    read_idx(path)          -> array from an IDX file (gzipped or not)

As a script:  python3 tools/rewire_numpy.py MODEL [--idx-images FILE.gz]
prints the layers and, with images, the predicted classes of the first 10.
"""

import argparse
import gzip
import json
import math
import struct
import sys
from dataclasses import dataclass, field

import numpy as np

DTYPES = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4"), "I64": np.dtype("<i8"),
          "U8": np.dtype("u1"), "I16": np.dtype("<i2"), "U16": np.dtype("<u2"),
          "F64": np.dtype("<f8")}
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "gelu", "none")


class FormatError(ValueError):
    """The file is not a valid rewire model; the message names file and tensor."""


@dataclass
class Layer:
    name: str                 # "fc1", "fc2", ...
    kind: str                 # "sparse" or "dense"
    shape: tuple              # (out, in), as in W x
    activation: str           # one of ACTIVATIONS
    bias: np.ndarray          # float32 [out]
    weight: np.ndarray = None   # dense only: float32 [out, in]
    indptr: np.ndarray = None   # sparse only: int32 [out + 1]
    indices: np.ndarray = None  # sparse only: int32 [nnz], columns, increasing per row
    values: np.ndarray = None   # sparse only: float32 [nnz]

    @property
    def nnz(self):
        return len(self.values) if self.kind == "sparse" else self.weight.size


@dataclass
class Model:
    layers: list
    input_mean: float
    input_std: float
    leaky_slope: float
    metadata: dict = field(default_factory=dict)


def read_safetensors(path):
    """Returns (tensors by name, metadata dict) with every length and offset checked."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise FormatError(f"{path}: {len(raw)} bytes, too short for a safetensors header")
    (hlen,) = struct.unpack("<Q", raw[:8])
    if hlen > len(raw) - 8:
        raise FormatError(f"{path}: header length {hlen} runs past the end of the file")
    try:
        header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: header is not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError(f"{path}: __metadata__ must map names to strings")
    buf = memoryview(raw)[8 + hlen:]  # data_offsets count from here
    tensors = {}
    for name, t in header.items():
        dtype, shape, offs = t.get("dtype"), t.get("shape"), t.get("data_offsets")
        if dtype not in DTYPES:
            raise FormatError(f"{path}: tensor {name} has unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise FormatError(f"{path}: tensor {name} has a bad shape {shape!r}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) for o in offs)
                and 0 <= offs[0] <= offs[1] <= len(buf)):
            raise FormatError(f"{path}: tensor {name} has data_offsets {offs!r} outside the "
                              f"{len(buf)} data bytes")
        want = math.prod(shape) * DTYPES[dtype].itemsize
        if offs[1] - offs[0] != want:
            raise FormatError(f"{path}: tensor {name} spans {offs[1] - offs[0]} bytes, its shape "
                              f"{shape} and dtype {dtype} need {want}")
        arr = np.frombuffer(buf[offs[0]:offs[1]], dtype=DTYPES[dtype]).reshape(shape)
        tensors[name] = (dtype, arr)
    return tensors, meta


def _tensor(path, tensors, name, dtype, shape):
    """Pops tensor `name`, checking dtype, shape (None = any length) and finite values."""
    if name not in tensors:
        raise FormatError(f"{path}: tensor {name} is missing")
    got, arr = tensors.pop(name)
    if got != dtype:
        raise FormatError(f"{path}: tensor {name} has dtype {got}, expected {dtype}")
    if arr.ndim != len(shape) or any(w is not None and w != d for w, d in zip(shape, arr.shape)):
        raise FormatError(f"{path}: tensor {name} has shape {list(arr.shape)}, expected "
                          f"{['any' if d is None else d for d in shape]}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise FormatError(f"{path}: tensor {name} has a non-finite value at "
                          f"{int(np.argmin(np.isfinite(arr.ravel())))}")
    return arr


def _check_csr(path, name, indptr, indices, n_in):
    """The same rules rewire's csr_validate applies."""
    if indptr[0] != 0:
        raise FormatError(f"{path}: {name}.indptr[0] is {indptr[0]}, expected 0")
    if np.any(np.diff(indptr) < 0):
        raise FormatError(f"{path}: {name}.indptr is not monotone")
    if indptr[-1] != len(indices):
        raise FormatError(f"{path}: tensor {name}.indices has {len(indices)} entries, "
                          f"{name}.indptr says {indptr[-1]}")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_in):
        raise FormatError(f"{path}: {name}.indices has a column outside [0, {n_in})")
    # Within a row columns must strictly increase; across a row boundary anything goes.
    step = np.diff(indices.astype(np.int64))
    row_start = np.zeros(len(indices), dtype=bool)
    row_start[indptr[:-1][indptr[:-1] < len(indices)]] = True
    if np.any((step <= 0) & ~row_start[1:]):
        raise FormatError(f"{path}: {name}.indices are not strictly increasing within a row")


def _meta_float(path, meta, key, default):
    try:
        v = float(meta.get(key, default))
    except ValueError:
        raise FormatError(f"{path}: metadata {key} is {meta[key]!r}, expected a number") from None
    if not math.isfinite(v):
        raise FormatError(f"{path}: metadata {key} is {v}, expected a finite number")
    return v


MAX_WIDTH = 1 << 24  # RW_MAX_WIDTH in include/rewire.h


def load(path):
    """Reads and validates a rewire model file; raises FormatError naming what is wrong."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != "rewire" or meta.get("format_version") != "1":
        raise FormatError(f"{path}: metadata format/format_version are {meta.get('format')!r}/"
                          f"{meta.get('format_version')!r}, expected 'rewire'/'1'")
    try:
        specs = json.loads(meta.get("layers", ""))
    except json.JSONDecodeError:
        specs = None
    if not isinstance(specs, list) or not specs:
        raise FormatError(f"{path}: metadata layers is not a non-empty JSON array")
    layers, prev_out = [], None
    for i, s in enumerate(specs):
        name = f"fc{i + 1}"
        if not isinstance(s, dict) or s.get("name") != name:
            raise FormatError(f"{path}: layer {i} in metadata layers should be named {name}")
        kind, n_in, n_out, act = s.get("kind"), s.get("in"), s.get("out"), s.get("activation")
        if kind not in ("sparse", "dense") or act not in ACTIVATIONS:
            raise FormatError(f"{path}: layer {name} has kind {kind!r} and activation {act!r}")
        if not (isinstance(n_in, int) and isinstance(n_out, int) and 1 <= n_in <= MAX_WIDTH
                and 1 <= n_out <= MAX_WIDTH):
            raise FormatError(f"{path}: layer {name} has shape {n_out!r} x {n_in!r}")
        if prev_out is not None and n_in != prev_out:
            raise FormatError(f"{path}: layer {name} takes {n_in} inputs, the layer before gives "
                              f"{prev_out}")
        prev_out = n_out
        bias = _tensor(path, tensors, f"{name}.bias", "F32", (n_out,))
        layer = Layer(name, kind, (n_out, n_in), act, bias)
        if kind == "dense":
            layer.weight = _tensor(path, tensors, f"{name}.weight", "F32", (n_out, n_in))
        else:
            layer.indptr = _tensor(path, tensors, f"{name}.indptr", "I32", (n_out + 1,))
            layer.indices = _tensor(path, tensors, f"{name}.indices", "I32", (None,))
            layer.values = _tensor(path, tensors, f"{name}.values", "F32", (len(layer.indices),))
            _check_csr(path, name, layer.indptr, layer.indices, n_in)
        layers.append(layer)
    if "checkpoint" in meta:
        # A checkpoint's other tensors are the trainer's (src/nn/checkpoint.h).
        tensors = {k: v for k, v in tensors.items() if k.startswith("fc")}
    if tensors:
        raise FormatError(f"{path}: unexpected tensor {sorted(tensors)[0]}")
    # Defaults are the ones rewire's loader uses when a key is absent.
    model = Model(layers, _meta_float(path, meta, "input_mean", 0.0),
                  _meta_float(path, meta, "input_std", 1.0),
                  _meta_float(path, meta, "leaky_slope", 0.01), meta)
    if not model.input_std > 0:
        raise FormatError(f"{path}: metadata input_std is {model.input_std}, expected > 0")
    return model


def dense_weight(layer):
    """The layer's weight as a dense float32 [out, in] array (a copy for sparse layers)."""
    if layer.kind == "dense":
        return layer.weight
    w = np.zeros(layer.shape, dtype=np.float32)
    rows = np.repeat(np.arange(layer.shape[0]), np.diff(layer.indptr))
    w[rows, layer.indices] = layer.values
    return w


def activate(name, z, slope):
    """rewire's activations (src/nn/activation.c) in float32; GELU is the tanh form."""
    if name == "relu":
        return np.maximum(z, np.float32(0))
    if name == "leaky_relu":
        return np.where(z > 0, z, np.float32(slope) * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "gelu":
        k, c = np.float32(math.sqrt(2 / math.pi)), np.float32(0.044715)
        return np.float32(0.5) * z * (np.float32(1) + np.tanh(k * (z + c * z * z * z)))
    return z


def logits(model, x):
    """Last layer's outputs [n, classes] (float32) for raw inputs x [n, in] in [0, 1]."""
    x = np.asarray(x, dtype=np.float32)
    n_in = model.layers[0].shape[1]
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"x has shape {x.shape}, expected [n, {n_in}]")
    h = (x - np.float32(model.input_mean)) / np.float32(model.input_std)
    for layer in model.layers:
        # Expanding to dense keeps this a plain reference, not a fast path.
        h = activate(layer.activation, h @ dense_weight(layer).T + layer.bias, model.leaky_slope)
    return h


def predict(model, x):
    """Class probabilities [n, classes]: softmax of logits() in float64, as rewire does."""
    z = logits(model, x).astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def read_idx(path):
    """An unsigned-byte IDX file (gzipped if the name ends in .gz) as a uint8 array."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise FormatError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{raw[3]}I", raw[4:4 + 4 * raw[3]])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * raw[3])
    if data.size != math.prod(dims):
        raise FormatError(f"{path}: header declares {math.prod(dims)} bytes, file has {data.size}")
    return data.reshape(dims)


def main():
    ap = argparse.ArgumentParser(description="Print a rewire model's layers; optionally predict.")
    ap.add_argument("model")
    ap.add_argument("--idx-images", metavar="FILE.gz", help="IDX images to classify (first 10)")
    args = ap.parse_args()
    try:
        m = load(args.model)
    except (OSError, FormatError) as e:
        sys.exit(f"rewire_numpy: {e}")
    print(f"{args.model}: {len(m.layers)} layers, input (x - {m.input_mean:g}) / {m.input_std:g}, "
          f"leaky_slope {m.leaky_slope:g}")
    for ly in m.layers:
        out, n_in = ly.shape
        print(f"  {ly.name:4} {ly.kind:6}  {f'{out}x{n_in}':10} {ly.activation:10}  "
              f"nnz {ly.nnz:8}  sparsity {100 * (1 - ly.nnz / (out * n_in)):6.2f}%")
    if args.idx_images:
        try:
            images = read_idx(args.idx_images)[:10]
        except (OSError, FormatError) as e:
            sys.exit(f"rewire_numpy: {e}")
        x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
        print("predicted classes of the first 10:", " ".join(map(str, predict(m, x).argmax(1))))


if __name__ == "__main__":
    main()
