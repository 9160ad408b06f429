"""Saving and loading without pickle: ``.npz`` archives with a JSON manifest.

:func:`save` stores a nested structure of dicts, lists and tuples whose leaves
are numpy arrays (or Tensors), numbers, strings, booleans and None. Arrays
become members of a zip archive in numpy's ``.npy`` format; the structure is a
JSON manifest beside them, and one SHA-256 digest covers the whole content (the
manifest's bytes, then every array's bytes in the order the manifest lists
them). :func:`load` never unpickles: it reads each member's header first,
checks the declared shape and dtype against the manifest, the member's size and
a memory limit before allocating anything, streams the data into a
preallocated array and verifies the digest. Any malformed, truncated or altered
file raises :class:`CorruptFileError` naming the file and what is wrong.

The digest detects accidental corruption and truncation; it is not a signature:
anyone who can edit the file can recompute it.

A path ending in ``.safetensors`` selects the safetensors format instead, the
standard weight file of PyTorch and Hugging Face: a flat state dict (name ->
array) only, so ``safetensors.torch.load_file`` reads what :func:`save` wrote and
:func:`load` reads what ``safetensors.torch.save_file`` wrote. It has no
checksum; :func:`load` checks its header against the file's size before
allocating anything. Full training checkpoints (nested structures, numbers,
optimizer state) stay in minidl's own ``.npz`` format.

Every write is atomic: the archive goes to a temporary file in the target's
directory, is flushed and synced to disk, then renamed over the target, so a
crash leaves either the old file or the new one, never a mix. Temporaries left
by writers that were killed are removed by the next atomic write to the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from . import _checks
from .tensor import Tensor, _check_cpu

FORMAT = "minidl"
VERSION = 2
_READABLE_VERSIONS = (1, 2)
_MANIFEST = "__manifest__"
_DIGEST = "__digest__"

#: Deepest nesting of dicts, lists and tuples that save writes and load reads.
MAX_DEPTH = 64
#: Largest manifest (the JSON text) load reads, in bytes.
MAX_MANIFEST_BYTES = 16 * 2**20
#: With ``max_bytes=None``, data may inflate to this allowance plus
#: ``MAX_EXPANSION`` times the stored (compressed) size: minidl writes arrays
#: uncompressed and real data compresses far less, so a zip or gzip bomb is
#: refused from its headers before anything is inflated.
EXPANSION_ALLOWANCE = 64 * 2**20
MAX_EXPANSION = 100
#: safetensors dtype names and the numpy dtypes they map to (little-endian).
SAFETENSORS_DTYPES = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
}
#: safetensors dtypes numpy has no type for: load refuses them, saying so.
_SAFETENSORS_UNSUPPORTED = ("BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2")
_SAFETENSORS_METADATA = "__metadata__"
#: A temporary ``.tmp-*.part`` file whose writer cannot be checked (another
#: host, or an older minidl's name) is removed once it is this old (seconds).
STALE_TEMPORARY_AGE = 24 * 3600


class CorruptFileError(ValueError):
    """A file minidl reads (checkpoint, ``.npz`` from :func:`save`, IDX) is malformed.

    Raised by :func:`load` and :func:`minidl.data.read_idx` for every truncated,
    altered, oversized or otherwise malformed file; the message names the file
    and what is wrong. It is a ``ValueError``, so ``except ValueError`` still
    catches it. Missing or unreadable files raise the usual ``OSError``.

    >>> try:
    ...     minidl.load(__file__)
    ... except minidl.CorruptFileError as error:
    ...     print("refused")
    refused
    """


def _inflation_limit(stored_bytes, max_bytes=None):
    """Most bytes a reader may inflate from ``stored_bytes`` of (possibly compressed) data.

    ``max_bytes`` given: that many. ``None``: ``EXPANSION_ALLOWANCE +
    MAX_EXPANSION * stored_bytes``, so a small file can never claim a huge one.

    >>> _inflation_limit(10, max_bytes=5)
    5
    """
    if max_bytes is not None:
        return max_bytes
    return EXPANSION_ALLOWANCE + MAX_EXPANSION * stored_bytes


def _check_max_bytes(max_bytes, caller):
    """Refuse a ``max_bytes`` that is not None or an int >= 0 (TypeError / ValueError)."""
    if max_bytes is None:
        return
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)):
        raise TypeError(
            f"{caller}: max_bytes must be an int or None, got {type(max_bytes).__name__}"
        )
    if max_bytes < 0:
        raise ValueError(f"{caller}: max_bytes must be >= 0, got {max_bytes}")


def _read_into(stream, array, read_error):
    """Fill ``array`` (C-contiguous) from ``stream`` in chunks; ``read_error(msg)`` on a short read.

    Nothing larger than one chunk is ever held besides ``array`` itself.
    """
    target = memoryview(array.reshape(-1).view(np.uint8))
    position, total = 0, len(target)
    while position < total:
        chunk = stream.read(min(1 << 20, total - position))
        if not chunk:
            raise read_error(f"the data ends after {position} of {total} bytes")
        target[position : position + len(chunk)] = chunk
        position += len(chunk)


def _c_order(array):
    """``array`` itself when C-contiguous, else a C-order copy (keeps 0-d arrays 0-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


def _digest(array):
    return hashlib.sha256(_c_order(array).tobytes()).hexdigest()


def _content_digest(manifest_bytes, arrays):
    """SHA-256 over the manifest's bytes, then each array's C-order bytes, in the given order."""
    digest = hashlib.sha256(manifest_bytes)
    for array in arrays:
        digest.update(_c_order(array).reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _encode(obj, arrays, where, depth=0):
    """The JSON form of ``obj``; arrays are moved into ``arrays`` and referenced by name."""
    if depth > MAX_DEPTH:
        raise ValueError(f"save: {where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(obj, Tensor):
        obj = obj.numpy()
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf" or obj.dtype.names is not None:
            raise TypeError(
                f"save: {where} is an array of dtype {obj.dtype}; only numeric and bool "
                "arrays can be saved"
            )
        name = f"a{len(arrays)}"
        arrays[name] = _c_order(obj)
        return {"__array__": name}
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        if not np.isfinite(obj):
            return {"__float__": repr(obj)}  # JSON has no inf or nan
        return obj
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"save: {where} has a key of type {type(key).__name__}")
            items.append([key, _encode(value, arrays, f"{where}[{key!r}]", depth + 1)])
        return {"__dict__": items}
    if isinstance(obj, (list, tuple)):
        values = [_encode(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
        return {"__tuple__": values} if isinstance(obj, tuple) else values
    raise TypeError(
        f"save: {where} is a {type(obj).__name__}; minidl saves dicts, lists, tuples, arrays, "
        "numbers, strings, booleans and None"
    )


class _Decoder:
    """Rebuilds the saved structure from a parsed manifest, checking every node's form."""

    def __init__(self, path, arrays, version):
        self.path, self.arrays, self.version = path, arrays, version
        self.used = set()

    def fail(self, what):
        return CorruptFileError(f"load: {self.path} is corrupt: {what}")

    def decode(self, node, depth=0):
        if depth > MAX_DEPTH:
            raise self.fail(f"its manifest is nested more than {MAX_DEPTH} levels deep")
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v, depth + 1) for v in node]
        if not isinstance(node, dict):
            raise self.fail(f"its manifest holds a {type(node).__name__}")
        if "__array__" in node:
            return self.array(node)
        if set(node) == {"__float__"}:
            text = node["__float__"]
            if text not in ("inf", "-inf", "nan"):
                raise self.fail(f"its manifest holds an unknown float {text!r}")
            return float(text)
        if set(node) == {"__tuple__"} and isinstance(node["__tuple__"], list):
            return tuple(self.decode(v, depth + 1) for v in node["__tuple__"])
        if set(node) == {"__dict__"} and isinstance(node["__dict__"], list):
            result = {}
            for item in node["__dict__"]:
                if not (isinstance(item, list) and len(item) == 2):
                    raise self.fail("a dict entry in its manifest is not a [key, value] pair")
                key, value = item
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise self.fail(f"its manifest has a dict key of type {type(key).__name__}")
                if key in result:
                    raise self.fail(f"its manifest repeats the dict key {key!r}")
                result[key] = self.decode(value, depth + 1)
            return result
        raise self.fail(f"its manifest holds an unknown entry with keys {sorted(map(str, node))}")

    def array(self, node):
        expected_keys = {"__array__", "sha256"} if self.version == 1 else {"__array__"}
        name = node["__array__"]
        if set(node) != expected_keys or not isinstance(name, str):
            raise self.fail(f"its manifest has a malformed array entry with keys {sorted(node)}")
        if name not in self.arrays:
            raise self.fail(f"array {name} is missing")
        if name in self.used:
            raise self.fail(f"its manifest refers to array {name} twice")
        self.used.add(name)
        array = self.arrays[name]
        if self.version == 1 and _digest(array) != node["sha256"]:
            raise self.fail(f"array {name} does not match its digest")
        return array


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success, sync it and rename it over ``path``.

    The temporary is named ``.tmp-<host>-<pid>-<random>.part``. Before creating
    it, stale temporaries in the folder are removed: those whose writer (same
    host) is no longer running, and any older than ``STALE_TEMPORARY_AGE``
    whose writer cannot be checked. A temporary of a live writer is never touched.

    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "log.txt")
    >>> with atomic_write(target, "w") as handle:
    ...     _ = handle.write("epoch,loss\\n")
    >>> open(target).read()
    'epoch,loss\\n'
    """
    path = _checks.file_path(path, "atomic_write")
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb' (it writes), got {mode!r}")
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(directory)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".tmp-{_host_tag()}-{os.getpid()}-", suffix=".part", dir=directory
    )
    try:
        with os.fdopen(descriptor, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)


_TEMPORARY = re.compile(r"\.tmp-(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-)?[^/]*\.part\Z")


def _host_tag():
    return hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def _process_is_running(pid):
    if os.name == "nt":  # no cheap probe: rely on the age rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # exists, owned by another user (or not a pid at all: keep the file)
    return True


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[str]:
    """Delete the ``.tmp-*.part`` files in ``directory`` that no running writer owns; list them.

    A temporary named by this host whose writer process has exited is removed at
    once; one from another host, or with an older name that carries no process
    id, is removed when it is older than ``STALE_TEMPORARY_AGE``. A temporary of
    a running writer on this host is always kept, whatever its age (so is a dead
    writer's file while its process id has been reused). Errors are ignored:
    cleaning is best effort.

    >>> import tempfile
    >>> remove_stale_temporaries(tempfile.mkdtemp())
    []
    """
    # os.listdir would take an int as an open descriptor and None as the working folder
    directory = _checks.file_path(directory, "remove_stale_temporaries", "a directory path")
    removed: list[str] = []
    here = _host_tag()
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        match = _TEMPORARY.match(name)
        if match is None:
            continue
        full = os.path.join(directory, name)
        if match["host"] == here:
            stale = not _process_is_running(int(match["pid"]))
        else:
            try:
                stale = now - os.stat(full).st_mtime > STALE_TEMPORARY_AGE
            except OSError:
                continue
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(full)
                removed.append(name)
    return removed


def _is_safetensors(path):
    return os.fsdecode(path).lower().endswith(".safetensors")


def _safetensors_state(obj):
    """``obj`` (a flat name -> array/Tensor mapping) as a dict of little-endian C-order arrays."""
    hint = (
        "a .safetensors file holds a flat state dict (str name -> array or Tensor); save full "
        "checkpoints (nested dicts, numbers, strings, optimizer state) in minidl's own format, "
        "with a path ending in .npz"
    )
    if not isinstance(obj, dict):
        raise ValueError(f"save: {hint}; got an object of type {type(obj).__name__}")
    state = {}
    for name, value in obj.items():
        if not isinstance(name, str):
            raise ValueError(f"save: {hint}; key {name!r} is of type {type(name).__name__}")
        if name == _SAFETENSORS_METADATA:
            raise ValueError(f"save: the name {name!r} is reserved by the safetensors format")
        if isinstance(value, Tensor):
            value = value.numpy()
        if not isinstance(value, np.ndarray):
            raise ValueError(f"save: {hint}; obj[{name!r}] is of type {type(value).__name__}")
        dtype = value.dtype
        if dtype.names is not None or dtype.newbyteorder("<") not in SAFETENSORS_DTYPES.values():
            raise ValueError(
                f"save: obj[{name!r}] is an array of dtype {dtype}; a .safetensors file holds "
                "bool, 8 to 64-bit integer and float16/32/64 arrays"
            )
        state[name] = value.astype(dtype.newbyteorder("<"), order="C", copy=False)
    return state


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` (nested dicts/lists of arrays, numbers, strings) to ``path`` atomically.

    The file is a zip of ``.npy`` members (numpy's ``.npz`` layout) with a JSON
    manifest and one SHA-256 digest over the manifest and every array; no
    pickle is involved.

    A path ending in ``.safetensors`` writes the safetensors format instead
    (through the ``safetensors`` package), which PyTorch's
    ``safetensors.torch.load_file`` reads. It holds only a flat state dict: a
    dict of str names to arrays or Tensors (bool, integer, float16/32/64), such
    as ``model.state_dict()``; anything else raises ValueError. Full training
    checkpoints use the ``.npz`` format.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> minidl.save(minidl.nn.Dense(2, 3).state_dict(), path)
    >>> sorted((name, a.shape) for name, a in minidl.load(path).items())
    [('bias', (3,)), ('weight', (3, 2))]

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> minidl.save({"weights": np.ones(3), "epoch": 2}, path)
    >>> minidl.load(path)["epoch"]
    2
    """
    path = _checks.file_path(path, "save")
    if _is_safetensors(path):
        import safetensors.numpy  # only this format needs it

        data = safetensors.numpy.save(_safetensors_state(obj))
        with atomic_write(path) as handle:
            handle.write(data)
        return
    arrays: dict[str, Any] = {}
    root = _encode(obj, arrays, "obj")
    listing = [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()]
    manifest = {"format": FORMAT, "version": VERSION, "arrays": listing, "root": root}
    manifest_bytes = json.dumps(manifest).encode("utf-8")
    digest = _content_digest(manifest_bytes, arrays.values()).encode("ascii")
    with atomic_write(path) as handle:
        np.savez(
            handle,
            # numpy's stubs take the first ** for allow_pickle
            **{_MANIFEST: np.frombuffer(manifest_bytes, dtype=np.uint8)},  # type: ignore[arg-type]
            **{_DIGEST: np.frombuffer(digest, dtype=np.uint8)},  # type: ignore[arg-type]
            **arrays,
        )


class _Archive:
    """Reads the members of one ``.npz`` with every size checked before allocation."""

    def __init__(self, path, handle, max_bytes):
        self.path = path
        self.zip = zipfile.ZipFile(handle)
        self.size = os.fstat(handle.fileno()).st_size
        members = {}
        names = self.zip.namelist()
        if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
            raise CorruptFileError(
                f"load: {path} was written by torch.save (a zip of pickled data), which "
                "minidl does not read: it never unpickles. In PyTorch, save the state dict "
                "as safetensors (safetensors.torch.save_file(model.state_dict(), "
                "'model.safetensors')) and load that file here"
            )
        for info in self.zip.infolist():
            name = info.filename
            if not name.endswith(".npy") or "/" in name or "\\" in name or name.startswith("."):
                raise self.fail(f"it has an unexpected member {name!r}")
            if name[: -len(".npy")] in members:
                raise self.fail(f"it holds member {name!r} twice")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise self.fail(f"member {name!r} has inconsistent sizes")
            if info.header_offset + info.compress_size > self.size:
                raise self.fail(f"member {name!r} extends beyond the end of the file")
            members[name[: -len(".npy")]] = info
        self.members = members
        declared = sum(info.file_size for info in members.values())
        limit = _inflation_limit(self.size, max_bytes)
        if declared > limit:
            raise self.fail(
                f"its members declare {declared} bytes of data, more than the limit of {limit} "
                f"bytes for a {self.size}-byte file (pass max_bytes= to raise it)"
            )

    def fail(self, what):
        return CorruptFileError(f"load: {self.path} is corrupt: {what}")

    def read(self, name, dtype=None, shape=None):
        """The array in member ``name``; with ``dtype`` and ``shape``, it must declare those."""
        info = self.members[name]
        with self.zip.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version not in ((1, 0), (2, 0)):
                raise self.fail(f"member {name!r} has npy format version {version}")
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            declared_shape, fortran_order, declared_dtype = read_header(stream)
            if (
                declared_dtype.hasobject
                or declared_dtype.kind not in "biuf"
                or (declared_dtype.names is not None or declared_dtype.subdtype is not None)
            ):
                raise CorruptFileError(
                    f"load: {self.path} holds pickled data or an array of dtype {declared_dtype} "
                    f"(member {name!r}), which minidl refuses to read: it never unpickles"
                )
            if any(not isinstance(d, int) or d < 0 for d in declared_shape):
                raise self.fail(f"member {name!r} declares shape {declared_shape}")
            if dtype is not None and (declared_dtype.str, list(declared_shape)) != (dtype, shape):
                raise self.fail(
                    f"member {name!r} holds {declared_dtype.str} {declared_shape}, the manifest "
                    f"lists {dtype} {tuple(shape)}"
                )
            count = 1
            for dimension in declared_shape:
                count *= dimension
            nbytes = count * declared_dtype.itemsize
            available = info.file_size - stream.tell()
            if nbytes > available:  # also refuses shapes whose product overflows
                raise self.fail(
                    f"member {name!r} declares shape {declared_shape} of {declared_dtype} "
                    f"({nbytes} bytes) but holds at most {available} bytes"
                )
            order_shape = declared_shape[::-1] if fortran_order else declared_shape
            array = np.empty(order_shape, dtype=declared_dtype)
            _read_into(stream, array, lambda what: self.fail(f"member {name!r}: {what}"))
            if stream.read(1):
                raise self.fail(f"member {name!r} has data after its array")
        return array.T if fortran_order else array


def load(
    path: str | os.PathLike[str],
    max_bytes: int | None = None,
    *,
    map_location: Any = None,
    weights_only: bool | None = None,
) -> Any:
    """Read a file written by :func:`save`; never unpickles; malformed files raise CorruptFileError.

    Arrays come back as numpy arrays, tuples as tuples, dicts as dicts. Files
    of the previous format (version 1, per-array digests) still load.

    ``max_bytes`` bounds the total bytes of array data the file may declare.
    The default (None) allows ``EXPANSION_ALLOWANCE + MAX_EXPANSION * file
    size``, enough for every file :func:`save` writes (it stores arrays
    uncompressed) while refusing zip bombs before anything is inflated.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> minidl.save({"w": np.zeros(2), "lr": (0.1, 0.01)}, path)
    >>> minidl.load(path)
    {'w': array([0., 0.]), 'lr': (0.1, 0.01)}

    A path ending in ``.safetensors`` is read as a safetensors file (from
    :func:`save` or ``safetensors.torch.save_file``): the result is a dict of
    names to numpy arrays, in the file's order (safetensors writes its
    tensors sorted, not in the state dict's order), that ``load_state_dict``
    takes. Its header (dtypes, shapes, data offsets) is checked against the
    file's size and ``max_bytes`` (here the data's total size) before any
    array is allocated; the format has no checksum, so a changed data byte
    loads as a changed value. Dtypes numpy lacks (BF16, the float8 types)
    raise CorruptFileError too, saying so.

    ``map_location`` and ``weights_only`` are ``torch.load``'s keywords, taken so
    that torch code runs: the location may be None, "cpu" or a CPU
    :class:`~minidl.device` (everything loads on the CPU), and ``weights_only``
    changes nothing, minidl never unpickling. A file written by ``torch.save``
    (pickled) is refused with a message saying how to convert it.
    """
    if map_location is not None:  # everything loads on the CPU
        _check_cpu("load: map_location", map_location)
    if weights_only not in (None, True, False):
        raise TypeError(f"load: weights_only must be a bool, got {weights_only!r}")
    path = _checks.file_path(path, "load")
    _check_max_bytes(max_bytes, "load")
    try:
        with open(path, "rb") as handle:
            if _is_safetensors(path):
                return _load_safetensors(path, handle, max_bytes)
            head = handle.read(2)
            handle.seek(0)
            if head[:1] == b"\x80":  # pickle protocol 2 and later
                raise CorruptFileError(
                    f"load: {path} holds pickled data (a pickle file, or an object array), which "
                    "minidl refuses to read: it never unpickles"
                )
            archive = _Archive(path, handle, max_bytes)
            manifest_bytes, manifest = _read_manifest(archive)
            version = manifest["version"]
            if version == 1:
                names = [n for n in archive.members if n != _MANIFEST]
                arrays = {name: archive.read(name) for name in names}
            else:
                arrays = _read_v2_arrays(archive, manifest, manifest_bytes)
            decoder = _Decoder(path, arrays, version)
            result = decoder.decode(manifest["root"])
            if decoder.used != set(arrays):
                raise archive.fail(
                    f"it holds arrays its manifest never uses: {sorted(set(arrays) - decoder.used)}"
                )
            return result
    except CorruptFileError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        NotImplementedError,
        RuntimeError,  # zipfile: an encrypted member
        OverflowError,
        UnicodeDecodeError,
        struct.error,
    ) as error:
        raise CorruptFileError(f"load: {path} is truncated or corrupt ({error})") from None


def _read_manifest(archive):
    path = archive.path
    if _MANIFEST not in archive.members:
        raise CorruptFileError(f"load: {path} is not a minidl file (it has no manifest)")
    if archive.members[_MANIFEST].file_size > MAX_MANIFEST_BYTES:
        raise archive.fail(f"its manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    raw = archive.read(_MANIFEST)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise archive.fail(f"its manifest is a {raw.dtype} array of shape {raw.shape}")
    manifest_bytes = raw.tobytes()
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except RecursionError:
        raise archive.fail(f"its manifest is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as error:
        raise archive.fail(f"its manifest is not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorruptFileError(f"load: {path} is not a minidl file")
    version = manifest.get("version")
    if version not in _READABLE_VERSIONS or isinstance(version, bool):
        raise CorruptFileError(
            f"load: {path} has format version {version!r}; this minidl reads versions "
            f"{', '.join(map(str, _READABLE_VERSIONS))}"
        )
    if "root" not in manifest:
        raise archive.fail("its manifest has no root")
    return manifest_bytes, manifest


def _read_v2_arrays(archive, manifest, manifest_bytes):
    listing = manifest.get("arrays")
    if not isinstance(listing, list):
        raise archive.fail("its manifest has no list of arrays")
    expected = {_MANIFEST, _DIGEST}
    entries = []
    for entry in listing:
        if not (
            isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[0], str)
            and isinstance(entry[1], str)
            and isinstance(entry[2], list)
        ):
            raise archive.fail(f"its manifest lists a malformed array entry {entry!r:.80}")
        if entry[0] in expected:
            raise archive.fail(f"its manifest lists array {entry[0]!r} twice")
        expected.add(entry[0])
        entries.append(entry)
    if set(archive.members) != expected:
        missing = sorted(expected - set(archive.members))
        extra = sorted(set(archive.members) - expected)
        raise archive.fail(
            f"its members do not match its manifest (missing {missing}, unexpected {extra})"
        )
    stored_digest = archive.read(_DIGEST)
    if stored_digest.dtype != np.uint8 or stored_digest.shape != (64,):
        raise archive.fail("its digest member is malformed")
    arrays = {name: archive.read(name, dtype, shape) for name, dtype, shape in entries}
    if _content_digest(manifest_bytes, arrays.values()) != stored_digest.tobytes().decode("ascii"):
        raise archive.fail("its content does not match its digest (manifest or arrays altered)")
    return arrays


def _safetensors_header(path, handle, size, max_bytes):
    """The checked entries ``[(name, dtype, shape, begin, end)]`` of a safetensors header.

    ``begin``/``end`` are absolute file offsets. The entries must tile the data
    area exactly (no gap, overlap or excess), as the safetensors format requires.
    """

    def fail(what):
        return CorruptFileError(f"load: {path} is not a valid safetensors file: {what}")

    prefix = handle.read(8)
    if len(prefix) < 8:
        raise fail(f"it has {size} bytes, fewer than the 8 of its header length")
    header_size = int.from_bytes(prefix, "little")
    if header_size > MAX_MANIFEST_BYTES:
        raise fail(f"its header declares {header_size} bytes, more than {MAX_MANIFEST_BYTES}")
    if 8 + header_size > size:
        raise fail(f"its header declares {header_size} bytes but the file has {size}")
    raw = handle.read(header_size)
    if len(raw) < header_size:
        raise fail("the file ends inside its header")

    def unique(pairs):
        result = {}
        for key, value in pairs:
            if key in result:
                raise fail(f"its header lists {key!r} twice")
            result[key] = value
        return result

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=unique)
    except CorruptFileError:
        raise
    except RecursionError:
        raise fail("its header is nested too deeply") from None
    except ValueError as error:
        raise fail(f"its header is not valid JSON ({error})") from None
    if not raw.startswith(b"{") or not isinstance(header, dict):
        raise fail("its header is not a JSON object")
    metadata = header.pop(_SAFETENSORS_METADATA, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise fail("its __metadata__ is not a mapping of strings to strings")
    start = 8 + header_size
    entries = []
    for name, entry in header.items():
        if not (isinstance(entry, dict) and set(entry) == {"dtype", "shape", "data_offsets"}):
            raise fail(f"tensor {name!r} has a malformed entry {entry!r:.80}")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype in _SAFETENSORS_UNSUPPORTED:
            raise CorruptFileError(
                f"load: {path}: tensor {name!r} has dtype {dtype}, which numpy (and so minidl) "
                "cannot hold; convert it to float32 before saving"
            )
        if dtype not in SAFETENSORS_DTYPES:
            raise fail(f"tensor {name!r} has an unknown dtype {dtype!r:.40}")
        if not (
            isinstance(shape, list)
            and len(shape) <= 32
            and all(type(d) is int and d >= 0 for d in shape)
        ):
            raise fail(f"tensor {name!r} has a malformed shape {shape!r:.80}")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(type(o) is int and o >= 0 for o in offsets)
            and offsets[0] <= offsets[1]
        ):
            raise fail(f"tensor {name!r} has malformed data offsets {offsets!r:.80}")
        count = 1
        for dimension in shape:
            count *= dimension
        nbytes = count * SAFETENSORS_DTYPES[dtype].itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise fail(
                f"tensor {name!r} of dtype {dtype} and shape {tuple(shape)} needs {nbytes} bytes, "
                f"its data offsets {offsets} span {offsets[1] - offsets[0]}"
            )
        entries.append((name, SAFETENSORS_DTYPES[dtype], tuple(shape), *offsets))
    position = 0
    for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin != position:
            what = "overlap another tensor's" if begin < position else "leave a gap before"
            raise fail(f"the data offsets of tensor {name!r} {what} ({begin}, expected {position})")
        position = end
    if start + position != size:
        raise fail(f"its tensors cover {start + position} bytes of the {size}-byte file")
    limit = _inflation_limit(size, max_bytes)
    if position > limit:
        raise fail(
            f"its tensors declare {position} bytes of data, more than the limit of {limit} "
            "bytes (pass max_bytes= to raise it)"
        )
    return [
        (name, dtype, shape, start + begin, start + end)
        for name, dtype, shape, begin, end in entries
    ]


def _load_safetensors(path, handle, max_bytes):
    """The state dict in the safetensors file open as ``handle``, every size checked first."""
    size = os.fstat(handle.fileno()).st_size
    state = {}
    for name, dtype, shape, begin, _ in _safetensors_header(path, handle, size, max_bytes):
        array = np.empty(shape, dtype=dtype)
        handle.seek(begin)
        _read_into(
            handle,
            array,
            lambda what, name=name: CorruptFileError(f"load: {path}: tensor {name!r}: {what}"),
        )
        if dtype.kind == "b" and array.view(np.uint8).max(initial=0) > 1:
            raise CorruptFileError(f"load: {path}: bool tensor {name!r} holds bytes other than 0/1")
        state[name] = array
    return state


__all__ = [
    "CorruptFileError",
    "atomic_write",
    "load",
    "remove_stale_temporaries",
    "save",
]
