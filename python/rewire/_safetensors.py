"""The safetensors container, for the model files from_torch writes: an
8-byte little-endian header length, a JSON header (each tensor's dtype,
shape and byte range; "__metadata__" of strings), the tensor bytes."""

import json
import struct

import numpy as np

_DTYPES = {np.dtype("<f4"): "F32", np.dtype("<i4"): "I32", np.dtype("u1"): "U8"}


def json_compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def write(path, tensors, metadata):
    """tensors: name -> numpy array (float32, int32 or uint8), in file order."""
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        if a.dtype not in _DTYPES:
            raise TypeError("tensor %s has dtype %s; expected float32, int32 or uint8" % (name, a.dtype))
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json_compact(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})
