"""Datasets and the DataLoader that batches them.

A dataset is anything with ``__len__`` and ``__getitem__``. Datasets whose
``__getitem__`` also accepts an array of indices and returns whole batches
(``ArrayDataset``, the MNIST-style datasets, ``Subset`` of those) set
``batched = True``: the DataLoader then gathers each batch with one fancy-index
operation instead of a Python loop over samples.
"""

from __future__ import annotations

import copy
import os
import queue
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import random as _random
from ..tensor import Tensor

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


class Dataset:
    """Base class of datasets: ``__len__`` and ``__getitem__(index)`` -> a sample.

    >>> class Squares(minidl.data.Dataset):
    ...     def __len__(self):
    ...         return 10
    ...     def __getitem__(self, i):
    ...         return np.float32(i), i * i
    >>> len(Squares())
    10
    """

    batched = False

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError


def _as_array(value):
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


class ArrayDataset(Dataset):
    """Samples from arrays of equal length: ``dataset[i]`` is ``(x[i], y[i])``.

    Indexing with an array of indices returns whole batches at once.

    >>> data = minidl.data.ArrayDataset(np.zeros((5, 3)), np.arange(5))
    >>> x, y = data[np.array([0, 4])]
    >>> x.shape, y
    ((2, 3), array([0, 4]))
    """

    batched = True

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError(f"{type(self).__name__}: give at least one array")
        self.arrays = tuple(_as_array(a) for a in arrays)
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            raise ValueError(
                f"{type(self).__name__}: arrays must have the same length, got "
                + ", ".join(str(len(a)) for a in self.arrays)
            )

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> Any:
        items = tuple(a[index] for a in self.arrays)
        return items if len(items) > 1 else items[0]


