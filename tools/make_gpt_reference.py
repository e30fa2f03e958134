#!/usr/bin/python3
"""Writes PyTorch reference vectors for tests/test_gpt.c.

A small GPT written here from its definition, laid out exactly as rewire's
rw_gpt_create builds one (src/models/gpt.c): vocabulary 256 (bytes),
context 16, 2 pre-LayerNorm blocks of width 32 with 2 heads, each block
  x = x + attn.proj(attention(attn.qkv(ln_1(x))))   fused qkv: rows q, k, v
  x = x + mlp.down(gelu_tanh(mlp.up(ln_2(x))))      4 x 32 hidden units
then ln_f and the LM head tied to the token embedding wte; the loss is the
token cross-entropy averaged over the targets that are not -1. Linear
weights are [out][in] as torch.nn.Linear's, embeddings [rows][dim].

Two variants share one set of random weights (seeded, rounded to float32):
  nobias  nanoGPT's bias=False: no linear biases, LayerNorms without beta;
          some targets are -1 (ignored);
  bias    every linear map and LayerNorm with a bias; all targets counted.
Weights are drawn wider than nanoGPT's N(0, 0.02) so that attention is far
from uniform and GELU far from linear: a parity check of near-zero
activations would prove little.

Everything is computed in float64 from the float32 weights and saved as
float32. The same computation in float32 by torch is recorded in the
metadata (torch_f32.*: its max relative error against float64), the scale
of error a float32 implementation is expected to show.

Files in tests/data/gpt/:
  weights.safetensors  every parameter by rewire's name (embed.wte, embed.wpe,
                       blocks.N.ln_1.weight, blocks.N.attn.qkv.weight, ...,
                       ln_f.weight and, for the bias variant, the biases)
  VARIANT.safetensors  tokens, targets [3, 16]; logits [3, 16, 256]; loss [];
                       grad.NAME for every parameter; then 10 AdamW steps
                       (torch.optim.AdamW, betas 0.9 / 0.99, eps 1e-8, weight
                       decay 0.1 on 2-D parameters only, gradients clipped to
                       norm 1 by torch.nn.utils.clip_grad_norm_, learning rate
                       1e-3 after a linear warm-up of 4 steps) on a new batch
                       each: train.tokens, train.targets [10, 3, 16],
                       train.lr [10], train.loss [10] (each step's loss before
                       its update); in bias.safetensors only, final.NAME the
                       parameters after step 10 (the bias variant has every
                       kind of parameter and both decay groups; the files
                       stay near 0.65 MB).
Rerun with: /usr/bin/python3 tools/make_gpt_reference.py
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from make_reference import write_safetensors

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "gpt")
VOCAB, CONTEXT, LAYERS, HEADS, DIM = 256, 16, 2, 2, 32
BATCH, SEQ = 3, 16
STEPS, LR, WARMUP = 10, 1e-3, 4
BETAS, EPS, WEIGHT_DECAY, CLIP = (0.9, 0.99), 1e-8, 0.1, 1.0


def weight_shapes():
    """(name, shape, kind) of every parameter, in rewire's order."""
    out = [("embed.wte", (VOCAB, DIM), "embed"), ("embed.wpe", (CONTEXT, DIM), "embed")]
    maps = [("attn.qkv", 3 * DIM, DIM), ("attn.proj", DIM, DIM), ("mlp.up", 4 * DIM, DIM),
            ("mlp.down", DIM, 4 * DIM)]
    for b in range(LAYERS):
        p = "blocks.%d." % b
        for ln, group in (("ln_1", maps[:2]), ("ln_2", maps[2:])):
            out += [(p + ln + ".weight", (DIM,), "gamma"), (p + ln + ".bias", (DIM,), "beta")]
            for name, rows, cols in group:
                out += [(p + name + ".weight", (rows, cols), "weight"),
                        (p + name + ".bias", (rows,), "bias")]
    out += [("ln_f.weight", (DIM,), "gamma"), ("ln_f.bias", (DIM,), "beta")]
    return out


