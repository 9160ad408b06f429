"""PyTorch's dtype rules: the default float dtype and type promotion.

Promotion follows ``torch.result_type``. Operands fall in three priority groups:
tensors with at least one dim, 0-d tensors (and numpy scalars), and Python
numbers. Within a group dtypes promote as ``torch.promote_types`` does (numpy's
table, except that an integer or bool meeting a float gives that float:
int64 + float32 is float32). A lower group only matters when it is of a higher
category (bool < integer < float): ``int32_tensor + 2.5`` is the default float
dtype, ``float32_tensor + float64_scalar_tensor`` stays float32, and
``uint8_tensor + 1000`` stays uint8. Python floats stand for the default float
dtype, Python ints for int64, Python bools for bool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
_BOOL = np.dtype(np.bool_)

_default_float: np.dtype[Any] = np.dtype(np.float32)


def get_default_dtype() -> np.dtype[Any]:
    """The dtype of floats made from Python numbers and of float results of integers.

    >>> minidl.get_default_dtype()
    dtype('float32')
    """
    return _default_float


def set_default_dtype(dtype: DTypeLike) -> None:
    """Set the default float dtype (float32 or float64), as ``torch.set_default_dtype``.

    >>> minidl.set_default_dtype(minidl.float64)
    >>> minidl.tensor([1.5]).dtype
    dtype('float64')
    >>> minidl.set_default_dtype(minidl.float32)
    """
    global _default_float
    chosen = np.dtype(dtype)
    if chosen not in FLOAT_DTYPES:
        raise TypeError(f"set_default_dtype: expected float32 or float64, got {chosen}")
    _default_float = chosen


def _category(dtype):
    return 0 if dtype is None else {"b": 1, "u": 2, "i": 2, "f": 3}[dtype.kind]


def promote_types(a, b):
    """``torch.promote_types``: numpy's table, but an integer or bool with a float gives the float.

    >>> promote_types(np.dtype("int64"), np.dtype("float32"))
    dtype('float32')
    """
    if a is None:
        return b
    if b is None or a == b:
        return a
    if a.kind == "f" and b.kind != "f":
        return a
    if b.kind == "f" and a.kind != "f":
        return b
    return np.promote_types(a, b)


def _combine(higher, lower):
    """Bring in a lower-priority group's dtype only when its category is higher."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if _category(lower) > _category(higher):
        return promote_types(higher, lower)
    return higher


def scalar_dtype(value):
    """The dtype a Python number stands for in promotion."""
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, int):
        return _INT64
    return _default_float


def result_dtype(*operands):
    """The dtype of an operation on ``operands`` (arrays, 0-d arrays, Python numbers).

    Anything with ``.dtype`` and ``.ndim`` (a Tensor, an array) counts by its
    rank; numpy scalars count as 0-d; Python numbers as numbers.

    >>> result_dtype(np.zeros(2, np.int32), 2.5)
    dtype('float32')
    """
    dim_result = zero_result = number_result = None
    for operand in operands:
        if isinstance(operand, (bool, int, float)):
            number_result = promote_types(number_result, scalar_dtype(operand))
        elif getattr(operand, "ndim", 0) > 0:
            dim_result = promote_types(dim_result, np.dtype(operand.dtype))
        else:
            zero_result = promote_types(zero_result, np.dtype(operand.dtype))
    return _combine(dim_result, _combine(zero_result, number_result))


def float_dtype_of(dtype):
    """``dtype`` itself when it is a float, else the default float dtype (int -> float)."""
    return dtype if dtype.kind == "f" else _default_float
