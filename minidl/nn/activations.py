"""Activation layers: element-wise (or, for Softmax, along one dim); only PReLU has state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _checks
from .._dtypes import get_default_dtype
from ..autograd import no_grad
from . import functional as F
from .module import Module, Parameter

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from ..tensor import Tensor


def _inplace_repr(inplace):
    return ", inplace=True" if inplace else ""


class LeakyReLU(Module):
    """x where x > 0, else ``negative_slope * x``; any shape.

    >>> minidl.nn.LeakyReLU(0.1)(minidl.tensor([-1.0, 2.0]))
    tensor([-0.1,  2. ])
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = F._real_number(negative_slope, "LeakyReLU", "negative_slope")
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace_repr(self.inplace)}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)).

    >>> minidl.nn.Sigmoid()(minidl.zeros(1))
    tensor([0.5])
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent.

    >>> minidl.nn.Tanh()(minidl.zeros(1))
    tensor([0.])
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class _AlongDim(Module):
    """An activation applied along one ``dim``; None takes torch's implicit choice (warning)."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_AlongDim):
    """exp(x) / sum(exp(x)) along ``dim``.

    ``dim=None`` (the default, as torch's) takes torch's implicit, deprecated choice
    with its warning: dim 0 for 0-d, 1-d and 3-d inputs, dim 1 otherwise.

    >>> minidl.nn.Softmax(dim=1)(minidl.zeros(1, 2))
    tensor([[0.5, 0.5]])
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)


class LogSoftmax(_AlongDim):
    """log(softmax(x)) along ``dim``, computed stably; ``dim=None`` as :class:`Softmax`.

    >>> minidl.nn.LogSoftmax(dim=1)(minidl.zeros(1, 2))
    tensor([[-0.6931472, -0.6931472]])
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)


class GELU(Module):
    """Gaussian error linear unit ``x * Phi(x)``; ``approximate='tanh'`` its tanh form. Any shape.

    >>> minidl.nn.GELU()(minidl.tensor([0.0, 1.0]))
    tensor([0.       , 0.8413447])
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in F._GELU_APPROXIMATIONS:
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class _InplaceActivation(Module):
    """An element-wise activation with torch's ``inplace`` option."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = bool(inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceActivation):
    """max(x, 0), as torch's (NaN and -0.0 pass through); ``inplace`` writes into the input.

    >>> minidl.nn.ReLU()(minidl.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x, self.inplace)


class SiLU(_InplaceActivation):
    """Sigmoid linear unit (swish) ``x * sigmoid(x)``; any shape.

    >>> minidl.nn.SiLU()(minidl.tensor([0.0, 1.0]))
    tensor([0.       , 0.7310586])
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x, self.inplace)


class Mish(_InplaceActivation):
    """``x * tanh(softplus(x))``; any shape.

    >>> minidl.nn.Mish()(minidl.tensor([0.0, 1.0]))
    tensor([0.       , 0.8650984])
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.mish(x, self.inplace)


class ReLU6(_InplaceActivation):
    """``min(max(x, 0), 6)``; any shape.

    >>> minidl.nn.ReLU6()(minidl.tensor([-1.0, 3.0, 8.0]))
    tensor([0., 3., 6.])
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x, self.inplace)


class ELU(Module):
    """x where x > 0, else ``alpha * (exp(x) - 1)``; any shape.

    >>> minidl.nn.ELU()(minidl.tensor([-1.0, 2.0]))
    tensor([-0.63212055,  2.        ])
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = F._real_number(alpha, "ELU", "alpha")
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_repr(self.inplace)}"


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``; any shape.

    >>> minidl.nn.Softplus()(minidl.tensor([0.0]))
    tensor([0.6931472])
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = F._real_number(beta, "Softplus", "beta")
        self.threshold = F._real_number(threshold, "Softplus", "threshold")

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """``x`` clamped to [min_val, max_val]; any shape.

    >>> minidl.nn.Hardtanh()(minidl.tensor([-2.0, 0.5, 3.0]))
    tensor([-1. ,  0.5,  1. ])
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.min_val = F._real_number(min_val, "Hardtanh", "min_val")
        self.max_val = F._real_number(max_val, "Hardtanh", "max_val")
        if self.max_val <= self.min_val:
            raise ValueError(
                f"Hardtanh: max_val ({self.max_val}) must be greater than min_val ({self.min_val})"
            )
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_repr(self.inplace)}"


class PReLU(Module):
    """x where x > 0, else ``weight * x``, with the slopes learned.

    ``weight`` (num_parameters,) starts at ``init``; with num_parameters C > 1 the input
    is (N, C, *) and each channel (dim 1) has its own slope. State dict key ``weight``,
    as torch's.

    >>> layer = minidl.nn.PReLU()
    >>> layer(minidl.tensor([-2.0, 3.0]))
    tensor([-0.5,  3. ], grad_fn=<_PReLUFn>)
    """

    def __init__(
        self, num_parameters: int = 1, init: float = 0.25, dtype: DTypeLike | None = None
    ) -> None:
        super().__init__()
        self.num_parameters = _checks.positive_int(num_parameters, "PReLU", "num_parameters")
        self.init = F._real_number(init, "PReLU", "init")
        dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
        self.weight = Parameter(np.full(self.num_parameters, self.init, dtype=dtype))

    def reset_parameters(self) -> None:
        """Set every slope back to ``init``."""
        with no_grad():
            self.weight.fill_(self.init)

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"
