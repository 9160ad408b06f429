"""The differentiable operations on tensors, each a :class:`~minidl.autograd.Function`.

Binary operations broadcast as numpy does and sum each gradient back to its
input's shape. The functions here are also Tensor's methods and operators
(``x + y`` is ``add(x, y)``, ``x.sum(axis=0)`` is ``sum(x, axis=0)``); they are
attached to :class:`~minidl.tensor.Tensor` at the end of this module.

Semantics follow PyTorch where numpy and PyTorch differ: ``var`` is unbiased by
default (``correction=1``), ``transpose(a, b)`` swaps two axes, ``max``/``min``
over axes share the gradient evenly between tied maxima (as ``torch.amax``),
``clip`` passes the gradient where ``min <= x <= max``.
"""

import builtins

import numpy as np

from ._reduce import sum_axes, unbroadcast
from .autograd import Function
from .tensor import Tensor, _check_dtype


def _array(value):
    return value.data if isinstance(value, Tensor) else value


def _broadcasting(name, ufunc, a, b):
    """``ufunc(a, b)``, with a broadcast failure reported by operation name and shapes."""
    try:
        return ufunc(a, b)
    except ValueError as error:
        if "broadcast" not in str(error):
            raise
        raise ValueError(
            f"{name}: shapes {np.shape(a)} and {np.shape(b)} cannot be broadcast together"
        ) from None


