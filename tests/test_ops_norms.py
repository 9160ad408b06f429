"""Group, instance and layer norm kernels (minidl._ops) against their numpy twins
(minidl._reference), over shapes, dtypes, memory layouts and thread counts."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_checks import as_layout
from test_ops import _close, _random, dtypes, layouts, seeds

from minidl import _ops, _reference


def _group_condition(x, groups, eps):
    """max |x| / sqrt(var + eps) over the groups (how much rounding errors are amplified)."""
    if x.size == 0:
        return 1.0
    grouped = np.asarray(x, dtype=np.float64).reshape(x.shape[0], groups, -1)
    spread = np.sqrt(grouped.var(axis=2) + eps)
    return float(np.max(np.abs(grouped).max(axis=2) / spread))


@st.composite
def group_inputs(draw, instance=False):
    """(x, groups, weight, bias): x (N, C, *) with C divisible by groups."""
    rank = draw(st.sampled_from([3, 4, 5] if instance else [2, 3, 4, 5]))
    batch = draw(st.integers(0, 5))
    groups = draw(st.integers(1, 4))
    channels = groups * (1 if instance else draw(st.integers(1, 3)))
    if instance:
        groups = channels
    spatial = tuple(draw(st.lists(st.integers(1, 6), min_size=rank - 2, max_size=rank - 2)))
    dtype = draw(dtypes)
    seed = draw(seeds)
    offset, spread = draw(st.sampled_from([(0.0, 1.0), (3.0, 5.0), (1e4, 1e-2)]))
    x = as_layout(_random((batch, channels, *spatial), dtype, seed, offset, spread), draw(layouts))
    if batch and draw(st.booleans()):
        x[0] = np.asarray(offset, dtype)  # a constant sample: zero variance
    affine = draw(st.booleans())
    rng = np.random.default_rng(seed + 7)
    weight = rng.uniform(0.5, 1.5, channels).astype(dtype) if affine else None
    bias = rng.standard_normal(channels).astype(dtype) if affine else None
    return x, groups, weight, bias


@given(inputs=group_inputs(), eps=st.sampled_from([1e-5, 1e-3]))
def test_groupnorm_forward(inputs, eps):
    x, groups, weight, bias = inputs
    ours = _ops.groupnorm_forward(x, groups, weight, bias, eps)
    expected = _reference.groupnorm_forward(x, groups, weight, bias, eps)
    assert ours[0].dtype == x.dtype and ours[0].shape == x.shape
    assert ours[1].shape == ours[2].shape == (x.shape[0], groups)
    condition = _group_condition(x, groups, eps)
    for name, a, b in zip(["y", "mean", "invstd"], ours, expected):
        _close(a, b, x.dtype if name == "y" else np.float64, name, condition)


@given(inputs=group_inputs(), layout=layouts)
def test_groupnorm_backward(inputs, layout):
    x, groups, weight, _ = inputs
    dy = as_layout(_random(x.shape, x.dtype, 5), layout)
    _, mean, invstd = _reference.groupnorm_forward(x, groups, None, None)
    ours = _ops.groupnorm_backward(dy, x, mean, invstd, weight)
    expected = _reference.groupnorm_backward(dy, x, mean, invstd, weight)
    assert ours[0].dtype == x.dtype and ours[0].shape == x.shape
    assert ours[1].shape == ours[2].shape == (x.shape[1],)
    condition = _group_condition(x, groups, 1e-5)
    for name, a, b in zip(["dx", "dweight", "dbias"], ours, expected):
        _close(a, b, x.dtype, name, condition)


@given(inputs=group_inputs(instance=True), momentum=st.sampled_from([0.1, 0.0, 1.0]))
def test_instancenorm_forward(inputs, momentum):
    x, channels, weight, bias = inputs
    tracked = x.shape[0] > 0 and np.prod(x.shape[2:]) > 1
    rng = np.random.default_rng(0)
    running = [rng.uniform(0.5, 1.5, channels).astype(x.dtype) for _ in range(2)]
    expected_running = [r.copy() for r in running]
    stats = running if tracked else [None, None]
    expected_stats = expected_running if tracked else [None, None]
    ours = _ops.instancenorm_forward(x, weight, bias, *stats, momentum)
    expected = _reference.instancenorm_forward(x, weight, bias, *expected_stats, momentum)
    condition = _group_condition(x, channels, 1e-5)
    for name, a, b in zip(["y", "mean", "invstd"], ours, expected):
        _close(a, b, x.dtype if name == "y" else np.float64, name, condition)
    for name, a, b in zip(["running_mean", "running_var"], running, expected_running):
        _close(a, b, x.dtype, name, condition)


@st.composite
def row_inputs(draw):
    rows = draw(st.integers(0, 40))
    width = draw(st.integers(1, 300))
    dtype = draw(dtypes)
    seed = draw(seeds)
    offset, spread = draw(st.sampled_from([(0.0, 1.0), (3.0, 5.0), (1e4, 1e-2)]))
    x = as_layout(_random((rows, width), dtype, seed, offset, spread), draw(layouts))
    rng = np.random.default_rng(seed + 3)
    affine = draw(st.booleans())
    weight = rng.uniform(0.5, 1.5, width).astype(dtype) if affine else None
    bias = rng.standard_normal(width).astype(dtype) if affine else None
    return x, weight, bias


@given(inputs=row_inputs(), eps=st.sampled_from([1e-5, 1e-3]))
def test_layernorm_forward(inputs, eps):
    x, weight, bias = inputs
    ours = _ops.layernorm_forward(x, weight, bias, eps)
    expected = _reference.layernorm_forward(x, weight, bias, eps)
    assert ours[0].dtype == x.dtype and ours[1].shape == (x.shape[0],)
    condition = _group_condition(x, 1, eps)
    for name, a, b in zip(["y", "mean", "invstd"], ours, expected):
        _close(a, b, x.dtype if name == "y" else np.float64, name, condition)


@given(inputs=row_inputs(), layout=layouts)
def test_layernorm_backward(inputs, layout):
    x, weight, _ = inputs
    dy = as_layout(_random(x.shape, x.dtype, 9), layout)
    _, mean, invstd = _reference.layernorm_forward(x, None, None)
    ours = _ops.layernorm_backward(dy, x, mean, invstd, weight)
    expected = _reference.layernorm_backward(dy, x, mean, invstd, weight)
    assert ours[0].dtype == x.dtype and ours[1].shape == (x.shape[1],)
    condition = _group_condition(x, 1, 1e-5)
    for name, a, b in zip(["dx", "dweight", "dbias"], ours, expected):
        _close(a, b, x.dtype, name, condition)


def test_layer_norm_is_group_norm_with_one_group_of_elements():
    x = _random((7, 12), np.float64, 1)
    weight, bias = _random(12, np.float64, 2), _random(12, np.float64, 3)
    ln = _ops.layernorm_forward(x, weight, bias)
    gn = _ops.groupnorm_forward(x, 1, weight, bias)
    np.testing.assert_array_equal(ln[0], gn[0])
    np.testing.assert_array_equal(ln[1], gn[1][:, 0])


def test_float32_statistics_accumulate_in_double():
    # 1e4 + 1e-2 * noise in float32: a float32 accumulator loses the spread
    x = _random((2, 4, 5000), np.float32, 4, 1e4, 1e-2)
    _, mean, invstd = _ops.groupnorm_forward(x, 2, None, None, eps=0.0)
    _, ref_mean, ref_invstd = _reference.groupnorm_forward(x, 2, None, None, eps=0.0)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-12)
    np.testing.assert_allclose(invstd, ref_invstd, rtol=1e-7)


def test_instance_running_statistics_need_two_spatial_values():
    with pytest.raises(ValueError, match="Expected more than 1 spatial element when training"):
        _ops.instancenorm_forward(np.ones((3, 2, 1)), None, None, np.zeros(2), np.ones(2))
    y, mean, _ = _ops.instancenorm_forward(np.ones((3, 2, 1)), None, None, None, None)
    assert y.shape == (3, 2, 1) and mean.shape == (3, 2)


def test_batchnorm_kernels_take_five_dim_inputs():
    x = _random((3, 4, 2, 3, 5), np.float64, 6)
    dy = _random(x.shape, np.float64, 7)
    ours = _ops.batchnorm_forward_train(x, None, None, None, None)
    expected = _reference.batchnorm_forward_train(x, None, None, None, None)
    for a, b in zip(ours, expected):
        _close(a, b, np.float64, "5-d forward")
    back = _ops.batchnorm_backward(dy, x, ours[1], ours[2], None)
    for a, b in zip(back, _reference.batchnorm_backward(dy, x, ours[1], ours[2], None)):
        _close(a, b, np.float64, "5-d backward")


# _moments makes two passes over up to MOMENT_DIRECT values; a larger set it splits
# into pieces of at most MOMENT_CHUNK values (whole segments, or pieces of one long
# segment) whose statistics it merges. Repeated here so the shapes below land on
# those boundaries.
MOMENT_DIRECT = 65536
MOMENT_CHUNK = 32768
LARGE_BN_SHAPES = [
    (MOMENT_DIRECT // 784, 2, 784),  # 83 segments: two passes over all of them
    (MOMENT_DIRECT // 784 + 1, 2, 784),  # 84: pieces of 41 segments (41, 41, 2)
    (125, 1, 784),  # 41, 41, 41, 2
    (MOMENT_DIRECT // MOMENT_CHUNK + 1, 2, MOMENT_CHUNK),  # one segment per piece
    (2, 2, MOMENT_CHUNK + 1),  # each segment in two pieces, the second of one value
    (1, 1, 2 * MOMENT_CHUNK + 5),
]


@pytest.mark.parametrize("shape", LARGE_BN_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset, spread", [(0.0, 1.0), (1e4, 1e-2)])
def test_batchnorm_statistics_of_large_channels(shape, dtype, offset, spread):
    x = _random(shape, dtype, 11, offset, spread)
    x[0, 0, :5] = offset  # not all pieces alike
    dy = _random(shape, dtype, 12)
    ours = _ops.batchnorm_forward_train(x, None, None, None, None, eps=1e-5)
    expected = _reference.batchnorm_forward_train(x, None, None, None, None, eps=1e-5)
    exact = np.asarray(x, dtype=np.float64)
    condition = float(np.abs(exact).max() / np.sqrt(exact.var(axis=(0, 2)).min() + 1e-5))
    for name, a, b in zip(["y", "mean", "invstd"], ours, expected):
        _close(a, b, x.dtype if name == "y" else np.float64, name, condition)
    # the statistics against numpy's in float64, tighter than the reference comparison
    np.testing.assert_allclose(ours[1], exact.mean(axis=(0, 2)), rtol=1e-13)
    variance = 1.0 / ours[2] ** 2 - 1e-5
    np.testing.assert_allclose(variance, exact.var(axis=(0, 2)), rtol=1e-9)
    back = _ops.batchnorm_backward(dy, x, ours[1], ours[2], None)
    for name, a, b in zip(
        ["dx", "dweight", "dbias"],
        back,
        _reference.batchnorm_backward(dy, x, ours[1], ours[2], None),
    ):
        _close(a, b, x.dtype if name == "dx" else np.float64, name, condition)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset, spread", [(0.0, 1.0), (1e4, 1e-2)])
def test_group_and_layer_norm_statistics_of_large_groups(dtype, offset, spread):
    # one segment longer than MOMENT_DIRECT: pieces of MOMENT_CHUNK values within it
    x = _random((2, 4, 3 * MOMENT_CHUNK // 4 + 3), dtype, 13, offset, spread)
    rows = _random((2, 2 * MOMENT_CHUNK + 7), dtype, 14, offset, spread)
    for groups in (1, 2):
        ours = _ops.groupnorm_forward(x, groups, None, None)
        expected = _reference.groupnorm_forward(x, groups, None, None)
        condition = _group_condition(x, groups, 1e-5)
        for name, a, b in zip(["y", "mean", "invstd"], ours, expected):
            _close(a, b, dtype if name == "y" else np.float64, name, condition)
    ours = _ops.layernorm_forward(rows, None, None)
    expected = _reference.layernorm_forward(rows, None, None)
    condition = _group_condition(rows, 1, 1e-5)
    for name, a, b in zip(["y", "mean", "invstd"], ours, expected):
        _close(a, b, dtype if name == "y" else np.float64, name, condition)


def _large_bn_kernels(dtype):
    """Both batch-norm kernels on channels of several pieces (see LARGE_BN_SHAPES)."""
    x = _random((170, 3, 784), dtype, 15, 1e4, 1e-2)
    dy = _random(x.shape, dtype, 16)
    running = [np.zeros(3, dtype), np.ones(3, dtype)]
    y, mean, invstd = _ops.batchnorm_forward_train(x, None, None, *running)
    return [y, mean, invstd, *running, *_ops.batchnorm_backward(dy, x, mean, invstd, None)]


def _all_norm_kernels(dtype):
    """Every norm kernel on inputs large enough to be split across threads."""
    rng = np.random.default_rng(3)
    big = rng.standard_normal((16, 12, 30, 31)).astype(dtype)
    rows = rng.standard_normal((700, 300)).astype(dtype)
    weight = rng.uniform(0.5, 1.5, 12).astype(dtype)
    results = []
    for groups in (1, 3, 12):
        y, mean, invstd = _ops.groupnorm_forward(big, groups, weight, None)
        results += [y, mean, invstd, *_ops.groupnorm_backward(y, big, mean, invstd, weight)]
    running = [np.zeros(12, dtype), np.ones(12, dtype)]
    results += [*_ops.instancenorm_forward(big, None, weight, *running), *running]
    y, mean, invstd = _ops.layernorm_forward(rows, None, rows[0])
    results += [y, mean, invstd, *_ops.layernorm_backward(y, rows, mean, invstd, rows[1])]
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_bits_with_one_and_two_threads(dtype):
    before = _ops.get_num_threads()
    try:
        _ops.set_num_threads(1)
        single = _all_norm_kernels(dtype) + _large_bn_kernels(dtype)
        _ops.set_num_threads(2)
        double = _all_norm_kernels(dtype) + _large_bn_kernels(dtype)
    finally:
        _ops.set_num_threads(before)
    for i, (a, b) in enumerate(zip(single, double)):
        assert a.tobytes() == b.tobytes(), f"result {i} differs between 1 and 2 threads"


# ---------------------------------------------------------------- against PyTorch


@pytest.mark.parametrize("shape, groups", [((4, 6, 5, 3), 3), ((3, 8, 7), 8), ((5, 4), 2)])
def test_groupnorm_matches_torch(torch, shape, groups):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    weight, bias = rng.uniform(0.5, 1.5, shape[1]), rng.standard_normal(shape[1])
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, weight, bias))
    ty = torch.nn.functional.group_norm(tx, groups, tw, tb, 1e-5)
    ty.backward(torch.tensor(dy))
    y, mean, invstd = _ops.groupnorm_forward(x, groups, weight, bias, 1e-5)
    dx, dweight, dbias = _ops.groupnorm_backward(dy, x, mean, invstd, weight)
    for name, ours, theirs in [
        ("y", y, ty),
        ("dx", dx, tx.grad),
        ("dweight", dweight, tw.grad),
        ("dbias", dbias, tb.grad),
    ]:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), atol=1e-10, err_msg=name)
