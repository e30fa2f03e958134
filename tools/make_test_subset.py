#!/usr/bin/env python3
"""Writes the small Fashion-MNIST subset the tests load.

Reads Debian's dataset-fashion-mnist files (gzipped IDX) and writes the first
TRAIN training samples and the first TEST test samples, in the same gzipped
IDX format and under the same four names, into tests/data/fashion-small/.
The output is byte-for-byte reproducible (gzip mtime 0, no file name), so
re-running it leaves the committed files unchanged.

Usage: python3 tools/make_test_subset.py [--src DIR] [--out DIR]
                                         [--train N] [--test N]
Only the Python standard library is used.
"""

import argparse
import gzip
import os
import struct
import sys

UBYTE = 0x08


def read_idx(path, ndim):
    """Returns (dims, data bytes) of an unsigned-byte IDX file, checked."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 + 4 * ndim:
        sys.exit(f"{path}: file ends inside the IDX header")
    zero0, zero1, kind, rank = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or kind != UBYTE or rank != ndim:
        sys.exit(f"{path}: expected an unsigned-byte IDX file of {ndim} dimensions")
    dims = list(struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim]))
    size = 1
    for d in dims:
        size *= d
    data = raw[4 + 4 * ndim:]
    if len(data) != size:
        sys.exit(f"{path}: header declares {size} data bytes, file has {len(data)}")
    return dims, data


def write_idx(path, dims, data):
    header = bytes([0, 0, UBYTE, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    with open(path, "wb") as raw:
        # filename="" and mtime=0 keep the gzip header free of run details.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9,
                           mtime=0) as f:
            f.write(header)
            f.write(data)


def subset(src, out, prefix, n):
    images = os.path.join(src, f"{prefix}-images-idx3-ubyte.gz")
    labels = os.path.join(src, f"{prefix}-labels-idx1-ubyte.gz")
    idims, pixels = read_idx(images, 3)
    ldims, marks = read_idx(labels, 1)
    if idims[0] != ldims[0]:
        sys.exit(f"{images} has {idims[0]} images but {labels} has {ldims[0]} labels")
    if n > idims[0]:
        sys.exit(f"{images}: asked for {n} samples, file has {idims[0]}")
    per = idims[1] * idims[2]
    write_idx(os.path.join(out, f"{prefix}-images-idx3-ubyte.gz"),
              [n, idims[1], idims[2]], pixels[:n * per])
    write_idx(os.path.join(out, f"{prefix}-labels-idx1-ubyte.gz"), [n], marks[:n])


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="/usr/share/datasets/fashion-mnist",
                    help="folder of the full gzipped IDX files "
                         "(apt-get install dataset-fashion-mnist)")
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "fashion-small"))
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--test", type=int, default=1000)
    args = ap.parse_args()
    if not os.path.isdir(args.src):
        sys.exit(f"{args.src}: not found; install it with `apt-get install dataset-fashion-mnist`")
    os.makedirs(args.out, exist_ok=True)
    subset(args.src, args.out, "train", args.train)
    subset(args.src, args.out, "t10k", args.test)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {args.train} training and {args.test} test samples to {args.out} "
          f"({total} bytes)")


if __name__ == "__main__":
    main()
