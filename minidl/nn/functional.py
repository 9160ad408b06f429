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

import numpy as np

from .. import _checks, _ops
from .. import random as _random
from ..autograd import Function
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


def linear(x, weight, bias=None):
    """``x @ weight.T + bias``: x (*, in_features), weight (out, in), bias (out,) -> (*, out).

    >>> F.linear(minidl.ones(2, 3), minidl.ones(4, 3)).shape
    (2, 4)
    """
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match a weight of shape "
            f"{weight.shape} (expected the last dim to be {weight.shape[1]})"
        )
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
    indices,
    weight,
    padding_idx=None,
    max_norm=None,
    norm_type=2.0,
    scale_grad_by_freq=False,
    sparse=False,
):
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


class _Conv2dFn(Function):
    """Convolution as one matrix product over the whole batch.

    im2col lays the windows out as (C * kh * kw, N * L) (L = OH * OW), so the
    forward is a single (O, C*kh*kw) @ (C*kh*kw, N*L) product, and the backward
    two more of the same size (weight gradient and column gradient).
    """

    @staticmethod
    def forward(
        ctx,
        x,
        weight,
        bias=None,
        stride=(1, 1),
        padding=(0, 0),
        dilation=(1, 1),
        extra=(0, 0),
        groups=1,
    ):
        # ``extra``: one more row/column of zeros after the input (even kernels, "same")
        if extra != (0, 0):
            x = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        batch, out_channels = x.shape[0], weight.shape[0]
        kh, kw = weight.shape[2], weight.shape[3]
        cols = _ops.im2col(x, (kh, kw), stride, padding, dilation)
        positions = cols.shape[2]
        # groups: the rows of cols and of the weight split into G blocks, one product each
        weight_matrix = weight.reshape(groups, out_channels // groups, -1)
        product = np.matmul(weight_matrix, cols.reshape(groups, -1, batch * positions))
        out = np.empty((batch, out_channels, positions), dtype=product.dtype)
        channels_first = product.reshape(out_channels, batch, positions).transpose(1, 0, 2)
        if bias is not None:
            np.add(channels_first, bias[:, None], out=out)
        else:
            np.copyto(out, channels_first)
        ctx.save_for_backward(cols, weight_matrix)
        ctx.geometry = (x.shape, (kh, kw), stride, padding, dilation, extra, weight.shape)
        height = (x.shape[2] + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        return out.reshape(batch, out_channels, height, positions // height)

    @staticmethod
    def backward(ctx, grad):
        cols, weight_matrix = ctx.saved_tensors
        x_shape, kernel, stride, padding, dilation, extra, weight_shape = ctx.geometry
        need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad3 = grad.reshape(grad.shape[0], grad.shape[1], -1)  # (N, O, L)
        groups = weight_matrix.shape[0]
        # (G, O / G, N * L), the layout of the forward's product
        grad_matrix = np.ascontiguousarray(grad3.transpose(1, 0, 2)).reshape(
            groups, grad3.shape[1] // groups, -1
        )
        dx = dweight = dbias = None
        if need_x:
            dcols = np.matmul(weight_matrix.transpose(0, 2, 1), grad_matrix).reshape(cols.shape)
            dx = _ops.col2im(dcols, x_shape, kernel, stride, padding, dilation)
            if extra != (0, 0):
                dx = dx[:, :, : x_shape[2] - extra[0], : x_shape[3] - extra[1]]
        if need_weight:
            group_cols = cols.reshape(groups, -1, grad_matrix.shape[2])
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


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
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
    groups = _conv_groups(groups, x, weight, "conv2d")
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1] * groups:
        raise ValueError(
            f"conv2d: expected input (N, "
            f"{weight.shape[1] * groups if weight.ndim == 4 else 'C'}, H, W) "
            f"for a weight of shape {weight.shape} and groups={groups}, got input of shape "
            f"{x.shape}"
        )
    stride = _checks.pair(stride, "conv2d", "stride")
    dilation = _checks.pair(dilation, "conv2d", "dilation")
    padding, extra = _conv_padding(padding, weight.shape[2:], stride, dilation, "conv2d")
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


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution: x (N, C, L), weight (O, C / groups, k), bias (O,) -> (N, O, OL).

    ``stride``, ``padding`` and ``dilation`` are ints (or 1-tuples); ``padding``
    may be "same" (stride 1) or "valid". Runs as a 2-D convolution over (N, C, 1, L).

    >>> F.conv1d(minidl.ones(2, 3, 10), minidl.ones(4, 3, 3), padding=1).shape
    (2, 4, 10)
    """
    if x.ndim != 3 or weight.ndim != 3:
        raise ValueError(
            f"conv1d: expected a (N, C, L) input and a (O, C / groups, k) weight, got "
            f"shapes {x.shape} and {weight.shape}"
        )
    stride, dilation = (
        _single(v, "conv1d", name) for v, name in ((stride, "stride"), (dilation, "dilation"))
    )
    if not isinstance(padding, str):
        padding = (0, _single(padding, "conv1d", "padding"))
    out = conv2d(
        x.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        stride=(1, stride),
        padding=padding,
        dilation=(1, dilation),
        groups=groups,
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
    def forward(
        ctx,
        x,
        weight,
        bias=None,
        stride=(1, 1),
        padding=(0, 0),
        output_padding=(0, 0),
        dilation=(1, 1),
        groups=1,
    ):
        batch, in_channels, height, width = x.shape
        kh, kw = weight.shape[2], weight.shape[3]
        out_channels = weight.shape[1] * groups
        full = tuple(
            (size - 1) * s + d * (k - 1) + 1
            for size, s, d, k in zip((height, width), stride, dilation, (kh, kw))
        )
        out_size = tuple(f - 2 * p + o for f, p, o in zip(full, padding, output_padding))
        x_groups = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(
            groups, in_channels // groups, -1
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
        dcols = dcols.reshape(groups, -1, dcols.shape[1] * dcols.shape[2])
        dx = dweight = dbias = None
        if need_x:
            dx = np.matmul(weight_groups, dcols).reshape(
                x_shape[1], x_shape[0], x_shape[2], x_shape[3]
            )
            dx = np.ascontiguousarray(dx.transpose(1, 0, 2, 3))
        if need_weight:
            dweight = np.matmul(x_groups, dcols.transpose(0, 2, 1)).reshape(weight_shape)
        if need_bias:
            dbias = _ops.sum_channels(np.ascontiguousarray(grad).reshape(*grad.shape[:2], -1))
        return dx, dweight, dbias


def conv_transpose2d(
    x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
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
    _transpose_output_size(x.shape[2:], weight.shape[2:], *geometry, where)
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
        return (
            dx,
            dweight.astype(weight.dtype) if need_weight else None,
            dbias.astype(weight.dtype) if need_bias else None,
        ) + (None,) * 2


def batch_norm(
    x,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    training=False,
    momentum=0.1,
    eps=1e-5,
    num_batches_tracked=None,
):
    """Batch normalization with statistics per channel (axis 1) over every other axis.

    x (N, C), (N, C, L) or (N, C, H, W); ``running_mean``/``running_var`` (C,)
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
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"batch_norm: expected a 2-d, 3-d or 4-d input, got shape {x.shape}")
    if training:
        _checks.values_per_channel(x.shape, "batch_norm")
    elif running_mean is None or running_var is None:
        raise ValueError(
            "batch_norm: evaluation (training=False) needs running_mean and running_var"
        )
    return _batch_norm(
        x, running_mean, running_var, weight, bias, training, momentum, eps, num_batches_tracked
    )


def _batch_norm(
    x, running_mean, running_var, weight, bias, training, momentum, eps, num_batches_tracked
):
    """:func:`batch_norm` for checked arguments (the BatchNorm layers check their own)."""
    running = [r.numpy() if isinstance(r, Tensor) else r for r in (running_mean, running_var)]
    return _BatchNormFn.apply(
        x,
        weight,
        bias,
        *running,
        training=training,
        momentum=momentum,
        eps=eps,
        num_batches_tracked=num_batches_tracked,
    )


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
        raise ValueError(
            f"{where}: the window {kernel} (dilation {dilation}) does not fit in the input "
            f"{tuple(shape[2:])} padded by {padding}"
        )
    return kernel, stride, padding, dilation, out


def _max_pool2d_arrays(x, kernel, stride, padding, dilation, out_size):
    """(out, indices) of max pooling over a (N, C, H, W) array, indices ``h * W + w`` per plane.

    Without dilation or ceil mode this is the compiled kernel. Otherwise the
    input is padded with -inf (and, in ceil mode, by the rows and columns the
    last windows reach past), unfolded by im2col and reduced; as torch's kernel
    does, a window takes its first maximum, or its last NaN.
    """
    batch, channels, height, width = x.shape
    plain = tuple(
        _pool_size(n, k, s, p, d, False)
        for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation)
    )
    if dilation == (1, 1) and plain == out_size:
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
    shape = (batch, channels, *out_size)
    out = np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(shape)
    indices = np.ascontiguousarray(indices.transpose(1, 0, 2)).reshape(shape)
    return out, indices


