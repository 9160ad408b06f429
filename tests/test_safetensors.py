"""minidl.save / minidl.load with a ``.safetensors`` path: round trips with PyTorch, refusals,
and hostile files (every truncation and byte flip of a small file is refused or loads exactly
what the changed bytes say: the format has no checksum)."""

import functools
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _state():
    return {
        "weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "num_batches_tracked": np.array(3, dtype=np.int64),
        "mask": np.array([True, False]),
    }


def _same(a, b):
    return list(a) == list(b) and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k])
        for k in a
    )


def _file(header, data=b"", pad=True):
    """The bytes of a safetensors file with a hand-made ``header`` (an object or JSON text)."""
    text = header.encode("utf-8") if isinstance(header, str) else json.dumps(header).encode("utf-8")
    if pad:
        text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data


# ----------------------------------------------------------------------------- round trips


def test_round_trip_keeps_names_dtypes_shapes_and_values(tmp_path):
    state = {
        **_state(),
        "half": np.linspace(0, 1, 5).astype(np.float16),
        "double": np.eye(3),
        "bytes": np.arange(4, dtype=np.uint8),
        "big_endian": np.arange(3, dtype=">i4"),
        "transposed": np.arange(6, dtype=np.float32).reshape(2, 3).T,
        "empty": np.zeros((0, 4), dtype=np.float32),
        "tensor": minidl.ones(2, 2),
    }
    path = tmp_path / "state.safetensors"
    minidl.save(state, path)
    loaded = minidl.load(path)
    assert set(loaded) == set(state)
    for name, value in state.items():
        value = value.numpy() if isinstance(value, minidl.Tensor) else value
        assert loaded[name].shape == value.shape, name
        assert loaded[name].dtype == value.dtype.newbyteorder("<"), name
        np.testing.assert_array_equal(loaded[name], value)
    assert loaded["num_batches_tracked"].shape == ()
    # the safetensors package reads the same content
    theirs = safetensors_numpy.load_file(str(path))
    assert all(np.array_equal(theirs[k], loaded[k]) for k in state)
    # and minidl reads what the package writes, metadata included
    other = tmp_path / "theirs.safetensors"
    safetensors_numpy.save_file(_state(), str(other), metadata={"format": "np"})
    assert _same(dict(sorted(minidl.load(other).items())), dict(sorted(_state().items())))


def test_npz_paths_keep_minidl_format_for_full_checkpoints(tmp_path):
    checkpoint = {"model": _state(), "epoch": 2, "optimizer": {"lr": 0.1, "state": [1, 2]}}
    path = tmp_path / "checkpoint.npz"
    minidl.save(checkpoint, path)
    loaded = minidl.load(path)
    assert loaded["epoch"] == 2 and loaded["optimizer"] == checkpoint["optimizer"]
    assert _same(loaded["model"], checkpoint["model"])


@pytest.mark.parametrize(
    "obj, what",
    [
        ({"model": _state()}, "dict"),
        ({"epoch": 3}, "int"),
        ({"lr": 0.1}, "float"),
        ({"name": "mlp"}, "str"),
        ({"optimizer": {"state": {}, "param_groups": []}}, "dict"),
        ([np.ones(2)], "list"),
        ({1: np.ones(2)}, "int"),
    ],
)
def test_anything_but_a_flat_state_dict_is_refused(tmp_path, obj, what):
    path = tmp_path / "model.safetensors"
    minidl.save(_state(), path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"save: .*\.npz.*" + what):
        minidl.save(obj, path)
    assert path.read_bytes() == before  # nothing was written
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]


def test_unsupported_dtypes_and_the_reserved_name_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    with pytest.raises(ValueError, match=r"save: .*dtype <U1"):
        minidl.save({"names": np.array(["a"])}, path)
    with pytest.raises(ValueError, match=r"save: .*complex128"):
        minidl.save({"z": np.zeros(2, dtype=complex)}, path)
    with pytest.raises(ValueError, match=r"save: .*reserved"):
        minidl.save({"__metadata__": np.zeros(2)}, path)
    assert not path.exists()


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    minidl.save(_state(), path)
    before = path.read_bytes()

    def broken(_):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors_numpy, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        minidl.save({"other": np.zeros(3)}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]


# ----------------------------------------------------------------------------- PyTorch