def random_weights(g):
    """float32 weights of the bias variant (the nobias variant drops the
    biases and betas)."""
    w = {}
    for name, shape, kind in weight_shapes():
        if kind == "embed":
            v = torch.randn(shape, generator=g, dtype=torch.float64) * 0.3
        elif kind == "weight":  # about unit-variance outputs, the projections back at half
            gain = 0.5 if name.endswith(("attn.proj.weight", "mlp.down.weight")) else 1.0
            v = torch.randn(shape, generator=g, dtype=torch.float64) * gain / math.sqrt(shape[1])
        elif kind == "gamma":
            v = torch.rand(shape, generator=g, dtype=torch.float64) * 0.8 + 0.6
        else:  # bias, beta
            v = (torch.rand(shape, generator=g, dtype=torch.float64) - 0.5) * 0.4
        w[name] = v.float()
    return w


def layer_norm(x, p, name):
    return F.layer_norm(x, (DIM,), p[name + ".weight"], p.get(name + ".bias"), 1e-5)


def linear(x, p, name):
    return F.linear(x, p[name + ".weight"], p.get(name + ".bias"))


def gpt_logits(p, tokens):
    """tokens [B, T] -> logits [B, T, VOCAB]."""
    B, T = tokens.shape
    hd = DIM // HEADS
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    x = p["embed.wte"][tokens] + p["embed.wpe"][:T]
    for b in range(LAYERS):
        pre = "blocks.%d." % b
        qkv = linear(layer_norm(x, p, pre + "ln_1"), p, pre + "attn.qkv")
        # Rows 0..DIM of the fused map are the queries, then keys, then
        # values; head h owns hd consecutive rows of each.
        q, k, v = (t.reshape(B, T, HEADS, hd).transpose(1, 2) for t in qkv.split(DIM, dim=-1))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, DIM)
        x = x + linear(y, p, pre + "attn.proj")
        h = F.gelu(linear(layer_norm(x, p, pre + "ln_2"), p, pre + "mlp.up"), approximate="tanh")
        x = x + linear(h, p, pre + "mlp.down")
    x = layer_norm(x, p, "ln_f")
    return x @ p["embed.wte"].t()


def token_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=-1)


def learning_rates():
    """Linear warm-up to LR over WARMUP steps, then constant; as float32
    values, so that rewire's float lr is the same number."""
    return np.array([LR * min(1.0, (s + 1) / WARMUP) for s in range(STEPS)], dtype=np.float32)


def run(w, dtype, tokens, targets, train_tokens, train_targets):
    """Logits, loss and gradients at w, then the AdamW steps, in dtype."""
    p = {n: v.to(dtype).clone().requires_grad_(True) for n, v in w.items()}
    logits = gpt_logits(p, tokens)
    loss = token_loss(logits, targets)
    loss.backward()
    grads = {n: v.grad.detach().clone() for n, v in p.items()}
    for v in p.values():
        v.grad = None
    # nanoGPT's groups: decay every 2-D parameter (weights, embeddings),
    # not biases or LayerNorm gains.
    decay = [v for v in p.values() if v.dim() == 2]
    no_decay = [v for v in p.values() if v.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=EPS)
    losses, norms = [], []
    for s, lr in enumerate(learning_rates()):
        for group in opt.param_groups:
            group["lr"] = float(lr)
        opt.zero_grad(set_to_none=True)
        step_loss = token_loss(gpt_logits(p, train_tokens[s]), train_targets[s])
        step_loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(p.values()), CLIP)))
        opt.step()
        losses.append(step_loss.item())
    final = {n: v.detach().clone() for n, v in p.items()}
    return logits.detach(), loss.item(), grads, losses, final, norms


def max_rel(a, b):
    """max |a - b| / max |b|: the measure tests/test_gpt.c uses."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def final_rel(final, ref, w0, name):
    """max_rel of one parameter after training and of its update (final -
    start), the keys' bias left out (see KEY_BIAS)."""
    a, b = (np.asarray(t.detach().double()) for t in (final, ref))
    start = np.asarray(w0.double())
    if name.endswith("attn.qkv.bias"):
        keep = np.r_[0:DIM, 2 * DIM:3 * DIM]
        a, b, start = a[keep], b[keep], start[keep]
    return max_rel(a, b), max_rel(a - start, b - start)


