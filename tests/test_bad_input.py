"""The bad-input catalogue: every public callable of minidl, fed a wrong argument.

Each row of ``CASES`` names a public callable, calls it with one wrong type,
shape, rank, dtype, size or value, and gives the exception torch raises for the
same mistake (or, where torch has no such call, the one minidl documents). The
test asserts the type and that the message names the callee, so a user reading
the error knows which call was wrong. ``test_every_public_callable_is_catalogued``
walks the public API (the modules' ``__all__`` or public names, and Tensor's
methods) and fails for any callable without a row or a reasoned exemption.
"""

import importlib
import inspect
import math
import re

import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.data import transforms as T
from minidl.nn import functional as F
from minidl.nn import init
from minidl.nn import utils as nn_utils
from minidl.optim import lr_scheduler as S

PUBLIC_MODULES = [
    "minidl",
    "minidl.nn",
    "minidl.nn.functional",
    "minidl.nn.init",
    "minidl.nn.utils",
    "minidl.optim",
    "minidl.optim.lr_scheduler",
    "minidl.data",
    "minidl.data.transforms",
    "minidl.io",
    "minidl.train",
    "minidl.callbacks",
    "minidl.runtime",
    "minidl.random",
    "minidl.distributed",
    "minidl.gradcheck",
    "minidl.models",
    "minidl.autograd",
    "minidl.cuda",
    "minidl.utils.data",
]

NAN = float("nan")


def _x(*shape):
    return minidl.zeros(*shape)


def _param(*shape):
    return nn.Parameter(np.zeros(shape or (2,), np.float32))


def _opt(**kwargs):
    return minidl.optim.SGD([_param()], lr=0.1, **kwargs)


def _momentum_opt():
    return minidl.optim.SGD([_param()], lr=0.1, momentum=0.9)


def _trainer():
    model = nn.Dense(4, 3)
    return minidl.Trainer(model, minidl.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss())


# (public name, call, exception type, regex the message must match; None: the short name)
CASES = []


def case(name, call, error, match=None):
    CASES.append((name, call, error, match))


# ---------------------------------------------------------------- minidl: runtime, factories
case("minidl.set_num_threads", lambda: minidl.set_num_threads(50000), ValueError)
case("minidl.set_num_threads", lambda: minidl.set_num_threads(0), ValueError)
case("minidl.set_num_threads", lambda: minidl.set_num_threads(2.0), ValueError)
case("minidl.set_num_threads", lambda: minidl.set_num_threads(True), ValueError)
case("minidl.runtime.physical_cores", lambda: minidl.runtime.physical_cores(4), TypeError)
case("minidl.runtime.physical_cores", lambda: minidl.runtime.physical_cores(["0"]), TypeError)
case("minidl.runtime.physical_cores", lambda: minidl.runtime.physical_cores([-1]), ValueError)
case("minidl.set_default_dtype", lambda: minidl.set_default_dtype("int32"), TypeError, "dtype")
case("minidl.tensor", lambda: minidl.tensor("abc"), TypeError, "tensor")
case("minidl.tensor", lambda: minidl.tensor([[1.0], [2.0, 3.0]]), TypeError, "tensor")
case("minidl.from_numpy", lambda: minidl.from_numpy([1.0]), TypeError, "from_numpy")
case("minidl.Tensor", lambda: minidl.Tensor("abc"), TypeError, "Tensor")
for factory in ("zeros", "ones", "empty", "rand", "randn"):
    case(f"minidl.{factory}", lambda f=factory: getattr(minidl, f)(2.5), TypeError, factory)
    case(f"minidl.{factory}", lambda f=factory: getattr(minidl, f)(-1), RuntimeError, factory)
for factory in ("zeros_like", "ones_like", "rand_like", "randn_like"):
    case(f"minidl.{factory}", lambda f=factory: getattr(minidl, f)("abc"), TypeError, factory)
case("minidl.full", lambda: minidl.full((-1,), 0.0), RuntimeError, "full")
case("minidl.full_like", lambda: minidl.full_like("abc", 0.0), TypeError, "full_like")
case("minidl.arange", lambda: minidl.arange(0, 10, 0), RuntimeError, "arange")
case("minidl.linspace", lambda: minidl.linspace(0, 1, -1), ValueError, "linspace")
case("minidl.eye", lambda: minidl.eye(-1), RuntimeError, "eye")
case("minidl.randint", lambda: minidl.randint(5, 1, (2,)), RuntimeError, "randint")
case("minidl.device", lambda: minidl.device("cuda"), RuntimeError, "device|cuda")
case("minidl.manual_seed", lambda: minidl.manual_seed("x"), ValueError, "manual_seed")
case("minidl.set_grad_enabled", lambda: minidl.set_grad_enabled("yes"), TypeError, "grad")
case("minidl.cat", lambda: minidl.cat([_x(2, 3), _x(3, 2)]), ValueError, "cat|concatenate")
case("minidl.cat", lambda: minidl.cat(_x(2)), TypeError, "cat")
case(
    "minidl.concatenate",
    lambda: minidl.concatenate([_x(2, 3), _x(3, 2)]),
    ValueError,
    "concatenate",
)
case("minidl.stack", lambda: minidl.stack([_x(2), _x(3)]), ValueError, "stack")
case("minidl.where", lambda: minidl.where(_x(2) > 0, _x(2), _x(3)), ValueError, "where")
case("minidl.einsum", lambda: minidl.einsum("ij,jk->ik", _x(2, 3), _x(2, 3)), ValueError, "einsum")
case("minidl.pow", lambda: minidl.pow(_x(2), _x(3)), RuntimeError, "pow")
for binary in ("add", "sub", "mul", "div", "maximum", "minimum"):
    case(f"minidl.{binary}", lambda b=binary: getattr(minidl, b)(_x(2), _x(3)), ValueError, binary)
case("minidl.matmul", lambda: minidl.matmul(_x(2, 3), _x(2, 3)), ValueError, "matmul")
case("minidl.load", lambda: minidl.load("/nonexistent/minidl.npz"), FileNotFoundError, "minidl.npz")
case("minidl.save", lambda: minidl.save({"a": object()}, "/tmp/never.npz"), TypeError, "save")
case("minidl.gradcheck", lambda: minidl.gradcheck(lambda t: t, (_x(2),)), ValueError, "gradcheck")
case("minidl.no_grad", lambda: minidl.no_grad(5), TypeError, "no_grad")
case("minidl.enable_grad", lambda: minidl.enable_grad(5), TypeError, "enable_grad")
case("minidl.Function", lambda: minidl.Function.apply(_x(1)), NotImplementedError, "forward")