def _normalize_axes(axis, ndim, where):
    """``axis`` (None, an int or a sequence of ints) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normalized = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{where}: axis {a} is out of range for a tensor with {ndim} dims")
        normalized.append(int(a) % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{where}: repeated axis in {axis}")
    return tuple(sorted(normalized))


def _keepdims_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


# ---------------------------------------------------------------- arithmetic


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return _broadcasting("add", np.add, a, b)

    @staticmethod
    def backward(ctx, grad):
        shape_a, shape_b = ctx.shapes
        need_a, need_b = ctx.needs_input_grad
        return (
            unbroadcast(grad, shape_a) if need_a else None,
            unbroadcast(grad, shape_b) if need_b else None,
        )


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return _broadcasting("sub", np.subtract, a, b)

    @staticmethod
    def backward(ctx, grad):
        shape_a, shape_b = ctx.shapes
        need_a, need_b = ctx.needs_input_grad
        return (
            unbroadcast(grad, shape_a) if need_a else None,
            -unbroadcast(grad, shape_b) if need_b else None,
        )


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _broadcasting("mul", np.multiply, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (
            unbroadcast(grad * b, np.shape(a)) if need_a else None,
            unbroadcast(grad * a, np.shape(b)) if need_b else None,
        )


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _broadcasting("div", np.true_divide, a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad / b
        return (
            unbroadcast(grad_a, np.shape(a)) if need_a else None,
            unbroadcast(-grad_a * a / b, np.shape(b)) if need_b else None,
        )


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = _broadcasting("pow", np.power, a, b)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if need_a:
                # d a^b / da = b * a^(b - 1), taken as 0 where b == 0 (as PyTorch does)
                local = np.where(np.equal(b, 0), 0, b * np.power(a, np.subtract(b, 1)))
                grad_a = unbroadcast(grad * local, np.shape(a))
            if need_b:
                # d a^b / db = a^b * log(a), taken as 0 where a == 0 and b >= 0
                zero = np.logical_and(np.equal(a, 0), np.greater_equal(b, 0))
                local = np.where(zero, 0, out * np.log(a))
                grad_b = unbroadcast(grad * local, np.shape(b))
        return grad_a, grad_b


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return np.negative(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def _matmul_error(a, b):
    sa, sb = np.shape(a), np.shape(b)
    if len(sa) == 0 or len(sb) == 0:
        return ValueError(f"matmul: both operands need at least 1 dim, got shapes {sa} and {sb}")
    inner_a = sa[-1]
    inner_b = sb[-2] if len(sb) > 1 else sb[0]
    if inner_a != inner_b:
        return ValueError(
            f"matmul: shapes {sa} and {sb} are not aligned: {inner_a} (last dim of the "
            f"first) != {inner_b} ({'second-to-last' if len(sb) > 1 else 'only'} dim of "
            "the second)"
        )
    return ValueError(f"matmul: batch dims of shapes {sa} and {sb} cannot be broadcast")


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        try:
            return np.matmul(a, b)
        except ValueError:
            raise _matmul_error(a, b) from None

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        # Treat vectors as matrices: a (k,) as (1, k), b (k,) as (k, 1).
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2 if b.ndim > 1 else -1)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        grad_a = grad_b = None
        if need_a:
            grad_a = unbroadcast(np.matmul(g2, np.swapaxes(b2, -1, -2)), a2.shape)
            grad_a = grad_a.reshape(a.shape)
        if need_b:
            grad_b = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g2), b2.shape)
            grad_b = grad_b.reshape(b.shape)
        return grad_a, grad_b


# ---------------------------------------------------------------- reductions


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = _normalize_axes(axis, x.ndim, "sum")
        ctx.shape, ctx.axes = x.shape, axes
        out = sum_axes(x, axes) if x.dtype.kind == "f" else np.sum(x, axis=axes)
        return np.reshape(out, _keepdims_shape(x.shape, axes)) if keepdims else out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.reshape(_keepdims_shape(ctx.shape, ctx.axes))
        return np.broadcast_to(grad, ctx.shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = _normalize_axes(axis, x.ndim, "mean")
        count = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
        ctx.shape, ctx.axes, ctx.count = x.shape, axes, count
        if x.dtype.kind != "f":
            raise TypeError(f"mean: expected a float tensor, got dtype {x.dtype}")
        out = sum_axes(x, axes) / x.dtype.type(count) if count else np.mean(x, axis=axes)
        out = np.asarray(out, dtype=x.dtype)
        return np.reshape(out, _keepdims_shape(x.shape, axes)) if keepdims else out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.reshape(_keepdims_shape(ctx.shape, ctx.axes)) / grad.dtype.type(ctx.count)
        return np.broadcast_to(grad, ctx.shape)


class _Extremum(Function):
    """max or min over axes; the gradient is shared evenly between tied extremes."""

    reduce = None
    name = ""

    @classmethod
    def forward(cls, ctx, x, axis=None, keepdims=False):
        axes = _normalize_axes(axis, x.ndim, cls.name)
        if x.size == 0:
            raise ValueError(f"{cls.name}: the tensor is empty (shape {x.shape})")
        kept = cls.reduce(x, axis=axes, keepdims=True)
        ctx.save_for_backward(x, kept)
        ctx.axes = axes
        return (
            kept if keepdims else kept.reshape([n for i, n in enumerate(x.shape) if i not in axes])
        )

    @staticmethod
    def backward(ctx, grad):
        x, kept = ctx.saved_tensors
        mask = x == kept
        count = mask.sum(axis=ctx.axes, keepdims=True)
        return mask * (grad.reshape(kept.shape) / count)


class Max(_Extremum):
    reduce = staticmethod(np.max)
    name = "max"


class Min(_Extremum):
    reduce = staticmethod(np.min)
    name = "min"


class Var(Function):
    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, correction=1):
        axes = _normalize_axes(axis, x.ndim, "var")
        if x.dtype.kind != "f":
            raise TypeError(f"var: expected a float tensor, got dtype {x.dtype}")
        count = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
        divisor = x.dtype.type(builtins.max(count - correction, 0))
        centered = x - np.mean(x, axis=axes, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.asarray(
                sum_axes(np.ascontiguousarray(centered * centered), axes) / divisor, x.dtype
            )
        ctx.save_for_backward(centered)
        ctx.axes, ctx.divisor = axes, divisor
        return np.reshape(out, _keepdims_shape(x.shape, axes)) if keepdims else out

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        grad = grad.reshape(_keepdims_shape(centered.shape, ctx.axes))
        with np.errstate(divide="ignore", invalid="ignore"):
            return (2 / ctx.divisor) * grad * centered


# ---------------------------------------------------------------- shape


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return np.reshape(x, shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                f"into {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        if sorted(a % builtins.max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ValueError(
                f"permute: {tuple(axes)} is not a permutation of the {x.ndim} axes of a "
                f"tensor of shape {x.shape}"
            )
        ctx.inverse = np.argsort([a % x.ndim for a in axes])
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, grad):
        return np.transpose(grad, ctx.inverse)


def _is_basic_index(index):
    """Whether ``index`` uses only ints, slices, None and Ellipsis (no repeated elements)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        item is None or item is Ellipsis or isinstance(item, (slice, int, np.integer))
        for item in items
    )


