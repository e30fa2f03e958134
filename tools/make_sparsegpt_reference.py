#!/usr/bin/env python3
"""Reference results of layer-wise pruning for tests/test_lm_prune.c,
written from the papers in numpy (float64), independent of rewire's C:

  SparseGPT: "SparseGPT: Massive Language Models Can Be Accurately Pruned
  in One-Shot" (Frantar and Alistarh 2023), Algorithm 1: damped Hessian
  H = X X^T + lambda I (lambda = 1% of the mean diagonal), U the upper
  Cholesky factor of H^-1, columns eliminated left to right with the
  OBS update, lazy updates over blocks of B columns; the mask chosen per
  block (unstructured: the largest w^2 / U_cc^2 over the block's entries)
  or per group of m columns and row (N:M).
  Wanda: "A Simple and Effective Pruning Approach for Large Language
  Models" (Sun et al. 2023): |W_ij| * ||X_j||_2, the largest per row.

The layer is a formula both sides compute exactly in float32 (no input
files): u(k, s) is a 24-bit hash of k scaled into [-0.5, 0.5).
  W[r][c] = 2 u(r*cols + c, 1)
  X[i][j] = u(i*n + j, 2) * scale[i % 4]   (scale 1, 2, 4, 0.5; input 7 is
                                          never active: X[7][:] = 0)
Writes tests/data/prune/*.txt: a line "rows cols error" (error the
reconstruction error ||W X - W' X||_F^2), then the pruned W' (SparseGPT)
or the 0/1 mask (Wanda), a row per line.

  /usr/bin/python3 tools/make_sparsegpt_reference.py
"""
import os

import numpy as np

ROWS, COLS, TOKENS = 8, 136, 200
SCALE = np.array([1.0, 2.0, 4.0, 0.5], dtype=np.float32)
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "prune")


def u(k, s):
    k = np.asarray(k, dtype=np.uint64)
    h = (k * np.uint64(2654435761) + np.uint64(s) * np.uint64(40503) + np.uint64(12345)) % np.uint64(
        1 << 32)
    return ((h >> np.uint64(8)).astype(np.float64) / float(1 << 24) - 0.5).astype(np.float32)


def layer():
    w = 2 * u(np.arange(ROWS * COLS), 1).reshape(ROWS, COLS)
    x = u(np.arange(COLS * TOKENS), 2).reshape(COLS, TOKENS) * SCALE[np.arange(COLS) % 4][:, None]
    x[7, :] = 0
    return w.astype(np.float32), x.astype(np.float32)


def keep_largest(score, want):
    """0/1 mask of the `want` largest scores, the lower index first among equals."""
    order = np.argsort(-score, kind="stable")
    keep = np.zeros(score.shape, dtype=bool)
    keep[order[:want]] = True
    return keep


def kept_count(count, sparsity):
    return min(count, max(0, int(np.floor((1 - sparsity) * count + 0.5))))


def sparsegpt(w, h, sparsity=None, n=0, m=0, block=128):
    rows, cols = w.shape
    W = w.astype(np.float64).copy()
    H = h.copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += 0.01 * np.mean(np.diag(H)) * np.eye(cols)
    Hinv = np.linalg.inv(H)
    U = np.linalg.cholesky(Hinv).T  # Hinv = U^T U, U upper
    if m:
        block = max(m, block - block % m)
    keep = np.zeros((rows, cols), dtype=bool)
    for c0 in range(0, cols, block):
        c1 = min(cols, c0 + block)
        err = np.zeros((rows, c1 - c0))
        if not m:
            d = np.diag(U)[c0:c1]
            score = (W[:, c0:c1] ** 2 / d[None, :] ** 2).ravel()
            mask = keep_largest(score, kept_count(score.size, sparsity)).reshape(rows, c1 - c0)
        else:
            mask = np.zeros((rows, c1 - c0), dtype=bool)
        for c in range(c0, c1):
            if m and c % m == 0:
                d = np.diag(U)[c:c + m]
                for r in range(rows):
                    mask[r, c - c0:c - c0 + m] = keep_largest(W[r, c:c + m] ** 2 / d ** 2, n)
            q = np.where(mask[:, c - c0], W[:, c], 0.0)
            e = (W[:, c] - q) / U[c, c]
            W[:, c] = q
            W[:, c + 1:c1] -= np.outer(e, U[c, c + 1:c1])
            err[:, c - c0] = e
        W[:, c1:] -= err @ U[c0:c1, c1:]
        keep[:, c0:c1] = mask
    return np.where(keep, W, 0.0), keep


def wanda(w, x, sparsity=None, n=0, m=0):
    norm = np.sqrt((x.astype(np.float64) ** 2).sum(axis=1)).astype(np.float32)
    score = np.abs(w) * norm[None, :]
    keep = np.zeros(w.shape, dtype=bool)
    for r in range(w.shape[0]):
        if m:
            for g in range(0, w.shape[1], m):
                keep[r, g:g + m] = keep_largest(score[r, g:g + m], n)
        else:
            keep[r] = keep_largest(score[r], kept_count(w.shape[1], sparsity))
    return np.where(keep, w, 0).astype(np.float32), keep


def error(w, w_new, h):
    d = w.astype(np.float64) - w_new.astype(np.float64)
    return float(np.einsum("ri,ij,rj->", d, h, d))


def write(name, values, err, fmt):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        f.write(f"{values.shape[0]} {values.shape[1]} {err:.17g}\n")
        for row in values:
            f.write(" ".join(fmt(v) for v in row) + "\n")


def main():
    w, x = layer()
    h = x.astype(np.float64) @ x.astype(np.float64).T
    for name, kw in [("sparsegpt_50_b128", dict(sparsity=0.5, block=128)),
                     ("sparsegpt_50_b32", dict(sparsity=0.5, block=32)),
                     ("sparsegpt_2_4", dict(n=2, m=4)),
                     ("sparsegpt_70_b128", dict(sparsity=0.7, block=128))]:
        wn, _ = sparsegpt(w, h, **kw)
        write(name + ".txt", wn, error(w, wn, h), lambda v: f"{v:.9e}")
    for name, kw in [("wanda_50", dict(sparsity=0.5)), ("wanda_2_4", dict(n=2, m=4))]:
        wn, keep = wanda(w, x, **kw)
        write(name + ".txt", keep.astype(int), error(w, wn, h), lambda v: str(int(v)))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