# ---------------------------------------------------------------- functions of tensors and methods
# Every minidl.<name> that is a Tensor method under a function's name refuses a list.
FUNCTIONS_OF_TENSORS = [
    name
    for name in minidl.__all__
    if getattr(getattr(minidl, name), "__wrapped__", None) is not None
    and getattr(minidl.Tensor, getattr(minidl, name).__wrapped__.__name__, None)
    is getattr(minidl, name).__wrapped__
]
for function in FUNCTIONS_OF_TENSORS:
    case(
        f"minidl.{function}", lambda f=function: getattr(minidl, f)([1.0, 2.0]), TypeError, function
    )

# One wrong argument for each Tensor method that takes one: (method, call, error, match).
_METHOD_CASES = [
    ("add", lambda t: t.add(_x(3)), ValueError, "add|\\+"),
    ("add_", lambda t: t.add_(_x(3)), ValueError, "add"),
    ("sub", lambda t: t.sub(_x(3)), ValueError, "sub|-"),
    ("sub_", lambda t: t.sub_(_x(3)), ValueError, "sub"),
    ("mul", lambda t: t.mul(_x(3)), ValueError, "mul|\\*"),
    ("mul_", lambda t: t.mul_(_x(3)), ValueError, "mul"),
    ("div", lambda t: t.div(_x(3)), ValueError, "div|/"),
    ("div_", lambda t: t.div_(_x(3)), ValueError, "div"),
    ("pow", lambda t: t.pow(_x(3)), RuntimeError, "pow"),
    ("pow_", lambda t: t.pow_(_x(3)), RuntimeError, "pow"),
    ("maximum", lambda t: t.maximum(_x(3)), ValueError, "maximum"),
    ("minimum", lambda t: t.minimum(_x(3)), ValueError, "minimum"),
    ("matmul", lambda t: t.matmul(_x(3)), ValueError, "matmul"),
    ("outer", lambda t: t.outer(_x(2, 2)), ValueError, "outer"),
    ("eq", lambda t: t.eq(_x(3)), ValueError, "equal"),
    ("ne", lambda t: t.ne(_x(3)), ValueError, "not_equal"),
    ("lt", lambda t: t.lt(_x(3)), ValueError, "less"),
    ("le", lambda t: t.le(_x(3)), ValueError, "less_equal"),
    ("gt", lambda t: t.gt(_x(3)), ValueError, "greater"),
    ("ge", lambda t: t.ge(_x(3)), ValueError, "greater_equal"),
    ("logical_and", lambda t: t.logical_and(_x(3)), ValueError, "logical_and"),
    ("logical_or", lambda t: t.logical_or(_x(3)), ValueError, "logical_or"),
    ("isclose", lambda t: t.isclose(_x(3)), ValueError, "isclose"),
    ("allclose", lambda t: t.allclose(_x(3)), ValueError, "isclose"),
    ("all", lambda t: t.all(dim=5), ValueError, "all|dim"),
    ("any", lambda t: t.any(dim=5), ValueError, "any|dim"),
    ("sum", lambda t: t.sum(dim=5), ValueError, "sum|dim"),
    ("mean", lambda t: t.mean(dim=5), ValueError, "mean|dim"),
    ("prod", lambda t: t.prod(dim=5), ValueError, "prod|dim"),
    ("max", lambda t: t.max(dim=5), ValueError, "max|dim"),
    ("min", lambda t: t.min(dim=5), ValueError, "min|dim"),
    ("amax", lambda t: t.amax(dim=5), ValueError, "amax|dim"),
    ("amin", lambda t: t.amin(dim=5), ValueError, "amin|dim"),
    ("argmax", lambda t: t.argmax(dim=5), ValueError, "argmax|dim"),
    ("argmin", lambda t: t.argmin(dim=5), ValueError, "argmin|dim"),
    ("var", lambda t: t.var(dim=5), ValueError, "var|dim"),
    ("std", lambda t: t.std(dim=5), ValueError, "std|dim"),
    ("logsumexp", lambda t: t.logsumexp(dim=5), ValueError, "logsumexp|dim"),
    ("norm", lambda t: t.norm(p="nuc2"), ValueError, "norm"),
    ("cumsum", lambda t: t.cumsum(dim=5), ValueError, "cumsum|dim"),
    ("softmax", lambda t: t.softmax(dim=5), ValueError, "softmax|dim"),
    ("log_softmax", lambda t: t.log_softmax(dim=5), ValueError, "log_softmax|dim"),
    ("sort", lambda t: t.sort(dim=5), ValueError, "sort|dim"),
    ("argsort", lambda t: t.argsort(dim=5), ValueError, "argsort|dim"),
    ("topk", lambda t: t.topk(5), ValueError, "topk"),
    ("reshape", lambda t: t.reshape(-2, 1), RuntimeError, "reshape"),
    ("view", lambda t: t.view(4, 2), ValueError, "reshape|view"),
    ("view_as", lambda t: t.view_as(_x(4, 2)), ValueError, "reshape|view"),
    ("expand", lambda t: t.expand(3, 3), ValueError, "expand"),
    ("expand_as", lambda t: t.expand_as(_x(3)), ValueError, "expand"),
    ("permute", lambda t: t.permute(0, 0), ValueError, "permute"),
    ("transpose", lambda t: t.transpose(0, 5), ValueError, "transpose|dim"),
    ("flatten", lambda t: t.flatten(5), ValueError, "flatten|dim"),
    ("unsqueeze", lambda t: t.unsqueeze(5), ValueError, "unsqueeze|dim"),
    ("squeeze", lambda t: t.squeeze(5), ValueError, "squeeze|dim"),
    ("flip", lambda t: t.flip(5), ValueError, "flip|dim"),
    ("roll", lambda t: t.roll(1.5), TypeError, "roll"),
    ("split", lambda t: t.split(0), ValueError, "split"),
    ("chunk", lambda t: t.chunk(0), ValueError, "chunk"),
    ("unbind", lambda t: t.unbind(5), ValueError, "unbind|dim"),
    ("narrow", lambda t: t.narrow(0, 1, 5), RuntimeError, "narrow"),
    ("repeat", lambda t: t.repeat(-1), ValueError, "repeat"),
    ("gather", lambda t: t.gather(0, _x(2)), TypeError, "gather"),
    ("scatter", lambda t: t.scatter(0, _x(2), _x(2)), TypeError, "scatter"),
    ("scatter_", lambda t: t.scatter_(0, _x(2), _x(2)), TypeError, "scatter"),
    ("scatter_add", lambda t: t.scatter_add(0, _x(2), _x(2)), TypeError, "scatter_add"),
    ("scatter_add_", lambda t: t.scatter_add_(0, _x(2), _x(2)), TypeError, "scatter_add"),
    ("index_select", lambda t: t.index_select(0, _x(2)), TypeError, "index_select"),
    ("masked_fill", lambda t: t.masked_fill(_x(2), 0.0), TypeError, "masked_fill"),
    ("masked_fill_", lambda t: t.masked_fill_(_x(2), 0.0), TypeError, "masked_fill"),
    ("tril", lambda t: t.tril(1.5), TypeError, "tril"),
    ("triu", lambda t: t.triu(1.5), TypeError, "triu"),
    ("clamp", lambda t: t.clamp("a"), TypeError, "clamp"),
    ("clamp_", lambda t: t.clamp_("a"), TypeError, "clamp"),
    ("clip", lambda t: t.clip("a"), TypeError, "clamp|clip"),
    ("fill_", lambda t: t.fill_(_x(3)), RuntimeError, "fill_|copy_"),
    ("copy_", lambda t: t.copy_(_x(3)), RuntimeError, "copy_"),
    ("size", lambda t: t.size(5), ValueError, "size|dim"),
    ("astype", lambda t: t.astype("no-such-dtype"), TypeError, "dtype"),
    ("to", lambda t: t.to("cuda"), RuntimeError, "cuda|device"),
    ("type", lambda t: t.type("no-such-dtype"), TypeError, "dtype"),
    ("type_as", lambda t: t.type_as([1.0]), TypeError, "type_as"),
    ("new_full", lambda t: t.new_full(-1, 0.0), RuntimeError, "new_full|size"),
    ("new_ones", lambda t: t.new_ones(-1), RuntimeError, "new_ones|size"),
    ("new_zeros", lambda t: t.new_zeros(-1), RuntimeError, "new_zeros|size"),
    ("new_tensor", lambda t: t.new_tensor([[1.0], [2.0, 3.0]]), TypeError, "tensor"),
    ("normal_", lambda t: t.normal_(std=-1.0), RuntimeError, "normal_"),
    ("uniform_", lambda t: t.uniform_(1.0, 0.0), RuntimeError, "uniform_"),
    (
        "requires_grad_",
        lambda t: minidl.tensor([1, 2]).requires_grad_(),
        TypeError,
        "requires_grad",
    ),
    ("register_hook", lambda t: t.register_hook(lambda g: g), RuntimeError, "hook"),
    (
        "register_post_accumulate_grad_hook",
        lambda t: t.register_post_accumulate_grad_hook(5),
        RuntimeError,
        "hook",
    ),
    ("backward", lambda t: t.backward(), RuntimeError, "grad"),
    ("item", lambda t: t.item(), ValueError, "item|one element"),
    ("bool", lambda t: t.bool() and bool(t), ValueError, "ambiguous|bool"),
    ("retain_grad", lambda t: t.retain_grad(), RuntimeError, "retain_grad|grad"),
]
for method, call, error, match in _METHOD_CASES:
    case(f"Tensor.{method}", lambda c=call: c(minidl.zeros(2, 2)), error, match)

