"""minidl.save / minidl.load: round trips, atomic writes, refusal of corrupt files and pickles."""

import os
import pickle
import zipfile

import numpy as np
import pytest

import minidl
from minidl import io


def test_round_trip_of_nested_structures(tmp_path):
    state = {
        "weights": np.arange(6, dtype=np.float32).reshape(2, 3),
        "counts": np.array(7, dtype=np.int64),
        "mask": np.array([True, False]),
        "tensor": minidl.ones(2),
        "nested": {"list": [1, 2.5, "three", None, True], "tuple": (0.1, 2), 5: "int key"},
        "big": 2**100,
        "inf": float("inf"),
        "nan": float("nan"),
        "numpy_scalar": np.float32(1.5),
    }
    path = tmp_path / "state.npz"
    minidl.save(state, path)
    loaded = minidl.load(path)
    np.testing.assert_array_equal(loaded["weights"], state["weights"])
    assert loaded["weights"].dtype == np.float32
    assert loaded["counts"].dtype == np.int64 and loaded["counts"] == 7
    np.testing.assert_array_equal(loaded["mask"], [True, False])
    np.testing.assert_array_equal(loaded["tensor"], [1.0, 1.0])
    assert loaded["nested"]["list"] == [1, 2.5, "three", None, True]
    assert loaded["nested"]["tuple"] == (0.1, 2)
    assert loaded["nested"][5] == "int key"
    assert loaded["big"] == 2**100
    assert loaded["inf"] == float("inf") and np.isnan(loaded["nan"])
    assert loaded["numpy_scalar"] == 1.5


def test_refuses_what_it_cannot_store_without_pickle(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['x'\] is an array of dtype object"):
        minidl.save({"x": np.array([object()])}, tmp_path / "a.npz")
    with pytest.raises(TypeError, match="is a set"):
        minidl.save({"x": {1, 2}}, tmp_path / "a.npz")
    assert not any(tmp_path.iterdir()), "a failed save must leave no file behind"


def test_an_object_array_is_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(
        path,
        __manifest__=np.frombuffer(
            b'{"format": "minidl", "version": 1, "root": {"__array__": "a0", "sha256": ""}}',
            dtype=np.uint8,
        ),
        a0=np.array([Payload()], dtype=object),
    )
    with pytest.raises(ValueError, match=r"pickled data .* it never unpickles"):
        minidl.load(path)
    assert not marker.exists()


def test_a_plain_pickle_file_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ValueError, match=r"pickled data .* it never unpickles"):
        minidl.load(path)


def test_truncated_files_are_refused_clearly(tmp_path):
    path = tmp_path / "state.npz"
    minidl.save({"w": np.random.default_rng(0).standard_normal(10_000)}, path)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 10):
        broken = tmp_path / f"cut{cut}.npz"
        broken.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated or corrupt"):
            minidl.load(broken)


def test_tampered_arrays_are_refused(tmp_path):
    path = tmp_path / "state.npz"
    minidl.save({"w": np.zeros(4)}, path)
    # rewrite the archive with a changed array but the original manifest (valid zip CRCs)
    with zipfile.ZipFile(path) as archive:
        manifest = archive.read("__manifest__.npy")
        digest = archive.read("__digest__.npy")
    tampered = tmp_path / "tampered.npz"
    with zipfile.ZipFile(tampered, "w") as archive:
        archive.writestr("__manifest__.npy", manifest)
        archive.writestr("__digest__.npy", digest)
        import io as stdio

        buffer = stdio.BytesIO()
        np.save(buffer, np.ones(4))
        archive.writestr("a0.npy", buffer.getvalue())
    with pytest.raises(ValueError, match="does not match its digest"):
        minidl.load(tampered)
    # a flipped byte inside the compressed-less payload breaks the zip CRC
    data = bytearray(path.read_bytes())
    index = data.find(b"\x00" * 16)
    data[index] = 0xFF
    flipped = tmp_path / "flipped.npz"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        minidl.load(flipped)


def test_not_a_minidl_file(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, x=np.zeros(2))
    with pytest.raises(ValueError, match="not a minidl file"):
        minidl.load(path)


def test_a_crash_mid_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    minidl.save({"epoch": 1}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        minidl.save({"epoch": 2}, path)
    monkeypatch.undo()
    assert minidl.load(path) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_atomic_write_syncs_and_renames(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with io.atomic_write(tmp_path / "file.txt", "w") as handle:
        handle.write("hello")
        assert not (tmp_path / "file.txt").exists()  # nothing at the target until the rename
    assert (tmp_path / "file.txt").read_text() == "hello"
    assert len(synced) >= 1


def test_every_array_layout_round_trips_exactly(tmp_path):
    state = {
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "scalar": np.array(7),
        "empty": np.zeros((0, 3), np.float32),
        "big_endian": np.arange(3, dtype=">i4"),
        "strided": np.arange(10)[::2],
        "half": np.ones(2, np.float16),
        "uint64": np.array([2**64 - 1], np.uint64),
    }
    path = tmp_path / "layouts.npz"
    minidl.save(state, path)
    loaded = minidl.load(path)
    for name, array in state.items():
        assert loaded[name].dtype == array.dtype, name
        assert loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)


def test_corrupt_files_raise_one_documented_type(tmp_path):
    assert issubclass(minidl.CorruptFileError, ValueError)
    assert minidl.CorruptFileError is io.CorruptFileError
    path = tmp_path / "junk.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(minidl.CorruptFileError, match=r"junk\.npz is truncated or corrupt"):
        minidl.load(path)
    with pytest.raises(FileNotFoundError):
        minidl.load(tmp_path / "missing.npz")
