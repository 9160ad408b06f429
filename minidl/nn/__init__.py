"""``minidl.nn``: modules, layers, activations, losses, initialization and utilities.

>>> model = minidl.nn.Sequential(
...     minidl.nn.Dense(784, 100), minidl.nn.BatchNorm(100), minidl.nn.Sigmoid(),
...     minidl.nn.Dense(100, 10),
... )
>>> model(minidl.zeros(60, 784)).shape
(60, 10)
"""

from . import functional, init, utils
from .activations import (
    ELU,
    GELU,
    Hardtanh,
    LeakyReLU,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
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
from .losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .module import Module, Parameter

__all__ = [
    "ELU",
    "GELU",
    "AvgPool2D",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm",
    "BatchNorm1D",
    "BatchNorm2D",
    "Conv2D",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "Flatten",
    "Hardtanh",
    "HuberLoss",
    "Identity",
    "KLDivLoss",
    "L1Loss",
    "LeakyReLU",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2D",
    "Mish",
    "Module",
    "NLLLoss",
    "PReLU",
    "Parameter",
    "ReLU",
    "ReLU6",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
    "functional",
    "init",
    "utils",
]