# ---------------------------------------------------------------- nn layers
# (layer, a valid construction, a bad construction with its error and match, a valid input)
# Every layer also refuses a Python list as input, naming itself (torch: TypeError).
_LAYERS = {
    "Dense": (lambda: nn.Dense(4, 3), lambda: nn.Dense(4.0, 3), ValueError, _x(2, 4)),
    "Conv1d": (lambda: nn.Conv1d(1, 1, 3), lambda: nn.Conv1d(1, 1, 1.5), ValueError, _x(1, 1, 5)),
    "Conv2D": (
        lambda: nn.Conv2D(1, 1, 3),
        lambda: nn.Conv2D(1, 1, True),
        ValueError,
        _x(1, 1, 5, 5),
    ),
    "ConvTranspose2d": (
        lambda: nn.ConvTranspose2d(1, 1, 3),
        lambda: nn.ConvTranspose2d(1, 1, 3, stride=0),
        ValueError,
        _x(1, 1, 3, 3),
    ),
    "BatchNorm": (lambda: nn.BatchNorm(2), lambda: nn.BatchNorm(2, eps=-1), ValueError, _x(3, 2)),
    "BatchNorm1D": (
        lambda: nn.BatchNorm1D(2),
        lambda: nn.BatchNorm1D(2, momentum=NAN),
        ValueError,
        _x(3, 2),
    ),
    "BatchNorm2D": (
        lambda: nn.BatchNorm2D(2),
        lambda: nn.BatchNorm2D(2, eps=-1),
        ValueError,
        _x(3, 2, 2, 2),
    ),
    "BatchNorm3D": (
        lambda: nn.BatchNorm3D(2),
        lambda: nn.BatchNorm3D(2, momentum=2.0),
        ValueError,
        _x(3, 2, 2, 2, 2),
    ),
    "SyncBatchNorm": (
        lambda: nn.SyncBatchNorm(2),
        lambda: nn.SyncBatchNorm(2, eps=math.inf),
        ValueError,
        _x(3, 2, 2, 2),
    ),
    "InstanceNorm1d": (
        lambda: nn.InstanceNorm1d(2),
        lambda: nn.InstanceNorm1d(2, eps=-1),
        ValueError,
        _x(3, 2, 4),
    ),
    "InstanceNorm2d": (
        lambda: nn.InstanceNorm2d(2),
        lambda: nn.InstanceNorm2d(0),
        ValueError,
        _x(3, 2, 4, 4),
    ),
    "LayerNorm": (lambda: nn.LayerNorm(4), lambda: nn.LayerNorm(4, eps=-1), ValueError, _x(2, 4)),
    "GroupNorm": (
        lambda: nn.GroupNorm(2, 4),
        lambda: nn.GroupNorm(2, 4, eps=NAN),
        ValueError,
        _x(2, 4, 3),
    ),
    "MaxPool2D": (lambda: nn.MaxPool2D(2), lambda: nn.MaxPool2D("2"), ValueError, _x(1, 1, 4, 4)),
    "AvgPool2D": (lambda: nn.AvgPool2D(2), lambda: nn.AvgPool2D(2.0), ValueError, _x(1, 1, 4, 4)),
    "AdaptiveAvgPool2d": (
        lambda: nn.AdaptiveAvgPool2d(2),
        lambda: nn.AdaptiveAvgPool2d(-1)(_x(1, 1, 4, 4)),
        ValueError,
        _x(1, 1, 4, 4),
    ),
    "Flatten": (lambda: nn.Flatten(), lambda: nn.Flatten(1.5)(_x(2, 2)), TypeError, _x(2, 2)),
    "Unflatten": (
        lambda: nn.Unflatten(1, (2, 2)),
        lambda: nn.Unflatten(1, (3, 2))(_x(2, 4)),
        ValueError,
        _x(2, 4),
    ),
    "Dropout": (lambda: nn.Dropout(), lambda: nn.Dropout(1.5), ValueError, _x(2, 2)),
    "Dropout2d": (lambda: nn.Dropout2d(), lambda: nn.Dropout2d(-0.1), ValueError, _x(2, 2, 2, 2)),
    "Upsample": (
        lambda: nn.Upsample(scale_factor=2),
        lambda: nn.Upsample(scale_factor=2, mode="cubic")(_x(1, 1, 2, 2)),
        NotImplementedError,
        _x(1, 1, 2, 2),
    ),
    "Embedding": (
        lambda: nn.Embedding(5, 2),
        lambda: nn.Embedding(5, 2)(minidl.tensor([0.5])),
        TypeError,
        None,  # a list of indices is converted, as an index array would be
    ),
    "Identity": (lambda: nn.Identity(), None, None, None),  # returns anything, as torch's
    "ReLU": (lambda: nn.ReLU(), None, None, _x(2)),
    "ReLU6": (lambda: nn.ReLU6(), None, None, _x(2)),
    "LeakyReLU": (lambda: nn.LeakyReLU(), lambda: nn.LeakyReLU("a"), TypeError, _x(2)),
    "ELU": (lambda: nn.ELU(), lambda: nn.ELU(alpha="a"), TypeError, _x(2)),
    "GELU": (lambda: nn.GELU(), lambda: nn.GELU("fast"), ValueError, _x(2)),
    "SiLU": (lambda: nn.SiLU(), None, None, _x(2)),
    "Mish": (lambda: nn.Mish(), None, None, _x(2)),
    "Sigmoid": (lambda: nn.Sigmoid(), None, None, _x(2)),
    "Tanh": (lambda: nn.Tanh(), None, None, _x(2)),
    "Softplus": (lambda: nn.Softplus(), lambda: nn.Softplus(beta="a"), TypeError, _x(2)),
    "Hardtanh": (lambda: nn.Hardtanh(), lambda: nn.Hardtanh(1.0, -1.0), ValueError, _x(2)),
    "PReLU": (lambda: nn.PReLU(), lambda: nn.PReLU(0), ValueError, _x(2)),
    "Softmax": (lambda: nn.Softmax(1), lambda: nn.Softmax(5)(_x(2, 2)), ValueError, _x(2, 2)),
    "LogSoftmax": (
        lambda: nn.LogSoftmax(1),
        lambda: nn.LogSoftmax(5)(_x(2, 2)),
        ValueError,
        _x(2, 2),
    ),
    "Sequential": (
        lambda: nn.Sequential(nn.Dense(2, 2)),
        lambda: nn.Sequential(5),
        TypeError,
        _x(1, 2),
    ),
    "ModuleList": (lambda: None, lambda: nn.ModuleList([5]), TypeError, None),
    "ModuleDict": (lambda: None, lambda: nn.ModuleDict({"a": 5}), TypeError, None),
    "ParameterList": (lambda: None, lambda: nn.ParameterList([5]), TypeError, None),
    "Parameter": (lambda: None, lambda: nn.Parameter("abc"), TypeError, None),
    "Module": (lambda: None, lambda: nn.Module()(_x(2)), NotImplementedError, None),
}
# (loss layer, its functional (which its messages name), input, a wrong target, error)
_LOSSES = {
    "MSELoss": (nn.MSELoss, "mse_loss", _x(2, 3), _x(2, 4), ValueError),
    "L1Loss": (nn.L1Loss, "l1_loss", _x(2, 3), _x(2, 4), ValueError),
    "SmoothL1Loss": (nn.SmoothL1Loss, "smooth_l1_loss", _x(2, 3), _x(2, 4), ValueError),
    "HuberLoss": (nn.HuberLoss, "huber_loss", _x(2, 3), _x(2, 4), ValueError),
    "KLDivLoss": (nn.KLDivLoss, "kl_div", _x(2, 3), _x(2, 4), ValueError),
    "BCELoss": (nn.BCELoss, "binary_cross_entropy", _x(2, 3), _x(2, 4), ValueError),
    "BCEWithLogitsLoss": (
        nn.BCEWithLogitsLoss,
        "binary_cross_entropy_with_logits",
        _x(2, 3),
        _x(2, 4),
        ValueError,
    ),
    "CrossEntropyLoss": (
        nn.CrossEntropyLoss,
        "cross_entropy",
        _x(2, 3),
        minidl.tensor([0.5, 1.0]),
        RuntimeError,
    ),
    "NLLLoss": (nn.NLLLoss, "nll_loss", _x(2, 3), minidl.tensor([0, 7]), IndexError),
}
# What a layer's message may name besides the layer: the function it runs, or the
# container's part that refused.
_ALSO_NAMED = {
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "LeakyReLU": "leaky_relu",
    "Sequential": "Dense",
    "ModuleDict": "add_module",
    "ParameterList": "requires_grad",
}
for layer, (make, bad, error, sample) in _LAYERS.items():
    named = layer + ("|" + _ALSO_NAMED[layer] if layer in _ALSO_NAMED else "")
    if bad is not None:
        case(f"minidl.nn.{layer}", bad, error, named)
    if sample is not None:
        case(f"minidl.nn.{layer}", lambda m=make, s=sample: m()(s.tolist()), TypeError, named)
