"""Random convolution and pooling geometries against the numpy reference and torch.

Kernel size, stride, padding, dilation, groups, ceil_mode and odd input sizes are
drawn by hypothesis (derandomized in CI by tests/conftest.py). The compiled
kernels are compared with ``minidl/_reference.py``, their plain-numpy twins; the
functionals users call (conv2d, conv_transpose2d, max_pool2d, avg_pool2d) with
torch, values and gradients, when torch is installed. Only geometries both
libraries accept are drawn: a window that fits the padded input, pooling padding
at most half the kernel.
"""

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

import minidl
from minidl import _ops, _reference
from minidl.nn import functional as F

sizes = st.integers(1, 11)
kernels = st.integers(1, 5)
strides = st.integers(1, 3)
dilations = st.integers(1, 3)


def _span(kernel, dilation):
    return dilation * (kernel - 1) + 1


@st.composite
def conv_geometries(draw, max_groups=3):
    """(x shape, weight shape, stride, padding, dilation, groups) of a valid conv2d."""
    groups = draw(st.integers(1, max_groups))
    in_channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel = (draw(kernels), draw(kernels))
    dilation = (draw(dilations), draw(dilations))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    stride = (draw(strides), draw(strides))
    height, width = draw(sizes), draw(sizes)
    assume(_span(kernel[0], dilation[0]) <= height + 2 * padding[0])
    assume(_span(kernel[1], dilation[1]) <= width + 2 * padding[1])
    x_shape = (draw(st.integers(1, 3)), in_channels, height, width)
    weight_shape = (out_channels, in_channels // groups, *kernel)
    return x_shape, weight_shape, stride, padding, dilation, groups


@st.composite
def pool_geometries(draw, dilated=True):
    """(x shape, kernel, stride, padding, dilation, ceil_mode) of a valid 2-d pooling."""
    kernel = (draw(kernels), draw(kernels))
    stride = (draw(strides), draw(strides))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dilation = (draw(dilations), draw(dilations)) if dilated else (1, 1)
    ceil_mode = draw(st.booleans())
    height, width = draw(sizes), draw(sizes)
    assume(_span(kernel[0], dilation[0]) <= height + 2 * padding[0])
    assume(_span(kernel[1], dilation[1]) <= width + 2 * padding[1])
    x_shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), height, width)
    return x_shape, kernel, stride, padding, dilation, ceil_mode


