"""MNIST-style data sets (MNIST, Fashion-MNIST, Kuzushiji-MNIST): found locally or downloaded.

Where the files are looked for, in order (the first folder holding both files
of the split wins, and the place used is reported once per process):

1. the ``data_dir`` argument;
2. ``$MINIDL_DATA/<name>/``;
3. ``~/.cache/minidl/<name>/``;
4. ``/usr/share/datasets/<name>/`` (where Debian's ``dataset-fashion-mnist`` installs);
5. a download from the data set's mirrors into ``~/.cache/minidl/<name>/``, with a
   progress bar, checked against the published size (where one is published) and
   MD5 checksum, written to a temporary file and renamed only once verified.

``MINIDL_OFFLINE=1`` turns step 5 off. When nothing is found, the error lists every
place looked and the ways to provide the data. A ``MINIDL_DATA`` that names no folder is
warned about (``UserWarning``); an empty one counts as unset.

A sample of MNIST ships inside the package (``minidl/data/sample/``: the first 6,000
training and the first 1,000 test images of the official files, with their README):
``MNISTSample`` or ``load("mnist-sample")``. It is never searched for or substituted
silently: ``MNIST()`` with nothing found raises :class:`DataNotFoundError`, and only
``choose_dataset("auto", sample_fallback=True)`` (what the examples call) falls back to
it, saying so.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..io import CorruptFileError
from .idx import read_idx
from .loader import ArrayDataset

# Published pixel statistics on [0, 1] (training sets).
MNIST_MEAN = 0.1307
"""Mean pixel of MNIST's 60,000 training images scaled to [0, 1] (for ``Normalize``)."""
MNIST_STD = 0.3081
"""Standard deviation of MNIST's training pixels scaled to [0, 1]."""
FASHION_MNIST_MEAN = 0.2860
"""Mean pixel of Fashion-MNIST's training images scaled to [0, 1]."""
FASHION_MNIST_STD = 0.3530
"""Standard deviation of Fashion-MNIST's training pixels scaled to [0, 1]."""
# Kuzushiji-MNIST's authors publish none; these are the values in common use.
KMNIST_MEAN = 0.1918
"""Mean pixel of Kuzushiji-MNIST's training images scaled to [0, 1] (the value in common use)."""
KMNIST_STD = 0.3483
"""Standard deviation of Kuzushiji-MNIST's training pixels (the value in common use)."""


@dataclass
class RemoteFile:
    """One file of a data set: its name, MD5 checksum and size in bytes (None: unpublished)."""

    name: str
    md5: str
    size: int | None = None


@dataclass
class DatasetSpec:
    """Where a data set comes from and how to check it."""

    name: str
    title: str
    mirrors: list
    files: dict  # split -> (images RemoteFile, labels RemoteFile)
    mean: float
    std: float
    classes: tuple = field(default_factory=tuple)
    debian_package: str | None = None
    # a folder inside the package holding the files: never searched for nor downloaded,
    # and every file checked against its MD5 and size before it is read
    bundled: str | None = None


SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample", "mnist")


DATASETS = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        mirrors=[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ],
        files={
            "train": (
                RemoteFile(
                    "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9912422
                ),
                RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28881),
            ),
            "test": (
                RemoteFile(
                    "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1648877
                ),
                RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4542),
            ),
        },
        mean=MNIST_MEAN,
        std=MNIST_STD,
        classes=tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        mirrors=[
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        ],
        files={
            "train": (
                RemoteFile(
                    "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26421880
                ),
                RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", 29515),
            ),
            "test": (
                RemoteFile(
                    "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", 4422102
                ),
                RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", 5148),
            ),
        },
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        debian_package="dataset-fashion-mnist",
    ),
    "kmnist": DatasetSpec(
        name="kmnist",
        title="Kuzushiji-MNIST",
        mirrors=[
            "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
            "https://storage.googleapis.com/kuzushiji-mnist/",
        ],
        files={
            "train": (
                RemoteFile("train-images-idx3-ubyte.gz", "bdb82020997e1d708af4cf47b453dcf7"),
                RemoteFile("train-labels-idx1-ubyte.gz", "e144d726b3acfaa3e44228e80efcd344"),
            ),
            "test": (
                RemoteFile("t10k-images-idx3-ubyte.gz", "5c965bf0a639b31b8f53240b1b52f4d7"),
                RemoteFile("t10k-labels-idx1-ubyte.gz", "7320c461ea6c1c855c0b718fb2a4b134"),
            ),
        },
        mean=KMNIST_MEAN,
        std=KMNIST_STD,
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    ),
    # cut by minidl/data/sample/make_sample.py; provenance and licence in its README.md
    "mnist-sample": DatasetSpec(
        name="mnist-sample",
        title="MNIST sample (bundled)",
        mirrors=[],
        files={
            "train": (
                RemoteFile(
                    "train-images-idx3-ubyte.gz", "1ac03de7ecb10d80269b8abd182afbd4", 969511
                ),
                RemoteFile("train-labels-idx1-ubyte.gz", "59fdc8a419aa8ad3df0ff5c74064416a", 3027),
            ),
            "test": (
                RemoteFile("t10k-images-idx3-ubyte.gz", "c3379f275b566375ab4528689c1795c4", 155853),
                RemoteFile("t10k-labels-idx1-ubyte.gz", "1d88dbe1fbee9022616057ede4463181", 526),
            ),
        },
        mean=MNIST_MEAN,
        std=MNIST_STD,
        classes=tuple(str(d) for d in range(10)),
        bundled=SAMPLE_DIR,
    ),
}