for loss, (make, function, prediction, target, error) in _LOSSES.items():
    named = f"{loss}|{function}"
    case(f"minidl.nn.{loss}", lambda m=make: m(reduction="average"), ValueError, named)
    case(f"minidl.nn.{loss}", lambda m=make, p=prediction, t=target: m()(p, t), error, named)
    case(f"minidl.nn.{loss}", lambda m=make, p=prediction: m()(p.tolist(), p), TypeError, named)

# ---------------------------------------------------------------- nn.functional
_FUNCTIONAL = [
    ("linear", lambda: F.linear(_x(2, 3), _x(3)), ValueError),
    ("linear", lambda: F.linear(_x(2, 3), _x(4, 3), _x(5)), ValueError),
    ("linear", lambda: F.linear([[1.0]], _x(1, 1)), TypeError),
    ("conv1d", lambda: F.conv1d(_x(1, 1, 2), _x(1, 1, 5)), ValueError),
    ("conv2d", lambda: F.conv2d(_x(1, 1, 3, 3), _x(1, 1, 5, 5)), ValueError),
    ("conv2d", lambda: F.conv2d(_x(1, 1, 3, 3), _x(2, 1, 1, 1), _x(3)), ValueError),
    ("conv2d", lambda: F.conv2d(_x(1, 1, 3, 3), _x(1, 1, 1, 1), stride=1.5), ValueError),
    ("conv_transpose2d", lambda: F.conv_transpose2d(_x(1, 2, 3, 3), _x(1, 1, 3, 3)), ValueError),
    ("max_pool2d", lambda: F.max_pool2d(_x(1, 1, 2, 2), 3), ValueError),
    ("max_pool2d", lambda: F.max_pool2d(_x(1, 1, 4, 4), 2.0), ValueError),
    ("avg_pool2d", lambda: F.avg_pool2d(_x(1, 1, 4, 4), 0), ValueError),
    ("adaptive_avg_pool2d", lambda: F.adaptive_avg_pool2d(_x(1, 1, 4, 4), 1.5), ValueError),
    ("batch_norm", lambda: F.batch_norm(_x(1, 2), training=True), ValueError),
    ("group_norm", lambda: F.group_norm(_x(2, 4, 3), 3), ValueError),
    ("instance_norm", lambda: F.instance_norm(_x(2, 2, 1)), ValueError),
    ("layer_norm", lambda: F.layer_norm(_x(2, 4), (3,)), ValueError),
    ("dropout", lambda: F.dropout(_x(2), p=2.0), ValueError),
    ("dropout2d", lambda: F.dropout2d(_x(2, 2, 2, 2), p=-1.0), ValueError),
    ("interpolate", lambda: F.interpolate(_x(1, 1, 2, 2)), ValueError),
    ("embedding", lambda: F.embedding(minidl.tensor([9]), _x(5, 2)), IndexError),
    ("one_hot", lambda: F.one_hot(minidl.tensor([0.5])), TypeError),
    ("cross_entropy", lambda: F.cross_entropy(_x(2, 3), minidl.tensor([0, 3])), IndexError),
    ("nll_loss", lambda: F.nll_loss(_x(2, 3), minidl.tensor([0.0, 1.0])), RuntimeError),
    ("mse_loss", lambda: F.mse_loss(_x(2, 3), _x(2, 4)), ValueError),
    ("l1_loss", lambda: F.l1_loss(_x(2, 3), _x(2, 4)), ValueError),
    ("smooth_l1_loss", lambda: F.smooth_l1_loss(_x(2), _x(2), beta=-1.0), RuntimeError),
    ("huber_loss", lambda: F.huber_loss(_x(2), _x(2), delta=-1.0), RuntimeError),
    ("kl_div", lambda: F.kl_div(_x(2), _x(3)), ValueError),
    ("binary_cross_entropy", lambda: F.binary_cross_entropy(_x(2), _x(3)), ValueError),
    (
        "binary_cross_entropy_with_logits",
        lambda: F.binary_cross_entropy_with_logits(_x(2), _x(3)),
        ValueError,
    ),
    ("softmax", lambda: F.softmax(_x(2, 2), dim=5), ValueError),
    ("log_softmax", lambda: F.log_softmax(_x(2, 2), dim=5), ValueError),
    ("prelu", lambda: F.prelu(_x(2, 3), _x(2)), ValueError),
    ("hardtanh", lambda: F.hardtanh(_x(2), 1.0, -1.0), ValueError),
    ("gelu", lambda: F.gelu(_x(2), approximate="fast"), RuntimeError),
    ("leaky_relu", lambda: F.leaky_relu(_x(2), "a"), TypeError),
    ("elu", lambda: F.elu(_x(2), alpha="a"), TypeError),
    ("softplus", lambda: F.softplus(_x(2), beta="a"), TypeError),
]
for name, call, error in _FUNCTIONAL:
    case(f"minidl.nn.functional.{name}", call, error, name)
