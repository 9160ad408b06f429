"""Hostile files: minidl.load and read_idx either return the identical content or raise
minidl.CorruptFileError, never another exception, never unbounded memory or time.

Covered: truncation at every offset and a flip of every byte of a small checkpoint and of
small IDX files (raw and gzip); gzip and zip bombs (refused within 1 s and 100 MB, measured
in a subprocess); oversized and malformed headers and manifests; the whole-content digest;
stale temporaries of killed writers; SIGKILL of a process writing checkpoints.
"""

import gzip
import hashlib
import io as stdio
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
import zlib

import numpy as np
import pytest

import minidl
from minidl import io, nn, optim
from minidl.data import read_idx, write_idx
from minidl.train import Trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- helpers


def _same(a, b):
    """True when ``a`` and ``b`` are the identical content (types, dtypes, shapes, bytes)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return repr(a) == repr(b)
    return a == b


def _load_or_corrupt(path, reference, loader=minidl.load):
    """Load ``path``: it must give ``reference`` exactly or raise CorruptFileError."""
    try:
        result = loader(path)
    except minidl.CorruptFileError as error:
        assert str(path) in str(error), f"the error does not name the file: {error}"
        return "refused"
    assert _same(result, reference), f"{path} loaded different content without an error"
    return "loaded"


def _npy(array=None, header=None, data=b""):
    """The bytes of an npy member: numpy's own, or a hand-made header dict and data."""
    if header is None:
        buffer = stdio.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    text = repr(header).encode("latin1")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data


def _archive(path, manifest, members, digest=True, compression=zipfile.ZIP_STORED):
    """Write a zip holding ``manifest`` (a dict, or raw bytes) and ``members`` (name -> npy bytes).

    With ``digest=True`` a correct format-2 digest is added, so the check under test
    is the one that fires rather than the digest.
    """
    manifest_bytes = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    entries = [("__manifest__.npy", _npy(np.frombuffer(manifest_bytes, np.uint8)))]
    if digest:
        content = hashlib.sha256(manifest_bytes)
        for body in members.values():
            content.update(body[_npy_header_length(body) :])
        entries.append(
            ("__digest__.npy", _npy(np.frombuffer(content.hexdigest().encode(), np.uint8)))
        )
    entries += [(f"{name}.npy", body) for name, body in members.items()]
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, body in entries:
            archive.writestr(name, body)
    return path


def _npy_header_length(body):
    return 10 + int.from_bytes(body[8:10], "little")


def _manifest(root, listing):
    return {"format": "minidl", "version": 2, "arrays": listing, "root": root}


def _tiny_checkpoint(path):
    """A Trainer checkpoint of a tiny model after one epoch; returns what load gives."""
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Dense(2, 3), nn.BatchNorm(3), nn.ReLU(), nn.Dense(3, 2))
    trainer = Trainer(
        model,
        optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        loss=nn.CrossEntropyLoss(),
        verbose=0,
    )
    x = np.random.default_rng(0).standard_normal((8, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    trainer.fit(minidl.data.DataLoader(minidl.data.ArrayDataset(x, y), batch_size=4), epochs=1)
    trainer.save_checkpoint(path)
    return minidl.load(path)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.npz"
    reference = _tiny_checkpoint(path)
    return path, reference, path.read_bytes()


@pytest.fixture(scope="module")
def state_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("state") / "state.npz"
    state = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "step": 7,
        "lr": (0.1, float("nan")),
        "mask": np.array([True, False, True]),
    }
    minidl.save(state, path)
    return path, minidl.load(path), path.read_bytes()


@pytest.fixture(scope="module", params=["raw", "gzip"])
def idx_file(request, tmp_path_factory):
    name = "images.idx" if request.param == "raw" else "images.idx.gz"
    path = tmp_path_factory.mktemp("idx") / name
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) * 37
    write_idx(path, array)
    return path, read_idx(path), path.read_bytes()


def _truncations(directory, data, reference, loader, step=1):
    outcomes = []
    for cut in range(0, len(data), step):
        broken = directory / f"cut{cut}.bin"
        broken.write_bytes(data[:cut])
        outcome = _load_or_corrupt(broken, reference, loader)
        assert outcome == "refused", f"a file cut to {cut} of {len(data)} bytes loaded"
        outcomes.append(outcome)
        broken.unlink()
    return outcomes


