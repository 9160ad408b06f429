"""Layers with Keras-like names and PyTorch-like arguments, defaults and state-dict layouts."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from .. import _checks
from .._dtypes import FLOAT_DTYPES, get_default_dtype
from ..tensor import Tensor
from . import functional as F
from . import init
from .activations import ReLU
from .module import Module, Parameter, _not_a_tensor, _registered


def _check_input(layer, x, ok, expected):
    """Raise ValueError naming the layer, the expected and the actual shape."""
    if not isinstance(x, Tensor):
        raise _not_a_tensor(layer, x)
    if not ok:
        raise ValueError(f"{layer!r}: expected input of shape {expected}, got {x.shape}")


class _WeightAndBias(Module):
    """A layer with a ``weight`` (out, in, ...) and an optional ``bias`` (out,), initialized
    as PyTorch initializes Linear and Conv2d."""

    def _create(self, weight_shape, bias, bias_size=None):
        self.weight = Parameter(np.empty(weight_shape, get_default_dtype()))
        if bias:
            size = weight_shape[0] if bias_size is None else bias_size
            self.bias = Parameter(np.empty(size, get_default_dtype()))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh weights: Kaiming-uniform (a = sqrt(5)), bias uniform in +-1/sqrt(fan_in)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)


class Dense(_WeightAndBias):
    """Fully connected layer: ``y = x @ weight.T + bias``; ``minidl.nn.Linear`` is this class.

    Input (*, in_features), output (*, out_features); weight (out_features,
    in_features), bias (out_features,). Initialized as PyTorch does:
    Kaiming-uniform with a = sqrt(5) (bound 1 / sqrt(in_features)) and the bias
    uniform in +-1 / sqrt(in_features).

    >>> layer = minidl.nn.Dense(784, 100)
    >>> layer(minidl.zeros(60, 784)).shape
    (60, 100)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = _checks.positive_int(in_features, "Dense", "in_features")
        self.out_features = _checks.positive_int(out_features, "Dense", "out_features")
        self._create((self.out_features, self.in_features), bias)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(
            self, x, x.ndim >= 1 and x.shape[-1] == self.in_features, f"(*, {self.in_features})"
        )
        params = self._parameters
        weight, bias = _registered(self, params, "weight"), _registered(self, params, "bias")
        F._same_dtype("Dense", x, weight=weight, bias=bias)
        return F._LinearFn.apply(x, weight, bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


def _padding_mode(padding_mode, where):
    if padding_mode != "zeros":
        raise NotImplementedError(
            f"{where}: padding_mode={padding_mode!r} is not supported by minidl; only 'zeros' is"
        )


def _conv_channels(in_channels, out_channels, groups, where):
    """Checked (in_channels, out_channels, groups), as torch checks them (ValueError)."""
    in_channels = _checks.positive_int(in_channels, where, "in_channels")
    out_channels = _checks.positive_int(out_channels, where, "out_channels")
    groups = _checks.positive_int(groups, where, "groups")
    if in_channels % groups:
        raise ValueError(f"{where}: in_channels must be divisible by groups")
    if out_channels % groups:
        raise ValueError(f"{where}: out_channels must be divisible by groups")
    return in_channels, out_channels, groups


def _positive_pairs(layer, where, names):
    for name in names:
        if min(getattr(layer, name)) < 1:
            raise ValueError(f"{where}: {name} must be positive, got {getattr(layer, name)}")


class _ConvNd(_WeightAndBias):
    """What Conv1d, Conv2D and ConvTranspose2d share: torch's checks of the channels,
    groups, padding mode and sizes, the weight, the input check and the repr."""

    _spatial = "H, W"  # the input's dims after (N, C), in errors

    def __init__(
        self, in_channels: int, out_channels: int, groups: int, padding_mode: str, where: Any
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.groups = _conv_channels(
            in_channels, out_channels, groups, where
        )
        _padding_mode(padding_mode, where)

    def _sizes(self, where, **sizes):
        """Set each of ``sizes`` as a checked positive tuple, one entry per spatial dim."""
        for name, value in sizes.items():
            if self._spatial == "L":
                setattr(self, name, (F._single(value, where, name),))
            else:
                setattr(self, name, _checks.pair(value, where, name))
        _positive_pairs(self, where, tuple(sizes))

    def _create_kernel(self, bias, transposed=False):
        """Weight (out, in / groups, *kernel), transposed (in, out / groups, *kernel)."""
        channels = (self.in_channels, self.out_channels)
        first, second = channels if transposed else channels[::-1]
        self._create(
            (first, second // self.groups, *self.kernel_size), bias, bias_size=self.out_channels
        )

    def _check_channels(self, x):
        _check_input(
            self,
            x,
            x.ndim == 2 + len(self.kernel_size) and x.shape[1] == self.in_channels,
            f"(N, {self.in_channels}, {self._spatial})",
        )

    def extra_repr(self) -> str:
        """torch's ``_ConvNd.extra_repr``: the arguments that differ from the defaults."""
        dims = len(self.kernel_size)
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * dims:
            text += f", padding={self.padding!r}"
        if self.dilation != (1,) * dims:
            text += f", dilation={self.dilation}"
        output_padding = getattr(self, "output_padding", None)
        if output_padding is not None and output_padding != (0,) * dims:
            text += f", output_padding={output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class _Conv(_ConvNd):
    """Conv1d and Conv2D: torch's arguments, ``padding`` checked by ``_checked_padding``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        where = type(self).__name__
        super().__init__(in_channels, out_channels, groups, padding_mode, where)
        self._sizes(where, kernel_size=kernel_size, stride=stride, dilation=dilation)
        self.padding = self._checked_padding(padding, where)
        self._create_kernel(bias)


class Conv2D(_Conv):
    """2-D convolution over (N, C, H, W) inputs; ``minidl.nn.Conv2d`` is this class.

    Arguments, in torch's order: ``kernel_size``, ``stride``, ``padding`` and
    ``dilation`` are ints or pairs; ``padding="same"`` (stride 1) keeps H and W,
    ``"valid"`` is no padding; ``groups`` splits the channels into blocks
    convolved separately (``groups=in_channels``: depthwise). Weight
    (out_channels, in_channels / groups, kh, kw), bias (out_channels,).
    Initialized as PyTorch does (Kaiming-uniform with a = sqrt(5); bias uniform
    in +-1 / sqrt(fan_in), fan_in = in_channels / groups * kh * kw). Runs on the
    compiled im2col/col2im kernels and numpy's BLAS.

    >>> conv = minidl.nn.Conv2D(1, 32, 3, padding="same")
    >>> conv(minidl.zeros(8, 1, 28, 28)).shape
    (8, 32, 28, 28)
    >>> minidl.nn.Conv2d(8, 8, 3, groups=8).weight.shape
    (8, 1, 3, 3)
    """

    def _checked_padding(self, padding, where):
        before, _ = F._conv_padding(padding, self.kernel_size, self.stride, self.dilation, where)
        return padding if isinstance(padding, str) else before

    def forward(self, x: Tensor) -> Tensor:
        self._check_channels(x)
        return F._conv2d(
            x,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            type(self).__name__,
        )


class Conv1d(_Conv):
    """1-D convolution over (N, C, L) inputs (torch's ``nn.Conv1d``).

    ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are ints (or
    1-tuples); ``padding`` may be "same" (stride 1) or "valid"; ``groups`` as in
    :class:`Conv2D`. Weight (out_channels, in_channels / groups, k), bias
    (out_channels,), initialized as torch's.

    >>> minidl.nn.Conv1d(3, 8, 5, padding=2)(minidl.zeros(4, 3, 20)).shape
    (4, 8, 20)
    """

    _spatial = "L"

    def _checked_padding(self, padding, where):
        if isinstance(padding, str):
            F._conv_padding(
                padding, (1, *self.kernel_size), (1, *self.stride), (1, *self.dilation), where
            )
            return padding
        single = (F._single(padding, where, "padding"),)
        if single[0] < 0:
            raise ValueError(f"{where}: padding must be non-negative, got {padding!r}")
        return single

    def forward(self, x: Tensor) -> Tensor:
        self._check_channels(x)
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return F._conv1d(
            x,
            self.weight,
            self.bias,
            self.stride[0],
            padding,
            self.dilation[0],
            self.groups,
            type(self).__name__,
        )


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution over (N, C, H, W) inputs (torch's ``nn.ConvTranspose2d``).

    Arguments in torch's order (``bias`` before ``dilation``). Weight in torch's
    layout (in_channels, out_channels / groups, kh, kw), bias (out_channels,),
    initialized as torch's (Kaiming-uniform, a = sqrt(5), over the fan computed
    from that layout). Output (N, out_channels, OH, OW) with OH = (H - 1) * sh -
    2 * ph + dh * (kh - 1) + oph + 1; ``output_padding`` must be smaller than
    the stride or the dilation.

    >>> up = minidl.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
    >>> up(minidl.zeros(2, 16, 7, 7)).shape
    (2, 8, 14, 14)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        padding_mode: str = "zeros",
    ) -> None:
        where = "ConvTranspose2d"
        super().__init__(in_channels, out_channels, groups, padding_mode, where)
        self._sizes(where, kernel_size=kernel_size)
        self.stride, self.padding, self.output_padding, self.dilation = F._transpose_geometry(
            self.kernel_size, stride, padding, output_padding, dilation, where
        )
        self._create_kernel(bias, transposed=True)

    def _output_padding_for(self, x, output_size):
        return _transpose_output_padding(self, x, output_size)

    def forward(self, x: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        """``x`` (N, in_channels, H, W) -> (N, out_channels, OH, OW); ``output_size`` picks
        the output padding that gives that (OH, OW), as torch's."""
        self._check_channels(x)
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding_for(x, output_size)
        geometry = (self.stride, self.padding, output_padding, self.dilation)
        return F._conv_transpose2d(
            x, self.weight, self.bias, geometry, self.groups, "ConvTranspose2d"
        )


def _transpose_output_padding(layer, x, output_size):
    """The output padding that makes a transposed convolution of ``x`` (OH, OW) big."""
    size = tuple(output_size)[-2:]
    if len(size) != 2 or not all(_checks.is_int(n) for n in size):
        raise ValueError(f"ConvTranspose2d: output_size must end in two ints, got {output_size!r}")
    padding = []
    for axis in range(2):
        smallest = (
            (x.shape[2 + axis] - 1) * layer.stride[axis]
            - 2 * layer.padding[axis]
            + layer.dilation[axis] * (layer.kernel_size[axis] - 1)
            + 1
        )
        extra = int(size[axis]) - smallest
        limit = max(layer.stride[axis], layer.dilation[axis])
        if not 0 <= extra < limit:
            raise ValueError(
                f"ConvTranspose2d: requested an output size of {tuple(size)}, but valid sizes "
                f"along dim {2 + axis} range from {smallest} to {smallest + limit - 1}"
            )
        padding.append(extra)
    return tuple(padding)


class _NormBase(Module):
    """What the normalization layers share (PyTorch's ``_NormBase``): an optional affine
    ``weight`` (ones) and ``bias`` (zeros) of a given shape, optional running statistics
    per feature, and resetting both."""

    def _create_affine(self, shape, affine, bias=True):
        if affine:
            self.weight = Parameter(np.ones(shape, get_default_dtype()))
            if bias:
                self.bias = Parameter(np.zeros(shape, get_default_dtype()))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def _per_feature_state(self, num_features, eps, momentum, affine, track_running_stats, bias):
        """What batch and instance norm set up alike: one weight, bias and running mean and
        variance per feature (channel), each optional."""
        self.num_features = _checks.positive_int(num_features, type(self).__name__, "num_features")
        self.eps, self.momentum = _checks.eps_and_momentum(eps, momentum, type(self).__name__)
        self.affine = bool(affine)
        self.bias_enabled = bool(bias)
        self.track_running_stats = bool(track_running_stats)
        self._create_affine(self.num_features, self.affine, bias)
        self._create_running_stats(self.num_features, self.track_running_stats)

    def _create_running_stats(self, features, track_running_stats):
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(features, get_default_dtype()))
            self.register_buffer("running_var", np.ones(features, get_default_dtype()))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        """Running mean 0, running variance 1, no batches tracked (when there are any)."""
        if getattr(self, "track_running_stats", False):
            self.running_mean.numpy()[...] = 0
            self.running_var.numpy()[...] = 1
            self.num_batches_tracked.data = np.array(0, dtype=np.int64)

    def reset_parameters(self) -> None:
        """Running statistics reset; weight 1 and bias 0."""
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)


class BatchNorm(_NormBase):
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

    _ranks: ClassVar[tuple[int, ...]] = (2, 3, 4)
    _shape_text = "(N, {0}), (N, {0}, L) or (N, {0}, H, W)"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self._per_feature_state(num_features, eps, momentum, affine, track_running_stats, bias)

    def _check_and_count(self, x, local_statistics=True):
        """Check the input, count the batch in ``num_batches_tracked`` when training tracks
        statistics; returns ``(use_batch_stats, tracked)``. ``local_statistics``: the
        statistics are this input's alone, which needs two values per channel."""
        if not (
            isinstance(x, Tensor) and x.ndim in self._ranks and x.shape[1] == self.num_features
        ):  # the message is only formatted for a wrong input
            _check_input(self, x, False, self._shape_text.format(self.num_features))
        # torch's rule: training uses the batch's statistics; evaluation uses the running
        # ones whenever they exist, even when track_running_stats was switched off after
        # they were made (only a layer built without them normalizes by the batch)
        use_batch_stats = self.training or (
            self._buffers.get("running_mean") is None and self._buffers.get("running_var") is None
        )
        tracked = None
        if self.training and self.track_running_stats:
            count = _registered(self, self._buffers, "num_batches_tracked").numpy()
            tracked = int(count) + 1
            count[()] = tracked  # in place: the buffer's 0-d array (counted first, as torch)
        if use_batch_stats and local_statistics and x.shape[0]:
            _checks.values_per_channel(x.shape, type(self).__name__)
        return use_batch_stats, tracked

    def _running(self, name):
        """The running statistic ``name`` to normalize with or update, or None: training
        leaves them alone without ``track_running_stats`` (torch's rule)."""
        if self.training and not self.track_running_stats:
            return None
        return _registered(self, self._buffers, name)

    def forward(self, x: Tensor) -> Tensor:
        use_batch_stats, tracked = self._check_and_count(x)
        if use_batch_stats and x.shape[0] == 0:
            # torch: an empty batch gives an empty output and leaves the running
            # statistics alone (the batch is still counted in num_batches_tracked)
            return x * 1.0
        params = self._parameters
        return F._batch_norm(
            x,
            self._running("running_mean"),
            self._running("running_var"),
            _registered(self, params, "weight"),
            _registered(self, params, "bias"),
            use_batch_stats,
            self.momentum,
            self.eps,
            tracked,
            where=type(self).__name__,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias_enabled}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1D(BatchNorm):
    """:class:`BatchNorm` for (N, C) or (N, C, L) inputs only; ``minidl.nn.BatchNorm1d`` is
    this class.

    >>> minidl.nn.BatchNorm1D(100)(minidl.randn(60, 100)).shape
    (60, 100)
    """

    _ranks = (2, 3)
    _shape_text = "(N, {0}) or (N, {0}, L)"


class BatchNorm2D(BatchNorm):
    """:class:`BatchNorm` for (N, C, H, W) inputs only; ``minidl.nn.BatchNorm2d`` is this class.

    >>> minidl.nn.BatchNorm2D(32)(minidl.randn(4, 32, 7, 7)).shape
    (4, 32, 7, 7)
    """

    _ranks = (4,)
    _shape_text = "(N, {0}, H, W)"


class _Pool2D(Module):
    """What max and average pooling share: the window, checked when the layer is made."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] | str = 0,
    ) -> None:
        super().__init__()
        where = type(self).__name__
        _checks.pair(kernel_size, where, "kernel_size")
        _checks.pair(padding, where, "padding")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        _checks.pair(self.stride, where, "stride")
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2D(_Pool2D):
    """2-D max pooling over (N, C, H, W) inputs; ``minidl.nn.MaxPool2d`` is this class.

    Arguments in torch's order: ``stride`` defaults to ``kernel_size``; padding
    counts as -inf; ``dilation`` spaces the window's cells; ``ceil_mode`` rounds
    the output size up; ``return_indices`` makes it return ``(out, indices)``,
    each maximum's position ``h * W + w`` in its input plane (torch's layout).

    >>> minidl.nn.MaxPool2D(2)(minidl.zeros(1, 3, 28, 28)).shape
    (1, 3, 14, 14)
    >>> minidl.nn.MaxPool2d(2, ceil_mode=True)(minidl.zeros(1, 3, 7, 7)).shape
    (1, 3, 4, 4)
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__(kernel_size, stride, padding)
        _checks.pair(dilation, type(self).__name__, "dilation")
        self.dilation = dilation
        self.return_indices = bool(return_indices)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x: Tensor) -> Any:  # (out, indices) with return_indices
        return F._max_pool2d(x, self._geometry(x), self.return_indices)

    def _geometry(self, x):
        _check_input(self, x, x.ndim == 4, "(N, C, H, W)")
        return F._max_pool_geometry(
            x.shape,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            type(self).__name__,
        )

    def _forward_after_relu(self, x):
        # this layer applied to relu(x), in one node (Sequential fuses ReLU -> MaxPool2d)
        return F._relu_max_pool2d(x, self._geometry(x))

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2D(_Pool2D):
    """2-D average pooling over (N, C, H, W) inputs; ``minidl.nn.AvgPool2d`` is this class.

    Arguments in torch's order; ``stride`` defaults to ``kernel_size``;
    ``ceil_mode=True`` and ``divisor_override`` are refused (NotImplementedError).

    >>> minidl.nn.AvgPool2D(2)(minidl.zeros(1, 3, 28, 28)).shape
    (1, 3, 14, 14)
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] | str = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: Any = None,
    ) -> None:
        super().__init__(kernel_size, stride, padding)
        F._avg_pool_options(ceil_mode, divisor_override, type(self).__name__)
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        _check_input(self, x, x.ndim == 4, "(N, C, H, W)")
        return F._AvgPool2dFn.apply(
            x, self.kernel_size, self.stride, self.padding, self.count_include_pad
        )


class AdaptiveAvgPool2d(Module):
    """Average pooling of (N, C, H, W) or (C, H, W) inputs to a fixed ``output_size``.

    ``output_size`` is an int, a pair, or a pair with None (keep that size);
    window i along H covers floor(i H / OH) to ceil((i + 1) H / OH), as torch's.
    ``AdaptiveAvgPool2d(1)`` is global average pooling.

    >>> minidl.nn.AdaptiveAvgPool2d(1)(minidl.zeros(4, 64, 7, 7)).shape
    (4, 64, 1, 1)
    """

    def __init__(self, output_size: int | tuple[int, int]) -> None:
        super().__init__()
        F._adaptive_output_size(output_size, (1, 1), "AdaptiveAvgPool2d")
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        _check_input(
            self, x, x.ndim in (3, 4) and min(x.shape[-2:]) >= 1, "(N, C, H, W) or (C, H, W)"
        )
        size = F._adaptive_output_size(self.output_size, x.shape, "AdaptiveAvgPool2d")
        return F._AdaptiveAvgPool2dFn.apply(x, size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Flatten(Module):
    """Merge dims ``start_dim`` to ``end_dim`` into one (by default all but the batch dim).

    >>> minidl.nn.Flatten()(minidl.zeros(8, 64, 5, 5)).shape
    (8, 1600)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not _checks.is_int(value):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x: Tensor) -> Tensor:
        _check_input(self, x, x.ndim > self.start_dim, f"at least {self.start_dim + 1} dims")
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """In training, zero each element with probability ``p`` and scale the rest by 1 / (1 - p).

    In evaluation it passes its input through. Masks come from minidl's generator.

    >>> drop = minidl.nn.Dropout(0.5).eval()
    >>> drop(minidl.ones(3))
    tensor([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = F._dropout_probability(p, "Dropout")

    def forward(self, x: Tensor) -> Tensor:
        return F._dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Identity(Module):
    """Returns its input; arguments are accepted and ignored (as PyTorch's).

    >>> minidl.nn.Identity()(minidl.ones(2))
    tensor([1., 1.])
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (a tuple; one entry may be -1).

    >>> minidl.nn.Unflatten(1, (2, 3))(minidl.zeros(4, 6)).shape
    (4, 2, 3)
    """

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        if not _checks.is_int(dim):
            raise TypeError(f"Unflatten: dim must be an int, got {dim!r}")
        sizes = tuple(unflattened_size) if isinstance(unflattened_size, (tuple, list)) else None
        if not sizes or not all(_checks.is_int(v) and (v >= 0 or v == -1) for v in sizes):
            raise TypeError(
                f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}"
            )
        if sizes.count(-1) > 1:
            raise ValueError("Unflatten: only one dimension can be inferred (-1)")
        self.dim, self.unflattened_size = int(dim), tuple(int(v) for v in sizes)

    def forward(self, x: Tensor) -> Tensor:
        ok = isinstance(x, Tensor) and -x.ndim <= self.dim < x.ndim
        _check_input(self, x, ok, f"a tensor with a dim {self.dim}")
        dim = self.dim % x.ndim
        sizes = list(self.unflattened_size)
        known = math.prod(v for v in sizes if v != -1)
        if -1 in sizes and known and x.shape[dim] % known == 0:
            sizes[sizes.index(-1)] = x.shape[dim] // known
        if math.prod(sizes) != x.shape[dim] or -1 in sizes:
            raise ValueError(
                f"{self!r}: provided sizes {list(self.unflattened_size)} don't multiply up to "
                f"the size of dim {self.dim} ({x.shape[dim]}) in the input tensor"
            )
        return x.reshape(*x.shape[:dim], *sizes, *x.shape[dim + 1 :])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Dropout2d(Module):
    """In training, zero each whole channel (an (n, c) plane of a (N, C, H, W) input) with
    probability ``p`` and scale the rest by 1 / (1 - p); in evaluation, pass through.

    A 3-d input is taken as (N, C, L), with torch's warning. ``inplace=True``
    is refused.

    >>> drop = minidl.nn.Dropout2d(0.5)
    >>> y = drop(minidl.ones(2, 8, 3, 3))
    >>> sorted(set(y.numpy().reshape(16, 9).std(axis=1).tolist()))
    [0.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = F._dropout_probability(p, "Dropout2d")
        if inplace:
            raise NotImplementedError("Dropout2d: inplace=True is not supported by minidl")
        self.inplace = False

    def forward(self, x: Tensor) -> Tensor:
        _check_input(self, x, True, "(N, C, H, W)")
        return F._dropout2d(x, self.p, self.training, False, "Dropout2d")

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Upsample(Module):
    """Resize (N, C, L), (N, C, H, W) or (N, C, D, H, W) inputs by ``scale_factor`` or to
    ``size``; only ``mode="nearest"`` (the default) is implemented.

    >>> minidl.nn.Upsample(scale_factor=2)(minidl.zeros(1, 3, 4, 5)).shape
    (1, 3, 8, 10)
    """

    def __init__(
        self,
        size: Any = None,
        scale_factor: float | tuple[float, ...] | None = None,
        mode: str = "nearest",
        align_corners: Any = None,
        recompute_scale_factor: Any = None,
    ) -> None:
        super().__init__()
        if mode != "nearest":
            raise NotImplementedError(
                f"Upsample: mode={mode!r} is not implemented in minidl; only mode='nearest' is"
            )
        self.size = size
        self.scale_factor: tuple[float, ...] | float | None
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(v) for v in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor is not None else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        _check_input(self, x, True, "(N, C, ...)")
        return F.interpolate(
            x,
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            self.recompute_scale_factor,
        )

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            return f"scale_factor={self.scale_factor!r}, mode={self.mode!r}"
        return f"size={self.size!r}, mode={self.mode!r}"


class Embedding(Module):
    """A lookup table: integer indices (*) -> rows of ``weight`` (*, embedding_dim).

    ``weight`` (num_embeddings, embedding_dim) is drawn from N(0, 1), as torch's;
    the row ``padding_idx`` (negative counts from the end) is zero and gets no
    gradient. ``max_norm``, ``scale_grad_by_freq`` and ``sparse`` are refused.

    >>> emb = minidl.nn.Embedding(10, 3, padding_idx=0)
    >>> emb(minidl.tensor([[0, 4], [9, 0]])).shape, emb.weight[0].tolist()
    ((2, 2, 3), [0.0, 0.0, 0.0])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: Any = None,
        norm_type: Any = 2.0,
        scale_grad_by_freq: Any = False,
        sparse: Any = False,
        _weight: Any = None,
        _freeze: Any = False,
    ) -> None:
        super().__init__()
        where = "Embedding"
        F._embedding_options(max_norm, scale_grad_by_freq, sparse, where)
        self.num_embeddings = _checks.positive_int(num_embeddings, where, "num_embeddings")
        self.embedding_dim = _checks.positive_int(embedding_dim, where, "embedding_dim")
        self.padding_idx = F._padding_index(padding_idx, self.num_embeddings, where)
        self.max_norm, self.norm_type = None, norm_type
        self.scale_grad_by_freq, self.sparse = False, False
        shape = (self.num_embeddings, self.embedding_dim)
        if _weight is None:
            self.weight = Parameter(np.empty(shape, get_default_dtype()))
            self.reset_parameters()
        else:
            array = _weight.numpy() if isinstance(_weight, Tensor) else np.asarray(_weight)
            if array.shape != shape:
                raise ValueError(f"{where}: _weight has shape {array.shape}, expected {shape}")
            self.weight = Parameter(array.copy(), requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        """Draw the weight from N(0, 1), then zero the padding row."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.numpy()[self.padding_idx] = 0

    @classmethod
    def from_pretrained(
        cls,
        embeddings,
        freeze=True,
        padding_idx=None,
        max_norm=None,
        norm_type=2.0,
        scale_grad_by_freq=False,
        sparse=False,
    ):
        """An Embedding whose weight is a copy of the (num_embeddings, D) ``embeddings``,
        frozen unless ``freeze=False``.

        >>> minidl.nn.Embedding.from_pretrained(minidl.eye(3)).weight.requires_grad
        False
        """
        if embeddings.ndim != 2:
            raise ValueError(
                f"Embedding.from_pretrained: embeddings must be 2-d, got shape {embeddings.shape}"
            )
        rows, dim = embeddings.shape
        return cls(
            rows,
            dim,
            padding_idx,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            sparse,
            _weight=embeddings,
            _freeze=freeze,
        )

    def forward(self, indices: Tensor) -> Tensor:
        indices = F._embedding_indices(indices, self.num_embeddings, repr(self))
        return F._EmbeddingFn.apply(self.weight, indices, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text


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

    def __init__(self, *modules: Any) -> None:
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

    def forward(self, x: Tensor) -> Tensor:
        modules = list(self._modules.values())
        index = 0
        while index < len(modules):
            module = modules[index]
            if index + 1 < len(modules) and _fuses_relu_pool(module, modules[index + 1], x):
                # ReLU -> MaxPool2d as one node: the same values and gradients, without
                # the full-size ReLU output and its backward pass
                x = modules[index + 1]._forward_after_relu(x)
                index += 2
            else:
                x = module(x)
                index += 1
        return x


def _plain_call(module):
    """Whether calling ``module`` runs just its class's forward: no hook, no patched forward."""
    return not (module._has_call_hooks() or "forward" in module.__dict__)


def _fuses_relu_pool(module, following, x):
    """Whether ``following(module(x))`` may run as the fused ReLU -> MaxPool2d node.

    Only when nothing could tell the difference: exactly these two classes (a subclass
    may change forward), an out-of-place ReLU (an in-place one mutates the caller's
    tensor), no indices returned, no hooks, and a float32/float64 (N, C, H, W) tensor
    (what the kernels take; anything else runs unfused and raises or promotes as usual).
    """
    return (
        type(module) is ReLU
        and type(following) is MaxPool2D
        and not module.inplace
        and not following.return_indices
        and isinstance(x, Tensor)
        and x.ndim == 4
        and x.dtype in FLOAT_DTYPES
        and _plain_call(module)
        and _plain_call(following)
    )


# torch's names: the same classes under a second name. A class object cannot know which of
# its names a call used, so repr and summary print the class's own (Keras-style) name.
Linear = Dense
"""torch's name for :class:`Dense` (the same class): ``nn.Linear(784, 100)``."""
Conv2d = Conv2D
"""torch's name for :class:`Conv2D` (the same class): ``nn.Conv2d(1, 32, 3)``."""
BatchNorm1d = BatchNorm1D
"""torch's name for :class:`BatchNorm1D` (the same class): ``nn.BatchNorm1d(100)``."""
BatchNorm2d = BatchNorm2D
"""torch's name for :class:`BatchNorm2D` (the same class): ``nn.BatchNorm2d(32)``."""
MaxPool2d = MaxPool2D
"""torch's name for :class:`MaxPool2D` (the same class): ``nn.MaxPool2d(2)``."""
AvgPool2d = AvgPool2D
"""torch's name for :class:`AvgPool2D` (the same class): ``nn.AvgPool2d(2)``."""
