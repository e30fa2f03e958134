#!/usr/bin/python3
"""PyTorch yardstick for rewire's GPT (src/models/gpt.c): speed and quality.

The same model, initialisation, optimizer, schedule, data split and data
windows as rewire's language-model run, written in plain PyTorch:

  model   token + learned position embeddings; n_layer pre-LayerNorm blocks
          (LayerNorm, fused qkv Linear dim->3dim, causal multi-head
          attention, output projection, residual; LayerNorm, Linear
          dim->4dim, GELU (tanh form), Linear 4dim->dim, residual); final
          LayerNorm; LM head tied to the token embedding; no biases,
          LayerNorm without beta. Init N(0, 0.02), the two projections back
          into the residual stream N(0, 0.02 / sqrt(2 n_layer)).
  train   AdamW (betas 0.9/0.99, eps 1e-8, weight decay 0.1 on 2-D
          parameters: weights and embeddings), lr 1e-3 with 100 warm-up
          steps lr*(it+1)/(warmup+1) then a cosine down to 1e-4 at the last
          step, gradient clipping at global norm 1.0, batch 12 x context 64.
  data    bytes tokenizer (token = byte value); the first 90% of the tokens
          train, the rest validate; training step s (from 1) uses the
          windows rewire's corpus_sample_batch draws for (seed, s): the
          xoshiro256** generator of src/core/rng.c is ported below, so both
          programs see the same windows in the same order.
  sparse  --sparsity S > 0 runs "dense x mask", the way most sparse-training
          code runs in PyTorch: each block linear map gets a fixed random 0/1
          mask with Erdos-Renyi-Kernel densities shared as rewire's
          sparsity_distribute_shapes (src/sparsity/distribution.c) shares
          them; gradients are masked before clipping and the weights after
          every optimizer step, so the zeros stay zero. Embeddings and
          LayerNorms stay dense. As in rewire, the kept weights start with
          the dense standard deviation over sqrt(density).

Modes (each prints JSON lines on stdout):

  --speed           training steps per second after warm-up steps, one line
                    per (threads, sparsity): {"bench": "lm_train", "impl":
                    "pytorch", "path": "dense"|"masked", "tokens_per_second":
                    ...} (a token is a sample, as in rewire's LM run: tokens
                    per step = batch x context).
  --generate-speed  batch-1 decoding with a KV cache, as rw_lm_generate does
                    it (one token per forward, restarting from the last
                    context/2 tokens when the cache is full), temperature-1
                    sampling: {"bench": "lm_generate", ...}. Paths: "dense",
                    "masked" (dense kernels over masked weights) and
                    "sparse_csr" (torch.sparse_csr_tensor matrix-vector
                    products for the block maps).
  --train           the nanoGPT-on-CPU run (2000 steps by default): a progress
                    line every --eval-every steps (mean train loss, a
                    validation estimate over --eval-batches random windows of
                    the validation split, drawn as rewire's estimate draws
                    them), then {"bench": "lm_quality", "val_loss": ...}, the
                    loss over the whole validation split in non-overlapping
                    windows of context tokens (the last, shorter window
                    included), as rw_lm_evaluate computes it.
  --check-windows   prints n_train and the first steps' window starts, to
                    compare with rewire's (bench/lm_windows.c).

Threads: torch.set_num_threads(--threads). PyTorch's matrix products go to
the system BLAS; with Debian's OpenBLAS, the OpenMP build is the faster one
next to torch's own OpenMP threads, so the script restarts itself with
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp when that build is
installed (bench/peer_blas.py; PEER_BLAS=system keeps the system's).
The JSON lines name the BLAS library that was loaded ("blas").

Usage:
  /usr/bin/python3 bench/peer_pytorch_lm.py --speed --text FILE
      [--layers 4 --heads 4 --dim 128 --context 64 --batch 12]
      [--sparsity 0,0.5,0.75,0.9] [--threads 2] [--steps 20 --repeats 5]
  /usr/bin/python3 bench/peer_pytorch_lm.py --generate-speed [--sparsity 0,0.9]
      [--gen-tokens N]
  /usr/bin/python3 bench/peer_pytorch_lm.py --train --text FILE [--steps 2000]
      [--sparsity S] [--seed 1]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_blas  # noqa: E402

peer_blas.use_openmp_blas()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# ---- rewire's random numbers (src/core/rng.c), in 64-bit masked arithmetic

MASK64 = (1 << 64) - 1
# rewire's estimate of the validation loss draws from seed ^ this (src/run/lm_run.c).
LM_ESTIMATE_STREAM = 0x6C6D5F6573746D


def _splitmix64(x):
    """One splitmix64 step: (new state, output)."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return x, z ^ (z >> 31)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK64


