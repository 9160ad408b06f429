"""The IDX format of MNIST-style data sets: reading (checked) and writing.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian 32-bit size per dimension, then the values in
row-major order, big-endian. Files may be gzip-compressed (``.gz``).
"""

import gzip
import math
import os
import struct
import zlib

import numpy as np

from ..io import atomic_write

# IDX type code -> numpy dtype (big-endian, as stored)
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}


def _read_bytes(path):
    with open(path, "rb") as handle:
        head = handle.read(2)
        handle.seek(0)
        if head == b"\x1f\x8b":  # gzip, whatever the file is called
            try:
                with gzip.GzipFile(fileobj=handle) as stream:
                    return stream.read()
            except (OSError, EOFError, zlib.error) as error:
                raise ValueError(f"read_idx: {path} is a damaged gzip file ({error})") from None
        return handle.read()


def read_idx(path):
    """Read an IDX file (raw or gzip-compressed) into a numpy array in native byte order.

    Every IDX element type (0x08 uint8 to 0x0E float64) and any number of
    dimensions are supported. The magic number, the type, the dimensions and the
    payload length are checked; a truncated or corrupt file raises ValueError
    naming the file and what is wrong.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    >>> read_idx(path)
    array([3, 1, 4], dtype=uint8)
    """
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"read_idx: {path} is too short to be an IDX file ({len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise ValueError(
            f"read_idx: {path} is not an IDX file (magic number {data[:4].hex()}: the first two "
            "bytes must be zero)"
        )
    if code not in IDX_TYPES:
        raise ValueError(
            f"read_idx: {path} has unknown IDX type code 0x{code:02X} (expected one of "
            + ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
            + ")"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(
            f"read_idx: {path} is truncated: its header announces {ndim} dimensions but the file "
            f"ends after {len(data)} bytes"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_TYPES[code]
    # Python ints: numpy's int64 product wraps for dimensions like (2**32 - 1,) * 3
    expected = math.prod(shape) * dtype.itemsize
    actual = len(data) - header
    if actual < expected:
        raise ValueError(
            f"read_idx: {path} is truncated: dimensions {shape} of {dtype.newbyteorder('=')} need "
            f"{expected} bytes of data, the file has {actual}"
        )
    if actual > expected:
        raise ValueError(
            f"read_idx: {path} is corrupt: {actual - expected} bytes follow the {expected} "
            f"bytes that dimensions {shape} need"
        )
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64) as an IDX file.

    A path ending in ``.gz`` is gzip-compressed. The write is atomic.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "images-idx3-ubyte")
    >>> write_idx(path, np.zeros((2, 28, 28), dtype=np.uint8))
    >>> read_idx(path).shape
    (2, 28, 28)
    """
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(
            "write_idx: IDX stores uint8, int8, int16, int32, float32 or float64, got "
            f"{array.dtype}"
        )
    if array.ndim > 255:
        raise ValueError("write_idx: IDX files have at most 255 dimensions")
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if os.fspath(path).endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    with atomic_write(path) as handle:
        handle.write(payload)