def _plain_index(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(_plain_index(item) for item in index)
    if isinstance(index, list):
        return np.asarray([_plain_index(item) for item in index])
    return index


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.dtype, ctx.index = x.shape, x.dtype, index
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=ctx.dtype)
        if _is_basic_index(ctx.index):
            full[ctx.index] = grad
        else:
            np.add.at(full, ctx.index, grad)  # repeated indices accumulate, as in torch
        return full


class Concatenate(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            out = np.concatenate(arrays, axis=axis)
        except (ValueError, np.exceptions.AxisError) as error:
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            raise ValueError(
                f"concatenate: cannot join shapes {shapes} on axis {axis}: {error}"
            ) from None
        ctx.axis = axis % out.ndim
        ctx.splits = np.cumsum([a.shape[ctx.axis] for a in arrays])[:-1]
        return out

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.split(grad, ctx.splits, axis=ctx.axis))


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        try:
            out = np.stack(arrays, axis=axis)
        except (ValueError, np.exceptions.AxisError) as error:
            shapes = ", ".join(str(np.shape(a)) for a in arrays)
            raise ValueError(
                f"stack: cannot stack shapes {shapes} on axis {axis}: {error}"
            ) from None
        ctx.axis = axis % out.ndim
        return out

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.moveaxis(grad, ctx.axis, 0))


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad  # the backward walk casts it to the input's dtype