class TensorDataset(ArrayDataset):
    """torch's ``TensorDataset``: samples from tensors (or arrays) of equal length;
    ``dataset[i]`` is a tuple of Tensors, ``(x[i], y[i])``, even of one tensor.

    Where :class:`ArrayDataset` gives a single array's samples bare, this gives
    1-tuples, as torch does, so ``for (x,) in DataLoader(TensorDataset(x))`` works.

    >>> data = minidl.data.TensorDataset(minidl.arange(5.0))
    >>> data[1]
    (tensor(1.),)
    >>> [tuple(t.shape for t in batch) for batch in minidl.data.DataLoader(data, batch_size=3)]
    [((3,),), ((2,),)]
    """

    def __getitem__(self, index: Any) -> Any:
        return tuple(Tensor._of(np.asarray(a[index])) for a in self.arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    >>> part = minidl.data.Subset(minidl.data.ArrayDataset(np.arange(10)), [3, 1])
    >>> len(part), int(part[0])
    (2, 3)
    """

    def __init__(self, dataset: Dataset, indices: ArrayLike) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batched = getattr(dataset, "batched", False)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]


def random_split(
    dataset: Dataset, lengths: Sequence[float], seed: int | None = None
) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random Subsets of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1
    (remainders go to the first parts, as in PyTorch). ``seed`` makes the split
    reproducible; without it, minidl's generator draws it.

    >>> data = minidl.data.ArrayDataset(np.arange(10))
    >>> train, val = minidl.data.random_split(data, [0.8, 0.2], seed=0)
    >>> len(train), len(val)
    (8, 2)
    """
    total = len(dataset)
    lengths = list(lengths)
    if all(isinstance(n, float) for n in lengths) and abs(sum(lengths) - 1) < 1e-6:
        counts = [int(np.floor(total * f)) for f in lengths]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != total or any(n < 0 for n in lengths):
        raise ValueError(
            f"random_split: lengths {lengths} must be non-negative and sum to the dataset's "
            f"length {total} (or be fractions summing to 1)"
        )
    generator = np.random.default_rng(seed) if seed is not None else _random.generator()
    order = generator.permutation(total)
    parts, start = [], 0
    for n in lengths:
        parts.append(Subset(dataset, order[start : start + n]))
        start += n  # type: ignore[assignment]  # counts, once fractions are converted
    return parts


def _stack(samples):
    """Collate a list of samples (tuples of arrays/numbers) into a tuple of batch arrays."""
    first = samples[0]
    if isinstance(first, tuple):
        return tuple(np.stack([_as_array(s[i]) for s in samples]) for i in range(len(first)))
    return np.stack([_as_array(s) for s in samples])


class DataLoader:
    """Iterate over a dataset in batches, optionally shuffled, transformed and prefetched.

    Each batch is a tuple of Tensors (inputs, targets); a dataset of single
    arrays gives single Tensors. With ``shuffle``, every epoch is a new
    permutation: every sample appears exactly once per epoch. ``seed`` gives the
    loader its own generator (the same seed, the same order); without one it
    draws from minidl's generator, so ``minidl.manual_seed`` (and a resumed
    checkpoint's RNG state) fixes the order. ``transform`` is applied to the
    inputs of each batch (a batch transform from ``minidl.data.transforms``);
    ``prefetch`` prepares the next batch in a background thread. ``sampler`` (an
    iterable of indices with ``len``, such as :class:`DistributedSampler`) gives
    the indices, in its order, instead of ``shuffle``; as in PyTorch the two
    exclude each other.

    >>> loader = minidl.data.DataLoader(
    ...     minidl.data.ArrayDataset(np.zeros((10, 2), np.float32), np.arange(10)),
    ...     batch_size=4, shuffle=True, seed=0)
    >>> [len(y) for x, y in loader]
    [4, 4, 2]
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        transform: Callable[..., Any] | None = None,
        prefetch: bool = False,
        sampler: Any = None,
    ) -> None:
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise ValueError(
                f"DataLoader: batch_size must be a positive integer, got {batch_size!r}"
            )
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                "DataLoader: expected a dataset with __len__ and __getitem__ (a Dataset, "
                f"ArrayDataset or array), got {type(dataset).__name__}"
            )
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {transform!r:.60}")
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.transform = transform
        self.prefetch = prefetch
        self._generator = np.random.default_rng(seed) if seed is not None else None

    def __len__(self) -> int:
        count = len(self.dataset) if self.sampler is None else len(self.sampler)
        if self.drop_last:
            return count // self.batch_size
        return -(-count // self.batch_size)

    def _pass_rng(self):
        """The generator a pass draws its plan from, on the calling thread, or None.

        A seeded loader uses its own generator (its state is in ``state_dict``).
        Otherwise one number drawn from the calling thread's minidl generator seeds
        a generator for the pass. A pass that draws nothing (no shuffle, no
        transform) takes no number, so evaluating on a plain loader leaves the
        training's random stream alone.
        """
        if self._generator is not None:
            return self._generator
        if self.transform is None and not (self.shuffle and self.sampler is None):
            return None
        return np.random.default_rng(_random.generator().integers(2**63))

    def _plan(self):
        """A pass's order and the seed of its transforms, all drawn when the pass begins.

        Every draw happens here, on the calling thread, and each batch's transform
        gets a generator seeded from (the pass's seed, the batch's number). So the
        batches are the same whichever thread prepares them (``prefetch``), and a
        pass left early advances the loader's generator as much as a whole pass.
        """
        rng = self._pass_rng()
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64)
        elif self.shuffle:
            order = rng.permutation(len(self.dataset))
        else:
            order = np.arange(len(self.dataset))
        seed = int(rng.integers(2**63)) if self.transform is not None else None
        return order, seed

    def _batches(self, order, seed):
        for number, start in enumerate(range(0, len(order), self.batch_size)):
            index = order[start : start + self.batch_size]
            if len(index) < self.batch_size and self.drop_last:
                return
            if getattr(self.dataset, "batched", False):
                batch = self.dataset[index]
            else:
                batch = _stack([self.dataset[int(i)] for i in index])
            yield self._finish(
                batch, None if seed is None else np.random.default_rng([seed, number])
            )

    def _finish(self, batch, rng):
        items = list(batch) if isinstance(batch, tuple) else [batch]
        if self.transform is not None:
            items[0] = self.transform(_as_array(items[0]), rng=rng)
        tensors = tuple(Tensor._of(_as_array(item)) for item in items)
        return tensors if isinstance(batch, tuple) else tensors[0]

    def __iter__(self) -> Iterator[Any]:
        batches = self._batches(*self._plan())
        if not self.prefetch:
            return batches
        return _Prefetcher(batches)

    def state_dict(self) -> dict[str, Any]:
        """``{"generator": state}``: a seeded loader's generator state (plain values), else None.

        The Trainer puts it in checkpoints so a resumed run shuffles and transforms
        as the uninterrupted one would. A pass draws everything when it begins, so
        the state is the same at any point of a pass.

        >>> loader = minidl.data.DataLoader(minidl.data.ArrayDataset(np.arange(4)), seed=0)
        >>> sorted(loader.state_dict())
        ['generator']
        """
        if self._generator is None:
            return {"generator": None}
        return {"generator": copy.deepcopy(self._generator.bit_generator.state)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`; a seeded state needs a seeded loader."""
        if not isinstance(state, dict) or set(state) != {"generator"}:
            raise ValueError(
                f"DataLoader.load_state_dict: expected {{'generator': ...}} from state_dict, "
                f"got {state!r:.80}"
            )
        saved = state["generator"]
        if (saved is None) != (self._generator is None):
            raise ValueError(
                "DataLoader.load_state_dict: the state is of a loader "
                + ("without" if saved is None else "with")
                + " a seed, this loader has "
                + ("one" if saved is None else "none")
                + "; give both loaders a seed, or neither"
            )
        if saved is not None:
            assert self._generator is not None  # both have a seed or neither, checked above
            _random._check_state(saved, "DataLoader.load_state_dict")
            self._generator.bit_generator.state = copy.deepcopy(saved)


_DONE = object()  # the prefetch thread's last item: the batches are exhausted


class _Prefetcher:
    """Runs a batch generator one step ahead in a daemon thread.

    The thread stops and is joined when the iterator is exhausted, closed
    (``close()``, which a ``for`` loop left by ``break`` or an exception reaches
    through garbage collection) or collected: the thread holds no reference to
    the iterator, only to the queue and the stop event, so an abandoned iterator
    is collected and its finalizer stops the thread.
    """

    def __init__(self, batches):
        self._pid = os.getpid()
        self._queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_prefetch, args=(batches, self._queue, self._stop), daemon=True
        )
        self._thread.start()
        self._finalizer = weakref.finalize(
            self, _stop_prefetch, self._thread, self._queue, self._stop
        )

    def __iter__(self):
        return self

    def __next__(self):
        if not self._finalizer.alive:
            raise StopIteration
        if os.getpid() != self._pid:
            raise RuntimeError(
                "DataLoader: this prefetching pass was started before os.fork, and its thread "
                "is in the parent process; start a new pass (iter(loader)) in the child"
            )
        item = self._queue.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        return item

    def close(self):
        """Stop the thread and wait for it (it finishes the batch it is preparing)."""
        self._finalizer()


class _Failure:
    """An exception raised while preparing a batch, carried to the consumer."""

    def __init__(self, error):
        self.error = error


def _offer(item, out, stop):
    """Put ``item`` on the queue unless asked to stop; whether it was put."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _prefetch(batches, out, stop):
    try:
        for batch in batches:
            if not _offer(batch, out, stop):
                return
        _offer(_DONE, out, stop)
    except BaseException as error:  # handed to the consumer, raised there
        _offer(_Failure(error), out, stop)
    finally:
        batches.close()


def _stop_prefetch(thread, out, stop):
    stop.set()
    if thread is threading.current_thread():
        return  # collected by the thread itself: it sees the event and ends
    while thread.is_alive():
        try:  # free the slot the thread may be waiting on
            out.get_nowait()
        except queue.Empty:
            pass
        thread.join(timeout=0.05)
    while True:
        try:
            out.get_nowait()
        except queue.Empty:
            return
