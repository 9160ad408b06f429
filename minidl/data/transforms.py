"""Batch transforms: functions of a whole batch of images at once, vectorized in numpy.

Batches are (N, C, H, W) or (N, H, W) arrays. Each transform is called as
``transform(batch, rng=None)``; random ones draw from ``rng`` (a numpy
Generator; the DataLoader passes its own) or, without one, from minidl's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import _checks
from .. import random as _random

if TYPE_CHECKING:
    from numpy.typing import NDArray


def _generator(rng):
    return rng if rng is not None else _random.generator()


def _image_batch(batch, where, ranks=(3, 4)):
    """Refuse a batch that is not a numpy array (TypeError) of one of ``ranks`` (ValueError)."""
    expected = "(N, H, W) or (N, C, H, W)" if tuple(ranks) == (3, 4) else "(N, *)"
    if not isinstance(batch, np.ndarray):
        raise TypeError(
            f"{where}: expected a batch as a numpy array {expected}, got {type(batch).__name__}"
        )
    if batch.ndim not in ranks:
        raise ValueError(f"{where}: expected a batch {expected}, got shape {batch.shape}")


def _random_crop(batch, size, padding, rng, where):
    """Pad ``batch``'s images by ``padding`` zeros and cut one random ``size`` window from each."""
    _image_batch(batch, where)
    pad = [(0, 0)] * (batch.ndim - 2) + [(padding, padding)] * 2
    padded = np.pad(batch, pad)
    height, width = padded.shape[-2:]
    crop_h, crop_w = size
    if crop_h > height or crop_w > width:
        raise ValueError(
            f"{where}: a {tuple(size)} crop does not fit images of {batch.shape[-2:]} "
            f"padded by {padding}"
        )
    count = len(batch)
    top = rng.integers(0, height - crop_h + 1, count)
    left = rng.integers(0, width - crop_w + 1, count)
    windows = sliding_window_view(padded, (crop_h, crop_w), axis=(-2, -1))
    # windows: (N, [C,] H', W', crop_h, crop_w); pick (top[n], left[n]) for image n
    if batch.ndim == 4:
        return windows[np.arange(count), :, top, left].copy()
    return windows[np.arange(count), top, left].copy()


class Compose:
    """Apply transforms in order.

    >>> t = minidl.data.transforms.Compose([
    ...     minidl.data.transforms.Normalize(0.5, 0.5),
    ...     minidl.data.transforms.RandomHorizontalFlip(0.0),
    ... ])
    >>> t(np.ones((2, 1, 2, 2), np.float32))[0, 0]
    array([[1., 1.],
           [1., 1.]], dtype=float32)
    """

    def __init__(self, transforms: Sequence[Callable[..., Any]]) -> None:
        if not hasattr(transforms, "__iter__") or not all(map(callable, transforms)):
            raise TypeError(
                f"Compose: expected a list of transforms (callables), got {transforms!r}"
            )
        self.transforms = list(transforms)

    def __call__(self, batch: NDArray[Any], rng: np.random.Generator | None = None) -> NDArray[Any]:
        for transform in self.transforms:
            batch = transform(batch, rng=rng)
        return batch

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Normalize:
    """``(batch - mean) / std``; mean and std are numbers or per-channel sequences (axis 1).

    >>> minidl.data.transforms.Normalize(0.1307, 0.3081)(np.full((1, 1, 1, 1), 0.1307))
    array([[[[0.]]]])
    """

    def __init__(self, mean: Any, std: Any) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        if self.mean.ndim > 1 or self.std.ndim > 1 or not np.isfinite(self.mean).all():
            raise ValueError(
                f"Normalize: expected finite numbers or per-channel sequences, got mean={mean}, "
                f"std={std}"
            )
        if not np.isfinite(self.std).all() or np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std}")

    def __call__(self, batch: NDArray[Any], rng: np.random.Generator | None = None) -> NDArray[Any]:
        _image_batch(batch, "Normalize", ranks=range(1 if self.mean.ndim == 0 else 2, 33))
        shape = (1, -1) + (1,) * (batch.ndim - 2) if self.mean.ndim else ()
        mean = self.mean.reshape(shape).astype(batch.dtype, copy=False)
        std = self.std.reshape(shape).astype(batch.dtype, copy=False)
        return (batch - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop:
    """Pad each image by ``padding`` zeros, then cut a random ``size`` x ``size`` window from it.

    One offset is drawn per image; the whole batch is cut in one gather.

    >>> crop = minidl.data.transforms.RandomCrop(28, padding=2)
    >>> crop(np.zeros((8, 1, 28, 28), np.float32)).shape
    (8, 1, 28, 28)
    """

    def __init__(self, size: int | tuple[int, int], padding: int = 0) -> None:
        self.size = _checks.pair(size, "RandomCrop", "size")
        if min(self.size) < 1:
            raise ValueError(f"RandomCrop: size must be positive, got {size!r}")
        self.padding = _checks.non_negative_int(padding, "RandomCrop", "padding")

    def __call__(self, batch: NDArray[Any], rng: np.random.Generator | None = None) -> NDArray[Any]:
        return _random_crop(batch, self.size, self.padding, _generator(rng), "RandomCrop")

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomShift:
    """Shift each image by up to ``pixels`` in each direction, filling with zeros.

    The same as a RandomCrop of the image's own size with ``padding=pixels``; the size
    is each batch's own, so one RandomShift serves images of any size.

    >>> minidl.data.transforms.RandomShift(2)(np.zeros((4, 28, 28))).shape
    (4, 28, 28)
    """

    def __init__(self, pixels: int) -> None:
        self.pixels = _checks.non_negative_int(pixels, "RandomShift", "pixels")

    def __call__(self, batch: NDArray[Any], rng: np.random.Generator | None = None) -> NDArray[Any]:
        size = batch.shape[-2:]  # per call: the transform's own state never changes
        return _random_crop(batch, size, self.pixels, _generator(rng), "RandomShift")

    def __repr__(self) -> str:
        return f"RandomShift(pixels={self.pixels})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p``.

    >>> flip = minidl.data.transforms.RandomHorizontalFlip(p=1.0)
    >>> flip(np.array([[[1.0, 2.0]]]))
    array([[[2., 1.]]])
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = _checks.real(p, "RandomHorizontalFlip", "p", low=0.0, high=1.0)

    def __call__(self, batch: NDArray[Any], rng: np.random.Generator | None = None) -> NDArray[Any]:
        _image_batch(batch, "RandomHorizontalFlip")
        flip = _generator(rng).random(len(batch)) < self.p
        out = batch.copy()
        out[flip] = batch[flip][..., ::-1]
        return out

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


__all__ = [
    "Compose",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomShift",
]
