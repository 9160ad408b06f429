"""Layers with Keras-like names and PyTorch-like arguments, defaults and state-dict layouts."""

import math
from collections import OrderedDict

import numpy as np

from .. import _checks
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


def _check_input(layer, x, ok, expected):
    """Raise ValueError naming the layer, the expected and the actual shape."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{layer!r}: expected a minidl Tensor, got {type(x).__name__}")
    if not ok:
        raise ValueError(f"{layer!r}: expected input of shape {expected}, got {x.shape}")


class _WeightAndBias(Module):
    """A layer with a ``weight`` (out, in, ...) and an optional ``bias`` (out,), initialized
    as PyTorch initializes Linear and Conv2d."""

    def _create(self, weight_shape, bias):
        self.weight = Parameter(np.empty(weight_shape, np.float32))
        if bias:
            self.bias = Parameter(np.empty(weight_shape[0], np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw fresh weights: Kaiming-uniform (a = sqrt(5)), bias uniform in +-1/sqrt(fan_in)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)


class Dense(_WeightAndBias):
    """Fully connected layer: ``y = x @ weight.T + bias`` (PyTorch's ``nn.Linear``).

    Input (*, in_features), output (*, out_features); weight (out_features,
    in_features), bias (out_features,). Initialized as PyTorch does:
    Kaiming-uniform with a = sqrt(5) (bound 1 / sqrt(in_features)) and the bias
    uniform in +-1 / sqrt(in_features).

    >>> layer = minidl.nn.Dense(784, 100)
    >>> layer(minidl.zeros(60, 784)).shape
    (60, 100)
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features = _checks.positive_int(in_features, "Dense", "in_features")
        self.out_features = _checks.positive_int(out_features, "Dense", "out_features")
        self._create((self.out_features, self.in_features), bias)

    def forward(self, x):
        _check_input(
            self, x, x.ndim >= 1 and x.shape[-1] == self.in_features, f"(*, {self.in_features})"
        )
        return F._LinearFn.apply(x, self.weight, self.bias)

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Conv2D(_WeightAndBias):
    """2-D convolution over (N, C, H, W) inputs (PyTorch's ``nn.Conv2d``, without groups).

    Weight (out_channels, in_channels, kh, kw), bias (out_channels,).
    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are ints or pairs;
    ``padding="same"`` (stride 1) keeps H and W, ``"valid"`` is no padding.
    Initialized as PyTorch does (Kaiming-uniform with a = sqrt(5); bias uniform
    in +-1 / sqrt(fan_in), fan_in = in_channels * kh * kw). Runs on the compiled
    im2col/col2im kernels and numpy's BLAS.

    >>> conv = minidl.nn.Conv2D(1, 32, 3, padding="same")
    >>> conv(minidl.zeros(8, 1, 28, 28)).shape
    (8, 32, 28, 28)
    """

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, bias=True
    ):
        super().__init__()
        self.in_channels = _checks.positive_int(in_channels, "Conv2D", "in_channels")
        self.out_channels = _checks.positive_int(out_channels, "Conv2D", "out_channels")
        self.kernel_size = _checks.pair(kernel_size, "Conv2D", "kernel_size")
        self.stride = _checks.pair(stride, "Conv2D", "stride")
        self.dilation = _checks.pair(dilation, "Conv2D", "dilation")
        for name in ("kernel_size", "stride", "dilation"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"Conv2D: {name} must be positive, got {getattr(self, name)}")
        before, _ = F._conv_padding(padding, self.kernel_size, self.stride, self.dilation, "Conv2D")
        self.padding = padding if isinstance(padding, str) else before
        self._create((self.out_channels, self.in_channels, *self.kernel_size), bias)

    def forward(self, x):
        _check_input(
            self,
            x,
            x.ndim == 4 and x.shape[1] == self.in_channels,
            f"(N, {self.in_channels}, H, W)",
        )
        padding, extra = F._conv_padding(
            self.padding, self.kernel_size, self.stride, self.dilation, "Conv2D"
        )
        return F._Conv2dFn.apply(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=padding,
            dilation=self.dilation,
            extra=extra,
        )

    def extra_repr(self):
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += (
                f", padding={self.padding!r}"
                if isinstance(self.padding, str)
                else f", padding={self.padding}"
            )
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text


