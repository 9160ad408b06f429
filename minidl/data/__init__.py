"""``minidl.data``: IDX files, MNIST-style data sets, datasets, the DataLoader, batch transforms.

>>> loader = minidl.data.DataLoader(
...     minidl.data.ArrayDataset(np.zeros((6, 1, 28, 28), np.float32), np.arange(6)),
...     batch_size=4)
>>> [x.shape for x, y in loader]
[(4, 1, 28, 28), (2, 1, 28, 28)]
"""

from __future__ import annotations

from . import datasets, transforms
from .datasets import (
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    KMNIST,
    KMNIST_MEAN,
    KMNIST_STD,
    MNIST,
    MNIST_MEAN,
    MNIST_STD,
    DataNotFoundError,
    FashionMNIST,
    MNISTSample,
    load_fashion_mnist,
    load_kmnist,
    load_mnist,
)
from .distributed import DistributedSampler
from .idx import read_idx, write_idx
from .loader import ArrayDataset, DataLoader, Dataset, Subset, TensorDataset, random_split

__all__ = [
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "KMNIST",
    "KMNIST_MEAN",
    "KMNIST_STD",
    "MNIST",
    "MNIST_MEAN",
    "MNIST_STD",
    "ArrayDataset",
    "DataLoader",
    "DataNotFoundError",
    "Dataset",
    "DistributedSampler",
    "FashionMNIST",
    "MNISTSample",
    "Subset",
    "TensorDataset",
    "datasets",
    "load_fashion_mnist",
    "load_kmnist",
    "load_mnist",
    "random_split",
    "read_idx",
    "transforms",
    "write_idx",
]