def _flips(directory, data, reference, loader, step=1, mask=0xFF, raw_idx=False):
    outcomes = {"loaded": 0, "refused": 0, "payload": 0}
    for offset in range(0, len(data), step):
        changed = bytearray(data)
        changed[offset] ^= mask
        broken = directory / f"flip{offset}.bin"
        broken.write_bytes(bytes(changed))
        if raw_idx and offset >= len(data) - reference.nbytes:
            # a raw IDX file has no checksum: a payload byte changes the value, nothing else
            result = loader(broken)
            payload = bytes(changed[-reference.nbytes :])
            expected = np.frombuffer(payload, reference.dtype.newbyteorder(">"))
            assert _same(result, expected.reshape(reference.shape).astype(reference.dtype))
            outcomes["payload"] += 1
        else:
            outcomes[_load_or_corrupt(broken, reference, loader)] += 1
        broken.unlink()
    return outcomes


# ----------------------------------------------------------------------------- truncation and flips


def test_checkpoint_truncations_and_flips_sampled(checkpoint, tmp_path):
    _, reference, data = checkpoint
    _truncations(tmp_path, data, reference, minidl.load, step=23)
    outcomes = _flips(tmp_path, data, reference, minidl.load, step=11)
    assert outcomes["refused"] > outcomes["loaded"], outcomes


@pytest.mark.slow
def test_checkpoint_truncated_at_every_offset(checkpoint, tmp_path):
    _, reference, data = checkpoint
    assert len(_truncations(tmp_path, data, reference, minidl.load)) == len(data)


@pytest.mark.slow
@pytest.mark.parametrize("mask", [0xFF, 0x01])
def test_checkpoint_every_byte_flipped(checkpoint, tmp_path, mask):
    _, reference, data = checkpoint
    outcomes = _flips(tmp_path, data, reference, minidl.load, mask=mask)
    assert sum(outcomes.values()) == len(data)
    assert outcomes["refused"] > outcomes["loaded"], outcomes


def test_state_file_every_offset_and_byte(state_file, tmp_path):
    _, reference, data = state_file
    assert len(_truncations(tmp_path, data, reference, minidl.load)) == len(data)
    outcomes = _flips(tmp_path, data, reference, minidl.load)
    assert sum(outcomes.values()) == len(data)
    # every byte of the manifest, the digest and the arrays is covered by a CRC or the digest
    assert outcomes["refused"] > 0.8 * len(data), outcomes


def test_idx_every_offset_and_byte(idx_file, tmp_path):
    path, reference, data = idx_file
    raw = not path.name.endswith(".gz")
    assert len(_truncations(tmp_path, data, reference, read_idx)) == len(data)
    outcomes = _flips(tmp_path, data, reference, read_idx, raw_idx=raw)
    assert sum(outcomes.values()) == len(data)
    if raw:
        assert outcomes["payload"] == reference.nbytes
        assert outcomes["loaded"] == 0, "a changed header byte of a raw IDX file loaded"


# ----------------------------------------------------------------------------- bombs

_BOMB_CHECK = textwrap.dedent(
    """
    import sys, time, tracemalloc
    import minidl
    from minidl.data import read_idx
    loader = minidl.load if sys.argv[1].endswith(".npz") else read_idx
    tracemalloc.start()
    start = time.perf_counter()
    try:
        loader(sys.argv[1])
        outcome = "loaded"
    except minidl.CorruptFileError as error:
        outcome = "refused: " + str(error)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    print(repr((outcome, elapsed, peak)))
    """
)


def _measure(path):
    """(outcome, seconds, peak traced bytes) of loading ``path`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, "-c", _BOMB_CHECK, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    return eval(result.stdout.strip().splitlines()[-1])  # a tuple this test printed


GIB = 1 << 30


@pytest.fixture(scope="module")
def zeros_gib_blocks():
    """Raw deflate blocks (no final block) that inflate to 1 GiB of zeros, about 1 MB long.

    One MiB of zeros is deflated once and ended with a full flush, so the block refers
    to nothing before it and 1024 copies inflate to 1 GiB.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * (GIB >> 20)


