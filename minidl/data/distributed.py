"""DistributedSampler: each rank's share of a dataset's indices (torch's semantics).

>>> sampler = minidl.data.DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)
>>> list(sampler)
[1, 4, 7, 0]
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import _checks
from .. import distributed as _distributed


class DistributedSampler:
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` reads, each epoch.

    As ``torch.utils.data.distributed.DistributedSampler``: the indices
    0..len(dataset)-1, shuffled with the seed ``seed + epoch`` (the same
    permutation on every rank; :meth:`set_epoch` before each epoch gives a new
    one), are padded by repeating the first ones until they divide evenly
    (``drop_last=False``) or cut to a multiple of ``num_replicas``
    (``drop_last=True``); rank r takes every ``num_replicas``-th index from r.
    Every rank gets ``len(sampler)`` indices, so all ranks run the same number of
    steps. The permutation comes from numpy's generator (torch's own
    ``randperm`` order cannot be reproduced without torch): the same seed gives the
    same order across minidl runs, not torch's order. ``num_replicas`` and
    ``rank`` default to the process group's.

    >>> sampler = minidl.data.DistributedSampler(range(5), num_replicas=2, rank=0, shuffle=False)
    >>> list(sampler), len(sampler)
    ([0, 2, 4], 3)
    >>> loader = minidl.data.DataLoader(  # doctest: +SKIP
    ...     dataset, batch_size=64, sampler=minidl.data.DistributedSampler(dataset))
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None:
            num_replicas = _distributed.get_world_size()
        if rank is None:
            rank = _distributed.get_rank()
        num_replicas = _checks.positive_int(num_replicas, "DistributedSampler", "num_replicas")
        if not _checks.is_int(rank) or not 0 <= rank < num_replicas:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        size = len(dataset)
        if self.drop_last and size % self.num_replicas != 0:
            self.num_samples = math.ceil((size - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(size / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        size = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(size)
        else:
            indices = np.arange(size)
        if not self.drop_last:
            padding = self.total_size - size
            if padding > 0:
                repeats = math.ceil(padding / size)
                indices = np.concatenate([indices, np.tile(indices, repeats)[:padding]])
        else:
            indices = indices[: self.total_size]
        assert len(indices) == self.total_size
        mine = indices[self.rank : self.total_size : self.num_replicas]
        return iter(mine.tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` in the shuffle's seed (``seed + epoch``); call it before each epoch.

        >>> sampler = minidl.data.DistributedSampler(range(4), 2, 0, seed=1)
        >>> sampler.set_epoch(3)
        """
        self.epoch = int(epoch)