_reported: set[tuple[str, str, str]] = set()


class DataNotFoundError(FileNotFoundError):
    """No copy of the data set was found and none could be downloaded.

    Its message lists the places searched and the ways to provide the data; ``places``
    holds the folders, ``download_error`` why the download failed (None: it was off).
    ``data_dir_option`` is how the message names the ``data_dir`` argument: a script
    sets it to its own option (``"--data-dir"``) before printing the error.

    >>> try:
    ...     minidl.data.datasets.locate("kmnist", data_dir="/nowhere", download_missing=False)
    ... except minidl.data.DataNotFoundError as error:
    ...     error.data_dir_option = "--data-dir"
    ...     print(error.places[0], "--data-dir" in str(error))
    /nowhere True
    """

    def __init__(
        self,
        spec: DatasetSpec,
        split: str,
        places: list[str],
        download_error: BaseException | None,
    ) -> None:
        super().__init__(f"{spec.title} ({split}) was not found")
        self.spec, self.split, self.places = spec, split, places
        self.download_error = download_error
        self.data_dir_option = "data_dir="

    def __str__(self) -> str:
        return _not_found_message(
            self.spec, self.split, self.places, self.download_error, self.data_dir_option
        )


def cache_dir(name: str) -> str:
    """``~/.cache/minidl/<name>``: where downloads go.

    >>> minidl.data.datasets.cache_dir("mnist").endswith(os.path.join("minidl", "mnist"))
    True
    """
    return os.path.join(os.path.expanduser("~"), ".cache", "minidl", name)


def _data_root() -> str | None:
    """``$MINIDL_DATA``, or None when unset or empty; a UserWarning when it names no folder."""
    root = os.environ.get("MINIDL_DATA", "")
    if root and not os.path.isdir(root):
        what = "is not a folder" if os.path.exists(root) else "does not exist"
        warnings.warn(
            f"MINIDL_DATA={root!r} holds no data sets: that path {what} "
            "(set MINIDL_DATA to a folder holding mnist/, fashion-mnist/ ..., or unset it)",
            UserWarning,
            stacklevel=3,
        )
    return root or None


