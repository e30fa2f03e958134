#!/usr/bin/python3
"""PyTorch yardsticks for `rewire bench train` and `rewire bench infer`.

The same MLP (784-1000-1000-1000-10 by default, ReLU), the same synthetic
data (uniform features normalised as rewire does, random labels), batch,
optimizer (SGD, momentum 0.9, constant learning rate) and thread count,
run three ways:

  train, path "dense"   torch.nn.Linear layers, the ordinary dense network
  train, path "masked"  dense layers times a fixed 0/1 mask at each sparsity,
                        the way RigL and SET are usually run in PyTorch: the
                        mask is applied to the gradients before each step
                        and to the weights after it
  infer, path "dense"   torch.nn.Linear at batch 1 and 256 (no_grad)
  infer, path "sparse_csr"  torch.sparse_csr_tensor layers at each sparsity

Masks follow rewire's Erdos-Renyi-Kernel shares (--init erk), so a row has
the nonzeros rewire's would. Prints one JSON object per line in the shape of
`rewire bench train|infer --json`, so bench/tabulate.py can put both side by
side.

Usage: /usr/bin/python3 bench/peer_pytorch.py [--what train,infer]
           [--hidden 1000,1000,1000] [--sparsities 0,0.95,0.99] [--threads 2]
           [--batch 128] [--steps 50] [--repeats 5] [--batches 1,256] [--time 0.2]
"""
import argparse
import json
import os
import statistics
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_blas  # noqa: E402

peer_blas.use_openmp_blas()
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

BLAS = peer_blas.blas_in_use()


def erk_densities(sizes, sparsity, dist="erk"):
    """rewire's sparsity_distribute (src/sparsity/distribution.c) in Python."""
    n = len(sizes) - 1
    params = [sizes[l] * sizes[l + 1] for l in range(n)]
    total = sum(params)
    dense = [sparsity == 0.0] * n
    while True:
        budget = (1.0 - sparsity) * total
        weight = 0.0
        for l in range(n):
            if dense[l]:
                budget -= params[l]
            else:
                raw = 1.0 if dist == "uniform" else (sizes[l] + sizes[l + 1]) / params[l]
                weight += raw * params[l]
        if weight == 0.0:
            return [1.0] * n
        eps = budget / weight
        dens, worst, worst_d = [], -1, 1.0
        for l in range(n):
            if dense[l]:
                dens.append(1.0)
                continue
            raw = 1.0 if dist == "uniform" else (sizes[l] + sizes[l + 1]) / params[l]
            d = eps * raw
            dens.append(d)
            if d > worst_d:
                worst, worst_d = l, d
        if worst < 0:
            return dens
        dense[worst] = True


def random_mask(out_f, in_f, density, gen):
    """A 0/1 mask with round(density * out * in) ones at random places."""
    total = out_f * in_f
    k = max(1, round(density * total)) if density > 0 else 0
    flat = torch.zeros(total)
    flat[torch.randperm(total, generator=gen)[:k]] = 1.0
    return flat.view(out_f, in_f)


def make_net(sizes, seed):
    torch.manual_seed(seed)
    layers = []
    for l in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[l], sizes[l + 1]))
        if l < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def linears(net):
    return [m for m in net if isinstance(m, torch.nn.Linear)]


def synthetic(n, features, classes, seed):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, features, generator=gen) - 0.5) / 0.29
    y = torch.randint(0, classes, (n,), generator=gen)
    return x, y


def row(args, bench, path, sizes, sparsity, nonzeros, batch, per_call, extra=None):
    med, best = statistics.median(per_call), min(per_call)
    r = {"bench": bench, "impl": "pytorch", "path": path,
         "net": "-".join(str(s) for s in sizes), "sparsity": sparsity, "nonzeros": nonzeros,
         "batch": batch, "threads": torch.get_num_threads(), "optimizer": "sgd",
         "samples_per_second": batch / med, "best_samples_per_second": batch / best,
         "seconds": med, "best_seconds": best, "data": "synthetic",
         "torch": torch.__version__, "blas": BLAS}
    if extra:
        r.update(extra)
    return r


def bench_train(args, sizes, sparsity):
    net = make_net(sizes, args.seed)
    masks = None
    nonzeros = sum(m.weight.numel() for m in linears(net))
    if sparsity > 0:
        gen = torch.Generator().manual_seed(args.seed)
        dens = erk_densities(sizes, sparsity, args.init)
        masks = [random_mask(m.out_features, m.in_features, d, gen)
                 for m, d in zip(linears(net), dens)]
        with torch.no_grad():
            for m, mask in zip(linears(net), masks):
                m.weight.mul_(mask)
        nonzeros = int(sum(mask.sum().item() for mask in masks))
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    n = args.steps * args.batch
    x, y = synthetic(n, sizes[0], sizes[-1], args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)

    def epoch():
        order = torch.randperm(n, generator=gen)
        start = time.perf_counter()
        for s in range(args.steps):
            idx = order[s * args.batch:(s + 1) * args.batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(xb), yb)
            loss.backward()
            if masks:
                for m, mask in zip(linears(net), masks):
                    m.weight.grad.mul_(mask)
            opt.step()
            if masks:
                with torch.no_grad():
                    for m, mask in zip(linears(net), masks):
                        m.weight.mul_(mask)
        return (time.perf_counter() - start) / args.steps

    epoch()  # warm-up
    per_step = [epoch() for _ in range(args.repeats)]
    return row(args, "train", "masked" if masks else "dense", sizes, 1.0 - nonzeros / sum(
        sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1)) if masks else 0.0, nonzeros,
        args.batch, per_step, {"steps": args.steps})