@functools.cache
def _torch_twin_factory():
    """``_torch_model`` of benchmarks/bench_train_step.py: the torch twins of the two models."""
    folder = Path(__file__).resolve().parent.parent / "benchmarks"

    def load(name, file):
        spec = importlib.util.spec_from_file_location(name, folder / file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    saved = sys.modules.get("harness")
    sys.modules["harness"] = load("_benchmarks_harness", "harness.py")  # its first import
    try:
        return load("_bench_train_step", "bench_train_step.py")._torch_model
    finally:
        if saved is None:
            del sys.modules["harness"]
        else:
            sys.modules["harness"] = saved


def _torch_twin(kind):
    return _torch_twin_factory()(kind)


def _minidl_model(kind):
    if kind == "mlp":
        return minidl.models.bn_paper_mlp()
    return minidl.models.small_cnn(batch_norm=True)


def _batches(count=3):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((4, 1, 28, 28)).astype(np.float32) for _ in range(count)]


def _assert_same_outputs(model, twin):
    """In eval mode, ``model`` (minidl) and ``twin`` (torch) map a new batch to the same outputs."""
    import torch

    model.eval()
    twin.eval()
    x = _batches(4)[-1]
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(minidl.tensor(x)).numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_a_minidl_state_dict_loads_into_torch_and_gives_the_same_outputs(tmp_path, kind):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    model = _minidl_model(kind)
    for batch in _batches():  # train-mode passes move the BatchNorm buffers
        model(minidl.tensor(batch))
    path = tmp_path / "model.safetensors"
    minidl.save(model.state_dict(), path)
    twin = _torch_twin(kind)
    state = safetensors.torch.load_file(str(path))
    counters = [n for n in state if n.endswith("num_batches_tracked")]
    assert len(counters) == 3  # three BatchNorm layers in both models
    assert all(state[n].dtype == torch.int64 and int(state[n]) == 3 for n in counters)
    twin.load_state_dict(state)  # strict: every name and shape matches
    _assert_same_outputs(model, twin)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_a_torch_state_dict_loads_into_minidl_and_gives_the_same_outputs(tmp_path, kind):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    torch.manual_seed(0)
    twin = _torch_twin(kind)
    for batch in _batches():
        twin(torch.from_numpy(batch))
    path = tmp_path / "model.safetensors"
    safetensors.torch.save_file(twin.state_dict(), str(path))
    model = _minidl_model(kind)
    state = minidl.load(path)
    counters = [n for n in state if n.endswith("num_batches_tracked")]
    assert len(counters) == 3  # three BatchNorm layers in both models
    for name in counters:
        assert state[name].dtype == np.int64 and state[name].shape == () and state[name] == 3
    model.load_state_dict(state)
    for name, value in twin.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name], value.numpy(), err_msg=name)
    _assert_same_outputs(model, twin)


# ----------------------------------------------------------------------------- hostile files


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("safetensors") / "small.safetensors"
    minidl.save(_state(), path)
    return path, minidl.load(path), path.read_bytes()


def _load_or_corrupt(path):
    try:
        return minidl.load(path)
    except minidl.CorruptFileError as error:
        assert str(path) in str(error), f"the error does not name the file: {error}"
        return None


def test_truncation_at_every_offset_is_refused(small_file, tmp_path):
    _, _, data = small_file
    broken = tmp_path / "cut.safetensors"
    for cut in range(len(data)):
        broken.write_bytes(data[:cut])
        assert _load_or_corrupt(broken) is None, f"a file cut to {cut} of {len(data)} bytes loaded"