def candidate_dirs(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The folders searched for data set ``name``, in order.

    >>> minidl.data.datasets.candidate_dirs("mnist", data_dir="/data")[0]
    '/data'
    """
    places = []
    if data_dir is not None:
        places.append(os.fspath(data_dir))
    root = _data_root()
    if root is not None:
        places.append(os.path.join(root, name))
    places.append(cache_dir(name))
    places.append(os.path.join("/usr/share/datasets", name))
    return places


def _present(directory, remote):
    """The path of ``remote`` in ``directory`` (gzipped or not), or None."""
    for candidate in (
        remote.name,
        remote.name[: -len(".gz")] if remote.name.endswith(".gz") else None,
    ):
        if candidate and os.path.isfile(os.path.join(directory, candidate)):
            return os.path.join(directory, candidate)
    return None


def _spec(name):
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def _md5(path):
    digest = hashlib.md5(usedforsecurity=False)  # a published checksum, not a security check
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _mismatch(path, remote):
    """How ``path`` differs from ``remote``'s size and MD5 checksum, or None when it matches."""
    size = os.path.getsize(path)
    if remote.size is not None and size != remote.size:
        return f"has {size} bytes; the published size is {remote.size}"
    checksum = _md5(path)
    if checksum != remote.md5:
        return f"has MD5 {checksum}; the published checksum is {remote.md5}"
    return None


def _fetch(url, remote, target_dir, timeout, progress):
    """Download ``url`` into ``target_dir``/``remote.name``, verified; raises on any problem."""
    os.makedirs(target_dir, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=target_dir)
    try:
        with (
            os.fdopen(descriptor, "wb") as handle,
            urllib.request.urlopen(url, timeout=timeout) as response,
        ):
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else remote.size
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="B", unit_scale=True, desc=remote.name, leave=False)
            try:
                while True:
                    chunk = response.read(1 << 16)
                    if not chunk:
                        break
                    handle.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
            handle.flush()
            os.fsync(handle.fileno())
        problem = _mismatch(temporary, remote)
        if problem is not None:
            raise ValueError(f"{url} {problem}")
        final = os.path.join(target_dir, remote.name)
        os.replace(temporary, final)
        return final
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def download(name, split="train", mirrors=None, timeout=30.0, progress=True):
    """Download one split of data set ``name`` into ``~/.cache/minidl/<name>/``, verified.

    Mirrors are tried in order; a file is kept only once its size and checksum
    match. Returns the folder. Raises OSError listing every failed attempt.
    """
    spec = _spec(name)
    if spec.bundled:
        raise ValueError(f"download: {spec.title} ships with minidl; there is nothing to download")
    target_dir = cache_dir(name)
    failures = []
    for remote in spec.files[split]:
        if _present(target_dir, remote):
            continue
        for mirror in mirrors or spec.mirrors:
            url = mirror + remote.name
            try:
                _fetch(url, remote, target_dir, timeout, progress)
                break
            except (OSError, ValueError, urllib.error.URLError) as error:
                failures.append(f"{url}: {error}")
        else:
            raise OSError("download failed:\n    " + "\n    ".join(failures))
    return target_dir


def _not_found_message(spec, split, places, download_error, data_dir_option="data_dir="):
    files = " and ".join(remote.name for remote in spec.files[split])
    lines = [
        f"{spec.title} ({split}) was not found. Looked for {files} in:",
        *(f"    {place}" for place in places),
    ]
    if download_error is None:
        lines.append("and did not download it (downloading was off: MINIDL_OFFLINE or the caller).")
    else:
        lines.append(f"and the download failed: {download_error}")
    option = data_dir_option if data_dir_option.endswith("=") else data_dir_option + " "
    ways = [
        f"pass {option}DIR, a folder that holds {files}",
        f"set MINIDL_DATA to a folder with a {spec.name}/ subfolder holding the files",
    ]
    if spec.debian_package:
        ways.append(
            f"on Debian or Ubuntu: sudo apt-get install {spec.debian_package} "
            f"(installs /usr/share/datasets/{spec.name}/)"
        )
    if download_error is None:
        ways.append("let minidl download it: go online and unset MINIDL_OFFLINE")
    ways.append(f"download the files by hand from {spec.mirrors[0]} into {cache_dir(spec.name)}")
    lines.append("Ways to provide it:")
    lines += [f"  {number}. {way}" for number, way in enumerate(ways, 1)]
    return "\n".join(lines)


def _check_split(spec, split):
    if split not in spec.files:
        raise ValueError(f"{spec.title}: split must be 'train' or 'test', got {split!r}")


