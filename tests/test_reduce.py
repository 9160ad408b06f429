"""sum_axes and unbroadcast give numpy's results, whichever path they take."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

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
