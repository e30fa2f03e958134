#!/usr/bin/env python3
"""Writes the small .npy files tests/test_data_npy.c loads, with numpy's own
writer, so that the loader is held to files numpy really makes (the test
also writes .npy files itself, byte by byte, for every broken case).

    python3 tools/make_npy_fixtures.py [--out tests/data/npy]

Every array is a fixed function of its index, which the test recomputes:
    x[i, j] = (3 i + j) / 4 - 1      i < 4, j < 3
    y[i]    = (0, 2, 1, 2)[i]
Files (each a few hundred bytes; rerunning rewrites the same bytes):
    x_f4.npy          '<f4', C order, format 1.0
    x_f8_fortran.npy  '<f8', Fortran order (np.asfortranarray), format 1.0
    x_u1.npy          '|u1', values 3 i + j (not scaled), format 1.0
    x_f4_v2.npy       '<f4', format 2.0 (np.lib.format.write_array)
    x_f4_v3.npy       '<f4', format 3.0
    y_i8.npy          '<i8' (numpy's default integer on Linux)
    y_u1.npy          '|u1'
    y_i4_column.npy   '<i4' of shape (4, 1)
Needs numpy (Debian: python3-numpy).
"""

import argparse
import os

import numpy as np


def write(path, array, version=None):
    with open(path, "wb") as f:
        if version is None:
            np.save(f, array)
        else:
            np.lib.format.write_array(f, array, version=version)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "npy"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    i, j = np.meshgrid(np.arange(4), np.arange(3), indexing="ij")
    x = (3 * i + j) / 4.0 - 1.0
    y = np.array([0, 2, 1, 2])
    out = lambda name: os.path.join(args.out, name)
    write(out("x_f4.npy"), x.astype("<f4"))
    write(out("x_f8_fortran.npy"), np.asfortranarray(x.astype("<f8")))
    write(out("x_u1.npy"), (3 * i + j).astype("|u1"))
    write(out("x_f4_v2.npy"), x.astype("<f4"), version=(2, 0))
    write(out("x_f4_v3.npy"), x.astype("<f4"), version=(3, 0))
    write(out("y_i8.npy"), y.astype("<i8"))
    write(out("y_u1.npy"), y.astype("|u1"))
    write(out("y_i4_column.npy"), y.astype("<i4").reshape(4, 1))


if __name__ == "__main__":
    main()
