"""The convolution kernels of minidl._ops (direct convolution, the threaded layout swap,
im2col/col2im's fast paths) against their numpy references and against torch."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_checks import as_layout, with_one_and_two_threads
from test_ops import _close, _random, dtypes, layouts, seeds

import minidl
import minidl.nn.functional as F
from minidl import _ops, _reference
from minidl.nn import functional as functional_module


@st.composite
def conv_cases(draw, max_channels=4):
    """x, weight, bias (or None), stride, padding, dilation of a one-group convolution."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    min_h = max(1, dilation[0] * (kh - 1) + 1 - 2 * padding[0])
    min_w = max(1, dilation[1] * (kw - 1) + 1 - 2 * padding[1])
    h = draw(st.integers(min_h, min_h + 12))
    w = draw(st.integers(min_w, min_w + 20))
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, max_channels)), draw(st.integers(1, 5))
    dtype = draw(dtypes)
    seed = draw(seeds)
    x = as_layout(_random((n, c, h, w), dtype, seed), draw(layouts))
    weight = as_layout(_random((o, c, kh, kw), dtype, seed + 1), draw(layouts))
    bias = _random(o, dtype, seed + 2) if draw(st.booleans()) else None
    return x, weight, bias, stride, padding, dilation


@given(case=conv_cases())
def test_conv2d_direct_forward_matches_the_reference(case):
    x, weight, bias, stride, padding, dilation = case
    out = _ops.conv2d_direct_forward(x, weight, bias, stride, padding, dilation)
    expected = _reference.conv2d_direct_forward(x, weight, bias, stride, padding, dilation)
    assert out.shape == expected.shape and out.dtype == x.dtype
    _close(out, expected, x.dtype, "conv2d_direct_forward")


@given(case=conv_cases(), seed=seeds, layout=layouts)
def test_conv2d_direct_weight_grad_matches_the_reference(case, seed, layout):
    x, weight, _, stride, padding, dilation = case
    out_shape = _reference.conv2d_direct_forward(x, weight, None, stride, padding, dilation).shape
    dy = as_layout(_random(out_shape, x.dtype, seed), layout)
    kernel = weight.shape[2:]
    ours = _ops.conv2d_direct_weight_grad(dy, x, kernel, stride, padding, dilation)
    expected = _reference.conv2d_direct_weight_grad(dy, x, kernel, stride, padding, dilation)
    assert ours.shape == weight.shape and ours.dtype == x.dtype
    # a sum over N * OH * OW products: the tolerance scales with the sum of magnitudes
    magnitude = _reference.conv2d_direct_weight_grad(
        np.abs(dy), np.abs(x), kernel, stride, padding, dilation
    )
    scale = max(1.0, float(magnitude.max()))
    _close(ours / scale, expected / scale, x.dtype, "conv2d_direct_weight_grad")


@given(
    shape=st.tuples(st.integers(0, 5), st.integers(0, 6), st.integers(0, 40)),
    with_bias=st.booleans(),
    dtype=dtypes,
    seed=seeds,
    layout=layouts,
)
def test_swap_leading_axes_is_a_transpose_bit_for_bit(shape, with_bias, dtype, seed, layout):
    x = _random(shape, dtype, seed)
    if x.size:
        x.flat[::7] = np.nan
        x.flat[3::11] = np.inf
        x.flat[5::13] = -0.0
    x = as_layout(x, layout)
    bias = _random(shape[0], dtype, seed + 1) if with_bias else None
    ours = _ops.swap_leading_axes(x, bias)
    expected = _reference.swap_leading_axes(x, bias)
    assert ours.flags.c_contiguous and ours.dtype == dtype and ours.shape == expected.shape
    assert ours.tobytes() == expected.tobytes(), "swap_leading_axes differs from the transpose"
    if with_bias:
        # the float sum numpy computes in x's dtype: one rounding from double is the same
        numpy_sum = x.transpose(1, 0, 2) + bias[None, :, None]
        assert ours.tobytes() == np.ascontiguousarray(numpy_sum).tobytes()