class _MaxPool2dFn(Function):
    @staticmethod
    def forward(ctx, x, geometry, found=None):
        kernel, stride, padding, dilation, out_size = geometry
        out, indices = _max_pool2d_arrays(x, kernel, stride, padding, dilation, out_size)
        ctx.save_for_backward(indices)
        ctx.x_shape = x.shape
        if found is not None:
            found.append(indices)
        return out

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return _ops.max_pool2d_backward(grad, indices, ctx.x_shape), None


def _max_pool2d(x, geometry, return_indices):
    """Max pooling with checked ``geometry``; with ``return_indices``, (out, int64 indices)."""
    found = [] if return_indices else None
    out = _MaxPool2dFn.apply(x, geometry, found=found)
    return (out, Tensor._of(found[0])) if return_indices else out


def max_pool2d(
    x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
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
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
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


def adaptive_avg_pool2d(x, output_size):
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
    x,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
    antialias=False,
):
    """Resize the spatial dims of a (N, C, L), (N, C, H, W) or (N, C, D, H, W) input.

    Give ``size`` (an int or one per spatial dim) or ``scale_factor`` (the output
    size is floor(size * scale_factor)); only ``mode="nearest"`` is implemented,
    with torch's source index ``floor(i / scale_factor)`` (or ``floor(i * in /
    out)`` with ``size`` or ``recompute_scale_factor=True``).

    >>> F.interpolate(minidl.tensor([[[1.0, 2.0]]]), scale_factor=2)
    tensor([[[1., 1., 2., 2.]]])
    """
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