for name in F.__all__:
    case(f"minidl.nn.functional.{name}", lambda f=name: getattr(F, f)([1.0, 2.0]), TypeError, name)

# ---------------------------------------------------------------- nn.init and nn.utils
for name in (
    "constant_",
    "normal_",
    "uniform_",
    "ones_",
    "zeros_",
    "xavier_normal_",
    "xavier_uniform_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "orthogonal_",
    "trunc_normal_",
):
    if name == "constant_":
        call = lambda: init.constant_(np.zeros(2), 1.0)  # noqa: E731
    else:
        call = lambda f=name: getattr(init, f)(np.zeros((2, 2)))  # noqa: E731
    case(f"minidl.nn.init.{name}", call, TypeError, name)
case(
    "minidl.nn.init.kaiming_uniform_", lambda: init.kaiming_uniform_(_x(2, 2), mode="x"), ValueError
)
case("minidl.nn.init.xavier_uniform_", lambda: init.xavier_uniform_(_x(2)), ValueError)
case("minidl.nn.init.calculate_gain", lambda: init.calculate_gain("swish"), ValueError)
case(
    "minidl.nn.init.calculate_fan_in_and_fan_out",
    lambda: init.calculate_fan_in_and_fan_out(_x(2)),
    ValueError,
    "fan",
)
case(
    "minidl.nn.utils.clip_grad_norm_", lambda: nn_utils.clip_grad_norm_([_param()], "a"), TypeError
)
case(
    "minidl.nn.utils.clip_grad_value_",
    lambda: nn_utils.clip_grad_value_([_param()], -1.0),
    ValueError,
)
case(
    "minidl.nn.utils.parameters_to_vector", lambda: nn_utils.parameters_to_vector([1.0]), TypeError
)
case(
    "minidl.nn.utils.vector_to_parameters",
    lambda: nn_utils.vector_to_parameters(_x(5), [_param()]),
    ValueError,
)
case("minidl.nn.utils.fold_batchnorm", lambda: nn_utils.fold_batchnorm(5), TypeError)

# ---------------------------------------------------------------- optim and lr_scheduler
_OPTIMIZERS = ["SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSprop", "Adadelta", "Adagrad"]
for name in _OPTIMIZERS:
    cls = getattr(minidl.optim, name)
    case(f"minidl.optim.{name}", lambda c=cls: c([_param()], lr=NAN), ValueError, name)
    case(f"minidl.optim.{name}", lambda c=cls: c([_param()], lr=-1.0), ValueError, name)
    case(f"minidl.optim.{name}", lambda c=cls: c([_param()], lr="a"), TypeError, name)
    case(
        f"minidl.optim.{name}", lambda c=cls: c([_param()], weight_decay=math.inf), ValueError, name
    )
    case(f"minidl.optim.{name}", lambda c=cls: c(_param()), TypeError, name)
for name in ("Adam", "AdamW", "NAdam", "RAdam"):
    cls = getattr(minidl.optim, name)
    case(f"minidl.optim.{name}", lambda c=cls: c([_param()], betas=(1.5, 0.9)), ValueError, name)
