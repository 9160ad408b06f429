"""Argument checks shared by every layer of minidl, each written once.

This module imports nothing from minidl, so the compiled kernels (``_ops.pyx``),
their numpy twins (``_reference.py``), ``nn.functional``, the layers and the
optimizers can all use it. Each check takes ``where``, the name of the function
or layer the user called, and puts it first in its message.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

REDUCTIONS = ("mean", "sum", "none")


def is_int(value):
    """Whether ``value`` is an integer (Python or numpy) and not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def pair(value, where, name):
    """``value`` (an int or a sequence of two ints) as a tuple of two Python ints.

    >>> pair(3, "conv2d", "stride"), pair((1, 2), "conv2d", "stride")
    ((3, 3), (1, 2))
    """
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(is_int(item) for item in items):
        raise ValueError(f"{where}: expected {name} as an int or a pair of ints, got {value!r}")
    return int(items[0]), int(items[1])


def file_path(value, where, what="a file path"):
    """``value`` as a path string (``os.fspath``), or a TypeError naming ``where`` and ``what``.

    ``os.fspath`` alone says "expected str, bytes or os.PathLike object, not int", and
    ``open`` takes an int as a file descriptor.

    >>> file_path("model.npz", "load")
    'model.npz'
    """
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{where}: expected {what} (str or os.PathLike), got {value!r:.60}")
    return os.fspath(value)


def positive_int(value, where, name):
    """``value`` as a Python int, refusing anything but an integer >= 1 (bool included).

    >>> positive_int(4, "Dense", "in_features")
    4
    """
    if not is_int(value) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(value, where, name):
    """``value`` as a Python int, refusing anything but an integer >= 0 (bool included).

    >>> non_negative_int(0, "LinearLR", "total_iters")
    0
    """
    if not is_int(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a non-negative integer, got {value!r}")
    return int(value)


def real(value, where, name, low=-math.inf, high=math.inf, low_open=False, high_open=False):
    """``value`` as a finite Python float in the given range, naming ``where`` when not.

    A value that is not a real number (a string, a bool, None) raises TypeError;
    NaN, an infinity or a number outside [``low``, ``high``] (an end excluded
    with ``low_open``/``high_open``) raises ValueError.

    >>> real(1e-5, "BatchNorm2D", "eps", low=0.0)
    1e-05
    >>> real(-1, "BatchNorm2D", "eps", low=0.0)
    Traceback (most recent call last):
    ...
    ValueError: BatchNorm2D: eps must be a finite number >= 0.0, got -1
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number, got {type(value).__name__}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if not math.isfinite(value) or below or above:
        bounds = []
        if low > -math.inf:
            bounds.append(f"{'>' if low_open else '>='} {low}")
        if high < math.inf:
            bounds.append(f"{'<' if high_open else '<='} {high}")
        where_in = " " + " and ".join(bounds) if bounds else ""
        raise ValueError(f"{where}: {name} must be a finite number{where_in}, got {value!r}")
    return float(value)


def eps_and_momentum(eps, momentum, where):
    """A normalization layer's ``eps`` (finite, >= 0) and ``momentum`` (None or in [0, 1])."""
    eps = real(eps, where, "eps", low=0.0)
    if momentum is not None:
        momentum = real(momentum, where, "momentum", low=0.0, high=1.0)
    return eps, momentum


def reduction(value, where):
    """Refuse a ``reduction`` other than 'mean', 'sum' and 'none'; return it."""
    if value not in REDUCTIONS:
        raise ValueError(f"{where}: reduction must be 'mean', 'sum' or 'none', got {value!r}")
    return value


def same_count(saved, here, where, what, this):
    """Refuse a saved state with ``saved`` of ``what`` where the loading object has ``here``.

    >>> same_count(2, 2, "SGD", "parameter groups", "optimizer")
    >>> same_count(1, 2, "SGD", "parameter groups", "optimizer")
    Traceback (most recent call last):
    ...
    ValueError: SGD.load_state_dict: the state has 1 parameter groups, this optimizer 2
    """
    if saved != here:
        raise ValueError(
            f"{where}.load_state_dict: the state has {saved} {what}, this {this} {here}"
        )


def same_length(values, others, where, name, what):
    """Refuse a list ``values`` (one per ``what``) whose length differs from ``others``'.

    >>> same_length([0.1, 0.2], [{}], "OneCycleLR", "max_lr", "param groups")
    Traceback (most recent call last):
    ...
    ValueError: OneCycleLR: expected 1 max_lr values (one per param groups), got 2
    """
    if len(values) != len(others):
        raise ValueError(
            f"{where}: expected {len(others)} {name} values (one per {what}), got {len(values)}"
        )


def label_smoothing(value, where):
    """``value`` as a float in [0, 1], or a ValueError naming ``where``."""
    if not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: label_smoothing must be in [0, 1], got {value!r}")
    return float(value)


def values_per_channel(shape, where=None):
    """Refuse batch statistics over fewer than two values per channel (PyTorch's message).

    ``shape`` is (N, C, ...); statistics are per channel over every other axis.
    ``where`` prefixes the message when given (the kernels name themselves).
    """
    channels = shape[1] if len(shape) > 1 else 0
    count = math.prod(shape) // channels if channels else 0
    if count <= 1:
        prefix = f"{where}: " if where else ""
        raise ValueError(
            f"{prefix}Expected more than 1 value per channel when training, "
            f"got input shape {tuple(shape)}"
        )


def spatial_elements(shape, where=None):
    """Refuse instance statistics over fewer than two values (PyTorch's message).

    ``shape`` is (N, C, ...); statistics are per sample and channel over the
    trailing axes, whose product must be at least 2 (an unbiased variance divides
    by it minus one). ``where`` prefixes the message when given.
    """
    if math.prod(shape[2:]) <= 1:
        prefix = f"{where}: " if where else ""
        raise ValueError(
            f"{prefix}Expected more than 1 spatial element when training, "
            f"got input shape {tuple(shape)}"
        )


def class_labels(labels, rows, classes, where):
    """(N,) integer class labels, each in [0, classes), as a C-contiguous int64 array.

    ``labels`` is an array or a Tensor; the
    range is checked because kernels index with the labels.
    """
    array = np.asarray(labels)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{where}: expected integer class labels, got dtype {array.dtype}")
    if array.shape != (rows,):
        raise ValueError(f"{where}: expected labels of shape ({rows},), got {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= classes):
        bad = array[(array < 0) | (array >= classes)][0]
        raise ValueError(
            f"{where}: label {bad} is out of range for {classes} classes (0 to {classes - 1})"
        )
    return np.ascontiguousarray(array, dtype=np.int64)


def improved(value, best, mode, min_delta=0.0, relative=False):
    """Whether a monitored ``value`` beats ``best`` by more than ``min_delta``.

    ``mode`` is 'min' (lower is better) or 'max'. With ``relative``, ``min_delta`` is
    a fraction of ``best`` (ReduceLROnPlateau's ``threshold_mode='rel'``). NaN never
    improves. A first ``best`` of +-inf makes any number an improvement.

    >>> improved(0.5, 0.6, "min", min_delta=0.05), improved(0.58, 0.6, "min", min_delta=0.05)
    (True, False)
    """
    if value != value:  # NaN
        return False
    sign = -1.0 if mode == "min" else 1.0
    # 'rel' scales best itself (torch's form), so an infinite best stays infinite
    bound = best * (1.0 + sign * min_delta) if relative else best + sign * min_delta
    return value < bound if mode == "min" else value > bound
