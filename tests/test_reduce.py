"""sum_axes and unbroadcast give numpy's results, whichever path they take."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl import _ops
from minidl._reduce import sum_axes, unbroadcast


@given(data=st.data())
def test_sum_axes_matches_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=5))
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)))))
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int64]))
    transposed = data.draw(st.booleans())
    array = np.random.default_rng(len(shape)).standard_normal(shape) * 10
    array = array.astype(dtype)
    if transposed:
        array = array.T
        axes = tuple(sorted(array.ndim - 1 - a for a in axes))
    expected = array.sum(axis=axes, dtype=np.float64 if dtype != np.int64 else None)
    result = sum_axes(array, axes)
    assert result.shape == expected.shape
    assert result.dtype == array.dtype
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(result, expected, rtol=tolerance, atol=tolerance)


@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4))
def test_unbroadcast_inverts_broadcasting(shapes):
    grad = np.random.default_rng(0).standard_normal(shapes.result_shape)
    for shape in shapes.input_shapes:
        result = unbroadcast(grad, shape)
        assert result.shape == shape
        lead = grad.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
        )
        np.testing.assert_allclose(result, grad.sum(axis=axes).reshape(shape), atol=1e-12)


def _noncontiguous(array):
    return np.zeros((array.shape[0] * 2, *array.shape[1:]), array.dtype)[::2]


# Shapes and axes taking each way through sum_axes: the leading axes (sum_leading),
# leading and trailing axes (sum_channels), trailing axes only (row sums), all axes,
# size-1 axes anywhere, a reduced axis between kept ones (numpy), Fortran order and
# strided views; large enough that the kernels split them into chunks.
ROUTES = [
    ((300, 600), (0,)),
    ((40000, 3), (0,)),
    ((64, 8, 7, 7), (0, 2, 3)),
    ((32, 16, 30, 30), (0, 2, 3)),
    ((600, 300), (1,)),
    ((2, 1, 70000), (0, 1, 2)),
    ((50, 1, 30, 1), (0, 1)),
    ((1, 50, 1, 30), (0, 2, 3)),
    ((30, 40, 50), (1,)),
    ((30, 40, 50), (0, 2)),
]


@pytest.mark.parametrize("shape, axes", ROUTES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["c", "fortran", "strided"])
def test_sum_axes_each_route(shape, axes, dtype, layout):
    array = (np.random.default_rng(1).standard_normal(shape) + 2).astype(dtype)
    if layout == "fortran":
        array = np.asfortranarray(array)
    elif layout == "strided":
        array = _noncontiguous(array)
        array[...] = np.random.default_rng(2).standard_normal(shape) + 2
    expected = array.sum(axis=axes, dtype=np.float64)
    result = sum_axes(array, axes)
    assert result.shape == expected.shape and result.dtype == dtype
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(result, expected, rtol=tolerance, err_msg=f"{shape} {axes}")


@pytest.mark.parametrize("shape, axes", ROUTES)
def test_sum_axes_same_bits_with_one_and_two_threads(shape, axes):
    array = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    before = _ops.get_num_threads()
    try:
        _ops.set_num_threads(1)
        single = sum_axes(array, axes)
        _ops.set_num_threads(2)
        double = sum_axes(array, axes)
    finally:
        _ops.set_num_threads(before)
    assert single.tobytes() == double.tobytes()


@pytest.mark.parametrize("shape, axes", ROUTES)
def test_sum_axes_matches_torch_in_float64(torch, shape, axes):
    array = np.random.default_rng(4).standard_normal(shape) + 1
    expected = torch.from_numpy(array).sum(dim=axes).numpy()
    np.testing.assert_allclose(sum_axes(array, axes), expected, rtol=1e-10, atol=1e-10)
