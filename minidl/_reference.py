"""minidl's kernels in plain, readable numpy.

Each function has the signature and the result of its compiled twin in
``minidl/_ops.pyx`` (input checks aside). The tests use these as the oracle; the
benchmarks use them as the baseline. Sums and anything that subtracts a mean
are computed in float64, as the compiled kernels do, and results come back in
the input's dtype.
"""

from __future__ import annotations

import math

import numpy as np

from minidl import _checks


def _as_ncs(x):
    # S spelled out: numpy cannot infer a -1 of an empty array
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


def _per_channel(values, channels, default):
    if values is None:
        return np.full(channels, default, dtype=np.float64)
    return np.asarray(values, dtype=np.float64)


# ---------------------------------------------------------------- reductions


def sum_leading(x):
    """``x.sum(axis=0)`` for a (A, B) float array; shape (B,)."""
    x = np.asarray(x)
    return x.sum(axis=0, dtype=np.float64).astype(x.dtype)


def sum_channels(x):
    """``x.sum(axis=(0, 2))`` for a (A, C, B) float array; shape (C,)."""
    x = np.asarray(x)
    return x.sum(axis=(0, 2), dtype=np.float64).astype(x.dtype)


def sum_all(x):
    """``x.sum()`` for a float array of any shape, as a 0-d array of its dtype."""
    x = np.asarray(x)
    return np.asarray(x.sum(dtype=np.float64)).astype(x.dtype)


def logsumexp_rows(x):
    """``log(exp(x).sum(axis=1))`` for a (N, K) array, shifted by the row max; shape (N,)."""
    x = np.asarray(x)
    wide = x.astype(np.float64)
    shift = wide.max(axis=1, keepdims=True)
    return (np.log(np.exp(wide - shift).sum(axis=1)) + shift[:, 0]).astype(x.dtype)


# ---------------------------------------------------------------- softmax cross-entropy


def softmax_xent_forward(logits, labels, label_smoothing=0.0):
    """Mean cross-entropy of softmax(logits) against labels; returns ``(loss, lse)``."""
    wide = np.asarray(logits, dtype=np.float64)
    classes = wide.shape[1]
    lse = logsumexp_rows(wide)
    log_probs = wide - lse[:, None]
    picked = log_probs[np.arange(len(labels)), labels]
    losses = -(1 - label_smoothing) * picked - label_smoothing * log_probs.sum(axis=1) / classes
    return float(losses.mean()), lse


def softmax_xent_backward(logits, labels, lse, grad_scale, label_smoothing=0.0):
    """``(softmax(logits) - target) * grad_scale`` row by row; (N, K) like logits."""
    logits = np.asarray(logits)
    wide = logits.astype(np.float64)
    rows, classes = wide.shape
    target = np.full(wide.shape, label_smoothing / classes)
    target[np.arange(rows), labels] += 1 - label_smoothing
    softmax = np.exp(wide - np.asarray(lse, dtype=np.float64)[:, None])
    scale = np.broadcast_to(np.asarray(grad_scale, dtype=np.float64), (rows,))
    return ((softmax - target) * scale[:, None]).astype(logits.dtype)


# ---------------------------------------------------------------- optimizer updates


def sgd_update(
    params,
    grads,
    momentum_buffers,
    lr,
    momentum=0.0,
    dampening=0.0,
    weight_decay=0.0,
    nesterov=False,
    maximize=False,
):
    """``torch.optim.SGD``'s step, parameter by parameter, in place; returns the buffers."""
    buffers = [None] * len(params) if momentum_buffers is None else list(momentum_buffers)
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        if weight_decay != 0:
            grad = grad + weight_decay * param
        if momentum != 0:
            if buffers[i] is None:
                buffers[i] = np.array(grad, dtype=param.dtype, order="C")
            else:
                buffers[i] *= momentum
                buffers[i] += (1 - dampening) * grad
            grad = grad + momentum * buffers[i] if nesterov else buffers[i]
        param -= lr * grad
    return buffers


def _lerp_(start, end, weight):
    """``start.lerp_(end, weight)`` as torch computes it, in ``start``'s dtype."""
    weight = start.dtype.type(weight)
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (start.dtype.type(1) - weight)


