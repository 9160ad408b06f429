"""minidl: a small deep-learning framework with compiled normalization and reduction kernels.

>>> import minidl
>>> x = minidl.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([2., 4., 6.])
"""

from __future__ import annotations

# runtime comes first: it sets the environment the OpenMP runtime and OpenBLAS read
# when they load (see minidl.runtime for every process-wide setting and its opt-out).
try:
    from . import runtime
except ImportError as error:  # pragma: no cover - exercised by a subprocess test
    compiled = ("minidl._ops", "minidl._alloc")
    if getattr(error, "name", None) not in compiled and not any(
        name.split(".")[1] in str(error) for name in compiled
    ):
        raise
    raise ImportError(
        "minidl's compiled modules (minidl._ops, minidl._alloc) are not built or failed to load "
        f"({error}). Build them from the source tree with:\n"
        '    python -m pip install -e ".[test]"\n'
        "or, to build in place without installing: python setup.py build_ext --inplace"
    ) from error

import numpy as _np

from . import autograd, cuda, data, distributed, models, nn, optim, random, train, utils
from ._dtypes import get_default_dtype, set_default_dtype
from .autograd import Function, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import gradcheck
from .io import CorruptFileError, load, save
from .random import manual_seed
from .runtime import get_num_threads, set_num_threads, show_config
from .tensor import (
    Tensor,
    abs,
    add,
    allclose,
    amax,
    amin,
    arange,
    argmax,
    argmin,
    argsort,
    cat,
    ceil,
    chunk,
    clamp,
    clip,
    concatenate,
    cos,
    cumsum,
    device,
    div,
    einsum,
    empty,
    eq,
    erf,
    exp,
    expm1,
    eye,
    flatten,
    flip,
    floor,
    from_numpy,
    full,
    full_like,
    gather,
    ge,
    gt,
    index_select,
    isclose,
    isfinite,
    isinf,
    isnan,
    le,
    linspace,
    log,
    log1p,
    log2,
    log10,
    log_softmax,
    logical_and,
    logical_not,
    logical_or,
    logsumexp,
    lt,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    ne,
    neg,
    norm,
    ones,
    ones_like,
    outer,
    permute,
    pow,
    prod,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    relu,
    reshape,
    roll,
    round,
    rsqrt,
    scatter,
    scatter_add,
    sigmoid,
    sign,
    sin,
    softmax,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sub,
    sum,
    tanh,
    tensor,
    topk,
    transpose,
    tril,
    triu,
    trunc,
    unsqueeze,
    var,
    where,
    zeros,
    zeros_like,
)
from .train import Trainer

# dtypes under torch's names (they are numpy's)
float32 = _np.dtype(_np.float32)
"""32-bit float, the default dtype (``minidl.zeros(2, dtype=minidl.float32)``)."""
float64 = _np.dtype(_np.float64)
"""64-bit float (gradchecks run in it)."""
int64 = _np.dtype(_np.int64)
"""64-bit integer, the dtype of class labels and indices."""
int32 = _np.dtype(_np.int32)
"""32-bit integer."""
uint8 = _np.dtype(_np.uint8)
"""8-bit unsigned integer, the dtype of IDX image files."""
bool = _np.dtype(_np.bool_)
"""Boolean, the dtype of comparisons and masks."""
float = float32
"""torch's other name for :data:`float32`."""
double = float64
"""torch's other name for :data:`float64`."""
long = int64
"""torch's other name for :data:`int64`."""

__version__ = "0.1.0.dev0"

__all__ = [
    "CorruptFileError",
    "Function",
    "Tensor",
    "Trainer",
    "abs",
    "add",
    "allclose",
    "amax",
    "amin",
    "arange",
    "argmax",
    "argmin",
    "argsort",
    "autograd",
    "bool",
    "cat",
    "ceil",
    "chunk",
    "clamp",
    "clip",
    "concatenate",
    "cos",
    "cuda",
    "cumsum",
    "data",
    "device",
    "distributed",
    "div",
    "double",
    "einsum",
    "empty",
    "enable_grad",
    "eq",
    "erf",
    "exp",
    "expm1",
    "eye",
    "flatten",
    "flip",
    "float",
    "float32",
    "float64",
    "floor",
    "from_numpy",
    "full",
    "full_like",
    "gather",
    "ge",
    "get_default_dtype",
    "get_num_threads",
    "gradcheck",
    "gt",
    "index_select",
    "int32",
    "int64",
    "is_grad_enabled",
    "isclose",
    "isfinite",
    "isinf",
    "isnan",
    "le",
    "linspace",
    "load",
    "log",
    "log1p",
    "log2",
    "log10",
    "log_softmax",
    "logical_and",
    "logical_not",
    "logical_or",
    "logsumexp",
    "long",
    "lt",
    "manual_seed",
    "masked_fill",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "models",
    "mul",
    "ne",
    "neg",
    "nn",
    "no_grad",
    "norm",
    "ones",
    "ones_like",
    "optim",
    "outer",
    "permute",
    "pow",
    "prod",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "random",
    "relu",
    "reshape",
    "roll",
    "round",
    "rsqrt",
    "runtime",
    "save",
    "scatter",
    "scatter_add",
    "set_default_dtype",
    "set_grad_enabled",
    "set_num_threads",
    "show_config",
    "sigmoid",
    "sign",
    "sin",
    "softmax",
    "sort",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "sub",
    "sum",
    "tanh",
    "tensor",
    "topk",
    "train",
    "transpose",
    "tril",
    "triu",
    "trunc",
    "uint8",
    "unsqueeze",
    "utils",
    "var",
    "where",
    "zeros",
    "zeros_like",
]
