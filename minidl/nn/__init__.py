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
    AdaptiveAvgPool2d,
    AvgPool2D,
    AvgPool2d,
    BatchNorm,
    BatchNorm1D,
    BatchNorm1d,
    BatchNorm2D,
    BatchNorm2d,
    Conv1d,
    Conv2D,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Dropout,
    Dropout2d,
    Embedding,
    Flatten,
    Identity,
    Linear,
    MaxPool2D,
    MaxPool2d,
    Sequential,
    Unflatten,
    Upsample,
)
from .losses import CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, ModuleDict, ModuleList, Parameter, ParameterList

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2D",
    "AvgPool2d",
    "BatchNorm",
    "BatchNorm1D",
    "BatchNorm1d",
    "BatchNorm2D",
    "BatchNorm2d",
    "Conv1d",
    "Conv2D",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "Dropout2d",
    "Embedding",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2D",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ParameterList",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Unflatten",
    "Upsample",
    "functional",
    "init",
    "utils",
]
