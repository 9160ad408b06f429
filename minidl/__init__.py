"""minidl: a small deep-learning framework with compiled normalization and reduction kernels.

>>> import minidl
>>> x = minidl.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""

import os as _os

# Idle OpenMP threads spin only briefly (about 10,000 iterations, microseconds) before
# sleeping: numpy's BLAS runs its own threads between our kernels, and on few cores
# OpenMP threads spinning for the default ~300,000 iterations starve them (a CNN step
# took 200 ms instead of 78 here), while sleeping at once (OMP_WAIT_POLICY=PASSIVE)
# makes every small kernel pay a wake-up (a bias gradient: 0.06 -> 0.2 ms). This is
# libgomp's knob (gcc's OpenMP); it is read when the runtime loads with _ops, and an
# explicit GOMP_SPINCOUNT or OMP_WAIT_POLICY in the environment is respected.
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")
# The same for the worker threads of numpy's OpenBLAS, which otherwise spin for about
# 2**28 cycles after each matrix product while our kernels run (a CNN step: 110 ms ->
# 85 ms, with the OpenMP setting above). OpenBLAS reads this when numpy loads it, so
# it only helps when minidl is imported before numpy (or when it is set beforehand).
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