def adam_update(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    steps,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    amsgrad=False,
    maximize=False,
):
    """``torch.optim.Adam``'s (``AdamW``'s, decoupled) step, parameter by parameter, in place."""
    for i, param in enumerate(params):
        grad = -grads[i] if maximize else grads[i]
        if weight_decay != 0:
            if decoupled_weight_decay:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        step_size = lr / (1 - beta1 ** steps[i])
        bias_correction2_sqrt = (1 - beta2 ** steps[i]) ** 0.5
        if amsgrad:
            np.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
            second = max_exp_avg_sqs[i]
        else:
            second = exp_avg_sq
        denom = np.sqrt(second) / bias_correction2_sqrt + eps
        param += -step_size * exp_avg / denom


# ---------------------------------------------------------------- batch normalization


def batchnorm_forward_train(
    x, weight, bias, running_mean, running_var, momentum=0.1, eps=1e-5, num_batches_tracked=None
):
    """Batch statistics per channel, normalized output, running statistics updated in place."""
    x = np.asarray(x)
    x3 = _as_ncs(x).astype(np.float64)
    channels = x3.shape[1]
    count = x3.shape[0] * x3.shape[2]
    mean = x3.mean(axis=(0, 2))
    var = ((x3 - mean[None, :, None]) ** 2).mean(axis=(0, 2))
    invstd = 1 / np.sqrt(var + eps)
    weight = _per_channel(weight, channels, 1.0)
    bias = _per_channel(bias, channels, 0.0)
    y = (x3 - mean[None, :, None]) * (weight * invstd)[None, :, None] + bias[None, :, None]
    if running_mean is not None:
        factor = 1 / num_batches_tracked if momentum is None else momentum
        running_mean[...] = (1 - factor) * running_mean + factor * mean
        running_var[...] = (1 - factor) * running_var + factor * var * count / (count - 1)
    return y.astype(x.dtype).reshape(x.shape), mean, invstd


def batchnorm_forward_eval(x, weight, bias, running_mean, running_var, eps=1e-5):
    """``(x - running_mean) / sqrt(running_var + eps) * weight + bias`` per channel."""
    x = np.asarray(x)
    x3 = _as_ncs(x).astype(np.float64)
    channels = x3.shape[1]
    scale = _per_channel(weight, channels, 1.0) / np.sqrt(np.asarray(running_var, np.float64) + eps)
    center = np.asarray(running_mean, dtype=np.float64)
    y = (x3 - center[None, :, None]) * scale[None, :, None]
    y += _per_channel(bias, channels, 0.0)[None, :, None]
    return y.astype(x.dtype).reshape(x.shape)


def batchnorm_backward(dy, x, mean, invstd, weight, training=True):
    """``(dx, dweight, dbias)``; in training the statistics' own gradients are included."""
    x = np.asarray(x)
    x3 = _as_ncs(x).astype(np.float64)
    dy3 = _as_ncs(np.asarray(dy)).astype(np.float64)
    channels = x3.shape[1]
    count = x3.shape[0] * x3.shape[2]
    mean = np.asarray(mean, dtype=np.float64)[None, :, None]
    invstd = np.asarray(invstd, dtype=np.float64)[None, :, None]
    weight = _per_channel(weight, channels, 1.0)[None, :, None]
    x_hat = (x3 - mean) * invstd
    dbias = dy3.sum(axis=(0, 2))
    dweight = (dy3 * x_hat).sum(axis=(0, 2))
    if training:
        mean_dy = dbias[None, :, None] / count
        mean_dy_xhat = dweight[None, :, None] / count
        dx = weight * invstd * (dy3 - mean_dy - x_hat * mean_dy_xhat)
    else:
        dx = weight * invstd * dy3
    return dx.astype(x.dtype).reshape(x.shape), dweight, dbias


# ---------------------------------------------------------------- im2col / col2im


