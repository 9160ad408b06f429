"""Stateless differentiable operations of neural networks, over the compiled kernels.

Convolution, batch normalization, pooling and cross-entropy are autograd
Functions whose forward and backward call ``minidl._ops`` directly; the rest
are small compositions or element-wise Functions. Layers in ``minidl.nn`` hold
the state (weights, running statistics) and call these. Import it as PyTorch's
is imported: ``import minidl.nn.functional as F``.

Shapes follow PyTorch: images are (N, C, H, W); a linear weight is
(out_features, in_features); a convolution weight is (out_channels,
in_channels, kh, kw); class scores are (N, K) with integer labels (N,).

Each public function checks its arguments once, naming itself in its errors, and
then applies a private Function (``_BatchNormFn`` ...) whose forward and backward
call the kernels. A layer checks its input with its own name and applies the same
Function.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _checks, _functions, _ops
from .. import distributed as _distributed
from .. import random as _random
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor

# ---------------------------------------------------------------- linear


class _LinearFn(Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        out = np.matmul(x, weight.T)
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_weight, need_bias = ctx.needs_input_grad
        rows = grad.reshape(-1, grad.shape[-1])
        dx = np.matmul(grad, weight) if need_x else None
        dweight = rows.T @ x.reshape(-1, x.shape[-1]) if need_weight else None
        dbias = _ops.sum_leading(rows) if need_bias else None
        return dx, dweight, dbias


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``: x (*, in_features), weight (out, in), bias (out,) -> (*, out).

    >>> F.linear(minidl.ones(2, 3), minidl.ones(4, 3)).shape
    (2, 4)
    """
    _tensor_arguments("linear", input=x, weight=weight, bias=bias)
    if weight.ndim != 2:
        raise ValueError(
            f"linear: expected a 2-D weight (out_features, in_features), got shape {weight.shape}"
        )
    _bias_shape(bias, weight.shape[0], "linear")
    if x.ndim == 0 or x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match a weight of shape "
            f"{weight.shape} (expected the last dim to be {weight.shape[1]})"
        )
    _same_dtype("linear", x, weight=weight, bias=bias)
    return _LinearFn.apply(x, weight, bias)


class _EmbeddingFn(Function):
    @staticmethod
    def forward(ctx, weight, indices, padding_idx=None):
        ctx.indices, ctx.padding_idx, ctx.rows = indices, padding_idx, weight.shape[0]
        return weight[indices]

    @staticmethod
    def backward(ctx, grad):
        dweight = np.zeros((ctx.rows, grad.shape[-1]), dtype=grad.dtype)
        np.add.at(dweight, ctx.indices.reshape(-1), grad.reshape(-1, grad.shape[-1]))
        if ctx.padding_idx is not None:
            dweight[ctx.padding_idx] = 0  # the padding row learns nothing
        return dweight, None


def _embedding_indices(indices, rows, where):
    """Integer ``indices`` (a Tensor or array) as an int64 array, each in [0, rows)."""
    array = indices.numpy() if isinstance(indices, Tensor) else np.asarray(indices)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{where}: expected integer indices (Long or Int), got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= rows):
        bad = array[(array < 0) | (array >= rows)].reshape(-1)[0]
        raise IndexError(f"{where}: index {bad} is out of range for {rows} embeddings")
    return array.astype(np.int64, copy=False)


def _padding_index(padding_idx, rows, where):
    """``padding_idx`` (None or an int in [-rows, rows)) as None or a row in [0, rows)."""
    if padding_idx is None:
        return None
    if not _checks.is_int(padding_idx) or not -rows <= padding_idx < rows:
        raise ValueError(
            f"{where}: padding_idx must be within num_embeddings ({rows}), got {padding_idx!r}"
        )
    return int(padding_idx) % rows


