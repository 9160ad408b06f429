"""The compiled kernels (minidl._ops) against their numpy references (minidl._reference),
against PyTorch where it is installed, over shapes, dtypes and memory layouts."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from kernel_checks import as_layout, assert_close

from minidl import _ops, _reference

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}
# Kernel and reference compute in float64 but round in different places (other
# summation orders, fused multiply-adds), so each carries an error of a few
# EPSILON * max|x|. Batch norm then subtracts the mean and divides by
# sqrt(var + eps): relative to the output, that error is amplified by the data's
# condition number max|x| / sqrt(var + eps), 1e6 for values around 1e4 with a
# standard deviation of 0.01. A fixed tolerance fails there for some seeds (6.5e-10
# against 1e-10) although the kernel is right; so the tolerance is the dtype's or
# CONDITIONED_FACTOR * EPSILON * condition, whichever is larger. The factor covers
# a handful of roundings and two summation orders over up to a few hundred values:
# over 4000 random float64 inputs shaped like bn_inputs' the largest error of y or
# dx was 5.5 EPSILON * condition (1.0 for the 1e4-offset data).
EPSILON = np.finfo(np.float64).eps
CONDITIONED_FACTOR = 32


def _close(ours, expected, dtype, what, condition=1.0):
    """Relative agreement at the dtype's tolerance, scaled by the expected magnitude.

    ``condition`` is how much the computation amplifies rounding errors in its
    inputs (see TOLERANCE); the tolerance grows with it.
    """
    tolerance = max(TOLERANCE[np.dtype(dtype).type], CONDITIONED_FACTOR * EPSILON * condition)
    assert_close(ours, expected, tolerance, what)


def _bn_condition(x, eps):
    """max |x| / sqrt(var + eps) over the channels of a batch-norm input (see TOLERANCE)."""
    x3 = np.asarray(x, dtype=np.float64).reshape(x.shape[0], x.shape[1], -1)
    spread = np.sqrt(x3.var(axis=(0, 2)) + eps)
    return float(np.max(np.abs(x3).max(axis=(0, 2)) / spread))


def _random(shape, dtype, seed, offset=0.0, spread=1.0):
    rng = np.random.default_rng(seed)
    return (offset + spread * rng.standard_normal(shape)).astype(dtype)


layouts = st.sampled_from(["c", "fortran", "strided", "reversed"])
dtypes = st.sampled_from(DTYPES)
seeds = st.integers(0, 2**16)


# ---------------------------------------------------------------- reductions

# sum_leading and sum_channels split their work by the shape alone (see the sums in
# _ops.pyx): rows into chunks of about SUM_CHUNK values, long rows into blocks of
# COLUMN_BLOCK columns, rows of at most COLUMN_BLOCK // 2 values folded into lines of
# up to COLUMN_BLOCK; segments x[a, c, :] of B >= SEGMENT_MIN or B >= 16 A values are
# summed on their own, in pieces of at most SUM_CHUNK. The constants are repeated
# here so that the shapes below land on those boundaries.
SUM_CHUNK = 16384
COLUMN_BLOCK = 256
SEGMENT_MIN = 256


def _column_chunks(cols):
    """(rows per chunk, rows per line) of the kernels' column sums of (rows, cols)."""
    fold = COLUMN_BLOCK // cols if cols <= COLUMN_BLOCK // 2 else 1
    width = fold * cols if fold > 1 else COLUMN_BLOCK
    return fold * max(1, SUM_CHUNK // width), fold


@st.composite
def leading_shapes(draw):
    """(rows, cols): small, or one to three row chunks give or take a line or a row."""
    if draw(st.booleans()):
        return draw(st.tuples(st.integers(0, 40), st.integers(0, 300)))
    cols = draw(st.one_of(st.integers(1, 300), st.sampled_from([127, 128, 129, 255, 256, 257])))
    chunk_rows, fold = _column_chunks(cols)
    rows = draw(st.integers(1, 2)) * chunk_rows
    rows += draw(st.sampled_from([-1, 0, 1, -fold, fold - 1, 3 * fold + 1, chunk_rows // 2]))
    return rows, cols


@st.composite
def channel_shapes(draw):
    """(A, C, B) for each of sum_channels' ways: columns, segments, segments in pieces."""
    way = draw(st.sampled_from(["small", "columns", "segments", "pieces"]))
    if way == "small":
        return draw(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 70)))
    if way == "columns":
        samples = draw(st.integers(2, 300))
        length = draw(st.integers(1, min(SEGMENT_MIN, 16 * samples) - 1))
        return samples, draw(st.integers(1, max(1, 4 * SUM_CHUNK // (samples * length)))), length
    if way == "segments":
        samples = draw(st.integers(1, 8))
        length = draw(
            st.one_of(
                st.integers(16 * samples, 16 * samples + 40),
                st.sampled_from([SEGMENT_MIN - 1, SEGMENT_MIN, SEGMENT_MIN + 1, 784, 3000]),
            )
        )
        return samples, draw(st.integers(1, 4 * SUM_CHUNK // (samples * length) + 1)), length
    length = draw(st.integers(1, 2)) * SUM_CHUNK + draw(st.sampled_from([-1, 0, 1, 17]))
    return draw(st.integers(1, 2)), draw(st.integers(1, 2)), length


@given(
    shape=leading_shapes(),
    dtype=dtypes,
    layout=layouts,
    seed=seeds,
    offset=st.sampled_from([0.0, 1e4]),
)
def test_sum_leading(shape, dtype, layout, seed, offset):
    x = as_layout(_random(shape, dtype, seed, offset), layout)
    ours = _ops.sum_leading(x)
    assert ours.dtype == dtype and ours.shape == (shape[1],)
    _close(ours, _reference.sum_leading(x), dtype, "sum_leading")


@given(
    shape=channel_shapes(),
    dtype=dtypes,
    layout=layouts,
    seed=seeds,
    offset=st.sampled_from([0.0, 1e4]),
)
def test_sum_channels(shape, dtype, layout, seed, offset):
    x = as_layout(_random(shape, dtype, seed, offset), layout)
    ours = _ops.sum_channels(x)
    assert ours.dtype == dtype and ours.shape == (shape[1],)
    _close(ours, _reference.sum_channels(x), dtype, "sum_channels")


@st.composite
def full_sum_shapes(draw):
    """Any rank up to 3, small, or one to three pieces of SUM_CHUNK give or take a value."""
    if draw(st.booleans()):
        return draw(st.lists(st.integers(0, 9), max_size=3).map(tuple))
    n = draw(st.integers(1, 3)) * SUM_CHUNK + draw(st.sampled_from([-1, 0, 1, 17]))
    return draw(st.sampled_from([(n,), (1, n), (n, 1)]))


@given(
    shape=full_sum_shapes(),
    dtype=dtypes,
    layout=layouts,
    seed=seeds,
    offset=st.sampled_from([0.0, 1e4]),
)
def test_sum_all(shape, dtype, layout, seed, offset):
    x = as_layout(_random(shape, dtype, seed, offset), layout)
    ours = _ops.sum_all(x)
    assert isinstance(ours, np.ndarray) and ours.dtype == dtype and ours.shape == ()
    _close(ours, _reference.sum_all(x), dtype, "sum_all")
    # the pieces and their order of sum_channels' (1, 1, size) case: the same bits
    flat = np.ascontiguousarray(x).reshape(1, 1, -1)
    if flat.size:
        assert ours.tobytes() == _ops.sum_channels(flat).tobytes()


def _with_threads(threads, fn, *args):
    before = _ops.get_num_threads()
    try:
        _ops.set_num_threads(threads)
        return fn(*args)
    finally:
        _ops.set_num_threads(before)


@given(data=st.data(), dtype=dtypes, seed=seeds)
def test_sums_same_bits_with_one_and_two_threads(data, dtype, seed):
    # the chunks, and the order their sums are added in, follow from the shape alone
    kernel = data.draw(st.sampled_from(["sum_leading", "sum_channels", "sum_all"]))
    shapes = {"sum_leading": leading_shapes, "sum_channels": channel_shapes}
    shape = data.draw(shapes.get(kernel, full_sum_shapes)())
    x = _random(shape, dtype, seed, offset=3.0)
    single = _with_threads(1, getattr(_ops, kernel), x)
    double = _with_threads(2, getattr(_ops, kernel), x)
    assert single.tobytes() == double.tobytes(), f"{kernel}{shape}: 1 and 2 threads differ"


def test_float32_sums_accumulate_in_double():
    # 2**24 + 1 is not a float32: a float32 accumulator would stall at 2**24.
    ones = np.ones((2**24 + 2, 1), dtype=np.float32)
    assert _ops.sum_leading(ones)[0] == np.float32(2**24 + 2)
    assert _ops.sum_channels(ones.reshape(1, 1, -1))[0] == np.float32(2**24 + 2)
    assert _ops.sum_all(ones) == np.float32(2**24 + 2)


@pytest.mark.parametrize(
    "kernel, shape",
    [
        ("sum_leading", (40000, 3)),  # folded lines, two chunks
        ("sum_leading", (300, 600)),  # column blocks, three chunks
        ("sum_channels", (1, 2, 70000)),  # pieces of a segment
        ("sum_channels", (5, 3, 400)),  # segments
        ("sum_channels", (300, 4, 9)),  # columns
    ],
)
def test_float32_sums_have_no_float32_partial_sum(kernel, shape):
    # Each sum is 2**25, then ones, then -2**25: a float32 addition of 2**25 and 1 is
    # 2**25, so any partial sum kept in float32 (a lane, rows added before they meet
    # the accumulators, a chunk, a piece) loses ones; in double the sum is exact.
    x = np.ones(shape, dtype=np.float32)
    first, last = ((0,), (-1,)) if len(shape) == 2 else ((0, slice(None), 0), (-1, slice(None), -1))
    x[first] = 2.0**25
    x[last] = -(2.0**25)
    expected = np.full(shape[1], x.size // shape[1] - 2, dtype=np.float32)
    np.testing.assert_array_equal(getattr(_ops, kernel)(x), expected, err_msg=kernel)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sums_propagate_nan_and_inf(dtype):
    x = np.ones((700, 300), dtype=dtype)
    x[650, 5] = np.nan
    x[3, 7] = x[600, 8] = np.inf
    x[601, 8] = x[10, 9] = -np.inf
    with np.errstate(invalid="ignore"):  # inf - inf
        expected = x.sum(axis=0, dtype=np.float64).astype(dtype)
    np.testing.assert_array_equal(_ops.sum_leading(x), expected)
    for shape in [(700, 300, 1), (1, 700, 300), (70, 10, 300), (1, 1, x.size)]:
        folded = x.reshape(shape)
        with np.errstate(invalid="ignore"):
            expected = folded.sum(axis=(0, 2), dtype=np.float64).astype(dtype)
        np.testing.assert_array_equal(_ops.sum_channels(folded), expected, err_msg=str(shape))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(_ops.sum_all(x), x.sum(dtype=np.float64).astype(dtype))


@pytest.mark.parametrize("shape", [(300, 600), (40000, 3), (5, 3, 400), (300, 4, 9), (1, 1, 70001)])
def test_float64_sums_match_torch(torch, shape):
    x = _random(shape, np.float64, 0, offset=1.0)
    if len(shape) == 2:
        ours, theirs = _ops.sum_leading(x), torch.from_numpy(x).sum(dim=0)
    else:
        ours, theirs = _ops.sum_channels(x), torch.from_numpy(x).sum(dim=(0, 2))
    _close(ours, theirs.numpy(), np.float64, f"sum of {shape}")


@given(
    rows=st.integers(0, 300),
    cols=st.integers(1, 40),
    dtype=dtypes,
    layout=layouts,
    seed=seeds,
    spread=st.sampled_from([1.0, 100.0]),
)
def test_logsumexp_rows(rows, cols, dtype, layout, seed, spread):
    x = as_layout(_random((rows, cols), dtype, seed, spread=spread), layout)
    _close(_ops.logsumexp_rows(x), _reference.logsumexp_rows(x), dtype, "logsumexp_rows")


def test_logsumexp_rows_propagates_nan():
    x = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 0.0]])
    result = _ops.logsumexp_rows(x)
    assert np.isnan(result[0]) and result[1] == _reference.logsumexp_rows(x[1:])[0]


# ---------------------------------------------------------------- softmax cross-entropy


@given(
    rows=st.integers(1, 300),
    classes=st.integers(1, 20),
    dtype=dtypes,
    layout=layouts,
    seed=seeds,
    smoothing=st.sampled_from([0.0, 0.1, 1.0]),
    spread=st.sampled_from([1.0, 30.0]),
)
def test_softmax_cross_entropy(rows, classes, dtype, layout, seed, smoothing, spread):
    logits = as_layout(_random((rows, classes), dtype, seed, spread=spread), layout)
    labels = np.random.default_rng(seed).integers(0, classes, rows)
    loss, lse = _ops.softmax_xent_forward(logits, labels, smoothing)
    expected_loss, expected_lse = _reference.softmax_xent_forward(logits, labels, smoothing)
    _close(loss, expected_loss, np.float64, "loss")
    _close(lse, expected_lse, np.float64, "lse")
    scale = np.random.default_rng(seed + 1).uniform(0.5, 2.0, rows)
    ours = _ops.softmax_xent_backward(logits, labels, lse, scale, smoothing)
    assert ours.dtype == dtype
    expected = _reference.softmax_xent_backward(logits, labels, expected_lse, scale, smoothing)
    _close(ours, expected, dtype, "softmax_xent_backward")


def test_cross_entropy_refuses_bad_labels():
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        _ops.softmax_xent_forward(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"expected labels of shape \(2,\)"):
        _ops.softmax_xent_forward(logits, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer class labels"):
        _ops.softmax_xent_forward(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="label -1 is out of range"):
        _ops.softmax_xent_backward(logits, np.array([-1, 1]), np.zeros(2), 1.0)


# ---------------------------------------------------------------- batch normalization


@st.composite
def bn_inputs(draw):
    rank = draw(st.sampled_from([2, 3, 4]))
    batch = draw(st.integers(1, 6))
    channels = draw(st.integers(1, 5))
    spatial = tuple(draw(st.lists(st.integers(1, 7), min_size=rank - 2, max_size=rank - 2)))
    shape = (batch, channels, *spatial)
    assume(batch * int(np.prod(spatial, dtype=int)) >= 2)
    dtype = draw(dtypes)
    seed = draw(seeds)
    offset, spread = draw(st.sampled_from([(0.0, 1.0), (3.0, 5.0), (1e4, 1e-2)]))
    x = as_layout(_random(shape, dtype, seed, offset, spread), draw(layouts))
    if draw(st.booleans()):
        x[:, 0] = np.asarray(offset, dtype)  # a constant channel
    affine = draw(st.booleans())
    rng = np.random.default_rng(seed + 7)
    weight = rng.uniform(0.5, 1.5, channels).astype(dtype) if affine else None
    bias = rng.standard_normal(channels).astype(dtype) if affine else None
    return x, weight, bias


@given(
    inputs=bn_inputs(),
    momentum=st.sampled_from([0.1, 0.0, 1.0, None]),
    eps=st.sampled_from([1e-5, 1e-3]),
)
def test_batchnorm_forward_train(inputs, momentum, eps):
    x, weight, bias = inputs
    channels = x.shape[1]
    rng = np.random.default_rng(0)
    running = [rng.uniform(0.5, 1.5, channels).astype(x.dtype) for _ in range(2)]
    expected_running = [r.copy() for r in running]
    ours = _ops.batchnorm_forward_train(x, weight, bias, *running, momentum, eps, 3)
    expected = _reference.batchnorm_forward_train(
        x, weight, bias, *expected_running, momentum, eps, 3
    )
    assert ours[0].dtype == x.dtype and ours[0].shape == x.shape
    condition = _bn_condition(x, eps)
    for name, a, b in zip(["y", "mean", "invstd"], ours, expected):
        _close(a, b, x.dtype if name == "y" else np.float64, name, condition)
    for name, a, b in zip(["running_mean", "running_var"], running, expected_running):
        _close(a, b, x.dtype, name, condition)


@given(inputs=bn_inputs(), eps=st.sampled_from([1e-5, 1e-3]))
def test_batchnorm_forward_eval(inputs, eps):
    x, weight, bias = inputs
    rng = np.random.default_rng(1)
    mean = rng.standard_normal(x.shape[1]).astype(x.dtype) + x.mean()
    var = rng.uniform(0.5, 2.0, x.shape[1]).astype(x.dtype)
    ours = _ops.batchnorm_forward_eval(x, weight, bias, mean, var, eps)
    expected = _reference.batchnorm_forward_eval(x, weight, bias, mean, var, eps)
    # normalized by the running variance here, not the batch's
    condition = float(np.abs(x).max(initial=0.0) / np.sqrt(var.min() + eps))
    _close(ours, expected, x.dtype, "y", condition)


@given(inputs=bn_inputs(), training=st.booleans(), layout=layouts)
def test_batchnorm_backward(inputs, training, layout):
    x, weight, _ = inputs
    dy = as_layout(_random(x.shape, x.dtype, 5), layout)
    _, mean, invstd = _reference.batchnorm_forward_train(x, None, None, None, None)
    ours = _ops.batchnorm_backward(dy, x, mean, invstd, weight, training)
    expected = _reference.batchnorm_backward(dy, x, mean, invstd, weight, training)
    assert ours[0].dtype == x.dtype
    condition = _bn_condition(x, 1e-5)  # the eps of the forward that gave mean, invstd
    for name, a, b in zip(["dx", "dweight", "dbias"], ours, expected):
        _close(a, b, x.dtype, name, condition)


@pytest.mark.parametrize("shape", [(1, 3), (1, 2, 1), (1, 4, 1, 1)])
def test_batchnorm_running_variance_needs_more_than_one_value_per_channel(shape):
    # the unbiased variance divides by M - 1; without running statistics the kernel
    # leaves the rule to nn.functional.batch_norm
    channels = shape[1]
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        _ops.batchnorm_forward_train(
            np.ones(shape), None, None, np.zeros(channels), np.ones(channels)
        )
    y, mean, _ = _ops.batchnorm_forward_train(np.ones(shape), None, None, None, None)
    assert not y.any() and (mean == 1.0).all()


def test_batchnorm_momentum_none_is_a_cumulative_average():
    running_mean, running_var = np.zeros(1), np.ones(1)
    batches = [np.array([[1.0], [3.0]]), np.array([[5.0], [9.0]])]
    for count, batch in enumerate(batches, start=1):
        _ops.batchnorm_forward_train(
            batch, None, None, running_mean, running_var, None, 1e-5, count
        )
    np.testing.assert_allclose(running_mean, [(2.0 + 7.0) / 2])
    np.testing.assert_allclose(running_var, [(2.0 + 8.0) / 2])  # unbiased variances
    with pytest.raises(ValueError, match="num_batches_tracked >= 1"):
        _ops.batchnorm_forward_train(batches[0], None, None, running_mean, running_var, None)


@pytest.mark.parametrize("buffer_dtype", [np.float32, np.float64, np.float16, "mixed"])
@pytest.mark.parametrize("momentum", [0.1, 0.37, None])
def test_batchnorm_running_update_is_numpys(buffer_dtype, momentum):
    # the kernel updates the running statistics in a typed loop, as numpy's
    # ``running *= 1 - factor; running += factor * statistic`` to the last bits
    # (multiply in the buffer's dtype, add in double). Integers, 32 per channel: the
    # batch mean and variance are exact whatever the order of sums
    rng = np.random.default_rng(21)
    x = rng.integers(-8, 9, (8, 5, 2, 2)).astype(np.float32)
    dtypes = (np.float32, np.float64) if buffer_dtype == "mixed" else (buffer_dtype,) * 2
    running = [rng.standard_normal(5).astype(dtypes[0]), rng.uniform(0.5, 2, 5).astype(dtypes[1])]
    expected = [buffer.copy() for buffer in running]
    _ops.batchnorm_forward_train(x, None, None, *running, momentum, 1e-5, 3)
    factor = 1.0 / 3 if momentum is None else momentum
    exact = x.astype(np.float64)
    # the unbiased variance as the kernels make it: the biased one times M / (M - 1)
    statistics = [exact.mean(axis=(0, 2, 3)), exact.var(axis=(0, 2, 3)) * (32 / 31)]
    for buffer, statistic in zip(expected, statistics):
        buffer *= 1.0 - factor
        buffer += factor * statistic
    for a, b in zip(running, expected):
        assert a.dtype == b.dtype
        # float16 buffers are updated through float64 copies: within float16 rounding
        np.testing.assert_allclose(a, b, rtol=2 * np.finfo(a.dtype).eps, atol=0)


def test_batchnorm_checks_its_inputs():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"expected weight of shape \(3,\), got \(2,\)"):
        _ops.batchnorm_forward_train(x, np.ones(2), None, None, None)
    with pytest.raises(ValueError, match="running_mean must be a contiguous float array"):
        _ops.batchnorm_forward_train(x, None, None, np.ones(4), np.ones(3))
    with pytest.raises(TypeError, match="running_var must be a numpy array"):
        _ops.batchnorm_forward_train(x, None, None, np.ones(3), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="with 2 or 3 or 4 or 5 dims, got shape"):
        _ops.batchnorm_forward_train(np.ones(4), None, None, None, None)
    with pytest.raises(ValueError, match="dy has shape"):
        _ops.batchnorm_backward(np.ones((4, 2)), x, np.zeros(3), np.ones(3), None)
    with pytest.raises(TypeError, match="expected dy of dtype float64, got float32"):
        _ops.batchnorm_backward(np.ones((4, 3), np.float32), x, np.zeros(3), np.ones(3), None)
    with pytest.raises(ValueError, match="running_mean is required"):
        _ops.batchnorm_forward_eval(x, None, None, None, np.ones(3))


# ---------------------------------------------------------------- im2col / col2im


@st.composite
def window_cases(draw, dilation=True, pool=False):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    if pool:
        ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    else:
        ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    dh, dw = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    # small inputs: the kernel may be larger than the unpadded input
    min_h = max(1, dh * (kh - 1) + 1 - 2 * ph)
    min_w = max(1, dw * (kw - 1) + 1 - 2 * pw)
    h = draw(st.integers(min_h, max(min_h, 9)))
    w = draw(st.integers(min_w, max(min_w, 9)))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    dtype = draw(dtypes)
    x = as_layout(_random((n, c, h, w), dtype, draw(seeds)), draw(layouts))
    return x, (kh, kw), (sh, sw), (ph, pw), (dh, dw)


@given(case=window_cases())
def test_im2col_and_col2im(case):
    x, kernel, stride, padding, dilation = case
    cols = _ops.im2col(x, kernel, stride, padding, dilation)
    np.testing.assert_array_equal(cols, _reference.im2col(x, kernel, stride, padding, dilation))
    grad = _random(cols.shape, x.dtype, 3)
    ours = _ops.col2im(grad, x.shape, kernel, stride, padding, dilation)
    expected = _reference.col2im(grad, x.shape, kernel, stride, padding, dilation)
    _close(ours, expected, x.dtype, "col2im")


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    cols = _ops.im2col(x, (3, 2), (2, 1), (1, 2), (1, 2))
    g = rng.standard_normal(cols.shape)
    back = _ops.col2im(g, x.shape, (3, 2), (2, 1), (1, 2), (1, 2))
    assert np.isclose(np.sum(cols * g), np.sum(x * back), rtol=1e-12)


def test_window_errors():
    with pytest.raises(ValueError, match=r"im2col: the window \(5, 5\).*does not fit"):
        _ops.im2col(np.ones((1, 1, 3, 3)), 5)
    with pytest.raises(ValueError, match="must be positive"):
        _ops.im2col(np.ones((1, 1, 3, 3)), 2, stride=0)
    with pytest.raises(ValueError, match="at most half the kernel size"):
        _ops.max_pool2d_forward(np.ones((1, 1, 4, 4)), 2, padding=2)
    with pytest.raises(ValueError, match=r"col2im: expected cols of shape \(4, 1, 4\)"):
        _ops.col2im(np.ones((4, 1, 5)), (1, 1, 3, 3), 2, stride=1)


# ---------------------------------------------------------------- pooling


def _with_specials(x, seed):
    """``x`` rounded to a few integers (many ties) with NaN, -0.0, +-inf sprinkled in."""
    rng = np.random.default_rng(seed)
    out = np.round(x)
    draw = rng.random(x.shape)
    out[draw < 0.06] = np.nan
    out[(draw >= 0.06) & (draw < 0.16)] = -0.0
    out[(draw >= 0.16) & (draw < 0.19)] = np.inf
    out[(draw >= 0.19) & (draw < 0.22)] = -np.inf
    return out


def _assert_same_bits(ours, expected, what):
    """Equal values, NaN where NaN, and the same sign of every zero."""
    np.testing.assert_array_equal(ours, expected, err_msg=what)
    assert np.array_equal(np.signbit(ours), np.signbit(expected)), f"{what}: sign of zero differs"


@given(
    case=window_cases(dilation=False, pool=True),
    stride_none=st.booleans(),
    specials=st.booleans(),
    relu=st.booleans(),
)
def test_max_pool(case, stride_none, specials, relu):
    x, kernel, stride, padding, _ = case
    if specials:
        x = _with_specials(x, 5)
    stride = None if stride_none else stride
    out, indices = _ops.max_pool2d_forward(x, kernel, stride, padding, relu=relu)
    expected_out, expected_indices = _reference.max_pool2d_forward(
        x, kernel, stride, padding, relu=relu
    )
    _assert_same_bits(out, expected_out, "max_pool2d_forward")
    np.testing.assert_array_equal(indices, expected_indices)
    grad = _random(out.shape, x.dtype, 4)
    grad[::2] = -0.0  # +0.0 at the maximum (0 + -0.0), as the zero-filled scatter gives
    expected = _reference.max_pool2d_backward(grad, indices, x.shape)
    _assert_same_bits(_ops.max_pool2d_backward(grad, indices, x.shape), expected, "scatter")
    if padding == (0, 0):
        # the geometry given: written once per cell where the windows are disjoint
        ours = _ops.max_pool2d_backward(grad, indices, x.shape, kernel, stride)
        _assert_same_bits(ours, expected, "max_pool2d_backward with the geometry")


@pytest.mark.parametrize("kernel", [2, 3])
def test_max_pool_2x2_and_general_kernels_agree(kernel):
    # 2x2 stride 2 has its own kernel: the same rule as the general one (first maximum,
    # last NaN), checked on windows full of ties and NaNs
    x = _with_specials(_random((3, 5, 12, 13), np.float64, 7), 8)
    out, indices = _ops.max_pool2d_forward(x, kernel)
    expected_out, expected_indices = _reference.max_pool2d_forward(x, kernel)
    _assert_same_bits(out, expected_out, "max_pool2d_forward")
    np.testing.assert_array_equal(indices, expected_indices)


def test_max_pool_keeps_the_first_maximum_of_a_tie_and_the_last_nan():
    x = np.ones((1, 1, 2, 2))
    out, indices = _ops.max_pool2d_forward(x, 2)
    assert indices.item() == 0 and out.item() == 1.0
    for window, last_nan in [([np.nan, 1, np.nan, 2], 2), ([1, np.nan, 3, np.nan], 3)]:
        x = np.array(window).reshape(1, 1, 2, 2)
        for kernel, stride, padding in [(2, 2, 0), (2, 1, 0), (3, 2, 1)]:
            out, indices = _ops.max_pool2d_forward(x, kernel, stride, padding)
            assert np.isnan(out[0, 0, 0, 0]) and indices[0, 0, 0, 0] == last_nan, (window, kernel)


def test_max_pool_relu_flag_is_pool_of_relu():
    # max_pool(relu(x)) where the maximum is not positive: relu of the window's first cell
    x = np.array([-1.0, -0.0, -2.0, -3.0, -0.0, -1.0, 0.0, -0.0]).reshape(1, 2, 2, 2)
    out, _ = _ops.max_pool2d_forward(x, 2, relu=True)
    assert out.ravel().tolist() == [0.0, 0.0]
    assert np.signbit(out.ravel()).tolist() == [False, True]


def test_max_pool_backward_without_zero_fill_checks_the_indices():
    x = _random((2, 3, 7, 9), np.float32, 1)
    out, indices = _ops.max_pool2d_forward(x, 2, 3)
    moved = indices.copy()
    moved[1, 2, 0, 1] += 1  # the window (0, 1) covers columns 3 and 4: now column 5
    with pytest.raises(ValueError, match="1 of 36 indices are not in their own window"):
        _ops.max_pool2d_backward(out, moved, x.shape, 2, 3)
    dx = _ops.max_pool2d_backward(out, indices, x.shape, 2, 3)
    # the gaps between windows (columns 2, 5, 8; rows 2, 5) and row 6 past them are zeros
    assert not dx[:, :, :, 2::3].any() and not dx[:, :, 2::3].any() and not dx[:, :, 6].any()
    _assert_same_bits(dx, _reference.max_pool2d_backward(out, indices, x.shape), "gaps")


@given(case=window_cases(dilation=False, pool=True), count_include_pad=st.booleans())
def test_avg_pool(case, count_include_pad):
    x, kernel, stride, padding, _ = case
    out = _ops.avg_pool2d_forward(x, kernel, stride, padding, count_include_pad)
    expected = _reference.avg_pool2d_forward(x, kernel, stride, padding, count_include_pad)
    _close(out, expected, x.dtype, "avg_pool2d_forward")
    grad = _random(out.shape, x.dtype, 4)
    ours = _ops.avg_pool2d_backward(grad, x.shape, kernel, stride, padding, count_include_pad)
    expected = _reference.avg_pool2d_backward(
        grad, x.shape, kernel, stride, padding, count_include_pad
    )
    _close(ours, expected, x.dtype, "avg_pool2d_backward")


# ---------------------------------------------------------------- dtypes, ranks, threads

CALLS = {
    "sum_leading": lambda x: _ops.sum_leading(x),
    "sum_channels": lambda x: _ops.sum_channels(x),
    "sum_all": lambda x: _ops.sum_all(x),
    "logsumexp_rows": lambda x: _ops.logsumexp_rows(x),
    "softmax_xent_forward": lambda x: _ops.softmax_xent_forward(x, np.zeros(len(x), int)),
    "batchnorm_forward_train": lambda x: _ops.batchnorm_forward_train(x, None, None, None, None),
    "batchnorm_forward_eval": lambda x: _ops.batchnorm_forward_eval(
        x, None, None, np.zeros(x.shape[1]), np.ones(x.shape[1])
    ),
    "im2col": lambda x: _ops.im2col(x, 2),
    "max_pool2d_forward": lambda x: _ops.max_pool2d_forward(x, 2),
    "avg_pool2d_forward": lambda x: _ops.avg_pool2d_forward(x, 2),
}
RANK = {"sum_channels": 3, "im2col": 4, "max_pool2d_forward": 4, "avg_pool2d_forward": 4}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.int64, bool, np.complex64])
def test_refuses_other_dtypes_with_a_message(name, dtype):
    x = np.ones((4,) * RANK.get(name, 2), dtype=dtype)
    with pytest.raises(TypeError, match=rf"{name}: expected .*float32 or float64 array"):
        CALLS[name](x)


@pytest.mark.parametrize("name", sorted(set(CALLS) - {"sum_all"}))  # sum_all takes any rank
def test_refuses_the_wrong_rank_with_a_message(name):
    with pytest.raises(ValueError, match=rf"{name}: expected .* dims, got shape"):
        CALLS[name](np.ones((2,) * 6))


def _all_kernels(dtype):
    """Every kernel on inputs large enough to be split across threads; all results."""
    rng = np.random.default_rng(3)
    big = rng.standard_normal((16, 12, 30, 31)).astype(dtype)
    rows = rng.standard_normal((700, 300)).astype(dtype)
    labels = rng.integers(0, 300, 700)
    results = [
        _ops.sum_leading(rows),
        _ops.sum_channels(big.reshape(16, 12, -1)),
        _ops.sum_all(big),
        _ops.logsumexp_rows(rows),
    ]
    loss, lse = _ops.softmax_xent_forward(rows, labels, 0.1)
    results += [np.array(loss), lse, _ops.softmax_xent_backward(rows, labels, lse, 0.5, 0.1)]
    for x in (big, rows[:, :20]):
        channels = x.shape[1]
        run = [np.zeros(channels, dtype), np.ones(channels, dtype)]
        y, mean, invstd = _ops.batchnorm_forward_train(x, None, None, *run)
        results += [y, mean, invstd, *run]
        results += list(_ops.batchnorm_backward(y, x, mean, invstd, None, True))
        results.append(_ops.batchnorm_forward_eval(x, None, None, *run))
    cols = _ops.im2col(big, 3, 2, 1, 2)
    results += [cols, _ops.col2im(cols, big.shape, 3, 2, 1, 2)]
    out, indices = _ops.max_pool2d_forward(big, 3, 2, 1)
    results += [out, indices, _ops.max_pool2d_backward(out, indices, big.shape)]
    for relu in (False, True):
        out, indices = _ops.max_pool2d_forward(big, 2, relu=relu)
        results += [out, indices, _ops.max_pool2d_backward(out, indices, big.shape, 2)]
    avg = _ops.avg_pool2d_forward(big, 3, 2, 1)
    results += [avg, _ops.avg_pool2d_backward(avg, big.shape, 3, 2, 1)]
    return results


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bits_with_one_and_two_threads(dtype):
    before = _ops.get_num_threads()
    try:
        _ops.set_num_threads(1)
        single = _all_kernels(dtype)
        _ops.set_num_threads(2)
        double = _all_kernels(dtype)
    finally:
        _ops.set_num_threads(before)
    for i, (a, b) in enumerate(zip(single, double)):
        assert a.tobytes() == b.tobytes(), f"result {i} differs between 1 and 2 threads"


FORKED_CHILDREN = textwrap.dedent(
    """
    import multiprocessing
    import numpy as np
    from minidl import _ops

    def work(seed):
        x = np.random.default_rng(seed).standard_normal((64, 32, 28, 28)).astype(np.float32)
        return float(_ops.batchnorm_forward_train(x, None, None, None, None)[1][0])

    def one_thread():
        _ops.set_num_threads(1)

    if __name__ == "__main__":
        _ops.set_num_threads(2)
        work(0)  # the parent starts libgomp's worker threads
        pool = multiprocessing.get_context("fork").Pool(2, initializer=one_thread)
        print(len(pool.map_async(work, [1, 2, 3, 4]).get(timeout=30)))
        pool.close()
        pool.join()
    """
)


@pytest.mark.skipif(not _ops.openmp_enabled() or os.name != "posix", reason="OpenMP and fork")
def test_forked_children_with_one_thread_do_not_hang(tmp_path):
    # libgomp's thread pool does not survive fork: a child that starts worker threads
    # waits for them forever. With one thread the kernels start none.
    script = tmp_path / "forked.py"
    script.write_text(FORKED_CHILDREN)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0 and result.stdout.strip() == "4", result.stderr


def test_thread_count_must_be_positive():
    with pytest.raises(ValueError, match="positive thread count"):
        _ops.set_num_threads(0)


def test_read_only_input_is_accepted():
    x = np.ones((4, 3))
    x.setflags(write=False)
    np.testing.assert_array_equal(_ops.sum_leading(x), [4.0, 4.0, 4.0])
    y, _, _ = _ops.batchnorm_forward_train(x, None, None, None, None)
    assert y.shape == (4, 3)


# ---------------------------------------------------------------- against PyTorch


@pytest.mark.parametrize("shape", [(8, 5), (6, 3, 7), (4, 3, 5, 6)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_matches_torch(torch, shape, momentum):
    rng = np.random.default_rng(0)
    channels = shape[1]
    weight, bias = rng.uniform(0.5, 1.5, channels), rng.standard_normal(channels)
    running = [np.zeros(channels), np.ones(channels)]
    module_class = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    module = module_class(channels, momentum=momentum).double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor(weight))
        module.bias.copy_(torch.tensor(bias))
    for step in range(1, 4):
        x = rng.standard_normal(shape) * 2 + 1
        dy = rng.standard_normal(shape)
        y, mean, invstd = _ops.batchnorm_forward_train(
            x, weight, bias, *running, momentum, 1e-5, step
        )
        dx, dweight, dbias = _ops.batchnorm_backward(dy, x, mean, invstd, weight)
        tx = torch.tensor(x, requires_grad=True)
        module.zero_grad()
        ty = module(tx)
        ty.backward(torch.tensor(dy))
        pairs = {
            "y": (y, ty),
            "dx": (dx, tx.grad),
            "dweight": (dweight, module.weight.grad),
            "dbias": (dbias, module.bias.grad),
            "running_mean": (running[0], module.running_mean),
            "running_var": (running[1], module.running_var),
        }
        for name, (ours, theirs) in pairs.items():
            np.testing.assert_allclose(
                ours,
                theirs.detach().numpy(),
                rtol=1e-10,
                atol=1e-12,
                err_msg=f"{name}, step {step}",
            )


def test_batchnorm_eval_matches_torch(torch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 5, 5))
    weight, bias = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(weight, requires_grad=True)
    ty = torch.nn.functional.batch_norm(
        tx, torch.tensor(mean), torch.tensor(var), tw, torch.tensor(bias), training=False
    )
    y = _ops.batchnorm_forward_eval(x, weight, bias, mean, var, 1e-5)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(x.shape)
    ty.backward(torch.tensor(dy))
    dx, dweight, _ = _ops.batchnorm_backward(dy, x, mean, 1 / np.sqrt(var + 1e-5), weight, False)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dweight, tw.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"),
    [(3, 1, 1, 1), ((3, 2), (2, 1), (0, 2), 1), (2, 3, 0, 1), (3, 2, 2, 2)],
)
def test_conv2d_through_im2col_matches_torch(torch, kernel, stride, padding, dilation):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 8, 7))
    kh, kw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    weight = rng.standard_normal((4, 3, kh, kw))
    cols = _ops.im2col(x, kernel, stride, padding, dilation)
    assert cols.shape[:2] == (3 * kh * kw, 2)
    out = (weight.reshape(4, -1) @ cols.reshape(cols.shape[0], -1)).reshape(4, 2, -1)
    out = out.transpose(1, 0, 2)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.conv2d(
        tx, torch.tensor(weight), stride=stride, padding=padding, dilation=dilation
    )
    np.testing.assert_allclose(out.reshape(ty.shape), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    dy = rng.standard_normal(ty.shape)
    ty.backward(torch.tensor(dy))
    dcols = weight.reshape(4, -1).T @ dy.reshape(2, 4, -1).transpose(1, 0, 2).reshape(4, -1)
    dx = _ops.col2im(dcols.reshape(cols.shape), x.shape, kernel, stride, padding, dilation)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(2, None, 0), (3, 2, 1), ((3, 2), 1, (1, 0)), (2, 3, 1)]
)
def test_pooling_matches_torch(torch, kernel, stride, padding):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 8))
    for data in (x, _with_specials(x, 9)):  # ties, several NaNs per window, -0.0, +-inf
        tx = torch.tensor(data, requires_grad=True)
        ty, t_indices = torch.nn.functional.max_pool2d(
            tx, kernel, stride, padding, return_indices=True
        )
        out, indices = _ops.max_pool2d_forward(data, kernel, stride, padding)
        _assert_same_bits(out, ty.detach().numpy(), "max_pool2d_forward")
        np.testing.assert_array_equal(indices, t_indices.numpy())
        dy = rng.standard_normal(out.shape)
        ty.backward(torch.tensor(dy))
        dx = _ops.max_pool2d_backward(dy, indices, x.shape)
        np.testing.assert_array_equal(dx, tx.grad.numpy())
        if padding == 0 and (stride or kernel) >= kernel:
            dx = _ops.max_pool2d_backward(dy, indices, x.shape, kernel, stride)
            np.testing.assert_array_equal(dx, tx.grad.numpy())
    for include in (True, False):
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.avg_pool2d(tx, kernel, stride, padding, count_include_pad=include)
        out = _ops.avg_pool2d_forward(x, kernel, stride, padding, include)
        np.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        dy = rng.standard_normal(out.shape)
        ty.backward(torch.tensor(dy))
        dx = _ops.avg_pool2d_backward(dy, x.shape, kernel, stride, padding, include)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_matches_torch(torch, smoothing):
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((7, 5)) * 3
    labels = rng.integers(0, 5, 7)
    tl = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(tl, torch.tensor(labels), label_smoothing=smoothing)
    loss_t.backward()
    loss, lse = _ops.softmax_xent_forward(logits, labels, smoothing)
    assert abs(loss - loss_t.item()) <= 1e-12 * abs(loss)
    grad = _ops.softmax_xent_backward(logits, labels, lse, 1 / 7, smoothing)
    np.testing.assert_allclose(grad, tl.grad.numpy(), rtol=1e-10, atol=1e-12)