case("minidl.optim.Optimizer", lambda: minidl.optim.Optimizer([], {}), ValueError, "Optimizer")
_SCHEDULES = [
    ("StepLR", lambda: S.StepLR(_opt(), 2.5)),
    ("StepLR", lambda: S.StepLR(_opt(), 2, gamma=NAN)),
    ("MultiStepLR", lambda: S.MultiStepLR(_opt(), [1.5])),
    ("ExponentialLR", lambda: S.ExponentialLR(_opt(), math.inf)),
    ("CosineAnnealingLR", lambda: S.CosineAnnealingLR(_opt(), 0)),
    ("CosineAnnealingWarmRestarts", lambda: S.CosineAnnealingWarmRestarts(_opt(), 0)),
    ("LinearLR", lambda: S.LinearLR(_opt(), start_factor=NAN)),
    ("LinearLR", lambda: S.LinearLR(_opt(), total_iters=-1)),
    ("ConstantLR", lambda: S.ConstantLR(_opt(), factor=2.0)),
    ("OneCycleLR", lambda: S.OneCycleLR(_momentum_opt(), 1.0, total_steps=2.5)),
    ("OneCycleLR", lambda: S.OneCycleLR(_momentum_opt(), 1.0, total_steps=5, pct_start=1.5)),
    ("OneCycleLR", lambda: S.OneCycleLR(_momentum_opt(), [1.0, 2.0], total_steps=5)),
    ("ReduceLROnPlateau", lambda: S.ReduceLROnPlateau(_opt(), factor=1.5)),
    ("ReduceLROnPlateau", lambda: S.ReduceLROnPlateau(_opt(), patience=-1)),
    ("ReduceLROnPlateau", lambda: S.ReduceLROnPlateau(_opt(), min_lr=[0.1, 0.2])),
    ("LambdaLR", lambda: S.LambdaLR(_opt(), [lambda e: 1.0, lambda e: 1.0])),
    ("MultiplicativeLR", lambda: S.MultiplicativeLR(_opt(), [lambda e: 1.0, lambda e: 1.0])),
    ("SequentialLR", lambda: S.SequentialLR(_opt(), [], [])),
    ("LRScheduler", lambda: S.StepLR(_opt(), 2, last_epoch=-5)),
]
for name, call in _SCHEDULES:
    case(
        f"minidl.optim.lr_scheduler.{name}",
        call,
        ValueError,
        name if name != "LRScheduler" else "StepLR",
    )

# ---------------------------------------------------------------- data, io
_ARRAYS = (np.zeros((4, 2), np.float32), np.zeros(4, np.int64))
case(
    "minidl.data.ArrayDataset",
    lambda: minidl.data.ArrayDataset(np.zeros(3), np.zeros(4)),
    ValueError,
    "ArrayDataset",
)
case(
    "minidl.data.DataLoader",
    lambda: minidl.data.DataLoader(minidl.data.ArrayDataset(*_ARRAYS), batch_size=0),
    ValueError,
    "DataLoader|batch_size",
)
case(
    "minidl.data.Subset",
    lambda: minidl.data.Subset(minidl.data.ArrayDataset(*_ARRAYS), [9])[0],
    IndexError,
    "Subset|index|range",
)
case(
    "minidl.data.random_split",
    lambda: minidl.data.random_split(minidl.data.ArrayDataset(*_ARRAYS), [3, 3]),
    ValueError,
    "random_split|lengths",
)
case(
    "minidl.data.DistributedSampler",
    lambda: minidl.data.DistributedSampler(
        minidl.data.ArrayDataset(*_ARRAYS), num_replicas=2, rank=5
    ),
    ValueError,
    "rank",
)
case("minidl.data.read_idx", lambda: minidl.data.read_idx(__file__), ValueError, "read_idx")
case(
    "minidl.data.write_idx",
    lambda: minidl.data.write_idx("/tmp/never.idx", np.zeros(2, np.complex64)),
    TypeError,
    "write_idx",
)
for reader in (
    "load_mnist",
    "load_fashion_mnist",
    "load_kmnist",
    "MNIST",
    "MNISTSample",
    "FashionMNIST",
    "KMNIST",
):
    case(
        f"minidl.data.{reader}",
        lambda r=reader: getattr(minidl.data, r)("validation"),
        ValueError,
        "split",
    )
case("minidl.data.transforms.Compose", lambda: T.Compose(5), TypeError, "Compose")
case("minidl.data.transforms.Normalize", lambda: T.Normalize(0.0, 0.0), ValueError, "Normalize")
case(
    "minidl.data.transforms.Normalize", lambda: T.Normalize(0.0, 1.0)([1.0]), TypeError, "Normalize"
)
case("minidl.data.transforms.RandomCrop", lambda: T.RandomCrop(2.5), ValueError, "RandomCrop")
case(
    "minidl.data.transforms.RandomCrop",
    lambda: T.RandomCrop(2, padding=-1),
    ValueError,
    "RandomCrop",
)
case(
    "minidl.data.transforms.RandomCrop",
    lambda: T.RandomCrop(5)(np.zeros((1, 2, 2))),
    ValueError,
    "RandomCrop",
)
case("minidl.data.transforms.RandomShift", lambda: T.RandomShift(-1), ValueError, "RandomShift")
case(
    "minidl.data.transforms.RandomShift",
    lambda: T.RandomShift(1)(np.zeros((2, 2))),
    ValueError,
    "RandomShift",
)
case(
    "minidl.data.transforms.RandomHorizontalFlip",
    lambda: T.RandomHorizontalFlip(NAN),
    ValueError,
    "RandomHorizontalFlip",
)
case(
    "minidl.data.transforms.RandomHorizontalFlip",
    lambda: T.RandomHorizontalFlip()([1.0]),
    TypeError,
    "RandomHorizontalFlip",
)
case(
    "minidl.io.atomic_write",
    lambda: minidl.io.atomic_write("/nonexistent/dir/file").__enter__(),
    FileNotFoundError,
    "/nonexistent/dir",
)

