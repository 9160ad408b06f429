"""Sums over axes, routed to the compiled kernels where the layout allows it.

Any sum whose reduced axes are a prefix and a suffix of a C-contiguous array's
axes (the batch axis of a (N, F) gradient, the N, H, W axes of a (N, C, H, W)
one, every axis at once) folds to a (A, C, B) array summed over A and B, which
``_ops.sum_leading`` and ``_ops.sum_channels`` do with float64 accumulators.
Other sums go to numpy.
"""

import numpy as np

from . import _ops

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def sum_axes(x, axes):
    """Sum ``x`` over ``axes`` (a tuple of non-negative ints), dropping them.

    Same result as ``x.sum(axis=axes)`` (float data accumulated in float64).

    >>> sum_axes(np.ones((4, 3, 2)), (0, 2))
    array([8., 8., 8.])
    """
    if not axes:
        return x
    shape = x.shape
    out_shape = tuple(n for i, n in enumerate(shape) if i not in axes)
    if x.dtype not in _KERNEL_DTYPES or x.size == 0 or not x.flags.c_contiguous:
        return x.sum(axis=axes)
    kept = [i for i, n in enumerate(shape) if i not in axes and n != 1]
    if not kept:
        return _ops.sum_channels(x.reshape(1, 1, x.size)).reshape(out_shape)
    low, high = kept[0], kept[-1] + 1
    if any(low < i < high and shape[i] != 1 for i in axes):
        return x.sum(axis=axes)
    outer = int(np.prod(shape[:low], dtype=np.int64))
    middle = int(np.prod(shape[low:high], dtype=np.int64))
    inner = int(np.prod(shape[high:], dtype=np.int64))
    if inner == 1:
        return _ops.sum_leading(x.reshape(outer, middle)).reshape(out_shape)
    return _ops.sum_channels(x.reshape(outer, middle, inner)).reshape(out_shape)


def unbroadcast(grad, shape):
    """Sum a gradient back to the ``shape`` of an input that numpy broadcast.

    Sums over the leading axes broadcasting added and over the axes where the
    input had size 1.

    >>> unbroadcast(np.ones((5, 3)), (1, 3))
    array([[5., 5., 5.]])
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return sum_axes(grad, axes).reshape(shape)
