"""``Tensor``, a numpy array with a gradient and a record of its making, and its factories.

Every operation is a method in ``Tensor``'s class body; the module-level functions
(``minidl.exp``, ``minidl.cat`` ...) are the same operations under torch's names.
Dtypes follow PyTorch's rules (``minidl/_dtypes.py``). Note that this module
defines ``sum``, ``max``, ``min``, ``abs``, ``pow`` and ``round`` at module level:
code here that needs Python's builtins spells them ``builtins.sum`` etc.
"""

from __future__ import annotations

import builtins
import collections
import functools
import math
import numbers
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from . import _checks, _dtypes
from . import _functions as _F
from . import autograd as _autograd
from . import random as _random
from ._dtypes import get_default_dtype

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike, NDArray

    # what the operators and factories take: a tensor, or anything numpy makes an array of
    _TensorLike = Union["Tensor", ArrayLike]

_FLOAT_DTYPES = _dtypes.FLOAT_DTYPES

# what torch.max(dim=...), sort and topk return: values and indices, by name or position
max_result = collections.namedtuple("max", ["values", "indices"])  # type: ignore[name-match]
min_result = collections.namedtuple("min", ["values", "indices"])  # type: ignore[name-match]
sort_result = collections.namedtuple("sort", ["values", "indices"])  # type: ignore[name-match]
topk_result = collections.namedtuple("topk", ["values", "indices"])  # type: ignore[name-match]


class device:
    """A device; minidl computes on the CPU only, so ``device("cpu")`` is the one there is.

    >>> minidl.device("cpu")
    device(type='cpu')
    """

    type: str

    def __init__(self, type: str | device = "cpu") -> None:
        name = type.type if isinstance(type, device) else type
        if not isinstance(name, str) or name.split(":")[0] != "cpu":
            raise RuntimeError(f"device: minidl computes on the CPU only; got {type!r} (use 'cpu')")
        self.type = "cpu"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (device, str)) and str(other).split(":")[0] == "cpu"

    def __hash__(self) -> int:
        return hash("cpu")

    def __repr__(self) -> str:
        return "device(type='cpu')"

    def __str__(self) -> str:
        return "cpu"


_NO_CUDA = (
    "{}: minidl computes on the CPU only (no CUDA); choose the device as torch code does, "
    '"cuda" if minidl.cuda.is_available() else "cpu", which gives "cpu"'
)


def _to_dtype(where, args, dtype, target):
    """The dtype asked of ``to(*args, dtype=, device=)`` (None: unchanged), after checking
    that every device named is the CPU. The positional forms are torch's: a dtype, a
    device, a device then a dtype, or a tensor (its dtype)."""
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, (str, device)) and not _is_dtype_name(arg):
            target = arg
        else:
            dtype = arg
    if target is not None:
        _check_cpu(where, target)
    return dtype


def _check_cpu(where, target):
    """Refuse a ``target`` device that is not the CPU (or not a device), naming ``where``."""
    if not isinstance(target, (str, device)):
        raise TypeError(
            f"{where}: expected a device ('cpu' or minidl.device), got {type(target).__name__}"
        )
    try:
        device(target)
    except RuntimeError:
        raise RuntimeError(
            f"{where}: minidl computes on the CPU only; got device {target!r} (use 'cpu')"
        ) from None


def _check_dtype(dtype, where):
    """Refuse dtypes minidl does not compute in, naming ``where`` the array came from."""
    if dtype.kind in "biu" or dtype in _FLOAT_DTYPES:
        return
    if dtype.kind == "f":
        raise TypeError(
            f"{where}: minidl computes in float32 or float64, got {dtype}; "
            "convert first, e.g. with .astype(np.float32)"
        )
    raise TypeError(
        f"{where}: expected numbers (float, integer or bool), got an array of dtype {dtype}"
    )


def _as_dtype(dtype):
    return None if dtype is None else np.dtype(dtype)


