#!/usr/bin/python3
"""Writes PyTorch reference vectors for tests/test_layer_norm.c.

torch.nn.LayerNorm(7, eps=1e-5) with random weight and bias, in float64, on
a batch of 5 samples: the input x [5, 7], the output y, an upstream
gradient dy, and the gradients dx, dweight, dbias. Saved as
tests/data/reference/layer_norm.ref.safetensors (float32).
Rerun with: /usr/bin/python3 tools/make_layer_norm_reference.py
"""
import os

import numpy as np
import torch

from make_reference import write_safetensors

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "reference")
BATCH, DIM = 5, 7


def main():
    g = torch.Generator().manual_seed(17)
    ln = torch.nn.LayerNorm(DIM, eps=1e-5).double()
    with torch.no_grad():
        ln.weight.copy_(torch.rand(DIM, generator=g, dtype=torch.float64) + 0.5)
        ln.bias.copy_(torch.rand(DIM, generator=g, dtype=torch.float64) - 0.5)
    # Rounded to float32 first, so that both sides start from the same values.
    x = (torch.randn(BATCH, DIM, generator=g, dtype=torch.float64) * 2 + 0.3).float().double()
    dy = torch.randn(BATCH, DIM, generator=g, dtype=torch.float64).float().double()
    with torch.no_grad():
        ln.weight.copy_(ln.weight.float().double())
        ln.bias.copy_(ln.bias.float().double())
    x.requires_grad_(True)
    y = ln(x)
    y.backward(dy)
    f = lambda t: t.detach().numpy().astype(np.float32)
    write_safetensors(os.path.join(OUT, "layer_norm.ref.safetensors"), {
        "x": f(x), "weight": f(ln.weight), "bias": f(ln.bias), "dy": f(dy),
        "y": f(y), "dx": f(x.grad), "dweight": f(ln.weight.grad), "dbias": f(ln.bias.grad)})


if __name__ == "__main__":
    main()
