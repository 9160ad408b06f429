"""``torch.utils.data``'s names, from :mod:`minidl.data`: the same objects under torch's path.

``from torch.utils.data import DataLoader, TensorDataset`` becomes
``from minidl.utils.data import DataLoader, TensorDataset``.

>>> from minidl.utils.data import DataLoader, TensorDataset
>>> data = TensorDataset(minidl.zeros(6, 2), minidl.arange(6))
>>> [tuple(t.shape for t in batch) for batch in DataLoader(data, batch_size=4)]
[((4, 2), (4,)), ((2, 2), (2,))]
"""

from __future__ import annotations

from ..data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    Subset,
    TensorDataset,
    random_split,
)

__all__ = [
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "Subset",
    "TensorDataset",
    "random_split",
]