@pytest.mark.parametrize("mask", [0xFF, 0x01])
def test_every_byte_flipped_is_refused_or_loads_exactly_the_changed_data(
    small_file, tmp_path, mask
):
    _, reference, data = small_file
    data_start = 8 + int.from_bytes(data[:8], "little")
    header = json.loads(data[8:data_start])
    broken = tmp_path / "flip.safetensors"
    outcomes = {"refused": 0, "header loaded": 0, "data changed": 0}
    for offset in range(len(data)):
        changed = bytearray(data)
        changed[offset] ^= mask
        broken.write_bytes(bytes(changed))
        result = _load_or_corrupt(broken)
        if offset < data_start:
            # a header flip is refused, or (mask 1) turns e.g. a space into '!' or a name's
            # letter into another one: never a silent change of shapes, dtypes or values
            if result is not None:
                outcomes["header loaded"] += 1
                assert [(a.dtype, a.shape) for a in result.values()] == [
                    (a.dtype, a.shape) for a in reference.values()
                ]
                assert all(
                    np.array_equal(a, b) for a, b in zip(result.values(), reference.values())
                )
            else:
                outcomes["refused"] += 1
            continue
        # no checksum: a data byte loads as the value it now encodes, except a bool byte other
        # than 0/1, which is refused
        name = next(
            n
            for n, e in header.items()
            if e["data_offsets"][0] <= offset - data_start < e["data_offsets"][1]
        )
        if reference[name].dtype == np.bool_ and changed[offset] > 1:
            assert result is None
            outcomes["refused"] += 1
            continue
        begin, end = (data_start + o for o in header[name]["data_offsets"])
        expected = np.frombuffer(bytes(changed[begin:end]), reference[name].dtype)
        assert np.array_equal(result[name], expected.reshape(reference[name].shape))
        assert all(np.array_equal(result[n], reference[n]) for n in reference if n != name)
        outcomes["data changed"] += 1
    if mask == 0xFF:
        assert outcomes["header loaded"] == 0, outcomes
    assert outcomes["refused"] >= data_start - outcomes["header loaded"], outcomes


def _write(tmp_path, raw):
    path = tmp_path / "hand-made.safetensors"
    path.write_bytes(raw)
    return path


F32_2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(
    "header, data, match",
    [
        ({"a": F32_2, "b": F32_2}, bytes(8), "overlap"),
        ({"a": {**F32_2, "data_offsets": [8, 16]}}, bytes(16), "gap"),
        ({"a": {**F32_2, "data_offsets": [0, 8]}}, bytes(4), "cover"),
        ({"a": F32_2}, bytes(12), "cover"),
        ({"a": {**F32_2, "data_offsets": [0, 2**70]}}, bytes(8), "needs 8 bytes"),
        ({"a": {**F32_2, "shape": [2**40, 2**40]}}, bytes(8), "needs"),
        ({"a": {**F32_2, "shape": [-2]}}, bytes(8), "malformed shape"),
        ({"a": {**F32_2, "data_offsets": [8, 0]}}, bytes(8), "malformed data offsets"),
        ({"a": {**F32_2, "dtype": "Q7"}}, bytes(8), "unknown dtype"),
        ({"a": {**F32_2, "dtype": "BF16", "data_offsets": [0, 4]}}, bytes(4), "BF16.*numpy"),
        ({"a": {**F32_2, "extra": 1}}, bytes(8), "malformed entry"),
        ({"a": F32_2, "__metadata__": {"format": 1}}, bytes(8), "__metadata__"),
        ([1, 2], b"", "not a JSON object"),
    ],
)
def test_malformed_headers_are_refused(tmp_path, header, data, match):
    path = _write(tmp_path, _file(header, data))
    with pytest.raises(minidl.CorruptFileError, match=match) as caught:
        minidl.load(path)
    assert str(path) in str(caught.value)


def test_bad_json_a_repeated_name_and_a_huge_header_length_are_refused(tmp_path):
    raw = _file({"a": F32_2}, bytes(8))
    for broken, match in [
        (raw.replace(b'"a"', b"'a'"), "not valid JSON"),
        (_file('{"a": 1, "a": ' + json.dumps(F32_2) + "}", bytes(8)), "twice"),
        ((2**62).to_bytes(8, "little") + raw[8:], "header declares"),
        ((len(raw)).to_bytes(8, "little") + raw[8:], "header declares"),
    ]:
        path = _write(tmp_path, broken)
        with pytest.raises(minidl.CorruptFileError, match=match):
            minidl.load(path)


def test_max_bytes_bounds_the_data_before_allocating(tmp_path):
    path = tmp_path / "state.safetensors"
    minidl.save({"w": np.zeros(1000, dtype=np.float64)}, path)
    assert minidl.load(path, max_bytes=8000)["w"].shape == (1000,)
    with pytest.raises(minidl.CorruptFileError, match=r"8000 bytes of data.*max_bytes"):
        minidl.load(path, max_bytes=7999)
    with pytest.raises(ValueError, match="load: max_bytes"):
        minidl.load(path, max_bytes=-1)