def _geometry(x_shape, kernel_size, stride, padding, dilation, where):
    kh, kw = _checks.pair(kernel_size, where, "kernel_size")
    sh, sw = _checks.pair(kernel_size if stride is None else stride, where, "stride")
    ph, pw = _checks.pair(padding, where, "padding")
    dh, dw = _checks.pair(dilation, where, "dilation")
    out_h = (x_shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (x_shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Windows of a (N, C, H, W) input as columns (C * kh * kw, N, OH * OW)."""
    x = np.asarray(x)
    n, c = x.shape[:2]
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = _geometry(
        x.shape, kernel_size, stride, padding, dilation, "im2col"
    )
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            cols[:, :, i, j] = padded[:, :, top : top + sh * oh : sh, left : left + sw * ow : sw]
    return cols.transpose(1, 2, 3, 0, 4, 5).reshape(c * kh * kw, n, oh * ow)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """(C * kh * kw, N, OH * OW) columns folded back to (N, C, H, W), overlaps added."""
    cols = np.asarray(cols)
    n, c, h, w = x_shape
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = _geometry(
        x_shape, kernel_size, stride, padding, dilation, "col2im"
    )
    blocks = cols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 1, 2, 4, 5)
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw
            padded[:, :, top : top + sh * oh : sh, left : left + sw * ow : sw] += blocks[:, :, i, j]
    return padded[:, :, ph : ph + h, pw : pw + w]


def swap_leading_axes(x, bias=None):
    """(A, B, L) -> (B, A, L), plus ``bias[a]`` (A,) when given."""
    x = np.asarray(x)
    out = np.ascontiguousarray(x.transpose(1, 0, 2))
    if bias is not None:
        out = (out + np.asarray(bias, dtype=np.float64)[None, :, None]).astype(x.dtype)
    return out


def conv2d_direct_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Convolution of (N, C, H, W) by a (O, C, kh, kw) weight through im2col: (N, O, OH, OW)."""
    x, weight = np.asarray(x), np.asarray(weight)
    out_channels = weight.shape[0]
    _, _, _, _, _, _, _, _, oh, ow = _geometry(
        x.shape, weight.shape[2:], stride, padding, dilation, "conv2d_direct_forward"
    )
    cols = im2col(x, weight.shape[2:], stride, padding, dilation).astype(np.float64)
    out = np.einsum("ok,knl->nol", weight.reshape(out_channels, -1).astype(np.float64), cols)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)[None, :, None]
    return out.astype(x.dtype).reshape(x.shape[0], out_channels, oh, ow)


def conv2d_direct_weight_grad(dy, x, kernel_size, stride=1, padding=0, dilation=1):
    """Weight gradient (O, C, kh, kw) of a convolution from dy (N, O, OH, OW) and x (N, C, H, W)."""
    dy, x = np.asarray(dy), np.asarray(x)
    kh, kw = _checks.pair(kernel_size, "conv2d_direct_weight_grad", "kernel_size")
    cols = im2col(x, (kh, kw), stride, padding, dilation).astype(np.float64)
    grad = dy.reshape(dy.shape[0], dy.shape[1], -1).astype(np.float64)
    dweight = np.einsum("nol,knl->ok", grad, cols)
    return dweight.astype(x.dtype).reshape(dy.shape[1], x.shape[1], kh, kw)


# ---------------------------------------------------------------- pooling


def _windows(x, kernel_size, stride, padding, fill):
    """All pooling windows: (kh * kw, N, C, OH, OW), and the positions they read."""
    kh, kw, sh, sw, ph, pw, _, _, oh, ow = _geometry(
        x.shape, kernel_size, stride, padding, 1, "pooling"
    )
    h, w = x.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    rows = np.arange(h + 2 * ph) - ph
    columns = np.arange(w + 2 * pw) - pw
    values, positions = [], []
    for i in range(kh):
        for j in range(kw):
            values.append(padded[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw])
            r = rows[i : i + sh * oh : sh][:, None]
            q = columns[j : j + sw * ow : sw][None, :]
            inside = (r >= 0) & (r < h) & (q >= 0) & (q < w)
            positions.append(np.where(inside, r * w + q, -1))
    return np.stack(values), np.stack(positions)


def _max_pool_choice(values, inside):
    """The cell each window takes: its first maximum, or its last NaN (torch's CPU rule).

    ``inside`` marks the cells in the input: padding (-inf) never wins, not even a tie
    with an all -inf window, which takes its first cell inside the input.
    """
    nan = np.isnan(values)
    numbers = np.where(nan, -np.inf, values)
    best = numbers.max(axis=0, keepdims=True)
    first_max = np.argmax((numbers == best) & inside, axis=0)  # argmax: the first True
    last_nan = values.shape[0] - 1 - np.argmax(nan[::-1], axis=0)
    return np.where(nan.any(axis=0), last_nan, first_max)


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, relu=False):
    """Max over each window (padding is -inf) and the flat position of the cell taken.

    A window takes its first maximum, or its last NaN. With ``relu`` the values are
    ``max_pool(relu(x))`` computed as written, the indices still those of ``x``.
    """
    x = np.asarray(x)
    values, positions = _windows(x, kernel_size, stride, padding, -np.inf)
    positions = np.broadcast_to(positions[:, None, None], values.shape)
    chosen = _max_pool_choice(values, positions >= 0)[None]
    indices = np.take_along_axis(positions, chosen, 0)[0].astype(np.int64)
    if relu:
        values, _ = _windows(relu_forward(x), kernel_size, stride, padding, -np.inf)
        chosen = _max_pool_choice(values, positions >= 0)[None]
    return np.take_along_axis(values, chosen, axis=0)[0], indices


