"""The MNIST sample bundled with minidl, the examples' fallback to it, and MINIDL_DATA checks."""

import dataclasses
import hashlib
import os
import runpy
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl.data import datasets

SAMPLE = Path(datasets.SAMPLE_DIR)
FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
# the count of each digit, 0 to 9, in the first 6,000 training and first 1,000 test labels
TRAIN_COUNTS = [592, 671, 581, 608, 623, 514, 608, 651, 551, 601]
TEST_COUNTS = [85, 126, 116, 107, 110, 87, 87, 99, 89, 94]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No MINIDL_DATA, an empty home (no cache), no downloads."""
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MINIDL_OFFLINE", "1")
    monkeypatch.setattr(datasets, "_reported", set())
    if Path("/usr/share/datasets/mnist").is_dir():
        pytest.skip("/usr/share/datasets/mnist holds MNIST: it is found, offline too")
    return tmp_path


@pytest.fixture
def sample_copy(tmp_path, monkeypatch):
    """A copy of the sample that the spec points at, to damage."""
    copy = tmp_path / "sample"
    shutil.copytree(SAMPLE, copy)
    spec = dataclasses.replace(datasets.DATASETS["mnist-sample"], bundled=str(copy))
    monkeypatch.setitem(datasets.DATASETS, "mnist-sample", spec)
    return copy


def test_the_sample_is_the_documented_prefix_of_mnist():
    images, labels = datasets.load("mnist-sample", "train")
    assert images.shape == (6000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == TRAIN_COUNTS
    test_images, test_labels = datasets.load("mnist-sample", "test")
    assert test_images.shape == (1000, 28, 28)
    assert np.bincount(test_labels).tolist() == TEST_COUNTS
    # MNIST's pixel statistics, roughly: the images are digits, not noise or zeros
    assert abs(images.mean() / 255 - minidl.data.MNIST_MEAN) < 0.01
    dataset = minidl.data.MNISTSample("train", normalize=True)
    x, y = dataset[np.arange(60)]
    assert x.shape == (60, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(y, labels[:60])
    assert abs(float(dataset[np.arange(6000)][0].mean())) < 0.05
    assert dataset.classes == tuple("0123456789")


def test_the_readme_states_every_checksum_and_the_spec_matches_the_files():
    readme = (SAMPLE.parent / "README.md").read_text()
    assert "CC BY-SA 3.0" in readme and "LeCun" in readme and "first 6,000" in readme
    spec = datasets.DATASETS["mnist-sample"]
    for images, labels in spec.files.values():
        for remote in (images, labels):
            data = (SAMPLE / remote.name).read_bytes()
            assert len(data) == remote.size, remote.name
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            assert md5 == remote.md5, f"{remote.name}: MD5 {md5}, the spec says {remote.md5}"
            assert md5 in readme and hashlib.sha256(data).hexdigest() in readme, remote.name


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_a_damaged_sample_is_refused_naming_the_file(sample_copy, damage):
    path = sample_copy / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-10] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:-1]))
    else:
        path.unlink()
    error = FileNotFoundError if damage == "remove" else minidl.CorruptFileError
    with pytest.raises(error, match=r"t10k-labels-idx1-ubyte\.gz.*reinstall minidl"):
        minidl.data.MNISTSample("test")
    minidl.data.MNISTSample("train")  # the other split's files are intact


def test_the_sample_takes_no_data_dir_and_cannot_be_downloaded(tmp_path):
    with pytest.raises(ValueError, match=r"ships inside minidl.*data_dir does not apply"):
        datasets.locate("mnist-sample", "train", data_dir=tmp_path)
    with pytest.raises(ValueError, match="nothing to download"):
        datasets.download("mnist-sample", "train")
    with pytest.raises(ValueError, match="split"):
        minidl.data.MNISTSample("validation")


def test_mnist_never_falls_back_to_the_sample(offline):
    with pytest.raises(minidl.data.DataNotFoundError, match="MNIST \\(train\\) was not found"):
        minidl.data.MNIST("train")
    with pytest.raises(minidl.data.DataNotFoundError):
        minidl.data.load_mnist("test")
    with pytest.raises(minidl.data.DataNotFoundError):
        datasets.choose_dataset("auto")  # the fallback is asked for, never assumed


def test_auto_falls_back_to_the_sample_saying_so_in_one_line(offline, capsys):
    name = datasets.choose_dataset("auto", sample_fallback=True, data_dir_option="--data-dir")
    assert name == "mnist-sample"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert "bundled" in lines[0] and "downloading is off" in lines[0]
    assert "--data-dir DIR" in lines[0] and "MINIDL_DATA" in lines[0]
    assert len(datasets.open_dataset(name, "test")) == 1000


def test_a_named_or_given_data_set_does_not_fall_back(offline, tmp_path):
    with pytest.raises(minidl.data.DataNotFoundError) as error:
        datasets.choose_dataset("mnist", sample_fallback=True, data_dir_option="--data-dir")
    assert "pass --data-dir DIR" in str(error.value)
    given = tmp_path / "mine"
    with pytest.raises(minidl.data.DataNotFoundError) as error:
        datasets.choose_dataset("auto", given, sample_fallback=True, data_dir_option="--data-dir")
    assert str(given) in str(error.value)  # the folder asked for is not silently replaced


def test_minidl_data_that_names_no_folder_is_a_warning(offline, tmp_path, monkeypatch):
    missing = tmp_path / "missing"
    monkeypatch.setenv("MINIDL_DATA", str(missing))
    with pytest.warns(UserWarning, match=f"MINIDL_DATA='{missing}'.*does not exist"):
        places = datasets.candidate_dirs("mnist")
    assert str(missing / "mnist") in places  # still listed among the places searched
    a_file = tmp_path / "file"
    a_file.write_text("")
    monkeypatch.setenv("MINIDL_DATA", str(a_file))
    with pytest.warns(UserWarning, match="MINIDL_DATA=.*is not a folder"):
        datasets.candidate_dirs("mnist")
    monkeypatch.setenv("MINIDL_DATA", "")  # empty: unset, as in `MINIDL_DATA= command`
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert datasets.candidate_dirs("mnist")[0] == datasets.cache_dir("mnist")


def _official_mnist():
    root = os.environ.get("MINIDL_DATA")
    if root and (Path(root) / "mnist").is_dir():
        return Path(root) / "mnist"
    return None


@pytest.mark.skipif(_official_mnist() is None, reason="needs MINIDL_DATA holding mnist/")
def test_make_sample_recreates_the_bundled_files_from_the_official_ones(tmp_path, capsys):
    script = SAMPLE.parent / "make_sample.py"
    runpy.run_path(str(script), run_name="not_main")["main"](
        [
            str(_official_mnist()),
            "--out",
            str(tmp_path),
        ]
    )
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name
    assert capsys.readouterr().out.count("md5") == 4


def test_make_sample_refuses_files_that_are_not_mnist(tmp_path):
    source = tmp_path / "fake"
    source.mkdir()
    minidl.data.write_idx(source / "train-images-idx3-ubyte.gz", np.zeros((10, 28, 28), np.uint8))
    main = runpy.run_path(str(SAMPLE.parent / "make_sample.py"), run_name="not_main")["main"]
    with pytest.raises(SystemExit, match="not the official MNIST file"):
        main([str(source), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out" / "train-images-idx3-ubyte.gz").exists()


def test_the_fallback_checks_the_sample_before_announcing_it(offline, sample_copy, capsys):
    path = sample_copy / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(minidl.CorruptFileError, match=r"train-images-idx3-ubyte\.gz is damaged"):
        datasets.choose_dataset("auto", sample_fallback=True)
    assert capsys.readouterr().out == ""  # no "training on the sample" line for a bad sample
