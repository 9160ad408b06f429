"""torch idioms that run with the import changed: devices, torch.utils.data, torch.load's
keywords, and the file torch.save writes (refused, saying how to convert it)."""

import zipfile

import numpy as np
import pytest

import minidl
from minidl import nn


def test_choosing_the_device_as_torch_code_does_gives_the_cpu():
    device = minidl.device("cuda" if minidl.cuda.is_available() else "cpu")
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert model.to(device) is model and model.cpu() is model
    assert minidl.cuda.device_count() == 0
    x = minidl.randn(5, 3).to(device, non_blocking=True)
    assert model(x).shape == (5, 4)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((minidl.float64,), {}),
        (("cpu", minidl.float64), {}),
        ((minidl.device("cpu"),), {"dtype": minidl.float64}),
        ((), {"device": "cpu", "dtype": minidl.float64, "non_blocking": True}),
        ((minidl.zeros(1, dtype=minidl.float64),), {}),
    ],
)
def test_module_to_takes_torchs_forms(args, kwargs):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    assert model.to(*args, **kwargs) is model
    assert model[0].weight.dtype == minidl.float64 and model[1].running_var.dtype == minidl.float64
    assert model[1].num_batches_tracked.dtype == minidl.int64  # integers keep theirs, as torch


def test_module_to_a_device_alone_changes_nothing():
    model = nn.Linear(3, 4)
    before = model.weight
    assert model.to("cpu") is model and model.weight is before
    assert model.weight.dtype == minidl.float32


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda m: m.cuda(), RuntimeError, r"Module\.cuda: minidl computes on the CPU only"),
        (lambda m: m.to("cuda"), RuntimeError, r"Module\.to: .*CPU only.*'cuda'"),
        (lambda m: m.to(minidl.int64), TypeError, r"Module\.to: expected float32 or float64"),
        (lambda m: m.to(object()), TypeError, r"Module\.to: expected a dtype or a device"),
        (lambda m: minidl.ones(1).cuda(), RuntimeError, r"Tensor\.cuda: .*CPU only"),
    ],
)
def test_gpu_requests_are_refused_naming_the_call(call, error, match):
    with pytest.raises(error, match=match):
        call(nn.Linear(2, 2))


def test_torch_utils_data_path():
    from minidl.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split

    assert minidl.utils.data.DataLoader is minidl.data.DataLoader
    assert (Dataset, Subset, random_split) == (
        minidl.data.Dataset,
        minidl.data.Subset,
        minidl.data.random_split,
    )
    data = TensorDataset(minidl.arange(10.0).reshape(5, 2), minidl.arange(5))
    x, y = data[2]
    assert isinstance(x, minidl.Tensor) and x.tolist() == [4.0, 5.0] and int(y) == 2
    batches = list(DataLoader(data, batch_size=2))
    assert [tuple(t.shape for t in b) for b in batches] == [((2, 2), (2,))] * 2 + [((1, 2), (1,))]


def test_tensor_dataset_of_one_tensor_gives_one_tuples_as_torch(torch):
    values = np.arange(8.0).reshape(4, 2)
    ours = minidl.data.TensorDataset(minidl.tensor(values))
    theirs = torch.utils.data.TensorDataset(torch.tensor(values))
    assert len(ours) == len(theirs)
    assert len(ours[1]) == len(theirs[1]) == 1
    np.testing.assert_array_equal(ours[1][0].numpy(), theirs[1][0].numpy())
    ours_batches = list(minidl.data.DataLoader(ours, batch_size=3))
    theirs_batches = list(torch.utils.data.DataLoader(theirs, batch_size=3))
    for (a,), (b,) in zip(ours_batches, theirs_batches, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_load_takes_torch_load_keywords(tmp_path):
    path = tmp_path / "state.npz"
    minidl.save({"w": np.arange(3.0)}, path)
    for location in (None, "cpu", minidl.device("cpu")):
        for weights_only in (None, True, False):
            loaded = minidl.load(path, map_location=location, weights_only=weights_only)
            np.testing.assert_array_equal(loaded["w"], np.arange(3.0))
    with pytest.raises(RuntimeError, match="CPU only"):
        minidl.load(path, map_location="cuda:0")


def _assert_refused_as_torch_file(path):
    with pytest.raises(minidl.CorruptFileError, match=r"written by torch\.save") as raised:
        minidl.load(path)
    assert "safetensors.torch.save_file" in str(raised.value)


def test_a_file_torch_save_wrote_is_refused_saying_how_to_convert(tmp_path, torch):
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 3).state_dict(), path)
    _assert_refused_as_torch_file(path)


def test_a_torch_style_archive_is_recognised_without_torch(tmp_path):
    path = tmp_path / "model.pth"
    with zipfile.ZipFile(path, "w") as archive:  # torch.save's layout: name/data.pkl, ...
        archive.writestr("model/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("model/version", b"3\n")
    _assert_refused_as_torch_file(path)
