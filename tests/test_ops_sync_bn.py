"""Synchronized batch norm's kernel pieces (minidl._ops) against their numpy twins
(minidl._reference), and against the one-process batch-norm kernels they split up."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_checks import as_layout, with_one_and_two_threads
from test_ops import _bn_condition, _close, _random, bn_inputs, layouts

from minidl import _ops, _reference
from minidl.nn import functional as F


def _merge(parts):
    """SyncBatchNorm's merge (Chan et al.) of per-part (count, mean, m2), in part order."""
    rows = np.array([[count, *mean, *m2] for count, mean, m2 in parts])
    return F._merge_statistics(rows, len(parts[0][1]))


@given(inputs=bn_inputs())
def test_batchnorm_stats(inputs):
    x, _, _ = inputs
    count, mean, m2 = _ops.batchnorm_stats(x)
    expected = _reference.batchnorm_stats(x)
    assert count == expected[0] == x.size // x.shape[1]
    condition = _bn_condition(x, 1e-5)
    _close(mean, expected[1], np.float64, "mean", condition)
    _close(m2 / count, expected[2] / count, np.float64, "m2 / count", condition)


@given(inputs=bn_inputs(), split=st.integers(0, 6))
def test_batchnorm_stats_of_parts_merge_to_the_whole(inputs, split):
    # what SyncBatchNorm does across processes, here across slices of one batch
    x, _, _ = inputs
    split = min(split, x.shape[0])
    parts = [_ops.batchnorm_stats(x[:split]), _ops.batchnorm_stats(x[split:])]
    count, mean, m2 = _merge(parts)
    _, whole_mean, _ = _ops.batchnorm_forward_train(x, None, None, None, None, eps=0.0)
    condition = _bn_condition(x, 1e-5)
    _close(mean, whole_mean, np.float64, "merged mean", condition)
    whole_var = _reference.batchnorm_stats(x)[2] / count
    _close(m2 / count, whole_var, np.float64, "merged variance", condition)


def test_batchnorm_stats_of_an_empty_batch_is_the_merge_identity():
    count, mean, m2 = _ops.batchnorm_stats(np.zeros((0, 3, 2), np.float32))
    assert count == 0 and not mean.any() and not m2.any()


@given(inputs=bn_inputs(), eps=st.sampled_from([1e-5, 1e-3]))
def test_batchnorm_normalize_is_the_training_forward_once_statistics_are_known(inputs, eps):
    x, weight, bias = inputs
    y, mean, invstd = _ops.batchnorm_forward_train(x, weight, bias, None, None, eps=eps)
    ours = _ops.batchnorm_normalize(x, mean, invstd, weight, bias)
    np.testing.assert_array_equal(ours, y, err_msg="normalize vs forward_train")
    expected = _reference.batchnorm_normalize(x, mean, invstd, weight, bias)
    _close(ours, expected, x.dtype, "y", _bn_condition(x, eps))


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_update_running_is_the_training_forwards(momentum, dtype):
    x = _random((6, 3, 5), dtype, 3, 2.0, 3.0)
    running = [np.full(3, 0.5, dtype), np.full(3, 2.0, dtype)]
    expected = [r.copy() for r in running]
    _, mean, _ = _ops.batchnorm_forward_train(x, None, None, *expected, momentum, 1e-5, 4)
    count, mean_again, m2 = _ops.batchnorm_stats(x)
    _ops.batchnorm_update_running(*running, mean_again, m2 / count, momentum, count, 4)
    np.testing.assert_array_equal(mean_again, mean)
    for name, a, b in zip(["running_mean", "running_var"], running, expected):
        _close(a, b, dtype, name)
    twin = [np.full(3, 0.5, dtype), np.full(3, 2.0, dtype)]
    _reference.batchnorm_update_running(*twin, mean_again, m2 / count, momentum, count, 4)
    for name, a, b in zip(["running_mean", "running_var"], running, twin):
        _close(a, b, dtype, name)
    with pytest.raises(ValueError, match="count >= 2"):
        _ops.batchnorm_update_running(*running, mean, mean, 0.1, 1)


@given(inputs=bn_inputs(), layout=layouts)
def test_batchnorm_backward_reduce_and_elemt(inputs, layout):
    x, weight, _ = inputs
    dy = as_layout(_random(x.shape, x.dtype, 5), layout)
    _, mean, invstd = _ops.batchnorm_forward_train(x, None, None, None, None)
    sums = _ops.batchnorm_backward_reduce(dy, x, mean)
    expected = _reference.batchnorm_backward_reduce(dy, x, mean)
    condition = _bn_condition(x, 1e-5)
    for name, a, b in zip(["sum_dy", "sum_dy_xmu"], sums, expected):
        _close(a, b, np.float64, name, condition)
    count = x.size // x.shape[1]
    dx = _ops.batchnorm_backward_elemt(dy, x, mean, invstd, weight, *sums, count)
    twin = _reference.batchnorm_backward_elemt(dy, x, mean, invstd, weight, *expected, count)
    _close(dx, twin, x.dtype, "dx", condition)
    # in one process the pieces are batchnorm_backward (whose (N, C) path sums rows in
    # another order, so to rounding)
    whole_dx, dweight, dbias = _ops.batchnorm_backward(dy, x, mean, invstd, weight)
    _close(dx, whole_dx, x.dtype, "dx vs batchnorm_backward", condition)
    _close(sums[0], dbias, np.float64, "sum_dy vs dbias", condition)
    _close(sums[1] * invstd, dweight, np.float64, "sum_dy_xmu * invstd vs dweight", condition)


def test_pieces_give_the_same_bits_with_one_and_two_threads():
    x = _random((16, 8, 40, 40), np.float32, 1, 1.0, 2.0)
    dy = _random(x.shape, np.float32, 2)

    def run():
        count, mean, m2 = _ops.batchnorm_stats(x)
        invstd = 1 / np.sqrt(m2 / count + 1e-5)
        sums = _ops.batchnorm_backward_reduce(dy, x, mean)
        return (
            mean,
            m2,
            _ops.batchnorm_normalize(x, mean, invstd, None, None),
            *sums,
            _ops.batchnorm_backward_elemt(dy, x, mean, invstd, None, *sums, count),
        )

    single, double = with_one_and_two_threads(run)
    for a, b in zip(single, double):
        np.testing.assert_array_equal(a, b)


def test_pieces_refuse_mismatched_arguments():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="batchnorm_backward_reduce: dy has shape"):
        _ops.batchnorm_backward_reduce(np.zeros((2, 3, 5)), x, np.zeros(3))
    with pytest.raises(ValueError, match="batchnorm_normalize: expected mean of shape"):
        _ops.batchnorm_normalize(x, np.zeros(2), np.ones(3), None, None)
    with pytest.raises(ValueError, match="batchnorm_backward_elemt: count must be"):
        _ops.batchnorm_backward_elemt(x, x, np.zeros(3), np.ones(3), None, *np.zeros((2, 3)), 0)
    with pytest.raises(TypeError, match="batchnorm_stats"):
        _ops.batchnorm_stats(np.zeros((2, 3), np.int64))
