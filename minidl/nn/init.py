"""Weight initialization, in place, as ``torch.nn.init`` does it.

Every function fills a Tensor (or Parameter) in place from minidl's generator
(``minidl.manual_seed``) and returns it. Fans are PyTorch's: for a weight of
shape (out, in, *kernel), fan_in = in * prod(kernel) and fan_out = out * prod(kernel).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _checks
from .. import random as _random
from ..tensor import Tensor


def _array(tensor, where):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{where}: expected a Tensor or Parameter, got {type(tensor).__name__}")
    return tensor.numpy()


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    1 for linear, convolutions and sigmoid; 5/3 for tanh; sqrt(2) for relu;
    sqrt(2 / (1 + slope^2)) for leaky_relu (``param`` the slope, 0.01 by
    default); 3/4 for selu.

    >>> round(minidl.nn.init.calculate_gain("relu"), 4)
    1.4142
    >>> round(minidl.nn.init.calculate_gain("leaky_relu", 0.2), 4)
    1.3868
    """
    linear = (
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    )
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float, np.integer, np.floating)) and not isinstance(
            param, bool
        ):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of at least 2 dims.

    >>> minidl.nn.init.calculate_fan_in_and_fan_out(minidl.zeros(8, 3, 5, 5))
    (75, 200)
    """
    return _fans(tensor, "calculate_fan_in_and_fan_out")


def _fans(tensor, where):
    shape = _array(tensor, where).shape
    if len(shape) < 2:
        raise ValueError(
            f"{where}: fan in and fan out need a tensor of at least 2 dims, got {shape}"
        )
    receptive = int(np.prod(shape[2:], dtype=np.int64))
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor, mode, where):
    fan_in, fan_out = _fans(tensor, where)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{where}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with values uniform on [a, b).

    >>> w = minidl.nn.init.uniform_(minidl.zeros(100), -1.0, 1.0)
    >>> bool((w >= -1).all() and (w < 1).all())
    True
    """
    return _uniform(tensor, a, b, "uniform_")


def _uniform(tensor, a, b, where):
    data = _array(tensor, where)
    a, b = _checks.real(a, where, "a"), _checks.real(b, where, "b")
    if a > b:
        raise ValueError(f"{where}: expected a <= b, got a={a}, b={b}")
    data[...] = _random.generator().uniform(a, b, data.shape)
    return tensor


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with normal samples of the given mean and standard deviation.

    >>> minidl.nn.init.normal_(minidl.zeros(3), std=0.01).shape
    (3,)
    """
    return _normal(tensor, mean, std, "normal_")


def _normal(tensor, mean, std, where):
    data = _array(tensor, where)
    mean = _checks.real(mean, where, "mean")
    std = _checks.real(std, where, "std", low=0.0)
    data[...] = _random.generator().normal(mean, std, data.shape)
    return tensor


def constant_(tensor: Tensor, value: float) -> Tensor:
    """Fill with ``value``.

    >>> minidl.nn.init.constant_(minidl.zeros(2), 0.5)
    tensor([0.5, 0.5])
    """
    return _constant(tensor, value, "constant_")


def _constant(tensor, value, where):
    _array(tensor, where)[...] = _checks.real(value, where, "value")
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros.

    >>> minidl.nn.init.zeros_(minidl.ones(2))
    tensor([0., 0.])
    """
    return _constant(tensor, 0.0, "zeros_")


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones.

    >>> minidl.nn.init.ones_(minidl.zeros(2))
    tensor([1., 1.])
    """
    return _constant(tensor, 1.0, "ones_")


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot uniform: bound = gain * sqrt(6 / (fan_in + fan_out)).

    >>> minidl.nn.init.xavier_uniform_(minidl.zeros(4, 3)).shape
    (4, 3)
    """
    fan_in, fan_out = _fans(tensor, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _uniform(tensor, -bound, bound, "xavier_uniform_")


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot normal: std = gain * sqrt(2 / (fan_in + fan_out)).

    >>> minidl.nn.init.xavier_normal_(minidl.zeros(4, 3)).shape
    (4, 3)
    """
    fan_in, fan_out = _fans(tensor, "xavier_normal_")
    return _normal(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), "xavier_normal_")


def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """He uniform: bound = gain * sqrt(3 / fan), gain from ``nonlinearity`` (slope ``a``).

    With ``a=math.sqrt(5)`` this is PyTorch's default for Linear and Conv2d weights:
    bound = 1 / sqrt(fan_in).

    >>> minidl.nn.init.kaiming_uniform_(minidl.zeros(4, 3), a=5 ** 0.5).shape
    (4, 3)
    """
    gain = calculate_gain(nonlinearity, a)
    bound = gain * math.sqrt(3.0 / _fan(tensor, mode, "kaiming_uniform_"))
    return _uniform(tensor, -bound, bound, "kaiming_uniform_")


def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """He normal: std = gain / sqrt(fan), gain from ``nonlinearity`` (slope ``a``).

    >>> minidl.nn.init.kaiming_normal_(minidl.zeros(4, 3), nonlinearity="relu").shape
    (4, 3)
    """
    gain = calculate_gain(nonlinearity, a)
    return _normal(
        tensor, 0.0, gain / math.sqrt(_fan(tensor, mode, "kaiming_normal_")), "kaiming_normal_"
    )


def trunc_normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
) -> Tensor:
    """Fill with normal samples of ``mean`` and ``std`` truncated to [a, b] (absolute bounds,
    as torch's), drawn by redrawing the samples that fall outside.

    >>> w = minidl.nn.init.trunc_normal_(minidl.zeros(1000), std=1.0, a=-0.5, b=0.5)
    >>> bool((w >= -0.5).all() and (w <= 0.5).all())
    True
    """
    data = _array(tensor, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    generator = _random.generator()
    values = generator.normal(mean, std, data.shape)
    outside = (values < a) | (values > b)
    for _ in range(1000):
        if not outside.any():
            break
        values[outside] = generator.normal(mean, std, int(outside.sum()))
        outside = (values < a) | (values > b)
    else:
        raise ValueError(
            f"trunc_normal_: [a, b] = [{a}, {b}] holds too little of N({mean}, {std}**2) "
            "to sample from it by redrawing"
        )
    data[...] = values
    return tensor


def orthogonal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Fill a tensor of at least 2 dims with a (semi-)orthogonal matrix times ``gain``.

    The tensor is viewed as (rows, numel / rows); as torch's, a QR decomposition
    of a normal matrix, signs fixed by R's diagonal, so that rows (or columns,
    whichever are fewer) are orthonormal.

    >>> w = minidl.nn.init.orthogonal_(minidl.zeros(3, 5)).numpy()
    >>> np.allclose(w @ w.T, np.eye(3), atol=1e-6)
    True
    """
    data = _array(tensor, "orthogonal_")
    if data.ndim < 2:
        raise ValueError("orthogonal_: Only tensors with 2 or more dimensions are supported")
    if data.size == 0:
        return tensor
    rows = data.shape[0]
    columns = data.size // rows
    flat = _random.generator().normal(0.0, 1.0, (rows, columns))
    if rows < columns:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < columns:
        q = q.T
    data[...] = (gain * q).reshape(data.shape)
    return tensor


__all__ = [
    "calculate_fan_in_and_fan_out",
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