# ---------------------------------------------------------------- train and callbacks
case("minidl.Trainer", lambda: _trainer().fit(5), TypeError, "Trainer.fit")
case("minidl.Trainer", lambda: _trainer().fit([], epochs=2.5), ValueError, "Trainer.fit")
case(
    "minidl.Trainer",
    lambda: _trainer().fit(minidl.data.ArrayDataset(*_ARRAYS)),
    TypeError,
    "DataLoader",
)
case("minidl.Trainer", lambda: _trainer().evaluate(5), TypeError, "Trainer.evaluate")
case(
    "minidl.Trainer",
    lambda: _trainer().predict(np.zeros((3, 4)), batch_size=-5),
    ValueError,
    "Trainer.predict",
)
case(
    "minidl.Trainer",
    lambda: _trainer().predict(np.zeros((3, 4)), batch_size=0),
    ValueError,
    "Trainer.predict",
)
case("minidl.train.History", lambda: minidl.train.History(5), TypeError, "History|iter")
case(
    "minidl.train.accuracy",
    lambda: minidl.train.accuracy(np.zeros((2, 3)), np.zeros(3)),
    ValueError,
    "accuracy",
)
case(
    "minidl.train.top_k_accuracy",
    lambda: minidl.train.top_k_accuracy(np.zeros((2, 3)), np.zeros(2, np.int64), k=0),
    ValueError,
    "top_k_accuracy",
)
case(
    "minidl.train.top_k_accuracy",
    lambda: minidl.train.top_k_accuracy(np.zeros((2, 3)), np.array([0, 3])),
    ValueError,
    "top_k_accuracy",
)
case(
    "minidl.train.TerminateOnNaN",
    lambda: minidl.train.TerminateOnNaN(restore_checkpoint="yes"),
    TypeError,
    "TerminateOnNaN",
)
case(
    "minidl.Trainer",
    lambda: minidl.Trainer(nn.Dense(4, 3), _opt(), loss="crossentropy"),
    ValueError,
    "Trainer: unknown loss",
)
case(
    "minidl.Trainer",
    lambda: _trainer().fit(np.zeros((4, 4)), np.zeros(3)),
    ValueError,
    "Trainer.fit",
)
case(
    "minidl.Trainer",
    lambda: _trainer().fit(np.zeros((4, 4)), np.zeros(4), validation_split=1.5),
    ValueError,
    "Trainer.fit",
)
case(
    "minidl.Trainer",
    lambda: _trainer().evaluate(np.zeros((4, 4))),
    ValueError,
    "Trainer.evaluate",
)
case(
    "minidl.train.ModelCheckpoint",
    lambda: minidl.train.ModelCheckpoint("/tmp/x", mode="best"),
    ValueError,
    "ModelCheckpoint",
)
case(
    "minidl.train.LearningRateMonitor",
    lambda: minidl.train.LearningRateMonitor("hour"),
    ValueError,
    "LearningRateMonitor",
)

# ---------------------------------------------------------------- random, models, autograd
case(
    "minidl.random.set_rng_state",
    lambda: minidl.random.set_rng_state(5),
    ValueError,
    "set_rng_state",
)
case(
    "minidl.models.small_cnn",
    lambda: minidl.models.small_cnn(classes=0),
    ValueError,
    "out_features",
)
case(
    "minidl.models.small_cnn",
    lambda: minidl.models.small_cnn(in_channels=1.5),
    ValueError,
    "in_channels",
)
case("minidl.autograd.backward", lambda: minidl.autograd.backward(_x(2)), RuntimeError, "grad")
case(
    "minidl.autograd.grad", lambda: minidl.autograd.grad(_x(2).sum(), [_x(2)]), RuntimeError, "grad"
)
# Without an MPI launch every collective refuses, naming itself; with one,
# tests/test_distributed.py feeds them wrong tensors under mpiexec.
for collective, call in (
    ("all_reduce", lambda: minidl.distributed.all_reduce(_x(2))),
    ("broadcast", lambda: minidl.distributed.broadcast(_x(2))),
    ("all_gather", lambda: minidl.distributed.all_gather([_x(2)], _x(2))),
):
    case(f"minidl.distributed.{collective}", call, RuntimeError, collective)

# files given something that is not a path, a writer asked to read, loaders and trainers
# given the wrong pieces (checked when built, not on first use)
case("minidl.load", lambda: minidl.load(5), TypeError, "load")
case("minidl.load", lambda: minidl.load("m.npz", map_location="cuda"), RuntimeError, "cuda")
case("minidl.load", lambda: minidl.load("m.npz", map_location={"a": "b"}), TypeError, "load")
case("minidl.load", lambda: minidl.load("m.npz", weights_only="yes"), TypeError, "load")
case("Tensor.cuda", lambda: _x(2).cuda(), RuntimeError, "CPU only")
case("Tensor.to", lambda: _x(2).to("cuda:0"), RuntimeError, "Tensor.to")
case("minidl.data.TensorDataset", lambda: minidl.data.TensorDataset(), ValueError)
case(
    "minidl.data.TensorDataset",
    lambda: minidl.data.TensorDataset(_x(3), _x(4)),
    ValueError,
    "same length",
)
case("minidl.save", lambda: minidl.save({}, None), TypeError, "save")
case("minidl.data.read_idx", lambda: minidl.data.read_idx(5), TypeError, "read_idx")
case(
    "minidl.io.atomic_write",
    lambda: minidl.io.atomic_write("out.txt", mode="r").__enter__(),
    ValueError,
    "atomic_write",
)
case("minidl.data.DataLoader", lambda: minidl.data.DataLoader(5), TypeError, "DataLoader")
case(
    "minidl.data.DataLoader",
    lambda: minidl.data.DataLoader([1, 2], transform=3),
    TypeError,
    "DataLoader",
)
case(
    "minidl.Trainer",
    lambda: minidl.Trainer(nn.Linear(2, 2), None, nn.MSELoss()),
    TypeError,
    "optimizer",
)
case(
    "minidl.Trainer",
    lambda: minidl.Trainer(5, None, nn.MSELoss()),
    TypeError,
    "model",
)


# ---------------------------------------------------------------- what needs no row, and why
EXEMPT = {
    "minidl.data.DataNotFoundError": "an exception class: raised by minidl, not called",
    "minidl.train.NonFiniteLossError": "an exception class: raised by minidl, not called",
    "minidl.distributed.DistributedError": "an exception class: raised by minidl, not called",
    "minidl.distributed.DistributedTimeoutError": "an exception class: raised, not called",
    "minidl.data.Dataset": "an abstract base: subclasses define __getitem__ and __len__",
    "minidl.train.Callback": "a base class of no-op hooks: subclasses override them",
    "minidl.distributed.init": "needs an MPI launch (tests/test_distributed.py, mpiexec)",
    "minidl.distributed.barrier": "needs an MPI process group (tests/test_distributed.py)",
    "minidl.distributed.Work": "created by the collectives for async_op=True, never by users",
    "minidl.distributed.ReduceOp": "a namespace of constants",
    "minidl.autograd.Context": "the ctx minidl passes to Function.forward, never built by users",
    "minidl.autograd.HookHandle": "returned by register_hook, never built by users",
    "minidl.autograd.result_type": "a class decorator minidl applies to Tensor once",
    "minidl.models.bn_paper_mlp": "one flag, read for its truth as torch reads flags",
    "minidl.CorruptFileError": "an exception class: raised by minidl, not called",
}