def _deflate_with_zeros(head, zeros_blocks):
    """A raw deflate stream of ``head`` followed by 1 GiB of zeros, and its CRC-32."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # an empty final block
    crc = zlib.crc32(head)
    zeros = bytes(1 << 20)
    for _ in range(GIB >> 20):
        crc = zlib.crc32(zeros, crc)
    return start + zeros_blocks + end, crc


def _write_zip(path, entries):
    """A zip of ``entries`` (name, method, crc, stored bytes, inflated size), written by hand
    so that a member inflating to 1 GiB need never be inflated to be written."""
    out, directory = bytearray(), bytearray()
    for name, method, crc, stored, size in entries:
        encoded = name.encode()
        fields = (20).to_bytes(2, "little") + b"\x00\x00" + method.to_bytes(2, "little")
        fields += b"\x00\x00\x21\x00" + crc.to_bytes(4, "little")
        fields += len(stored).to_bytes(4, "little") + size.to_bytes(4, "little")
        fields += len(encoded).to_bytes(2, "little") + b"\x00\x00"
        directory += b"PK\x01\x02" + (20).to_bytes(2, "little") + fields
        directory += b"\x00\x00" * 3 + b"\x00" * 4 + len(out).to_bytes(4, "little") + encoded
        out += b"PK\x03\x04" + fields + encoded + stored
    count = len(entries).to_bytes(2, "little")
    end = b"PK\x05\x06" + b"\x00" * 4 + count + count + len(directory).to_bytes(4, "little")
    end += len(out).to_bytes(4, "little") + b"\x00\x00"
    path.write_bytes(bytes(out + directory + end))
    return path


def _gzip_bomb(path, header, zeros_blocks):
    """A gzip file: the IDX ``header`` then 1 GiB of zeros."""
    stream, crc = _deflate_with_zeros(header, zeros_blocks)
    size = (len(header) + GIB) & 0xFFFFFFFF
    trailer = crc.to_bytes(4, "little") + size.to_bytes(4, "little")
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + stream + trailer)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("declared", ["matching", "small"])
def test_gzip_bomb_is_refused_quickly_and_small(tmp_path, zeros_gib_blocks, declared):
    count = GIB if declared == "matching" else 10
    header = b"\x00\x00\x08\x01" + count.to_bytes(4, "big")
    path = _gzip_bomb(tmp_path / "bomb-idx1-ubyte.gz", header, zeros_gib_blocks)
    assert path.stat().st_size < 2 * (1 << 20)
    with gzip.open(path) as stream:  # the bomb is a valid gzip file of 1 GiB + 8 bytes
        assert stream.read(8) == header
    outcome, seconds, peak = _measure(path)
    assert outcome.startswith("refused"), outcome
    assert seconds < 1.0 and peak < 100e6, (outcome, seconds, peak)


@pytest.mark.slow
def test_zip_bomb_is_refused_quickly_and_small(tmp_path, zeros_gib_blocks):
    count = GIB // 8
    body = _npy(header={"descr": "<f8", "fortran_order": False, "shape": (count,)})
    stream, crc = _deflate_with_zeros(body, zeros_gib_blocks)
    manifest = json.dumps(_manifest({"__array__": "a0"}, [["a0", "<f8", [count]]])).encode()
    manifest_npy = _npy(np.frombuffer(manifest, np.uint8))
    path = _write_zip(
        tmp_path / "bomb.npz",
        [
            ("__manifest__.npy", 0, zlib.crc32(manifest_npy), manifest_npy, len(manifest_npy)),
            ("a0.npy", 8, crc, stream, len(body) + GIB),
        ],
    )
    assert path.stat().st_size < 2 * (1 << 20)
    with zipfile.ZipFile(path) as archive:  # a well-formed zip: its directory reads
        assert archive.getinfo("a0.npy").file_size == len(body) + GIB
    outcome, seconds, peak = _measure(path)
    assert outcome.startswith("refused") and "limit" in outcome, outcome
    assert seconds < 1.0 and peak < 100e6, (outcome, seconds, peak)


# ----------------------------------------------------------------------------- malformed content


def _refused(path, match):
    with pytest.raises(minidl.CorruptFileError, match=match) as error:
        minidl.load(path)
    assert str(path) in str(error.value)
    return error.value


def test_a_huge_declared_shape_is_refused_before_allocating(tmp_path):
    # 702 bytes on disk claiming an 8 TiB array: refused from the header, no MemoryError
    count = (8 << 40) // 8
    body = _npy(header={"descr": "<f8", "fortran_order": False, "shape": (count,)})
    path = _archive(
        tmp_path / "huge.npz",
        _manifest({"__array__": "a0"}, [["a0", "<f8", [count]]]),
        {"a0": body},
    )
    assert path.stat().st_size < 2000
    _refused(path, r"declares shape .* but holds at most")
    # dimensions whose product overflows int64 are refused the same way
    shape = (2**40, 2**40, 2**40)
    body = _npy(header={"descr": "<f8", "fortran_order": False, "shape": shape})
    path = _archive(
        tmp_path / "overflow.npz",
        _manifest({"__array__": "a0"}, [["a0", "<f8", list(shape)]]),
        {"a0": body},
    )
    _refused(path, r"declares shape")


def test_max_bytes_bounds_what_load_reads(tmp_path):
    path = tmp_path / "state.npz"
    minidl.save({"w": np.zeros(1000)}, path)
    _refused_with = pytest.raises(
        minidl.CorruptFileError, match=r"more than the limit of 100 bytes"
    )
    with _refused_with:
        minidl.load(path, max_bytes=100)
    assert minidl.load(path, max_bytes=10_000)["w"].shape == (1000,)
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        minidl.load(path, max_bytes=-1)
    with pytest.raises(TypeError, match="max_bytes must be an int"):
        minidl.load(path, max_bytes=1.5)


def test_object_and_structured_dtypes_are_never_read(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    body = _npy(header={"descr": "|O", "fortran_order": False, "shape": (1,)}, data=b"\x80\x04")
    path = _archive(
        tmp_path / "obj.npz", _manifest({"__array__": "a0"}, [["a0", "|O", [1]]]), {"a0": body}
    )
    _refused(path, "it never unpickles")
    buffer = stdio.BytesIO()
    np.save(buffer, np.array([Payload()], dtype=object), allow_pickle=True)
    path = _archive(
        tmp_path / "obj2.npz",
        _manifest({"__array__": "a0"}, [["a0", "|O", [1]]]),
        {"a0": buffer.getvalue()},
    )
    _refused(path, "it never unpickles")
    assert not marker.exists()
    structured = np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")])
    path = _archive(
        tmp_path / "struct.npz",
        _manifest({"__array__": "a0"}, [["a0", "|V8", [2]]]),
        {"a0": _npy(structured)},
    )
    _refused(path, "never unpickles")


def _one_array_file(tmp_path, name, root=None, listing=None, members=None):
    body = _npy(np.arange(3, dtype=np.float32))
    root = {"__array__": "a0"} if root is None else root
    listing = [["a0", "<f4", [3]]] if listing is None else listing
    members = {"a0": body} if members is None else members
    return _archive(tmp_path / name, _manifest(root, listing), members)


@pytest.mark.parametrize(
    ("root", "listing", "match"),
    [
        ({"__array__": 5}, None, "malformed array entry"),
        ({"__array__": "a0", "extra": 1}, None, "malformed array entry"),
        ({"__array__": "a9"}, None, "array a9 is missing"),
        ([{"__array__": "a0"}, {"__array__": "a0"}], None, "refers to array a0 twice"),
        ({"__dict__": 5}, None, "unknown entry"),
        ({"__dict__": [[1.5, 2]]}, None, "dict key of type float"),
        ({"__dict__": [["k", 1], ["k", 2]]}, None, "repeats the dict key 'k'"),
        ({"__dict__": [["k"]]}, None, r"not a \[key, value\] pair"),
        ({"__tuple__": "abc"}, None, "unknown entry"),
        ({"__float__": "1e400"}, None, "unknown float"),
        ({"weird": 1}, None, "unknown entry"),
        ({"__array__": "a0"}, [["a0", "<f8", [3]]], "the manifest lists <f8"),
        ({"__array__": "a0"}, [["a0", "<f4", [30]]], "the manifest lists <f4"),
        ({"__array__": "a0"}, [["a0", "<f4"]], "malformed array entry"),
        ({"__array__": "a0"}, "a0", "no list of arrays"),
        ({"__array__": "a0"}, [["a0", "<f4", [3]], ["a0", "<f4", [3]]], "lists array 'a0' twice"),
        (None, [["a0", "<f4", [3]], ["a1", "<f4", [3]]], "missing \\['a1'\\]"),
        ([], None, "never uses"),
    ],
)
def test_malformed_manifests_are_refused(tmp_path, root, listing, match):
    _refused(_one_array_file(tmp_path, "bad.npz", root, listing), match)


def test_deep_and_oversized_manifests_are_refused(tmp_path):
    deep = {"format": "minidl", "version": 2, "arrays": [], "root": None}
    text = json.dumps(deep).replace("null", "[" * 100_000 + "]" * 100_000).encode()
    _refused(_archive(tmp_path / "deep.npz", text, {}), "nested more than 64 levels")
    text = json.dumps(deep).replace("null", "[" * 70 + "]" * 70).encode()
    _refused(_archive(tmp_path / "deep70.npz", text, {}), "nested more than 64 levels")
    with pytest.raises(ValueError, match="nested more than 64 levels"):
        nested = []
        for _ in range(70):
            nested = [nested]
        minidl.save(nested, tmp_path / "never.npz")
    text = json.dumps({**deep, "root": "x" * (io.MAX_MANIFEST_BYTES + 1)}).encode()
    _refused(_archive(tmp_path / "big.npz", text, {}), "manifest is larger than")


@pytest.mark.parametrize(
    ("manifest", "match"),
    [
        (b"\xff\xfe not json", "not valid JSON"),
        (b"[1, 2]", "not a minidl file"),
        (b'{"format": "minidl", "version": "2", "arrays": [], "root": 1}', "format version '2'"),
        (b'{"format": "minidl", "version": true, "arrays": [], "root": 1}', "format version True"),
        (b'{"format": "minidl", "version": 3, "arrays": [], "root": 1}', "format version 3"),
        (b'{"format": "minidl", "version": 2, "arrays": []}', "has no root"),
        (b'{"format": "minidl", "version": 2, "arrays": [], "root": 1e999999}', None),
    ],
)
def test_malformed_manifest_text_is_refused(tmp_path, manifest, match):
    path = _archive(tmp_path / "bad.npz", manifest, {})
    if match is None:  # JSON's huge number parses to inf: a valid float leaf, loads as such
        assert minidl.load(path) == float("inf")
    else:
        _refused(path, match)


def test_a_manifest_that_is_not_bytes_is_refused(tmp_path):
    path = tmp_path / "bad.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__manifest__.npy", _npy(np.zeros((2, 2))))
    _refused(path, "manifest is a float64 array")


@pytest.mark.parametrize(
    "member", ["../a0.npy", "dir/a0.npy", "/abs.npy", "a0.txt", ".hidden.npy", "a\\b.npy"]
)
def test_path_like_and_unexpected_member_names_are_refused(tmp_path, member):
    path = _one_array_file(tmp_path, "names.npz")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(member, b"x")
    _refused(path, "unexpected member")


def test_duplicate_member_names_are_refused(tmp_path):
    path = _one_array_file(tmp_path, "dup.npz")
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("a0.npy", _npy(np.ones(3, dtype=np.float32)))
    _refused(path, "holds member 'a0.npy' twice")


def test_members_that_disagree_with_their_headers_are_refused(tmp_path):
    good = _npy(np.arange(3, dtype=np.float32))
    cases = {
        "short": good[:-4],
        "long": good + b"\x00" * 4,
        "negative": _npy(header={"descr": "<f4", "fortran_order": False, "shape": (-3,)}),
        "badheader": good[:10] + b"{'descr': 5}".ljust(len(good) - 10, b" "),
        "version3": good[:6] + b"\x03\x00" + good[8:],
        "notnpy": b"hello world, not an npy member at all",
    }
    for label, body in cases.items():
        path = _one_array_file(tmp_path, f"{label}.npz", members={"a0": body})
        with pytest.raises(minidl.CorruptFileError):
            minidl.load(path)


def test_encrypted_and_unknown_compression_members_are_refused(tmp_path):
    path = tmp_path / "state.npz"
    minidl.save({"w": np.zeros(3)}, path)
    data = bytearray(path.read_bytes())
    for field, value in ((6, 0x01), (8, 99)):  # flags: encrypted; method: unknown
        changed = bytearray(data)
        for start in _all(changed, b"PK\x03\x04"):
            changed[start + field] = value
        for start in _all(changed, b"PK\x01\x02"):
            changed[start + field + 2] = value
        broken = tmp_path / f"field{field}.npz"
        broken.write_bytes(bytes(changed))
        _refused(broken, "truncated or corrupt")


def _all(data, needle):
    start = data.find(needle)
    while start != -1:
        yield start
        start = data.find(needle, start + 1)


# ----------------------------------------------------------------------------- integrity


def _edit_manifest(path, out, edit, recompute=False):
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    manifest = np.load(stdio.BytesIO(members["__manifest__.npy"])).tobytes()
    changed = edit(manifest)
    members["__manifest__.npy"] = _npy(np.frombuffer(changed, np.uint8))
    if recompute:
        content = hashlib.sha256(changed)
        for name, body in members.items():
            if name not in ("__manifest__.npy", "__digest__.npy"):
                content.update(body[_npy_header_length(body) :])
        members["__digest__.npy"] = _npy(np.frombuffer(content.hexdigest().encode(), np.uint8))
    with zipfile.ZipFile(out, "w") as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return out


def test_an_edited_manifest_is_refused(tmp_path):
    path = tmp_path / "state.npz"
    minidl.save({"epoch": 3, "w": np.zeros(2)}, path)
    edited = _edit_manifest(path, tmp_path / "edited.npz", lambda m: m.replace(b"3", b"999"))
    _refused(edited, "does not match its digest")
    # the digest is not a signature: whoever recomputes it can make an edit load
    forged = _edit_manifest(
        path, tmp_path / "forged.npz", lambda m: m.replace(b"3", b"999"), recompute=True
    )
    assert minidl.load(forged)["epoch"] == 999


def test_files_of_format_version_1_still_load():
    # written by minidl.save before format 2 (per-array digests, no whole-content digest)
    loaded = minidl.load(os.path.join(ROOT, "tests", "data", "checkpoint_v1.npz"))
    expected = {
        "weights": np.arange(6, dtype=np.float32).reshape(2, 3),
        "epoch": 3,
        "lr": (0.1, float("inf")),
        "mask": np.array([True, False]),
        "nested": {"ids": np.array([1, 2], dtype=np.int64), 5: None},
    }
    assert _same(loaded, expected), loaded


def test_a_version_1_file_with_an_altered_array_is_refused(tmp_path):
    source = os.path.join(ROOT, "tests", "data", "checkpoint_v1.npz")
    with zipfile.ZipFile(source) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members["a0.npy"] = _npy(np.ones((2, 3), dtype=np.float32))
    path = tmp_path / "v1.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    _refused(path, "array a0 does not match its digest")


# ----------------------------------------------------------------------------- temporaries


def _temporary(directory, pid, host=None, age=0.0):
    host = io._host_tag() if host is None else host
    path = directory / f".tmp-{host}-{pid}-abc123.part"
    path.write_bytes(b"x" * 10)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_dead_writers_are_removed_by_the_next_save(tmp_path):
    dead = _temporary(tmp_path, _dead_pid())
    mine = _temporary(tmp_path, os.getpid())  # a live writer (this process)
    other_host_new = _temporary(tmp_path, 1, host="0123abcd")
    other_host_old = _temporary(tmp_path, 2, host="0123abcd", age=io.STALE_TEMPORARY_AGE + 60)
    old_style_new = tmp_path / ".tmp-k2j3h4.part"
    old_style_new.write_bytes(b"x")
    old_style_old = tmp_path / ".tmp-zzzzzz.part"
    old_style_old.write_bytes(b"x")
    then = time.time() - io.STALE_TEMPORARY_AGE - 60
    os.utime(old_style_old, (then, then))
    unrelated = tmp_path / "notes.part"
    unrelated.write_bytes(b"x")
    minidl.save({"epoch": 1}, tmp_path / "checkpoint.npz")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {
        mine.name,
        other_host_new.name,
        old_style_new.name,
        unrelated.name,
        "checkpoint.npz",
    }, left
    assert not dead.exists() and not other_host_old.exists() and not old_style_old.exists()


def test_a_live_writers_temporary_is_never_removed(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = _temporary(tmp_path, sleeper.pid, age=io.STALE_TEMPORARY_AGE * 10)
        minidl.save({"epoch": 1}, tmp_path / "checkpoint.npz")
        assert live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    minidl.save({"epoch": 2}, tmp_path / "checkpoint.npz")
    assert not live.exists()


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import minidl
    path = sys.argv[1]
    epoch = 0
    while True:
        epoch += 1
        minidl.save({"epoch": epoch, "w": np.full(300_000, epoch, dtype=np.float32)}, path)
        print(epoch, flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_while_writing_checkpoints(tmp_path):
    """A writer killed at 20 random moments: the file always loads, consistent with itself,
    and the next save leaves no temporary behind."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    path = tmp_path / "checkpoint.npz"
    moments = random.Random(15).sample(range(0, 200), 20)
    last_epoch, kills_leaving_a_temporary = 0, 0
    for moment in moments:
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=env, text=True
        )
        assert writer.stdout.readline().strip() == "1"  # one complete save, then a random wait
        time.sleep(moment / 1000)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        kills_leaving_a_temporary += any(p.name.endswith(".part") for p in tmp_path.iterdir())
        state = minidl.load(path)
        assert state["w"].shape == (300_000,) and np.all(state["w"] == state["epoch"])
        last_epoch = max(last_epoch, state["epoch"])
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
    minidl.save({"epoch": 0}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"], leftovers
    assert last_epoch > 1, "no kill came after the first save: the moments are too short"
    # about 12 of the 20 kills land mid-save; none would mean the cleaning went untested
    assert kills_leaving_a_temporary > 0, "no kill left a temporary behind"


def _idx_header(code, shape):
    return bytes([0, 0, code, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)


def test_idx_dimensions_whose_product_overflows_are_refused(tmp_path):
    shape = (2**32 - 1, 2**32 - 1, 2**32 - 1)
    raw = tmp_path / "overflow-idx3-ubyte"
    raw.write_bytes(_idx_header(0x0E, shape) + bytes(16))
    with pytest.raises(minidl.CorruptFileError, match=r"is truncated: dimensions \(4294967295,"):
        read_idx(raw)
    compressed = tmp_path / "overflow-idx3-ubyte.gz"
    compressed.write_bytes(gzip.compress(_idx_header(0x0E, shape) + bytes(16)))
    with pytest.raises(minidl.CorruptFileError, match="more than the limit"):
        read_idx(compressed)


def test_idx_gzip_trailing_data_and_short_payloads_are_refused(tmp_path):
    body = _idx_header(0x08, (4,)) + bytes([1, 2, 3, 4])
    cases = {
        "extra.gz": gzip.compress(body + b"\x00"),
        "short.gz": gzip.compress(body[:-1]),
        "garbage.gz": gzip.compress(body) + b"garbage",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(minidl.CorruptFileError, match=re.escape(name)):
            read_idx(path)
    path = tmp_path / "two-members.gz"  # a valid multi-member gzip reads whole
    path.write_bytes(gzip.compress(body[:5]) + gzip.compress(body[5:]))
    np.testing.assert_array_equal(read_idx(path), [1, 2, 3, 4])


def test_read_idx_max_bytes(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, np.zeros((4, 5, 5), np.uint8))
    with pytest.raises(minidl.CorruptFileError, match="more than the limit of 10 bytes"):
        read_idx(path, max_bytes=10)
    assert read_idx(path, max_bytes=100).shape == (4, 5, 5)
    with pytest.raises(TypeError, match="read_idx: max_bytes must be an int"):
        read_idx(path, max_bytes="100")