@given(case=conv_cases(max_channels=2))
def test_direct_kernels_propagate_nan_and_inf_like_the_reference(case):
    x, weight, bias, stride, padding, dilation = case
    x = np.array(x)
    x.flat[::5] = np.nan
    x.flat[2::9] = np.inf
    out = _ops.conv2d_direct_forward(x, weight, bias, stride, padding, dilation)
    expected = _reference.conv2d_direct_forward(x, weight, bias, stride, padding, dilation)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(expected))
    dy = np.ones(out.shape, x.dtype)
    dweight = _ops.conv2d_direct_weight_grad(dy, x, weight.shape[2:], stride, padding, dilation)
    expected = _reference.conv2d_direct_weight_grad(
        dy, x, weight.shape[2:], stride, padding, dilation
    )
    np.testing.assert_array_equal(np.isnan(dweight), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(dweight), np.isinf(expected))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_kernels_on_empty_and_all_padding_inputs(dtype):
    weight = np.ones((2, 3, 3, 3), dtype)
    bias = np.array([1.0, -2.0], dtype)
    for x in (np.ones((0, 3, 4, 4), dtype), np.ones((2, 3, 0, 4), dtype)):
        out = _ops.conv2d_direct_forward(x, weight, bias, padding=2)
        expected = _reference.conv2d_direct_forward(x, weight, bias, padding=2)
        assert out.shape == expected.shape
        np.testing.assert_array_equal(out, expected)
        dy = np.ones(out.shape, dtype)
        dweight = _ops.conv2d_direct_weight_grad(dy, x, 3, padding=2)
        np.testing.assert_array_equal(dweight, np.zeros(weight.shape, dtype))
        assert dweight.dtype == dtype
    # an infinite weight times the zero padding is NaN, as the matrix product gives
    weight[0, 0, 0, 0] = np.inf
    out = _ops.conv2d_direct_forward(np.ones((1, 3, 0, 2), dtype), weight, None, padding=2)
    assert np.isnan(out[0, 0]).all() and (out[0, 1] == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convolution_kernels_give_the_same_bits_with_one_and_two_threads(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 3, 29, 30)).astype(dtype)
    wide = rng.standard_normal((6, 10, 14, 15)).astype(dtype)
    weight = rng.standard_normal((16, 3, 3, 3)).astype(dtype)
    bias = rng.standard_normal(16).astype(dtype)
    product = rng.standard_normal((64, 33, 70)).astype(dtype)

    def run():
        out = _ops.conv2d_direct_forward(x, weight, bias, 1, 1, 1)
        strided = _ops.conv2d_direct_forward(x, weight, None, (2, 1), (0, 2), (1, 2))
        cols = _ops.im2col(wide, 3, 1, 1, 1)
        return [
            out,
            strided,
            _ops.conv2d_direct_weight_grad(out, x, 3, 1, 1, 1),
            _ops.conv2d_direct_weight_grad(strided, x, 3, (2, 1), (0, 2), (1, 2)),
            cols,
            _ops.col2im(cols, wide.shape, 3, 1, 1, 1),
            _ops.swap_leading_axes(product),
            _ops.swap_leading_axes(product, product[:, 0, 0]),
        ]

    single, double = with_one_and_two_threads(run)
    for i, (a, b) in enumerate(zip(single, double)):
        assert a.tobytes() == b.tobytes(), f"result {i} differs between 1 and 2 threads"


@given(case=conv_cases())
def test_im2col_and_col2im_at_stride_one_match_the_reference(case):
    # conv_cases draws wider inputs than test_ops' window cases: long contiguous rows
    x, weight, _, _, padding, dilation = case
    kernel = weight.shape[2:]
    cols = _ops.im2col(x, kernel, 1, padding, dilation)
    np.testing.assert_array_equal(cols, _reference.im2col(x, kernel, 1, padding, dilation))
    grad = _random(cols.shape, x.dtype, 7)
    ours = _ops.col2im(grad, x.shape, kernel, 1, padding, dilation)
    expected = _reference.col2im(grad, x.shape, kernel, 1, padding, dilation)
    _close(ours, expected, x.dtype, "col2im")


# ---------------------------------------------------------------- through F.conv2d, against torch

