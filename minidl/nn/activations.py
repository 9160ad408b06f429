"""Activation layers: element-wise (or, for Softmax, along one dim) and without state."""

from . import functional as F
from .module import Module


class ReLU(Module):
    """max(x, 0).

    >>> minidl.nn.ReLU()(minidl.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """x where x > 0, else ``negative_slope * x``.

    >>> minidl.nn.LeakyReLU(0.1)(minidl.tensor([-1.0, 2.0]))
    tensor([-0.1,  2. ])
    """

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)).

    >>> minidl.nn.Sigmoid()(minidl.zeros(1))
    tensor([0.5])
    """

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent.

    >>> minidl.nn.Tanh()(minidl.zeros(1))
    tensor([0.])
    """

    def forward(self, x):
        return F.tanh(x)


class _AlongDim(Module):
    """An activation applied along one ``dim`` (default: the last)."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_AlongDim):
    """exp(x) / sum(exp(x)) along ``dim`` (default: the last).

    >>> minidl.nn.Softmax(dim=1)(minidl.zeros(1, 2))
    tensor([[0.5, 0.5]])
    """

    def forward(self, x):
        return F.softmax(x, self.dim)


class LogSoftmax(_AlongDim):
    """log(softmax(x)) along ``dim`` (default: the last), computed stably.

    >>> minidl.nn.LogSoftmax(dim=1)(minidl.zeros(1, 2))
    tensor([[-0.6931472, -0.6931472]])
    """

    def forward(self, x):
        return F.log_softmax(x, self.dim)