# ---------------------------------------------------------------- element-wise


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.sqrt(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp is only taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        out = _sigmoid(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out > 0)


class Clip(Function):
    @staticmethod
    def forward(ctx, x, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        ctx.save_for_backward(x)
        ctx.bounds = (min, max)
        return np.clip(x, min, max).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        low, high = ctx.bounds
        inside = np.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        return grad * inside


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * np.sign(x)


class Where(Function):
    @staticmethod
    def forward(ctx, condition, x, y):
        condition = np.asarray(condition)
        if condition.dtype != bool:
            raise TypeError(f"where: the condition must be boolean, got dtype {condition.dtype}")
        ctx.save_for_backward(condition)
        ctx.shapes = (np.shape(x), np.shape(y))
        try:
            return np.where(condition, x, y)
        except ValueError:
            raise ValueError(
                f"where: shapes {condition.shape}, {np.shape(x)} and {np.shape(y)} cannot "
                "be broadcast together"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        shape_x, shape_y = ctx.shapes
        _, need_x, need_y = ctx.needs_input_grad
        zero = grad.dtype.type(0)
        return (
            None,
            unbroadcast(np.where(condition, grad, zero), shape_x) if need_x else None,
            unbroadcast(np.where(condition, zero, grad), shape_y) if need_y else None,
        )


# ---------------------------------------------------------------- public functions


def _tensor_or_value(value):
    """Tensors pass through; lists and arrays become constant tensors; scalars stay scalars."""
    if isinstance(value, Tensor) or isinstance(value, (int, float, bool, np.number)):
        return value
    array = np.asarray(value)
    _check_dtype(array.dtype, "operand")
    return Tensor._wrap(array)


def add(a, b):
    """``a + b`` with broadcasting. Shapes: any two that broadcast.

    >>> minidl.add(minidl.ones(2, 3), minidl.tensor([1.0, 2.0, 3.0])).shape
    (2, 3)
    """
    return Add.apply(_tensor_or_value(a), _tensor_or_value(b))


def sub(a, b):
    """``a - b`` with broadcasting.

    >>> minidl.sub(minidl.ones(2), 1.0)
    tensor([0., 0.])
    """
    return Sub.apply(_tensor_or_value(a), _tensor_or_value(b))


def mul(a, b):
    """``a * b`` (element-wise) with broadcasting.

    >>> minidl.mul(minidl.ones(2), 3.0)
    tensor([3., 3.])
    """
    return Mul.apply(_tensor_or_value(a), _tensor_or_value(b))


def div(a, b):
    """``a / b`` (true division) with broadcasting.

    >>> minidl.div(minidl.ones(2), 4.0)
    tensor([0.25, 0.25])
    """
    return Div.apply(_tensor_or_value(a), _tensor_or_value(b))


def pow(a, b):
    """``a ** b`` with broadcasting; either may be a tensor or a number.

    >>> minidl.pow(minidl.tensor([2.0, 3.0]), 2)
    tensor([4., 9.])
    """
    return Pow.apply(_tensor_or_value(a), _tensor_or_value(b))


def neg(x):
    """``-x``.

    >>> minidl.neg(minidl.ones(2))
    tensor([-1., -1.])
    """
    return Neg.apply(x)


def matmul(a, b):
    """Matrix product with numpy's rules: (..., n, k) @ (..., k, m) -> (..., n, m).

    Batch dims broadcast; a 1-d operand is a vector (its dim is dropped from the result).

    >>> minidl.matmul(minidl.ones(4, 2, 3), minidl.ones(3, 5)).shape
    (4, 2, 5)
    """
    return MatMul.apply(_tensor_or_value(a), _tensor_or_value(b))


def sum(x, axis=None, keepdims=False):
    """Sum over ``axis`` (None: all; an int or a tuple), keeping reduced dims as 1 if ``keepdims``.

    Float data is accumulated in float64 by the compiled kernels.

    >>> minidl.sum(minidl.ones(4, 3), axis=0)
    tensor([4., 4., 4.])
    """
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis`` (None: all; an int or a tuple).

    >>> minidl.mean(minidl.tensor([[1.0, 3.0]]), axis=1)
    tensor([2.])
    """
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    """Largest value over ``axis`` (like ``torch.amax``: ties share the gradient).

    >>> minidl.max(minidl.tensor([[1.0, 5.0], [7.0, 2.0]]), axis=1)
    tensor([5., 7.])
    """
    return Max.apply(x, axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):
    """Smallest value over ``axis`` (like ``torch.amin``: ties share the gradient).

    >>> minidl.min(minidl.tensor([[1.0, 5.0], [7.0, 2.0]]), axis=0)
    tensor([1., 2.])
    """
    return Min.apply(x, axis=axis, keepdims=keepdims)


def var(x, axis=None, keepdims=False, correction=1):
    """Variance over ``axis``: ``sum((x - mean)**2) / (count - correction)``.

    ``correction=1`` (the default, as in PyTorch) is the unbiased estimate;
    ``correction=0`` is numpy's default, the biased one.

    >>> minidl.var(minidl.tensor([1.0, 2.0, 3.0]))
    tensor(1.)
    """
    return Var.apply(x, axis=axis, keepdims=keepdims, correction=correction)


def reshape(x, *shape):
    """The same data in a new shape; one dim may be -1. ``reshape(x, 2, 3)`` or ``(x, (2, 3))``.

    >>> minidl.reshape(minidl.arange(6.0), 2, 3).shape
    (2, 3)
    """
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return Reshape.apply(x, shape=tuple(int(n) for n in shape))


def permute(x, *axes):
    """Reorder the axes: result axis i is input axis ``axes[i]``.

    >>> minidl.permute(minidl.zeros(2, 3, 4), 2, 0, 1).shape
    (4, 2, 3)
    """
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = axes[0]
    return Permute.apply(x, axes=tuple(int(a) for a in axes))


def transpose(x, *axes):
    """Swap two axes, as ``torch.transpose(x, dim0, dim1)``; with none, reverse all axes.

    >>> minidl.transpose(minidl.zeros(2, 3, 4), 0, 2).shape
    (4, 3, 2)
    """
    if not axes:
        return Permute.apply(x, axes=tuple(reversed(range(x.ndim))))
    if len(axes) != 2:
        raise ValueError(
            f"transpose: expected two axes to swap (or none), got {axes}; use permute() "
            "for a full reordering"
        )
    order = list(range(x.ndim))
    first, second = (_normalize_axes(a, x.ndim, "transpose")[0] for a in axes)
    order[first], order[second] = order[second], order[first]
    return Permute.apply(x, axes=tuple(order))


def flatten(x, start_dim=0, end_dim=-1):
    """Merge dims ``start_dim`` to ``end_dim`` (inclusive) into one, as ``torch.flatten``.

    >>> minidl.flatten(minidl.zeros(2, 3, 4), start_dim=1).shape
    (2, 12)
    """
    if x.ndim == 0:
        return reshape(x, 1)
    start = _normalize_axes(start_dim, x.ndim, "flatten")[0]
    end = _normalize_axes(end_dim, x.ndim, "flatten")[0]
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(x.shape[start : end + 1], dtype=np.int64))
    shape = (*x.shape[:start], merged, *x.shape[end + 1 :])
    return Reshape.apply(x, shape=shape)


def getitem(x, index):
    """``x[index]``: ints, slices, None, Ellipsis, integer or boolean arrays (or tensors).

    With integer arrays, repeated indices accumulate their gradients.

    >>> minidl.arange(5.0)[[0, 0, 3]]
    tensor([0., 0., 3.])
    """
    return GetItem.apply(x, index=_plain_index(index))


def concatenate(tensors, axis=0):
    """Join tensors along an existing ``axis`` (``torch.cat``).

    >>> minidl.concatenate([minidl.ones(2, 3), minidl.zeros(1, 3)]).shape
    (3, 3)
    """
    return Concatenate.apply(*[_tensor_or_value(t) for t in tensors], axis=axis)


def stack(tensors, axis=0):
    """Join same-shaped tensors along a new ``axis``.

    >>> minidl.stack([minidl.ones(3), minidl.zeros(3)], axis=1).shape
    (3, 2)
    """
    return Stack.apply(*[_tensor_or_value(t) for t in tensors], axis=axis)


def exp(x):
    """Element-wise e**x.

    >>> minidl.exp(minidl.zeros(2))
    tensor([1., 1.])
    """
    return Exp.apply(x)


def log(x):
    """Element-wise natural logarithm.

    >>> minidl.log(minidl.ones(2))
    tensor([0., 0.])
    """
    return Log.apply(x)


def sqrt(x):
    """Element-wise square root.

    >>> minidl.sqrt(minidl.tensor([4.0, 9.0]))
    tensor([2., 3.])
    """
    return Sqrt.apply(x)


def tanh(x):
    """Element-wise hyperbolic tangent.

    >>> minidl.tanh(minidl.zeros(1))
    tensor([0.])
    """
    return Tanh.apply(x)


def sigmoid(x):
    """Element-wise logistic function 1 / (1 + exp(-x)), stable for large |x|.

    >>> minidl.sigmoid(minidl.zeros(1))
    tensor([0.5])
    """
    return Sigmoid.apply(x)


def relu(x):
    """Element-wise max(x, 0); the gradient at 0 is 0, as in PyTorch.

    >>> minidl.relu(minidl.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    return ReLU.apply(x)


def clip(x, min=None, max=None):
    """Limit values to [min, max] (``torch.clamp``); the gradient flows where min <= x <= max.

    >>> minidl.clip(minidl.tensor([-2.0, 0.5, 3.0]), -1.0, 1.0)
    tensor([-1. ,  0.5,  1. ])
    """
    return Clip.apply(x, min=min, max=max)


def abs(x):
    """Element-wise absolute value; the gradient at 0 is 0.

    >>> minidl.abs(minidl.tensor([-2.0, 3.0]))
    tensor([2., 3.])
    """
    return Abs.apply(x)


def where(condition, x, y):
    """Element-wise ``x`` where ``condition`` holds, else ``y``; all three broadcast.

    >>> a = minidl.tensor([1.0, -1.0])
    >>> minidl.where(a > 0, a, 0.0)
    tensor([1., 0.])
    """
    return Where.apply(_array(condition), _tensor_or_value(x), _tensor_or_value(y))


def _compare(ufunc):
    def compare(self, other):
        return Tensor._wrap(_broadcasting(ufunc.__name__, ufunc, self.data, _array(other)))

    compare.__name__ = ufunc.__name__
    compare.__doc__ = (
        f"Element-wise ``{ufunc.__name__}``: a bool tensor that does not require grad."
    )
    return compare


def _setitem(self, index, value):
    from .autograd import is_grad_enabled

    if self.requires_grad and is_grad_enabled():
        raise RuntimeError(
            "setitem: in-place assignment into a tensor that requires grad is not supported; "
            "build the value with where()/concatenate(), or assign under minidl.no_grad()"
        )
    self.data[_plain_index(index)] = _array(value)


def _astype(self, dtype):
    """This tensor converted to ``dtype`` (differentiable between float dtypes).

    >>> minidl.ones(2).astype("float64").dtype
    dtype('float64')
    """
    dtype = np.dtype(dtype)
    _check_dtype(dtype, "astype")
    if dtype == self.dtype:
        return self
    if dtype.kind != "f":
        return Tensor._wrap(self.data.astype(dtype))
    return Cast.apply(self, dtype=dtype)


def _argmax(self, axis=None, keepdims=False):
    """Indices of the largest values along ``axis`` (int64, no gradient)."""
    return Tensor._wrap(np.argmax(self.data, axis=axis, keepdims=keepdims).astype(np.int64))


def _argmin(self, axis=None, keepdims=False):
    """Indices of the smallest values along ``axis`` (int64, no gradient)."""
    return Tensor._wrap(np.argmin(self.data, axis=axis, keepdims=keepdims).astype(np.int64))


def _all(self, axis=None, keepdims=False):
    """Whether every element (along ``axis``) is true: a bool tensor, no gradient.

    >>> (minidl.ones(2) > 0).all()
    tensor(True, dtype=bool)
    """
    return Tensor._wrap(np.all(self.data, axis=axis, keepdims=keepdims))


def _any(self, axis=None, keepdims=False):
    """Whether any element (along ``axis``) is true: a bool tensor, no gradient.

    >>> (minidl.ones(2) > 1).any()
    tensor(False, dtype=bool)
    """
    return Tensor._wrap(np.any(self.data, axis=axis, keepdims=keepdims))


def _reflected(function):
    def reflected(self, other):
        return function(other, self)

    reflected.__name__ = f"r{function.__name__}"
    return reflected


# Tensor's operators and methods.
Tensor.__add__ = add
Tensor.__radd__ = _reflected(add)
Tensor.__sub__ = sub
Tensor.__rsub__ = _reflected(sub)
Tensor.__mul__ = mul
Tensor.__rmul__ = _reflected(mul)
Tensor.__truediv__ = div
Tensor.__rtruediv__ = _reflected(div)
Tensor.__pow__ = pow
Tensor.__rpow__ = _reflected(pow)
Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = _reflected(matmul)
Tensor.__neg__ = neg
Tensor.__abs__ = abs
Tensor.__getitem__ = getitem
Tensor.__setitem__ = _setitem
Tensor.__lt__ = _compare(np.less)
Tensor.__le__ = _compare(np.less_equal)
Tensor.__gt__ = _compare(np.greater)
Tensor.__ge__ = _compare(np.greater_equal)
Tensor.__eq__ = _compare(np.equal)
Tensor.__ne__ = _compare(np.not_equal)
Tensor.sum = sum
Tensor.mean = mean
Tensor.max = max
Tensor.min = min
Tensor.var = var
Tensor.reshape = reshape
Tensor.view = reshape
Tensor.permute = permute
Tensor.transpose = transpose
Tensor.T = property(transpose, doc="All axes reversed (a matrix's transpose).")
Tensor.flatten = flatten
Tensor.exp = exp
Tensor.log = log
Tensor.sqrt = sqrt
Tensor.tanh = tanh
Tensor.sigmoid = sigmoid
Tensor.relu = relu
Tensor.clip = clip
Tensor.clamp = clip
Tensor.abs = abs
Tensor.astype = _astype
Tensor.float = lambda self: _astype(self, np.float32)
Tensor.double = lambda self: _astype(self, np.float64)
Tensor.all = _all
Tensor.any = _any
Tensor.argmax = _argmax
Tensor.argmin = _argmin
