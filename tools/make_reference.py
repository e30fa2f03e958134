#!/usr/bin/python3
"""Writes PyTorch reference vectors for tests/test_reference.c.

For each activation, a small sparse MLP (12 -> 10 -> 8 -> 4: two CSR layers
and one dense layer) is built with a random mask, run forward and backward
in float64 by PyTorch on a batch of 5 samples, and saved as two files in
tests/data/reference/:
  ACT.model.safetensors  the model in rewire's format (input_mean 0, std 1)
  ACT.ref.safetensors    x [5, 12], labels [5], logits [5, 4], loss [],
                         and for each layer grad.fcN.values|weight, grad.fcN.bias
and optimizers.ref.safetensors: weights after three steps of SGD with
momentum, Nesterov, plain SGD and AdamW by torch.optim on fixed gradients.
Gradients of sparse layers are the dense gradient gathered at the stored
positions, in CSR order. Rerun with: /usr/bin/python3 tools/make_reference.py
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "reference")
SIZES = [12, 10, 8, 4]
SPARSE = [True, True, False]
BATCH = 5
DTYPES = {np.dtype("float32"): "F32", np.dtype("int32"): "I32", np.dtype("uint8"): "U8"}


def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer: JSON header padded to 8 bytes, then data."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def activate(name, z):
    if name == "relu":
        return F.relu(z)
    if name == "leaky_relu":
        return F.leaky_relu(z, 0.01)
    if name == "tanh":
        return torch.tanh(z)
    if name == "gelu":
        return F.gelu(z, approximate="tanh")
    raise ValueError(name)


def build(act, rng):
    model_tensors, layers, params = {}, [], []
    for l, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        name = f"fc{l + 1}"
        w = rng.uniform(-0.6, 0.6, size=(n_out, n_in))
        b = rng.uniform(-0.2, 0.2, size=n_out)
        if SPARSE[l]:
            mask = rng.random((n_out, n_in)) < 0.4
            mask[0, :] = False  # an empty row
            w = w * mask
            rows, cols = np.nonzero(mask)
            indptr = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int32)
            model_tensors[f"{name}.indptr"] = indptr
            model_tensors[f"{name}.indices"] = cols.astype(np.int32)
            model_tensors[f"{name}.values"] = w[rows, cols].astype(np.float32)
            params.append((name, mask, rows, cols))
        else:
            model_tensors[f"{name}.weight"] = w.astype(np.float32)
            params.append((name, None, None, None))
        model_tensors[f"{name}.bias"] = b.astype(np.float32)
        layers.append({"name": name, "kind": "sparse" if SPARSE[l] else "dense", "in": n_in,
                       "out": n_out, "activation": act if l + 1 < len(SPARSE) else "none"})
    return model_tensors, layers, params


def main():
    os.makedirs(OUT, exist_ok=True)
    for seed, act in enumerate(["relu", "leaky_relu", "tanh", "gelu"]):
        rng = np.random.default_rng(100 + seed)
        model_tensors, layers, params = build(act, rng)
        x = rng.uniform(0, 1, size=(BATCH, SIZES[0])).astype(np.float32)
        labels = rng.integers(0, SIZES[-1], size=BATCH).astype(np.uint8)

        # Float64 from the float32 values rewire will load.
        h = torch.tensor(x, dtype=torch.float64)
        weights, biases = [], []
        for l, (name, mask, rows, cols) in enumerate(params):
            if mask is not None:
                w = np.zeros((SIZES[l + 1], SIZES[l]))
                w[rows, cols] = model_tensors[f"{name}.values"]
            else:
                w = model_tensors[f"{name}.weight"].astype(np.float64)
            weights.append(torch.tensor(w, requires_grad=True))
            biases.append(torch.tensor(model_tensors[f"{name}.bias"].astype(np.float64),
                                       requires_grad=True))
        for l in range(len(params)):
            h = h @ weights[l].T + biases[l]
            if l + 1 < len(params):
                h = activate(act, h)
        logits = h
        loss = F.cross_entropy(logits, torch.tensor(labels, dtype=torch.long))
        loss.backward()

        ref = {"x": x, "labels": labels, "logits": logits.detach().numpy().astype(np.float32),
               "loss": np.array(loss.item(), dtype=np.float32)}
        for l, (name, mask, rows, cols) in enumerate(params):
            g = weights[l].grad.numpy()
            if mask is not None:
                ref[f"grad.{name}.values"] = g[rows, cols].astype(np.float32)
            else:
                ref[f"grad.{name}.weight"] = g.astype(np.float32)
            ref[f"grad.{name}.bias"] = biases[l].grad.numpy().astype(np.float32)

        meta = {"format": "rewire", "format_version": "1", "layers": json.dumps(layers),
                "input_mean": "0", "input_std": "1", "leaky_slope": "0.01"}
        write_safetensors(os.path.join(OUT, f"{act}.model.safetensors"), model_tensors, meta)
        write_safetensors(os.path.join(OUT, f"{act}.ref.safetensors"), ref)
        print(f"{act}: loss {loss.item():.6f}")


def optimizers():
    """Three steps of each optimizer on fixed gradients, by torch.optim."""
    rng = np.random.default_rng(7)
    w0 = rng.uniform(-1, 1, size=16).astype(np.float32)
    grads = rng.uniform(-1, 1, size=(3, 16)).astype(np.float32)
    cases = {
        "sgd": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01),
        "nesterov": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True,
                                              weight_decay=0.01),
        "plain_sgd": lambda p: torch.optim.SGD([p], lr=0.1),
        "adamw": lambda p: torch.optim.AdamW([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8,
                                             weight_decay=0.01),
    }
    out = {"w0": w0, "grads": grads}
    for name, make in cases.items():
        p = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        opt = make(p)
        for g in grads:
            p.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
        out[name] = p.detach().numpy().astype(np.float32)
    write_safetensors(os.path.join(OUT, "optimizers.ref.safetensors"), out)
    print("optimizers: written")


if __name__ == "__main__":
    main()
    optimizers()
