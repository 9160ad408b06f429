"""minidl: a small deep-learning framework with compiled normalization and reduction kernels.

>>> import minidl
>>> x = minidl.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""

import os as _os

# Idle OpenMP threads sleep instead of spinning: numpy's BLAS runs its own threads
# between our kernels, and on few cores spinning OpenMP threads starve them (a CNN
# step took 200 ms instead of 117 here). Set before the OpenMP runtime loads with
# _ops; an explicit OMP_WAIT_POLICY is respected.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The same for the worker threads of numpy's OpenBLAS, which otherwise spin for about
# 2**28 cycles after each matrix product while our kernels run (a CNN step: 110 ms ->
# 85 ms). OpenBLAS reads this when numpy loads it, so it only helps when minidl is
# imported before numpy (or when the variable is set in the environment).
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

try:
    from . import _ops  # noqa: F401  (fails here, with a clear message, when not built)
except ImportError as error:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "minidl's compiled kernels (minidl._ops) are not built or failed to load "
        f"({error}). Build them from the source tree with:\n"
        '    python -m pip install -e ".[test]"\n'
        "or, to build in place without installing: python setup.py build_ext --inplace"
    ) from error

import numpy as _np

from . import _allocator, autograd, data, functional, nn, operations, optim, random, train  # noqa: F401
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .gradcheck import gradcheck
from .io import load, save
from .operations import (
    abs,
    add,
    clip,
    concatenate,
    div,
    exp,
    flatten,
    log,
    matmul,
    max,
    mean,
    min,
    mul,
    neg,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    sqrt,
    stack,
    sub,
    sum,
    tanh,
    transpose,
    var,
    where,
)
from .random import manual_seed
from .tensor import (
    Tensor,
    arange,
    from_numpy,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from .threads import get_num_threads, set_num_threads
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
    "functional",
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
    "operations",
    "optim",
    "permute",
    "pow",
    "rand",
    "randn",
    "random",
    "relu",
    "reshape",
    "save",
    "set_num_threads",
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