# KEY_BIAS: the keys' bias of attn.qkv (rows DIM..2 DIM) adds q . b to all
# of a query's scores alike, which softmax ignores: its gradient is exactly
# 0, and what a float computes is rounding noise, which AdamW (dividing by
# the noise's own root mean square) turns into steps of about lr. Its values
# after training are noise in any float32 implementation, torch's included
# (torch_f32.key_bias_final below), so the tests hold its gradient to 0 and
# its steps to the learning rates, not to the reference.


def make_batch(g, batches):
    """Random byte sequences of SEQ + 1: inputs and next-token targets."""
    seqs = torch.randint(0, VOCAB, (batches, BATCH, SEQ + 1), generator=g)
    return seqs[..., :-1].contiguous(), seqs[..., 1:].contiguous()


def ignore_some(g, targets, fraction):
    drop = torch.rand(targets.shape, generator=g) < fraction
    return targets.masked_fill(drop, -1)


def write_variant(name, w, g, ignore, final_params):
    tokens, targets = (t[0] for t in make_batch(g, 1))
    train_tokens, train_targets = make_batch(g, STEPS)
    if ignore:
        # A few scattered positions, the whole tail of one sequence, and
        # 15% of every training batch's targets count for nothing.
        targets = targets.clone()
        targets[0, [0, 5, 6]] = -1
        targets[1, 9:] = -1
        targets[2, 15] = -1
        train_targets = ignore_some(g, train_targets, 0.15)
    ref = run(w, torch.float64, tokens, targets, train_tokens, train_targets)
    f32 = run(w, torch.float32, tokens, targets, train_tokens, train_targets)
    logits, loss, grads, losses, final, norms = ref
    f = lambda t: t.detach().numpy().astype(np.float32)
    i32 = lambda t: t.numpy().astype(np.int32)
    tensors = {"tokens": i32(tokens), "targets": i32(targets), "logits": f(logits),
               "loss": np.array(loss, dtype=np.float32)}
    tensors.update({"grad." + n: f(v) for n, v in grads.items()})
    tensors.update({"train.tokens": i32(train_tokens), "train.targets": i32(train_targets),
                    "train.lr": learning_rates(), "train.loss": np.array(losses, dtype=np.float32)})
    if final_params:
        tensors.update({"final." + n: f(v) for n, v in final.items()})
    meta = {
        "torch_f32.logits": "%.3g" % max_rel(f32[0], logits),
        "torch_f32.loss": "%.3g" % max_rel(f32[1], loss),
        "torch_f32.grad": "%.3g" % max(max_rel(f32[2][n], grads[n]) for n in grads),
        "torch_f32.train_loss": "%.3g" % max(max_rel(a, b) for a, b in zip(f32[3], losses)),
        "torch_f32.final": "%.3g" % max(final_rel(f32[4][n], final[n], w[n], n)[0] for n in final),
        "torch_f32.final_update": "%.3g" % max(final_rel(f32[4][n], final[n], w[n], n)[1]
                                                for n in final),
        "torch_f32.key_bias_final": "%.3g" % max(
            [float((f32[4][n] - final[n])[DIM:2 * DIM].abs().max()) for n in final
             if n.endswith("attn.qkv.bias")] + [0.0]),
        "grad_norms": " ".join("%.4f" % x for x in norms),
    }
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, meta)
    print(name, "loss %.6f" % loss, "losses", " ".join("%.4f" % x for x in losses))
    for k, v in meta.items():
        print("  %s: %s" % (k, v))


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(20240)
    w = random_weights(g)
    write_safetensors(os.path.join(OUT, "weights.safetensors"),
                      {n: v.numpy() for n, v in w.items()})
    no_bias = {n: v for n, v in w.items() if not n.endswith(".bias")}
    write_variant("nobias", no_bias, g, ignore=True, final_params=False)
    write_variant("bias", w, g, ignore=False, final_params=True)


if __name__ == "__main__":
    main()
