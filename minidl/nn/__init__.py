"""``minidl.nn``: modules, layers, activations, losses, initialization and utilities.

>>> model = minidl.nn.Sequential(
...     minidl.nn.Dense(784, 100), minidl.nn.BatchNorm(100), minidl.nn.Sigmoid(),
...     minidl.nn.Dense(100, 10),
... )
>>> model(minidl.zeros(60, 784)).shape
(60, 10)
"""

from . import functional, init, utils
from .activations import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .layers import (
    AvgPool2D,
    BatchNorm,
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Identity,
    MaxPool2D,
    Sequential,
)
from .losses import CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, Parameter
from .normalization import (
    BatchNorm3D,
    BatchNorm3d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    LayerNorm,
)

__all__ = [
    "AvgPool2D",
    "BatchNorm",
    "BatchNorm1D",
    "BatchNorm2D",
    "BatchNorm3D",
    "BatchNorm3d",
    "Conv2D",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "Flatten",
    "GroupNorm",
    "Identity",
    "InstanceNorm1d",
    "InstanceNorm2d",
    "LayerNorm",
    "LeakyReLU",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2D",
    "Module",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
    "utils",
]
