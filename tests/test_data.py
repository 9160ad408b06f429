"""minidl.data: IDX files, finding and downloading data sets, DataLoader, transforms."""

import copy
import functools
import gzip
import hashlib
import http.server
import os
import threading
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl.data import datasets, transforms
from minidl.data.idx import IDX_TYPES, read_idx, write_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def _needs_data_set(name):
    """Skip unless ``$MINIDL_DATA/<name>/`` exists, saying which of the two is missing."""
    root = os.environ.get("MINIDL_DATA")
    if not root:
        reason = f"MINIDL_DATA is not set (point it at a folder holding {name}/)"
    else:
        reason = f"MINIDL_DATA={root} holds no {name}/ folder"
    return pytest.mark.skipif(not root or not (Path(root) / name).is_dir(), reason=reason)


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("code", sorted(IDX_TYPES))
@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
@pytest.mark.parametrize("compressed", [False, True])
def test_idx_round_trip_every_type_and_rank(tmp_path, code, ndim, compressed):
    dtype = IDX_TYPES[code].newbyteorder("=")
    shape = (3, 4, 2, 5)[:ndim]
    rng = np.random.default_rng(code + ndim)
    if dtype.kind == "f":
        array = rng.standard_normal(shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    path = tmp_path / ("data.idx.gz" if compressed else "data.idx")
    write_idx(path, array)
    loaded = read_idx(path)
    assert loaded.dtype == dtype and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, array)
    # the header is what the format says: 0, 0, type code, ndim, big-endian sizes
    raw = gzip.decompress(path.read_bytes()) if compressed else path.read_bytes()
    assert raw[:4] == bytes([0, 0, code, ndim])
    assert int.from_bytes(raw[4:8], "big") == shape[0]