def _random(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


seeds = st.integers(0, 2**16)


# ---------------------------------------------------------------- kernels and their references
@given(geometry=conv_geometries(max_groups=1), seed=seeds)
def test_im2col_and_col2im_match_the_reference(geometry, seed):
    x_shape, weight_shape, stride, padding, dilation, _ = geometry
    x = _random(x_shape, seed)
    kernel = weight_shape[2:]
    cols = _ops.im2col(x, kernel, stride, padding, dilation)
    np.testing.assert_array_equal(cols, _reference.im2col(x, kernel, stride, padding, dilation))
    folded = _ops.col2im(cols, x_shape, kernel, stride, padding, dilation)
    expected = _reference.col2im(cols, x_shape, kernel, stride, padding, dilation)
    np.testing.assert_allclose(folded, expected, rtol=1e-12, atol=1e-12)


@given(geometry=conv_geometries(max_groups=1), seed=seeds)
def test_direct_convolution_matches_the_reference(geometry, seed):
    x_shape, weight_shape, stride, padding, dilation, _ = geometry
    x, weight = _random(x_shape, seed), _random(weight_shape, seed + 1)
    bias = _random(weight_shape[:1], seed + 2)
    out = _ops.conv2d_direct_forward(x, weight, bias, stride, padding, dilation)
    expected = _reference.conv2d_direct_forward(x, weight, bias, stride, padding, dilation)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    dy = _random(out.shape, seed + 3)
    dweight = _ops.conv2d_direct_weight_grad(dy, x, weight_shape[2:], stride, padding, dilation)
    expected = _reference.conv2d_direct_weight_grad(
        dy, x, weight_shape[2:], stride, padding, dilation
    )
    np.testing.assert_allclose(dweight, expected, rtol=1e-10, atol=1e-10)


@given(geometry=pool_geometries(dilated=False), seed=seeds, count_include_pad=st.booleans())
def test_pooling_kernels_match_the_reference(geometry, seed, count_include_pad):
    x_shape, kernel, stride, padding, _, _ = geometry
    x = _random(x_shape, seed)
    out, indices = _ops.max_pool2d_forward(x, kernel, stride, padding)
    expected, expected_indices = _reference.max_pool2d_forward(x, kernel, stride, padding)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(indices, expected_indices)
    dy = _random(out.shape, seed + 1)
    np.testing.assert_allclose(
        _ops.max_pool2d_backward(dy, indices, x_shape),
        _reference.max_pool2d_backward(dy, indices, x_shape),
        rtol=1e-12,
        atol=1e-12,
    )
    if padding == (0, 0) and stride[0] >= kernel[0] and stride[1] >= kernel[1]:
        # disjoint windows: the backward that writes each cell once
        np.testing.assert_allclose(
            _ops.max_pool2d_backward(dy, indices, x_shape, kernel, stride),
            _reference.max_pool2d_backward(dy, indices, x_shape, kernel, stride),
            rtol=1e-12,
            atol=1e-12,
        )
    average = _ops.avg_pool2d_forward(x, kernel, stride, padding, count_include_pad)
    np.testing.assert_allclose(
        average,
        _reference.avg_pool2d_forward(x, kernel, stride, padding, count_include_pad),
        rtol=1e-12,
        atol=1e-12,
    )
    dy = _random(average.shape, seed + 2)
    np.testing.assert_allclose(
        _ops.avg_pool2d_backward(dy, x_shape, kernel, stride, padding, count_include_pad),
        _reference.avg_pool2d_backward(dy, x_shape, kernel, stride, padding, count_include_pad),
        rtol=1e-12,
        atol=1e-12,
    )


# ---------------------------------------------------------------- functionals against torch
def _both(array, torch):
    """The same float64 values as a minidl and a torch leaf that require grad."""
    return (
        minidl.tensor(array, requires_grad=True),
        torch.tensor(array, requires_grad=True),
    )


def _assert_same(ours, theirs, what):
    np.testing.assert_allclose(
        ours.numpy(), theirs.detach().numpy(), rtol=1e-9, atol=1e-9, err_msg=what
    )


def _check_against_torch(ours_out, theirs_out, pairs, seed):
    """Outputs equal; then, for one random upstream gradient, every input's gradient."""
    _assert_same(ours_out, theirs_out, "output")
    dy = _random(ours_out.shape, seed)
    ours_out.backward(minidl.tensor(dy))
    theirs_out.backward(__import__("torch").tensor(dy))
    for name, (ours, theirs) in pairs.items():
        _assert_same(ours.grad, theirs.grad, f"gradient of {name}")


@given(geometry=conv_geometries(), seed=seeds, same=st.booleans())
def test_conv2d_matches_torch(geometry, seed, same):
    torch = pytest.importorskip("torch")
    x_shape, weight_shape, stride, padding, dilation, groups = geometry
    if same:  # torch's "same" needs stride 1
        stride, padding = (1, 1), "same"
    pairs = {
        "input": _both(_random(x_shape, seed), torch),
        "weight": _both(_random(weight_shape, seed + 1), torch),
        "bias": _both(_random(weight_shape[:1], seed + 2), torch),
    }
    (x, tx), (w, tw), (b, tb) = pairs.values()
    ours = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    theirs = torch.nn.functional.conv2d(
        tx, tw, tb, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    _check_against_torch(ours, theirs, pairs, seed + 3)


@given(geometry=conv_geometries(), seed=seeds, extra=st.integers(0, 2))
def test_conv_transpose2d_matches_torch(geometry, seed, extra):
    torch = pytest.importorskip("torch")
    x_shape, weight_shape, stride, padding, dilation, groups = geometry
    # the transposed layout: (in, out / groups, kh, kw); output_padding < stride or dilation
    out_per_group, in_channels = weight_shape[0] // groups, x_shape[1]
    weight_shape = (in_channels, out_per_group, *weight_shape[2:])
    output_padding = tuple(min(extra, max(s, d) - 1) for s, d in zip(stride, dilation))
    pairs = {
        "input": _both(_random(x_shape, seed), torch),
        "weight": _both(_random(weight_shape, seed + 1), torch),
        "bias": _both(_random((out_per_group * groups,), seed + 2), torch),
    }
    (x, tx), (w, tw), (b, tb) = pairs.values()
    arguments = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        groups=groups,
        dilation=dilation,
    )
    out_size = [
        (size - 1) * s - 2 * p + d * (k - 1) + o + 1
        for size, s, p, d, k, o in zip(
            x_shape[2:], stride, padding, dilation, weight_shape[2:], output_padding
        )
    ]
    assume(min(out_size) >= 1)  # torch and minidl both refuse an empty output
    theirs = torch.nn.functional.conv_transpose2d(tx, tw, tb, **arguments)
    ours = F.conv_transpose2d(x, w, b, **arguments)
    _check_against_torch(ours, theirs, pairs, seed + 3)


@given(geometry=pool_geometries(), seed=seeds)
# a dilated window over padding only (rows -1 and 1 of a 1-row input): -inf, no gradient
@example(geometry=((1, 1, 1, 1), (2, 1), (1, 1), (1, 0), (2, 1), False), seed=0)
def test_max_pool2d_matches_torch(geometry, seed):
    torch = pytest.importorskip("torch")
    x_shape, kernel, stride, padding, dilation, ceil_mode = geometry
    pairs = {"input": _both(_random(x_shape, seed), torch)}
    ((x, tx),) = pairs.values()
    arguments = dict(
        kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )
    theirs = torch.nn.functional.max_pool2d(tx, **arguments)
    ours = F.max_pool2d(x, **arguments)
    _check_against_torch(ours, theirs, pairs, seed + 1)


@given(geometry=pool_geometries(dilated=False), seed=seeds, count_include_pad=st.booleans())
def test_avg_pool2d_matches_torch(geometry, seed, count_include_pad):
    torch = pytest.importorskip("torch")
    x_shape, kernel, stride, padding, _, _ = geometry  # ceil_mode: not in minidl's avg_pool2d
    pairs = {"input": _both(_random(x_shape, seed), torch)}
    ((x, tx),) = pairs.values()
    arguments = dict(
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        count_include_pad=count_include_pad,
    )
    theirs = torch.nn.functional.avg_pool2d(tx, **arguments)
    ours = F.avg_pool2d(x, **arguments)
    _check_against_torch(ours, theirs, pairs, seed + 1)
