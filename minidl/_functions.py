"""The differentiable operations behind Tensor's methods, each a :class:`~minidl.autograd.Function`.

Private: users reach them through :class:`~minidl.Tensor`'s methods and operators
(``x + y`` is ``Add.apply(x, y)``, ``x.sum(axis=0)`` is ``Sum.apply(x, axis=0)``),
whose docstrings say what each computes. ``forward`` and ``backward`` work on
numpy arrays. Binary operations broadcast as numpy does and sum each gradient
back to its input's shape.

Semantics follow PyTorch where numpy and PyTorch differ: ``Var`` is unbiased by
default (``correction=1``), ``Max``/``Min`` over axes share the gradient evenly
between tied maxima (as ``torch.amax``), ``Clip`` passes the gradient where
``min <= x <= max``.
"""

import builtins

import numpy as np

from ._reduce import sum_axes, unbroadcast
from .autograd import Function


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


class _AddOrSub(Function):
    """``a + sign * b``: the gradient goes to ``a`` as it is and to ``b`` times ``sign``."""

    name, ufunc, sign = "", None, 1

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.shapes = (np.shape(a), np.shape(b))
        return _broadcasting(cls.name, cls.ufunc, a, b)

    @classmethod
    def backward(cls, ctx, grad):
        shape_a, shape_b = ctx.shapes
        need_a, need_b = ctx.needs_input_grad
        grad_b = None
        if need_b:
            grad_b = unbroadcast(grad, shape_b)
            grad_b = grad_b if cls.sign == 1 else -grad_b
        return (unbroadcast(grad, shape_a) if need_a else None), grad_b


class Add(_AddOrSub):
    name, ufunc, sign = "add", staticmethod(np.add), 1


class Sub(_AddOrSub):
    name, ufunc, sign = "sub", staticmethod(np.subtract), -1


class _MulOrDiv(Function):
    """A product or quotient: both operands are saved, as each gradient needs the other."""

    name, ufunc = "", None

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.save_for_backward(a, b)
        return _broadcasting(cls.name, cls.ufunc, a, b)

    @classmethod
    def backward(cls, ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a, grad_b = cls.input_grads(grad, a, b, need_a, need_b)
        return (
            unbroadcast(grad_a, np.shape(a)) if need_a else None,
            unbroadcast(grad_b, np.shape(b)) if need_b else None,
        )


class Mul(_MulOrDiv):
    name, ufunc = "mul", staticmethod(np.multiply)

    @staticmethod
    def input_grads(grad, a, b, need_a, need_b):
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(_MulOrDiv):
    name, ufunc = "div", staticmethod(np.true_divide)

    @staticmethod
    def input_grads(grad, a, b, need_a, need_b):
        grad_a = grad / b  # the quotient's gradient needs it too
        return grad_a, (-grad_a * a / b if need_b else None)


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


def _join(name, join, arrays, axis):
    """``join(arrays, axis=axis)``, with a failure reported by name, shapes and axis."""
    try:
        return join(arrays, axis=axis)
    except (ValueError, np.exceptions.AxisError) as error:
        shapes = ", ".join(str(np.shape(a)) for a in arrays)
        raise ValueError(f"{name}: cannot join shapes {shapes} on axis {axis}: {error}") from None


class Concatenate(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        out = _join("concatenate", np.concatenate, arrays, axis)
        ctx.axis = axis % out.ndim
        ctx.splits = np.cumsum([a.shape[ctx.axis] for a in arrays])[:-1]
        return out

    @staticmethod
    def backward(ctx, grad):
        return tuple(np.split(grad, ctx.splits, axis=ctx.axis))


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, axis=0):
        out = _join("stack", np.stack, arrays, axis)
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


class _Elementwise(Function):
    """``compute(x)`` element-wise; backward is ``input_grad(grad, saved)``.

    ``saved`` is the output where the derivative is a function of it (exp, tanh,
    sigmoid, relu: the input can then be freed), else the input.
    """

    saves_output = True

    @classmethod
    def forward(cls, ctx, x):
        out = cls.compute(x)
        ctx.save_for_backward(out if cls.saves_output else x)
        return out

    @classmethod
    def backward(cls, ctx, grad):
        (saved,) = ctx.saved_tensors
        return cls.input_grad(grad, saved)


class Exp(_Elementwise):
    compute = staticmethod(np.exp)

    @staticmethod
    def input_grad(grad, out):
        return grad * out


class Sqrt(_Elementwise):
    compute = staticmethod(np.sqrt)

    @staticmethod
    def input_grad(grad, out):
        return grad / (2 * out)


class Tanh(_Elementwise):
    compute = staticmethod(np.tanh)

    @staticmethod
    def input_grad(grad, out):
        return grad * (1 - out * out)


class Sigmoid(_Elementwise):
    @staticmethod
    def compute(x):
        """1 / (1 + exp(-x)) without overflow: exp is only taken of -|x|."""
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))

    @staticmethod
    def input_grad(grad, out):
        return grad * out * (1 - out)


class Log(_Elementwise):
    compute, saves_output = staticmethod(np.log), False

    @staticmethod
    def input_grad(grad, x):
        return grad / x


class ReLU(_Elementwise):
    @staticmethod
    def compute(x):
        return np.maximum(x, 0)

    @staticmethod
    def input_grad(grad, out):
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


class Abs(_Elementwise):
    compute, saves_output = staticmethod(np.abs), False

    @staticmethod
    def input_grad(grad, x):
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