class Xoshiro:
    """xoshiro256** seeded through splitmix64, as rng_seed / rng_next."""

    def __init__(self, seed):
        x = seed & MASK64
        self.s = []
        for _ in range(4):
            x, z = _splitmix64(x)
            self.s.append(z)

    @classmethod
    def stream(cls, seed, stream):
        """rng_seed_stream: an independent generator for (seed, stream)."""
        x = (seed ^ ((stream * 0xD1342543DE82EF95 + 0x2545F4914F6CDD1D) & MASK64)) & MASK64
        _, z = _splitmix64(x)
        return cls(z)

    def next(self):
        s = self.s
        result = (_rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def below(self, n):
        """Uniform in [0, n) by rejection, as rng_below."""
        limit = MASK64 - MASK64 % n
        while True:
            x = self.next()
            if x < limit:
                return x % n


# ---- the text: tokens, split, windows (src/text/corpus.c)

class Corpus:
    def __init__(self, path, val_fraction=0.1):
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            raise SystemExit(f"{path}: file is empty, expected text")
        self.name = os.path.basename(path)
        self.tokens = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
        n = len(self.tokens)
        self.n_train = min(n, math.floor(n * (1.0 - val_fraction)))
        self.train = self.tokens[:self.n_train]
        self.val = self.tokens[self.n_train:]

    @staticmethod
    def synthetic(n, seed):
        """Random bytes, for speed runs without a file (the speed is the same)."""
        c = Corpus.__new__(Corpus)
        c.name = "synthetic"
        c.tokens = np.random.default_rng(seed).integers(0, 256, n, dtype=np.int64)
        c.n_train = math.floor(n * 0.9)
        c.train, c.val = c.tokens[:c.n_train], c.tokens[c.n_train:]
        return c


def window_starts(n, context, batch, seed, step):
    """corpus_sample_batch's window starts in a split of n tokens."""
    r = Xoshiro.stream(seed, step)
    return [r.below(n - context) for _ in range(batch)]


def sample_batch(split, context, batch, seed, step):
    """(inputs, targets), [batch][context] each, of step `step`'s windows."""
    starts = np.array(window_starts(len(split), context, batch, seed, step), dtype=np.int64)
    w = split[starts[:, None] + np.arange(context + 1)]
    return torch.from_numpy(w[:, :-1].copy()), torch.from_numpy(w[:, 1:].copy())


# ---- the model

class LayerNorm(torch.nn.Module):
    """LayerNorm with gamma only (torch 1.13's has no bias=False)."""

    def __init__(self, dim):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class Block(torch.nn.Module):
    def __init__(self, dim, heads, context):
        super().__init__()
        self.heads = heads
        self.ln_1 = LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim, bias=False)
        self.proj = torch.nn.Linear(dim, dim, bias=False)
        self.ln_2 = LayerNorm(dim)
        self.up = torch.nn.Linear(dim, 4 * dim, bias=False)
        self.down = torch.nn.Linear(4 * dim, dim, bias=False)
        # -inf above the diagonal: added to the scores, it hides later positions
        self.register_buffer("causal", torch.full((context, context), float("-inf")).triu(1),
                             persistent=False)

    def maps(self):
        return [self.qkv, self.proj, self.up, self.down]

    def attention(self, x):  # x is (B,T,C), out is (B,T,C)
        B, T, C = x.shape
        H = self.heads
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, H, C // H).transpose(1, 2)  # (B,H,T,hd)
        k = k.view(B, T, H, C // H).transpose(1, 2)
        v = v.view(B, T, H, C // H).transpose(1, 2)
        scores = torch.baddbmm(self.causal[:T, :T].expand(B * H, T, T),
                               q.reshape(B * H, T, C // H),
                               k.reshape(B * H, T, C // H).transpose(1, 2),
                               alpha=1.0 / math.sqrt(C // H))
        y = torch.bmm(scores.softmax(dim=-1), v.reshape(B * H, T, C // H))  # (B*H,T,hd)
        return self.proj(y.view(B, H, T, C // H).transpose(1, 2).reshape(B, T, C))

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.down(F.gelu(self.up(self.ln_2(x)), approximate="tanh"))


class GPT(torch.nn.Module):
    def __init__(self, vocab, context, layers, heads, dim):
        super().__init__()
        if dim % heads:
            raise SystemExit(f"width {dim} with {heads} heads: the heads must divide the width")
        self.vocab, self.context, self.dim = vocab, context, dim
        self.wte = torch.nn.Embedding(vocab, dim)
        self.wpe = torch.nn.Embedding(context, dim)
        self.blocks = torch.nn.ModuleList(Block(dim, heads, context) for _ in range(layers))
        self.ln_f = LayerNorm(dim)

    def maps(self):
        """The block linear maps in rewire's order: qkv, proj, up, down per block."""
        return [m for b in self.blocks for m in b.maps()]

    def forward(self, idx):  # idx is (B,T), out is (B,T,vocab)
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe.weight[:T]
        for b in self.blocks:
            x = b(x)
        return F.linear(self.ln_f(x), self.wte.weight)


def erk_densities(shapes, sparsity):
    """rewire's sparsity_distribute_shapes with ERK: density of a rows x cols
    map proportional to (rows + cols) / (rows * cols); a map pushed past 1
    becomes dense and the budget is shared again."""
    params = [r * c for r, c in shapes]
    total = sum(params)
    dense = [sparsity == 0.0] * len(shapes)
    while True:
        budget, weight = (1.0 - sparsity) * total, 0.0
        for (r, c), p, d in zip(shapes, params, dense):
            if d:
                budget -= p
            else:
                weight += (r + c) / p * p
        if weight == 0.0:
            return [1.0] * len(shapes)
        eps = budget / weight
        dens, worst, worst_d = [], -1, 1.0
        for l, ((r, c), p) in enumerate(zip(shapes, params)):
            if dense[l]:
                dens.append(1.0)
                continue
            dens.append(eps * (r + c) / p)
            if dens[-1] > worst_d:
                worst, worst_d = l, dens[-1]
        if worst < 0:
            return dens
        dense[worst] = True


def build(args, sparsity):
    """The model initialised as rw_gpt_create, and its masks ([(weight, mask)] or [])."""
    torch.manual_seed(args.seed)
    m = GPT(256, args.context, args.layers, args.heads, args.dim)
    proj_std = 0.02 / math.sqrt(2 * args.layers)
    stds = [0.02, proj_std, 0.02, proj_std] * args.layers
    maps = m.maps()
    dens = [1.0] * len(maps)
    if sparsity > 0:
        dens = erk_densities([tuple(l.weight.shape) for l in maps], sparsity)
    masks = []
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        torch.nn.init.normal_(m.wte.weight, 0.0, 0.02)
        torch.nn.init.normal_(m.wpe.weight, 0.0, 0.02)
        for lin, std, d in zip(maps, stds, dens):
            if sparsity > 0 and d < 1.0:
                rows, cols = lin.weight.shape
                total = rows * cols
                k = min(total, max(1, math.floor(d * total + 0.5)))  # llround
                mask = torch.zeros(total)
                mask[torch.randperm(total, generator=gen)[:k]] = 1.0
                mask = mask.view(rows, cols)
                torch.nn.init.normal_(lin.weight, 0.0, std / math.sqrt(d))
                lin.weight.mul_(mask)
                masks.append((lin.weight, mask))
            else:
                torch.nn.init.normal_(lin.weight, 0.0, std)
    return m, masks


def map_counts(model, masks):
    """(nonzeros, weights) over the block maps."""
    all_ = sum(l.weight.numel() for l in model.maps())
    masked = {id(w): mk for w, mk in masks}
    nnz = sum(int(masked[id(l.weight)].sum().item()) if id(l.weight) in masked
              else l.weight.numel() for l in model.maps())
    return nnz, all_


def make_optimizer(model, args):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99), eps=1e-8,
                             foreach=args.foreach)


def lr_at(args, it):
    """nanoGPT's get_lr at iteration it (step it + 1), as rewire's lm_lr."""
    if it < args.warmup:
        return args.lr * (it + 1) / (args.warmup + 1)
    if it >= args.steps:
        return args.min_lr
    span = args.steps - args.warmup
    ratio = (it - args.warmup) / span if span > 0 else 1.0
    return args.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (args.lr - args.min_lr)


def train_step(model, opt, masks, x, y, lr, clip):
    for g in opt.param_groups:
        g["lr"] = lr
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    for w, mk in masks:
        w.grad.mul_(mk)
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    if masks:
        with torch.no_grad():
            for w, mk in masks:
                w.mul_(mk)
    return loss.item()


# ---- evaluation (rw_lm_evaluate and rewire's random-window estimate)

@torch.no_grad()
def evaluate_split(model, split, context, windows_per_pass=64):
    """Mean loss over every token of split but the first, in non-overlapping
    windows of context tokens; the last window may be shorter."""
    n = len(split)
    full = (n - 1) // context
    total, count = 0.0, 0
    t = torch.from_numpy(split)
    for w0 in range(0, full, windows_per_pass):
        w1 = min(full, w0 + windows_per_pass)
        x = t[w0 * context:w1 * context].view(-1, context)
        y = t[w0 * context + 1:w1 * context + 1].view(-1, context)
        logits = model(x)
        total += F.cross_entropy(logits.view(-1, logits.shape[-1]), y.reshape(-1),
                                 reduction="sum").item()
        count += y.numel()
    rest = (n - 1) - full * context
    if rest > 0:
        x = t[full * context:full * context + rest].view(1, rest)
        y = t[full * context + 1:full * context + rest + 1].view(1, rest)
        logits = model(x)
        total += F.cross_entropy(logits.view(-1, logits.shape[-1]), y.reshape(-1),
                                 reduction="sum").item()
        count += rest
    return total / count, count


@torch.no_grad()
def estimate_split(model, split, context, batch, batches, seed):
    """The mean loss over `batches` batches of random windows, the ones
    rewire's estimate_split draws (stream seed ^ LM_ESTIMATE_STREAM, step k)."""
    total = 0.0
    for k in range(batches):
        x, y = sample_batch(split, context, batch, seed ^ LM_ESTIMATE_STREAM, k)
        logits = model(x)
        total += F.cross_entropy(logits.view(-1, logits.shape[-1]), y.reshape(-1)).item()
    return total / batches


# ---- generation with a KV cache (batch 1)

class Decoder:
    """One token at a time through the model, keys and values cached.
    The block maps run as matrix-vector products: dense (F.linear on a
    vector) or, for path sparse_csr, torch.sparse_csr_tensor times a column."""

    def __init__(self, model, csr=False):
        self.m = model
        C, T, L = model.dim, model.context, len(model.blocks)
        self.H = model.blocks[0].heads
        self.hd = C // self.H
        self.k = torch.zeros(L, self.H, T, self.hd)
        self.v = torch.zeros(L, self.H, T, self.hd)
        if csr:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.w = [[l.weight.detach().to_sparse_csr() for l in b.maps()]
                          for b in model.blocks]
            self.mv = lambda w, x: (w @ x.unsqueeze(1)).squeeze(1)
        else:
            self.w = [[l.weight.detach() for l in b.maps()] for b in model.blocks]
            self.mv = lambda w, x: F.linear(x, w)

    @torch.inference_mode()
    def feed(self, token, pos):
        """Logits ([vocab]) after token at position pos; caches its keys and values."""
        m, H, hd, mv = self.m, self.H, self.hd, self.mv
        x = m.wte.weight[token] + m.wpe.weight[pos]  # (C,)
        for l, b in enumerate(m.blocks):
            wqkv, wproj, wup, wdown = self.w[l]
            q, k, v = mv(wqkv, b.ln_1(x)).split(m.dim)
            self.k[l, :, pos] = k.view(H, hd)
            self.v[l, :, pos] = v.view(H, hd)
            keys, vals = self.k[l, :, :pos + 1], self.v[l, :, :pos + 1]  # (H,pos+1,hd)
            p = (torch.bmm(keys, q.view(H, hd, 1)).squeeze(2) / math.sqrt(hd)).softmax(-1)
            y = torch.bmm(p.unsqueeze(1), vals).view(-1)  # (C,)
            x = x + mv(wproj, y)
            x = x + mv(wdown, F.gelu(mv(wup, b.ln_2(x)), approximate="tanh"))
        return F.linear(m.ln_f(x), m.wte.weight)

    def generate(self, prompt, n_new, gen):
        """rw_lm_generate's loop: temperature 1, all tokens; past the context,
        restart from the last context / 2 tokens. Returns (tokens, forwards)."""
        T = self.m.context
        h = list(prompt)
        start, fed, keep, forwards = 0, 0, max(1, T // 2), 0
        logits = None
        for _ in range(n_new):
            while start + fed < len(h):
                if fed == T:
                    start, fed = len(h) - keep, 0
                logits = self.feed(h[start + fed], fed)
                fed += 1
                forwards += 1
            h.append(int(torch.multinomial(logits.softmax(-1), 1, generator=gen)))
        return h[len(prompt):], forwards


# ---- reporting

def blas_library():
    """The BLAS this process loaded, e.g. 'openblas-openmp/libblas.so.3'."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.split()[-1]}
    except OSError:
        return "unknown"
    names = sorted("/".join(p.split("/")[-2:]) for p in libs)
    return ",".join(names) if names else "none"


def load_average():
    """The 1-minute load average: other work on the machine skews the times."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return -1.0


def emit(obj):
    print(json.dumps(obj), flush=True)


def common_fields(args, model, masks, sparsity_arg, path):
    nnz, all_ = map_counts(model, masks)
    return {"impl": "pytorch", "path": path, "sparsity": 1.0 - nnz / all_,
            "requested_sparsity": sparsity_arg, "nonzeros": nnz, "layers": args.layers,
            "heads": args.heads, "dim": args.dim, "context": args.context, "vocab": 256,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "blas": blas_library(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "loadavg": load_average()}


# ---- modes

def speed_train(args, corpus, sparsity):
    model, masks = build(args, sparsity)
    opt = make_optimizer(model, args)
    B, T = args.batch, args.context
    warm = args.warmup_steps
    n_steps = warm + args.repeats * args.steps
    # the windows first, so the clock sees training steps only
    batches = [sample_batch(corpus.train, T, B, args.seed, s + 1) for s in range(n_steps)]
    for s in range(warm):
        train_step(model, opt, masks, *batches[s], lr_at(args, s), args.clip)
    per_step, cpu = [], 0.0
    s = warm
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.steps):
            train_step(model, opt, masks, *batches[s], lr_at(args, s), args.clip)
            s += 1
        per_step.append((time.perf_counter() - t0) / args.steps)
        cpu += time.process_time() - c0
    med, best = statistics.median(per_step), min(per_step)
    row = {"bench": "lm_train"}
    row.update(common_fields(args, model, masks, sparsity, "masked" if masks else "dense"))
    row.update({"batch": B, "optimizer": "adamw", "tokens_per_second": B * T / med,
                "best_tokens_per_second": B * T / best, "samples_per_second": B * T / med,
                "best_samples_per_second": B * T / best, "seconds": med, "best_seconds": best,
                "cpu_seconds_per_step": cpu / (args.repeats * args.steps),
                "steps": args.steps, "repeats": args.repeats, "warmup_steps": warm,
                "data": corpus.name})
    emit(row)


def speed_generate(args, sparsity, csr):
    model, masks = build(args, sparsity)
    model.eval()
    dec = Decoder(model, csr)
    gen = torch.Generator().manual_seed(args.seed)
    n_new = args.gen_tokens or args.context
    prompt = [10]  # "\n"
    dec.generate(prompt, n_new, gen)  # warm-up
    per_token, forwards, cpu = [], 0, 0.0
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        _, forwards = dec.generate(prompt, n_new, gen)
        per_token.append((time.perf_counter() - t0) / n_new)
        cpu += time.process_time() - c0
    med, best = statistics.median(per_token), min(per_token)
    path = "sparse_csr" if csr else ("masked" if masks else "dense")
    row = {"bench": "lm_generate"}
    row.update(common_fields(args, model, masks, sparsity, path))
    row.update({"batch": 1, "tokens": n_new, "forwards": forwards,
                "tokens_per_second": 1.0 / med, "best_tokens_per_second": 1.0 / best,
                "seconds_per_token": med,
                "cpu_seconds_per_token": cpu / (args.repeats * n_new), "repeats": args.repeats})
    emit(row)


def train(args, corpus, sparsity):
    model, masks = build(args, sparsity)
    opt = make_optimizer(model, args)
    B, T = args.batch, args.context
    path = "masked" if masks else "dense"
    start, cpu0 = time.perf_counter(), time.process_time()
    train_seconds, seg_loss, seg_steps, seg_seconds, last_loss = 0.0, 0.0, 0, 0.0, 0.0
    for step in range(1, args.steps + 1):
        x, y = sample_batch(corpus.train, T, B, args.seed, step)
        lr = lr_at(args, step - 1)
        t0 = time.perf_counter()
        loss = train_step(model, opt, masks, x, y, lr, args.clip)
        dt = time.perf_counter() - t0
        if not math.isfinite(loss):
            raise SystemExit(f"step {step}: the loss is {loss}")
        train_seconds += dt
        seg_loss, seg_steps, seg_seconds = seg_loss + loss, seg_steps + 1, seg_seconds + dt
        if step < args.steps and args.eval_every > 0 and step % args.eval_every == 0:
            model.eval()
            est = estimate_split(model, corpus.val, T, B, args.eval_batches, args.seed)
            model.train()
            emit({"bench": "lm_progress", "impl": "pytorch", "path": path, "step": step,
                  "steps": args.steps, "train_loss": seg_loss / seg_steps,
                  "val_loss_estimate": est, "lr": lr,
                  "tokens_per_second": seg_steps * B * T / seg_seconds,
                  "seconds": time.perf_counter() - start, "loadavg": load_average()})
            last_loss = seg_loss / seg_steps
            seg_loss, seg_steps, seg_seconds = 0.0, 0, 0.0
    if seg_steps:
        last_loss = seg_loss / seg_steps
    model.eval()
    val_loss, val_tokens = evaluate_split(model, corpus.val, T)
    row = {"bench": "lm_quality"}
    row.update(common_fields(args, model, masks, sparsity, path))
    row.update({"val_loss": val_loss, "val_bits_per_byte": val_loss / math.log(2),
                "val_tokens": val_tokens, "train_loss": last_loss, "steps": args.steps,
                "seconds": time.perf_counter() - start, "train_seconds": train_seconds,
                "cpu_seconds": time.process_time() - cpu0,
                "tokens_per_second": args.steps * B * T / train_seconds, "batch": B,
                "lr": args.lr, "min_lr": args.min_lr, "warmup_steps": args.warmup,
                "weight_decay": args.weight_decay, "clip": args.clip, "seed": args.seed,
                "data": corpus.name, "val_fraction": 0.1})
    emit(row)


def check_windows(args, corpus):
    print(f"n_tokens {len(corpus.tokens)} n_train {corpus.n_train}")
    for s in range(1, args.steps + 1):
        starts = window_starts(corpus.n_train, args.context, args.batch, args.seed, s)
        print(f"starts {s}: " + " ".join(str(v) for v in starts))
    r = Xoshiro(args.seed)
    print(f"raw: {r.next()} {r.next()} {r.next()}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--speed", action="store_true", help="training steps per second")
    mode.add_argument("--generate-speed", action="store_true", help="batch-1 decoding tokens/s")
    mode.add_argument("--train", action="store_true", help="the full run and its val loss")
    mode.add_argument("--check-windows", action="store_true",
                      help="print the first steps' window starts")
    p.add_argument("--text", help="a text file (bytes tokenizer, 90/10 split); speed modes "
                   "use random bytes without it")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (--train: 2000) or steps per measurement (--speed: 20)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100, help="learning-rate warm-up steps")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--clip", type=float, default=1.0, help="global gradient norm (0: off)")
    p.add_argument("--sparsity", default="0",
                   help="0 dense, S > 0 dense x ERK mask; a comma list in the speed modes")
    p.add_argument("--threads", default="2", help="a thread count, or a comma list (speed)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-batches", type=int, default=20)
    p.add_argument("--repeats", type=int, default=5, help="speed: measurements (median)")
    p.add_argument("--warmup-steps", type=int, default=5, help="speed: untimed steps first")
    p.add_argument("--gen-tokens", type=int, default=0,
                   help="tokens per generation (0: context, so no cache restart)")
    p.add_argument("--no-csr", action="store_true", help="generate-speed: skip sparse_csr")
    p.add_argument("--foreach", action=argparse.BooleanOptionalAction, default=True,
                   help="AdamW's multi-tensor update (faster here)")
    args = p.parse_args()
    if args.steps is None:
        args.steps = 2000 if args.train else (3 if args.check_windows else 20)
    sparsities = [float(s) for s in args.sparsity.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    if any(not 0.0 <= s < 1.0 for s in sparsities):
        raise SystemExit("--sparsity: each value must be in [0, 1)")
    if args.train and (len(sparsities) > 1 or len(threads) > 1):
        raise SystemExit("--train takes one --sparsity and one --threads")
    if (args.train or args.check_windows) and not args.text:
        raise SystemExit("--train and --check-windows need --text FILE")
    corpus = Corpus(args.text) if args.text else Corpus.synthetic(1 << 20, args.seed)
    if min(len(corpus.train), len(corpus.val)) < args.context + 1:
        raise SystemExit(f"{args.text}: a split holds fewer than context + 1 tokens")
    torch.set_num_interop_threads(1)
    if args.check_windows:
        check_windows(args, corpus)
        return 0
    for t in threads:
        torch.set_num_threads(t)
        for s in sparsities:
            if args.train:
                train(args, corpus, s)
            elif args.speed:
                speed_train(args, corpus, s)
            else:
                speed_generate(args, s, csr=False)
                if s > 0 and not args.no_csr:
                    speed_generate(args, s, csr=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
