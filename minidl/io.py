"""Saving and loading without pickle: ``.npz`` archives with a JSON manifest.

:func:`save` stores a nested structure of dicts, lists and tuples whose leaves
are numpy arrays (or Tensors), numbers, strings, booleans and None. Arrays
become entries of a numpy ``.npz`` archive; the structure, with a SHA-256
digest of every array, is a JSON manifest stored beside them. :func:`load`
opens the archive with ``allow_pickle=False``, checks every digest and rebuilds
the structure: nothing is ever unpickled, and a truncated or altered file is
refused with an error that says so.

Every write is atomic: the archive goes to a temporary file in the target's
directory, is flushed and synced to disk, then renamed over the target, so a
crash leaves either the old file or the new one, never a mix.
"""

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

from .tensor import Tensor

FORMAT = "minidl"
VERSION = 1
_MANIFEST = "__manifest__"


def _digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _encode(obj, arrays, where):
    """The JSON form of ``obj``; arrays are moved into ``arrays`` and referenced by name."""
    if isinstance(obj, Tensor):
        obj = obj.numpy()
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(
                f"save: {where} is an array of dtype {obj.dtype}; only numeric and bool "
                "arrays can be saved"
            )
        name = f"a{len(arrays)}"
        arrays[name] = obj
        return {"__array__": name, "sha256": _digest(obj)}
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
            items.append([key, _encode(value, arrays, f"{where}[{key!r}]")])
        return {"__dict__": items}
    if isinstance(obj, (list, tuple)):
        values = [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
        return {"__tuple__": values} if isinstance(obj, tuple) else values
    raise TypeError(
        f"save: {where} is a {type(obj).__name__}; minidl saves dicts, lists, tuples, arrays, "
        "numbers, strings, booleans and None"
    )


def _decode(node, archive, path):
    if isinstance(node, list):
        return [_decode(v, archive, path) for v in node]
    if not isinstance(node, dict):
        return node
    if "__array__" in node:
        name = node["__array__"]
        if name not in archive:
            raise ValueError(f"load: {path} is corrupt: array {name} is missing")
        array = archive[name]
        if _digest(array) != node.get("sha256"):
            raise ValueError(f"load: {path} is corrupt: array {name} does not match its digest")
        return array
    if "__float__" in node:
        return float(node["__float__"])
    if "__tuple__" in node:
        return tuple(_decode(v, archive, path) for v in node["__tuple__"])
    if "__dict__" in node:
        return {key: _decode(value, archive, path) for key, value in node["__dict__"]}
    raise ValueError(f"load: {path} is corrupt: unknown entry {sorted(node)}")


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file beside ``path``; on success, sync it and rename it over ``path``.

    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "log.txt")
    >>> with atomic_write(target, "w") as handle:
    ...     _ = handle.write("epoch,loss\\n")
    >>> open(target).read()
    'epoch,loss\\n'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=directory)
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


def save(obj, path):
    """Write ``obj`` (nested dicts/lists of arrays, numbers, strings) to ``path`` atomically.

    The file is a ``.npz`` archive with a JSON manifest; no pickle is involved.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> minidl.save({"weights": np.ones(3), "epoch": 2}, path)
    >>> minidl.load(path)["epoch"]
    2
    """
    arrays = {}
    manifest = {"format": FORMAT, "version": VERSION, "root": _encode(obj, arrays, "obj")}
    payload = np.frombuffer(json.dumps(manifest).encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as handle:
        np.savez(handle, **{_MANIFEST: payload}, **arrays)


def load(path):
    """Read a file written by :func:`save`, never unpickling; corrupt files raise ValueError.

    Arrays come back as numpy arrays, tuples as tuples, dicts as dicts.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
    >>> minidl.save({"w": np.zeros(2), "lr": (0.1, 0.01)}, path)
    >>> minidl.load(path)
    {'w': array([0., 0.]), 'lr': (0.1, 0.01)}
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _MANIFEST not in archive.files:
                raise ValueError(f"load: {path} is not a minidl file (it has no manifest)")
            manifest = json.loads(archive[_MANIFEST].tobytes().decode("utf-8"))
            if manifest.get("format") != FORMAT:
                raise ValueError(f"load: {path} is not a minidl file")
            if manifest.get("version") != VERSION:
                raise ValueError(
                    f"load: {path} has format version {manifest.get('version')}; this minidl "
                    f"reads version {VERSION}"
                )
            arrays = {name: archive[name] for name in archive.files if name != _MANIFEST}
    except FileNotFoundError:
        raise
    except ValueError as error:
        if "pickle" in str(error):
            raise ValueError(
                f"load: {path} holds pickled data (a pickle file, or an object array), which "
                "minidl refuses to read: it never unpickles"
            ) from None
        if str(error).startswith("load: "):
            raise
        raise ValueError(f"load: {path} is truncated or corrupt ({error})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, UnicodeDecodeError) as error:
        raise ValueError(f"load: {path} is truncated or corrupt ({error})") from None
    return _decode(manifest["root"], arrays, path)
