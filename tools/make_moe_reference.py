#!/usr/bin/python3
"""Writes PyTorch reference vectors for tests/test_moe.c.

A mixture-of-experts layer computed by autograd in float64: a softmax
router (top-1 with a capacity that drops tokens, or top-2 renormalised,
dropless), each expert a tanh-GELU MLP with biases, the Switch
Transformer load-balancing loss (the routed fraction f held constant) and
the router z-loss added to the loss sum(y * dy). One case per file prefix:
  k2.*   4 experts, top-2, dropless
  k1.*   3 experts, top-1, capacity factor 1.0 (some tokens dropped)
  km.*   3 experts, k-means gate (top-1 nearest centroid, gate 1), and the
         centroids after one k-means step at rate 0.1
Saved as tests/data/reference/moe.ref.safetensors (float32).
Rerun with: /usr/bin/python3 tools/make_moe_reference.py
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from make_reference import write_safetensors

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "reference")
N, C, H = 13, 6, 5
BALANCE, ZLOSS, RATE = 0.1, 0.01, 0.1


def rounded(t):
    return t.float().double()


def assign(scores, k, capacity, largest):
    """The C layer's choices: top-k per token, then capacity claimed by
    first choices in token order before second choices."""
    n, e = scores.shape
    order = torch.argsort(scores, dim=1, descending=largest)
    picks = order[:, :k]
    # Keep clear of ties, which float32 and float64 might break differently.
    s = scores.sort(dim=1, descending=largest).values
    assert (s[:, :k] - s[:, 1:k + 1]).abs().min() > 1e-5, "near tie: change the seed"
    cap = math.ceil(capacity * n * k / e) if capacity > 0 else n
    kept = [0] * e
    keep = torch.zeros(n, k, dtype=torch.bool)
    for r in range(k):
        for j in range(n):
            ex = int(picks[j, r])
            if kept[ex] < cap:
                kept[ex] += 1
                keep[j, r] = True
    routed = torch.bincount(picks.flatten(), minlength=e).double()
    return picks, keep, routed


def case(prefix, g, experts, k, capacity, gate):
    x = rounded(torch.randn(N, C, generator=g, dtype=torch.float64)).requires_grad_(True)
    gw = rounded(torch.randn(experts, C, generator=g, dtype=torch.float64) *
                 (0.8 if gate == "softmax" else 1.0)).requires_grad_(True)
    w1 = [rounded(torch.randn(H, C, generator=g, dtype=torch.float64) * 0.5).requires_grad_(True)
          for _ in range(experts)]
    b1 = [rounded(torch.randn(H, generator=g, dtype=torch.float64) * 0.1).requires_grad_(True)
          for _ in range(experts)]
    w2 = [rounded(torch.randn(C, H, generator=g, dtype=torch.float64) * 0.5).requires_grad_(True)
          for _ in range(experts)]
    b2 = [rounded(torch.randn(C, generator=g, dtype=torch.float64) * 0.1).requires_grad_(True)
          for _ in range(experts)]
    dy = rounded(torch.randn(N, C, generator=g, dtype=torch.float64))
    if gate == "softmax":
        logits = x @ gw.T
        p = torch.softmax(logits, dim=1)
        picks, keep, routed = assign(p.detach(), k, capacity, True)
        sel = p.gather(1, picks)
        gates = sel if k == 1 else sel / sel.sum(dim=1, keepdim=True)
    else:
        dist = ((x[:, None, :] - gw[None, :, :]) ** 2).sum(-1)
        picks, keep, routed = assign(dist.detach(), 1, 0, False)
        gates = torch.ones(N, 1, dtype=torch.float64)
    y = torch.zeros(N, C, dtype=torch.float64)
    for j in range(N):
        for r in range(k):
            if not keep[j, r]:
                continue
            e = int(picks[j, r])
            h = F.gelu(w1[e] @ x[j] + b1[e], approximate="tanh")
            y = y.index_add(0, torch.tensor([j]), (gates[j, r] * (w2[e] @ h + b2[e]))[None, :])
    loss = (y * dy).sum()
    if gate == "softmax":
        f = routed / (N * k)
        loss = loss + BALANCE * experts * (f * p.mean(dim=0)).sum()
        loss = loss + ZLOSS * (torch.logsumexp(logits, dim=1) ** 2).mean()
    loss.backward()
    out = {"x": x, "gate_w": gw, "dy": dy, "y": y, "dx": x.grad}
    if gate == "softmax":
        out["dgate_w"] = gw.grad
    else:
        moved = gw.detach().clone()
        for e in range(experts):
            mine = picks[:, 0] == e
            if mine.any():
                moved[e] += RATE * (x.detach()[mine].mean(dim=0) - moved[e])
        out["centroids_after"] = moved
    for e in range(experts):
        out[f"w1.{e}"], out[f"b1.{e}"], out[f"w2.{e}"], out[f"b2.{e}"] = w1[e], b1[e], w2[e], b2[e]
        out[f"dw1.{e}"], out[f"db1.{e}"] = w1[e].grad, b1[e].grad
        out[f"dw2.{e}"], out[f"db2.{e}"] = w2[e].grad, b2[e].grad
    out["dropped"] = torch.tensor([float((~keep).sum())])
    return {f"{prefix}.{name}": t.detach().numpy().astype(np.float32) for name, t in out.items()}


def main():
    g = torch.Generator().manual_seed(23)
    tensors = {}
    tensors.update(case("k2", g, 4, 2, 0.0, "softmax"))
    tensors.update(case("k1", g, 3, 1, 1.0, "softmax"))
    tensors.update(case("km", g, 3, 1, 0.0, "kmeans"))
    assert tensors["k1.dropped"][0] > 0, "the capacity case should drop tokens: change the seed"
    write_safetensors(os.path.join(OUT, "moe.ref.safetensors"), tensors)


if __name__ == "__main__":
    main()