def _dims(dim, axis, where):
    """``dim`` under torch's name or numpy's ``axis`` (not both); an empty list means all."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{where}: give dim or axis, not both")
        dim = axis
    if isinstance(dim, (tuple, list)) and not dim:
        return None  # torch reduces over every dim for dim=()
    return dim


def _keep(keepdim, keepdims):
    return bool(keepdim if keepdims is None else keepdims)


def _int_list(values, where, name):
    """``values`` (ints, or one sequence of ints) as a tuple of Python ints."""
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        values = values[0]
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{where}: expected {name} as ints, got {values!r}")
    return tuple(int(v) for v in values)


@_autograd.result_type
class Tensor:
    """An n-dimensional array that can record operations and compute gradients.

    ``data`` is the numpy array; ``grad`` is None until a backward pass reaches
    this tensor, then a Tensor of the same shape (gradients accumulate, as in
    PyTorch, until you reset them). Build tensors with :func:`minidl.tensor` and
    the other factories rather than with this constructor.

    >>> x = minidl.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    tensor([[2., 4.],
            [6., 8.]])
    """

    __array_priority__ = 1000  # numpy defers to Tensor's reflected operators
    __hash__ = object.__hash__  # == is element-wise, so the default hash must be kept

    def __init__(self, *data: Any, requires_grad: bool = False) -> None:
        # torch.Tensor's legacy constructor: Tensor(2, 3) is a (2, 3) tensor of the default
        # float dtype (zeros here, not uninitialized memory); Tensor([1, 2]) and
        # Tensor(array) hold the values in the default float dtype; Tensor(tensor) shares
        if len(data) == 1 and isinstance(data[0], Tensor):
            array = data[0]._data
        elif data and builtins.all(_is_int(n) for n in data):
            array = np.zeros(tuple(int(n) for n in data), dtype=get_default_dtype())
        elif len(data) == 1:
            try:
                array = np.array(_plain(data[0]), dtype=get_default_dtype())
            except (TypeError, ValueError) as error:
                message = f"Tensor: cannot make a float tensor from the data ({error})"
                raise TypeError(message) from None
        elif not data:
            array = np.zeros((0,), dtype=get_default_dtype())
        else:
            raise TypeError(
                f"Tensor: expected sizes (ints) or one sequence of numbers, got {data!r:.80}"
            )
        self._init(array, requires_grad)

    def _init(self, array, requires_grad=False):
        _check_dtype(array.dtype, type(self).__name__)
        self._data = array
        self._grad = None
        self._ctx = None
        self._requires_grad = False
        self._version_box = [0]  # shared with the views of this tensor
        self._base = None  # the tensor this one is a view of
        self._hooks = None
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _of(cls, array, requires_grad=False):
        """A tensor around a numpy ``array``, keeping its dtype (checked)."""
        tensor = cls.__new__(cls)
        Tensor._init(tensor, np.asarray(array), requires_grad)
        return tensor

    @classmethod
    def _wrap(cls, array):
        """A tensor around ``array`` with no checks: for results the framework made."""
        tensor = cls.__new__(cls)
        tensor._data = array if type(array) is np.ndarray else np.asarray(array)
        tensor._grad = None
        tensor._ctx = None
        tensor._requires_grad = False
        tensor._version_box = [0]
        tensor._base = None
        tensor._hooks = None
        return tensor

    # ------------------------------------------------------------------ data and grad
    @property
    def data(self) -> Tensor:
        """This tensor's values as a tensor outside of autograd, as in PyTorch.

        It shares the memory but not the graph or the version counter: changes made
        through it are invisible to autograd (``p.data -= lr * p.grad``). Assigning
        it takes a Tensor or array of the same shape and keeps this tensor's dtype.
        ``numpy()`` gives the numpy array itself.

        >>> w = minidl.ones(2, requires_grad=True)
        >>> w.data.mul_(3)
        tensor([3., 3.])
        >>> w
        tensor([3., 3.], requires_grad=True)
        """
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value: _TensorLike) -> None:
        array = value._data if isinstance(value, Tensor) else np.asarray(value)
        if array.shape != self._data.shape:
            raise RuntimeError(
                f"data: assigned data of shape {array.shape} to a tensor of shape "
                f"{self._data.shape}; the shapes must match"
            )
        self._data = np.asarray(array, dtype=self._data.dtype)

    @property
    def grad(self) -> Tensor | None:
        """The accumulated gradient (a Tensor of this shape), or None before any backward."""
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | ArrayLike | None) -> None:
        if value is None:
            self._grad = None
            return
        array = value._data if isinstance(value, Tensor) else value
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"grad: expected a Tensor, an array or None, got {type(value).__name__}"
            )
        if array.shape != self._data.shape:
            raise RuntimeError(
                f"assigned grad has data of a different size: {array.shape}, the tensor has "
                f"shape {self._data.shape}"
            )
        if array.dtype != self._data.dtype:
            raise RuntimeError(
                f"assigned grad has data of a different type: {array.dtype}, the tensor is "
                f"{self._data.dtype}"
            )
        self._grad = (
            value
            if isinstance(value, Tensor) and value.dtype == array.dtype
            else (Tensor._wrap(array))
        )

    @property
    def _version(self):
        """How many times this tensor (or a view of it) was changed in place."""
        return self._version_box[0]

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, a tuple of ints."""
        return self._data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype[Any]:
        """The numpy dtype of the data."""
        return self._data.dtype

    @property
    def device(self) -> device:
        """Always ``device('cpu')``."""
        return device("cpu")

    def size(self, dim: int | Sequence[int] | None = None) -> Any:
        """The shape (a tuple), or with ``dim`` the length of that dim, as ``torch.Tensor.size``.

        >>> x = minidl.zeros(2, 3)
        >>> x.size(), x.size(-1)
        ((2, 3), 3)
        """
        if dim is None:
            return self._data.shape
        return self._data.shape[_F._normalize_axes(dim, self.ndim, "size")[0]]

    def dim(self) -> int:
        """The number of dimensions.

        >>> minidl.zeros(2, 3).dim()
        2
        """
        return self._data.ndim

    def numel(self) -> int:
        """The number of elements.

        >>> minidl.zeros(2, 3).numel()
        6
        """
        return self._data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors the user made (not results of recorded operations)."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Any:
        """The record of the operation that made this tensor, or None for a leaf."""
        return self._ctx

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set whether gradients are computed for this leaf tensor; returns self."""
        if requires_grad and self._data.dtype not in _FLOAT_DTYPES:
            raise TypeError(
                f"requires_grad: only float32 and float64 tensors can require gradients, "
                f"this one is {self.data.dtype}"
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use "
                "a computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def requires_grad(self) -> bool:
        """Whether gradients are computed for this tensor (settable on leaves, as in torch)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if bool(value) != self._requires_grad:
            self.requires_grad_(bool(value))

    def retain_grad(self) -> Tensor:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError(
                "retain_grad: can't retain_grad on a Tensor that has requires_grad=False"
            )
        if self._ctx is not None:
            self._ctx._retained = weakref.ref(self)
        return self

    def register_hook(self, hook: Callable[..., Any]) -> _autograd.HookHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a return value replaces it.

        >>> w = minidl.ones(2, requires_grad=True)
        >>> _ = w.register_hook(lambda g: g * 10)
        >>> (w * w).sum().backward()
        >>> w.grad
        tensor([20., 20.])
        """
        if not self._requires_grad:
            raise RuntimeError(
                "register_hook: cannot register a hook on a tensor that doesn't require gradient"
            )
        owner = self._ctx if self._ctx is not None else self
        if owner._hooks is None:
            owner._hooks = []
        owner._hooks.append(hook)
        return _autograd.HookHandle(owner._hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[..., Any]) -> _autograd.HookHandle:
        """Call ``hook(tensor)`` once this leaf's ``.grad`` holds its gradient from a backward.

        As torch's: leaves only; the hook sees the tensor (its ``.grad`` complete for
        this backward) and returns nothing. It runs as soon as the last operation
        that feeds the leaf has run, before the rest of the backward, which is where
        :class:`~minidl.nn.parallel.DistributedDataParallel` starts reducing.

        >>> w = minidl.ones(2, requires_grad=True)
        >>> seen = []
        >>> _ = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
        >>> (w * 3).sum().backward()
        >>> seen
        [[3.0, 3.0]]
        """
        if self._ctx is not None:
            raise RuntimeError(
                "register_post_accumulate_grad_hook: post accumulate grad hooks cannot be "
                "registered on non-leaf tensors"
            )
        if not self._requires_grad:
            raise RuntimeError(
                "register_post_accumulate_grad_hook: cannot register a hook on a tensor that "
                "doesn't require gradient"
            )
        hooks: list[Callable[..., Any]] | None = getattr(self, "_post_accumulate_hooks", None)
        if hooks is None:
            hooks = []
            self._post_accumulate_hooks = hooks
        hooks.append(hook)
        _autograd._post_accumulate_hooks[0] += 1
        return _autograd.HookHandle(hooks, hook, _autograd._post_accumulate_hooks)

    # ------------------------------------------------------------------ conversions
    def numpy(self) -> NDArray[Any]:
        """The data as a numpy array (shared, not copied).

        >>> minidl.ones(2).numpy()
        array([1., 1.], dtype=float32)
        """
        return self._data

    def item(self) -> int | float | bool:
        """The value of a one-element tensor as a Python number.

        >>> minidl.tensor([2.5]).item()
        2.5
        """
        if self._data.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted to a Python number, "
                f"this one has shape {self.shape}"
            )
        return self._data.item()

    def tolist(self) -> Any:
        """The data as nested Python lists.

        >>> minidl.arange(3).tolist()
        [0, 1, 2]
        """
        return self._data.tolist()

    def detach(self) -> Tensor:
        """A tensor sharing this data (and its version counter), cut from the graph.

        >>> minidl.ones(2, requires_grad=True).detach().requires_grad
        False
        """
        out = Tensor._wrap(self._data)
        out._version_box = self._version_box
        return out

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place (it becomes a leaf that does not require grad).

        >>> y = minidl.ones(2, requires_grad=True) * 2
        >>> y.detach_().requires_grad
        False
        """
        self._ctx = None
        self._requires_grad = False
        return self

    def clone(self) -> Tensor:
        """A copy with its own memory; gradients flow back to this tensor.

        >>> x = minidl.ones(2)
        >>> y = x.clone()
        >>> y += 1
        >>> x
        tensor([1., 1.])
        """
        return _F.Clone.apply(self)

    def contiguous(self) -> Tensor:
        """This tensor with C-contiguous data (itself when it already is).

        >>> minidl.zeros(2, 3).T.contiguous().numpy().flags.c_contiguous
        True
        """
        return self if self._data.flags.c_contiguous else _F.Clone.apply(self, order="C")

    def to(
        self,
        *args: Any,
        dtype: DTypeLike | None = None,
        device: Any = None,
        non_blocking: bool = False,
        copy: bool = False,
    ) -> Tensor:
        """This tensor converted to a dtype and/or moved to a device (only 'cpu' exists).

        ``to(minidl.float64)``, ``to("cpu")``, ``to("cpu", minidl.float64)``,
        ``to(device="cpu", dtype=...)``, ``to(other_tensor)`` (its dtype).
        ``non_blocking`` is accepted (there is no copy to overlap). Returns ``self``
        when nothing changes.

        >>> minidl.ones(2).to(minidl.float64).dtype
        dtype('float64')
        >>> minidl.ones(2).to("cpu").device
        device(type='cpu')
        """
        dtype = _to_dtype("Tensor.to", args, dtype, device)
        out = self if dtype is None else self.astype(dtype)
        return out.clone() if copy and out is self else out

    def cuda(self, device: Any = None, non_blocking: bool = False) -> Tensor:
        """Refused: minidl computes on the CPU only (``minidl.cuda.is_available()`` is False).

        >>> minidl.ones(1).cuda()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        RuntimeError: Tensor.cuda: minidl computes on the CPU only (no CUDA); ...
        """
        raise RuntimeError(_NO_CUDA.format("Tensor.cuda"))

    def cpu(self) -> Tensor:
        """This tensor (minidl computes on the CPU).

        >>> minidl.ones(1).cpu()
        tensor([1.])
        """
        return self

    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> NDArray[Any]:
        if copy:
            return np.array(self._data, dtype=dtype, copy=True)
        return self._data if dtype is None else self._data.astype(dtype, copy=False)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self._data.size} elements is ambiguous"
            )
        return bool(self._data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __format__(self, spec: Any) -> str:
        if spec and self._data.size == 1:
            return format(self._data.item(), spec)
        return format(repr(self), spec)

    def __index__(self) -> int:
        if self._data.size != 1 or self._data.dtype.kind not in "iu":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self._data.item())

    def __repr__(self) -> str:
        prefix = "tensor("
        body = np.array2string(self._data, separator=", ", prefix=prefix)
        extras = []
        kind = self._data.dtype.kind
        if (kind == "f" and self._data.dtype != get_default_dtype()) or (
            kind != "f" and self._data.dtype != np.int64
        ):
            extras.append(f"dtype={self._data.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.function.__name__}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return prefix + body + "".join(", " + e for e in extras) + ")"

    # ------------------------------------------------------------------ autograd
    def backward(
        self,
        gradient: _TensorLike | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        *,
        grad: Any = None,
    ) -> None:
        """Compute the gradients of this tensor with respect to the leaves of its graph.

        A one-element tensor (a loss) needs no ``gradient``; any other needs one, an
        array or Tensor of its shape (the vector of the vector-Jacobian product;
        ``grad=`` is accepted as another name). Gradients are added to each leaf's
        ``.grad``. The values the graph saved are freed afterwards unless
        ``retain_graph=True``. ``create_graph=True`` (higher order) is not supported.

        >>> w = minidl.tensor([1.0, -2.0], requires_grad=True)
        >>> (w * w).sum().backward()
        >>> w.grad
        tensor([ 2., -4.])
        """
        if create_graph:
            raise NotImplementedError(
                "backward: create_graph=True (differentiable gradients, for higher-order "
                "derivatives) is not supported by minidl"
            )
        gradient = grad if gradient is None else gradient
        _autograd.backward(self, gradient, retain_graph=bool(retain_graph))

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (sets ``.grad`` to None)."""
        self._grad = None

    # ------------------------------------------------------------------ arithmetic
    # Operands broadcast as in numpy and promote as in torch; each gradient is summed
    # back to its input's shape and comes back in its input's dtype.
    def __add__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Add, self, other)

    def __radd__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Add, other, self)

    def __sub__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Sub, self, other)

    def __rsub__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Sub, other, self)

    def __mul__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Mul, self, other)

    def __rmul__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Mul, other, self)

    def __truediv__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Div, self, other, floats=True)

    def __rtruediv__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Div, other, self, floats=True)

    def __floordiv__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.FloorDivide, self, other)

    def __rfloordiv__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.FloorDivide, other, self)

    def __mod__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Remainder, self, other)

    def __rmod__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Remainder, other, self)

    def __pow__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Pow, self, other)

    def __rpow__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.Pow, other, self)

    def __matmul__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.MatMul, self, other)

    def __rmatmul__(self, other: _TensorLike) -> Tensor:
        return _binary(_F.MatMul, other, self)

    def __neg__(self) -> Tensor:
        """``-x``.

        >>> -minidl.ones(2)
        tensor([-1., -1.])
        """
        if self.dtype == np.bool_:
            raise RuntimeError(
                "Negation, the `-` operator, on a bool tensor is not supported. If you are "
                "trying to invert a mask, use the `~` or `logical_not()` operator instead."
            )
        return _F.Neg.apply(self)

    def __abs__(self) -> Tensor:
        return _F.Abs.apply(self)

    def add(self, other: _TensorLike) -> Tensor:
        """``self + other``, as ``torch.add``.

        >>> minidl.ones(2).add(1)
        tensor([2., 2.])
        """
        return _binary(_F.Add, self, other)

    def sub(self, other: _TensorLike) -> Tensor:
        """``self - other``, as ``torch.sub``.

        >>> minidl.ones(2).sub(1)
        tensor([0., 0.])
        """
        return _binary(_F.Sub, self, other)

    def mul(self, other: _TensorLike) -> Tensor:
        """``self * other``, as ``torch.mul``.

        >>> minidl.ones(2).mul(3)
        tensor([3., 3.])
        """
        return _binary(_F.Mul, self, other)

    def div(self, other: _TensorLike) -> Tensor:
        """``self / other`` (true division; integers give the default float dtype).

        >>> minidl.tensor([3, 4]).div(2)
        tensor([1.5, 2. ])
        """
        return _binary(_F.Div, self, other, floats=True)

    def pow(self, exponent: _TensorLike) -> Tensor:
        """``self ** exponent``; the exponent may be a number or a tensor (both get gradients).

        >>> minidl.tensor([2.0, 3.0]).pow(minidl.tensor([2.0, 1.0]))
        tensor([4., 3.])
        """
        return _binary(_F.Pow, self, exponent)

    def matmul(self, other: _TensorLike) -> Tensor:
        """Matrix product with numpy's broadcasting rules (``self @ other``).

        >>> minidl.ones(2, 3).matmul(minidl.ones(3)).shape
        (2,)
        """
        return _binary(_F.MatMul, self, other)

    def maximum(self, other: _TensorLike) -> Tensor:
        """Element-wise larger of two tensors; a tie splits the gradient in half.

        >>> minidl.tensor([1.0, 5.0]).maximum(minidl.tensor([3.0, 2.0]))
        tensor([3., 5.])
        """
        return _binary(_F.Maximum, self, other)

    def minimum(self, other: _TensorLike) -> Tensor:
        """Element-wise smaller of two tensors; a tie splits the gradient in half.

        >>> minidl.tensor([1.0, 5.0]).minimum(minidl.tensor([3.0, 2.0]))
        tensor([1., 2.])
        """
        return _binary(_F.Minimum, self, other)

    def outer(self, other: _TensorLike) -> Tensor:
        """The outer product of two 1-d tensors: (n,) and (m,) -> (n, m).

        >>> minidl.ones(2).outer(minidl.arange(3.0)).shape
        (2, 3)
        """
        if self.ndim != 1 or _shape(other) is None or len(_shape(other)) != 1:
            raise ValueError(
                f"outer: expected two 1-d tensors, got shapes {self.shape} and {_shape(other)}"
            )
        return self.reshape(-1, 1) * _operand(other).reshape(1, -1)

    # ------------------------------------------------------------------ in place
    # PyTorch's rules: a leaf that requires grad cannot be changed in place while grad
    # mode is on; under no_grad the array is updated where it is. Every change bumps the
    # version counter, which backward checks for the tensors it saved.
    def __iadd__(self, other: _TensorLike) -> Tensor:
        return self._in_place(_F.Add, other)

    def __isub__(self, other: _TensorLike) -> Tensor:
        return self._in_place(_F.Sub, other)

    def __imul__(self, other: _TensorLike) -> Tensor:
        return self._in_place(_F.Mul, other)

    def __itruediv__(self, other: _TensorLike) -> Tensor:
        return self._in_place(_F.Div, other, floats=True)

    def __ipow__(self, other: _TensorLike) -> Tensor:
        return self._in_place(_F.Pow, other)

    def __ifloordiv__(self, other: _TensorLike) -> Tensor:
        return self._in_place(_F.FloorDivide, other)

    def __imod__(self, other: _TensorLike) -> Tensor:
        return self._in_place(_F.Remainder, other)

    def __iand__(self, other: _TensorLike) -> Tensor:
        return self._assign(self._bitwise(np.bitwise_and, other))

    def __ior__(self, other: _TensorLike) -> Tensor:
        return self._assign(self._bitwise(np.bitwise_or, other))

    def __ixor__(self, other: _TensorLike) -> Tensor:
        return self._assign(self._bitwise(np.bitwise_xor, other))

    def pow_(self, exponent: _TensorLike) -> Tensor:
        """In-place ``self **= exponent``; returns self.

        >>> minidl.tensor([2.0, 3.0]).pow_(2)
        tensor([4., 9.])
        """
        return self._in_place(_F.Pow, exponent)

    def neg_(self) -> Tensor:
        """In-place negation; returns self.

        >>> minidl.ones(2).neg_()
        tensor([-1., -1.])
        """
        return self._in_place(_F.Neg)

    def exp_(self) -> Tensor:
        """In-place :meth:`exp`; returns self.

        >>> minidl.zeros(1).exp_()
        tensor([1.])
        """
        return self._in_place(_F.Exp)

    def log_(self) -> Tensor:
        """In-place :meth:`log`; returns self.

        >>> minidl.ones(1).log_()
        tensor([0.])
        """
        return self._in_place(_F.Log)

    def sqrt_(self) -> Tensor:
        """In-place :meth:`sqrt`; returns self.

        >>> minidl.tensor([4.0]).sqrt_()
        tensor([2.])
        """
        return self._in_place(_F.Sqrt)

    def abs_(self) -> Tensor:
        """In-place :meth:`abs`; returns self.

        >>> minidl.tensor([-2.0]).abs_()
        tensor([2.])
        """
        return self._in_place(_F.Abs)

    def relu_(self) -> Tensor:
        """In-place :meth:`relu`; returns self.

        >>> minidl.tensor([-2.0, 1.0]).relu_()
        tensor([0., 1.])
        """
        return self._in_place(_F.ReLU)

    def sigmoid_(self) -> Tensor:
        """In-place :meth:`sigmoid`; returns self.

        >>> minidl.zeros(1).sigmoid_()
        tensor([0.5])
        """
        return self._in_place(_F.Sigmoid)

    def tanh_(self) -> Tensor:
        """In-place :meth:`tanh`; returns self.

        >>> minidl.zeros(1).tanh_()
        tensor([0.])
        """
        return self._in_place(_F.Tanh)

    def masked_fill_(self, mask: _TensorLike, value: _TensorLike) -> Tensor:
        """In-place :meth:`masked_fill`; returns self.

        >>> minidl.ones(2).masked_fill_(minidl.tensor([True, False]), 0.0)
        tensor([0., 1.])
        """
        mask = np.asarray(_plain(mask))
        if mask.dtype != np.bool_:
            raise TypeError(f"masked_fill_: expected a bool mask, got dtype {mask.dtype}")
        index = np.broadcast_to(mask, self.shape) if mask.shape != self.shape else mask
        return self._in_place(_F.IndexPut, _fill_value(value, self.dtype), index=index.copy())

    def scatter_(
        self,
        dim: int,
        index: _TensorLike,
        src: _TensorLike | None = None,
        *,
        value: _TensorLike | None = None,
    ) -> Tensor:
        """In-place :meth:`scatter`; returns self.

        >>> minidl.zeros(3).scatter_(0, minidl.tensor([1]), 5.0)
        tensor([0., 5., 0.])
        """
        return self._assign(self.scatter(dim, index, src, value=value))

    def scatter_add_(self, dim: int, index: Tensor, src: _TensorLike) -> Tensor:
        """In-place :meth:`scatter_add`; returns self.

        >>> minidl.zeros(3).scatter_add_(0, minidl.tensor([1, 1]), minidl.ones(2))
        tensor([0., 2., 0.])
        """
        return self._assign(self.scatter_add(dim, index, src))

    def _assign(self, result):
        """Make ``result`` (computed from self) this tensor's new value, in place."""
        recording = _autograd.is_grad_enabled() and result._requires_grad
        if recording and self._ctx is None and self._requires_grad:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation."
            )
        _check_in_place_result(self, result)
        np.copyto(self._data, result._data, casting="unsafe")
        self._version_box[0] += 1
        if recording:
            self._ctx, self._requires_grad = result._ctx, True
        return self

    def add_(self, other: _TensorLike) -> Tensor:
        """In-place ``self += other``; returns self.

        >>> x = minidl.zeros(2)
        >>> x.add_(1)
        tensor([1., 1.])
        """
        return self._in_place(_F.Add, other)

    def sub_(self, other: _TensorLike) -> Tensor:
        """In-place ``self -= other``; returns self.

        >>> minidl.ones(2).sub_(1)
        tensor([0., 0.])
        """
        return self._in_place(_F.Sub, other)

    def mul_(self, other: _TensorLike) -> Tensor:
        """In-place ``self *= other``; returns self.

        >>> minidl.ones(2).mul_(3)
        tensor([3., 3.])
        """
        return self._in_place(_F.Mul, other)

    def div_(self, other: _TensorLike) -> Tensor:
        """In-place ``self /= other``; returns self.

        >>> minidl.ones(2).div_(4)
        tensor([0.25, 0.25])
        """
        return self._in_place(_F.Div, other, floats=True)

    def clamp_(self, min: _TensorLike | None = None, max: _TensorLike | None = None) -> Tensor:
        """In-place :meth:`clamp`; returns self.

        >>> minidl.tensor([-1.0, 2.0]).clamp_(min=0.0)
        tensor([0., 2.])
        """
        _clamp_bounds(min, max, "clamp_")
        return self._in_place(_F.Clip, min=min, max=max)

    def zero_(self) -> Tensor:
        """Fill with zeros in place; returns self.

        >>> minidl.ones(2).zero_()
        tensor([0., 0.])
        """
        return self.fill_(0)

    def fill_(self, value: _TensorLike) -> Tensor:
        """Fill with ``value`` in place; returns self.

        >>> minidl.zeros(2).fill_(7)
        tensor([7., 7.])
        """
        return self._in_place(_F.Fill, value, shape=self.shape)

    def copy_(self, src: _TensorLike) -> Tensor:
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor.

        >>> x = minidl.zeros(2, 2)
        >>> x.copy_(minidl.tensor([1.0, 2.0]))
        tensor([[1., 2.],
                [1., 2.]])
        """
        return self._in_place(_F.Fill, src, shape=self.shape)

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        """Fill with samples from N(mean, std**2) drawn from minidl's generator; returns self.

        >>> minidl.zeros(3).normal_().shape
        (3,)
        """
        if not std >= 0:
            raise RuntimeError(f"normal_: expects std >= 0.0, got std={std}")
        values = _random.generator().normal(mean, std, self.shape)
        return self._in_place(_F.Fill, values.astype(self.dtype), shape=self.shape)

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        """Fill with samples uniform on [a, b) drawn from minidl's generator; returns self.

        >>> bool(((minidl.zeros(100).uniform_(2, 3)) >= 2).all())
        True
        """
        if not a <= b:
            raise RuntimeError(f"uniform_: expects a <= b, got a={a}, b={b}")
        values = _random.generator().uniform(a, b, self.shape)
        return self._in_place(_F.Fill, values.astype(self.dtype), shape=self.shape)

    def _in_place(self, function, *operands, floats=False, **options):
        """Apply ``function`` to (self, *operands) and write the result into self."""
        tensors = [o for o in operands if isinstance(o, Tensor)]
        recording = _autograd.is_grad_enabled() and (
            self._requires_grad or builtins.any(t._requires_grad for t in tensors)
        )
        if not self._data.flags.writeable:
            raise RuntimeError(
                "unsupported operation: more than one element of the written-to tensor refers "
                "to a single memory location (an expand() result, or read-only memory). "
                "Please clone() the tensor before performing the operation."
            )
        if recording and self._ctx is None and self._requires_grad:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation. "
                "(Update parameters under `with minidl.no_grad():`.)"
            )
        view_index = getattr(self, "_view_index", None)
        if recording and self._base is not None and view_index is None:
            raise RuntimeError(
                "in-place operation on a view (from reshape, permute, ...) of another tensor "
                "while recording a graph: minidl does not support it; apply it to the base "
                "tensor, or to an indexed part of it (base[index] += value)"
            )
        before = Tensor._wrap(self._data)
        before._ctx, before._requires_grad = self._ctx, self._requires_grad
        before._version_box = self._version_box
        if function in (_F.Fill, _F.IndexPut):
            value = _operand(operands[0])
            if isinstance(value, Tensor) and value.dtype != self.dtype:
                value = value.astype(self.dtype)  # written in this tensor's dtype
            result = function.apply(before, value, **options)
        elif operands:
            result = _binary(function, before, operands[0], floats=floats)
        else:
            result = function.apply(before, **options)
        _check_in_place_result(self, result)
        if recording and self._base is not None:
            # an indexed view: write through the base, so that the base's graph records
            # the change, then read this view of the new base again
            self._base[view_index] = result
            fresh = self._base[view_index]
            self._ctx, self._requires_grad = fresh._ctx, fresh._requires_grad
            return self
        ctx = result._ctx
        if ctx is not None:
            # what the new node saved of the old values (self, or a view of it given as an
            # operand) must survive the overwrite below
            ctx._saved = tuple(
                a.copy() if np.may_share_memory(a, self._data) else a for a in ctx._saved
            )
            ctx._versions = tuple(v for v in ctx._versions if v[0] is not self._version_box)
        np.copyto(self._data, result._data, casting="unsafe")
        self._version_box[0] += 1
        if recording:
            old = self._ctx
            if old is not None and old._retained is not None and old._retained() is self:
                ctx._retained, old._retained = old._retained, None  # .grad of the new value
            self._ctx, self._requires_grad = ctx, True
        return self

    # ------------------------------------------------------------------ comparisons
    # Element-wise, giving bool tensors that do not require grad.
    def __lt__(self, other: _TensorLike) -> Tensor:
        return self._compare(np.less, other)

    def __le__(self, other: _TensorLike) -> Tensor:
        return self._compare(np.less_equal, other)

    def __gt__(self, other: _TensorLike) -> Tensor:
        return self._compare(np.greater, other)

    def __ge__(self, other: _TensorLike) -> Tensor:
        return self._compare(np.greater_equal, other)

    def __eq__(self, other: _TensorLike) -> Tensor:  # type: ignore[override]
        return self._compare(np.equal, other)

    def __ne__(self, other: _TensorLike) -> Tensor:  # type: ignore[override]
        return self._compare(np.not_equal, other)

    def lt(self, other: _TensorLike) -> Tensor:
        """``self < other`` element-wise (bool).

        >>> minidl.tensor([1, 3]).lt(2)
        tensor([ True, False], dtype=bool)
        """
        return self._compare(np.less, other)

    def le(self, other: _TensorLike) -> Tensor:
        """``self <= other`` element-wise (bool).

        >>> minidl.tensor([1, 3]).le(1)
        tensor([ True, False], dtype=bool)
        """
        return self._compare(np.less_equal, other)

    def gt(self, other: _TensorLike) -> Tensor:
        """``self > other`` element-wise (bool).

        >>> minidl.tensor([1, 3]).gt(2)
        tensor([False,  True], dtype=bool)
        """
        return self._compare(np.greater, other)

    def ge(self, other: _TensorLike) -> Tensor:
        """``self >= other`` element-wise (bool).

        >>> minidl.tensor([1, 3]).ge(3)
        tensor([False,  True], dtype=bool)
        """
        return self._compare(np.greater_equal, other)

    def eq(self, other: _TensorLike) -> Tensor:
        """``self == other`` element-wise (bool).

        >>> minidl.tensor([1, 3]).eq(3)
        tensor([False,  True], dtype=bool)
        """
        return self._compare(np.equal, other)

    def ne(self, other: _TensorLike) -> Tensor:
        """``self != other`` element-wise (bool).

        >>> minidl.tensor([1, 3]).ne(3)
        tensor([ True, False], dtype=bool)
        """
        return self._compare(np.not_equal, other)

    def _compare(self, ufunc, other):
        other = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(_F._broadcasting(ufunc.__name__, ufunc, self._data, other))

    def isnan(self) -> Tensor:
        """Where the values are NaN (bool).

        >>> minidl.tensor([1.0, float("nan")]).isnan()
        tensor([False,  True], dtype=bool)
        """
        return Tensor._wrap(np.isnan(self._data))

    def isinf(self) -> Tensor:
        """Where the values are +-inf (bool).

        >>> minidl.tensor([1.0, float("inf")]).isinf()
        tensor([False,  True], dtype=bool)
        """
        return Tensor._wrap(np.isinf(self._data))

    def isfinite(self) -> Tensor:
        """Where the values are neither NaN nor +-inf (bool).

        >>> minidl.tensor([1.0, float("inf")]).isfinite()
        tensor([ True, False], dtype=bool)
        """
        return Tensor._wrap(np.isfinite(self._data))

    def isclose(
        self, other: _TensorLike, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
    ) -> Tensor:
        """``|self - other| <= atol + rtol * |other|`` element-wise (bool), as torch.isclose.

        >>> minidl.tensor([1.0, 2.0]).isclose(minidl.tensor([1.0, 2.1]))
        tensor([ True, False], dtype=bool)
        """
        other = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(
            _F._broadcasting(
                "isclose", lambda a, b: np.isclose(a, b, rtol, atol, equal_nan), self._data, other
            )
        )

    def allclose(
        self, other: _TensorLike, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
    ) -> bool:
        """Whether :meth:`isclose` holds everywhere (a Python bool).

        >>> minidl.ones(2).allclose(minidl.ones(2) + 1e-9)
        True
        """
        return bool(self.isclose(other, rtol, atol, equal_nan)._data.all())

    # ------------------------------------------------------------------ logic and bits
    def __and__(self, other: _TensorLike) -> Tensor:
        return self._bitwise(np.bitwise_and, other)

    def __rand__(self, other: _TensorLike) -> Tensor:
        return self._bitwise(np.bitwise_and, other)

    def __or__(self, other: _TensorLike) -> Tensor:
        return self._bitwise(np.bitwise_or, other)

    def __ror__(self, other: _TensorLike) -> Tensor:
        return self._bitwise(np.bitwise_or, other)

    def __xor__(self, other: _TensorLike) -> Tensor:
        return self._bitwise(np.bitwise_xor, other)

    def __rxor__(self, other: _TensorLike) -> Tensor:
        return self._bitwise(np.bitwise_xor, other)

    def __invert__(self) -> Tensor:
        if self.dtype.kind not in "biu":
            raise TypeError(f"~: bitwise not needs a bool or integer tensor, got {self.dtype}")
        return Tensor._wrap(np.invert(self._data))

    def _bitwise(self, ufunc, other):
        dtype = _dtypes.result_dtype(self, _scalar_or_array(other))
        if dtype.kind not in "biu":
            raise TypeError(
                f"{ufunc.__name__}: needs bool or integer tensors, got {self.dtype} and "
                f"{_dtype_of(other)}"
            )
        other = other._data if isinstance(other, Tensor) else other
        result = _F._broadcasting(ufunc.__name__, ufunc, self._data.astype(dtype), other)
        return Tensor._wrap(np.asarray(result, dtype=dtype))

    def logical_and(self, other: _TensorLike) -> Tensor:
        """Element-wise ``self and other`` of the truth values (bool).

        >>> minidl.tensor([1, 0]).logical_and(minidl.tensor([1, 1]))
        tensor([ True, False], dtype=bool)
        """
        return Tensor._wrap(
            _F._broadcasting("logical_and", np.logical_and, self._data, _plain(other))
        )

    def logical_or(self, other: _TensorLike) -> Tensor:
        """Element-wise ``self or other`` of the truth values (bool).

        >>> minidl.tensor([1, 0]).logical_or(minidl.tensor([0, 0]))
        tensor([ True, False], dtype=bool)
        """
        return Tensor._wrap(
            _F._broadcasting("logical_or", np.logical_or, self._data, _plain(other))
        )

    def logical_not(self) -> Tensor:
        """Element-wise ``not self`` of the truth values (bool).

        >>> minidl.tensor([1, 0]).logical_not()
        tensor([False,  True], dtype=bool)
        """
        return Tensor._wrap(np.logical_not(self._data))

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, index: Any) -> Tensor:
        """``x[index]``: ints, slices, None, Ellipsis, integer or boolean arrays (or tensors).

        Layout as in PyTorch: integer indices are applied first, so ``x[0, :, [0, 1]]``
        of a (2, 3, 4) tensor is (3, 2). With integer arrays, repeated indices
        accumulate their gradients.

        >>> minidl.arange(5.0)[[0, 0, 3]]
        tensor([0., 0., 3.])
        """
        first, second = _torch_index(_plain_index(index), self.ndim)
        out = _F.GetItem.apply(self, index=first)
        if second is not _NO_INDEX:
            return _F.GetItem.apply(out, index=second)
        if out._base is self:
            out._view_index = first  # lets an in-place change of the view reach self
        return out

    def __setitem__(self, index: Any, value: _TensorLike) -> None:
        """``x[index] = value``: in place, ``value`` broadcast; recorded for autograd.

        >>> x = minidl.zeros(2, 3)
        >>> x[0] = minidl.tensor([1.0, 2.0, 3.0])
        >>> x
        tensor([[1., 2., 3.],
                [0., 0., 0.]])
        """
        first, second = _torch_index(_plain_index(index), self.ndim)
        if second is not _NO_INDEX:
            # the integer part is applied as a view, then the rest on it
            flat = np.arange(self._data.size).reshape(self.shape)[first][second]
            index = np.unravel_index(flat, self.shape)
        else:
            index = first
        self._in_place(_F.IndexPut, _operand(value), index=index)

    def gather(self, dim: int, index: Tensor) -> Tensor:
        """``out[i][j] = self[i][index[i][j]]`` for dim 1 (any dim), as ``torch.gather``.

        >>> minidl.tensor([[1.0, 2.0], [3.0, 4.0]]).gather(1, minidl.tensor([[1], [0]]))
        tensor([[2.],
                [3.]])
        """
        axis = _F._normalize_axes(dim, self.ndim, "gather")[0]
        index = _index_array(index, "gather")
        if index.ndim != self.ndim:
            raise ValueError(
                f"gather: index must have as many dims as the input ({self.ndim}), got "
                f"shape {index.shape}"
            )
        _check_index_range(index, self.shape[axis], "gather")
        return _F.Gather.apply(self, axis, index)

    def scatter(
        self,
        dim: int,
        index: _TensorLike,
        src: _TensorLike | None = None,
        *,
        value: _TensorLike | None = None,
    ) -> Tensor:
        """A copy with ``src`` (or ``value``) written at ``index`` along ``dim`` (torch.scatter).

        >>> minidl.zeros(2, 3).scatter(1, minidl.tensor([[2], [0]]), 5.0)
        tensor([[0., 0., 5.],
                [5., 0., 0.]])
        """
        return self._scatter(dim, index, value if src is None else src, False, "scatter")

    def scatter_add(self, dim: int, index: Tensor, src: _TensorLike) -> Tensor:
        """A copy with ``src`` added at ``index`` along ``dim`` (repeats add up).

        >>> minidl.zeros(3).scatter_add(0, minidl.tensor([0, 0, 2]), minidl.ones(3))
        tensor([2., 0., 1.])
        """
        return self._scatter(dim, index, src, True, "scatter_add")

    def _scatter(self, dim, index, src, add, where):
        axis = _F._normalize_axes(dim, self.ndim, where)[0]
        index = _index_array(index, where)
        if index.ndim != self.ndim:
            raise ValueError(f"{where}: index must have {self.ndim} dims, got {index.shape}")
        _check_index_range(index, self.shape[axis], where)
        src = _operand(src)
        if isinstance(src, Tensor) and src.dtype != self.dtype:
            raise RuntimeError(
                f"{where}(): Expected self.dtype to be equal to src.dtype ({self.dtype} and "
                f"{src.dtype})"
            )
        if not isinstance(src, Tensor):
            src = np.asarray(src, dtype=self.dtype)  # a number, in this tensor's dtype
        return _F.Scatter.apply(self, axis, index, src, add=add)

    def index_select(self, dim: int, index: Tensor) -> Tensor:
        """The entries ``index`` (1-d integers) along ``dim``.

        >>> minidl.arange(6.0).reshape(2, 3).index_select(1, minidl.tensor([2, 0]))
        tensor([[2., 0.],
                [5., 3.]])
        """
        axis = _F._normalize_axes(dim, self.ndim, "index_select")[0]
        index = _index_array(index, "index_select")
        if index.ndim > 1:
            raise ValueError(f"index_select: index must be 1-d, got shape {index.shape}")
        _check_index_range(index, self.shape[axis], "index_select")
        return _F.IndexSelect.apply(self, axis, index.reshape(-1))

    def masked_fill(self, mask: _TensorLike, value: _TensorLike) -> Tensor:
        """A copy with ``value`` where the bool ``mask`` (broadcast) is true.

        >>> minidl.ones(3).masked_fill(minidl.tensor([True, False, True]), 0.0)
        tensor([0., 1., 0.])
        """
        mask = _plain(mask)
        if np.asarray(mask).dtype != np.bool_:
            raise TypeError(
                f"masked_fill: expected a bool mask, got dtype {np.asarray(mask).dtype}"
            )
        return where(mask, _fill_value(value, self.dtype), self)  # keeps self's dtype

    # ------------------------------------------------------------------ reductions
    def sum(
        self,
        dim: int | Sequence[int] | None = None,
        keepdim: bool = False,
        *,
        axis: int | Sequence[int] | None = None,
        keepdims: bool | None = None,
        dtype: DTypeLike | None = None,
    ) -> Tensor:
        """Sum over ``dim`` (None: all; an int or a tuple); ``keepdim`` keeps them as size 1.

        Float data is accumulated in float64 by the compiled kernels; integers and
        bools sum to int64, as in PyTorch. ``axis``/``keepdims`` are accepted too.

        >>> minidl.ones(4, 3).sum(0)
        tensor([4., 4., 4.])
        """
        x = self if dtype is None else self.astype(dtype)
        if x.dtype.kind in "biu":
            x = x.astype(np.int64)
        return _F.Sum.apply(x, axis=_dims(dim, axis, "sum"), keepdims=_keep(keepdim, keepdims))

    def mean(
        self,
        dim: int | Sequence[int] | None = None,
        keepdim: bool = False,
        *,
        axis: int | Sequence[int] | None = None,
        keepdims: bool | None = None,
        dtype: DTypeLike | None = None,
    ) -> Tensor:
        """Mean over ``dim`` (None: all; an int or a tuple).

        >>> minidl.tensor([[1.0, 3.0]]).mean(dim=1)
        tensor([2.])
        """
        x = self._float_input("mean", dtype)
        return _F.Mean.apply(x, axis=_dims(dim, axis, "mean"), keepdims=_keep(keepdim, keepdims))

    def prod(
        self,
        dim: int | Sequence[int] | None = None,
        keepdim: bool = False,
        *,
        dtype: DTypeLike | None = None,
    ) -> Tensor:
        """Product over one ``dim`` (None: all); integers give int64.

        >>> minidl.tensor([[1.0, 2.0], [3.0, 4.0]]).prod(1)
        tensor([ 2., 12.])
        """
        x = self if dtype is None else self.astype(dtype)
        if x.dtype.kind in "biu":
            x = x.astype(np.int64)
        axis = None if dim is None else _F._normalize_axes(dim, self.ndim, "prod")
        if axis is not None and self.ndim == 0:
            return x.reshape(()) if not keepdim else x
        axis = None if axis is None else axis[0]
        if axis is None and keepdim:
            return _F.Prod.apply(x).reshape([1] * self.ndim)
        return _F.Prod.apply(x, axis=axis, keepdims=bool(keepdim))

    def amax(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """Largest value over ``dim`` (an int or a tuple); tied maxima share the gradient.

        >>> minidl.tensor([[1.0, 5.0], [7.0, 2.0]]).amax(dim=1)
        tensor([5., 7.])
        """
        return _F.Max.apply(self, axis=dim, keepdims=bool(keepdim))

    def amin(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> Tensor:
        """Smallest value over ``dim`` (an int or a tuple); tied minima share the gradient.

        >>> minidl.tensor([[1.0, 5.0], [7.0, 2.0]]).amin(dim=0)
        tensor([1., 2.])
        """
        return _F.Min.apply(self, axis=dim, keepdims=bool(keepdim))

    def max(
        self,
        dim: int | Sequence[int] | None = None,
        keepdim: bool = False,
        *,
        axis: int | Sequence[int] | None = None,
        keepdims: bool | None = None,
    ) -> Any:
        """The largest value; with ``dim`` (an int) a named pair ``(values, indices)``.

        As ``torch.max``: ``x.max()`` is one value (tied maxima share the gradient);
        ``x.max(1)`` gives ``.values`` and ``.indices`` along dim 1 (the gradient
        goes to the index returned); ``x.max(other_tensor)`` is :meth:`maximum`.

        >>> x = minidl.tensor([[1.0, 5.0], [7.0, 2.0]])
        >>> x.max()
        tensor(7.)
        >>> x.max(1)
        max(values=tensor([5., 7.]), indices=tensor([1, 0]))
        """
        return self._extreme(dim, keepdim, axis, keepdims, "max")

    def min(
        self,
        dim: int | Sequence[int] | None = None,
        keepdim: bool = False,
        *,
        axis: int | Sequence[int] | None = None,
        keepdims: bool | None = None,
    ) -> Any:
        """The smallest value; with ``dim`` (an int) a named pair ``(values, indices)``.

        >>> minidl.tensor([[1.0, 5.0], [7.0, 2.0]]).min(0).values
        tensor([1., 2.])
        """
        return self._extreme(dim, keepdim, axis, keepdims, "min")

    def _extreme(self, dim, keepdim, axis, keepdims, name):
        if isinstance(dim, Tensor):
            return self.maximum(dim) if name == "max" else self.minimum(dim)
        dim = _dims(dim, axis, name)
        keepdim = _keep(keepdim, keepdims)
        _check_reducible(self.shape, dim, name)
        if dim is None:
            return (_F.Max if name == "max" else _F.Min).apply(self)
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"{name}: dim must be an int (use amax/amin for several dims)")
        indices = (self.argmax if name == "max" else self.argmin)(dim, keepdim=True)
        values = self.gather(dim, indices) if self.ndim else self
        if not keepdim and self.ndim:
            values, indices = values.squeeze(dim), indices.squeeze(dim)
        if not self.ndim:
            indices = indices.reshape(())
        pair = max_result if name == "max" else min_result
        return pair(values, indices)

    def var(
        self,
        dim: int | Sequence[int] | None = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
        axis: int | Sequence[int] | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """Variance over ``dim``: ``sum((x - mean)**2) / (count - correction)``.

        ``correction=1`` (the default, as in PyTorch; ``unbiased=False`` is
        ``correction=0``) is the unbiased estimate. Positional arguments are
        PyTorch's: ``var(dim, unbiased, keepdim)``. Accumulated in float64.

        >>> minidl.tensor([1.0, 2.0, 3.0]).var()
        tensor(1.)
        """
        if isinstance(dim, bool) and unbiased is None:
            dim, unbiased = None, dim  # var(False) is torch's var(unbiased=False)
        x = self._float_input("var")
        return _F.Var.apply(
            x,
            axis=_dims(dim, axis, "var"),
            keepdims=_keep(keepdim, keepdims),
            correction=_correction(correction, unbiased),
        )

    def std(
        self,
        dim: int | Sequence[int] | None = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
        axis: int | Sequence[int] | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """Standard deviation over ``dim``: the square root of :meth:`var`.

        >>> minidl.tensor([1.0, 3.0]).std(unbiased=False)
        tensor(1.)
        """
        variance = self.var(
            dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims
        )
        return _F.SqrtZeroSafe.apply(variance)  # zero gradient where the spread is zero

    def logsumexp(self, dim: int, keepdim: bool = False) -> Tensor:
        """``log(sum(exp(x)))`` over ``dim``, computed without overflow.

        >>> minidl.tensor([[0.0, 0.0]]).logsumexp(1)
        tensor([0.6931472])
        """
        x = self._as_float()
        axes = _F._normalize_axes(_dims(dim, None, "logsumexp"), self.ndim, "logsumexp")
        if not axes:
            return x if keepdim else x.reshape(self.shape)
        return _F.LogSumExp.apply(x, axis=axes, keepdims=bool(keepdim))

    def norm(
        self, p: float | str = "fro", dim: int | Sequence[int] | None = None, keepdim: bool = False
    ) -> Tensor:
        """The p-norm over ``dim`` (all by default): p = 2 ('fro'), 1, inf, or any number.

        >>> minidl.tensor([3.0, 4.0]).norm()
        tensor(5.)
        """
        x = self._float_input("norm")
        dim = _dims(dim, None, "norm")
        if p in ("fro", 2, 2.0):
            return _F.Norm2.apply(x, axis=dim, keepdims=bool(keepdim))
        if p == 0:  # the count of non-zero entries; no gradient, as in torch
            return (x != 0).astype(x.dtype).sum(dim, keepdim)
        if p in (math.inf, float("inf")):
            return x.abs().amax(dim, keepdim)
        if p in (-math.inf, float("-inf")):
            return x.abs().amin(dim, keepdim)
        if not isinstance(p, numbers.Real) or p < 0:
            raise ValueError(f"norm: p must be a non-negative number, 'fro' or inf, got {p!r}")
        return _F.NormP.apply(x, float(p), axis=dim, keepdims=bool(keepdim))

    def cumsum(self, dim: int, *, dtype: DTypeLike | None = None) -> Tensor:
        """Running sums along ``dim``; integers give int64.

        >>> minidl.tensor([1.0, 2.0, 3.0]).cumsum(0)
        tensor([1., 3., 6.])
        """
        axis = _F._normalize_axes(dim, self.ndim, "cumsum")
        x = self if dtype is None else self.astype(dtype)
        x = x.astype(np.int64) if x.dtype.kind in "biu" else x
        if not axis:
            return x.clone()
        return _F.Cumsum.apply(x, axis[0])

    def argmax(
        self,
        dim: int | Sequence[int] | None = None,
        keepdim: bool = False,
        *,
        axis: int | Sequence[int] | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """Indices of the largest values along ``dim`` (int64, no gradient).

        >>> minidl.tensor([[1.0, 5.0], [7.0, 2.0]]).argmax(dim=1)
        tensor([1, 0])
        """
        return self._arg(np.argmax, dim, keepdim, axis, keepdims, "argmax")

    def argmin(
        self,
        dim: int | Sequence[int] | None = None,
        keepdim: bool = False,
        *,
        axis: int | Sequence[int] | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """Indices of the smallest values along ``dim`` (int64, no gradient).

        >>> minidl.tensor([[1.0, 5.0], [7.0, 2.0]]).argmin(dim=1)
        tensor([0, 1])
        """
        return self._arg(np.argmin, dim, keepdim, axis, keepdims, "argmin")

    def _arg(self, function, dim, keepdim, axis, keepdims, name):
        dim = _dims(dim, axis, name)
        keepdim = _keep(keepdim, keepdims)
        if self.dtype == np.bool_:
            raise RuntimeError(f"{name}(): does not support bool input")
        _check_reducible(self.shape, dim, name)
        if dim is None:
            out = np.asarray(function(self._data), dtype=np.int64)
            return Tensor._wrap(out.reshape([1] * self.ndim) if keepdim else out)
        axes = _F._normalize_axes(dim, self.ndim, name)
        if not axes:
            return Tensor._wrap(np.zeros(self.shape, dtype=np.int64))
        out = function(self._data, axis=axes[0], keepdims=keepdim)
        return Tensor._wrap(np.asarray(out, dtype=np.int64))

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        """Sorted values and their indices along ``dim``: a named pair ``(values, indices)``.

        NaN sorts as the largest value, as in PyTorch.

        >>> minidl.tensor([3.0, 1.0, 2.0]).sort()
        sort(values=tensor([1., 2., 3.]), indices=tensor([1, 2, 0]))
        """
        indices = self.argsort(dim, descending)
        if not self.ndim:
            return sort_result(self.clone(), indices)
        return sort_result(self.gather(dim, indices), indices)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        """The indices that sort the values along ``dim`` (int64).

        >>> minidl.tensor([3.0, 1.0, 2.0]).argsort(descending=True)
        tensor([0, 2, 1])
        """
        axes = _F._normalize_axes(dim, self.ndim, "argsort")
        if not axes:
            return Tensor._wrap(np.zeros(self.shape, dtype=np.int64))
        axis = axes[0]
        if descending:
            # stable descending order with NaN first: sort the reversed data ascending
            flipped = np.flip(self._data, axis)
            order = np.flip(np.argsort(flipped, axis=axis, kind="stable"), axis)
            order = self.shape[axis] - 1 - order
        else:
            order = np.argsort(self._data, axis=axis, kind="stable")
        return Tensor._wrap(order.astype(np.int64))

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        """The ``k`` largest (or smallest) values along ``dim`` and their indices.

        >>> minidl.tensor([1.0, 5.0, 3.0]).topk(2)
        topk(values=tensor([5., 3.]), indices=tensor([1, 2]))
        """
        axes = _F._normalize_axes(dim, self.ndim, "topk")
        length = self.shape[axes[0]] if axes else 1
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= length:
            raise ValueError(f"topk: k must be an int in [0, {length}], got {k!r}")
        order = self.argsort(dim, descending=largest)
        if not axes:
            return topk_result(self.clone(), order)
        indices = order.narrow(axes[0], 0, int(k))
        return topk_result(self.gather(axes[0], indices), indices)

    def all(
        self,
        dim: int | Sequence[int] | None = None,
        keepdim: bool = False,
        *,
        axis: int | Sequence[int] | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """Whether every element (along ``dim``) is true: a bool tensor, no gradient.

        >>> (minidl.ones(2) > 0).all()
        tensor(True, dtype=bool)
        """
        axes = _F._normalize_axes(_dims(dim, axis, "all"), self.ndim, "all")
        return Tensor._wrap(np.all(self._data, axis=axes, keepdims=_keep(keepdim, keepdims)))

    def any(
        self,
        dim: int | Sequence[int] | None = None,
        keepdim: bool = False,
        *,
        axis: int | Sequence[int] | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """Whether any element (along ``dim``) is true: a bool tensor, no gradient.

        >>> (minidl.ones(2) > 1).any()
        tensor(False, dtype=bool)
        """
        axes = _F._normalize_axes(_dims(dim, axis, "any"), self.ndim, "any")
        return Tensor._wrap(np.any(self._data, axis=axes, keepdims=_keep(keepdim, keepdims)))

    def softmax(self, dim: int) -> Tensor:
        """``exp(x) / sum(exp(x))`` along ``dim``, computed stably.

        >>> minidl.zeros(1, 2).softmax(1)
        tensor([[0.5, 0.5]])
        """
        _F._normalize_axes(dim, self.ndim, "softmax")
        return (
            _F.Softmax.apply(self._as_float(), dim=dim) if self.ndim else self._as_float() * 0 + 1
        )

    def log_softmax(self, dim: int) -> Tensor:
        """``x - logsumexp(x)`` along ``dim``, computed stably.

        >>> minidl.zeros(1, 2).log_softmax(1)
        tensor([[-0.6931472, -0.6931472]])
        """
        _F._normalize_axes(dim, self.ndim, "log_softmax")
        return _F.LogSoftmax.apply(self._as_float(), dim=dim) if self.ndim else self._as_float() * 0

    def _float_input(self, where, dtype=None):
        """This tensor for a function defined on floats: torch refuses integers there."""
        x = self if dtype is None else self.astype(dtype)
        if x.dtype.kind != "f":
            raise RuntimeError(
                f"{where}(): could not infer output dtype. Input dtype must be a floating "
                f"point dtype. Got: {x.dtype}"
            )
        return x

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape: Any) -> Tensor:
        """The same data in a new shape; one dim may be -1. ``reshape(2, 3)`` or ``((2, 3))``.

        >>> minidl.arange(6.0).reshape(2, 3).shape
        (2, 3)
        """
        shape = _int_list(shape, "reshape", "the shape")
        for index, size in enumerate(shape):
            if size < -1:
                # numpy reads any negative size as -1; torch refuses all but -1
                raise RuntimeError(
                    f"reshape: invalid shape dimension {size} at index {index} of shape "
                    f"{list(shape)} (sizes are >= 0, or -1 for one inferred dim)"
                )
        return _F.Reshape.apply(self, shape=shape)

    def view(self, *shape: int | Sequence[int]) -> Tensor:
        """This tensor's memory seen in another shape; refused where that needs a copy.

        As ``torch.Tensor.view``: a transposed tensor cannot always be viewed
        flat; :meth:`reshape` copies when it must.

        >>> minidl.zeros(6).view(3, 2).shape
        (3, 2)
        """
        out = self.reshape(*shape)
        if self._data.size and not np.shares_memory(out._data, self._data):
            raise RuntimeError(
                f"view size is not compatible with input tensor's size and stride (shape "
                f"{self.shape} is not contiguous): use .reshape(...) instead"
            )
        return out

    def view_as(self, other: Tensor) -> Tensor:
        """This tensor in ``other``'s shape.

        >>> minidl.zeros(6).view_as(minidl.zeros(2, 3)).shape
        (2, 3)
        """
        return self.reshape(other.shape)

    def unsqueeze(self, dim: int) -> Tensor:
        """A size-1 dim inserted at ``dim`` (negative counts from the end of the result).

        >>> minidl.zeros(2, 3).unsqueeze(1).shape
        (2, 1, 3)
        """
        axis = _F._normalize_axes(dim, self.ndim + 1, "unsqueeze")[0]
        return self.reshape(*self.shape[:axis], 1, *self.shape[axis:])

    def squeeze(self, dim: int | Sequence[int] | None = None) -> Tensor:
        """Size-1 dims removed: all of them, or only ``dim`` (an int or a tuple) when size 1.

        >>> minidl.zeros(2, 1, 3, 1).squeeze().shape
        (2, 3)
        >>> minidl.zeros(2, 1, 3).squeeze(0).shape
        (2, 1, 3)
        """
        axes = _F._normalize_axes(dim, self.ndim, "squeeze")
        shape = [n for i, n in enumerate(self.shape) if not (i in axes and n == 1)]
        return self.reshape(*shape)

    def expand(self, *sizes: int | Sequence[int]) -> Tensor:
        """This tensor broadcast to ``sizes`` (a view; -1 keeps a dim), as ``torch.expand``.

        >>> minidl.ones(3, 1).expand(3, 4).shape
        (3, 4)
        """
        sizes = _int_list(sizes, "expand", "sizes")
        if len(sizes) < self.ndim:
            raise ValueError(
                f"expand: the number of sizes ({len(sizes)}) must be at least the number of "
                f"dims ({self.ndim})"
            )
        lead = len(sizes) - self.ndim
        shape = tuple(
            self.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes)
        )
        return _F.Expand.apply(self, shape=shape)

    def expand_as(self, other: Tensor) -> Tensor:
        """This tensor broadcast to ``other``'s shape.

        >>> minidl.ones(3).expand_as(minidl.zeros(2, 3)).shape
        (2, 3)
        """
        return _F.Expand.apply(self, shape=other.shape)

    def repeat(self, *repeats: int | Sequence[int]) -> Tensor:
        """The tensor tiled ``repeats[i]`` times along dim i (``torch.repeat``, numpy's ``tile``).

        >>> minidl.tensor([1.0, 2.0]).repeat(2, 2)
        tensor([[1., 2., 1., 2.],
                [1., 2., 1., 2.]])
        """
        repeats = _int_list(repeats, "repeat", "repeats")
        if len(repeats) < self.ndim:
            raise ValueError(
                f"repeat: the number of repeats ({len(repeats)}) cannot be smaller than the "
                f"number of dims ({self.ndim})"
            )
        return _F.Repeat.apply(self, repeats=repeats)

    def flip(self, *dims: int | Sequence[int]) -> Tensor:
        """The order of the entries reversed along ``dims``.

        >>> minidl.arange(3.0).flip(0)
        tensor([2., 1., 0.])
        """
        axes = _F._normalize_axes(_int_list(dims, "flip", "dims"), self.ndim, "flip")
        return _F.Flip.apply(self, axes=axes)

    def roll(self, shifts: Any, dims: int | Sequence[int] | None = None) -> Tensor:
        """Entries shifted cyclically by ``shifts`` along ``dims`` (flattened when None).

        >>> minidl.arange(4.0).roll(1)
        tensor([3., 0., 1., 2.])
        """
        _int_list(shifts if isinstance(shifts, (tuple, list)) else (shifts,), "roll", "shifts")
        if dims is None:
            return _F.Roll.apply(self.flatten(), shifts=shifts, axes=0).reshape(self.shape)
        if isinstance(dims, (tuple, list)):
            axes = tuple(_F._normalize_axes(d, self.ndim, "roll")[0] for d in dims)
            return _F.Roll.apply(self, shifts=tuple(shifts), axes=axes)
        return _F.Roll.apply(
            self, shifts=shifts, axes=_F._normalize_axes(dims, self.ndim, "roll")[0]
        )

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        """``length`` entries from ``start`` along ``dim`` (a view).

        >>> minidl.arange(5.0).narrow(0, 1, 2)
        tensor([1., 2.])
        """
        axis = _F._normalize_axes(dim, self.ndim, "narrow")[0]
        start, length = _int_list((start, length), "narrow", "start and length")
        size = self.shape[axis]
        start = start + size if -size <= start < 0 else start
        if not 0 <= start <= size or length < 0 or start + length > size:
            raise RuntimeError(
                f"narrow: start {start} and length {length} do not fit dim {dim} of size {size}"
            )
        index = [slice(None)] * self.ndim
        index[axis] = slice(start, start + length)
        return self[tuple(index)]

    def split(
        self,
        split_size_or_sections: int | list[int] | tuple[int, ...],
        dim: int | Sequence[int] = 0,
    ) -> tuple[Tensor, ...]:
        """Pieces along ``dim``: of ``split_size`` each (the last may be smaller), or of the
        given sizes.

        >>> [t.shape for t in minidl.zeros(5, 2).split(2)]
        [(2, 2), (2, 2), (1, 2)]
        """
        axis = _F._normalize_axes(dim, self.ndim, "split")[0]
        length = self.shape[axis]
        if isinstance(split_size_or_sections, (list, tuple)):
            sizes = list(split_size_or_sections)
            if builtins.sum(sizes) != length:
                raise ValueError(
                    f"split: sizes {sizes} do not add up to the length {length} of dim {dim}"
                )
        else:
            step = int(split_size_or_sections)
            if step <= 0:
                raise ValueError(f"split: split_size must be positive, got {step}")
            sizes = [builtins.min(step, length - start) for start in range(0, length, step)]
        pieces, start = [], 0
        for size in sizes:
            pieces.append(self.narrow(axis, start, size))
            start += size
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """``chunks`` pieces along ``dim`` of equal size (the last may be smaller), as torch.

        >>> [t.shape for t in minidl.zeros(5).chunk(3)]
        [(2,), (2,), (1,)]
        """
        axis = _F._normalize_axes(dim, self.ndim, "chunk")[0]
        if chunks <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        return self.split(builtins.max(1, -(-self.shape[axis] // chunks)), axis)

    def permute(self, *axes: int | Sequence[int]) -> Tensor:
        """Reorder the axes: result axis i is input axis ``axes[i]``.

        >>> minidl.zeros(2, 3, 4).permute(2, 0, 1).shape
        (4, 2, 3)
        """
        return _F.Permute.apply(self, axes=_int_list(axes, "permute", "dims"))

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Swap two axes, as ``torch.transpose(x, dim0, dim1)``; with none, reverse all axes.

        >>> minidl.zeros(2, 3, 4).transpose(0, 2).shape
        (4, 3, 2)
        """
        if not axes:
            return _F.Permute.apply(self, axes=tuple(reversed(range(self.ndim))))
        if len(axes) != 2:
            raise ValueError(
                f"transpose: expected two axes to swap (or none), got {axes}; use permute() "
                "for a full reordering"
            )
        order = list(range(self.ndim))
        first, second = (_F._normalize_axes(a, self.ndim, "transpose")[0] for a in axes)
        order[first], order[second] = order[second], order[first]
        return _F.Permute.apply(self, axes=tuple(order))

    def t(self) -> Tensor:
        """The transpose of a 2-d tensor (a 0-d or 1-d tensor unchanged), as ``torch.t``.

        >>> minidl.zeros(2, 3).t().shape
        (3, 2)
        """
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with at most 2 dims, got {self.ndim}")
        return self.transpose() if self.ndim == 2 else self

    @property
    def mT(self) -> Tensor:
        """The last two dims swapped (a batch of matrices transposed).

        >>> minidl.zeros(4, 2, 3).mT.shape
        (4, 3, 2)
        """
        return self.transpose(-2, -1)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        """The slices along ``dim``, as a tuple (that dim removed).

        >>> [t.shape for t in minidl.zeros(2, 3).unbind(1)]
        [(2,), (2,), (2,)]
        """
        axis = _F._normalize_axes(dim, self.ndim, "unbind")[0]
        index: list[Any] = [slice(None)] * self.ndim
        pieces = []
        for i in range(self.shape[axis]):
            index[axis] = i
            pieces.append(self[tuple(index)])
        return tuple(pieces)

    def new_zeros(self, *size: int | Sequence[int]) -> Tensor:
        """Zeros of ``size`` in this tensor's dtype.

        >>> minidl.ones(2, dtype="float64").new_zeros(3).dtype
        dtype('float64')
        """
        return Tensor._of(np.zeros(_shape_of(size, "new_zeros"), self.dtype))

    def new_ones(self, *size: int | Sequence[int]) -> Tensor:
        """Ones of ``size`` in this tensor's dtype.

        >>> minidl.ones(2).new_ones(2, 2).shape
        (2, 2)
        """
        return Tensor._of(np.ones(_shape_of(size, "new_ones"), self.dtype))

    def new_full(self, size: int | Sequence[int], fill_value: float) -> Tensor:
        """``size`` filled with ``fill_value`` in this tensor's dtype.

        >>> minidl.ones(2).new_full((2,), 7)
        tensor([7., 7.])
        """
        return Tensor._of(np.full(_shape_of((size,), "new_full"), fill_value, self.dtype))

    def new_tensor(self, data: _TensorLike) -> Tensor:
        """A copy of ``data`` in this tensor's dtype.

        >>> minidl.ones(1, dtype="float64").new_tensor([1, 2]).dtype
        dtype('float64')
        """
        return tensor(data, dtype=self.dtype)

    def type_as(self, other: Tensor) -> Tensor:
        """This tensor in ``other``'s dtype.

        >>> minidl.arange(2).type_as(minidl.ones(1)).dtype
        dtype('float32')
        """
        if not isinstance(other, Tensor):
            raise TypeError(f"type_as: expected a minidl Tensor, got {type(other).__name__}")
        return self.astype(other.dtype)

    @property
    def T(self) -> Tensor:
        """All axes reversed (a matrix's transpose).

        >>> minidl.zeros(2, 3).T.shape
        (3, 2)
        """
        return self.transpose()

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims ``start_dim`` to ``end_dim`` (inclusive) into one, as ``torch.flatten``.

        >>> minidl.zeros(2, 3, 4).flatten(start_dim=1).shape
        (2, 12)
        >>> x = minidl.zeros(2, 3)
        >>> x.flatten(start_dim=1) is x  # nothing to merge: the input itself, as in torch
        True
        """
        if self.ndim == 0:
            return self.reshape(1)
        start = _F._normalize_axes(start_dim, self.ndim, "flatten")[0]
        end = _F._normalize_axes(end_dim, self.ndim, "flatten")[0]
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        if start == end:
            return self  # no dims merged: torch returns the input itself, not a view
        merged = math.prod(self.shape[start : end + 1])
        return self.reshape(*self.shape[:start], merged, *self.shape[end + 1 :])

    def tril(self, diagonal: int = 0) -> Tensor:
        """The lower triangle of the last two dims (the rest zero).

        >>> minidl.ones(2, 2).tril()
        tensor([[1., 0.],
                [1., 1.]])
        """
        return self._triangle(False, _int_list((diagonal,), "tril", "diagonal")[0])

    def triu(self, diagonal: int = 0) -> Tensor:
        """The upper triangle of the last two dims (the rest zero).

        >>> minidl.ones(2, 2).triu(1)
        tensor([[0., 1.],
                [0., 0.]])
        """
        return self._triangle(True, _int_list((diagonal,), "triu", "diagonal")[0])

    def _triangle(self, upper, diagonal):
        if self.ndim < 2:
            raise ValueError(
                f"{'triu' if upper else 'tril'}: needs at least 2 dims, got {self.shape}"
            )
        return _F.Triangle.apply(self, upper=upper, diagonal=int(diagonal))

    # ------------------------------------------------------------------ element-wise
    # Functions defined on floats compute integer and bool tensors in the default float
    # dtype, as in PyTorch.
    def exp(self) -> Tensor:
        """Element-wise e**x.

        >>> minidl.zeros(2).exp()
        tensor([1., 1.])
        """
        return _F.Exp.apply(self._as_float())

    def log(self) -> Tensor:
        """Element-wise natural logarithm.

        >>> minidl.ones(2).log()
        tensor([0., 0.])
        """
        return _F.Log.apply(self._as_float())

    def log2(self) -> Tensor:
        """Element-wise base-2 logarithm.

        >>> minidl.tensor([8.0]).log2()
        tensor([3.])
        """
        return _F.Log2.apply(self._as_float())

    def log10(self) -> Tensor:
        """Element-wise base-10 logarithm.

        >>> minidl.tensor([100.0]).log10()
        tensor([2.])
        """
        return _F.Log10.apply(self._as_float())

    def log1p(self) -> Tensor:
        """Element-wise ``log(1 + x)``, accurate for small x.

        >>> minidl.zeros(1).log1p()
        tensor([0.])
        """
        return _F.Log1p.apply(self._as_float())

    def expm1(self) -> Tensor:
        """Element-wise ``exp(x) - 1``, accurate for small x.

        >>> minidl.zeros(1).expm1()
        tensor([0.])
        """
        return _F.Expm1.apply(self._as_float())

    def sqrt(self) -> Tensor:
        """Element-wise square root.

        >>> minidl.tensor([4.0, 9.0]).sqrt()
        tensor([2., 3.])
        """
        return _F.Sqrt.apply(self._as_float())

    def rsqrt(self) -> Tensor:
        """Element-wise ``1 / sqrt(x)``.

        >>> minidl.tensor([4.0]).rsqrt()
        tensor([0.5])
        """
        return _F.Rsqrt.apply(self._as_float())

    def sin(self) -> Tensor:
        """Element-wise sine.

        >>> minidl.zeros(1).sin()
        tensor([0.])
        """
        return _F.Sin.apply(self._as_float())

    def cos(self) -> Tensor:
        """Element-wise cosine.

        >>> minidl.zeros(1).cos()
        tensor([1.])
        """
        return _F.Cos.apply(self._as_float())

    def erf(self) -> Tensor:
        """Element-wise error function.

        >>> minidl.zeros(1).erf()
        tensor([0.])
        """
        return _F.Erf.apply(self._as_float())

    def tanh(self) -> Tensor:
        """Element-wise hyperbolic tangent.

        >>> minidl.zeros(1).tanh()
        tensor([0.])
        """
        return _F.Tanh.apply(self._as_float())

    def sigmoid(self) -> Tensor:
        """Element-wise logistic function 1 / (1 + exp(-x)) (0 where exp(-x) overflows, as torch).

        >>> minidl.zeros(1).sigmoid()
        tensor([0.5])
        """
        return _F.Sigmoid.apply(self._as_float())

    def relu(self) -> Tensor:
        """Element-wise max(x, 0); the gradient at 0 is 0, as in PyTorch.

        >>> minidl.tensor([-1.0, 2.0]).relu()
        tensor([0., 2.])
        """
        return _F.ReLU.apply(self)

    def abs(self) -> Tensor:
        """Element-wise absolute value; the gradient at 0 is 0.

        >>> minidl.tensor([-2.0, 3.0]).abs()
        tensor([2., 3.])
        """
        return _F.Abs.apply(self)

    def sign(self) -> Tensor:
        """Element-wise -1, 0 or 1 (zero gradient).

        >>> minidl.tensor([-2.0, 0.0, 3.0]).sign()
        tensor([-1.,  0.,  1.])
        """
        return _F.Sign.apply(self)

    def floor(self) -> Tensor:
        """Element-wise rounding down (zero gradient).

        >>> minidl.tensor([1.5, -1.5]).floor()
        tensor([ 1., -2.])
        """
        return _F.Floor.apply(self)

    def ceil(self) -> Tensor:
        """Element-wise rounding up (zero gradient).

        >>> minidl.tensor([1.5, -1.5]).ceil()
        tensor([ 2., -1.])
        """
        return _F.Ceil.apply(self)

    def round(self) -> Tensor:
        """Element-wise rounding to the nearest integer, halves to even (zero gradient).

        >>> minidl.tensor([0.5, 1.5, 2.6]).round()
        tensor([0., 2., 3.])
        """
        return _F.Round.apply(self)

    def trunc(self) -> Tensor:
        """Element-wise rounding toward zero (zero gradient).

        >>> minidl.tensor([1.7, -1.7]).trunc()
        tensor([ 1., -1.])
        """
        return _F.Trunc.apply(self)

    def clip(self, min: _TensorLike | None = None, max: _TensorLike | None = None) -> Tensor:
        """Limit values to [min, max] (``torch.clamp``); the gradient flows where min <= x <= max.

        >>> minidl.tensor([-2.0, 0.5, 3.0]).clip(-1.0, 1.0)
        tensor([-1. ,  0.5,  1. ])
        """
        return self.clamp(min, max)

    def clamp(self, min: _TensorLike | None = None, max: _TensorLike | None = None) -> Tensor:
        """:meth:`clip` under PyTorch's name; bounds may be numbers or tensors (with gradients).

        The result's dtype promotes with the bounds' (``int.clamp(min=1.5)`` is float).

        >>> minidl.tensor([-2.0, 3.0]).clamp(min=0.0)
        tensor([0., 3.])
        """
        if min is None and max is None:
            raise ValueError("clamp: give at least one of min and max")
        bounds = _clamp_bounds(min, max, "clamp")
        dtype = _dtypes.result_dtype(self, *[_scalar_or_array(b) for b in bounds])
        x = self if self.dtype == dtype else self.astype(dtype)
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            # the gradient goes to a bound where it is the value taken, as in torch
            if min is not None:
                x = where(x < min, min, x)
            if max is not None:
                x = where(x > max, max, x)
            return x
        return _F.Clip.apply(x, min=min, max=max)

    def _as_float(self):
        dtype = _dtypes.float_dtype_of(self._data.dtype)
        return self if dtype == self._data.dtype else self.astype(dtype)

    # ------------------------------------------------------------------ dtype
    def astype(self, dtype: DTypeLike) -> Tensor:
        """This tensor converted to ``dtype`` (differentiable between float dtypes).

        >>> minidl.ones(2).astype("float64").dtype
        dtype('float64')
        """
        dtype = np.dtype(dtype)
        _check_dtype(dtype, "astype")
        if dtype == self.dtype:
            return self
        if dtype.kind != "f" or not self._requires_grad:
            return Tensor._wrap(self._data.astype(dtype))
        return _F.Cast.apply(self, dtype=dtype)

    def type(self, dtype: DTypeLike | None = None) -> Any:
        """The dtype's name without ``dtype``; with it, this tensor converted.

        >>> minidl.ones(1).type()
        'float32'
        """
        return str(self.dtype) if dtype is None else self.astype(dtype)

    def float(self) -> Tensor:
        """This tensor as float32.

        >>> minidl.arange(2).float()
        tensor([0., 1.])
        """
        return self.astype(np.float32)

    def double(self) -> Tensor:
        """This tensor as float64.

        >>> minidl.ones(1).double().dtype
        dtype('float64')
        """
        return self.astype(np.float64)

    def long(self) -> Tensor:
        """This tensor as int64.

        >>> minidl.tensor([1.7]).long()
        tensor([1])
        """
        return self.astype(np.int64)

    def int(self) -> Tensor:
        """This tensor as int32.

        >>> minidl.tensor([1.7]).int().dtype
        dtype('int32')
        """
        return self.astype(np.int32)

    def bool(self) -> Tensor:
        """This tensor as bool.

        >>> minidl.tensor([0, 2]).bool()
        tensor([False,  True], dtype=bool)
        """
        return self.astype(np.bool_)


# ---------------------------------------------------------------- helpers of the operations


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _shape(value):
    return np.shape(value._data if isinstance(value, Tensor) else value)


def _plain(value):
    """A Tensor's array; anything else as it is."""
    return value._data if isinstance(value, Tensor) else value


def _dtype_of(value):
    return value.dtype if isinstance(value, (Tensor, np.ndarray, np.generic)) else type(value)


def _scalar_or_array(value):
    """What promotion sees of an operand: Python numbers stay numbers, the rest arrays."""
    if isinstance(value, (Tensor, bool, int, float)):
        return value
    return np.asarray(value)


def _is_dtype_name(value):
    if not isinstance(value, str):
        return False
    try:
        np.dtype(value)
    except TypeError:
        return False
    return True


def _correction(correction, unbiased):
    if correction is not None and unbiased is not None:
        raise TypeError("var: give correction or unbiased, not both")
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1 if correction is None else correction


def _binary(function, a, b, floats=False):
    """``function`` applied to ``a`` and ``b`` cast to their promoted dtype (torch's rules).

    ``floats``: the operation is defined on floats (true division), so integer
    results become the default float dtype.
    """
    a, b = _operand(a), _operand(b)
    # the common cases need no promotion: two tensors of one float dtype, or a float
    # tensor and a Python number
    if type(a) is Tensor and a._data.dtype.kind == "f":
        if (type(b) is Tensor and b._data.dtype == a._data.dtype) or type(b) in (int, float):
            return function.apply(a, b)
    if function is _F.Sub and (_is_bool(a) or _is_bool(b)):
        raise RuntimeError(
            "Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
            "trying to invert a mask, use the `~` or `logical_not()` operator instead."
        )
    dtype = _dtypes.result_dtype(a, b)
    if floats and dtype.kind != "f":
        dtype = get_default_dtype()
    return function.apply(_cast(a, dtype), _cast(b, dtype))


def _is_bool(operand):
    return isinstance(operand, bool) or (isinstance(operand, Tensor) and operand.dtype == np.bool_)


def _cast(operand, dtype):
    if isinstance(operand, Tensor):
        return operand if operand.dtype == dtype else operand.astype(dtype)
    if isinstance(operand, bool) and dtype.kind != "b":
        return int(operand)
    return operand  # a Python number: numpy keeps the array's dtype (NEP 50)


def _check_in_place_result(target, result):
    if result.shape != target.shape:
        raise RuntimeError(
            f"output with shape {list(target.shape)} doesn't match the broadcast shape "
            f"{list(result.shape)}"
        )
    source, destination = result.dtype, target.dtype
    if (source.kind == "f" and destination.kind in "biu") or (
        source.kind in "iu" and destination.kind == "b"
    ):
        raise RuntimeError(
            f"result type {source} can't be cast to the desired output type {destination}"
        )


def _fill_value(value, dtype):
    """A fill value in ``dtype`` (torch casts it: 0.5 into an int tensor is 0)."""
    if isinstance(value, Tensor):
        return value if value.dtype == dtype else value.astype(dtype)
    return Tensor._wrap(np.asarray(value).astype(dtype))


def _check_reducible(shape, dim, where):
    """Refuse a max/min/arg over an empty dim (there is no value to return), as PyTorch."""
    axes = _F._normalize_axes(dim, len(shape), where)
    if builtins.any(shape[a] == 0 for a in axes) or (dim is None and 0 in shape):
        raise RuntimeError(
            f"{where}(): expected a non-empty tensor along the reduced dims, got shape {shape}"
        )


def _index_array(index, where):
    array = np.asarray(index._data if isinstance(index, Tensor) else index)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{where}: expected an integer index, got dtype {array.dtype}")
    return array.astype(np.int64)  # a copy: backward reads it later


def _check_index_range(index, length, where):
    if index.size and (index.min() < 0 or index.max() >= length):
        bad = int(index.min()) if index.min() < 0 else int(index.max())
        raise IndexError(f"{where}: index {bad} is out of bounds for a dim of size {length}")


def _is_advanced(item):
    return isinstance(item, np.ndarray) or (
        isinstance(item, (list, tuple)) and not isinstance(item, str)
    )


_NO_INDEX = object()  # no second indexing step


def _torch_index(index, ndim):
    """``index`` split in two steps that give PyTorch's layout: (first, second).

    numpy moves the dims of advanced indices to the front when they are separated
    by a slice, and counts a plain integer as advanced when arrays are present;
    PyTorch applies integers first. So when both integers and arrays are present,
    the integers (and new axes) go in a first, basic step and the rest in a second.
    ``second`` is ``_NO_INDEX`` when one step is enough.
    """
    items = index if isinstance(index, tuple) else (index,)
    has_array = builtins.any(_is_advanced(item) for item in items)
    has_int = builtins.any(
        isinstance(item, (int, np.integer)) and not isinstance(item, bool) for item in items
    )
    if not (has_array and has_int):
        return index, _NO_INDEX
    used = builtins.sum(
        (np.ndim(item) if getattr(np.asarray(item), "dtype", None) == np.bool_ else 1)
        if _is_advanced(item)
        else (0 if item is None or item is Ellipsis else 1)
        for item in items
    )
    expanded = []
    for item in items:
        if item is Ellipsis:
            expanded.extend([slice(None)] * (ndim - used))
        else:
            expanded.append(item)
    first, second = [], []
    for item in expanded:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            first.append(item)
        elif item is None:
            first.append(None)
            second.append(slice(None))
        elif _is_advanced(item):
            count = np.ndim(item) if np.asarray(item).dtype == np.bool_ else 1
            first.extend([slice(None)] * count)
            second.append(item)
        else:
            first.append(slice(None))
            second.append(item)
    return tuple(first), tuple(second)


def _operand(value):
    """Tensors and Python numbers pass through; the rest (lists, arrays, numpy scalars)
    become constant tensors."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()  # numpy scalars promote like Python numbers, as in torch
    if isinstance(value, (Tensor, int, float)):
        return value
    array = np.asarray(value)
    _check_dtype(array.dtype, "operand")
    return Tensor._wrap(array)


def _plain_index(index):
    """An index with every Tensor (and list) in it turned into a numpy array (a copy, so a
    later change of the index tensor does not change what backward reads); a 0-d integer
    tensor is an int, as in PyTorch."""
    if isinstance(index, Tensor):
        if index.ndim == 0 and index.dtype.kind in "iu":
            return int(index._data)
        return index._data.copy()
    if isinstance(index, tuple):
        return tuple(_plain_index(item) for item in index)
    if isinstance(index, list):
        return np.asarray([_plain_index(item) for item in index])
    return index


def _infer_array(data, dtype, copy):
    if isinstance(data, Tensor):
        data = data._data
    elif isinstance(data, (list, tuple)) and builtins.any(isinstance(d, Tensor) for d in data):
        data = [d._data if isinstance(d, Tensor) else d for d in data]
    explicit = _as_dtype(dtype)
    from_python = not isinstance(data, (np.ndarray, np.generic))
    array = np.array(data, dtype=explicit, copy=copy) if copy else np.asarray(data, explicit)
    if explicit is None and from_python and array.dtype == np.float64:
        array = array.astype(get_default_dtype())  # Python floats: the default float dtype
    return array


def tensor(
    data: _TensorLike, dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, nested lists or an array).

    Python floats become the default float dtype (float32 unless
    :func:`set_default_dtype` says); numpy arrays keep their
    dtype (float32 or float64, integer or bool). Strings, objects and float16
    are refused.

    >>> minidl.tensor([1.0, 2.0])
    tensor([1., 2.])
    >>> minidl.tensor(np.zeros((2, 3))).dtype
    dtype('float64')
    """
    try:
        array = _infer_array(data, dtype, copy=True)
    except (ValueError, TypeError) as error:
        raise TypeError(f"tensor: cannot make a numeric array from the data ({error})") from None
    _check_dtype(array.dtype, "tensor")
    return Tensor._of(array, requires_grad=requires_grad)


def from_numpy(array: ArrayLike, requires_grad: bool = False) -> Tensor:
    """A tensor sharing memory with the numpy ``array`` (no copy), keeping its dtype.

    >>> a = np.zeros(3, dtype=np.float32)
    >>> t = minidl.from_numpy(a)
    >>> a[0] = 5.0
    >>> t
    tensor([5., 0., 0.])
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    _check_dtype(array.dtype, "from_numpy")
    return Tensor._of(array, requires_grad=requires_grad)


def _clamp_bounds(min, max, where):
    """The bounds given (numbers or Tensors), refusing anything else with a TypeError."""
    bounds = [b for b in (min, max) if b is not None]
    for bound in bounds:
        if isinstance(bound, bool) or not isinstance(bound, (numbers.Real, Tensor)):
            raise TypeError(
                f"{where}: expected min and max as numbers or Tensors, got {type(bound).__name__}"
            )
    return bounds


def _like(other, where):
    """The array whose shape (and dtype) a ``*_like`` factory copies: a Tensor's, or
    numbers' (a list or an array); anything else raises TypeError naming ``where``."""
    data = other._data if isinstance(other, Tensor) else np.asarray(other)
    if data.dtype.kind not in "biuf":
        raise TypeError(
            f"{where}: expected a Tensor (or numbers) to copy the shape of, got "
            f"{type(other).__name__}"
        )
    return data


def _shape_of(shape, where):
    """``shape`` (sizes, or one sequence of them) as a tuple of ints >= 0, as torch checks it:
    a size that is not an int raises TypeError, a negative one RuntimeError."""
    shape = _int_list(tuple(shape), where, "sizes")
    for size in shape:
        if size < 0:
            raise RuntimeError(f"{where}: negative dimension {size} in size {list(shape)}")
    return shape


def _float_dtype(dtype, where):
    dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{where}: expected dtype float32 or float64, got {dtype}")
    return dtype


def zeros(
    *shape: int | Sequence[int], dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """A tensor of zeros; ``zeros(2, 3)`` or ``zeros((2, 3))``. Float32 unless ``dtype`` says.

    >>> minidl.zeros(2, 3).shape
    (2, 3)
    """
    array = np.zeros(
        _shape_of(shape, "zeros"), dtype=get_default_dtype() if dtype is None else dtype
    )
    return Tensor._of(array, requires_grad=requires_grad)


def ones(
    *shape: int | Sequence[int], dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """A tensor of ones; ``ones(2, 3)`` or ``ones((2, 3))``. Float32 unless ``dtype`` says.

    >>> minidl.ones(3)
    tensor([1., 1., 1.])
    """
    array = np.ones(_shape_of(shape, "ones"), dtype=get_default_dtype() if dtype is None else dtype)
    return Tensor._of(array, requires_grad=requires_grad)


def zeros_like(
    other: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """A tensor of zeros with the shape (and, unless ``dtype`` says, the dtype) of ``other``.

    >>> minidl.zeros_like(minidl.ones(2, dtype="float64"))
    tensor([0., 0.], dtype=float64)
    """
    data = _like(other, "zeros_like")
    return Tensor._of(np.zeros(data.shape, dtype=dtype or data.dtype), requires_grad=requires_grad)


def ones_like(other: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones with the shape (and, unless ``dtype`` says, the dtype) of ``other``.

    >>> minidl.ones_like(minidl.zeros(2))
    tensor([1., 1.])
    """
    data = _like(other, "ones_like")
    return Tensor._of(np.ones(data.shape, dtype=dtype or data.dtype), requires_grad=requires_grad)


def randn(
    *shape: int | Sequence[int], dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """Standard-normal samples from minidl's generator (see :func:`minidl.manual_seed`).

    >>> minidl.manual_seed(0)
    >>> minidl.randn(2, 3).shape
    (2, 3)
    """
    float_dtype = _float_dtype(dtype, "randn")
    array = _random.generator().standard_normal(_shape_of(shape, "randn"), dtype=float_dtype)
    return Tensor._of(array, requires_grad=requires_grad)


def rand(
    *shape: int | Sequence[int], dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """Samples uniform on [0, 1) from minidl's generator (see :func:`minidl.manual_seed`).

    >>> minidl.rand(4).shape
    (4,)
    """
    float_dtype = _float_dtype(dtype, "rand")
    array = _random.generator().random(_shape_of(shape, "rand"), dtype=float_dtype)
    return Tensor._of(array, requires_grad=requires_grad)


def arange(
    start: float,
    stop: float | None = None,
    step: float = 1,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """Evenly spaced values in [start, stop), like ``numpy.arange`` and ``torch.arange``.

    Integers give int64; any float argument gives float32 unless ``dtype`` says.

    >>> minidl.arange(4)
    tensor([0, 1, 2, 3])
    >>> minidl.arange(0, 1, 0.25)
    tensor([0.  , 0.25, 0.5 , 0.75])
    """
    if stop is None:
        start, stop = 0, start
    for name, value in (("start", start), ("end", stop), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"arange: {name} must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise RuntimeError(f"arange: {name} must be finite, got {value}")
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.int64 if is_int else get_default_dtype()
    return Tensor._of(np.arange(start, stop, step, dtype=dtype), requires_grad=requires_grad)


def full(
    size: int | Sequence[int],
    fill_value: float,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``; the dtype follows the value, as torch.

    >>> minidl.full((2,), 7)
    tensor([7, 7])
    >>> minidl.full((2,), 0.5).dtype
    dtype('float32')
    """
    if dtype is None:
        dtype = (
            _dtypes.scalar_dtype(fill_value)
            if isinstance(fill_value, (bool, int, float))
            else (np.asarray(fill_value).dtype)
        )
    array = np.full(_shape_of((size,), "full"), fill_value, dtype)
    return Tensor._of(array, requires_grad=requires_grad)


def full_like(
    other: Tensor,
    fill_value: float,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of ``other``'s shape (and dtype, unless ``dtype`` says) filled with ``fill_value``.

    >>> minidl.full_like(minidl.zeros(2), 3)
    tensor([3., 3.])
    """
    data = _like(other, "full_like")
    array = np.full(data.shape, fill_value, dtype or data.dtype)
    return Tensor._of(array, requires_grad=requires_grad)


def empty(
    *shape: int | Sequence[int], dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """A tensor whose values are whatever the memory held (the default float dtype).

    >>> minidl.empty(2, 3).shape
    (2, 3)
    """
    array = np.empty(
        _shape_of(shape, "empty"), dtype=get_default_dtype() if dtype is None else dtype
    )
    return Tensor._of(array, requires_grad=requires_grad)


def eye(
    n: int, m: int | None = None, dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """The (n, m) identity matrix (m = n by default).

    >>> minidl.eye(2)
    tensor([[1., 0.],
            [0., 1.]])
    """
    for name, value in (("n", n), ("m", m)):
        if value is not None and (not _checks.is_int(value) or value < 0):
            raise RuntimeError(f"eye: {name} must be an integer >= 0, got {value!r}")
    array = np.eye(n, m, dtype=get_default_dtype() if dtype is None else dtype)
    return Tensor._of(array, requires_grad=requires_grad)


def linspace(
    start: float,
    end: float,
    steps: int,
    dtype: DTypeLike | None = None,
    requires_grad: bool = False,
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive.

    >>> minidl.linspace(0, 1, 5)
    tensor([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    array = np.linspace(start, end, int(steps)).astype(_float_dtype(dtype, "linspace"))
    return Tensor._of(array, requires_grad=requires_grad)


def randint(
    low: int,
    high: int | None = None,
    size: int | Sequence[int] | None = None,
    dtype: DTypeLike | None = None,
) -> Tensor:
    """Integers uniform in [low, high) from minidl's generator (int64), as ``torch.randint``.

    ``randint(high, size)`` or ``randint(low, high, size)``.

    >>> minidl.randint(0, 10, (3,)).dtype
    dtype('int64')
    """
    if size is None:
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: size is required, e.g. randint(0, 10, (3,))")
    size = _shape_of((size,), "randint")
    if not low < high:  # type: ignore[operator]  # an int once size is known
        raise RuntimeError(f"randint: expected low < high, got low={low}, high={high}")
    array = _random.generator().integers(low, high, size)
    return Tensor._of(array.astype(np.int64 if dtype is None else dtype))


def randn_like(
    other: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False
) -> Tensor:
    """Standard-normal samples shaped like ``other`` (its float dtype unless ``dtype`` says).

    >>> minidl.randn_like(minidl.zeros(2, 3)).shape
    (2, 3)
    """
    other = _like(other, "randn_like")
    dtype = dtype or _dtypes.float_dtype_of(np.dtype(other.dtype))
    return randn(*other.shape, dtype=dtype, requires_grad=requires_grad)


def rand_like(other: Tensor, dtype: DTypeLike | None = None, requires_grad: bool = False) -> Tensor:
    """Samples uniform on [0, 1) shaped like ``other``.

    >>> minidl.rand_like(minidl.zeros(2)).shape
    (2,)
    """
    other = _like(other, "rand_like")
    dtype = dtype or _dtypes.float_dtype_of(np.dtype(other.dtype))
    return rand(*other.shape, dtype=dtype, requires_grad=requires_grad)


# ---------------------------------------------------------------- functions of tensors
# The same operations as Tensor's methods, under the names torch and numpy give them.
# Each refuses a first argument that is not a Tensor (a list, an array), as torch's
# functions do, with a TypeError naming the function instead of an AttributeError.


def _function_of(method, name):
    """``method`` of Tensor as the module-level function ``minidl.<name>``."""

    @functools.wraps(method)
    def function(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(
                f"minidl.{name}: expected a minidl Tensor as input (convert with "
                f"minidl.tensor), got {type(input).__name__}"
            )
        return method(input, *args, **kwargs)

    function.__name__ = function.__qualname__ = name
    return function


sum = _function_of(Tensor.sum, "sum")
mean = _function_of(Tensor.mean, "mean")
prod = _function_of(Tensor.prod, "prod")
max = _function_of(Tensor.max, "max")
min = _function_of(Tensor.min, "min")
amax = _function_of(Tensor.amax, "amax")
amin = _function_of(Tensor.amin, "amin")
argmax = _function_of(Tensor.argmax, "argmax")
argmin = _function_of(Tensor.argmin, "argmin")
var = _function_of(Tensor.var, "var")
std = _function_of(Tensor.std, "std")
logsumexp = _function_of(Tensor.logsumexp, "logsumexp")
norm = _function_of(Tensor.norm, "norm")
cumsum = _function_of(Tensor.cumsum, "cumsum")
sort = _function_of(Tensor.sort, "sort")
argsort = _function_of(Tensor.argsort, "argsort")
topk = _function_of(Tensor.topk, "topk")
reshape = _function_of(Tensor.reshape, "reshape")
permute = _function_of(Tensor.permute, "permute")
transpose = _function_of(Tensor.transpose, "transpose")
flatten = _function_of(Tensor.flatten, "flatten")
unsqueeze = _function_of(Tensor.unsqueeze, "unsqueeze")
squeeze = _function_of(Tensor.squeeze, "squeeze")
flip = _function_of(Tensor.flip, "flip")
roll = _function_of(Tensor.roll, "roll")
split = _function_of(Tensor.split, "split")
chunk = _function_of(Tensor.chunk, "chunk")
gather = _function_of(Tensor.gather, "gather")
scatter = _function_of(Tensor.scatter, "scatter")
scatter_add = _function_of(Tensor.scatter_add, "scatter_add")
index_select = _function_of(Tensor.index_select, "index_select")
masked_fill = _function_of(Tensor.masked_fill, "masked_fill")
tril = _function_of(Tensor.tril, "tril")
triu = _function_of(Tensor.triu, "triu")
exp = _function_of(Tensor.exp, "exp")
log = _function_of(Tensor.log, "log")
log2 = _function_of(Tensor.log2, "log2")
log10 = _function_of(Tensor.log10, "log10")
log1p = _function_of(Tensor.log1p, "log1p")
expm1 = _function_of(Tensor.expm1, "expm1")
sqrt = _function_of(Tensor.sqrt, "sqrt")
rsqrt = _function_of(Tensor.rsqrt, "rsqrt")
sin = _function_of(Tensor.sin, "sin")
cos = _function_of(Tensor.cos, "cos")
erf = _function_of(Tensor.erf, "erf")
tanh = _function_of(Tensor.tanh, "tanh")
sigmoid = _function_of(Tensor.sigmoid, "sigmoid")
relu = _function_of(Tensor.relu, "relu")
abs = _function_of(Tensor.abs, "abs")
sign = _function_of(Tensor.sign, "sign")
floor = _function_of(Tensor.floor, "floor")
ceil = _function_of(Tensor.ceil, "ceil")
round = _function_of(Tensor.round, "round")
trunc = _function_of(Tensor.trunc, "trunc")
clip = _function_of(Tensor.clip, "clip")
clamp = _function_of(Tensor.clamp, "clamp")
neg = _function_of(Tensor.__neg__, "neg")
isnan = _function_of(Tensor.isnan, "isnan")
isinf = _function_of(Tensor.isinf, "isinf")
isfinite = _function_of(Tensor.isfinite, "isfinite")
isclose = _function_of(Tensor.isclose, "isclose")
allclose = _function_of(Tensor.allclose, "allclose")
logical_not = _function_of(Tensor.logical_not, "logical_not")
logical_and = _function_of(Tensor.logical_and, "logical_and")
logical_or = _function_of(Tensor.logical_or, "logical_or")
eq = _function_of(Tensor.eq, "eq")
ne = _function_of(Tensor.ne, "ne")
lt = _function_of(Tensor.lt, "lt")
le = _function_of(Tensor.le, "le")
gt = _function_of(Tensor.gt, "gt")
ge = _function_of(Tensor.ge, "ge")
outer = _function_of(Tensor.outer, "outer")
softmax = _function_of(Tensor.softmax, "softmax")
log_softmax = _function_of(Tensor.log_softmax, "log_softmax")


def add(a: _TensorLike, b: _TensorLike) -> Tensor:
    """``a + b`` with broadcasting. Shapes: any two that broadcast.

    >>> minidl.add(minidl.ones(2, 3), minidl.tensor([1.0, 2.0, 3.0])).shape
    (2, 3)
    """
    return _binary(_F.Add, a, b)


def sub(a: _TensorLike, b: _TensorLike) -> Tensor:
    """``a - b`` with broadcasting.

    >>> minidl.sub(minidl.ones(2), 1.0)
    tensor([0., 0.])
    """
    return _binary(_F.Sub, a, b)


def mul(a: _TensorLike, b: _TensorLike) -> Tensor:
    """``a * b`` (element-wise) with broadcasting.

    >>> minidl.mul(minidl.ones(2), 3.0)
    tensor([3., 3.])
    """
    return _binary(_F.Mul, a, b)


def div(a: _TensorLike, b: _TensorLike) -> Tensor:
    """``a / b`` (true division) with broadcasting.

    >>> minidl.div(minidl.ones(2), 4.0)
    tensor([0.25, 0.25])
    """
    return _binary(_F.Div, a, b, floats=True)


def pow(a: _TensorLike, b: _TensorLike) -> Tensor:
    """``a ** b`` with broadcasting; either may be a tensor or a number.

    >>> minidl.pow(minidl.tensor([2.0, 3.0]), 2)
    tensor([4., 9.])
    """
    return _binary(_F.Pow, a, b)


def maximum(a: _TensorLike, b: _TensorLike) -> Tensor:
    """Element-wise larger of ``a`` and ``b``; a tie splits the gradient in half.

    >>> minidl.maximum(minidl.tensor([1.0, 5.0]), minidl.tensor([3.0, 2.0]))
    tensor([3., 5.])
    """
    return _binary(_F.Maximum, a, b)


def minimum(a: _TensorLike, b: _TensorLike) -> Tensor:
    """Element-wise smaller of ``a`` and ``b``; a tie splits the gradient in half.

    >>> minidl.minimum(minidl.tensor([1.0, 5.0]), minidl.tensor([3.0, 2.0]))
    tensor([1., 2.])
    """
    return _binary(_F.Minimum, a, b)


def matmul(a: _TensorLike, b: _TensorLike) -> Tensor:
    """Matrix product with numpy's rules: (..., n, k) @ (..., k, m) -> (..., n, m).

    Batch dims broadcast; a 1-d operand is a vector (its dim is dropped from the result).

    >>> minidl.matmul(minidl.ones(4, 2, 3), minidl.ones(3, 5)).shape
    (4, 2, 5)
    """
    return _binary(_F.MatMul, a, b)


def _joined_operands(tensors, where):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(
            f"{where}: expected a list or tuple of tensors, got {type(tensors).__name__}"
        )
    operands = [_operand(t) for t in tensors]
    if not operands:
        raise ValueError(f"{where}: expected a non-empty list of tensors")
    dtype = _dtypes.result_dtype(*[o if isinstance(o, Tensor) else np.asarray(o) for o in operands])
    return [
        _cast(o if isinstance(o, Tensor) else Tensor._wrap(np.asarray(o)), dtype) for o in operands
    ]


def concatenate(
    tensors: Sequence[Tensor],
    axis: int = 0,
    *,
    dim: int | None = None,
) -> Tensor:
    """Join tensors along an existing dim (``torch.cat``; dtypes promote).

    >>> minidl.concatenate([minidl.ones(2, 3), minidl.zeros(1, 3)]).shape
    (3, 3)
    """
    axis = axis if dim is None else dim
    return _F.Concatenate.apply(*_joined_operands(tensors, "cat"), axis=axis)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing ``dim``: :func:`concatenate` under torch's name.

    >>> minidl.cat([minidl.ones(2), minidl.zeros(1)])
    tensor([1., 1., 0.])
    """
    return _F.Concatenate.apply(*_joined_operands(tensors, "cat"), axis=dim)


def stack(
    tensors: Sequence[Tensor],
    axis: int = 0,
    *,
    dim: int | None = None,
) -> Tensor:
    """Join same-shaped tensors along a new dim.

    >>> minidl.stack([minidl.ones(3), minidl.zeros(3)], dim=1).shape
    (3, 2)
    """
    axis = axis if dim is None else dim
    return _F.Stack.apply(*_joined_operands(tensors, "stack"), axis=axis)


def where(condition: _TensorLike, x: _TensorLike, y: _TensorLike) -> Tensor:
    """Element-wise ``x`` where ``condition`` holds, else ``y``; all three broadcast.

    >>> a = minidl.tensor([1.0, -1.0])
    >>> minidl.where(a > 0, a, 0.0)
    tensor([1., 0.])
    """
    condition = condition._data if isinstance(condition, Tensor) else condition
    x, y = _operand(x), _operand(y)
    dtype = _dtypes.result_dtype(x, y)
    x, y = (v if isinstance(v, Tensor) else np.asarray(v, dtype) for v in (x, y))
    return _F.Where.apply(condition, _cast(x, dtype), _cast(y, dtype))


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation over tensors, with gradients (``torch.einsum``).

    Explicit (``"ij,jk->ik"``) and implicit (``"ij,jk"``) forms; each operand's
    subscripts name each of its dims once (no ellipsis, no repeated letters).

    >>> minidl.einsum("ij,jk->ik", minidl.ones(2, 3), minidl.ones(3, 4)).shape
    (2, 4)
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    equation = equation.replace(" ", "")
    if "." in equation:
        raise NotImplementedError("einsum: ellipsis ('...') subscripts are not supported")
    subscripts, arrow, output = equation.partition("->")
    inputs = subscripts.split(",")
    if not arrow:
        letters = "".join(inputs)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(inputs) != len(operands):
        raise ValueError(f"einsum: {len(inputs)} subscripts for {len(operands)} operands")
    for letters, operand in zip(inputs, operands):
        if len(set(letters)) != len(letters):
            raise NotImplementedError(
                f"einsum: repeated subscripts in one operand ({letters!r}) are not supported"
            )
        if len(letters) != len(_shape(operand)):
            raise ValueError(
                f"einsum: subscripts {letters!r} do not match an operand of shape {_shape(operand)}"
            )
    sizes: dict[str, int] = {}
    for letters, operand in zip(inputs, operands):
        for letter, size in zip(letters, _shape(operand)):
            if sizes.setdefault(letter, size) != size and 1 not in (size, sizes[letter]):
                raise ValueError(
                    f"einsum: subscript {letter!r} has size {sizes[letter]} in one operand and "
                    f"{size} in another"
                )
    arrays = [_operand(o) for o in operands]
    dtype = _dtypes.result_dtype(*arrays)
    return _F.Einsum.apply(*[_cast(o, dtype) for o in arrays], inputs=tuple(inputs), output=output)
