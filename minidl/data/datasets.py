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
place looked and the ways to provide the data.
"""

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np

from .idx import read_idx
from .loader import ArrayDataset

# Published pixel statistics on [0, 1] (training sets).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
# Kuzushiji-MNIST's authors publish none; these are the values in common use.
KMNIST_MEAN, KMNIST_STD = 0.1918, 0.3483


@dataclass
class RemoteFile:
    """One file of a data set: its name, MD5 checksum and size in bytes (None: unpublished)."""

    name: str
    md5: str
    size: "int | None" = None


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
    debian_package: "str | None" = None


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
}

_reported = set()


class DataNotFoundError(FileNotFoundError):
    """No copy of the data set was found and none could be downloaded."""


def cache_dir(name):
    """``~/.cache/minidl/<name>``: where downloads go."""
    return os.path.join(os.path.expanduser("~"), ".cache", "minidl", name)


def candidate_dirs(name, data_dir=None):
    """The folders searched for data set ``name``, in order."""
    places = []
    if data_dir is not None:
        places.append(os.fspath(data_dir))
    if os.environ.get("MINIDL_DATA"):
        places.append(os.path.join(os.environ["MINIDL_DATA"], name))
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
        size = os.path.getsize(temporary)
        if remote.size is not None and size != remote.size:
            raise ValueError(f"{url} gave {size} bytes; the published size is {remote.size}")
        checksum = _md5(temporary)
        if checksum != remote.md5:
            raise ValueError(f"{url} has MD5 {checksum}; the published checksum is {remote.md5}")
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


def _not_found_message(spec, split, places, download_error):
    files = " and ".join(remote.name for remote in spec.files[split])
    lines = [
        f"{spec.title} ({split}) was not found. Looked for {files} in:",
        *(f"    {place}" for place in places),
    ]
    if download_error is None:
        lines.append("and did not download it (downloading was off: MINIDL_OFFLINE or the caller).")
    else:
        lines.append(f"and the download failed: {download_error}")
    lines.append("Three ways to provide it:")
    if spec.debian_package:
        lines.append(
            f"  1. on Debian or Ubuntu: sudo apt-get install {spec.debian_package} "
            f"(installs /usr/share/datasets/{spec.name}/)"
        )
    else:
        lines.append(f"  1. pass data_dir= a folder that holds {files}")
    lines.append(
        f"  2. set MINIDL_DATA to a folder with a {spec.name}/ subfolder holding the files"
    )
    lines.append(
        f"  3. download the files by hand from {spec.mirrors[0]} into {cache_dir(spec.name)}"
    )
    return "\n".join(lines)


def locate(name, split="train", data_dir=None, download_missing=True):
    """The folder holding ``split`` of data set ``name``, downloading it if needed.

    With ``download_missing=False`` (or ``MINIDL_OFFLINE=1``) only local copies count.

    >>> minidl.data.datasets.candidate_dirs("mnist", data_dir="/data")[0]
    '/data'
    """
    spec = _spec(name)
    if split not in spec.files:
        raise ValueError(f"{spec.title}: split must be 'train' or 'test', got {split!r}")
    places = candidate_dirs(name, data_dir)
    for place in places:
        if all(_present(place, remote) for remote in spec.files[split]):
            _report(spec, split, place)
            return place
    download_error = None
    offline = os.environ.get("MINIDL_OFFLINE", "") not in ("", "0")
    if download_missing and not offline:
        try:
            place = download(name, split)
            _report(spec, split, place)
            return place
        except OSError as error:
            download_error = error
    raise DataNotFoundError(_not_found_message(spec, split, places, download_error))


def _report(spec, split, place):
    key = (spec.name, split, place)
    if key not in _reported:
        _reported.add(key)
        print(f"minidl: {spec.title} ({split}) from {place}", file=sys.stderr)


def load(name, split="train", data_dir=None):
    """``(images, labels)`` of data set ``name``: uint8 (N, 28, 28) and int64 (N,).

    >>> images, labels = minidl.data.load_mnist("train")  # doctest: +SKIP
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


def load_mnist(split="train", data_dir=None):
    """MNIST digits: uint8 images (N, 28, 28) and int64 labels (N,); see the module docstring."""
    return load("mnist", split, data_dir)


def load_fashion_mnist(split="train", data_dir=None):
    """Fashion-MNIST: uint8 images (N, 28, 28) and int64 labels (N,)."""
    return load("fashion-mnist", split, data_dir)


def load_kmnist(split="train", data_dir=None):
    """Kuzushiji-MNIST: uint8 images (N, 28, 28) and int64 labels (N,)."""
    return load("kmnist", split, data_dir)


class MNISTLike(ArrayDataset):
    """A MNIST-style data set as (N, 1, 28, 28) float32 images and int64 labels.

    Pixels are scaled to [0, 1]; with ``normalize=True`` they are standardized
    with the data set's published mean and std. Indexing with an index array
    returns whole batches (what the DataLoader does). ``images`` and ``labels``
    keep the raw uint8 and int64 arrays.
    """

    name = None

    def __init__(self, split="train", data_dir=None, normalize=False):
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

    def __repr__(self):
        return (
            f"{type(self).__name__}(split={self.split!r}, samples={len(self)}, "
            f"normalize={self.normalize})"
        )


class MNIST(MNISTLike):
    """MNIST handwritten digits (LeCun et al.); 10 classes.

    >>> train = minidl.data.MNIST("train", normalize=True)  # doctest: +SKIP
    """

    name = "mnist"


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


def choose_dataset(name, data_dir=None):
    """The data set to train on: ``name`` itself, or for ``"auto"`` MNIST where it can be had.

    ``"auto"`` is MNIST when it is found (or downloaded, where that is allowed);
    otherwise a Fashion-MNIST that is already on the machine, saying so; otherwise
    MNIST's :class:`DataNotFoundError`, which lists the places searched.

    >>> minidl.data.datasets.choose_dataset("fashion-mnist")
    'fashion-mnist'
    """
    if name != "auto":
        return name
    try:
        locate("mnist", "train", data_dir)
        locate("mnist", "test", data_dir)
        return "mnist"
    except DataNotFoundError as mnist_error:
        try:  # Fashion-MNIST only where it already is
            locate("fashion-mnist", "train", data_dir, download_missing=False)
            locate("fashion-mnist", "test", data_dir, download_missing=False)
        except DataNotFoundError:
            raise mnist_error from None
        print("MNIST is not available here; using Fashion-MNIST, found locally.")
        return "fashion-mnist"
