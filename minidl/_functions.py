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

from __future__ import annotations

import builtins
import math
from typing import Any, Callable, ClassVar

import numpy as np

from . import _ops
from ._dtypes import FLOAT_DTYPES
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
    # a 0-d tensor accepts dim 0 and -1, as in PyTorch, and has nothing to reduce over them
    span = builtins.max(ndim, 1)
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"{where}: dims must be integers, got {axis!r}")
        if not -span <= a < span:
            raise ValueError(
                f"{where}: dim {a} is out of range for a tensor with {ndim} dims "
                f"(expected to be in range of [{-span}, {span - 1}])"
            )
        if ndim:
            normalized.append(int(a) % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{where}: repeated axis in {axis}")
    return tuple(sorted(normalized))


def _keepdims_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


# ---------------------------------------------------------------- arithmetic


class _AddOrSub(Function):
    """``a + sign * b``: the gradient goes to ``a`` as it is and to ``b`` times ``sign``."""

    name: ClassVar[str] = ""
    ufunc: ClassVar[Callable[..., Any] | None] = None
    sign: ClassVar[int] = 1

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


class _SavesBoth(Function):
    """A binary operation whose gradients need both operands, which it saves.

    Subclasses give ``name``, ``ufunc`` and ``input_grads(grad, a, b, need_a, need_b)``;
    the gradients are summed back to each operand's shape here.
    """

    name: ClassVar[str] = ""
    ufunc: ClassVar[Callable[..., Any] | None] = None

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


class Mul(_SavesBoth):
    name, ufunc = "mul", staticmethod(np.multiply)

    @staticmethod
    def input_grads(grad, a, b, need_a, need_b):
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(_SavesBoth):
    name, ufunc = "div", staticmethod(np.true_divide)

    @staticmethod
    def input_grads(grad, a, b, need_a, need_b):
        grad_a = grad / b  # the quotient's gradient needs it too
        return grad_a, (-grad_a * a / b if need_b else None)


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        try:
            out = _broadcasting("pow", np.power, a, b)
        except ValueError as error:  # numpy's "Integers to negative integer powers ..."
            raise RuntimeError(f"pow: {error}") from None
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
        if out is x:
            out = x.copy()  # nothing to reduce (a 0-d tensor): still a new tensor
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

    reduce: ClassVar[Callable[..., Any] | None] = None
    name: ClassVar[str] = ""

    @classmethod
    def forward(cls, ctx, x, axis=None, keepdims=False):
        axes = _normalize_axes(axis, x.ndim, cls.name)
        if any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"{cls.name}: cannot reduce over an empty dim (shape {x.shape})")
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
        # in double, as the kernels do: float32 data far from zero keeps its precision
        wide = x.astype(np.float64, copy=False)
        centered = wide - np.mean(wide, axis=axes, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.asarray(
                sum_axes(centered * centered, axes)
                / np.float64(divisor),  # a fresh, C-ordered array
                x.dtype,
            )
        centered = centered.astype(x.dtype, copy=False)
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


class _NewShape(Function):
    """The input seen in another ``shape`` (a view where numpy can make one).

    Subclasses give ``change(x, shape)``, ``restore(grad, old_shape)`` and the
    ``refusal`` message for a shape that does not fit.
    """

    @classmethod
    def forward(cls, ctx, x, shape):
        ctx.shape = x.shape
        try:
            return cls.change(x, shape)
        except ValueError:
            raise ValueError(
                cls.refusal.format(shape=x.shape, size=x.size, new=tuple(shape))
            ) from None

    @classmethod
    def backward(cls, ctx, grad):
        return cls.restore(grad, ctx.shape)


class Reshape(_NewShape):
    change = staticmethod(np.reshape)
    restore = staticmethod(np.reshape)
    refusal = "reshape: cannot reshape a tensor of shape {shape} ({size} elements) into {new}"


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


def _elementwise(name, compute, input_grad, saves_output=True):
    """An :class:`_Elementwise` Function from its two formulas (one line each below)."""
    return type(
        name,
        (_Elementwise,),
        {
            "compute": staticmethod(compute),
            "input_grad": staticmethod(input_grad),
            "saves_output": saves_output,
            "__doc__": f"Element-wise {name.lower()}.",
        },
    )


def _kernel_or(kernel, fallback):
    """``kernel`` when its arrays are all float32 or all float64 (the kernels' dtypes), else
    ``fallback`` (numpy): integer relu keeps its dtype, mixed dtypes promote as numpy does."""

    def run(*arrays):
        dtype = arrays[0].dtype
        if dtype in FLOAT_DTYPES and all(a.dtype == dtype for a in arrays[1:]):
            return kernel(*arrays)
        return fallback(*arrays)

    return run


def _sigmoid(x):
    """1 / (1 + exp(-x)), torch's formula and order: where exp(-x) overflows to inf the
    result is exactly 0, as in torch (no NaN can come of it). Three in-place passes."""
    out = np.negative(x, out=np.empty_like(x))
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def _sign(x):
    out = np.sign(x)  # torch gives 0 for NaN, numpy NaN
    return np.where(np.isnan(out), 0, out).astype(out.dtype) if out.dtype.kind == "f" else out


_erf = np.frompyfunc(math.erf, 1, 1)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _no_gradient(grad, x):
    return np.zeros_like(grad)  # piecewise constant: PyTorch's gradient is zero too


# name, forward, backward from (grad, saved): the output where the derivative is a
# function of it (the input can then be freed), else the input (saves_output=False)
Exp = _elementwise("Exp", np.exp, lambda grad, out: grad * out)
Expm1 = _elementwise("Expm1", np.expm1, lambda grad, out: grad * (out + 1))
Sqrt = _elementwise("Sqrt", np.sqrt, lambda grad, out: grad / (2 * out))
Rsqrt = _elementwise(
    "Rsqrt", lambda x: 1 / np.sqrt(x), lambda grad, out: grad * (-0.5 * out * out * out)
)
# The forward stays numpy's: its SIMD exp and tanh beat the kernels' scalar libm calls
# (sigmoid of (128, 32, 28, 28) float32, one thread: 33 ms against 37, tanh 16 against
# 70). The backward kernels are one threaded pass in torch's order of operations, where
# numpy takes two or three (1.8 ms against 3.5-4.8 ms, one thread).
Tanh = _elementwise(
    "Tanh",
    np.tanh,
    _kernel_or(_ops.tanh_backward, lambda grad, out: grad * (1 - out * out)),
)
Sigmoid = _elementwise(
    "Sigmoid",
    _sigmoid,
    _kernel_or(_ops.sigmoid_backward, lambda grad, out: grad * (1 - out) * out),
)
# torch's relu keeps NaN and -0.0 (x < 0 ? 0 : x); its backward is threshold_backward,
# a select: 0 where the output is <= 0, even for an inf or NaN gradient
ReLU = _elementwise(
    "ReLU",
    _kernel_or(_ops.relu_forward, lambda x: np.where(x < 0, x.dtype.type(0), x)),
    _kernel_or(_ops.relu_backward, lambda grad, out: np.where(out <= 0, grad.dtype.type(0), grad)),
)
Log = _elementwise("Log", np.log, lambda grad, x: grad / x, saves_output=False)
Log2 = _elementwise(
    "Log2", np.log2, lambda grad, x: grad / (x * x.dtype.type(_LN2)), saves_output=False
)
Log10 = _elementwise(
    "Log10", np.log10, lambda grad, x: grad / (x * x.dtype.type(_LN10)), saves_output=False
)
Log1p = _elementwise("Log1p", np.log1p, lambda grad, x: grad / (1 + x), saves_output=False)
Abs = _elementwise("Abs", np.abs, lambda grad, x: grad * np.sign(x), saves_output=False)
Sin = _elementwise("Sin", np.sin, lambda grad, x: grad * np.cos(x), saves_output=False)
Cos = _elementwise("Cos", np.cos, lambda grad, x: -grad * np.sin(x), saves_output=False)
Erf = _elementwise(
    "Erf",
    lambda x: np.asarray(_erf(x), dtype=x.dtype),
    lambda grad, x: grad * (x.dtype.type(_TWO_OVER_SQRT_PI) * np.exp(-x * x)),
    saves_output=False,
)
Sign = _elementwise("Sign", _sign, _no_gradient, saves_output=False)
Floor = _elementwise("Floor", np.floor, _no_gradient, saves_output=False)
Ceil = _elementwise("Ceil", np.ceil, _no_gradient, saves_output=False)
Round = _elementwise("Round", np.round, _no_gradient, saves_output=False)  # half to even
Trunc = _elementwise("Trunc", np.trunc, _no_gradient, saves_output=False)
# the standard deviation's square root: zero gradient where the variance is zero, as torch
SqrtZeroSafe = _elementwise(
    "Sqrt",
    np.sqrt,
    lambda grad, out: np.where(out == 0, 0, grad / np.where(out == 0, 1, 2 * out)).astype(
        grad.dtype
    ),
)


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


class _Extreme2(_SavesBoth):
    """Element-wise maximum or minimum of two tensors; a tie splits the gradient in half."""

    loses: ClassVar[Callable[..., Any] | None] = None

    @classmethod
    def input_grads(cls, grad, a, b, need_a, need_b):
        # torch's rule: an operand gets the gradient unless it loses (so a NaN gets it)
        half = np.equal(a, b) * grad.dtype.type(0.5)
        return (
            grad * (1 - cls.loses(a, b) - half) if need_a else None,
            grad * (1 - cls.loses(b, a) - half) if need_b else None,
        )


class Maximum(_Extreme2):
    name, ufunc, loses = "maximum", staticmethod(np.maximum), staticmethod(np.less)


class Minimum(_Extreme2):
    name, ufunc, loses = "minimum", staticmethod(np.minimum), staticmethod(np.greater)


class Remainder(_SavesBoth):
    """``a % b`` with the sign of ``b`` (Python's and torch.remainder's rule)."""

    name, ufunc = "remainder", staticmethod(np.remainder)

    @classmethod
    def forward(cls, ctx, a, b):
        _integer_divisor("remainder", a, b)
        return super().forward(ctx, a, b)

    @staticmethod
    def input_grads(grad, a, b, need_a, need_b):
        return grad, (-grad * np.floor_divide(a, b) if need_b else None)


def _integer_divisor(name, a, b):
    """Refuse an integer division by zero (numpy would give 0), as Python and torch do."""
    if np.result_type(a, b).kind in "iub" and np.any(np.equal(b, 0)):
        raise ZeroDivisionError(f"{name}: integer division by zero")


class FloorDivide(Function):
    @staticmethod
    def forward(ctx, a, b):
        _integer_divisor("floor_divide", a, b)
        return _broadcasting("floor_divide", np.floor_divide, a, b)

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("derivative for floor_divide is not implemented (as in PyTorch)")


# ---------------------------------------------------------------- more reductions


class Prod(Function):
    """Product over one axis (or all): each input's gradient is the product of the others."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis = x.shape, axis
        ctx.save_for_backward(x)
        out = np.prod(x, axis=axis, keepdims=keepdims)
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if x.size == 0:
            return np.zeros(x.shape, dtype=grad.dtype)
        if ctx.axis is None:
            moved = x.reshape(1, -1)
            grad = np.reshape(grad, (1, 1))
        else:
            moved = np.moveaxis(x, ctx.axis, -1)
            grad = np.expand_dims(np.reshape(grad, moved.shape[:-1]), -1)
        # products of everything before and after each element: no division, zeros are fine
        ones = np.ones((*moved.shape[:-1], 1), dtype=x.dtype)
        before = np.cumprod(np.concatenate([ones, moved[..., :-1]], axis=-1), axis=-1)
        after = np.flip(
            np.cumprod(np.concatenate([ones, np.flip(moved, -1)[..., :-1]], axis=-1), axis=-1),
            -1,
        )
        dx = grad * before * after
        if ctx.axis is None:
            return dx.reshape(ctx.shape)
        return np.moveaxis(dx, -1, ctx.axis)


class Cumsum(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return np.cumsum(x, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        return np.flip(np.cumsum(np.flip(grad, ctx.axis), axis=ctx.axis), ctx.axis), None


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims=False):
        shift = np.max(x, axis=axis, keepdims=True) if x.size else np.zeros((), x.dtype)
        shift = np.where(np.isfinite(shift), shift, 0)
        kept = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
        ctx.save_for_backward(x, kept)
        ctx.shape_kept = kept.shape
        out = kept if keepdims else np.squeeze(kept, axis=axis)
        return np.asarray(out, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, kept = ctx.saved_tensors
        return np.reshape(grad, ctx.shape_kept) * np.exp(x - kept)


class NormP(Function):
    """``sum(|x|**p) ** (1/p)`` over axes; its gradient at a zero vector is zero (as torch)."""

    @staticmethod
    def forward(ctx, x, p, axis=None, keepdims=False):
        axes = _normalize_axes(axis, x.ndim, "norm")
        out = np.sum(np.abs(x) ** p, axis=axes, keepdims=True) ** (1.0 / p)
        ctx.save_for_backward(x, out)
        ctx.p = p
        shape = [n for i, n in enumerate(x.shape) if i not in axes]
        return np.asarray(out if keepdims else np.reshape(out, shape), dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        p = ctx.p
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(out == 0, 0, np.reshape(grad, out.shape) / out ** (p - 1))
        return (np.sign(x) * np.abs(x) ** (p - 1) * scale).astype(x.dtype), None


class Norm2(Function):
    """The Euclidean norm over axes; its gradient at a zero vector is zero (as PyTorch's)."""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        axes = _normalize_axes(axis, x.ndim, "norm")
        out = np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
        ctx.save_for_backward(x, out)
        return (
            out
            if keepdims
            else np.reshape(out, [n for i, n in enumerate(x.shape) if i not in axes])
        )

    @staticmethod
    def backward(ctx, grad):
        x, out = ctx.saved_tensors
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(out == 0, 0, np.reshape(grad, out.shape) / out)
        return x * scale.astype(x.dtype, copy=False)


# ---------------------------------------------------------------- gathers and scatters


def _grid(shape, axis, index):
    """Index arrays addressing, for every element of ``index``, its place along ``axis``."""
    grid = list(np.ix_(*[np.arange(n) for n in shape]))
    grid[axis] = index
    return tuple(grid)


class Gather(Function):
    """``out[i][j][k] = x[i][index[i][j][k]][k]`` along ``axis`` (torch.gather)."""

    @staticmethod
    def forward(ctx, x, axis, index):
        ctx.shape, ctx.axis, ctx.index = x.shape, axis, index
        return x[_grid(index.shape, axis, index)]

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        np.add.at(full, _grid(ctx.index.shape, ctx.axis, ctx.index), grad)
        return full, None, None


class Scatter(Function):
    """A copy of ``x`` with ``src`` written (or with ``add`` added) at ``index`` on ``axis``."""

    @staticmethod
    def forward(ctx, x, axis, index, src, add=False):
        where = _grid(index.shape, axis, index)
        ctx.where, ctx.add = where, add
        ctx.src_shape = np.shape(src)
        out = np.array(x, copy=True)
        values = src[tuple(slice(0, n) for n in index.shape)] if np.ndim(src) else src
        if add:
            np.add.at(out, where, values)
        else:
            out[where] = values
        return out

    @staticmethod
    def backward(ctx, grad):
        need_x, _, _, need_src = ctx.needs_input_grad
        dx = dsrc = None
        if need_x:
            dx = np.array(grad, copy=True)
            if not ctx.add:
                dx[ctx.where] = 0
        if need_src:
            dsrc = np.zeros(ctx.src_shape, dtype=grad.dtype)
            picked = grad[ctx.where]
            dsrc[tuple(slice(0, n) for n in picked.shape)] = picked
        return dx, None, None, dsrc


class IndexSelect(Function):
    @staticmethod
    def forward(ctx, x, axis, index):
        ctx.shape, ctx.axis, ctx.index = x.shape, axis, index
        return np.take(x, index, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        np.add.at(np.moveaxis(full, ctx.axis, 0), ctx.index, np.moveaxis(grad, ctx.axis, 0))
        return full, None, None


class IndexPut(Function):
    """A copy of ``x`` with ``value`` (broadcast) assigned at ``index``: ``x[index] = value``."""

    @staticmethod
    def forward(ctx, x, value, index):
        ctx.index, ctx.value_shape = index, np.shape(value)
        out = np.array(x, copy=True)
        out[index] = value
        return out

    @staticmethod
    def backward(ctx, grad):
        need_x, need_value = ctx.needs_input_grad[:2]
        dx = dvalue = None
        if need_x:
            dx = np.array(grad, copy=True)
            dx[ctx.index] = 0
        if need_value:
            dvalue = unbroadcast(np.asarray(grad[ctx.index]), ctx.value_shape)
        return dx, dvalue


# ---------------------------------------------------------------- more shape


class Expand(_NewShape):
    change = staticmethod(np.broadcast_to)
    restore = staticmethod(unbroadcast)
    refusal = (
        "expand: a tensor of shape {shape} cannot be expanded to {new} "
        "(only dims of size 1 can grow)"
    )


class Repeat(Function):
    """``np.tile``: the whole tensor repeated ``repeats[i]`` times along dim i (torch.repeat)."""

    @staticmethod
    def forward(ctx, x, repeats):
        shape = (1,) * (len(repeats) - x.ndim) + x.shape
        ctx.shape, ctx.grown, ctx.repeats = x.shape, shape, repeats
        return np.tile(np.reshape(x, shape), repeats)

    @staticmethod
    def backward(ctx, grad):
        split = []
        for count, n in zip(ctx.repeats, ctx.grown):
            split += [count, n]
        summed = np.reshape(grad, split).sum(axis=tuple(range(0, len(split), 2)))
        return np.reshape(summed, ctx.shape)


class Flip(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.flip(x, axes).copy()  # a copy, as torch.flip

    @staticmethod
    def backward(ctx, grad):
        return np.flip(grad, ctx.axes)


class Roll(Function):
    @staticmethod
    def forward(ctx, x, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return np.roll(x, shifts, axes)

    @staticmethod
    def backward(ctx, grad):
        back = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return np.roll(grad, back, ctx.axes)


class Triangle(Function):
    """``np.tril`` or ``np.triu`` of the last two axes; the gradient is masked the same way."""

    @staticmethod
    def forward(ctx, x, upper, diagonal):
        ctx.upper, ctx.diagonal = upper, diagonal
        return (np.triu if upper else np.tril)(x, diagonal)

    @staticmethod
    def backward(ctx, grad):
        return (np.triu if ctx.upper else np.tril)(grad, ctx.diagonal)


class Einsum(Function):
    """``np.einsum`` for explicit subscripts without repeated letters in one operand."""

    @staticmethod
    def forward(ctx, *operands, inputs, output):
        ctx.inputs_subscripts, ctx.output = inputs, output
        ctx.shapes = [np.shape(op) for op in operands]
        ctx.save_for_backward(*operands)
        return np.einsum(",".join(inputs) + "->" + output, *operands)

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved_tensors
        grads = []
        for i, letters in enumerate(ctx.inputs_subscripts):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [
                (s, op) for j, (s, op) in enumerate(zip(ctx.inputs_subscripts, operands)) if j != i
            ]
            known = set(ctx.output).union(*[set(s) for s, _ in others])
            present = "".join(c for c in letters if c in known)
            spec = ",".join([ctx.output] + [s for s, _ in others]) + "->" + present
            partial = np.einsum(spec, grad, *[op for _, op in others])
            # letters summed away in this operand alone come back by broadcasting, and
            # dims this operand had as 1 (broadcast against the others) are summed back
            sizes = dict(zip(present, partial.shape))
            shape = [sizes.get(c, 1) for c in letters]
            full = [sizes.get(c, ctx.shapes[i][k]) for k, c in enumerate(letters)]
            partial = np.broadcast_to(np.reshape(partial, shape), full)
            grads.append(np.array(unbroadcast(partial, ctx.shapes[i]), copy=True))
        return tuple(grads)


class Clone(Function):
    """A copy in the same layout, or with ``order="C"`` a C-contiguous one."""

    @staticmethod
    def forward(ctx, x, order="K"):
        return np.array(x, copy=True, order=order)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Fill(Function):
    """``value`` broadcast to ``shape`` in ``x``'s dtype: what ``fill_``/``copy_`` write."""

    @staticmethod
    def forward(ctx, x, value, shape):
        ctx.value_shape = np.shape(value)
        try:
            return np.array(np.broadcast_to(value, shape), dtype=x.dtype)
        except ValueError:
            raise RuntimeError(
                f"copy_: the source of shape {np.shape(value)} cannot be broadcast to {shape}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        need_x, need_value = ctx.needs_input_grad
        return (
            np.zeros_like(grad) if need_x else None,
            unbroadcast(grad, ctx.value_shape) if need_value else None,
        )


def _logsumexp(x, axis):
    """log(sum(exp(x))) over ``axis``, kept as a size-1 axis; the kernel for rows."""
    if x.ndim == 2 and axis == 1 and x.shape[1]:
        return _ops.logsumexp_rows(x)[:, None]
    shift = np.max(x, axis=axis, keepdims=True) if x.size else np.zeros((), x.dtype)
    shift = np.where(np.isfinite(shift), shift, 0)
    return np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift


class _NormalizedExp(Function):
    """Softmax-like functions along one axis, computed from the log-sum-exp; saves the output."""

    @classmethod
    def forward(cls, ctx, x, dim=-1):
        ctx.axis = dim % x.ndim
        out = cls.compute(x, _logsumexp(x, ctx.axis))
        ctx.save_for_backward(out)
        return out

    @classmethod
    def backward(cls, ctx, grad):
        (out,) = ctx.saved_tensors
        return cls.input_grad(grad, out, ctx.axis)


class LogSoftmax(_NormalizedExp):
    @staticmethod
    def compute(x, logsumexp):
        return x - logsumexp.astype(x.dtype, copy=False)

    @staticmethod
    def input_grad(grad, out, axis):
        return grad - np.exp(out) * grad.sum(axis=axis, keepdims=True)


class Softmax(_NormalizedExp):
    @staticmethod
    def compute(x, logsumexp):
        return np.exp(x - logsumexp).astype(x.dtype, copy=False)

    @staticmethod
    def input_grad(grad, out, axis):
        return out * (grad - (grad * out).sum(axis=axis, keepdims=True))
