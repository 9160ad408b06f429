"""``Tensor``, a numpy array with a gradient and a record of its making, and its factories."""

import numpy as np

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


from . import autograd as _autograd  # noqa: E402  (autograd builds on Tensor)
