"""Finds librewire.so and the rewire.h it was built with, and binds them
with cffi in ABI mode (no compiler: the declarations are read from the
header itself, so struct layouts follow the library's).

Where the library is looked for, first hit wins:
  1. $REWIRE_LIBRARY, a path to librewire.so;
  2. next to this package (pip install copies it there);
  3. the source tree's build folder (python/rewire -> ../../build), for
     PYTHONPATH=python use from a clone;
  4. the system's loader (librewire.so.0, as `cmake --install` puts it).
The header is the one beside the library: the package's copy, the source
tree's include/, or <prefix>/include next to <prefix>/lib.
"""

import ctypes.util
import os
import re

import cffi

_HERE = os.path.dirname(os.path.abspath(__file__))
_TREE = os.path.dirname(os.path.dirname(_HERE))  # python/rewire -> the clone


class Error(Exception):
    """A failure reported by the rewire library: `status` names its kind
    ("invalid argument", "i/o", "format", "diverged", ...) and the message
    is rw_last_error()'s, naming the input and what was expected."""

    def __init__(self, message, status="error"):
        super().__init__(message)
        self.status = status


def _candidates():
    env = os.environ.get("REWIRE_LIBRARY")
    if env:
        yield env, None
        return
    here = os.path.join(_HERE, "librewire.so")
    yield here, os.path.join(_HERE, "rewire.h")
    tree_header = os.path.join(_TREE, "include", "rewire.h")
    if os.path.isfile(tree_header):  # a clone: python/rewire next to include/ and build/
        yield os.path.join(_TREE, "build", "librewire.so"), tree_header


def _header_for(lib_path, hint):
    """The rewire.h that goes with the library at lib_path."""
    options = []
    if os.environ.get("REWIRE_HEADER"):
        options.append(os.environ["REWIRE_HEADER"])
    if hint:
        options.append(hint)
    if lib_path and os.path.sep in lib_path:
        real = os.path.dirname(os.path.realpath(lib_path))
        options += [os.path.join(real, "rewire.h"),
                    os.path.join(os.path.dirname(real), "include", "rewire.h"),
                    os.path.join(os.path.dirname(os.path.dirname(real)), "include", "rewire.h")]
    options += [os.path.join(_HERE, "rewire.h"), os.path.join(_TREE, "include", "rewire.h"),
                "/usr/local/include/rewire.h", "/usr/include/rewire.h"]
    for h in options:
        if os.path.isfile(h):
            return h
    raise ImportError("rewire: found the library %s but no rewire.h to go with it (looked in %s); "
                      "set REWIRE_HEADER" % (lib_path, ", ".join(options)))


def _declarations(header_path):
    """rewire.h as cffi's cdef takes it: no comments, no preprocessor lines,
    integer #defines substituted, the C++ guard dropped."""
    with open(header_path, encoding="utf-8") as f:
        src = f.read()
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    src = re.sub(r"//[^\n]*", "", src)
    defines, lines, skipping = {}, [], False
    for line in src.split("\n"):
        s = line.strip()
        if s.startswith("#"):
            if re.match(r"#\s*ifdef\s+__cplusplus", s):
                skipping = True
            elif re.match(r"#\s*endif", s):
                skipping = False
            m = re.match(r"#\s*define\s+(\w+)\s+([\d\s()<>+*-]+)$", s)
            if m:
                defines[m.group(1)] = str(int(eval(m.group(2), {"__builtins__": {}})))
            continue
        if not skipping:
            lines.append(line)
    text = "\n".join(lines)
    if defines:
        text = re.sub(r"\b(%s)\b" % "|".join(defines), lambda m: defines[m.group(1)], text)
    return text, defines


def _openmp_runtime_defaults():
    """libgomp spins ~12 ms before a waiting thread sleeps, the price of
    every wait on a busy machine; the rewire command sets GOMP_SPINCOUNT=2500
    (README, "How it works"). libgomp reads it when it loads, so this only
    helps when nothing has loaded libgomp yet (import rewire first)."""
    if "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ:
        return
    try:
        with open("/proc/self/maps") as f:
            if "libgomp" in f.read():
                return
    except OSError:
        return
    os.environ["GOMP_SPINCOUNT"] = "2500"


# Symbols this package calls: a library without one of them is older than
# the package (checked at import, so the failure names it).
_REQUIRED = ("rw_model_param", "rw_predictor_logits", "rw_run_stop", "rw_dataset_arrays",
             "rw_run_train_text", "rw_gpt_create", "rw_lm_generate")


def _load():
    _openmp_runtime_defaults()
    ffi = cffi.FFI()
    tried = []
    for path, hint in _candidates():
        if not os.path.isfile(path):
            tried.append(path)
            continue
        header = _header_for(path, hint)
        break
    else:
        path = None
        for name in ("librewire.so.0", ctypes.util.find_library("rewire")):
            if not name:
                continue
            try:
                ctypes.CDLL(name)
            except OSError:
                tried.append(name)
                continue
            path = name
            break
        if path is None:
            raise ImportError("rewire: cannot find librewire.so (tried %s); build it (cmake --build "
                              "build), install it (cmake --install build), or set REWIRE_LIBRARY"
                              % ", ".join(tried))
        header = _header_for(_loaded_path("librewire") or path, None)
    text, defines = _declarations(header)
    ffi.cdef(text)
    ffi.cdef("void free(void *ptr);")  # for what the library malloc's for its caller
    lib = ffi.dlopen(path)
    for sym in _REQUIRED:
        try:
            getattr(lib, sym)
        except AttributeError:
            raise ImportError("rewire: %s lacks %s, which this package needs: it is older than the "
                              "package (rebuild it)" % (path, sym)) from None
    return ffi, lib, path, header, defines


def _loaded_path(fragment):
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if fragment in os.path.basename(p):
                    return p
    except OSError:
        pass
    return None


ffi, lib, LIBRARY_PATH, HEADER_PATH, DEFINES = _load()
libc = ffi.dlopen(None)


def take_string(p):
    """The bytes of a malloc'ed C string, freed (None for NULL)."""
    if p == ffi.NULL:
        return None
    try:
        return ffi.string(p)
    finally:
        libc.free(p)

_STATUS = {}


def status_name(code):
    if code not in _STATUS:
        _STATUS[code] = ffi.string(lib.rw_status_string(code)).decode()
    return _STATUS[code]


def last_error():
    return ffi.string(lib.rw_last_error()).decode("utf-8", "replace")


def error(code, context=None):
    """The rewire.Error of a failed call (code != 0), with the library's message."""
    msg = last_error() or status_name(code)
    if context:
        msg = "%s: %s" % (context, msg)
    return Error(msg, status_name(code))


def check(code, context=None):
    if code != 0:
        raise error(code, context)


def cstr(s, what="a path"):
    """A Python str / bytes / os.PathLike as a NUL-terminated C string."""
    if isinstance(s, os.PathLike):
        s = os.fspath(s)
    if isinstance(s, str):
        s = s.encode("utf-8")
    if not isinstance(s, bytes):
        raise TypeError("expected %s as str, bytes or a path, got %s" % (what, type(s).__name__))
    if b"\0" in s:
        raise ValueError("%s contains a NUL byte" % what)
    return s


def openblas_build():
    """Which OpenBLAS rewire's symbols bind to: "openmp", "pthreads",
    "sequential", or None if unknown."""
    try:
        get = ctypes.CDLL(LIBRARY_PATH).openblas_get_parallel
    except (OSError, AttributeError):
        return None
    get.restype = ctypes.c_int
    return {0: "sequential", 1: "pthreads", 2: "openmp"}.get(get())