def max_pool2d_backward(dy, indices, x_shape, kernel_size=None, stride=None):
    """Each output gradient added at the position of its window's maximum, onto zeros.

    ``kernel_size``/``stride`` only let the compiled kernel skip its zero fill; the
    result is the same.
    """
    dy = np.asarray(dy)
    n, c, h, w = x_shape
    dx = np.zeros((n * c, h * w), dtype=dy.dtype)
    planes = np.repeat(np.arange(n * c), dy.shape[2] * dy.shape[3])
    np.add.at(dx, (planes, np.asarray(indices).ravel()), dy.ravel())
    return dx.reshape(x_shape)


def _divisors(x_shape, kernel_size, stride, padding, count_include_pad):
    x = np.ones(x_shape[2:], dtype=np.float64)[None, None]
    if count_include_pad:
        ph, pw = _checks.pair(padding, "avg_pool2d", "padding")
        # cells inside the padded input; with floor-mode windows that is all of them
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=1.0)
        return _windows(x, kernel_size, stride, 0, 0.0)[0].sum(axis=0)
    return _windows(x, kernel_size, stride, padding, 0.0)[0].sum(axis=0)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Mean over each window; zero padding, counted in the divisor if ``count_include_pad``."""
    x = np.asarray(x)
    values, _ = _windows(x.astype(np.float64), kernel_size, stride, padding, 0.0)
    divisors = _divisors(x.shape, kernel_size, stride, padding, count_include_pad)
    return (values.sum(axis=0) / divisors).astype(x.dtype)


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, count_include_pad=True):
    """Each output gradient spread evenly over the cells of its window."""
    dy = np.asarray(dy)
    _, positions = _windows(np.zeros(x_shape), kernel_size, stride, padding, 0.0)
    divisors = _divisors(x_shape, kernel_size, stride, padding, count_include_pad)
    share = (dy.astype(np.float64) / divisors).reshape(x_shape[0] * x_shape[1], -1)
    dx = np.zeros((x_shape[0] * x_shape[1], x_shape[2] * x_shape[3]))
    for window in positions.reshape(positions.shape[0], -1):
        inside = window >= 0
        dx[:, window[inside]] += share[:, inside]
    return dx.reshape(x_shape).astype(dy.dtype)


# ---------------------------------------------------------------- group, instance and layer norm


def _group_statistics(x, groups, eps):
    """(N, G, K * S) float64 view of x, and its per-(sample, group) mean, variance, invstd."""
    grouped = np.asarray(x, dtype=np.float64).reshape(
        x.shape[0], groups, math.prod(x.shape[1:]) // groups
    )
    mean = grouped.mean(axis=2)
    var = ((grouped - mean[:, :, None]) ** 2).mean(axis=2)
    return grouped, mean, var, 1 / np.sqrt(var + eps)


def _group_affine(x, grouped, mean, invstd, weight, bias):
    x3 = _as_ncs(x)
    channels = x3.shape[1]
    x_hat = ((grouped - mean[:, :, None]) * invstd[:, :, None]).reshape(x3.shape)
    weight = _per_channel(weight, channels, 1.0)[None, :, None]
    bias = _per_channel(bias, channels, 0.0)[None, :, None]
    return (x_hat * weight + bias).astype(x.dtype).reshape(x.shape)


def groupnorm_forward(x, num_groups, weight, bias, eps=1e-5):
    """Statistics per (sample, group of C / G channels); ``(y, mean, invstd)``, (N, G) stats."""
    x = np.asarray(x)
    grouped, mean, _, invstd = _group_statistics(x, num_groups, eps)
    return _group_affine(x, grouped, mean, invstd, weight, bias), mean, invstd


def instancenorm_forward(x, weight, bias, running_mean, running_var, momentum=0.1, eps=1e-5):
    """Group norm with G = C; running statistics move by the samples' mean statistics."""
    x = np.asarray(x)
    channels = x.shape[1]
    grouped, mean, var, invstd = _group_statistics(x, channels, eps)
    if running_mean is not None:
        inner = grouped.shape[2]
        running_mean[...] = (1 - momentum) * running_mean + momentum * mean.mean(axis=0)
        unbiased = var * inner / (inner - 1)
        running_var[...] = (1 - momentum) * running_var + momentum * unbiased.mean(axis=0)
    return _group_affine(x, grouped, mean, invstd, weight, bias), mean, invstd


