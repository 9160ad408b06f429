"""``Tensor``, a numpy array with a gradient and a record of its making, and its factories."""

import numpy as np

from . import _functions as _F
from . import autograd as _autograd
from . import random as _random

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_DEFAULT_FLOAT = np.dtype(np.float32)


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

    def __init__(self, data, requires_grad=False):
        array = data.data if isinstance(data, Tensor) else np.asarray(data)
        _check_dtype(array.dtype, "Tensor")
        self.data = array
        self.grad = None
        self._ctx = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array):
        """A tensor around ``array`` with no checks: for results the framework made."""
        tensor = cls.__new__(cls)
        tensor.data = array
        tensor.grad = None
        tensor._ctx = None
        tensor.requires_grad = False
        return tensor

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self):
        """The shape, a tuple of ints."""
        return self.data.shape

    @property
    def ndim(self):
        """The number of dimensions."""
        return self.data.ndim

    @property
    def dtype(self):
        """The numpy dtype of the data."""
        return self.data.dtype

    @property
    def size(self):
        """The number of elements (numpy's ``size``; torch's ``numel()``)."""
        return self.data.size

    def numel(self):
        """The number of elements."""
        return self.data.size

    @property
    def is_leaf(self):
        """True for tensors the user made (not results of recorded operations)."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The record of the operation that made this tensor, or None for a leaf."""
        return self._ctx

    def requires_grad_(self, requires_grad=True):
        """Set whether gradients are computed for this leaf tensor; returns self."""
        if requires_grad and self.data.dtype not in _FLOAT_DTYPES:
            raise TypeError(
                f"requires_grad: only float32 and float64 tensors can require gradients, "
                f"this one is {self.data.dtype}"
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError(
                "requires_grad_: this tensor is the result of a recorded operation; "
                "use .detach() to get a tensor that does not require grad"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if self._ctx is not None:
            import weakref

            self._ctx._retained = weakref.ref(self)
        return self

    # ------------------------------------------------------------------ conversions
    def numpy(self):
        """The data as a numpy array (shared, not copied)."""
        return self.data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted to a Python number, "
                f"this one has shape {self.shape}"
            )
        return self.data.item()

    def tolist(self):
        """The data as nested Python lists."""
        return self.data.tolist()

    def detach(self):
        """A tensor sharing this data, cut from the graph (it does not require grad)."""
        return Tensor._wrap(self.data)

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous"
            )
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __repr__(self):
        prefix = "tensor("
        body = np.array2string(self.data, separator=", ", prefix=prefix)
        extras = []
        if self.data.dtype != _DEFAULT_FLOAT and self.data.dtype.kind == "f":
            extras.append(f"dtype={self.data.dtype}")
        elif self.data.dtype.kind != "f" and self.data.dtype != np.int64:
            extras.append(f"dtype={self.data.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.function.__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return prefix + body + "".join(", " + e for e in extras) + ")"

    # ------------------------------------------------------------------ autograd
    def backward(self, grad=None, retain_graph=False):
        """Compute the gradients of this tensor with respect to the leaves of its graph.

        A one-element tensor (a loss) needs no ``grad``; any other needs ``grad``,
        an array or Tensor of its shape (the vector of the vector-Jacobian product).
        Gradients are added to each leaf's ``.grad``. The values the graph saved
        are freed afterwards unless ``retain_graph=True``.

        >>> w = minidl.tensor([1.0, -2.0], requires_grad=True)
        >>> (w * w).sum().backward()
        >>> w.grad
        tensor([ 2., -4.])
        """
        _autograd.backward(self, grad, retain_graph=retain_graph)

    def zero_grad(self):
        """Forget the accumulated gradient (sets ``.grad`` to None)."""
        self.grad = None

    # ------------------------------------------------------------------ arithmetic
    # Operands broadcast as in numpy; each gradient is summed back to its input's shape.
    def __add__(self, other):
        return _F.Add.apply(self, _operand(other))

    def __radd__(self, other):
        return _F.Add.apply(_operand(other), self)

    def __sub__(self, other):
        return _F.Sub.apply(self, _operand(other))

    def __rsub__(self, other):
        return _F.Sub.apply(_operand(other), self)

    def __mul__(self, other):
        return _F.Mul.apply(self, _operand(other))

    def __rmul__(self, other):
        return _F.Mul.apply(_operand(other), self)

    def __truediv__(self, other):
        return _F.Div.apply(self, _operand(other))

    def __rtruediv__(self, other):
        return _F.Div.apply(_operand(other), self)

    def __pow__(self, other):
        return _F.Pow.apply(self, _operand(other))

    def __rpow__(self, other):
        return _F.Pow.apply(_operand(other), self)

    def __matmul__(self, other):
        return _F.MatMul.apply(self, _operand(other))

    def __rmatmul__(self, other):
        return _F.MatMul.apply(_operand(other), self)

    def __neg__(self):
        """``-x``.

        >>> -minidl.ones(2)
        tensor([-1., -1.])
        """
        return _F.Neg.apply(self)

    def __abs__(self):
        return _F.Abs.apply(self)

    # ------------------------------------------------------------------ comparisons
    # Element-wise, giving bool tensors that do not require grad.
    def __lt__(self, other):
        return self._compare(np.less, other)

    def __le__(self, other):
        return self._compare(np.less_equal, other)

    def __gt__(self, other):
        return self._compare(np.greater, other)

    def __ge__(self, other):
        return self._compare(np.greater_equal, other)

    def __eq__(self, other):
        return self._compare(np.equal, other)

    def __ne__(self, other):
        return self._compare(np.not_equal, other)

    def _compare(self, ufunc, other):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(_F._broadcasting(ufunc.__name__, ufunc, self.data, other))

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, index):
        """``x[index]``: ints, slices, None, Ellipsis, integer or boolean arrays (or tensors).

        With integer arrays, repeated indices accumulate their gradients.

        >>> minidl.arange(5.0)[[0, 0, 3]]
        tensor([0., 0., 3.])
        """
        return _F.GetItem.apply(self, index=_plain_index(index))

    def __setitem__(self, index, value):
        if self.requires_grad and _autograd.is_grad_enabled():
            raise RuntimeError(
                "setitem: in-place assignment into a tensor that requires grad is not "
                "supported; build the value with where()/concatenate(), or assign under "
                "minidl.no_grad()"
            )
        self.data[_plain_index(index)] = value.data if isinstance(value, Tensor) else value

    # ------------------------------------------------------------------ reductions
    def sum(self, axis=None, keepdims=False):
        """Sum over ``axis`` (None: all; an int or a tuple); ``keepdims`` keeps them as size 1.

        Float data is accumulated in float64 by the compiled kernels.

        >>> minidl.ones(4, 3).sum(axis=0)
        tensor([4., 4., 4.])
        """
        return _F.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        """Mean over ``axis`` (None: all; an int or a tuple).

        >>> minidl.tensor([[1.0, 3.0]]).mean(axis=1)
        tensor([2.])
        """
        return _F.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        """Largest value over ``axis`` (like ``torch.amax``: ties share the gradient).

        >>> minidl.tensor([[1.0, 5.0], [7.0, 2.0]]).max(axis=1)
        tensor([5., 7.])
        """
        return _F.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        """Smallest value over ``axis`` (like ``torch.amin``: ties share the gradient).

        >>> minidl.tensor([[1.0, 5.0], [7.0, 2.0]]).min(axis=0)
        tensor([1., 2.])
        """
        return _F.Min.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims=False, correction=1):
        """Variance over ``axis``: ``sum((x - mean)**2) / (count - correction)``.

        ``correction=1`` (the default, as in PyTorch) is the unbiased estimate;
        ``correction=0`` is numpy's default, the biased one.

        >>> minidl.tensor([1.0, 2.0, 3.0]).var()
        tensor(1.)
        """
        return _F.Var.apply(self, axis=axis, keepdims=keepdims, correction=correction)

    def argmax(self, axis=None, keepdims=False):
        """Indices of the largest values along ``axis`` (int64, no gradient).

        >>> minidl.tensor([[1.0, 5.0], [7.0, 2.0]]).argmax(axis=1)
        tensor([1, 0])
        """
        return Tensor._wrap(np.argmax(self.data, axis=axis, keepdims=keepdims).astype(np.int64))

    def argmin(self, axis=None, keepdims=False):
        """Indices of the smallest values along ``axis`` (int64, no gradient).

        >>> minidl.tensor([[1.0, 5.0], [7.0, 2.0]]).argmin(axis=1)
        tensor([0, 1])
        """
        return Tensor._wrap(np.argmin(self.data, axis=axis, keepdims=keepdims).astype(np.int64))

    def all(self, axis=None, keepdims=False):
        """Whether every element (along ``axis``) is true: a bool tensor, no gradient.

        >>> (minidl.ones(2) > 0).all()
        tensor(True, dtype=bool)
        """
        return Tensor._wrap(np.all(self.data, axis=axis, keepdims=keepdims))

    def any(self, axis=None, keepdims=False):
        """Whether any element (along ``axis``) is true: a bool tensor, no gradient.

        >>> (minidl.ones(2) > 1).any()
        tensor(False, dtype=bool)
        """
        return Tensor._wrap(np.any(self.data, axis=axis, keepdims=keepdims))

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape):
        """The same data in a new shape; one dim may be -1. ``reshape(2, 3)`` or ``((2, 3))``.

        >>> minidl.arange(6.0).reshape(2, 3).shape
        (2, 3)
        """
        return _F.Reshape.apply(self, shape=tuple(int(n) for n in _shape_of(shape)))

    def view(self, *shape):
        """:meth:`reshape` under PyTorch's name (minidl always copies-or-views as numpy does).

        >>> minidl.zeros(6).view(3, 2).shape
        (3, 2)
        """
        return self.reshape(*shape)

    def permute(self, *axes):
        """Reorder the axes: result axis i is input axis ``axes[i]``.

        >>> minidl.zeros(2, 3, 4).permute(2, 0, 1).shape
        (4, 2, 3)
        """
        return _F.Permute.apply(self, axes=tuple(int(a) for a in _shape_of(axes)))

    def transpose(self, *axes):
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

    @property
    def T(self):
        """All axes reversed (a matrix's transpose).

        >>> minidl.zeros(2, 3).T.shape
        (3, 2)
        """
        return self.transpose()

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dims ``start_dim`` to ``end_dim`` (inclusive) into one, as ``torch.flatten``.

        >>> minidl.zeros(2, 3, 4).flatten(start_dim=1).shape
        (2, 12)
        """
        if self.ndim == 0:
            return self.reshape(1)
        start = _F._normalize_axes(start_dim, self.ndim, "flatten")[0]
        end = _F._normalize_axes(end_dim, self.ndim, "flatten")[0]
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        merged = int(np.prod(self.shape[start : end + 1], dtype=np.int64))
        return self.reshape(*self.shape[:start], merged, *self.shape[end + 1 :])

    # ------------------------------------------------------------------ element-wise
    def exp(self):
        """Element-wise e**x.

        >>> minidl.zeros(2).exp()
        tensor([1., 1.])
        """
        return _F.Exp.apply(self)

    def log(self):
        """Element-wise natural logarithm.

        >>> minidl.ones(2).log()
        tensor([0., 0.])
        """
        return _F.Log.apply(self)

    def sqrt(self):
        """Element-wise square root.

        >>> minidl.tensor([4.0, 9.0]).sqrt()
        tensor([2., 3.])
        """
        return _F.Sqrt.apply(self)

    def tanh(self):
        """Element-wise hyperbolic tangent.

        >>> minidl.zeros(1).tanh()
        tensor([0.])
        """
        return _F.Tanh.apply(self)

    def sigmoid(self):
        """Element-wise logistic function 1 / (1 + exp(-x)), stable for large |x|.

        >>> minidl.zeros(1).sigmoid()
        tensor([0.5])
        """
        return _F.Sigmoid.apply(self)

    def relu(self):
        """Element-wise max(x, 0); the gradient at 0 is 0, as in PyTorch.

        >>> minidl.tensor([-1.0, 2.0]).relu()
        tensor([0., 2.])
        """
        return _F.ReLU.apply(self)

    def abs(self):
        """Element-wise absolute value; the gradient at 0 is 0.

        >>> minidl.tensor([-2.0, 3.0]).abs()
        tensor([2., 3.])
        """
        return _F.Abs.apply(self)

    def clip(self, min=None, max=None):
        """Limit values to [min, max] (``torch.clamp``); the gradient flows where min <= x <= max.

        >>> minidl.tensor([-2.0, 0.5, 3.0]).clip(-1.0, 1.0)
        tensor([-1. ,  0.5,  1. ])
        """
        return _F.Clip.apply(self, min=min, max=max)

    def clamp(self, min=None, max=None):
        """:meth:`clip` under PyTorch's name.

        >>> minidl.tensor([-2.0, 3.0]).clamp(min=0.0)
        tensor([0., 3.])
        """
        return _F.Clip.apply(self, min=min, max=max)

    # ------------------------------------------------------------------ dtype
    def astype(self, dtype):
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
        return _F.Cast.apply(self, dtype=dtype)

    def float(self):
        """This tensor as float32.

        >>> minidl.arange(2).float()
        tensor([0., 1.])
        """
        return self.astype(np.float32)

    def double(self):
        """This tensor as float64.

        >>> minidl.ones(1).double().dtype
        dtype('float64')
        """
        return self.astype(np.float64)


def _operand(value):
    """Tensors pass through; lists and arrays become constant tensors; scalars stay scalars."""
    if isinstance(value, (Tensor, int, float, bool, np.number)):
        return value
    array = np.asarray(value)
    _check_dtype(array.dtype, "operand")
    return Tensor._wrap(array)


def _plain_index(index):
    """An index with every Tensor (and list) in it turned into a numpy array."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(_plain_index(item) for item in index)
    if isinstance(index, list):
        return np.asarray([_plain_index(item) for item in index])
    return index