class _Dropout2dFn(Function):
    @staticmethod
    def forward(ctx, x, p):
        mask_shape = x.shape[:2] + (1,) * (x.ndim - 2)
        keep = _random.generator().random(mask_shape) >= p
        scale = x.dtype.type(0.0 if p == 1 else 1.0 / (1.0 - p))
        mask = (keep * scale).astype(x.dtype, copy=False)
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout2d(x, p=0.5, training=True, inplace=False):
    """Zero whole channels: each (n, c) plane of a (N, C, H, W) input is zeroed with
    probability ``p`` and the rest scaled by 1 / (1 - p) (training only).

    A 3-d input is taken as (N, C, L), with torch's warning. Masks come from
    minidl's generator; ``inplace=True`` is not supported.

    >>> F.dropout2d(minidl.ones(1, 2, 2, 2), p=0.5, training=False).shape
    (1, 2, 2, 2)
    """
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
    if not training or p == 0.0:
        return x
    return _Dropout2dFn.apply(x, p)


# ---------------------------------------------------------------- activations and dropout


class _DropoutFn(Function):
    @staticmethod
    def forward(ctx, x, p):
        keep = _random.generator().random(x.shape) >= p
        scale = x.dtype.type(0.0 if p == 1 else 1.0 / (1.0 - p))
        mask = keep * scale
        mask = mask.astype(x.dtype, copy=False)
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


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) (training only).

    Masks are drawn from minidl's generator (``minidl.manual_seed``).

    >>> F.dropout(minidl.ones(4), p=0.5, training=False)
    tensor([1., 1., 1., 1.])
    """
    return _dropout(x, _dropout_probability(p, "dropout"), training)


def _dropout(x, p, training):
    if not training or p == 0.0:
        return x
    return _DropoutFn.apply(x, p)


def relu(x):
    """max(x, 0), element-wise.

    >>> F.relu(minidl.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
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


def leaky_relu(x, negative_slope=0.01):
    """x where x > 0, else ``negative_slope * x``.

    >>> F.leaky_relu(minidl.tensor([-1.0, 2.0]), 0.1)
    tensor([-0.1,  2. ])
    """
    return _LeakyReLUFn.apply(x, negative_slope=negative_slope)


def sigmoid(x):
    """1 / (1 + exp(-x)), element-wise.

    >>> F.sigmoid(minidl.zeros(1))
    tensor([0.5])
    """
    return x.sigmoid()


def tanh(x):
    """Hyperbolic tangent, element-wise.

    >>> F.tanh(minidl.zeros(1))
    tensor([0.])
    """
    return x.tanh()


def softmax(x, dim=-1):
    """exp(x) / sum(exp(x)) along ``dim``, computed stably.

    >>> F.softmax(minidl.zeros(1, 4), dim=1)
    tensor([[0.25, 0.25, 0.25, 0.25]])
    """
    return x.softmax(dim)


def log_softmax(x, dim=-1):
    """x - log(sum(exp(x))) along ``dim``, computed stably.

    >>> F.log_softmax(minidl.zeros(1, 2), dim=1)
    tensor([[-0.6931472, -0.6931472]])
    """
    return x.log_softmax(dim)


# ---------------------------------------------------------------- losses


class _CrossEntropyFn(Function):
    @staticmethod
    def forward(ctx, logits, labels, label_smoothing=0.0, reduction="mean"):
        loss, lse = _ops.softmax_xent_forward(logits, labels, label_smoothing)
        ctx.save_for_backward(logits, labels, lse)
        ctx.label_smoothing, ctx.reduction = label_smoothing, reduction
        rows = logits.shape[0]
        if reduction == "mean":
            return np.asarray(loss, dtype=logits.dtype)
        if reduction == "sum":
            return np.asarray(loss * rows, dtype=logits.dtype)
        picked = logits[np.arange(rows), labels].astype(np.float64)
        uniform = logits.astype(np.float64).mean(axis=1)
        losses = lse - (1 - label_smoothing) * picked - label_smoothing * uniform
        return losses.astype(logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        logits, labels, lse = ctx.saved_tensors
        rows = logits.shape[0]
        if ctx.reduction == "mean":
            scale = np.asarray(grad, dtype=np.float64) / rows
        else:
            scale = np.asarray(grad, dtype=np.float64)
        dlogits = _ops.softmax_xent_backward(logits, labels, lse, scale, ctx.label_smoothing)
        return dlogits, None


def cross_entropy(logits, labels, label_smoothing=0.0, reduction="mean"):
    """Softmax cross-entropy of (N, K) ``logits`` against (N,) integer ``labels``.

    As ``torch.nn.functional.cross_entropy``: with label smoothing e the target is
    (1 - e) * one_hot + e / K; ``reduction`` is 'mean' (default), 'sum' or 'none'.
    One fused compiled kernel each way.

    >>> F.cross_entropy(minidl.zeros(2, 4), minidl.tensor([0, 3]))
    tensor(1.3862944)
    """
    _checks.reduction(reduction, "cross_entropy")
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: expected (N, K) logits, got shape {logits.shape}")
    labels = _checks.class_labels(labels, *logits.shape, "cross_entropy")
    label_smoothing = _checks.label_smoothing(label_smoothing, "cross_entropy")
    return _CrossEntropyFn.apply(
        logits, labels, label_smoothing=label_smoothing, reduction=reduction
    )


def one_hot(labels, num_classes=-1):
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


def nll_loss(log_probs, labels, reduction="mean"):
    """Negative log-likelihood of (N,) integer ``labels`` under (N, K) log-probabilities.

    >>> F.nll_loss(minidl.tensor([[-1.0, -2.0]]), minidl.tensor([1]))
    tensor(2.)
    """
    _checks.reduction(reduction, "nll_loss")
    if log_probs.ndim != 2:
        raise ValueError(
            f"nll_loss: expected (N, K) log-probabilities, got shape {log_probs.shape}"
        )
    labels = _checks.class_labels(labels, *log_probs.shape, "nll_loss")
    picked = -log_probs[np.arange(log_probs.shape[0]), labels]
    return _reduce(picked, reduction)


def _reduce(values, reduction):
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def mse_loss(prediction, target, reduction="mean"):
    """Mean (or sum, or element-wise) squared error; both inputs of the same shape.

    >>> F.mse_loss(minidl.tensor([1.0, 3.0]), minidl.tensor([0.0, 0.0]))
    tensor(5.)
    """
    _checks.reduction(reduction, "mse_loss")
    target_shape = target.shape if isinstance(target, Tensor) else np.shape(target)
    if prediction.shape != target_shape:
        raise ValueError(
            f"mse_loss: prediction of shape {prediction.shape} and target of shape "
            f"{target_shape} differ"
        )
    difference = prediction - target
    return _reduce(difference * difference, reduction)


__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "dropout2d",
    "embedding",
    "interpolate",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