def layernorm_forward(x, weight, bias, eps=1e-5):
    """Each (R, D) row normalized by its own statistics; element-wise affine over D."""
    x = np.asarray(x)
    y, mean, invstd = groupnorm_forward(x, 1, weight, bias, eps)
    return y, mean[:, 0], invstd[:, 0]


def groupnorm_backward(dy, x, mean, invstd, weight):
    """``(dx, dweight, dbias)`` of group norm with (N, G) statistics (instance norm: G = C)."""
    x = np.asarray(x)
    x3 = _as_ncs(x).astype(np.float64)
    dy3 = _as_ncs(np.asarray(dy)).astype(np.float64)
    batch, channels, inner = x3.shape
    mean = np.asarray(mean, dtype=np.float64)
    invstd = np.asarray(invstd, dtype=np.float64)
    groups = mean.shape[1]
    per_group = channels // groups
    expand = (batch, groups, per_group * inner)
    x_hat = ((x3.reshape(expand) - mean[:, :, None]) * invstd[:, :, None]).reshape(x3.shape)
    weight = _per_channel(weight, channels, 1.0)[None, :, None]
    dbias = dy3.sum(axis=(0, 2))
    dweight = (dy3 * x_hat).sum(axis=(0, 2))
    g = (dy3 * weight).reshape(expand)
    g_hat = g * x_hat.reshape(expand)
    dx = invstd[:, :, None] * (
        g
        - g.mean(axis=2, keepdims=True)
        - x_hat.reshape(expand) * g_hat.mean(axis=2, keepdims=True)
    )
    return dx.reshape(x.shape).astype(x.dtype), dweight, dbias


def layernorm_backward(dy, x, mean, invstd, weight):
    """``(dx, dweight, dbias)`` of layer norm over (R, D) rows with (R,) statistics."""
    mean = np.asarray(mean, dtype=np.float64)[:, None]
    invstd = np.asarray(invstd, dtype=np.float64)[:, None]
    return groupnorm_backward(dy, x, mean, invstd, weight)


# ---------------------------------------------------------------- elementwise activations


def relu_forward(x):
    """``x < 0 ? 0 : x``: NaN and -0.0 pass through, as torch's relu."""
    x = np.asarray(x)
    return np.where(x < 0, x.dtype.type(0), x)


def relu_backward(dy, y):
    """``y <= 0 ? 0 : dy``, torch's threshold_backward: a select, not a product."""
    dy = np.asarray(dy)
    return np.where(np.asarray(y) <= 0, dy.dtype.type(0), dy)