class BatchNorm(Module):
    """Batch normalization (Ioffe & Szegedy, 2015) over axis 1, with PyTorch's semantics.

    Accepts (N, C), (N, C, L) and (N, C, H, W); statistics per channel over every
    other axis. In training the batch statistics normalize and update the running
    ones: ``running = (1 - momentum) * running + momentum * batch`` with the
    unbiased batch variance (``momentum=None``: a cumulative average); in
    evaluation the running statistics normalize. ``track_running_stats=False``
    keeps no running statistics and always uses the batch's. State: ``weight``
    (ones), ``bias`` (zeros) when ``affine``; buffers ``running_mean``,
    ``running_var``, ``num_batches_tracked``.

    From Keras: Keras' ``momentum`` is the weight of the old value, so Keras
    ``momentum=0.99`` is minidl ``momentum=0.01`` (1 - 0.99); Keras'
    ``epsilon=1e-3`` is ``eps=1e-3`` here (the default here is PyTorch's 1e-5).

    >>> bn = minidl.nn.BatchNorm(3)
    >>> y = bn(minidl.randn(8, 3, 4, 4))
    >>> bn.num_batches_tracked.item()
    1
    """

    _ranks = (2, 3, 4)
    _shape_text = "(N, {0}), (N, {0}, L) or (N, {0}, H, W)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.num_features = _checks.positive_int(num_features, type(self).__name__, "num_features")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, np.float32))
            self.bias = Parameter(np.zeros(self.num_features, np.float32))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, np.float32))
            self.register_buffer("running_var", np.ones(self.num_features, np.float32))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean.numpy()[...] = 0
            self.running_var.numpy()[...] = 1
            self.num_batches_tracked.data = np.array(0, dtype=np.int64)

    def reset_parameters(self):
        """Running statistics reset; weight 1 and bias 0."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x):
        _check_input(
            self,
            x,
            x.ndim in self._ranks and x.shape[1] == self.num_features,
            self._shape_text.format(self.num_features),
        )
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            _checks.values_per_channel(x.shape, type(self).__name__)
        tracked = None
        if self.training and self.track_running_stats:
            self.num_batches_tracked.numpy()[...] += 1  # in place
            tracked = int(self.num_batches_tracked.numpy())
        return F._batch_norm(
            x,
            self.running_mean,  # None without track_running_stats
            self.running_var,
            self.weight,
            self.bias,
            use_batch_stats,
            self.momentum,
            self.eps,
            tracked,
        )

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1D(BatchNorm):
    """:class:`BatchNorm` for (N, C) or (N, C, L) inputs only (PyTorch's ``BatchNorm1d``).

    >>> minidl.nn.BatchNorm1D(100)(minidl.randn(60, 100)).shape
    (60, 100)
    """

    _ranks = (2, 3)
    _shape_text = "(N, {0}) or (N, {0}, L)"


class BatchNorm2D(BatchNorm):
    """:class:`BatchNorm` for (N, C, H, W) inputs only (PyTorch's ``BatchNorm2d``).

    >>> minidl.nn.BatchNorm2D(32)(minidl.randn(4, 32, 7, 7)).shape
    (4, 32, 7, 7)
    """

    _ranks = (4,)
    _shape_text = "(N, {0}, H, W)"


class _Pool2D(Module):
    """What max and average pooling share: the window, checked when the layer is made."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        where = type(self).__name__
        _checks.pair(kernel_size, where, "kernel_size")
        _checks.pair(padding, where, "padding")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        _checks.pair(self.stride, where, "stride")
        self.padding = padding

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2D(_Pool2D):
    """2-D max pooling over (N, C, H, W) inputs; ``stride`` defaults to ``kernel_size``.

    >>> minidl.nn.MaxPool2D(2)(minidl.zeros(1, 3, 28, 28)).shape
    (1, 3, 14, 14)
    """

    def forward(self, x):
        _check_input(self, x, x.ndim == 4, "(N, C, H, W)")
        return F._MaxPool2dFn.apply(x, self.kernel_size, self.stride, self.padding)


class AvgPool2D(_Pool2D):
    """2-D average pooling over (N, C, H, W) inputs; ``stride`` defaults to ``kernel_size``.

    >>> minidl.nn.AvgPool2D(2)(minidl.zeros(1, 3, 28, 28)).shape
    (1, 3, 14, 14)
    """

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def forward(self, x):
        _check_input(self, x, x.ndim == 4, "(N, C, H, W)")
        return F._AvgPool2dFn.apply(
            x, self.kernel_size, self.stride, self.padding, self.count_include_pad
        )


class Flatten(Module):
    """Merge dims ``start_dim`` to ``end_dim`` into one (by default all but the batch dim).

    >>> minidl.nn.Flatten()(minidl.zeros(8, 64, 5, 5)).shape
    (8, 1600)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        _check_input(self, x, x.ndim > self.start_dim, f"at least {self.start_dim + 1} dims")
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """In training, zero each element with probability ``p`` and scale the rest by 1 / (1 - p).

    In evaluation it passes its input through. Masks come from minidl's generator.

    >>> drop = minidl.nn.Dropout(0.5).eval()
    >>> drop(minidl.ones(3))
    tensor([1., 1., 1.])
    """

    def __init__(self, p=0.5):
        super().__init__()
        self.p = F._dropout_probability(p, "Dropout")

    def forward(self, x):
        return F._dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Identity(Module):
    """Returns its input; arguments are accepted and ignored (as PyTorch's).

    >>> minidl.nn.Identity()(minidl.ones(2))
    tensor([1., 1.])
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Sequential(Module):
    """Modules applied in order; built from modules or from an OrderedDict of named ones.

    Supports ``len``, iteration, indexing (an int gives a module, a slice a
    Sequential) and ``append``.

    >>> model = minidl.nn.Sequential(minidl.nn.Dense(4, 8), minidl.nn.ReLU())
    >>> model.append(minidl.nn.Dense(8, 2))
    Sequential(
      (0): Dense(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Dense(in_features=8, out_features=2, bias=True)
    )
    >>> len(model), type(model[-1]).__name__
    (3, 'Dense')
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                if not isinstance(module, Module):
                    raise TypeError(
                        f"Sequential: argument {index} is a {type(module).__name__}, not a Module"
                    )
                self.add_module(str(index), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        if not -len(items) <= index < len(items):
            raise IndexError(f"Sequential: index {index} is out of range for {len(items)} modules")
        return items[index][1]

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append: expected a Module, got {type(module).__name__}")
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x