# (in channels, kernel, stride, padding, dilation, groups): small C * kh * kw runs the
# direct kernels, the rest im2col and matrix products
TORCH_CASES = [
    (1, 3, 1, 1, 1, 1),
    (3, 3, 1, 1, 1, 1),
    (3, (3, 2), (2, 1), (0, 2), (1, 2), 1),
    (2, 2, 1, "same", 1, 1),
    (4, 3, 1, 1, 1, 1),
    (6, 3, 2, 1, 2, 1),
    (6, 3, 1, "same", 1, 3),
    (4, 4, 1, "same", 2, 2),
    (8, 1, 1, 0, 1, 1),
]


@pytest.mark.parametrize(
    ("channels", "kernel", "stride", "padding", "dilation", "groups"), TORCH_CASES
)
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv2d_matches_torch_with_gradients(
    torch, channels, kernel, stride, padding, dilation, groups, with_bias
):
    rng = np.random.default_rng(11)
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    x = rng.standard_normal((3, channels, 9, 8))
    weight = rng.standard_normal((6, channels // groups, kh, kw))
    bias = rng.standard_normal(6) if with_bias else None
    tensors = [minidl.tensor(a, requires_grad=True) for a in (x, weight)]
    tbias = minidl.tensor(bias, requires_grad=True) if with_bias else None
    out = F.conv2d(*tensors, tbias, stride, padding, dilation, groups)
    torch_inputs = [torch.tensor(a, requires_grad=True) for a in (x, weight)]
    torch_bias = torch.tensor(bias, requires_grad=True) if with_bias else None
    expected = torch.nn.functional.conv2d(
        *torch_inputs, torch_bias, stride, padding, dilation, groups
    )
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal(expected.shape)
    out.backward(minidl.tensor(dy))
    expected.backward(torch.tensor(dy))
    pairs = list(zip(tensors, torch_inputs)) + ([(tbias, torch_bias)] if with_bias else [])
    for name, (ours, theirs) in zip(("dx", "dweight", "dbias"), pairs):
        np.testing.assert_allclose(
            ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=name
        )


def test_the_first_layer_runs_the_direct_kernels():
    # the example CNN's first convolution (K = 9): output and weight gradient come
    # from the direct kernels, bit for bit
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 1, 12, 12)).astype(np.float32)
    weight = minidl.tensor(rng.standard_normal((8, 1, 3, 3)).astype(np.float32), requires_grad=True)
    assert 9 <= functional_module._DIRECT_MAX_TAPS
    out = F.conv2d(minidl.tensor(x), weight, padding=1)
    np.testing.assert_array_equal(
        out.numpy(), _ops.conv2d_direct_forward(x, weight.numpy(), None, 1, 1)
    )
    dy = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(minidl.tensor(dy))
    np.testing.assert_array_equal(
        weight.grad.numpy(), _ops.conv2d_direct_weight_grad(dy, x, 3, 1, 1)
    )


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "groups"), [(2, 1, 1, 1), (1, 0, 0, 2)]
)
def test_conv_transpose2d_matches_torch_with_gradients(
    torch, stride, padding, output_padding, groups
):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 4, 5, 6))
    weight = rng.standard_normal((4, 6 // groups, 3, 3))
    bias = rng.standard_normal(6)
    ours = [minidl.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    out = F.conv_transpose2d(*ours, stride, padding, output_padding, groups)
    expected = torch.nn.functional.conv_transpose2d(
        *theirs, stride, padding, output_padding, groups
    )
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal(expected.shape)
    out.backward(minidl.tensor(dy))
    expected.backward(torch.tensor(dy))
    for name, a, b in zip(("dx", "dweight", "dbias"), ours, theirs):
        np.testing.assert_allclose(
            a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=name
        )


@pytest.mark.parametrize("channels", [1, 8])
def test_mixed_dtypes_are_refused_as_torch_refuses_them(channels):
    # a float32 input with a float64 weight: torch raises a RuntimeError instead of
    # promoting, on the direct and the im2col path alike; minidl names conv2d
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, channels, 6, 6)).astype(np.float32)
    weight = rng.standard_normal((3, channels, 3, 3))
    with pytest.raises(RuntimeError, match=r"conv2d: .* got input float32 and weight float64"):
        F.conv2d(minidl.tensor(x), minidl.tensor(weight), padding=1)
    out = F.conv2d(minidl.tensor(x.astype(np.float64)), minidl.tensor(weight), padding=1)
    expected = _reference.conv2d_direct_forward(x.astype(np.float64), weight, None, 1, 1)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)
