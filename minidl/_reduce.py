"""Sums over axes, routed to the compiled kernels where the layout allows it.

Any sum whose reduced axes are a prefix and a suffix of a C-contiguous array's
axes (the batch axis of a (N, F) gradient, the N, H, W axes of a (N, C, H, W)
one, every axis at once) folds to a (A, C, B) array summed over A and B, which
``_ops.sum_leading`` and ``_ops.sum_channels`` do with float64 accumulators (a
sum over every axis goes straight to ``_ops.sum_all``, in memory order); a
Fortran-ordered array is summed as its C-ordered transpose. Other sums go to
numpy, also accumulating in float64.
"""

from __future__ import annotations

import numpy as np

from . import _ops
from ._dtypes import FLOAT_DTYPES


def sum_axes(x, axes):
    """Sum ``x`` over ``axes`` (a tuple of non-negative ints), dropping them.

    Same result as ``x.sum(axis=axes)`` (float data accumulated in float64).

    >>> sum_axes(np.ones((4, 3, 2)), (0, 2))
    array([8., 8., 8.])
    """
    if not axes:
        return x
    if x.dtype not in FLOAT_DTYPES or x.size == 0:
        return x.sum(axis=axes)
    if len(axes) == x.ndim and x.flags.c_contiguous:
        # every axis: the whole array in memory order (the pieces and bits of the
        # (1, 1, size) case below, without its bookkeeping); a Fortran-ordered array
        # comes back here as its transpose
        return _ops.sum_all(x)
    if not x.flags.c_contiguous:
        if not x.flags.f_contiguous:
            return _numpy_sum(x, axes)
        # x.T is C-contiguous; its sum keeps the other axes in reverse order
        last = x.ndim - 1
        return sum_axes(x.T, tuple(sorted(last - a for a in axes))).T
    # One pass over the shape (size-1 axes change nothing wherever they are): the
    # reduced axes before the first kept one multiply into outer, the kept ones into
    # middle, the reduced ones after them into inner; a reduced axis between kept
    # ones leaves it to numpy. Plain Python: np.prod of a tuple costs more than a
    # small kernel call.
    outer = middle = inner = 1
    out_shape = []
    for i, n in enumerate(x.shape):
        if i not in axes:
            out_shape.append(n)
            if n != 1:
                if inner != 1:
                    return _numpy_sum(x, axes)
                middle *= n
        elif middle == 1:
            outer *= n
        else:
            inner *= n
    if middle == 1:
        return _ops.sum_channels(x.reshape(1, 1, outer)).reshape(out_shape)
    if inner == 1:
        return _ops.sum_leading(x.reshape(outer, middle)).reshape(out_shape)
    return _ops.sum_channels(x.reshape(outer, middle, inner)).reshape(out_shape)


def _numpy_sum(x, axes):
    # numpy's float32 sum accumulates in float32 along a strided axis; in float64,
    # as the kernels do, the result does not depend on the layout's precision
    return x.sum(axis=axes, dtype=np.float64).astype(x.dtype, copy=False)


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
