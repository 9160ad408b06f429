"""minidl: a small deep-learning framework with compiled normalization and reduction kernels.

>>> import minidl
>>> x = minidl.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""

# runtime comes first: it sets the environment the OpenMP runtime and OpenBLAS read
# when they load (see minidl.runtime for every process-wide setting and its opt-out).
try:
    from . import runtime
except ImportError as error:  # pragma: no cover - exercised by a subprocess test
    if getattr(error, "name", None) != "minidl._ops" and "_ops" not in str(error):
        raise
    raise ImportError(
        "minidl's compiled kernels (minidl._ops) are not built or failed to load "
        f"({error}). Build them from the source tree with:\n"
        '    python -m pip install -e ".[test]"\n'
        "or, to build in place without installing: python setup.py build_ext --inplace"
    ) from error

import numpy as _np

from . import autograd, data, nn, optim, random, train
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .gradcheck import gradcheck
from .io import load, save
from .random import manual_seed
from .runtime import get_num_threads, set_num_threads, show_config
from .tensor import (
    Tensor,
    abs,
    add,
    arange,
    clip,
    concatenate,
    div,
    exp,
    flatten,
    from_numpy,
    log,
    matmul,
    max,
    mean,
    min,
    mul,
    neg,
    ones,
    ones_like,
    permute,
    pow,
    rand,
    randn,
    relu,
    reshape,
    sigmoid,
    sqrt,
    stack,
    sub,
    sum,
    tanh,
    tensor,
    transpose,
    var,
    where,
    zeros,
    zeros_like,
)
from .train import Trainer

float32 = _np.float32
float64 = _np.float64
int64 = _np.int64

__version__ = "0.1.0.dev0"

__all__ = [
    "Function",
    "Tensor",
    "Trainer",
    "abs",
    "add",
    "arange",
    "autograd",
    "clip",
    "concatenate",
    "data",
    "div",
    "enable_grad",
    "exp",
    "flatten",
    "float32",
    "float64",
    "from_numpy",
    "get_num_threads",
    "gradcheck",
    "int64",
    "is_grad_enabled",
    "load",
    "log",
    "manual_seed",
    "matmul",
    "max",
    "mean",
    "min",
    "mul",
    "neg",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "permute",
    "pow",
    "rand",
    "randn",
    "random",
    "relu",
    "reshape",
    "runtime",
    "save",
    "set_num_threads",
    "show_config",
    "sigmoid",
    "sqrt",
    "stack",
    "sub",
    "sum",
    "tanh",
    "tensor",
    "train",
    "transpose",
    "var",
    "where",
    "zeros",
    "zeros_like",
]
