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
        ctx, x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), extra=(0, 0)
    ):
        # ``extra``: one more row/column of zeros after the input (even kernels, "same")
        if extra != (0, 0):
            x = np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
        batch, out_channels = x.shape[0], weight.shape[0]
        kh, kw = weight.shape[2], weight.shape[3]
        cols = _ops.im2col(x, (kh, kw), stride, padding, dilation)
        positions = cols.shape[2]
        weight_matrix = weight.reshape(out_channels, -1)
        product = weight_matrix @ cols.reshape(cols.shape[0], -1)  # (O, N * L)
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
        # (O, N * L), the layout of the forward's product
        grad_matrix = np.ascontiguousarray(grad3.transpose(1, 0, 2)).reshape(grad3.shape[1], -1)
        dx = dweight = dbias = None
        if need_x:
            dcols = (weight_matrix.T @ grad_matrix).reshape(cols.shape)
            dx = _ops.col2im(dcols, x_shape, kernel, stride, padding, dilation)
            if extra != (0, 0):
                dx = dx[:, :, : x_shape[2] - extra[0], : x_shape[3] - extra[1]]
        if need_weight:
            dweight = (grad_matrix @ cols.reshape(cols.shape[0], -1).T).reshape(weight_shape)
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


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """2-D convolution (cross-correlation, as in PyTorch) through im2col and a matrix product.

    x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> (N, O, OH, OW). ``stride``,
    ``padding`` and ``dilation`` are ints or pairs; ``padding="same"`` (stride 1
    only) keeps H and W, padding an even kernel one more after than before, as
    PyTorch does; ``padding="valid"`` is 0.

    >>> F.conv2d(minidl.ones(1, 2, 5, 5), minidl.ones(3, 2, 3, 3), padding=1).shape
    (1, 3, 5, 5)
    """
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"conv2d: expected input (N, {weight.shape[1] if weight.ndim == 4 else 'C'}, H, W) "
            f"for a weight of shape {weight.shape}, got input of shape {x.shape}"
        )
    stride = _checks.pair(stride, "conv2d", "stride")
    dilation = _checks.pair(dilation, "conv2d", "dilation")
    padding, extra = _conv_padding(padding, weight.shape[2:], stride, dilation, "conv2d")
    return _Conv2dFn.apply(
        x, weight, bias, stride=stride, padding=padding, dilation=dilation, extra=extra
    )


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
    if x.ndim not in (2, 3, 4, 5):
        raise ValueError(f"batch_norm: expected a 2-d to 5-d input, got shape {x.shape}")
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


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
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
    x,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats=True,
    momentum=0.1,
    eps=1e-5,
):
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
        x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps
    )


def _instance_norm(x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps):
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


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
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
    return _LayerNormFn.apply(x, weight, bias, normalized_ndim=len(shape), eps=eps)


# ---------------------------------------------------------------- pooling


class _MaxPool2dFn(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride=None, padding=0):
        out, indices = _ops.max_pool2d_forward(x, kernel_size, stride, padding)
        ctx.save_for_backward(indices)
        ctx.x_shape = x.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        (indices,) = ctx.saved_tensors
        return _ops.max_pool2d_backward(grad, indices, ctx.x_shape), None, None, None


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over (kh, kw) windows of a (N, C, H, W) input; stride defaults to the kernel size.

    >>> F.max_pool2d(minidl.arange(16.0).reshape(1, 1, 4, 4), 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    if x.ndim != 4:
        raise ValueError(f"max_pool2d: expected a (N, C, H, W) input, got shape {x.shape}")
    return _MaxPool2dFn.apply(x, kernel_size, stride, padding)


class _AvgPool2dFn(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride=None, padding=0, count_include_pad=True):
        ctx.arguments = (x.shape, kernel_size, stride, padding, count_include_pad)
        return _ops.avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad)

    @staticmethod
    def backward(ctx, grad):
        return (_ops.avg_pool2d_backward(grad, *ctx.arguments),) + (None,) * 4


def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Mean over (kh, kw) windows of a (N, C, H, W) input; zero padding.

    >>> F.avg_pool2d(minidl.ones(1, 1, 4, 4), 2).shape
    (1, 1, 2, 2)
    """
    if x.ndim != 4:
        raise ValueError(f"avg_pool2d: expected a (N, C, H, W) input, got shape {x.shape}")
    return _AvgPool2dFn.apply(x, kernel_size, stride, padding, count_include_pad)


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
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "cross_entropy",
    "dropout",
    "group_norm",
    "instance_norm",
    "layer_norm",
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
