"""The IDX format of MNIST-style data sets: reading (checked) and writing.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian 32-bit size per dimension, then the values in
row-major order, big-endian. Files may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _checks
from ..io import CorruptFileError, _check_max_bytes, _inflation_limit, _read_into, atomic_write

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

# IDX type code -> numpy dtype (big-endian, as stored)
IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}


def _fail(path, what):
    return CorruptFileError(f"read_idx: {path} {what}")


def read_idx(path: str | os.PathLike[str], max_bytes: int | None = None) -> NDArray[Any]:
    """Read an IDX file (raw or gzip-compressed) into a numpy array in native byte order.

    Every IDX element type (0x08 uint8 to 0x0E float64) and any number of
    dimensions are supported. The header is read first, from a streaming
    decompressor for gzip files: the magic number, the type and the declared
    size are checked (against the file's size for a raw file, and against
    ``max_bytes``) before anything is allocated; the payload is then streamed
    into a preallocated array, and a short payload or data after it is refused.
    Every malformed file raises :class:`minidl.CorruptFileError` (a ValueError)
    naming the file and what is wrong.

    ``max_bytes`` bounds the payload's size. The default (None) allows
    ``minidl.io.EXPANSION_ALLOWANCE + minidl.io.MAX_EXPANSION * file size``:
    any raw file, and any gzip file that real data compresses to, while a gzip
    bomb is refused from its header. A raw file carries no checksum, so a
    changed payload byte is not detected; gzip's CRC-32 detects it.

    Returns an array of shape equal to the header's dimensions.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
    >>> read_idx(path)
    array([3, 1, 4], dtype=uint8)
    """
    path = _checks.file_path(path, "read_idx")
    _check_max_bytes(max_bytes, "read_idx")
    with open(path, "rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        compressed = handle.read(2) == b"\x1f\x8b"  # gzip, whatever the file is called
        handle.seek(0)
        if not compressed:
            return _read_idx_stream(handle, path, file_size, False, max_bytes)
        try:
            with gzip.GzipFile(fileobj=handle) as stream:
                return _read_idx_stream(stream, path, file_size, True, max_bytes)
        except (OSError, EOFError, zlib.error) as error:
            raise _fail(path, f"is a damaged gzip file ({error})") from None


def _read_idx_stream(stream, path, file_size, compressed, max_bytes):
    magic = stream.read(4)
    if len(magic) < 4:
        raise _fail(path, f"is too short to be an IDX file ({len(magic)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", magic)
    if zero != 0:
        raise _fail(
            path,
            f"is not an IDX file (magic number {magic.hex()}: the first two bytes must be zero)",
        )
    if code not in IDX_TYPES:
        raise _fail(
            path,
            f"has unknown IDX type code 0x{code:02X} (expected one of "
            + ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
            + ")",
        )
    dimensions = stream.read(4 * ndim)
    if len(dimensions) < 4 * ndim:
        raise _fail(
            path,
            f"is truncated: its header announces {ndim} dimensions but the file ends after "
            f"{4 + len(dimensions)} bytes",
        )
    shape = struct.unpack(f">{ndim}I", dimensions)
    dtype = IDX_TYPES[code]
    # Python ints: numpy's int64 product wraps for dimensions like (2**32 - 1,) * 3
    expected = math.prod(shape) * dtype.itemsize
    native = dtype.newbyteorder("=")
    header = 4 + 4 * ndim
    if not compressed and header + expected != file_size:
        actual = file_size - header
        if actual < expected:
            raise _fail(
                path,
                f"is truncated: dimensions {shape} of {native} need {expected} bytes of data, "
                f"the file has {actual}",
            )
        raise _fail(
            path,
            f"is corrupt: {actual - expected} bytes follow the {expected} bytes that "
            f"dimensions {shape} need",
        )
    limit = _inflation_limit(file_size, max_bytes)
    if expected > limit:
        raise _fail(
            path,
            f"declares dimensions {shape} of {native} ({expected} bytes), more than the limit "
            f"of {limit} bytes for a {file_size}-byte file (pass max_bytes= to raise it)",
        )
    array = np.empty(shape, dtype=dtype)
    _read_into(
        stream,
        array,
        lambda what: _fail(path, f"is truncated: dimensions {shape} of {native}: {what}"),
    )
    if compressed and stream.read(1):
        raise _fail(
            path, f"is corrupt: data follows the {expected} bytes that dimensions {shape} need"
        )
    return array.astype(native)


def write_idx(path: str | os.PathLike[str], array: ArrayLike) -> None:
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