def _bundled(spec, split, data_dir):
    """The package folder of a bundled data set, each file of ``split`` checked first."""
    if data_dir is not None:
        raise ValueError(
            f"{spec.title} ships inside minidl and is read from there; data_dir does not apply "
            f"(got {os.fspath(data_dir)!r})"
        )
    reinstall = (
        "reinstall minidl (python -m pip install --force-reinstall minidl; in a clone: "
        "git checkout -- minidl/data/sample)"
    )
    for remote in spec.files[split]:
        path = os.path.join(spec.bundled, remote.name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{spec.title}: {path} is missing; {reinstall}")
        problem = _mismatch(path, remote)
        if problem is not None:
            raise CorruptFileError(f"{spec.title}: {path} is damaged: it {problem}; {reinstall}")
    return spec.bundled


def locate(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    download_missing: bool = True,
) -> str:
    """The folder holding ``split`` of data set ``name``, downloading it if needed.

    With ``download_missing=False`` (or ``MINIDL_OFFLINE=1``) only local copies count.
    The bundled ``"mnist-sample"`` is never searched for: its folder in the package is
    returned once every file matches its checksum (``CorruptFileError`` otherwise).
    Raises :class:`DataNotFoundError` listing the places searched.

    >>> minidl.data.datasets.locate("mnist-sample", "test").endswith("mnist")
    True
    """
    spec = _spec(name)
    _check_split(spec, split)
    if spec.bundled:
        place = _bundled(spec, split, data_dir)
        _report(spec, split, place)
        return place
    places = candidate_dirs(name, data_dir)
    for place in places:
        if all(_present(place, remote) for remote in spec.files[split]):
            _report(spec, split, place)
            return place
    download_error = None
    if download_missing and not _offline():
        try:
            place = download(name, split)
            _report(spec, split, place)
            return place
        except OSError as error:
            download_error = error
    raise DataNotFoundError(spec, split, places, download_error)


def _offline():
    return os.environ.get("MINIDL_OFFLINE", "") not in ("", "0")


def _report(spec, split, place):
    key = (spec.name, split, place)
    if key not in _reported:
        _reported.add(key)
        print(f"minidl: {spec.title} ({split}) from {place}", file=sys.stderr)


def load(
    name: str, split: str = "train", data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of data set ``name``: uint8 (N, 28, 28) and int64 (N,).

    ``name`` is a key of ``DATASETS``: ``"mnist"``, ``"fashion-mnist"``, ``"kmnist"``,
    or ``"mnist-sample"`` (bundled, N = 6,000 for ``"train"``, 1,000 for ``"test"``).

    >>> images, labels = minidl.data.datasets.load("mnist-sample", "test")
    >>> images.shape, images.dtype, labels[:5]
    ((1000, 28, 28), dtype('uint8'), array([7, 2, 1, 0, 4]))
    """
    spec = _spec(name)
    place = locate(name, split, data_dir)
    images_file, labels_file = (_present(place, remote) for remote in spec.files[split])
    images = read_idx(images_file)
    labels = read_idx(labels_file).astype(np.int64)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{images_file}: expected uint8 images of shape (N, H, W), got "
            f"{images.dtype} {images.shape}"
        )
    if labels.shape != (len(images),):
        raise ValueError(
            f"{labels_file}: expected {len(images)} labels for {len(images)} images, got "
            f"shape {labels.shape}"
        )
    return images, labels


def load_mnist(
    split: str = "train", data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits: uint8 images (N, 28, 28) and int64 labels (N,); see the module docstring.

    The full data set only: with nothing found it raises :class:`DataNotFoundError`
    (the bundled sample is ``load("mnist-sample")``).

    >>> images, labels = minidl.data.load_mnist("train")  # doctest: +SKIP
    """
    return load("mnist", split, data_dir)


def load_fashion_mnist(
    split: str = "train", data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST: uint8 images (N, 28, 28) and int64 labels (N,).

    >>> images, labels = minidl.data.load_fashion_mnist("test")  # doctest: +SKIP
    """
    return load("fashion-mnist", split, data_dir)


def load_kmnist(
    split: str = "train", data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Kuzushiji-MNIST: uint8 images (N, 28, 28) and int64 labels (N,).

    >>> images, labels = minidl.data.load_kmnist("test")  # doctest: +SKIP
    """
    return load("kmnist", split, data_dir)


class MNISTLike(ArrayDataset):
    """A MNIST-style data set as (N, 1, 28, 28) float32 images and int64 labels.

    Pixels are scaled to [0, 1]; with ``normalize=True`` they are standardized
    with the data set's published mean and std. Indexing with an index array
    returns whole batches (what the DataLoader does). ``images`` and ``labels``
    keep the raw uint8 and int64 arrays.
    """

    name: str | None = None

    def __init__(
        self,
        split: str = "train",
        data_dir: str | os.PathLike[str] | None = None,
        normalize: bool = False,
    ) -> None:
        assert self.name is not None, "a subclass names its data set"
        images, labels = load(self.name, split, data_dir)
        super().__init__(images, labels)
        self.images, self.labels = images, labels
        self.split = split
        self.normalize = normalize
        spec = DATASETS[self.name]
        self.mean, self.std, self.classes = spec.mean, spec.std, spec.classes

    def __getitem__(self, index):
        images = self.images[index].astype(np.float32) / np.float32(255.0)
        if self.normalize:
            images = (images - np.float32(self.mean)) / np.float32(self.std)
        return images[..., None, :, :], self.labels[index]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, samples={len(self)}, "
            f"normalize={self.normalize})"
        )


class MNIST(MNISTLike):
    """MNIST handwritten digits (LeCun et al.); 10 classes.

    The full data set, found or downloaded; with nothing found it raises
    :class:`DataNotFoundError` (it never falls back to :class:`MNISTSample`).

    >>> train = minidl.data.MNIST("train", normalize=True)  # doctest: +SKIP
    """

    name = "mnist"


class MNISTSample(MNISTLike):
    """The MNIST sample bundled with minidl: 6,000 training and 1,000 test images.

    The first 6,000 training and the first 1,000 test images of the official MNIST
    files, with their labels, inside the package (``minidl/data/sample/``: its README
    gives the licence, the provenance and the checksums); always there, offline too.
    Each file is checked against its MD5 checksum before it is read. Images are
    (N, 1, 28, 28) float32 in [0, 1], or standardized with MNIST's statistics with
    ``normalize=True``; labels (N,) int64. For the full data set use :class:`MNIST`.

    >>> test = minidl.data.MNISTSample("test", normalize=True)
    >>> len(test), test[np.arange(2)][0].shape
    (1000, (2, 1, 28, 28))
    """

    name = "mnist-sample"

    def __init__(self, split: str = "train", normalize: bool = False) -> None:
        super().__init__(split, None, normalize)


class FashionMNIST(MNISTLike):
    """Fashion-MNIST (Xiao et al., Zalando): 10 classes of clothing.

    >>> test = minidl.data.FashionMNIST("test")  # doctest: +SKIP
    """

    name = "fashion-mnist"


class KMNIST(MNISTLike):
    """Kuzushiji-MNIST (Clanuwat et al.): 10 classes of cursive Japanese characters.

    >>> train = minidl.data.KMNIST("train")  # doctest: +SKIP
    """

    name = "kmnist"


# the dataset class of each name in DATASETS
CLASSES: dict[str, type[MNISTLike]] = {
    "mnist": MNIST,
    "fashion-mnist": FashionMNIST,
    "kmnist": KMNIST,
    "mnist-sample": MNISTSample,
}


def open_dataset(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    normalize: bool = False,
) -> MNISTLike:
    """The dataset object of data set ``name`` (a key of ``DATASETS``), as the classes make it.

    >>> minidl.data.datasets.open_dataset("mnist-sample", "test")
    MNISTSample(split='test', samples=1000, normalize=False)
    """
    if name == "mnist-sample":
        _bundled(DATASETS[name], split, data_dir)  # refuses a data_dir, as locate does
        return MNISTSample(split, normalize=normalize)
    return CLASSES[_spec(name).name](split, data_dir, normalize=normalize)


def choose_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    sample_fallback: bool = False,
    data_dir_option: str = "data_dir=",
) -> str:
    """The data set to train on: ``name`` itself, checked to be there, or one for ``"auto"``.

    A named data set is located (downloaded where allowed) for both splits, so that a
    missing one fails here, before any work. ``"auto"`` is MNIST where it is found or
    can be downloaded; otherwise, with ``sample_fallback=True`` and no ``data_dir``,
    the bundled ``"mnist-sample"`` (its files checked: ``CorruptFileError`` when
    damaged), saying so in one line on standard output, with how to get the full set.
    Otherwise the :class:`DataNotFoundError` of the data set asked for, which lists the
    places searched and names the ``data_dir`` argument as ``data_dir_option`` (a
    script passes its own option, ``"--data-dir"``).

    >>> minidl.data.datasets.choose_dataset("mnist-sample")
    'mnist-sample'
    """
    asked = "mnist" if name == "auto" else name
    _spec(asked)
    try:
        for split in ("train", "test"):
            locate(asked, split, data_dir)
        return asked
    except DataNotFoundError as error:
        if name != "auto" or not sample_fallback or data_dir is not None:
            error.data_dir_option = data_dir_option
            raise
        for split in ("train", "test"):  # a damaged sample fails here, before any work
            locate("mnist-sample", split)
        reason = "downloading is off" if error.download_error is None else "the download failed"
        option = data_dir_option if data_dir_option.endswith("=") else data_dir_option + " "
        print(
            f"MNIST is not on this machine and {reason}: training on the MNIST sample bundled "
            f"with minidl (6,000 training, 1,000 test images). For the full set pass "
            f"{option}DIR, set MINIDL_DATA, or go online to let minidl download it."
        )
        return "mnist-sample"
