"""rewire.Dataset: samples in the library's memory (IDX, CSV, .npy files or
numpy arrays), with numpy views of them."""

import numpy as np

from . import _arrays
from ._lib import Error, check, cstr, ffi, lib


class _DataHandle:
    def __init__(self, ptr):
        self.ptr = ptr

    def __del__(self):
        if getattr(self, "ptr", None) is not None:
            lib.rw_dataset_free(self.ptr)
            self.ptr = None


def _split_name(split):
    if split in ("train", "test"):
        return split == "test"
    raise ValueError("split must be 'train' or 'test', got %r" % (split,))


class Dataset:
    """Samples x [count, features] (float32) and labels y [count] (uint8)."""

    def __init__(self, ptr):
        if ptr == ffi.NULL:
            raise Error("no dataset", "invalid argument")
        self._handle = _DataHandle(ptr)

    @classmethod
    def _make(cls, fn, *args):
        out = ffi.new("rw_dataset **")
        check(fn(*args, out))
        return cls(out[0])

    @classmethod
    def load(cls, name="fashion-mnist", split="train", limit=0):
        """A split of an IDX dataset: 'fashion-mnist' (Debian's
        dataset-fashion-mnist), 'mnist', or a folder of the four standard
        files. Pixels are scaled to [0, 1]. limit > 0 keeps the first samples."""
        out = ffi.new("rw_dataset **")
        check(lib.rw_dataset_load_part(cstr(name, "a dataset"), _split_name(split), int(limit),
                                       0.0, 0, out, ffi.NULL))
        return cls(out[0])

    @classmethod
    def load_idx(cls, images, labels):
        return cls._make(lib.rw_dataset_load_idx, cstr(images), cstr(labels))

    @classmethod
    def load_csv(cls, path, label=-1, header="auto", delimiter=None, skip_rows=0):
        """A CSV file: `label` is the label column's index (negative from the
        end) or its header name; header 'auto', True or False."""
        o = ffi.new("rw_csv_options *", lib.rw_csv_options_default())
        keep = None
        if isinstance(label, str):
            keep = ffi.new("char[]", cstr(label, "a column name"))
            o.label_name = keep
        else:
            o.label_index = int(label)
        o.header = {"auto": 0, True: 1, False: 2}[header]
        if delimiter is not None:
            if len(delimiter) != 1:
                raise ValueError("delimiter must be one character, got %r" % (delimiter,))
            o.delimiter = delimiter.encode()
        o.skip_rows = int(skip_rows)
        return cls._make(lib.rw_dataset_load_csv, cstr(path), o)

    @classmethod
    def load_npy(cls, x_path, y_path):
        return cls._make(lib.rw_dataset_load_npy, cstr(x_path), cstr(y_path))

    @classmethod
    def from_numpy(cls, x, y, classes=None):
        """Copies x [count, features] (float32, C-contiguous, finite) and y
        [count] (integers in [0, classes)) into a dataset."""
        if not isinstance(x, np.ndarray) or x.ndim != 2:
            raise ValueError("x must be a 2-D numpy array [count, features]")
        _arrays.samples(x, x.shape[1])
        y = np.asarray(y)
        if y.shape != (x.shape[0],):
            raise ValueError("y has shape %s; expected (%d,)" % (y.shape, x.shape[0]))
        if y.dtype.kind not in "iu":
            raise TypeError("y has dtype %s; expected integer labels" % y.dtype)
        if y.size and (y.min() < 0 or y.max() > 255):
            raise ValueError("labels must be in [0, 255]")
        y8 = np.ascontiguousarray(y, dtype=np.uint8)
        k = int(classes) if classes is not None else (int(y8.max()) + 1 if y8.size else 1)
        return cls._make(lib.rw_dataset_from_memory, ffi.from_buffer("float[]", x), ffi.from_buffer("uint8_t[]", y8),
                         x.shape[0], x.shape[1], k)

    def _ptr(self):
        if self._handle is None:
            raise Error("the dataset is closed", "invalid argument")
        return self._handle.ptr

    def close(self):
        self._handle = None

    def __len__(self):
        return lib.rw_dataset_count(self._ptr())

    @property
    def features(self):
        return lib.rw_dataset_features(self._ptr())

    @property
    def classes(self):
        return lib.rw_dataset_classes(self._ptr())

    @property
    def x(self):
        """The samples [count, features], a read-only view (no copy)."""
        p = ffi.new("const float **")
        lib.rw_dataset_arrays(self._ptr(), p, ffi.NULL)
        return _arrays.view(self._handle, p[0], (len(self), self.features), np.float32)

    @property
    def y(self):
        """The labels [count], a read-only view."""
        p = ffi.new("const uint8_t **")
        lib.rw_dataset_arrays(self._ptr(), ffi.NULL, p)
        return _arrays.view(self._handle, p[0], (len(self),), np.uint8)

    def stats(self):
        """(mean, std) over every feature, for Model.normalization."""
        mean, std = ffi.new("float *"), ffi.new("float *")
        lib.rw_dataset_stats(self._ptr(), mean, std)
        return mean[0], std[0]

    def feature_stats(self):
        """Per-feature (mean [features], std [features])."""
        mean = np.empty(self.features, np.float32)
        std = np.empty(self.features, np.float32)
        check(lib.rw_dataset_feature_stats(self._ptr(), ffi.from_buffer("float[]", mean), ffi.from_buffer("float[]", std)))
        return mean, std

    def head(self, n):
        return Dataset._make(lib.rw_dataset_head, self._ptr(), int(n))

    def split(self, fraction, seed=1):
        """(rest, held_out): round(fraction x count) samples of a seeded
        permutation held out."""
        a, b = ffi.new("rw_dataset **"), ffi.new("rw_dataset **")
        check(lib.rw_dataset_split_fraction(self._ptr(), float(fraction), int(seed), a, b))
        return Dataset(a[0]), Dataset(b[0])

    def class_name(self, k):
        s = lib.rw_dataset_class_name(self._ptr(), int(k))
        return None if s == ffi.NULL else ffi.string(s).decode()

    def __repr__(self):
        if self._handle is None:
            return "<rewire.Dataset (closed)>"
        return "<rewire.Dataset %d samples, %d features, %d classes>" % (
            len(self), self.features, self.classes)