def sigmoid_forward(x):
    """``1 / (1 + exp(-x))`` in float64 from ``exp(-|x|)``, rounded to x's dtype."""
    x = np.asarray(x)
    wide = x.astype(np.float64)
    e = np.exp(-np.abs(wide))
    return np.where(wide >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def sigmoid_backward(dy, y):
    """``dy * (1 - y) * y`` in y's dtype, in torch's order."""
    y = np.asarray(y)
    return np.asarray(dy) * (1 - y) * y


def tanh_forward(x):
    """``tanh(x)`` in float64, rounded to x's dtype."""
    x = np.asarray(x)
    return np.tanh(x.astype(np.float64)).astype(x.dtype)


def tanh_backward(dy, y):
    """``dy * (1 - y * y)`` in y's dtype, in torch's order."""
    y = np.asarray(y)
    return np.asarray(dy) * (1 - y * y)


# ---------------------------------------------------------------- synchronized batch norm's pieces


def batchnorm_stats(x):
    """``(count, mean, m2)`` per channel: values, mean and sum of squared deviations."""
    x3 = _as_ncs(np.asarray(x)).astype(np.float64)
    count = x3.shape[0] * x3.shape[2]
    if count == 0:
        return 0, np.zeros(x3.shape[1]), np.zeros(x3.shape[1])
    mean = x3.mean(axis=(0, 2))
    m2 = ((x3 - mean[None, :, None]) ** 2).sum(axis=(0, 2))
    return count, mean, m2


def batchnorm_normalize(x, mean, invstd, weight, bias):
    """``(x - mean) * weight * invstd + bias`` per channel, in float64, rounded to x's dtype."""
    x = np.asarray(x)
    x3 = _as_ncs(x).astype(np.float64)
    channels = x3.shape[1]
    scale = _per_channel(weight, channels, 1.0) * np.asarray(invstd, np.float64)
    y = (x3 - np.asarray(mean, np.float64)[None, :, None]) * scale[None, :, None]
    y += _per_channel(bias, channels, 0.0)[None, :, None]
    return y.astype(x.dtype).reshape(x.shape)


def batchnorm_update_running(
    running_mean, running_var, mean, var, momentum, count, num_batches_tracked=None
):
    """The running statistics moved toward the batch's, in place (unbiased variance)."""
    factor = 1 / num_batches_tracked if momentum is None else momentum
    running_mean[...] = (1 - factor) * running_mean + factor * np.asarray(mean)
    running_var[...] = (1 - factor) * running_var + factor * np.asarray(var) * count / (count - 1)


def batchnorm_backward_reduce(dy, x, mean):
    """``(dy.sum, (dy * (x - mean)).sum)`` per channel, in float64."""
    x3 = _as_ncs(np.asarray(x)).astype(np.float64)
    dy3 = _as_ncs(np.asarray(dy)).astype(np.float64)
    centered = x3 - np.asarray(mean, np.float64)[None, :, None]
    return dy3.sum(axis=(0, 2)), (dy3 * centered).sum(axis=(0, 2))


def batchnorm_backward_elemt(dy, x, mean, invstd, weight, sum_dy, sum_dy_xmu, count):
    """dx of the training batch norm from per-channel sums over ``count`` values."""
    x = np.asarray(x)
    x3 = _as_ncs(x).astype(np.float64)
    dy3 = _as_ncs(np.asarray(dy)).astype(np.float64)
    channels = x3.shape[1]
    mean = np.asarray(mean, np.float64)[None, :, None]
    invstd = np.asarray(invstd, np.float64)[None, :, None]
    weight = _per_channel(weight, channels, 1.0)[None, :, None]
    mean_dy = np.asarray(sum_dy, np.float64)[None, :, None] / count
    mean_dy_xmu = np.asarray(sum_dy_xmu, np.float64)[None, :, None] / count
    dx = weight * invstd * (dy3 - mean_dy - (x3 - mean) * invstd**2 * mean_dy_xmu)
    return dx.astype(x.dtype).reshape(x.shape)
