#!/usr/bin/python3
"""Where a model's first layer puts its connections, against how much each
input pixel varies over the training images: connections per pixel for the
most and least varying quarter of pixels, and their rank correlation.

    tools/connectivity_stats.py MODEL.safetensors [MORE.safetensors ...] [--extremes N] \
        [--images /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz]

Standard library only (reads safetensors and IDX directly)."""
import argparse
import gzip
import json
import struct


def first_layer_fan_out(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    layers = json.loads(header["__metadata__"]["layers"])
    first = layers[0]
    t = header[first["name"] + ".indices"]
    a, b = t["data_offsets"]
    data = raw[8 + n + a:8 + n + b]
    fan = [0] * first["in"]
    for (i,) in struct.iter_unpack("<i", data):
        fan[i] += 1
    return fan


def pixel_std(path):
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    _, count, rows, cols = struct.unpack(">IIII", raw[:16])
    f = rows * cols
    s = [0.0] * f
    q = [0.0] * f
    for k in range(count):
        img = raw[16 + k * f:16 + (k + 1) * f]
        for i, v in enumerate(img):
            s[i] += v
            q[i] += v * v
    return [max(q[i] / count - (s[i] / count) ** 2, 0) ** 0.5 / 255 for i in range(f)]


def ranks(x):
    order = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2
        i = j + 1
    return r


def spearman(x, y):
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    vx = sum((a - mx) ** 2 for a in rx) ** 0.5
    vy = sum((b - my) ** 2 for b in ry) ** 0.5
    return cov / (vx * vy)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+")
    p.add_argument("--images", default="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
    p.add_argument("--extremes", type=int, default=100, metavar="N",
                   help="also compare the N least and N most varying pixels (default 100)")
    a = p.parse_args()
    std = pixel_std(a.images)
    order = sorted(range(len(std)), key=lambda i: std[i])
    q = len(order) // 4
    low, high = order[:q], order[-q:]
    for m in a.models:
        fan = first_layer_fan_out(m)
        lo = sum(fan[i] for i in low) / q
        hi = sum(fan[i] for i in high) / q
        print(f"{m}: connections per pixel {sum(fan) / len(fan):.2f} on average; "
              f"{hi:.2f} on the most varying quarter of pixels, {lo:.2f} on the least varying; "
              f"Spearman correlation with pixel std {spearman(fan, std):+.3f}")
        n = a.extremes
        if n > 0:
            lo_n = sum(fan[i] for i in order[:n])
            hi_n = sum(fan[i] for i in order[-n:])
            ratio = lo_n / hi_n if hi_n else float("inf")
            print(f"  connections on the {n} least varying pixels {lo_n}, on the {n} most "
                  f"varying {hi_n}: ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