def _infer_array(data, dtype, copy):
    if isinstance(data, Tensor):
        data = data.data
    explicit = _as_dtype(dtype)
    from_python = not isinstance(data, (np.ndarray, np.generic))
    array = np.array(data, dtype=explicit, copy=copy) if copy else np.asarray(data, explicit)
    if explicit is None and from_python and array.dtype == np.float64:
        array = array.astype(_DEFAULT_FLOAT)  # Python floats become the default float32
    return array


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (a number, nested lists or an array).

    Python floats become float32 (minidl's default); numpy arrays keep their
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
    return Tensor(array, requires_grad=requires_grad)


def from_numpy(array, requires_grad=False):
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
    return Tensor(array, requires_grad=requires_grad)


def _shape_of(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _float_dtype(dtype, where):
    dtype = _DEFAULT_FLOAT if dtype is None else np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{where}: expected dtype float32 or float64, got {dtype}")
    return dtype


def zeros(*shape, dtype=None, requires_grad=False):
    """A tensor of zeros; ``zeros(2, 3)`` or ``zeros((2, 3))``. Float32 unless ``dtype`` says.

    >>> minidl.zeros(2, 3).shape
    (2, 3)
    """
    array = np.zeros(_shape_of(shape), dtype=_DEFAULT_FLOAT if dtype is None else dtype)
    return Tensor(array, requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    """A tensor of ones; ``ones(2, 3)`` or ``ones((2, 3))``. Float32 unless ``dtype`` says.

    >>> minidl.ones(3)
    tensor([1., 1., 1.])
    """
    array = np.ones(_shape_of(shape), dtype=_DEFAULT_FLOAT if dtype is None else dtype)
    return Tensor(array, requires_grad=requires_grad)


def zeros_like(other, dtype=None, requires_grad=False):
    """A tensor of zeros with the shape (and, unless ``dtype`` says, the dtype) of ``other``.

    >>> minidl.zeros_like(minidl.ones(2, dtype="float64"))
    tensor([0., 0.], dtype=float64)
    """
    data = other.data if isinstance(other, Tensor) else np.asarray(other)
    return Tensor(np.zeros(data.shape, dtype=dtype or data.dtype), requires_grad=requires_grad)


def ones_like(other, dtype=None, requires_grad=False):
    """A tensor of ones with the shape (and, unless ``dtype`` says, the dtype) of ``other``.

    >>> minidl.ones_like(minidl.zeros(2))
    tensor([1., 1.])
    """
    data = other.data if isinstance(other, Tensor) else np.asarray(other)
    return Tensor(np.ones(data.shape, dtype=dtype or data.dtype), requires_grad=requires_grad)


def randn(*shape, dtype=None, requires_grad=False):
    """Standard-normal samples from minidl's generator (see :func:`minidl.manual_seed`).

    >>> minidl.manual_seed(0)
    >>> minidl.randn(2, 3).shape
    (2, 3)
    """
    dtype = _float_dtype(dtype, "randn")
    array = _random.generator().standard_normal(_shape_of(shape), dtype=dtype)
    return Tensor(array, requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad=False):
    """Samples uniform on [0, 1) from minidl's generator (see :func:`minidl.manual_seed`).

    >>> minidl.rand(4).shape
    (4,)
    """
    dtype = _float_dtype(dtype, "rand")
    array = _random.generator().random(_shape_of(shape), dtype=dtype)
    return Tensor(array, requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False):
    """Evenly spaced values in [start, stop), like ``numpy.arange`` and ``torch.arange``.

    Integers give int64; any float argument gives float32 unless ``dtype`` says.

    >>> minidl.arange(4)
    tensor([0, 1, 2, 3])
    >>> minidl.arange(0, 1, 0.25)
    tensor([0.  , 0.25, 0.5 , 0.75])
    """
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.int64 if is_int else _DEFAULT_FLOAT
    return Tensor(np.arange(start, stop, step, dtype=dtype), requires_grad=requires_grad)


# ---------------------------------------------------------------- functions of tensors
# The same operations as Tensor's methods, under the names torch and numpy give them.
sum = Tensor.sum
mean = Tensor.mean
max = Tensor.max
min = Tensor.min
var = Tensor.var
reshape = Tensor.reshape
permute = Tensor.permute
transpose = Tensor.transpose
flatten = Tensor.flatten
exp = Tensor.exp
log = Tensor.log
sqrt = Tensor.sqrt
tanh = Tensor.tanh
sigmoid = Tensor.sigmoid
relu = Tensor.relu
abs = Tensor.abs
clip = Tensor.clip
neg = Tensor.__neg__


def add(a, b):
    """``a + b`` with broadcasting. Shapes: any two that broadcast.

    >>> minidl.add(minidl.ones(2, 3), minidl.tensor([1.0, 2.0, 3.0])).shape
    (2, 3)
    """
    return _F.Add.apply(_operand(a), _operand(b))


def sub(a, b):
    """``a - b`` with broadcasting.

    >>> minidl.sub(minidl.ones(2), 1.0)
    tensor([0., 0.])
    """
    return _F.Sub.apply(_operand(a), _operand(b))


def mul(a, b):
    """``a * b`` (element-wise) with broadcasting.

    >>> minidl.mul(minidl.ones(2), 3.0)
    tensor([3., 3.])
    """
    return _F.Mul.apply(_operand(a), _operand(b))


def div(a, b):
    """``a / b`` (true division) with broadcasting.

    >>> minidl.div(minidl.ones(2), 4.0)
    tensor([0.25, 0.25])
    """
    return _F.Div.apply(_operand(a), _operand(b))


def pow(a, b):
    """``a ** b`` with broadcasting; either may be a tensor or a number.

    >>> minidl.pow(minidl.tensor([2.0, 3.0]), 2)
    tensor([4., 9.])
    """
    return _F.Pow.apply(_operand(a), _operand(b))


def matmul(a, b):
    """Matrix product with numpy's rules: (..., n, k) @ (..., k, m) -> (..., n, m).

    Batch dims broadcast; a 1-d operand is a vector (its dim is dropped from the result).

    >>> minidl.matmul(minidl.ones(4, 2, 3), minidl.ones(3, 5)).shape
    (4, 2, 5)
    """
    return _F.MatMul.apply(_operand(a), _operand(b))


def concatenate(tensors, axis=0):
    """Join tensors along an existing ``axis`` (``torch.cat``).

    >>> minidl.concatenate([minidl.ones(2, 3), minidl.zeros(1, 3)]).shape
    (3, 3)
    """
    return _F.Concatenate.apply(*[_operand(t) for t in tensors], axis=axis)


def stack(tensors, axis=0):
    """Join same-shaped tensors along a new ``axis``.

    >>> minidl.stack([minidl.ones(3), minidl.zeros(3)], axis=1).shape
    (3, 2)
    """
    return _F.Stack.apply(*[_operand(t) for t in tensors], axis=axis)


def where(condition, x, y):
    """Element-wise ``x`` where ``condition`` holds, else ``y``; all three broadcast.

    >>> a = minidl.tensor([1.0, -1.0])
    >>> minidl.where(a > 0, a, 0.0)
    tensor([1., 0.])
    """
    condition = condition.data if isinstance(condition, Tensor) else condition
    return _F.Where.apply(condition, _operand(x), _operand(y))