class CsrNet:
    """Inference through torch.sparse_csr_tensor layers, activations kept
    feature-major (features x batch) so no transposes between layers."""

    def __init__(self, sizes, sparsity, seed, init):
        net = make_net(sizes, seed)
        gen = torch.Generator().manual_seed(seed)
        dens = erk_densities(sizes, sparsity, init)
        self.layers = []
        self.nonzeros = 0
        for m, d in zip(linears(net), dens):
            w = (m.weight.detach() * random_mask(m.out_features, m.in_features, d, gen))
            csr = w.to_sparse_csr()
            self.nonzeros += csr.values().numel()
            self.layers.append((csr, m.bias.detach().view(-1, 1).clone()))

    def __call__(self, x):  # x is (n, in)
        h = x.t()
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            h = torch.addmm(b, w, h)
            if i < last:
                h = torch.relu(h)
        return h.t()


def bench_infer(args, sizes, sparsity, batch):
    if sparsity == 0:
        net = make_net(sizes, args.seed)
        nonzeros = sum(m.weight.numel() for m in linears(net))
        path = "dense"
    else:
        net = CsrNet(sizes, sparsity, args.seed, args.init)
        nonzeros = net.nonzeros
        path = "sparse_csr"
    pool = max(64, batch)
    x, _ = synthetic(pool, sizes[0], sizes[-1], args.seed)
    with torch.no_grad():
        torch.softmax(net(x[:batch]), dim=1)  # warm-up
        per_call = []
        for _ in range(args.repeats):
            calls, start = 0, time.perf_counter()
            while True:
                first = (calls * batch) % (pool - batch + 1)
                torch.softmax(net(x[first:first + batch]), dim=1)
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= args.time:
                    break
            per_call.append(elapsed / calls)
    total = sum(sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1))
    return row(args, "infer", path, sizes, 1.0 - nonzeros / total, nonzeros, batch, per_call)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--what", default="train,infer", help="train, infer or both (default both)")
    p.add_argument("--hidden", default="1000,1000,1000")
    p.add_argument("--inputs", type=int, default=784)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--sparsities", default="0,0.95,0.99",
                   help="0 is the dense network; others are masked (train) or CSR (infer)")
    p.add_argument("--init", default="erk", choices=["uniform", "er", "erk"])
    p.add_argument("--threads", default="2", help="thread counts, each measured in turn")
    p.add_argument("--only-threads", action="store_true",
                   help="run at exactly each --threads count; by default a count N > 1 reports "
                        "the best of 1 and N threads (its row's threads_used says which)")
    p.add_argument("--batch", type=int, default=128, help="training batch")
    p.add_argument("--steps", type=int, default=50, help="training steps per measurement")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batches", default="1,256", help="inference batch sizes")
    p.add_argument("--time", type=float, default=0.2, help="seconds per inference measurement")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    sizes = [args.inputs] + [int(s) for s in args.hidden.split(",")] + [args.classes]
    sparsities = [float(s) for s in args.sparsities.split(",")]
    what = args.what.split(",")
    torch.set_num_interop_threads(1)
    print(f"# peer: torch {torch.__version__}, BLAS {BLAS}, OMP_NUM_THREADS "
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, threads {args.threads}"
          f"{'' if args.only_threads else ' (best of 1 and each)'}", file=sys.stderr)

    def best_of(threads, measure):
        """The faster of 1 and `threads` threads, labelled `threads`: the
        peer gets its best setting on a machine where one thread may win."""
        rows = []
        for t in sorted({1, threads}) if threads > 1 and not args.only_threads else [threads]:
            torch.set_num_threads(t)
            rows.append(measure())
        best = max(rows, key=lambda r: r["samples_per_second"])
        best["threads_used"] = best["threads"]
        best["threads"] = threads
        best["samples_per_second_by_threads"] = {str(r["threads"]): r["samples_per_second"]
                                                 for r in rows}
        print(json.dumps(best), flush=True)

    for threads in [int(t) for t in args.threads.split(",")]:
        if "train" in what:
            for s in sparsities:
                best_of(threads, lambda: bench_train(args, sizes, s))
        if "infer" in what:
            for b in [int(v) for v in args.batches.split(",")]:
                for s in sparsities:
                    best_of(threads, lambda: bench_infer(args, sizes, s, b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