# callbacks
CB = minidl.train
case("minidl.train.EarlyStopping", lambda: CB.EarlyStopping(patience=-1), ValueError, "patience")
case("minidl.train.EarlyStopping", lambda: CB.EarlyStopping(patience=1.5), ValueError, "patience")
case("minidl.train.EarlyStopping", lambda: CB.EarlyStopping(min_delta="x"), TypeError, "min_delta")
case("minidl.train.EarlyStopping", lambda: CB.EarlyStopping(monitor=3), TypeError, "monitor")
case("minidl.train.CSVLogger", lambda: CB.CSVLogger(5), TypeError, "CSVLogger")
case("minidl.train.CSVLogger", lambda: CB.CSVLogger("log.csv", separator=";;"), ValueError)
case("minidl.train.PeriodicEvaluation", lambda: CB.PeriodicEvaluation(5), TypeError, "Periodic")
case(
    "minidl.train.PeriodicEvaluation",
    lambda: CB.PeriodicEvaluation([], every=0),
    ValueError,
    "PeriodicEvaluation",
)
case("minidl.train.ActivationStats", lambda: CB.ActivationStats("relu"), TypeError, "Activation")
case(
    "minidl.train.ActivationStats",
    lambda: CB.ActivationStats(minidl.nn.ReLU(), percentiles=(150,)),
    ValueError,
    "ActivationStats",
)
case(
    "minidl.train.ActivationStats",
    lambda: CB.ActivationStats(minidl.nn.ReLU(), every=-2),
    ValueError,
    "ActivationStats",
)
case(
    "minidl.io.remove_stale_temporaries",
    lambda: minidl.io.remove_stale_temporaries(None),
    TypeError,
    "remove_stale_temporaries",
)


def _takes_no_argument(function):
    """Whether ``function`` takes nothing (or only ``self``): no argument can be wrong."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    return all(p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)


def _public_callables():
    """{id: (object, [every public name it has])} over PUBLIC_MODULES and Tensor's methods."""
    found = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n in vars(module) if not n.startswith("_")]
        for name in names:
            value = getattr(module, name)
            if inspect.ismodule(value) or not callable(value):
                continue
            if not getattr(value, "__module__", "").startswith("minidl"):
                continue  # numpy, math and the like, imported for use
            found.setdefault(id(value), (value, []))[1].append(f"{module_name}.{name}")
    for name, value in vars(minidl.Tensor).items():
        if name.startswith("_") or not callable(value):
            continue
        found.setdefault(id(value), (value, []))[1].append(f"Tensor.{name}")
    return found


def test_every_public_callable_is_catalogued():
    catalogued = {name for name, *_ in CASES} | set(EXEMPT)
    missing = sorted(
        names[0]
        for value, names in _public_callables().values()
        if not catalogued.intersection(names) and not _takes_no_argument(value)
    )
    assert not missing, f"public callables with no bad-input case or exemption: {missing}"


def test_every_row_names_a_public_callable():
    public = {name for _, names in _public_callables().values() for name in names}
    unknown = sorted(({name for name, *_ in CASES} | set(EXEMPT)) - public)
    assert not unknown, f"catalogue rows for names that are not public: {unknown}"


def _case_id(row):
    return row[0].replace("minidl.", "")


@pytest.mark.parametrize("name, call, error, match", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input_is_refused_clearly(name, call, error, match):
    pattern = match if match is not None else re.escape(name.rsplit(".", 1)[-1])
    with pytest.raises(error) as raised:
        call()
    message = str(raised.value)
    assert re.search(pattern, message, re.IGNORECASE), (
        f"{name}: the {error.__name__} does not name the callee ({pattern!r}): {message!r}"
    )


# ---------------------------------------------------------------- beyond single calls
# (layer, its torch twin, an empty batch's shape); train or eval mode as named
_EMPTY_BATCHES = [
    ("Dense", lambda m: m.Linear(4, 3), (0, 4)),
    ("Conv2D", lambda m: m.Conv2d(2, 3, 3, padding=1), (0, 2, 5, 5)),
    ("Conv1d", lambda m: m.Conv1d(2, 3, 3), (0, 2, 5)),
    ("ConvTranspose2d", lambda m: m.ConvTranspose2d(2, 3, 3, stride=2), (0, 2, 5, 5)),
    ("BatchNorm1D", lambda m: m.BatchNorm1d(4), (0, 4)),
    ("BatchNorm2D", lambda m: m.BatchNorm2d(2), (0, 2, 3, 3)),
    ("LayerNorm", lambda m: m.LayerNorm(4), (0, 4)),
    ("GroupNorm", lambda m: m.GroupNorm(2, 4), (0, 4, 3)),
    ("MaxPool2D", lambda m: m.MaxPool2d(2), (0, 2, 4, 4)),
    ("AvgPool2D", lambda m: m.AvgPool2d(2), (0, 2, 4, 4)),
    ("AdaptiveAvgPool2d", lambda m: m.AdaptiveAvgPool2d(2), (0, 2, 4, 4)),
    ("Flatten", lambda m: m.Flatten(), (0, 2, 4, 4)),
    ("Upsample", lambda m: m.Upsample(scale_factor=2), (0, 2, 4, 4)),
    ("Softmax", lambda m: m.Softmax(1), (0, 4)),
]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name, make, shape", _EMPTY_BATCHES, ids=[c[0] for c in _EMPTY_BATCHES])
def test_an_empty_batch_gives_an_empty_output_as_in_torch(name, make, shape, training):
    torch = pytest.importorskip("torch")
    theirs = make(torch.nn).train(training)
    ours = make(nn).train(training)
    expected = tuple(theirs(torch.zeros(shape)).shape)
    x = minidl.zeros(*shape, requires_grad=True)
    out = ours(x)
    assert out.shape == expected, f"{name}: {out.shape} on an empty batch, torch {expected}"
    out.sum().backward()
    assert x.grad.shape == x.shape


def test_batch_norm_leaves_its_statistics_alone_on_an_empty_batch():
    layer = nn.BatchNorm2D(2)
    layer(minidl.zeros(0, 2, 3, 3))
    assert layer.running_mean.tolist() == [0.0, 0.0]
    assert layer.running_var.tolist() == [1.0, 1.0]
    assert int(layer.num_batches_tracked.item()) == 1  # torch counts the batch


def test_predict_on_no_rows_runs_the_model_and_keeps_the_output_shape():
    model = nn.Sequential(nn.Dense(4, 8), nn.BatchNorm1D(8), nn.ReLU(), nn.Dense(8, 3))
    trainer = minidl.Trainer(model, minidl.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss())
    assert trainer.predict(np.zeros((0, 4), np.float32)).shape == (0, 3)
    assert trainer.predict(np.zeros((5, 4), np.float32), batch_size=2).shape == (5, 3)


def test_a_bad_thread_count_in_the_environment_warns_and_falls_back(tmp_path):
    import os
    import subprocess
    import sys

    code = "import minidl; print(minidl.get_num_threads())"
    for name, value in (("MINIDL_NUM_THREADS", "50000"), ("OMP_NUM_THREADS", "lots")):
        env = {k: v for k, v in os.environ.items() if not k.endswith("NUM_THREADS")}
        env[name] = value
        done = subprocess.run(
            [sys.executable, "-W", "always", "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert f"{name}={value!r} is not a thread count" in done.stderr, done.stderr
        assert 1 <= int(done.stdout) <= minidl.runtime.MAX_NUM_THREADS