def embedding(
    indices: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` (num_embeddings, D) picked by integer ``indices`` (*) -> (*, D).

    The row ``padding_idx`` gets no gradient (it is not zeroed here: the
    :class:`~minidl.nn.Embedding` layer zeroes it when made). ``max_norm``,
    ``scale_grad_by_freq`` and ``sparse`` are not supported.

    >>> F.embedding(minidl.tensor([[0, 2]]), minidl.eye(3))
    tensor([[[1., 0., 0.],
             [0., 0., 1.]]])
    """
    where = "embedding"
    _embedding_options(max_norm, scale_grad_by_freq, sparse, where)
    if weight.ndim != 2:
        raise ValueError(f"{where}: expected a (num_embeddings, D) weight, got {weight.shape}")
    padding_idx = _padding_index(padding_idx, weight.shape[0], where)
    indices = _embedding_indices(indices, weight.shape[0], where)
    return _EmbeddingFn.apply(weight, indices, padding_idx=padding_idx)


def _embedding_options(max_norm, scale_grad_by_freq, sparse, where):
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            f"{where}: max_norm, scale_grad_by_freq and sparse are not supported by minidl"
        )


# ---------------------------------------------------------------- convolution


def _same_padding(kernel, dilation):
    """Padding before and after that keeps the size at stride 1 (the extra one after)."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


# The largest K = C * kh * kw (one group) convolved sample by sample
# (_ops.conv2d_direct_*): up to here the product over the batch is bound by memory
# (conv1 of the example CNN, K = 9, ran at 51 GFLOP/s) and the direct kernels, which
# write the (N, O, OH, OW) output and the weight gradient straight from cached
# blocks, are faster; above it the matrix product's arithmetic dominates.
_DIRECT_MAX_TAPS = 27


class _Conv2dFn(Function):
    """Convolution as matrix products over the whole batch, or sample by sample when small.

    im2col lays the windows out as (C * kh * kw, N * L) (L = OH * OW), so the
    forward is a single (O, C*kh*kw) @ (C*kh*kw, N*L) product, and the backward
    two more of the same size (weight gradient and column gradient); the
    (O, N, L) <-> (N, O, L) layout changes around them are threaded kernels
    (``_ops.swap_leading_axes``, which adds the bias too). With one group and a
    small C * kh * kw the forward and the weight gradient run sample by sample
    instead (``_ops.conv2d_direct_forward`` / ``conv2d_direct_weight_grad``).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, *, stride, padding, dilation, extra, groups):
        # ``extra``: one more row/column of zeros after the input (even kernels, "same")
        if extra != (0, 0):
            x = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        batch, out_channels = x.shape[0], weight.shape[0]
        kh, kw = weight.shape[2], weight.shape[3]
        ctx.geometry = (x.shape, (kh, kw), stride, padding, dilation, extra, weight.shape)
        # (the direct kernels take one dtype; mixed ones go through numpy's promotion)
        ctx.direct = (
            groups == 1
            and weight.shape[1] * kh * kw <= _DIRECT_MAX_TAPS
            and x.dtype == weight.dtype
        )
        if ctx.direct:
            ctx.save_for_backward(x, weight.reshape(1, out_channels, -1))
            return _ops.conv2d_direct_forward(x, weight, bias, stride, padding, dilation)
        cols = _ops.im2col(x, (kh, kw), stride, padding, dilation)
        positions = cols.shape[2]
        # groups: the rows of cols and of the weight split into G blocks, one product each
        weight_matrix = weight.reshape(groups, out_channels // groups, -1)
        product = np.matmul(weight_matrix, cols.reshape(groups, -1, batch * positions))
        out = _ops.swap_leading_axes(product.reshape(out_channels, batch, positions), bias)
        ctx.save_for_backward(cols, weight_matrix)
        height = (x.shape[2] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        return out.reshape(batch, out_channels, height, positions // height)

    @staticmethod
    def backward(ctx, grad):
        # saved: (cols, weight_matrix), or (x, weight_matrix) when direct
        inputs, weight_matrix = ctx.saved_tensors
        x_shape, kernel, stride, padding, dilation, extra, weight_shape = ctx.geometry
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        # (N, O, L); sizes spelled out, as numpy cannot infer one beside an empty batch
        grad3 = grad.reshape(grad.shape[0], grad.shape[1], math.prod(grad.shape[2:]))
        groups = weight_matrix.shape[0]
        dx = dweight = dbias = None
        if need_x or (need_weight and not ctx.direct):
            # (G, O / G, N * L), the layout of the forward's product
            grad_matrix = _ops.swap_leading_axes(grad3).reshape(
                groups, grad3.shape[1] // groups, grad3.shape[0] * grad3.shape[2]
            )
        if need_x:
            dcols = np.matmul(weight_matrix.transpose(0, 2, 1), grad_matrix)
            dcols = dcols.reshape(groups * dcols.shape[1], grad3.shape[0], grad3.shape[2])
            dx = _ops.col2im(dcols, x_shape, kernel, stride, padding, dilation)
            if extra != (0, 0):
                dx = dx[:, :, : x_shape[2] - extra[0], : x_shape[3] - extra[1]]
        if need_weight and ctx.direct:
            dweight = _ops.conv2d_direct_weight_grad(
                grad, inputs, kernel, stride, padding, dilation
            )
        elif need_weight:
            group_cols = inputs.reshape(groups, -1, grad_matrix.shape[2])
            dweight = np.matmul(grad_matrix, group_cols.transpose(0, 2, 1)).reshape(weight_shape)
        if need_bias:
            dbias = _ops.sum_channels(grad3)
        return dx, dweight, dbias


def _conv_padding(padding, kernel_size, stride, dilation, where):
    """``padding`` (an int, a pair, "same" or "valid") as (before, extra after) pairs.

    "same" (stride 1 only) pads an even kernel one more after than before, as
    PyTorch does; that extra row and column is returned separately.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ValueError(
                f"{where}: padding must be 'same', 'valid', an int or a pair, got {padding!r}"
            )
        if stride != (1, 1):
            raise ValueError(f"{where}: padding='same' needs stride 1, got stride {stride}")
        before_h, after_h = _same_padding(kernel_size[0], dilation[0])
        before_w, after_w = _same_padding(kernel_size[1], dilation[1])
        return (before_h, before_w), (after_h - before_h, after_w - before_w)
    padding = _checks.pair(padding, where, "padding")
    if min(padding) < 0:
        raise ValueError(f"{where}: padding must be non-negative, got {padding}")
    return padding, (0, 0)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation, as in PyTorch) through im2col and a matrix product.

    x (N, C, H, W), weight (O, C / groups, kh, kw), bias (O,) -> (N, O, OH, OW).
    ``stride``, ``padding`` and ``dilation`` are ints or pairs; ``padding="same"``
    (stride 1 only) keeps H and W, padding an even kernel one more after than
    before, as PyTorch does; ``padding="valid"`` is 0. ``groups`` splits the
    channels into blocks convolved separately (``groups=C``: depthwise).

    >>> F.conv2d(minidl.ones(1, 2, 5, 5), minidl.ones(3, 2, 3, 3), padding=1).shape
    (1, 3, 5, 5)
    >>> F.conv2d(minidl.ones(1, 4, 5, 5), minidl.ones(4, 1, 3, 3), groups=4).shape
    (1, 4, 3, 3)
    """
    return _checked_conv2d(x, weight, bias, stride, padding, dilation, groups, "conv2d")


def _checked_conv2d(x, weight, bias, stride, padding, dilation, groups, where):
    """conv2d's checks of the tensors, groups, stride and dilation, naming ``where``."""
    _tensor_arguments(where, input=x, weight=weight, bias=bias)
    groups = _conv_groups(groups, x, weight, where)
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1] * groups:
        raise ValueError(
            f"{where}: expected input (N, "
            f"{weight.shape[1] * groups if weight.ndim == 4 else 'C'}, H, W) "
            f"for a weight of shape {weight.shape} and groups={groups}, got input of shape "
            f"{x.shape}"
        )
    stride = _checks.pair(stride, where, "stride")
    dilation = _checks.pair(dilation, where, "dilation")
    return _conv2d(x, weight, bias, stride, padding, dilation, groups, where)


def _tensor_arguments(where, **arguments):
    """Refuse an argument that is not a Tensor (None allowed for an optional one), as
    torch's functionals refuse lists with a TypeError."""
    for name, value in arguments.items():
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(
                f"{where}: expected {name} as a minidl Tensor (convert with minidl.tensor), "
                f"got {type(value).__name__}"
            )


def _same_dtype(where, x, **parameters):
    """Refuse parameters (Tensors, arrays or None) whose dtype is not the input's, with
    torch's RuntimeError: torch's linear, convolutions and normalizations compute in one
    dtype and refuse mixed ones rather than promote (a float64 batch into a float32 layer)."""
    dtype = x._data.dtype
    for name, value in parameters.items():
        if value is None:
            continue
        other = value._data.dtype if isinstance(value, Tensor) else value.dtype
        if other != dtype:
            raise RuntimeError(
                f"{where}: expected the input and {name} to have the same dtype, got input "
                f"{dtype} and {name} {other}; convert the input (x.float(), x.double(), "
                f"x.to(...)) or the module (.float(), .double()); PyTorch refuses mixed dtypes too"
            )


def _bias_shape(bias, channels, where):
    """Refuse a bias that is not one value per output channel: (channels,)."""
    if bias is not None and bias.shape != (channels,):
        raise ValueError(
            f"{where}: expected a bias of shape ({channels},), one per output feature, "
            f"got shape {bias.shape}"
        )


def _window_does_not_fit(where, kernel, dilation, size, padding):
    """The ValueError for a window larger than the padded input (convolution or pooling)."""
    return ValueError(
        f"{where}: the window {tuple(kernel)} (dilation {tuple(dilation)}) does not fit in the "
        f"input {tuple(size)} padded by {tuple(padding)}"
    )


def _conv2d(x, weight, bias, stride, padding, dilation, groups, where):
    """conv2d of checked arguments (``padding`` as the caller got it); Conv2D's forward too."""
    _same_dtype(where, x, weight=weight, bias=bias)
    padding, extra = _conv_padding(padding, weight.shape[2:], stride, dilation, where)
    _bias_shape(bias, weight.shape[0], where)
    for size, kernel, step, pad, more in zip(
        x.shape[2:], weight.shape[2:], dilation, padding, extra
    ):
        if (kernel - 1) * step + 1 > size + 2 * pad + more:
            raise _window_does_not_fit(where, weight.shape[2:], dilation, x.shape[2:], padding)
    return _Conv2dFn.apply(
        x,
        weight,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        extra=extra,
        groups=groups,
    )


def _conv_groups(groups, x, weight, where):
    """``groups`` as a positive int that divides the weight's output channels (torch's check)."""
    groups = _checks.positive_int(groups, where, "groups")
    if weight.ndim >= 1 and weight.shape[0] % groups:
        raise ValueError(
            f"{where}: Given groups={groups}, expected weight to be divisible by {groups} at "
            f"dimension 0, but got weight of size {list(weight.shape)} instead"
        )
    return groups


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """1-D convolution: x (N, C, L), weight (O, C / groups, k), bias (O,) -> (N, O, OL).

    ``stride``, ``padding`` and ``dilation`` are ints (or 1-tuples); ``padding``
    may be "same" (stride 1) or "valid". Runs as a 2-D convolution over (N, C, 1, L).

    >>> F.conv1d(minidl.ones(2, 3, 10), minidl.ones(4, 3, 3), padding=1).shape
    (2, 4, 10)
    """
    return _conv1d(x, weight, bias, stride, padding, dilation, groups, "conv1d")


def _conv1d(x, weight, bias, stride, padding, dilation, groups, where):
    """conv1d naming ``where`` (the function or the Conv1d layer) in its errors."""
    _tensor_arguments(where, input=x, weight=weight, bias=bias)
    if x.ndim != 3 or weight.ndim != 3:
        raise ValueError(
            f"{where}: expected a (N, C, L) input and a (O, C / groups, k) weight, got "
            f"shapes {x.shape} and {weight.shape}"
        )
    stride, dilation = (
        _single(v, where, name) for v, name in ((stride, "stride"), (dilation, "dilation"))
    )
    if not isinstance(padding, str):
        padding = (0, _single(padding, where, "padding"))
    out = _checked_conv2d(
        x.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, stride),
        padding,
        (1, dilation),
        groups,
        where,
    )
    return out.squeeze(2)


def _single(value, where, name):
    """An int or a 1-tuple of one, as a Python int."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(items) != 1 or not _checks.is_int(items[0]):
        raise ValueError(f"{where}: expected {name} as an int or a 1-tuple, got {value!r}")
    return int(items[0])


class _ConvTranspose2dFn(Function):
    """Transposed convolution: the adjoint of conv2d with respect to its input.

    The forward is conv2d's input gradient (a product with the weight, then
    col2im into the full (H - 1) * s + d * (k - 1) + 1 output, cropped by the
    padding and extended by ``output_padding``); the backward is a convolution
    (im2col of the gradient, then products).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, *, stride, padding, output_padding, dilation, groups):
        batch, in_channels, height, width = x.shape
        kh, kw = weight.shape[2], weight.shape[3]
        out_channels = weight.shape[1] * groups
        full = tuple(
            (size - 1) * s + d * (k - 1) + 1
            for size, s, d, k in zip((height, width), stride, dilation, (kh, kw))
        )
        out_size = tuple(f - 2 * p + o for f, p, o in zip(full, padding, output_padding))
        # sizes spelled out, not -1: numpy cannot infer a dim beside an empty batch
        x_groups = _ops.swap_leading_axes(x.reshape(batch, in_channels, height * width)).reshape(
            groups, in_channels // groups, batch * height * width
        )
        weight_groups = weight.reshape(groups, in_channels // groups, -1)
        cols = np.matmul(weight_groups.transpose(0, 2, 1), x_groups)
        cols = cols.reshape(out_channels * kh * kw, batch, height * width)
        whole = _ops.col2im(cols, (batch, out_channels, *full), (kh, kw), stride, 0, dilation)
        out = np.zeros((batch, out_channels, *out_size), dtype=whole.dtype)
        rows, columns = (min(o, f - p) for o, f, p in zip(out_size, full, padding))
        out[:, :, :rows, :columns] = whole[
            :, :, padding[0] : padding[0] + rows, padding[1] : padding[1] + columns
        ]
        if bias is not None:
            out += bias.reshape(-1, 1, 1)
        ctx.save_for_backward(x_groups, weight_groups)
        ctx.geometry = (x.shape, weight.shape, full, padding, (rows, columns), stride, dilation)
        return out

    @staticmethod
    def backward(ctx, grad):
        x_groups, weight_groups = ctx.saved_tensors
        x_shape, weight_shape, full, padding, (rows, columns), stride, dilation = ctx.geometry
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        groups = weight_groups.shape[0]
        whole = np.zeros((*grad.shape[:2], *full), dtype=grad.dtype)
        whole[:, :, padding[0] : padding[0] + rows, padding[1] : padding[1] + columns] = grad[
            :, :, :rows, :columns
        ]
        dcols = _ops.im2col(whole, weight_shape[2:], stride, 0, dilation)
        dcols = dcols.reshape(groups, dcols.shape[0] // groups, dcols.shape[1] * dcols.shape[2])
        dx = dweight = dbias = None
        if need_x:
            dx = np.matmul(weight_groups, dcols).reshape(
                x_shape[1], x_shape[0], x_shape[2] * x_shape[3]
            )
            dx = _ops.swap_leading_axes(dx).reshape(x_shape)
        if need_weight:
            dweight = np.matmul(x_groups, dcols.transpose(0, 2, 1)).reshape(weight_shape)
        if need_bias:
            dbias = _ops.sum_channels(
                np.ascontiguousarray(grad).reshape(*grad.shape[:2], math.prod(grad.shape[2:]))
            )
        return dx, dweight, dbias


def conv_transpose2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> Tensor:
    """2-D transposed convolution ("deconvolution"), torch's argument order and layout.

    x (N, C, H, W), weight (C, O / groups, kh, kw) (torch's layout), bias (O,) ->
    (N, O, OH, OW) with OH = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1.
    ``output_padding`` (smaller than the stride or the dilation) adds rows and
    columns at the end, to pick among the sizes a strided conv2d maps to one.

    >>> F.conv_transpose2d(minidl.ones(1, 2, 4, 4), minidl.ones(2, 3, 3, 3), stride=2).shape
    (1, 3, 9, 9)
    """
    where = "conv_transpose2d"
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(
            f"{where}: expected a (N, C, H, W) input and a (C, O / groups, kh, kw) weight, "
            f"got shapes {x.shape} and {weight.shape}"
        )
    groups = _conv_groups(groups, x, weight, where)
    if x.shape[1] != weight.shape[0]:
        raise ValueError(
            f"{where}: expected input (N, {weight.shape[0]}, H, W) for a weight of shape "
            f"{weight.shape}, got input of shape {x.shape}"
        )
    geometry = _transpose_geometry(
        weight.shape[2:], stride, padding, output_padding, dilation, where
    )
    return _conv_transpose2d(x, weight, bias, geometry, groups, where)


def _conv_transpose2d(x, weight, bias, geometry, groups, where):
    """conv_transpose2d of checked (stride, padding, output_padding, dilation) ``geometry``;
    ConvTranspose2d's forward too. Checks the output size and the bias."""
    _transpose_output_size(x.shape[2:], weight.shape[2:], *geometry, where)
    _same_dtype(where, x, weight=weight, bias=bias)
    stride, padding, output_padding, dilation = geometry
    if bias is not None and bias.shape != (weight.shape[1] * groups,):
        raise ValueError(
            f"{where}: expected a bias of shape ({weight.shape[1] * groups},), got {bias.shape}"
        )
    return _ConvTranspose2dFn.apply(
        x,
        weight,
        bias,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )


def _transpose_geometry(kernel_size, stride, padding, output_padding, dilation, where):
    """Checked (stride, padding, output_padding, dilation) pairs of a transposed convolution."""
    stride = _checks.pair(stride, where, "stride")
    padding = _checks.pair(padding, where, "padding")
    output_padding = _checks.pair(output_padding, where, "output_padding")
    dilation = _checks.pair(dilation, where, "dilation")
    if min(*stride, *dilation) < 1 or min(*padding, *output_padding) < 0:
        raise ValueError(
            f"{where}: stride and dilation must be positive and padding and output_padding "
            f"non-negative, got stride={stride}, padding={padding}, "
            f"output_padding={output_padding}, dilation={dilation}"
        )
    for o, s, d in zip(output_padding, stride, dilation):
        if o >= s and o >= d:
            raise ValueError(
                f"{where}: output padding must be smaller than either stride or dilation, but "
                f"got output_padding={output_padding}, stride={stride}, dilation={dilation}"
            )
    return stride, padding, output_padding, dilation


def _transpose_output_size(size, kernel_size, stride, padding, output_padding, dilation, where):
    out = tuple(
        (n - 1) * s - 2 * p + d * (k - 1) + o + 1
        for n, k, s, p, o, d in zip(size, kernel_size, stride, padding, output_padding, dilation)
    )
    if min(out) < 1:
        raise ValueError(
            f"{where}: the output size {out} of an input of size {tuple(size)} is too small "
            f"(padding {padding})"
        )
    return out


# ---------------------------------------------------------------- batch normalization


class _BatchNormFn(Function):
    @staticmethod
    def forward(
        ctx,
        x,
        weight,
        bias,
        running_mean=None,
        running_var=None,
        training=True,
        momentum=0.1,
        eps=1e-5,
        num_batches_tracked=None,
    ):
        if training:
            y, mean, invstd = _ops.batchnorm_forward_train(
                x, weight, bias, running_mean, running_var, momentum, eps, num_batches_tracked
            )
        else:
            y = _ops.batchnorm_forward_eval(x, weight, bias, running_mean, running_var, eps)
            mean = np.asarray(running_mean, dtype=np.float64).copy()
            invstd = 1.0 / np.sqrt(np.asarray(running_var, dtype=np.float64) + eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.training = training
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, invstd = ctx.saved_tensors
        dx, dweight, dbias = _ops.batchnorm_backward(grad, x, mean, invstd, weight, ctx.training)
        need_weight, need_bias = ctx.needs_input_grad[1:3]
        # the kernel sums dweight and dbias in float64; a float64 weight takes them as they are
        return (
            dx,
            dweight.astype(weight.dtype, copy=False) if need_weight else None,
            dbias.astype(weight.dtype, copy=False) if need_bias else None,
            None,
            None,
        )


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    num_batches_tracked: Tensor | int | None = None,
) -> Tensor:
    """Batch normalization with statistics per channel (axis 1) over every other axis.

    x (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W); ``running_mean``/``running_var`` (C,)
    arrays or Tensors (updated in place when ``training``), or None; ``weight`` and
    ``bias`` (C,) or None. ``training=True`` normalizes with the batch statistics;
    otherwise with the running ones. Argument order and semantics are
    ``torch.nn.functional.batch_norm``'s; ``momentum=None`` (a cumulative
    average) needs ``num_batches_tracked``, the count including this batch.

    >>> x = minidl.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> F.batch_norm(x, training=True, eps=0.0)
    tensor([[-1., -1.],
            [ 1.,  1.]])
    """
    _tensor_arguments("batch_norm", input=x)
    if x.ndim not in (2, 3, 4, 5):
        raise ValueError(f"batch_norm: expected a 2-d to 5-d input, got shape {x.shape}")
    if training:
        _checks.values_per_channel(x.shape, "batch_norm")
    elif running_mean is None or running_var is None:
        raise ValueError(
            "batch_norm: evaluation (training=False) needs running_mean and running_var"
        )
    return _batch_norm(
        x,
        running_mean,
        running_var,
        weight,
        bias,
        training,
        momentum,
        eps,
        num_batches_tracked,
        where="batch_norm",
    )


def _batch_norm(
    x,
    running_mean,
    running_var,
    weight,
    bias,
    training,
    momentum,
    eps,
    num_batches_tracked,
    synchronized_as=None,
    where="batch_norm",
):
    """:func:`batch_norm` for checked arguments (the BatchNorm layers check their own),
    naming ``where`` (the function or the layer) if the dtypes are mixed.

    ``synchronized_as`` (a layer's name, for its errors): training statistics over the
    batches of every rank of ``minidl.distributed`` (SyncBatchNorm), ``training`` implied.
    """
    _same_dtype(
        synchronized_as or where,
        x,
        weight=weight,
        bias=bias,
        running_mean=running_mean,
        running_var=running_var,
    )
    function, options = _BatchNormFn, {"training": training}
    if synchronized_as is not None:
        function, options = _SyncBatchNormFn, {"where": synchronized_as}
    return function.apply(
        x,
        weight,
        bias,
        *_running_arrays(running_mean, running_var),
        momentum=momentum,
        eps=eps,
        num_batches_tracked=num_batches_tracked,
        **options,
    )


def _running_arrays(running_mean, running_var):
    """The running statistics as the arrays the kernels update in place (or None)."""
    return (
        running_mean._data if isinstance(running_mean, Tensor) else running_mean,
        running_var._data if isinstance(running_var, Tensor) else running_var,
    )


def _merge_statistics(every, channels):
    """Chan et al.'s parallel merge of per-rank statistics, in rank order.

    ``every`` is (ranks, 1 + 2 C): each rank's value count, per-channel mean and
    per-channel sum of squared deviations (m2). Returns ``(count, mean, m2)`` of the
    union. Only differences of means are squared (never raw sums of squares), so
    data far from zero keeps its precision; every rank merges in the same order and
    gets the same bits.
    """
    count, mean, m2 = 0.0, np.zeros(channels), np.zeros(channels)
    for row in every:
        part_count = row[0]
        if part_count == 0:
            continue
        part_mean, part_m2 = row[1 : 1 + channels], row[1 + channels :]
        if count == 0:
            count, mean, m2 = part_count, part_mean.copy(), part_m2.copy()
            continue
        total = count + part_count
        delta = part_mean - mean
        mean = mean + delta * (part_count / total)
        m2 = m2 + part_m2 + delta * delta * (count * part_count / total)
        count = total
    return int(count), mean, m2


class _SyncBatchNormFn(Function):
    """Training batch norm over the union of every rank's batch (SyncBatchNorm's core).

    Forward: each rank's per-channel (count, mean, m2) from the compiled kernel,
    gathered from every rank in one all-gather and merged (Chan et al.); the input
    is normalized with the global mean and variance, and the running statistics
    take the global mean and unbiased variance. Backward: each rank's two
    per-channel sums (dy and dy * (x - mean)), summed over the ranks in one
    all-reduce, give dx; weight and bias get this rank's own sums (DDP averages
    those).
    """

    @staticmethod
    def forward(
        ctx,
        x,
        weight,
        bias,
        running_mean=None,
        running_var=None,
        momentum=0.1,
        eps=1e-5,
        num_batches_tracked=None,
        where="SyncBatchNorm",
    ):
        local_count, local_mean, local_m2 = _ops.batchnorm_stats(x)
        channels = local_mean.shape[0]
        row = np.concatenate([[float(local_count)], local_mean, local_m2])
        every = _distributed._allgather_rows(row, f"{where}: forward statistics")
        count, mean, m2 = _merge_statistics(every, channels)
        if count <= 1:
            raise ValueError(
                f"{where}: Expected more than 1 value per channel when training, got "
                f"{count} over all ranks (this rank's input shape {tuple(x.shape)})"
            )
        var = m2 / count
        invstd = 1.0 / np.sqrt(var + eps)
        y = _ops.batchnorm_normalize(x, mean, invstd, weight, bias)
        if running_mean is not None:
            _ops.batchnorm_update_running(
                running_mean, running_var, mean, var, momentum, count, num_batches_tracked
            )
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.count, ctx.where = count, where
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, invstd = ctx.saved_tensors
        sum_dy, sum_dy_xmu = _ops.batchnorm_backward_reduce(grad, x, mean)
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        dx = None
        if need_x:
            # every rank has the same graph, so all of them take part in this all-reduce
            totals = _distributed._allreduce_sum(
                np.concatenate([sum_dy, sum_dy_xmu]), f"{ctx.where}: backward sums"
            )
            channels = mean.shape[0]
            dx = _ops.batchnorm_backward_elemt(
                grad, x, mean, invstd, weight, totals[:channels], totals[channels:], ctx.count
            )
        dtype = weight.dtype if weight is not None else None
        return (
            dx,
            (sum_dy_xmu * invstd).astype(dtype, copy=False) if need_weight else None,
            sum_dy.astype(dtype, copy=False) if need_bias else None,
            None,
            None,
        )


class _GroupNormFn(Function):
    """Group and instance norm: statistics per (sample, group), one fused backward."""

    @staticmethod
    def forward(
        ctx,
        x,
        weight,
        bias,
        num_groups=1,
        running_mean=None,
        running_var=None,
        momentum=0.1,
        eps=1e-5,
        instance=False,
    ):
        if instance:
            y, mean, invstd = _ops.instancenorm_forward(
                x, weight, bias, running_mean, running_var, momentum, eps
            )
        else:
            y, mean, invstd = _ops.groupnorm_forward(x, num_groups, weight, bias, eps)
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias, mean, invstd = ctx.saved_tensors
        # instance norm's (N, C) statistics are group norm's with G = C
        dx, dweight, dbias = _ops.groupnorm_backward(grad, x, mean, invstd, weight)
        need_weight, need_bias = ctx.needs_input_grad[1:3]
        return (
            dx,
            dweight.astype(weight.dtype) if need_weight else None,
            dbias.astype(bias.dtype) if need_bias else None,
        )


def group_norm(
    x: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Group normalization (Wu & He, 2018): statistics per sample over groups of channels.

    x (N, C, *); the C channels are split into ``num_groups`` groups of C / G
    consecutive channels, each normalized over its channels and every trailing axis
    of the sample (biased variance); ``weight`` and ``bias`` are per channel, (C,),
    or None. As ``torch.nn.functional.group_norm``.

    >>> x = minidl.tensor([[[1.0], [3.0], [5.0], [9.0]]])
    >>> F.group_norm(x, 2, eps=0.0).flatten()
    tensor([-1.,  1., -1.,  1.])
    """
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected a (N, C, *) input, got shape {x.shape}")
    _group_count(num_groups, x.shape[1], "group_norm")
    _affine_shape(weight, bias, (x.shape[1],), "group_norm")
    _same_dtype("group_norm", x, weight=weight, bias=bias)
    return _GroupNormFn.apply(x, weight, bias, num_groups=int(num_groups), eps=eps)


def _group_count(num_groups, channels, where):
    """Refuse a group count that is not a positive int dividing ``channels``."""
    _checks.positive_int(num_groups, where, "num_groups")
    if channels % num_groups:
        raise ValueError(
            f"{where}: num_channels ({channels}) must be divisible by num_groups ({num_groups})"
        )


def _affine_shape(weight, bias, shape, where):
    """Refuse a weight or bias whose shape is not ``shape``."""
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and tuple(value.shape) != tuple(shape):
            raise ValueError(
                f"{where}: expected {name} of shape {tuple(shape)}, got {tuple(value.shape)}"
            )


def instance_norm(
    x: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Instance normalization: statistics per sample and channel over the trailing axes.

    x (N, C, *) with at least one trailing axis; ``weight``/``bias`` (C,) or None.
    With ``use_input_stats`` each (sample, channel) is normalized by its own
    statistics, and ``running_mean``/``running_var`` ((C,), or None) move toward
    their mean over the samples (the unbiased variance), updated in place;
    otherwise the running statistics normalize, as in batch norm's evaluation. As
    ``torch.nn.functional.instance_norm``.

    >>> x = minidl.tensor([[[1.0, 3.0], [0.0, 4.0]]])
    >>> F.instance_norm(x, eps=0.0)
    tensor([[[-1.,  1.],
             [-1.,  1.]]])
    """
    _tensor_arguments("instance_norm", input=x)
    if x.ndim < 3:
        raise ValueError(
            f"instance_norm: expected a (N, C, *) input with a trailing dim, got shape {x.shape}"
        )
    _affine_shape(weight, bias, (x.shape[1],), "instance_norm")
    if use_input_stats:
        _checks.spatial_elements(x.shape, "instance_norm")
    elif running_mean is None or running_var is None:
        raise ValueError("instance_norm: use_input_stats=False needs running_mean and running_var")
    return _instance_norm(
        x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps, "instance_norm"
    )


def _instance_norm(
    x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps, where
):
    _same_dtype(
        where, x, weight=weight, bias=bias, running_mean=running_mean, running_var=running_var
    )
    """:func:`instance_norm` for checked arguments (the InstanceNorm layers check their own)."""
    running = [r.numpy() if isinstance(r, Tensor) else r for r in (running_mean, running_var)]
    if not use_input_stats:
        # normalized by the running statistics: batch norm's evaluation, per channel
        return _BatchNormFn.apply(x, weight, bias, *running, training=False, eps=eps)
    return _GroupNormFn.apply(
        x,
        weight,
        bias,
        running_mean=running[0],
        running_var=running[1],
        momentum=momentum,
        eps=eps,
        instance=True,
    )


class _LayerNormFn(Function):
    """Layer norm: the trailing ``normalized_ndim`` dims flattened to rows of D values."""

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_ndim=1, eps=1e-5):
        split = x.ndim - normalized_ndim
        rows = x.reshape(int(np.prod(x.shape[:split])), int(np.prod(x.shape[split:])))
        flat = [None if v is None else v.reshape(-1) for v in (weight, bias)]
        y, mean, invstd = _ops.layernorm_forward(rows, *flat, eps)
        ctx.save_for_backward(rows, weight, bias, mean, invstd)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        rows, weight, bias, mean, invstd = ctx.saved_tensors
        flat_weight = None if weight is None else weight.reshape(-1)
        dx, dweight, dbias = _ops.layernorm_backward(
            grad.reshape(rows.shape), rows, mean, invstd, flat_weight
        )
        need_weight, need_bias = ctx.needs_input_grad[1:3]
        return (
            dx.reshape(grad.shape),
            dweight.reshape(weight.shape).astype(weight.dtype) if need_weight else None,
            dbias.reshape(bias.shape).astype(bias.dtype) if need_bias else None,
        )


def _normalized_shape(normalized_shape, where):
    """``normalized_shape`` (an int or a sequence of them) as a tuple of positive ints."""
    items = (normalized_shape,) if _checks.is_int(normalized_shape) else tuple(normalized_shape)
    if not items or not all(_checks.is_int(size) and size >= 1 for size in items):
        raise ValueError(
            f"{where}: normalized_shape must be a positive int or a non-empty sequence of "
            f"them, got {normalized_shape!r}"
        )
    return tuple(int(size) for size in items)


def layer_norm(
    x: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Layer normalization (Ba et al., 2016) over the trailing ``normalized_shape`` dims.

    x (*, *normalized_shape): each sample is normalized by the mean and biased
    variance of its last ``len(normalized_shape)`` dims; ``weight``/``bias`` have
    shape ``normalized_shape`` (an element-wise affine) or are None. As
    ``torch.nn.functional.layer_norm``.

    >>> F.layer_norm(minidl.tensor([[1.0, 3.0], [2.0, 6.0]]), (2,), eps=0.0)
    tensor([[-1.,  1.],
            [-1.,  1.]])
    """
    shape = _normalized_shape(normalized_shape, "layer_norm")
    if x.shape[x.ndim - len(shape) :] != shape or x.ndim < len(shape):
        raise ValueError(
            f"layer_norm: expected input of shape (*, {', '.join(map(str, shape))}) for "
            f"normalized_shape={shape}, got {x.shape}"
        )
    _affine_shape(weight, bias, shape, "layer_norm")
    _same_dtype("layer_norm", x, weight=weight, bias=bias)
    return _LayerNormFn.apply(x, weight, bias, normalized_ndim=len(shape), eps=eps)


# ---------------------------------------------------------------- pooling


def _pool_size(size, kernel, stride, padding, dilation, ceil_mode):
    """Output length of a pooling window over ``size`` values, as torch computes it."""
    span = dilation * (kernel - 1) + 1
    if ceil_mode:
        out = -(-(size + 2 * padding - span) // stride) + 1
        if (out - 1) * stride >= size + padding:  # the last window must start inside
            out -= 1
        return out
    return (size + 2 * padding - span) // stride + 1


def _max_pool_geometry(shape, kernel_size, stride, padding, dilation, ceil_mode, where):
    """Checked pairs (kernel, stride, padding, dilation) and the output size (OH, OW)."""
    kernel = _checks.pair(kernel_size, where, "kernel_size")
    stride = kernel if stride is None else _checks.pair(stride, where, "stride")
    padding = _checks.pair(padding, where, "padding")
    dilation = _checks.pair(dilation, where, "dilation")
    if min(*kernel, *stride, *dilation) < 1 or min(padding) < 0:
        raise ValueError(
            f"{where}: kernel_size, stride and dilation must be positive and padding "
            f"non-negative, got kernel_size={kernel}, stride={stride}, padding={padding}, "
            f"dilation={dilation}"
        )
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{where}: padding {padding} must be at most half the kernel size {kernel}"
        )
    out = tuple(
        _pool_size(n, k, s, p, d, ceil_mode)
        for n, k, s, p, d in zip(shape[2:], kernel, stride, padding, dilation)
    )
    if min(out) < 1:
        raise _window_does_not_fit(where, kernel, dilation, shape[2:], padding)
    return kernel, stride, padding, dilation, out


def _compiled_max_pool(shape, kernel, stride, padding, dilation, out_size):
    """Whether the compiled kernel computes this pooling (no dilation, floor-mode size)."""
    plain = tuple(
        _pool_size(n, k, s, p, d, False)
        for n, k, s, p, d in zip(shape[2:], kernel, stride, padding, dilation)
    )
    return dilation == (1, 1) and plain == out_size


def _disjoint_windows(geometry):
    """Whether the compiled pooling's windows tile without overlap (stride >= kernel, no
    padding): its backward then writes each cell of dx once instead of zero-fill + scatter."""
    kernel, stride, padding, _, _ = geometry
    return padding == (0, 0) and stride[0] >= kernel[0] and stride[1] >= kernel[1]


def _max_pool2d_arrays(x, kernel, stride, padding, dilation, out_size):
    """(out, indices) of max pooling over a (N, C, H, W) array, indices ``h * W + w`` per plane.

    Without dilation or ceil mode this is the compiled kernel. Otherwise the
    input is padded with -inf (and, in ceil mode, by the rows and columns the
    last windows reach past), unfolded by im2col and reduced; as torch's kernel
    does, a window takes its first maximum, or its last NaN.
    """
    batch, channels, height, width = x.shape
    if _compiled_max_pool(x.shape, kernel, stride, padding, dilation, out_size):
        return _ops.max_pool2d_forward(x, kernel, stride, padding)
    reach = [
        (o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(out_size, stride, dilation, kernel)
    ]
    # exactly the extent the windows reach: -inf after the input, or the input cut short
    after = [r - n - p for r, n, p in zip(reach, (height, width), padding)]
    kept = x[:, :, : height + min(after[0], 0), : width + min(after[1], 0)]
    padded = np.pad(
        kept,
        ((0, 0), (0, 0), (padding[0], max(after[0], 0)), (padding[1], max(after[1], 0))),
        constant_values=-np.inf,
    )
    cols = _ops.im2col(padded, kernel, stride, 0, dilation)
    window = kernel[0] * kernel[1]
    cols = cols.reshape(channels, window, batch, -1)  # (C, kh * kw, N, OH * OW)
    out = cols.max(axis=1)
    # positions in the unpadded plane of each window offset at each output position
    out_y = np.arange(out_size[0])[:, None] * stride[0] - padding[0]
    out_x = np.arange(out_size[1])[None, :] * stride[1] - padding[1]
    offset_y = (np.arange(kernel[0]) * dilation[0]).repeat(kernel[1])
    offset_x = np.tile(np.arange(kernel[1]) * dilation[1], kernel[0])
    rows = out_y[None] + offset_y[:, None, None]  # (kh * kw, OH, 1)
    columns = out_x[None] + offset_x[:, None, None]  # (kh * kw, 1, OW)
    inside = ((rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)).reshape(
        window, -1
    )
    flat = (rows * width + columns).reshape(window, -1)
    nan = np.isnan(cols)
    best = (cols == out[:, None]) & inside[None, :, None, :]
    first_best = best.argmax(axis=1)
    last_nan = window - 1 - nan[:, ::-1].argmax(axis=1)
    chosen = np.where(nan.any(axis=1), last_nan, first_best)  # (C, N, L)
    positions = np.broadcast_to(np.arange(flat.shape[1]), chosen.shape)
    indices = flat[chosen, positions]
    # the value of the chosen cell, not max()'s: a window of -0.0 and 0.0 keeps its first
    out = np.take_along_axis(cols, chosen[:, None], axis=1)[:, 0]
    shape = (batch, channels, *out_size)
    out = np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(shape)
    indices = np.ascontiguousarray(indices.transpose(1, 0, 2)).reshape(shape)
    return out, indices


def _max_pool2d_backward_arrays(grad, indices, x_shape, geometry):
    """dx of max pooling: written once per cell when the windows are disjoint, else scattered."""
    kernel, stride, padding, dilation, out_size = geometry
    if _disjoint_windows(geometry) and _compiled_max_pool(
        x_shape, kernel, stride, padding, dilation, out_size
    ):
        return _ops.max_pool2d_backward(grad, indices, x_shape, kernel, stride)
    empty = indices < 0
    if empty.any():
        # a dilated window can hold padding only: its output is -inf (torch's too), it
        # chose no input cell (index -1) and passes no gradient
        grad = np.where(empty, grad.dtype.type(0), grad)
        indices = np.where(empty, indices.dtype.type(0), indices)
    return _ops.max_pool2d_backward(grad, indices, x_shape)


class _MaxPool2dFn(Function):
    @staticmethod
    def forward(ctx, x, geometry, found=None):
        kernel, stride, padding, dilation, out_size = geometry
        out, indices = _max_pool2d_arrays(x, kernel, stride, padding, dilation, out_size)
        ctx.save_for_backward(indices)
        ctx.x_shape, ctx.geometry = x.shape, geometry
        if found is not None:
            found.append(indices)
        return out

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return _max_pool2d_backward_arrays(grad, indices, ctx.x_shape, ctx.geometry), None


class _ReLUMaxPool2dFn(Function):
    """``max_pool2d(relu(x))`` in one node, for the ReLU -> MaxPool2d pair of a Sequential.

    Exactly the unfused values and gradients: ReLU is monotone, so the pooled ReLU is
    the ReLU of the pooled input (the kernel's ``relu`` flag also gets the sign of a
    zero right), and the gradient reaches a window's maximum only where the pooled
    value passes ReLU's backward rule (``out <= 0`` blocks it). Only the pooled
    output and the indices are saved: backward gates the small ``grad`` and writes dx
    once, with no full-size ReLU pass.
    """

    @staticmethod
    def forward(ctx, x, geometry):
        kernel, stride, padding, dilation, out_size = geometry
        if _compiled_max_pool(x.shape, kernel, stride, padding, dilation, out_size):
            out, indices = _ops.max_pool2d_forward(x, kernel, stride, padding, relu=True)
        else:
            out, indices = _max_pool2d_arrays(
                _ops.relu_forward(x), kernel, stride, padding, dilation, out_size
            )
        ctx.save_for_backward(out, indices)
        ctx.x_shape, ctx.geometry = x.shape, geometry
        return out

    @staticmethod
    def backward(ctx, grad):
        out, indices = ctx.saved_tensors
        passed = _ops.relu_backward(grad.astype(out.dtype, copy=False), out)
        return _max_pool2d_backward_arrays(passed, indices, ctx.x_shape, ctx.geometry), None


def _relu_max_pool2d(x, geometry):
    """``max_pool2d(relu(x))`` of a float32/float64 (N, C, H, W) tensor, fused (see above)."""
    return _ReLUMaxPool2dFn.apply(x, geometry)


def _max_pool2d(x, geometry, return_indices):
    """Max pooling with checked ``geometry``; with ``return_indices``, (out, int64 indices)."""
    found = [] if return_indices else None
    out = _MaxPool2dFn.apply(x, geometry, found=found)
    return (out, Tensor._of(found[0])) if return_indices else out


def max_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Max over (kh, kw) windows of a (N, C, H, W) input; stride defaults to the kernel size.

    Padding counts as -inf; ``dilation`` spaces the window's cells; ``ceil_mode``
    rounds the output size up (a last, partial window, which must start inside
    the input or its left padding), as torch. With ``return_indices`` it returns
    ``(out, indices)``, the int64 position ``h * W + w`` of each maximum in its
    input plane (torch's layout).

    >>> F.max_pool2d(minidl.arange(16.0).reshape(1, 1, 4, 4), 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    >>> F.max_pool2d(minidl.arange(9.0).reshape(1, 1, 3, 3), 2, ceil_mode=True).shape
    (1, 1, 2, 2)
    """
    if x.ndim != 4:
        raise ValueError(f"max_pool2d: expected a (N, C, H, W) input, got shape {x.shape}")
    geometry = _max_pool_geometry(
        x.shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d"
    )
    return _max_pool2d(x, geometry, return_indices)


class _AvgPool2dFn(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride=None, padding=0, count_include_pad=True):
        ctx.arguments = (x.shape, kernel_size, stride, padding, count_include_pad)
        return _ops.avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad)

    @staticmethod
    def backward(ctx, grad):
        return (_ops.avg_pool2d_backward(grad, *ctx.arguments),) + (None,) * 4


def _avg_pool_options(ceil_mode, divisor_override, where):
    """Refuse what minidl's average pooling does not do (in torch's argument order)."""
    if ceil_mode or divisor_override is not None:
        raise NotImplementedError(
            f"{where}: ceil_mode=True and divisor_override are not supported by minidl"
        )


def avg_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] | str = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over (kh, kw) windows of a (N, C, H, W) input; zero padding.

    Arguments in torch's order; ``ceil_mode=True`` and ``divisor_override`` are
    refused (NotImplementedError).

    >>> F.avg_pool2d(minidl.ones(1, 1, 4, 4), 2).shape
    (1, 1, 2, 2)
    """
    if x.ndim != 4:
        raise ValueError(f"avg_pool2d: expected a (N, C, H, W) input, got shape {x.shape}")
    _avg_pool_options(ceil_mode, divisor_override, "avg_pool2d")
    return _AvgPool2dFn.apply(x, kernel_size, stride, padding, count_include_pad)


def _adaptive_windows(size, out):
    """(out, size) averaging matrix of adaptive pooling: row i is 1 / count on
    floor(i * size / out) <= j < ceil((i + 1) * size / out), torch's windows."""
    matrix = np.zeros((out, size))
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class _AdaptiveAvgPool2dFn(Function):
    """Adaptive average pooling is separable: ``rows @ x @ columns.T`` per plane."""

    @staticmethod
    def forward(ctx, x, output_size):
        rows = _adaptive_windows(x.shape[-2], output_size[0]).astype(x.dtype)
        columns = _adaptive_windows(x.shape[-1], output_size[1]).astype(x.dtype)
        ctx.matrices = (rows, columns)
        return np.matmul(np.matmul(rows, x), columns.T)

    @staticmethod
    def backward(ctx, grad):
        rows, columns = ctx.matrices
        return np.matmul(np.matmul(rows.T, grad), columns), None


def _adaptive_output_size(output_size, shape, where):
    """``output_size`` (an int or a pair, None keeping the input's size) as a pair."""
    items = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(items) != 2 or not all(v is None or (_checks.is_int(v) and v >= 1) for v in items):
        raise ValueError(
            f"{where}: output_size must be a positive int or a pair of them (or None), got "
            f"{output_size!r}"
        )
    return tuple(shape[i] if v is None else int(v) for i, v in zip((-2, -1), items))


def adaptive_avg_pool2d(x: Tensor, output_size: int | tuple[int, int]) -> Tensor:
    """Average pooling of a (N, C, H, W) or (C, H, W) input to ``output_size`` (OH, OW).

    Window i along H covers floor(i H / OH) to ceil((i + 1) H / OH), as torch's
    (equal windows when OH divides H); ``output_size`` is an int, a pair, or a
    pair with None to keep that size. ``output_size=1`` is global average pooling.

    >>> F.adaptive_avg_pool2d(minidl.arange(16.0).reshape(1, 1, 4, 4), 1)
    tensor([[[[7.5]]]])
    """
    if x.ndim not in (3, 4) or min(x.shape[-2:], default=0) < 1:
        raise ValueError(
            f"adaptive_avg_pool2d: expected a (N, C, H, W) or (C, H, W) input with H, W > 0, "
            f"got shape {x.shape}"
        )
    size = _adaptive_output_size(output_size, x.shape, "adaptive_avg_pool2d")
    return _AdaptiveAvgPool2dFn.apply(x, size)


class _NearestFn(Function):
    """Nearest-neighbour resampling: a gather along each spatial axis, a scatter-add back."""

    @staticmethod
    def forward(ctx, x, sources):
        ctx.sources, ctx.x_shape = sources, x.shape
        out = x
        for axis, source in enumerate(sources, start=2):
            out = np.take(out, source, axis=axis)
        return out

    @staticmethod
    def backward(ctx, grad):
        for axis in reversed(range(2, len(ctx.x_shape))):
            source = ctx.sources[axis - 2]
            moved = np.moveaxis(grad, axis, 0)
            summed = np.zeros((ctx.x_shape[axis], *moved.shape[1:]), dtype=grad.dtype)
            np.add.at(summed, source, moved)
            grad = np.moveaxis(summed, 0, axis)
        return np.ascontiguousarray(grad), None


def _nearest_source(size, out, scale):
    """The input index each output index copies, computed as torch's CPU kernel does
    (in float32: ``min(floor(i * scale), size - 1)``, scale 1 / scale_factor or size / out)."""
    if out == size:
        return np.arange(out)
    if out == 2 * size:
        return np.arange(out) >> 1
    step = (
        np.float32(1.0 / scale)
        if scale is not None and scale > 0
        else np.float32(size) / np.float32(out)
    )
    index = np.floor(np.arange(out, dtype=np.float32) * step).astype(np.int64)
    return np.minimum(index, size - 1)


def interpolate(
    x: Tensor,
    size: int | tuple[int, int] | None = None,
    scale_factor: float | tuple[float, ...] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize the spatial dims of a (N, C, L), (N, C, H, W) or (N, C, D, H, W) input.

    Give ``size`` (an int or one per spatial dim) or ``scale_factor`` (the output
    size is floor(size * scale_factor)); only ``mode="nearest"`` is implemented,
    with torch's source index ``floor(i / scale_factor)`` (or ``floor(i * in /
    out)`` with ``size`` or ``recompute_scale_factor=True``).

    >>> F.interpolate(minidl.tensor([[[1.0, 2.0]]]), scale_factor=2)
    tensor([[[1., 1., 2., 2.]]])
    """
    _tensor_arguments("interpolate", input=x)
    where = "interpolate"
    if mode != "nearest":
        raise NotImplementedError(
            f"{where}: mode={mode!r} is not implemented in minidl; only mode='nearest' is"
        )
    if align_corners is not None:
        raise ValueError(
            f"{where}: align_corners option can only be set with the interpolating modes: "
            "linear | bilinear | bicubic | trilinear"
        )
    if antialias:
        raise ValueError(f"{where}: anti-alias option is only supported for bilinear and bicubic")
    if x.ndim not in (3, 4, 5):
        raise ValueError(
            f"{where}: expected a (N, C, L), (N, C, H, W) or (N, C, D, H, W) input, got "
            f"shape {x.shape}"
        )
    spatial = x.shape[2:]
    sizes, scales = _resize_arguments(size, scale_factor, len(spatial), where)
    if sizes is None:
        sizes = tuple(int(np.floor(n * s)) for n, s in zip(spatial, scales))
        if recompute_scale_factor:
            scales = (None,) * len(spatial)
    else:
        scales = (None,) * len(spatial)
    if min(sizes) < 1:
        raise ValueError(f"{where}: the output size {sizes} must be positive")
    sources = tuple(_nearest_source(n, o, s) for n, o, s in zip(spatial, sizes, scales))
    return _NearestFn.apply(x, sources)


def _resize_arguments(size, scale_factor, dims, where):
    """(sizes, None) or (None, scale factors), each a tuple of ``dims``."""
    if (size is None) == (scale_factor is None):
        raise ValueError(
            f"{where}: "
            + (
                "only one of size or scale_factor should be defined"
                if size is not None
                else "either size or scale_factor should be defined"
            )
        )
    if size is not None:
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * dims
        if len(sizes) != dims or not all(_checks.is_int(v) and v >= 1 for v in sizes):
            raise ValueError(
                f"{where}: size must be a positive int or {dims} of them, got {size!r}"
            )
        return tuple(int(v) for v in sizes), None
    scales = (
        tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * dims
    )
    if len(scales) != dims or not all(
        isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and v > 0 for v in scales
    ):
        raise ValueError(
            f"{where}: scale_factor must be a positive number or {dims} of them, got "
            f"{scale_factor!r}"
        )
    return None, tuple(float(v) for v in scales)


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels: each (n, c) plane of a (N, C, H, W) input is zeroed with
    probability ``p`` and the rest scaled by 1 / (1 - p) (training only).

    A 3-d input is taken as (N, C, L), with torch's warning. Masks come from
    minidl's generator; ``inplace=True`` is not supported.

    >>> F.dropout2d(minidl.ones(1, 2, 2, 2), p=0.5, training=False).shape
    (1, 2, 2, 2)
    """
    _tensor_arguments("dropout2d", input=x)
    return _dropout2d(x, _dropout_probability(p, "dropout2d"), training, inplace, "dropout2d")


def _dropout2d(x, p, training, inplace, where):
    if inplace:
        raise NotImplementedError(f"{where}: inplace=True is not supported by minidl")
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{where}: expected a (N, C, H, W) input (or (N, C, L)), got shape {x.shape}"
        )
    if x.ndim == 3:
        import warnings

        warnings.warn(
            f"{where}: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim.",
            stacklevel=3,
        )
    return _dropout(x, p, training, mask_shape=x.shape[:2] + (1,) * (x.ndim - 2))


# ---------------------------------------------------------------- activations and dropout


class _DropoutFn(Function):
    """Zero with probability ``p``, scale the rest by 1 / (1 - p); one draw per element of
    ``mask_shape`` (the input's by default; (N, C, 1, ...) drops whole channels)."""

    @staticmethod
    def forward(ctx, x, p, mask_shape=None):
        keep = _random.generator().random(x.shape if mask_shape is None else mask_shape) >= p
        scale = x.dtype.type(0.0 if p == 1 else 1.0 / (1.0 - p))
        mask = (keep * scale).astype(x.dtype, copy=False)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def _dropout_probability(p, where):
    if isinstance(p, bool) or not isinstance(p, (int, float, np.number)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}: p must be a number in [0, 1], got {p!r}")
    return float(p)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) (training only).

    Masks are drawn from minidl's generator (``minidl.manual_seed``).

    >>> F.dropout(minidl.ones(4), p=0.5, training=False)
    tensor([1., 1., 1., 1.])
    """
    _tensor_arguments("dropout", input=x)
    return _dropout(x, _dropout_probability(p, "dropout"), training)


def _dropout(x, p, training, mask_shape=None):
    if not training or p == 0.0:
        return x
    return _DropoutFn.apply(x, p, mask_shape=mask_shape)


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0), element-wise, as torch's: NaN stays NaN, -0.0 stays -0.0; the gradient
    is 0 where the output is <= 0. With ``inplace`` the result is written into ``x``.

    >>> F.relu(minidl.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    _tensor_arguments("relu", input=x)
    if inplace:
        if not isinstance(x, Tensor):
            raise TypeError(f"relu: expected a minidl Tensor, got {type(x).__name__}")
        return x.relu_()
    return x.relu()


class _LeakyReLUFn(Function):
    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        ctx.save_for_backward(x > 0)
        ctx.negative_slope = negative_slope
        return np.where(x > 0, x, x * x.dtype.type(negative_slope))

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return np.where(positive, grad, grad * grad.dtype.type(ctx.negative_slope))


def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else ``negative_slope * x``; integers compute in the default float dtype.

    >>> F.leaky_relu(minidl.tensor([-1.0, 2.0]), 0.1)
    tensor([-0.1,  2. ])
    """
    negative_slope = _real_number(negative_slope, "leaky_relu", "negative_slope")
    return _activate(_LeakyReLUFn, x, "leaky_relu", inplace, negative_slope=negative_slope)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), element-wise.

    >>> F.sigmoid(minidl.zeros(1))
    tensor([0.5])
    """
    _tensor_arguments("sigmoid", input=x)
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent, element-wise.

    >>> F.tanh(minidl.zeros(1))
    tensor([0.])
    """
    _tensor_arguments("tanh", input=x)
    return x.tanh()


def _softmax_dim(x, dim, name):
    """``dim``, or for None torch's implicit choice (0 for 0-d, 1-d and 3-d inputs, else 1)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a minidl Tensor, got {type(x).__name__}")
    if dim is not None:
        return dim
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to "
        "include dim=X as an argument.",
        UserWarning,
        stacklevel=3,
    )
    return 0 if x.ndim in (0, 1, 3) else 1


def softmax(x: Tensor, dim: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, computed stably.

    ``dim=None`` takes torch's implicit (deprecated) choice with its warning: dim 0
    for 0-d, 1-d and 3-d inputs, dim 1 otherwise.

    >>> F.softmax(minidl.zeros(1, 4), dim=1)
    tensor([[0.25, 0.25, 0.25, 0.25]])
    """
    dim = _softmax_dim(x, dim, "softmax")
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int | None = None) -> Tensor:
    """x - log(sum(exp(x))) along ``dim``, computed stably; ``dim=None`` as :func:`softmax`.

    >>> F.log_softmax(minidl.zeros(1, 2), dim=1)
    tensor([[-0.6931472, -0.6931472]])
    """
    dim = _softmax_dim(x, dim, "log_softmax")
    return x.log_softmax(dim)


def _float_activation(x, where):
    """``x`` for an activation defined on floats: integers and bools in the default float dtype."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected a minidl Tensor, got {type(x).__name__}")
    return x._as_float()


def _activate(function, x, where, inplace=False, **options):
    """``function`` applied to ``x``; with ``inplace`` written into ``x`` (returned), as torch's."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected a minidl Tensor, got {type(x).__name__}")
    if inplace:
        if x.dtype.kind != "f":
            raise RuntimeError(f"{where}: in place needs a floating-point tensor, got {x.dtype}")
        return x._in_place(function, **options)
    return function.apply(x._as_float(), **options)


class _ActivationFn(Function):
    """An element-wise activation: ``compute(x, **options)`` and its exact ``derivative``.

    The input is saved for backward; both formulas work on numpy arrays.
    """

    @classmethod
    def forward(cls, ctx, x, **options):
        ctx.save_for_backward(x)
        ctx.options = options
        with np.errstate(over="ignore"):
            return np.asarray(cls.compute(x, **options)).astype(x.dtype, copy=False)

    @classmethod
    def backward(cls, ctx, grad):
        (x,) = ctx.saved_tensors
        with np.errstate(over="ignore", invalid="ignore"):
            return (grad * cls.derivative(x, **ctx.options)).astype(grad.dtype, copy=False)


_SQRT_HALF = math.sqrt(0.5)
_SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715
_GELU_APPROXIMATIONS = ("none", "tanh")


class _GELUFn(_ActivationFn):
    # exact: x * Phi(x); 'tanh': 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), as torch
    @staticmethod
    def compute(x, approximate="none"):
        if approximate == "tanh":
            inner = _SQRT_TWO_OVER_PI * (x + _GELU_KAPPA * x * x * x)
            return 0.5 * x * (1 + np.tanh(inner))
        return x * (0.5 * (1 + _functions.Erf.compute(x * _SQRT_HALF)))

    @staticmethod
    def derivative(x, approximate="none"):
        if approximate == "tanh":
            inner = _SQRT_TWO_OVER_PI * (x + _GELU_KAPPA * x * x * x)
            tanh_inner = np.tanh(inner)
            inner_derivative = _SQRT_TWO_OVER_PI * (1 + 3 * _GELU_KAPPA * x * x)
            tanh_derivative = 1 - tanh_inner * tanh_inner
            return 0.5 * (1 + tanh_inner) + 0.5 * x * tanh_derivative * inner_derivative
        cdf = 0.5 * (1 + _functions.Erf.compute(x * _SQRT_HALF))
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return cdf + x * pdf


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit ``x * Phi(x)`` (Phi the standard normal CDF), element-wise.

    ``approximate='tanh'`` uses ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, as
    ``torch.nn.functional.gelu``. Any shape; integers compute in the default float dtype.

    >>> F.gelu(minidl.tensor([-1.0, 0.0, 1.0]))
    tensor([-0.15865526,  0.        ,  0.8413447 ])
    """
    if approximate not in _GELU_APPROXIMATIONS:
        raise RuntimeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _GELUFn.apply(_float_activation(x, "gelu"), approximate=approximate)


class _SiLUFn(_ActivationFn):
    @staticmethod
    def compute(x):
        return x * _functions._sigmoid(x)

    @staticmethod
    def derivative(x):
        sigmoid = _functions._sigmoid(x)
        return sigmoid * (1 + x * (1 - sigmoid))


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    """Sigmoid linear unit (swish) ``x * sigmoid(x)``, element-wise; any shape.

    >>> F.silu(minidl.tensor([0.0, 1.0]))
    tensor([0.       , 0.7310586])
    """
    return _activate(_SiLUFn, x, "silu", inplace)


class _ELUFn(_ActivationFn):
    @staticmethod
    def compute(x, alpha=1.0):
        return np.where(x > 0, x, alpha * np.expm1(x))

    @staticmethod
    def derivative(x, alpha=1.0):
        return np.where(x > 0, 1.0, alpha * np.exp(x))


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """Exponential linear unit: x where x > 0, else ``alpha * (exp(x) - 1)``; any shape.

    >>> F.elu(minidl.tensor([-1.0, 2.0]))
    tensor([-0.63212055,  2.        ])
    """
    return _activate(_ELUFn, x, "elu", inplace, alpha=_real_number(alpha, "elu", "alpha"))


class _SoftplusFn(_ActivationFn):
    # torch's formulas: linear where beta * x > threshold, log1p(exp(beta x)) / beta elsewhere
    @staticmethod
    def compute(x, beta=1.0, threshold=20.0):
        scaled = x * beta
        return np.where(scaled > threshold, x, np.log1p(np.exp(scaled)) / beta)

    @staticmethod
    def derivative(x, beta=1.0, threshold=20.0):
        scaled = x * beta
        z = np.exp(scaled)
        return np.where(scaled > threshold, 1.0, z / (z + 1))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, and x itself where ``beta * x > threshold``; any shape.

    >>> F.softplus(minidl.tensor([0.0, 30.0]))
    tensor([ 0.6931472, 30.       ])
    """
    beta = _real_number(beta, "softplus", "beta")
    threshold = _real_number(threshold, "softplus", "threshold")
    return _SoftplusFn.apply(_float_activation(x, "softplus"), beta=beta, threshold=threshold)


class _HardtanhFn(_ActivationFn):
    # the gradient passes strictly inside (min_val, max_val), as torch's hardtanh_backward
    @staticmethod
    def compute(x, min_val=-1.0, max_val=1.0):
        return np.minimum(np.maximum(x, min_val), max_val)

    @staticmethod
    def derivative(x, min_val=-1.0, max_val=1.0):
        return (x > min_val) & (x < max_val)


def _hardtanh(x, min_val, max_val, inplace, where):
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected a minidl Tensor, got {type(x).__name__}")
    if inplace:
        return x._in_place(_HardtanhFn, min_val=min_val, max_val=max_val)
    # piecewise linear like relu: integer tensors keep their dtype, as in torch
    return _HardtanhFn.apply(x, min_val=min_val, max_val=max_val)


def hardtanh(
    x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """``x`` clamped to [min_val, max_val]; the gradient is 1 strictly inside, else 0.

    Any shape; integer tensors keep their dtype (as torch's).

    >>> F.hardtanh(minidl.tensor([-2.0, 0.5, 3.0]))
    tensor([-1. ,  0.5,  1. ])
    """
    min_val = _real_number(min_val, "hardtanh", "min_val")
    max_val = _real_number(max_val, "hardtanh", "max_val")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return _hardtanh(x, min_val, max_val, inplace, "hardtanh")


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)``: :func:`hardtanh` on [0, 6]; any shape.

    >>> F.relu6(minidl.tensor([-1.0, 3.0, 8.0]))
    tensor([0., 3., 6.])
    """
    return _hardtanh(x, 0.0, 6.0, inplace, "relu6")


class _MishFn(_ActivationFn):
    @staticmethod
    def compute(x):
        return x * np.tanh(np.logaddexp(0, x))

    @staticmethod
    def derivative(x):
        tanh_softplus = np.tanh(np.logaddexp(0, x))
        sigmoid = _functions._sigmoid(x)
        return tanh_softplus + x * sigmoid * (1 - tanh_softplus * tanh_softplus)


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``, element-wise; any shape.

    >>> F.mish(minidl.tensor([0.0, 1.0]))
    tensor([0.       , 0.8650984])
    """
    return _activate(_MishFn, x, "mish", inplace)


class _PReLUFn(Function):
    @staticmethod
    def forward(ctx, x, weight):
        # the weight runs along dim 1 (the channels) of inputs with 2 or more dims
        slope = weight.reshape((1, -1) + (1,) * (x.ndim - 2)) if x.ndim >= 2 else weight
        positive = x > 0
        ctx.save_for_backward(x, slope)
        ctx.weight_shape = weight.shape
        return np.where(positive, x, slope * x).astype(np.result_type(x, weight), copy=False)

    @staticmethod
    def backward(ctx, grad):
        x, slope = ctx.saved_tensors
        need_x, need_weight = ctx.needs_input_grad
        positive = x > 0
        dx = np.where(positive, grad, slope * grad) if need_x else None
        dweight = None
        if need_weight:
            per_element = np.where(positive, 0, x * grad)
            axes = tuple(i for i in range(x.ndim) if not (i == 1 and slope.size > 1))
            dweight = per_element.sum(axis=axes).reshape(ctx.weight_shape)
        return dx, dweight


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else ``weight * x``: the slope learned, one per channel or one for all.

    x of any shape, (N, C, *) when ``weight`` has C > 1 entries (the slopes run along
    dim 1); ``weight`` (C,) or (1,) (or 0-d).

    >>> F.prelu(minidl.tensor([[-2.0, 3.0]]), minidl.tensor([0.25]))
    tensor([[-0.5,  3. ]])
    """
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("prelu: expected minidl Tensors for the input and the weight")
    if weight.ndim > 1:
        raise ValueError(
            f"prelu: expected weight to be a scalar or 1D tensor, got shape {weight.shape}"
        )
    if weight.numel() != 1:
        if x.ndim == 0:
            raise ValueError("prelu: a 0-d input takes a single slope")
        channels = x.shape[1] if x.ndim > 1 else 1
        if channels != weight.numel():
            raise ValueError(
                f"prelu: {weight.numel()} slopes for an input of shape {x.shape} with "
                f"{channels} channels (dim 1); they must match"
            )
    _same_dtype("prelu", x, weight=weight)  # torch refuses an integer input too
    return _PReLUFn.apply(x, weight)


def _real_number(value, where, name):
    """``value`` as a Python float, refusing anything but a real number (bool included)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{where}: {name} must be a real number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------- losses


class _CrossEntropyFn(Function):
    """Softmax cross-entropy of (M, C) logits against (M,) class indices, as torch's.

    Row m's loss is ``(1 - e) w_y (lse - x_y) + e / C * sum_k w_k (lse - x_k)`` (w the
    class weights, 1 without; e the label smoothing; 0 for ignored rows); 'mean'
    divides the sum by the sum of the target weights ``w_y``. The smoothing term is
    only formed when e > 0, so a -inf logit (a masked class) leaves the loss finite.
    Without weights or ignored rows, the fused compiled kernels do the work.
    """

    @staticmethod
    def forward(ctx, logits, labels, ignored, weight, label_smoothing, reduction):
        rows, classes = logits.shape
        fused = weight is None and ignored is None
        if ignored is None:
            ignored = np.zeros(rows, dtype=bool)
        ctx.fused = fused
        ctx.label_smoothing, ctx.reduction = label_smoothing, reduction
        if fused:
            mean, lse = _ops.softmax_xent_forward(logits, labels, label_smoothing)
            # the kernel forms e * sum(x) even for e == 0: a -inf logit gives NaN there,
            # so a non-finite mean is recomputed below from lse
            if reduction != "none" and np.isfinite(mean):
                ctx.save_for_backward(logits, labels, lse)
                value = mean if reduction == "mean" else mean * rows
                return np.asarray(value, dtype=logits.dtype)
        wide = logits.astype(np.float64)
        if not fused:
            lse = _logsumexp_rows(wide)
        target_weights = np.ones(rows) if weight is None else weight[labels].astype(np.float64)
        target_weights[ignored] = 0.0
        picked = wide[np.arange(rows), labels]
        with np.errstate(invalid="ignore"):
            losses = (1 - label_smoothing) * target_weights * (lse - picked)
            if label_smoothing > 0:
                class_weights = np.ones(classes) if weight is None else weight
                smooth = ((lse[:, None] - wide) * class_weights).sum(axis=1)
                smooth[ignored] = 0.0
                losses += label_smoothing / classes * smooth
        ctx.save_for_backward(logits, labels, lse, target_weights, weight)
        ctx.ignored = ignored
        return _reduce_rows(losses, target_weights, reduction, logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        smoothing, reduction = ctx.label_smoothing, ctx.reduction
        if ctx.fused:
            logits, labels, lse = ctx.saved_tensors[:3]
            rows = logits.shape[0]
            scale = np.asarray(grad, dtype=np.float64)
            if reduction == "mean":
                scale = scale / rows
            dlogits = _ops.softmax_xent_backward(logits, labels, lse, scale, smoothing)
            return (dlogits,) + (None,) * 5
        logits, labels, lse, target_weights, weight = ctx.saved_tensors
        rows, classes = logits.shape
        scale = _row_scale(grad, target_weights, reduction)
        with np.errstate(invalid="ignore", over="ignore"):
            softmax = np.exp(logits.astype(np.float64) - lse[:, None])
            # (1 - e) w_y (softmax - onehot_y) + e / C (sum(w) softmax - w), row by row
            dlogits = ((1 - smoothing) * target_weights)[:, None] * softmax
            dlogits[np.arange(rows), labels] -= (1 - smoothing) * target_weights
            if smoothing > 0:
                class_weights = np.ones(classes) if weight is None else weight
                smooth = class_weights.sum() * softmax - class_weights
                smooth[ctx.ignored] = 0.0
                dlogits += (smoothing / classes) * smooth
            dlogits *= scale[:, None] if np.ndim(scale) else scale
        dlogits[ctx.ignored] = 0.0  # even when everything is ignored (a NaN mean), as torch
        return (dlogits.astype(logits.dtype),) + (None,) * 5


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of class scores against class indices or class probabilities.

    As ``torch.nn.functional.cross_entropy``: ``input`` (N, C), (C,) or (N, C, d1, ...)
    logits; ``target`` integer class indices (N,), () or (N, d1, ...), or float class
    probabilities of the input's shape. ``weight`` (C,) weighs each class (with
    indices, 'mean' divides by the summed weights of the targets); targets equal to
    ``ignore_index`` count for nothing; with ``label_smoothing`` e the target becomes
    (1 - e) * target + e / C. ``reduction`` is 'mean', 'sum' or 'none' (per sample,
    (N, d1, ...)). A -inf logit (a masked class) leaves the loss finite. The common
    case (indices, no weight, nothing ignored) runs one fused compiled kernel each way.

    >>> F.cross_entropy(minidl.zeros(2, 4), minidl.tensor([0, 3]))
    tensor(1.3862944)
    """
    where = "cross_entropy"
    reduction = _checks.reduction(_legacy_reduction(size_average, reduce, reduction), where)
    label_smoothing = _checks.label_smoothing(label_smoothing, where)
    _float_loss_input(input, where)
    rows, classes = _class_rows(input, where)
    target_dtype = target.dtype if isinstance(target, Tensor) else np.asarray(target).dtype
    out_shape = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if target_dtype.kind == "f":
        target = _as_tensor(target)
        if target.shape != input.shape:
            raise RuntimeError(
                f"{where}: class probabilities must have the input's shape {input.shape}, "
                f"got {target.shape}"
            )
        weight = _class_weight(weight, classes, where)
        target_rows, _ = _class_rows(target, where)
        loss = _SoftTargetCrossEntropyFn.apply(
            rows, target_rows, weight, label_smoothing, reduction
        )
    else:
        labels, ignored = _class_index_target(input, target, ignore_index, where)
        weight = _class_weight(weight, classes, where)
        loss = _CrossEntropyFn.apply(rows, labels, ignored, weight, label_smoothing, reduction)
    return loss.reshape(out_shape) if reduction == "none" else loss


def one_hot(labels: Tensor, num_classes: int = -1) -> Tensor:
    """(*,) integer class labels as (*, num_classes) int64 one-hot rows, as ``F.one_hot``.

    ``num_classes=-1`` takes one more than the largest label.

    >>> F.one_hot(minidl.tensor([0, 2]), 3)
    tensor([[1, 0, 0],
            [0, 0, 1]])
    """
    array = np.asarray(labels)
    if array.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class labels, got dtype {array.dtype}")
    if num_classes == -1:
        if array.size == 0:
            raise ValueError("one_hot: cannot infer the number of classes of an empty tensor")
        num_classes = int(array.max()) + 1
    num_classes = _checks.positive_int(num_classes, "one_hot", "num_classes")
    _checks.class_labels(array.reshape(-1), array.size, num_classes, "one_hot")
    return Tensor._of(np.eye(num_classes, dtype=np.int64)[array])


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices under log-probabilities, as torch's.

    ``input`` (N, C), (C,) or (N, C, d1, ...) log-probabilities; ``target`` integer
    class indices (N,), () or (N, d1, ...). Each term is ``-weight[y] * input[y]``;
    targets equal to ``ignore_index`` count for nothing; 'mean' divides the sum by the
    summed weights of the targets, 'none' keeps the (N, d1, ...) terms.

    >>> F.nll_loss(minidl.tensor([[-1.0, -2.0]]), minidl.tensor([1]))
    tensor(2.)
    """
    where = "nll_loss"
    reduction = _checks.reduction(_legacy_reduction(size_average, reduce, reduction), where)
    _float_loss_input(input, where)
    rows, classes = _class_rows(input, where)
    labels, ignored = _class_index_target(input, target, ignore_index, where)
    weight = _class_weight(weight, classes, where)
    loss = _NLLLossFn.apply(rows, labels, ignored, weight, reduction)
    return (
        loss.reshape(input.shape[:1] + input.shape[2:] if input.ndim > 1 else ())
        if reduction == "none"
        else loss
    )


def _reduce(values, reduction):
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Squared error ``(input - target)**2``, reduced; input and target of the same shape.

    With ``weight`` (the input's shape) each term is weighted and 'mean' divides by
    the sum of the weights, as ``torch.nn.functional.mse_loss``.

    >>> F.mse_loss(minidl.tensor([1.0, 3.0]), minidl.tensor([0.0, 0.0]))
    tensor(5.)
    """
    where = "mse_loss"
    reduction = _checks.reduction(_legacy_reduction(size_average, reduce, reduction), where)
    difference = input - _same_shape_target(input, target, where)
    return _weighted_reduce(difference * difference, weight, reduction, where)


def _legacy_reduction(size_average, reduce, reduction):
    """torch's deprecated ``size_average``/``reduce`` as a reduction, with torch's warning."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(
        "size_average and reduce args will be deprecated, please use "
        f"reduction='{reduction}' instead.",
        UserWarning,
        stacklevel=3,
    )
    return reduction


def _as_tensor(value):
    return value if isinstance(value, Tensor) else Tensor._of(np.asarray(value))


def _float_loss_input(x, where, name="input"):
    """Refuse a loss argument that is not a floating-point Tensor (torch refuses integers)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected a minidl Tensor as {name}, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise RuntimeError(f"{where}: expected a floating-point {name}, got dtype {x.dtype}")
    return x


def _constant_weight(weight, where, name="weight"):
    """A class or element ``weight`` as a float array; torch has no gradient for it."""
    if weight is None:
        return None
    if isinstance(weight, Tensor):
        if weight.requires_grad and is_grad_enabled():
            raise RuntimeError(
                f"{where}: {name} requires grad, but {where} is not differentiable with "
                f"respect to {name} (as in torch); pass {name}.detach()"
            )
        weight = weight.numpy()
    weight = np.asarray(weight)
    if weight.dtype.kind != "f":
        raise RuntimeError(f"{where}: expected a floating-point {name}, got dtype {weight.dtype}")
    return weight


def _class_rows(x, where):
    """(N, C, d1, ...) or (C,) scores as (M, C) rows (a differentiable view) and C."""
    if x.ndim == 0:
        raise ValueError(f"{where}: Expected 1 or more dimensions (got 0)")
    if x.ndim == 1:
        return x.reshape(1, -1), x.shape[0]
    if x.ndim == 2:
        return x, x.shape[1]
    if x.ndim > 2:
        x = x.permute(0, *range(2, x.ndim), 1)
    return x.reshape(-1, x.shape[-1]), x.shape[-1]


def _class_index_target(x, target, ignore_index, where):
    """Checked class indices for scores ``x``: ((M,) int64 with ignored ones at 0, ignored mask,
    or None when no label is ``ignore_index``).

    ``x`` is (C,) with a 0-d target, (N, C) with (N,), or (N, C, d1, ...) with (N, d1, ...);
    indices other than ``ignore_index`` must be in [0, C) (torch's IndexError).
    """
    array = np.asarray(target.numpy() if isinstance(target, Tensor) else target)
    if array.dtype.kind not in "iu":
        raise RuntimeError(
            f"{where}: expected integer class indices as the target, got dtype {array.dtype}"
        )
    expected = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    if array.shape != expected:
        if x.ndim > 1 and array.shape[:1] != x.shape[:1]:
            raise ValueError(
                f"{where}: Expected input batch_size ({x.shape[0]}) to match target "
                f"batch_size ({array.shape[0] if array.ndim else 0})."
            )
        raise RuntimeError(
            f"{where}: expected a target of shape {expected} for an input of shape "
            f"{x.shape}, got {array.shape}"
        )
    classes = x.shape[1] if x.ndim > 1 else x.shape[0]
    labels = array.reshape(-1).astype(np.int64)
    if labels.size:
        # the common case in two reductions (not four): every label a class, none ignored
        low, high = labels.min(), labels.max()
        if 0 <= low and high < classes and not low <= ignore_index <= high:
            return labels, None
    ignored = labels == ignore_index
    some_ignored = ignored.any()
    kept = labels[~ignored] if some_ignored else labels
    if kept.size and (kept.min() < 0 or kept.max() >= classes):
        bad = kept[(kept < 0) | (kept >= classes)][0]
        raise IndexError(f"{where}: Target {bad} is out of bounds (there are {classes} classes).")
    if some_ignored:
        labels[ignored] = 0
    return labels, ignored


def _class_weight(weight, classes, where):
    weight = _constant_weight(weight, where)
    if weight is not None and weight.shape != (classes,):
        raise RuntimeError(
            f"{where}: weight tensor should be defined either for all {classes} classes or "
            f"no classes but got weight tensor of shape: {list(weight.shape)}"
        )
    return weight


def _row_scale(grad, target_weights, reduction):
    """d(reduced loss) / d(row loss): 1 / (sum of target weights) for 'mean', as torch."""
    grad = np.asarray(grad, dtype=np.float64)
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad / target_weights.sum()
    return np.broadcast_to(grad, target_weights.shape) if reduction == "sum" else grad


def _reduce_rows(rows, target_weights, reduction, dtype):
    with np.errstate(invalid="ignore", divide="ignore"):
        if reduction == "mean":
            return np.asarray(rows.sum() / target_weights.sum(), dtype=dtype)
        if reduction == "sum":
            return np.asarray(rows.sum(), dtype=dtype)
        return rows.astype(dtype)


def _logsumexp_rows(wide):
    """log(sum(exp)) of each row of a float64 (M, C) array; -inf entries are fine."""
    if wide.shape[0] == 0:
        return np.zeros(0)
    top = wide.max(axis=1)
    safe_top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.log(np.exp(wide - safe_top[:, None]).sum(axis=1)) + safe_top


class _SoftTargetCrossEntropyFn(Function):
    """Cross-entropy of (M, C) logits against (M, C) class probabilities, as torch's.

    Row m's loss is ``-sum_k w_k t_k log_softmax(x)_k`` with ``t`` smoothed to
    ``(1 - e) t + e / C``; 'mean' divides the sum by M (the weights do not enter it).
    """

    @staticmethod
    def forward(ctx, logits, target, weight, label_smoothing, reduction):
        rows, classes = logits.shape
        wide = logits.astype(np.float64)
        lse = _logsumexp_rows(wide)
        smoothed = target.astype(np.float64)
        if label_smoothing > 0:
            smoothed = smoothed * (1 - label_smoothing) + label_smoothing / classes
        weighted = smoothed if weight is None else smoothed * weight
        with np.errstate(invalid="ignore"):
            log_probs = wide - lse[:, None]
            losses = -(log_probs * weighted).sum(axis=1)
        ctx.save_for_backward(logits, lse, weighted, weight)
        ctx.label_smoothing, ctx.reduction = label_smoothing, reduction
        return _reduce_rows(losses, np.ones(rows), reduction, logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        logits, lse, weighted, weight = ctx.saved_tensors
        need_logits, need_target = ctx.needs_input_grad[:2]
        scale = _row_scale(grad, np.ones(logits.shape[0]), ctx.reduction)
        scale = scale[:, None] if np.ndim(scale) else scale
        dlogits = dtarget = None
        with np.errstate(invalid="ignore", over="ignore"):
            log_probs = logits.astype(np.float64) - lse[:, None]
            if need_logits:
                softmax = np.exp(log_probs)
                dlogits = (softmax * weighted.sum(axis=1, keepdims=True) - weighted) * scale
                dlogits = dlogits.astype(logits.dtype)
            if need_target:
                class_weights = 1.0 if weight is None else weight
                dtarget = -(1 - ctx.label_smoothing) * class_weights * log_probs * scale
        return dlogits, dtarget, None, None, None


class _NLLLossFn(Function):
    """``-w_y x_y`` per row of (M, C) log-probabilities (0 where ignored), reduced as torch's."""

    @staticmethod
    def forward(ctx, log_probs, labels, ignored, weight, reduction):
        rows = log_probs.shape[0]
        target_weights = np.ones(rows) if weight is None else weight[labels].astype(np.float64)
        if ignored is not None:
            target_weights[ignored] = 0.0
        picked = log_probs[np.arange(rows), labels].astype(np.float64)
        ctx.save_for_backward(labels, target_weights)
        ctx.shape, ctx.reduction = log_probs.shape, reduction
        return _reduce_rows(-target_weights * picked, target_weights, reduction, log_probs.dtype)

    @staticmethod
    def backward(ctx, grad):
        labels, target_weights = ctx.saved_tensors
        scale = _row_scale(grad, target_weights, ctx.reduction)
        dlog_probs = np.zeros(ctx.shape, dtype=grad.dtype)
        with np.errstate(invalid="ignore"):
            picked = np.where(target_weights == 0, 0.0, -target_weights * scale)
            dlog_probs[np.arange(ctx.shape[0]), labels] = picked
        return (dlog_probs,) + (None,) * 4


def _same_shape_target(input, target, where):
    """``target`` as a Tensor of the input's shape (minidl refuses torch's broadcasting)."""
    _float_loss_input(input, where)
    target = _as_tensor(target)
    if target.shape != input.shape:
        raise ValueError(
            f"{where}: Using a target size ({target.shape}) that is different to the input "
            f"size ({input.shape}) is not supported: torch would broadcast them (with a "
            "warning); give them the same shape"
        )
    return target


def _weighted_reduce(values, weight, reduction, where, mean_by_weight=True):
    """torch's optional element ``weight`` of mse/l1/huber: same shape as the input."""
    if weight is None:
        return _reduce(values, reduction)
    weight = _as_tensor(weight)
    if weight.shape != values.shape:
        raise ValueError(f"{where}: Weights and input must have the same size.")
    weighted = values * weight
    if reduction == "mean" and mean_by_weight:
        return weighted.sum() / weight.sum()
    return _reduce(weighted, reduction)


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Absolute error ``|input - target|``, reduced; input and target of the same shape.

    With ``weight`` (the input's shape) each term is weighted and 'mean' divides by
    the sum of the weights, as ``torch.nn.functional.l1_loss``.

    >>> F.l1_loss(minidl.tensor([1.0, -3.0]), minidl.tensor([0.0, 0.0]))
    tensor(2.)
    """
    where = "l1_loss"
    reduction = _checks.reduction(_legacy_reduction(size_average, reduce, reduction), where)
    difference = input - _same_shape_target(input, target, where)
    return _weighted_reduce(difference.abs(), weight, reduction, where)


class _SmoothL1Fn(Function):
    # 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; derivative clamp(d / beta, -1, 1)
    @staticmethod
    def forward(ctx, difference, beta):
        ctx.save_for_backward(difference)
        ctx.beta = beta
        size = np.abs(difference)
        out = np.where(size < beta, 0.5 * difference * difference / beta, size - 0.5 * beta)
        return out.astype(difference.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (difference,) = ctx.saved_tensors
        return grad * np.clip(difference / ctx.beta, -1, 1), None


class _HuberFn(Function):
    # 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta); derivative clamp(d, -delta, delta)
    @staticmethod
    def forward(ctx, difference, delta):
        ctx.save_for_backward(difference)
        ctx.delta = delta
        size = np.abs(difference)
        out = np.where(size < delta, 0.5 * difference * difference, delta * (size - 0.5 * delta))
        return out.astype(difference.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (difference,) = ctx.saved_tensors
        return grad * np.clip(difference, -ctx.delta, ctx.delta), None


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """Smooth L1 of d = input - target: ``d**2 / (2 beta)`` if ``|d| < beta``, else |d| - beta/2.

    ``beta=0`` is :func:`l1_loss`, as torch's. Input and target of the same shape.

    >>> F.smooth_l1_loss(minidl.tensor([0.5, 3.0]), minidl.tensor([0.0, 0.0]))
    tensor(1.3125)
    """
    where = "smooth_l1_loss"
    reduction = _checks.reduction(_legacy_reduction(size_average, reduce, reduction), where)
    beta = _real_number(beta, where, "beta")
    if beta < 0:
        raise RuntimeError(f"{where}: smooth_l1_loss does not support negative values for beta.")
    difference = input - _same_shape_target(input, target, where)
    if beta == 0:
        return _reduce(difference.abs(), reduction)
    return _reduce(_SmoothL1Fn.apply(difference, beta), reduction)


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """Huber of d = input - target: ``0.5 d**2`` if ``|d| < delta``, else ``delta (|d| - delta/2)``.

    With ``weight`` (the input's shape) each term is weighted; 'mean' stays the mean
    over elements, as ``torch.nn.functional.huber_loss``.

    >>> F.huber_loss(minidl.tensor([0.5, 3.0]), minidl.tensor([0.0, 0.0]))
    tensor(1.3125)
    """
    where = "huber_loss"
    reduction = _checks.reduction(reduction, where)
    delta = _real_number(delta, where, "delta")
    if delta <= 0:
        raise RuntimeError(f"{where}: huber_loss does not support non-positive values for delta.")
    difference = input - _same_shape_target(input, target, where)
    penalty = _HuberFn.apply(difference, delta)
    return _weighted_reduce(penalty, weight, reduction, where, mean_by_weight=False)


class _BinaryCrossEntropyFn(Function):
    # -w (t log x + (1 - t) log(1 - x)), each log clamped at -100; torch's gradients
    @staticmethod
    def forward(ctx, x, target, weight):
        ctx.save_for_backward(x, target, weight)
        with np.errstate(divide="ignore"):
            log_x = np.maximum(np.log(x), -100)
            log_rest = np.maximum(np.log1p(-x), -100)
        out = (target - 1) * log_rest - target * log_x
        if weight is not None:
            out = out * weight
        return out.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        x, target, weight = ctx.saved_tensors
        need_x, need_target = ctx.needs_input_grad[:2]
        if weight is not None:
            grad = grad * weight
        dx = dtarget = None
        if need_x:
            dx = grad * (x - target) / np.maximum((1 - x) * x, 1e-12)
        if need_target:
            with np.errstate(divide="ignore"):
                dtarget = -grad * (np.log(x) - np.log1p(-x))
        return dx, dtarget, None


def _element_weight(weight, shape, where, name="weight"):
    weight = _constant_weight(weight, where, name)
    if weight is not None:
        try:
            broadcast = np.broadcast_shapes(weight.shape, shape)
        except ValueError:
            broadcast = None
        if broadcast != tuple(shape):
            raise RuntimeError(
                f"{where}: {name} of shape {weight.shape} cannot be broadcast to the input's "
                f"shape {shape}"
            )
    return weight


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy of probabilities ``input`` in [0, 1] against ``target`` in [0, 1].

    Each term is ``-weight * (t log(x) + (1 - t) log(1 - x))`` with each log clamped at
    -100, as torch's; input and target of the same shape, ``weight`` broadcastable to it.

    >>> F.binary_cross_entropy(minidl.tensor([0.5, 0.5]), minidl.tensor([1.0, 0.0]))
    tensor(0.6931472)
    """
    where = "binary_cross_entropy"
    reduction = _checks.reduction(_legacy_reduction(size_average, reduce, reduction), where)
    _float_loss_input(input, where)
    target = _as_tensor(target)
    if target.shape != input.shape:
        raise ValueError(
            f"{where}: Using a target size ({target.shape}) that is different to the input "
            f"size ({input.shape}) is deprecated. Please ensure they have the same size."
        )
    _float_loss_input(target, where, "target")
    for name, values in (("input", input), ("target", target)):
        array = values.numpy()
        if not np.all((array >= 0) & (array <= 1)):
            raise RuntimeError(f"{where}: all elements of {name} should be between 0 and 1")
    weight = _element_weight(weight, input.shape, where)
    return _reduce(_BinaryCrossEntropyFn.apply(input, target, weight), reduction)


class _LogSigmoidFn(Function):
    # min(x, 0) - log1p(exp(-|x|)), stable; the derivative is torch's log_sigmoid_backward
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        negative = x < 0
        z = np.exp(-np.abs(x))
        return grad * (negative - np.where(negative, 1, -1) * (z / (1 + z)))


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Binary cross-entropy of ``sigmoid(input)`` against ``target``, computed stably from logits.

    Each term is ``-weight * (pos_weight * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x)))``
    in torch's form ``(1 - t) x - (1 + (pos_weight - 1) t) log_sigmoid(x)``; input and
    target of the same shape; ``weight`` broadcastable to it; ``pos_weight``
    broadcastable along the last dim (one per class). Gradients reach the input and
    the target (``weight`` and ``pos_weight`` are constants, as in torch).

    >>> F.binary_cross_entropy_with_logits(minidl.zeros(2), minidl.tensor([1.0, 0.0]))
    tensor(0.6931472)
    """
    where = "binary_cross_entropy_with_logits"
    reduction = _checks.reduction(_legacy_reduction(size_average, reduce, reduction), where)
    _float_loss_input(input, where)
    target = _as_tensor(target)
    if target.shape != input.shape:
        raise ValueError(
            f"{where}: Target size ({target.shape}) must be the same as input size ({input.shape})"
        )
    _float_loss_input(target, where, "target")
    weight = _element_weight(weight, input.shape, where)
    pos_weight = _element_weight(pos_weight, input.shape, where, "pos_weight")
    log_sigmoid = _LogSigmoidFn.apply(input)
    if pos_weight is not None:
        log_sigmoid = log_sigmoid * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * input - log_sigmoid
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


class _KLDivFn(Function):
    # target (log(target) - input), torch's xlogy form; log_target: exp(t) (t - input)
    @staticmethod
    def forward(ctx, x, target, log_target):
        ctx.save_for_backward(x, target)
        ctx.log_target = log_target
        with np.errstate(divide="ignore", invalid="ignore"):
            if log_target:
                return np.exp(target) * (target - x)
            xlogx = np.where(target == 0, 0, target * np.log(np.where(target == 0, 1, target)))
            return (np.where(np.isnan(target), np.nan, xlogx) - target * x).astype(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, target = ctx.saved_tensors
        need_x, need_target = ctx.needs_input_grad[:2]
        dx = dtarget = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.log_target:
                exp_target = np.exp(target)
                dx = -grad * exp_target if need_x else None
                if need_target:
                    dtarget = grad * exp_target * (target - x + 1)
            else:
                dx = -grad * target if need_x else None
                if need_target:
                    # autograd of torch's xlogy(t, t) - t x: NaN where t == 0, as there
                    log_part = np.where(target != 0, np.log(np.where(target != 0, target, 1)), 0)
                    dtarget = grad * (log_part + target / target - x)
        return dx, dtarget, None


_KL_REDUCTIONS = ("mean", "batchmean", "sum", "none")


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence ``target * (log(target) - input)``, ``input`` log-probabilities.

    ``target`` holds probabilities (log-probabilities with ``log_target=True``), of the
    input's shape. ``reduction='batchmean'`` divides the sum by the batch size (the
    KL divergence's definition); 'mean' divides by the number of elements (torch's
    default, with its warning), 'sum' and 'none' as usual.

    >>> F.kl_div(minidl.tensor([[-1.0, -1.0]]), minidl.tensor([[0.5, 0.5]]), reduction="batchmean")
    tensor(0.30685282)
    """
    where = "kl_div"
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            UserWarning,
            stacklevel=2,
        )
    if reduction not in _KL_REDUCTIONS:
        raise ValueError(
            f"{where}: reduction must be 'mean', 'batchmean', 'sum' or 'none', got {reduction!r}"
        )
    target = _same_shape_target(input, target, where)
    _float_loss_input(target, where, "target")
    pointwise = _KLDivFn.apply(input, target, bool(log_target))
    if reduction == "batchmean":
        total = pointwise.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(pointwise, reduction)


__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "dropout2d",
    "elu",
    "embedding",
    "gelu",
    "group_norm",
    "hardtanh",
    "huber_loss",
    "instance_norm",
    "interpolate",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mish",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "prelu",
    "relu",
    "relu6",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tanh",
]
