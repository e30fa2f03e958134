"""Checks on the arrays callers hand in, and numpy views of library memory.

Inputs are taken as they are or refused: float32 and C-contiguous pass
through without a copy; anything else is a TypeError / ValueError naming
what was expected, never a silent conversion (a float64 array truncated to
float32 behind the caller's back, or a strided one read as if packed)."""

import weakref

import numpy as np

from ._lib import ffi

F32 = np.dtype(np.float32)
I32 = np.dtype(np.int32)
INT_MAX = 2**31 - 1


def samples(x, features, name="x"):
    """x as the [batch, features] float32 C-contiguous array it must be."""
    if not isinstance(x, np.ndarray):
        raise TypeError("%s must be a numpy.ndarray of float32, shape [batch, %d], C-contiguous; "
                        "got %s" % (name, features, type(x).__name__))
    if x.dtype != F32:
        raise TypeError("%s has dtype %s; expected float32 (the model computes in float32: "
                        "convert explicitly, e.g. %s.astype(numpy.float32))" % (name, x.dtype, name))
    if x.ndim != 2:
        hint = " (one sample is %s[None, :])" % name if x.ndim == 1 else ""
        raise ValueError("%s has shape %s; expected [batch, %d]%s" % (name, x.shape, features, hint))
    if x.shape[1] != features:
        raise ValueError("%s has %d features per sample (shape %s); the model takes %d"
                         % (name, x.shape[1], x.shape, features))
    if not x.flags.c_contiguous:
        raise ValueError("%s is not C-contiguous (row-major, rows packed); pass "
                         "numpy.ascontiguousarray(%s), which copies it" % (name, name))
    if x.shape[0] > INT_MAX:
        raise ValueError("%s has %d samples, more than %d" % (name, x.shape[0], INT_MAX))
    return x


def int32_tokens(ids, name="tokens"):
    """A 1-D int32 C-contiguous array of token ids (lists are converted:
    they hold Python ints, nothing is truncated)."""
    if isinstance(ids, (list, tuple)):
        ids = np.array(ids, dtype=np.int64)
        if ids.size and (ids.min() < -2**31 or ids.max() > INT_MAX):
            raise ValueError("%s: an id does not fit int32" % name)
        ids = ids.astype(np.int32)
    if not isinstance(ids, np.ndarray):
        raise TypeError("%s must be a list of ints or a numpy.ndarray of int32, got %s"
                        % (name, type(ids).__name__))
    if ids.dtype != I32:
        raise TypeError("%s has dtype %s; expected int32" % (name, ids.dtype))
    if ids.ndim != 1:
        raise ValueError("%s has shape %s; expected one dimension" % (name, ids.shape))
    if not ids.flags.c_contiguous:
        raise ValueError("%s is not contiguous; pass numpy.ascontiguousarray(%s)" % (name, name))
    return ids


class _View:
    """The owner of a numpy array over library memory: numpy keeps it as the
    array's base, and it keeps what owns the memory alive (a model handle,
    a dataset), so the memory outlives every array that shows it."""

    __slots__ = ("__array_interface__", "owner", "__weakref__")

    def __init__(self, owner, ptr, shape, typestr, writable):
        self.owner = owner
        self.__array_interface__ = {
            "version": 3, "shape": tuple(shape), "typestr": typestr,
            "data": (int(ffi.cast("uintptr_t", ptr)), not writable),
        }


def view(owner, ptr, shape, dtype, writable=False, registry=None):
    """A numpy array over `ptr` (a cffi pointer) that keeps `owner` alive;
    its owner object joins `registry` (a WeakSet) while any array derived
    from it lives."""
    dtype = np.dtype(dtype)
    count = 1
    for s in shape:
        count *= s
    if count == 0 or ptr == ffi.NULL:
        a = np.zeros(shape, dtype)
        a.flags.writeable = writable
        return a
    v = _View(owner, ptr, shape, dtype.str, writable)
    if registry is not None:
        registry.add(v)
    return np.asarray(v)


def new_registry():
    return weakref.WeakSet()