def _raw(tmp_path, data, name="bad.idx"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
        (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x05", "unknown IDX type code 0x0A"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated: its header announces 3 dimensions"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x04\x01\x02", r"truncated: dimensions \(4,\)"),
        (b"\x00\x00\x0c\x01\x00\x00\x00\x01\x00\x00\x00\x01\xff", "1 bytes follow"),
    ],
)
def test_idx_corruption_is_named(tmp_path, data, message):
    path = _raw(tmp_path, data)
    with pytest.raises(ValueError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_idx_truncated_gzip_is_named(tmp_path):
    path = tmp_path / "images.gz"
    write_idx(path, np.zeros((10, 28, 28), np.uint8))
    data = path.read_bytes()
    broken = _raw(tmp_path, data[: len(data) // 2], "broken.gz")
    with pytest.raises(ValueError, match="damaged gzip file") as error:
        read_idx(broken)
    assert "broken.gz" in str(error.value)


def test_write_idx_refuses_other_dtypes(tmp_path):
    with pytest.raises(TypeError, match="IDX stores"):
        write_idx(tmp_path / "x.idx", np.zeros(2, np.int64))


# ---------------------------------------------------------------- finding data


def _write_split(directory, images, labels, prefix="train"):
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)


def _tiny(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(
        np.uint8
    )


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No MINIDL_DATA, a private home (so the cache is empty), downloads allowed."""
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MINIDL_OFFLINE", raising=False)
    monkeypatch.setattr(datasets, "_reported", set())
    return tmp_path


def test_search_order_and_report_once(isolated, monkeypatch, capsys):
    images, labels = _tiny()
    env_root = isolated / "env"
    _write_split(env_root / "mnist", images, labels)
    other_images, other_labels = _tiny(seed=1)
    _write_split(Path(datasets.cache_dir("mnist")), other_images, other_labels)
    monkeypatch.setenv("MINIDL_DATA", str(env_root))
    loaded, _ = minidl.data.load_mnist("train")
    np.testing.assert_array_equal(loaded, images)  # $MINIDL_DATA comes before the cache
    assert capsys.readouterr().err.count("MNIST (train) from") == 1
    minidl.data.load_mnist("train")
    assert capsys.readouterr().err == ""  # reported once
    explicit = isolated / "explicit"
    _write_split(explicit, other_images, other_labels)
    loaded, loaded_labels = minidl.data.load_mnist("train", data_dir=explicit)
    np.testing.assert_array_equal(loaded, other_images)  # data_dir comes first
    assert loaded_labels.dtype == np.int64


def test_uncompressed_files_are_found(isolated):
    images, labels = _tiny()
    folder = isolated / "plain"
    folder.mkdir()
    write_idx(folder / "t10k-images-idx3-ubyte", images)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels)
    loaded, _ = minidl.data.load_kmnist("test", data_dir=folder)
    np.testing.assert_array_equal(loaded, images)


def test_not_found_offline_lists_places_and_remedies(isolated, monkeypatch):
    monkeypatch.setenv("MINIDL_OFFLINE", "1")
    monkeypatch.setenv("MINIDL_DATA", str(isolated / "nowhere"))
    with (
        pytest.raises(minidl.data.DataNotFoundError) as error,
        pytest.warns(UserWarning, match="MINIDL_DATA=.*nowhere.* does not exist"),
    ):
        minidl.data.load_kmnist("test", data_dir=isolated / "given")
    message = str(error.value)
    places = [
        isolated / "given",
        isolated / "nowhere" / "kmnist",
        datasets.cache_dir("kmnist"),
        "/usr/share/datasets/kmnist",
    ]
    for place in places:
        assert str(place) in message
    assert "MINIDL_OFFLINE" in message
    assert "MINIDL_DATA" in message and "download the files by hand" in message
    assert "pass data_dir=DIR" in message
    error.value.data_dir_option = "--data-dir"  # what a script sets: its own option's name
    assert "pass --data-dir DIR" in str(error.value) and "data_dir=" not in str(error.value)
    fashion = datasets._not_found_message(
        datasets.DATASETS["fashion-mnist"], "train", ["/somewhere"], OSError("offline")
    )
    assert "apt-get install dataset-fashion-mnist" in fashion and "offline" in fashion


def test_mismatched_labels_are_refused(isolated):
    images, labels = _tiny()
    folder = isolated / "bad"
    _write_split(folder, images, labels[:5])
    with pytest.raises(ValueError, match="expected 12 labels for 12 images"):
        minidl.data.load_mnist("train", data_dir=folder)


# ---------------------------------------------------------------- downloads from a local server


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www, stopped after the test."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _serve_tiny(root, monkeypatch, corrupt=None, truncate=None):
    """Serve a tiny data set as 'mnist' with its own published checksums and sizes."""
    images, labels = _tiny(20)
    files = {}
    for name, array in (
        ("train-images-idx3-ubyte.gz", images),
        ("train-labels-idx1-ubyte.gz", labels),
    ):
        write_idx(root / name, array)
        data = (root / name).read_bytes()
        files[name] = datasets.RemoteFile(name, hashlib.md5(data).hexdigest(), len(data))
        if name == corrupt:
            damaged = bytearray(data)
            damaged[len(damaged) // 2] ^= 0xFF
            (root / name).write_bytes(bytes(damaged))
        if name == truncate:
            (root / name).write_bytes(data[: len(data) // 2])
    spec = datasets.DATASETS["mnist"]
    return images, labels, spec, files


def _patch_spec(monkeypatch, spec, files, mirrors):
    patched = datasets.DatasetSpec(
        name=spec.name,
        title=spec.title,
        mirrors=mirrors,
        files={
            "train": (files["train-images-idx3-ubyte.gz"], files["train-labels-idx1-ubyte.gz"]),
            "test": spec.files["test"],
        },
        mean=spec.mean,
        std=spec.std,
    )
    monkeypatch.setitem(datasets.DATASETS, "mnist", patched)


def test_download_lands_verified_in_the_cache(isolated, server, monkeypatch):
    root, url = server
    images, labels, spec, files = _serve_tiny(root, monkeypatch)
    dead_mirror = "http://127.0.0.1:9/"  # refused at once: the fallback mirror serves it
    _patch_spec(monkeypatch, spec, files, [dead_mirror, url])
    loaded, loaded_labels = minidl.data.load_mnist("train")
    np.testing.assert_array_equal(loaded, images)
    np.testing.assert_array_equal(loaded_labels, labels)
    cache = Path(datasets.cache_dir("mnist"))
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)


@pytest.mark.parametrize("fault", ["corrupt", "truncate"])
def test_bad_downloads_leave_nothing_and_raise(isolated, server, monkeypatch, fault):
    root, url = server
    bad = "train-images-idx3-ubyte.gz"
    _, _, spec, files = _serve_tiny(root, monkeypatch, **{fault: bad})
    _patch_spec(monkeypatch, spec, files, [url])
    with pytest.raises(minidl.data.DataNotFoundError) as error:
        minidl.data.load_mnist("train")
    message = str(error.value)
    assert "download failed" in message
    assert ("MD5" in message) if fault == "corrupt" else ("published size" in message)
    cache = Path(datasets.cache_dir("mnist"))
    leftovers = [p.name for p in cache.iterdir()] if cache.exists() else []
    assert bad not in leftovers and not any(name.endswith(".part") for name in leftovers)


def test_a_missing_file_on_the_server_is_reported(isolated, server, monkeypatch):
    root, url = server
    _, _, spec, files = _serve_tiny(root, monkeypatch)
    os.unlink(root / "train-labels-idx1-ubyte.gz")
    _patch_spec(monkeypatch, spec, files, [url])
    with pytest.raises(minidl.data.DataNotFoundError, match="404"):
        minidl.data.load_mnist("train")


# ---------------------------------------------------------------- datasets and the loader


def test_array_dataset_and_batched_gather():
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    data = minidl.data.ArrayDataset(x, y)
    assert len(data) == 10
    _, by = data[np.array([3, 1])]
    np.testing.assert_array_equal(by, [3, 1])
    with pytest.raises(ValueError, match="same length, got 10, 9"):
        minidl.data.ArrayDataset(x, y[:9])


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("prefetch", [False, True])
def test_every_sample_once_per_epoch_when_shuffling(batched, prefetch):
    x = np.arange(103, dtype=np.float32)[:, None]
    y = np.arange(103)
    dataset = minidl.data.ArrayDataset(x, y)
    if not batched:

        class PerSample(minidl.data.Dataset):
            def __len__(self):
                return 103

            def __getitem__(self, i):
                return x[i], y[i]

        dataset = PerSample()
    loader = minidl.data.DataLoader(dataset, batch_size=10, shuffle=True, seed=3, prefetch=prefetch)
    assert len(loader) == 11
    orders = []
    for _ in range(2):
        seen = np.concatenate([batch_y.data for _, batch_y in loader])
        assert sorted(seen.tolist()) == list(range(103))
        orders.append(seen)
    assert not np.array_equal(orders[0], orders[1])  # a new permutation each epoch
    again = minidl.data.DataLoader(dataset, batch_size=10, shuffle=True, seed=3, prefetch=prefetch)
    np.testing.assert_array_equal(np.concatenate([b[1].data for b in again]), orders[0])


def test_manual_seed_fixes_the_order_without_a_loader_seed():
    data = minidl.data.ArrayDataset(np.arange(50))
    minidl.manual_seed(4)
    first = np.concatenate([b.data for b in minidl.data.DataLoader(data, 8, shuffle=True)])
    minidl.manual_seed(4)
    second = np.concatenate([b.data for b in minidl.data.DataLoader(data, 8, shuffle=True)])
    np.testing.assert_array_equal(first, second)


def test_drop_last_and_batch_types():
    data = minidl.data.ArrayDataset(np.zeros((10, 3), np.float32), np.arange(10))
    loader = minidl.data.DataLoader(data, batch_size=4, drop_last=True)
    assert len(loader) == 2
    batches = list(loader)
    assert [len(y) for _, y in batches] == [4, 4]
    x, y = batches[0]
    assert isinstance(x, minidl.Tensor) and x.dtype == np.float32 and y.dtype == np.int64
    assert len(minidl.data.DataLoader(data, batch_size=4)) == 3
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        minidl.data.DataLoader(data, batch_size=0)


def test_prefetch_hands_on_errors():
    class Broken(minidl.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 2:
                raise KeyError("sample 2 is missing")
            return np.float32(i)

    loader = minidl.data.DataLoader(Broken(), batch_size=1, prefetch=True)
    with pytest.raises(KeyError, match="sample 2 is missing"):
        list(loader)


def test_random_split_is_a_partition_and_reproducible():
    data = minidl.data.ArrayDataset(np.arange(100))
    train, val = minidl.data.random_split(data, [80, 20], seed=1)
    together = np.concatenate([train[np.arange(80)], val[np.arange(20)]])
    assert sorted(together.tolist()) == list(range(100))
    again, _ = minidl.data.random_split(data, [0.8, 0.2], seed=1)
    np.testing.assert_array_equal(again.indices, train.indices)
    assert train.batched
    with pytest.raises(ValueError, match="sum to the dataset's length 100"):
        minidl.data.random_split(data, [50, 20])


# ---------------------------------------------------------------- transforms


def test_normalize_per_channel_and_scalar():
    batch = np.ones((2, 3, 2, 2), np.float32)
    out = transforms.Normalize([1.0, 0.5, 0.0], [1.0, 0.5, 2.0])(batch)
    np.testing.assert_allclose(out[0, :, 0, 0], [0.0, 1.0, 0.5])
    assert out.dtype == np.float32
    np.testing.assert_allclose(transforms.Normalize(0.5, 0.25)(batch)[0, 0, 0, 0], 2.0)


def test_random_crop_cuts_windows_of_the_padded_images():
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((16, 2, 6, 5)).astype(np.float32)
    crop = transforms.RandomCrop((4, 3), padding=1)
    out = crop(batch, rng=np.random.default_rng(5))
    assert out.shape == (16, 2, 4, 3)
    padded = np.pad(batch, ((0, 0), (0, 0), (1, 1), (1, 1)))
    offsets = np.random.default_rng(5)
    top, left = offsets.integers(0, 5, 16), offsets.integers(0, 5, 16)
    for n in range(16):
        np.testing.assert_array_equal(
            out[n], padded[n, :, top[n] : top[n] + 4, left[n] : left[n] + 3]
        )


def test_random_shift_keeps_the_size_and_moves_content():
    batch = np.zeros((50, 7, 7), np.float32)
    batch[:, 3, 3] = 1.0
    out = transforms.RandomShift(2)(batch, rng=np.random.default_rng(1))
    assert out.shape == (50, 7, 7)
    positions = {tuple(np.argwhere(image)[0]) for image in out}
    assert len(positions) > 5 and all(1 <= r <= 5 and 1 <= c <= 5 for r, c in positions)


def test_horizontal_flip_and_compose():
    batch = np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2)
    flipped = transforms.RandomHorizontalFlip(1.0)(batch)
    np.testing.assert_array_equal(flipped, batch[..., ::-1])
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(0.0)(batch), batch)
    pipeline = transforms.Compose(
        [transforms.RandomHorizontalFlip(1.0), transforms.Normalize(1.0, 2.0)]
    )
    np.testing.assert_allclose(pipeline(batch), (batch[..., ::-1] - 1.0) / 2.0)


@pytest.mark.parametrize(
    "transform",
    [
        transforms.Normalize([0.5, 0.2], [0.25, 2.0]),
        transforms.RandomCrop((5, 4), padding=1),
        transforms.RandomShift(2),
        transforms.RandomHorizontalFlip(0.5),
        transforms.Compose([transforms.RandomShift(1), transforms.Normalize(0.1, 0.3)]),
    ],
    ids=repr,
)
def test_calling_a_transform_leaves_its_configuration_alone(transform):
    before = copy.deepcopy(vars(transform))
    for shape in [(3, 2, 7, 6), (4, 2, 9, 9)]:  # two image sizes, as a RandomShift may see
        transform(np.ones(shape, np.float32), rng=np.random.default_rng(0))
    after = vars(transform)
    assert after.keys() == before.keys(), f"attributes changed: {before.keys()} -> {after.keys()}"
    for name, value in before.items():
        same = (
            np.array_equal(after[name], value)
            if isinstance(value, np.ndarray)
            else repr(after[name]) == repr(value)
        )
        assert same, f"{transform!r}.{name} changed from {value!r} to {after[name]!r}"


def test_loader_applies_transforms_to_inputs_only():
    data = minidl.data.ArrayDataset(np.ones((4, 1, 2, 2), np.float32), np.arange(4))
    loader = minidl.data.DataLoader(data, batch_size=4, transform=transforms.Normalize(1.0, 1.0))
    x, y = next(iter(loader))
    assert not x.data.any() and y.data.tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------- the real data sets


@_needs_data_set("mnist")
def test_real_mnist_loads_with_published_statistics():
    images, labels = minidl.data.load_mnist("train")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and set(np.unique(labels)) == set(range(10))
    pixels = images / 255.0
    assert abs(pixels.mean() - minidl.data.MNIST_MEAN) < 5e-4
    assert abs(pixels.std() - minidl.data.MNIST_STD) < 5e-4
    test_images, test_labels = minidl.data.load_mnist("test")
    assert test_images.shape == (10000, 28, 28), "expected the full official test set"
    # the official test set's count of each digit, 0 to 9
    official = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(test_labels).tolist() == official
    dataset = minidl.data.MNIST("train", normalize=True)
    x, y = dataset[np.arange(256)]
    assert x.shape == (256, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(y, labels[:256])
    assert abs(float(dataset[np.arange(60000)][0].mean())) < 1e-3


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(), reason="apt-get install dataset-fashion-mnist provides it"
)
def test_debian_fashion_mnist_loads_with_published_statistics(monkeypatch):
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    images, labels = minidl.data.load_fashion_mnist("train")
    assert images.shape == (60000, 28, 28)
    pixels = images / 255.0
    assert abs(pixels.mean() - minidl.data.FASHION_MNIST_MEAN) < 5e-4
    assert abs(pixels.std() - minidl.data.FASHION_MNIST_STD) < 5e-4
    assert labels.shape == (60000,) and np.bincount(labels).tolist() == [6000] * 10
    test_images, test_labels = minidl.data.load_fashion_mnist("test")
    assert test_images.shape == (10000, 28, 28) and test_labels.shape == (10000,)


def test_locate_can_be_told_not_to_download(isolated, server, monkeypatch):
    root, url = server
    _, _, spec, files = _serve_tiny(root, monkeypatch)
    _patch_spec(monkeypatch, spec, files, [url])
    with pytest.raises(minidl.data.DataNotFoundError, match="downloading was off"):
        datasets.locate("mnist", "train", download_missing=False)
    assert not Path(datasets.cache_dir("mnist")).exists()
    assert datasets.locate("mnist", "train") == datasets.cache_dir("mnist")
