#!/usr/bin/python3
"""Writes PyTorch reference vectors for tests/test_attention.c.

Masked multi-head attention in float64 on one sequence of T = 13 positions,
2 heads of 4: qkv [24, 13] feature-major (queries, keys, values), a 0/1 mask
[13, 13] (window:3,sink:2 as an explicit mask: s <= t and (t - s < 3 or
s < 2)), an upstream gradient dy [8, 13], the output y and dqkv. The test
holds its scalar reference twin, and the core, to these. Then the same with
a per-key score bias [2, 13] (head h's bias[h, s] added to every query's
score of key s, as dma's mask is): y_bias, dqkv_bias and dbias.
Saved as tests/data/reference/attention.ref.safetensors (float32).
Rerun with: /usr/bin/python3 tools/make_attention_reference.py
"""
import math
import os

import numpy as np
import torch

from make_reference import write_safetensors

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "reference")
T, H, HD = 13, 2, 4


def main():
    g = torch.Generator().manual_seed(18)
    dim = H * HD
    qkv = torch.randn(3 * dim, T, generator=g, dtype=torch.float64).float().double()
    dy = torch.randn(dim, T, generator=g, dtype=torch.float64).float().double()
    t = torch.arange(T).view(T, 1)
    s = torch.arange(T).view(1, T)
    mask = (s <= t) & ((t - s < 3) | (s < 2))
    qkv.requires_grad_(True)
    q, k, v = qkv[:dim], qkv[dim:2 * dim], qkv[2 * dim:]
    ys = []
    for h in range(H):
        rows = slice(h * HD, (h + 1) * HD)
        scores = q[rows].T @ k[rows] / math.sqrt(HD)  # [T query, T key]
        scores = scores.masked_fill(~mask, float("-inf"))
        ys.append((torch.softmax(scores, dim=1) @ v[rows].T).T)
    y = torch.cat(ys, 0)
    y.backward(dy)
    f = lambda x: x.detach().numpy().astype(np.float32)
    out = {"qkv": f(qkv), "mask": mask.numpy().astype(np.float32), "dy": f(dy), "y": f(y),
           "dqkv": f(qkv.grad)}

    bias = torch.randn(H, T, generator=g, dtype=torch.float64).float().double()
    qkv2 = qkv.detach().clone().requires_grad_(True)
    bias.requires_grad_(True)
    q, k, v = qkv2[:dim], qkv2[dim:2 * dim], qkv2[2 * dim:]
    ys = []
    for h in range(H):
        rows = slice(h * HD, (h + 1) * HD)
        scores = q[rows].T @ k[rows] / math.sqrt(HD) + bias[h].view(1, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        ys.append((torch.softmax(scores, dim=1) @ v[rows].T).T)
    y2 = torch.cat(ys, 0)
    y2.backward(dy)
    out.update({"bias": f(bias), "y_bias": f(y2), "dqkv_bias": f(qkv2.grad), "dbias": f(bias.grad)})
    write_safetensors(os.path.join(OUT, "attention.ref.safetensors"), out)


if __name__ == "__main__":
    main()
