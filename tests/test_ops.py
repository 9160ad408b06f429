"""The compiled kernels (minidl._ops) against their numpy references (minidl._reference)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidl import _ops, _reference

KERNELS = {"sum_leading": 2, "sum_channels": 3}
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}


def _layout(array, layout):
    """The same values as ``array`` in another memory layout."""
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided":
        padded = np.zeros(tuple(2 * n for n in array.shape), dtype=array.dtype)
        view = padded[tuple(slice(None, None, 2) for _ in array.shape)]
        view[...] = array
        return view
    if layout == "reversed":
        return np.ascontiguousarray(array[..., ::-1])[..., ::-1]
    return array


@st.composite
def arrays(draw, ndim):
    shape = tuple(draw(st.lists(st.integers(0, 40), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    layout = draw(st.sampled_from(["c", "fortran", "strided", "reversed"]))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([1.0, 1e4]))
    rng = np.random.default_rng(seed)
    array = (scale + rng.standard_normal(shape)).astype(dtype)
    return _layout(array, layout)


def _check(name, array):
    ours = getattr(_ops, name)(array)
    expected = getattr(_reference, name)(array)
    assert ours.dtype == array.dtype, f"{name} returned {ours.dtype} for {array.dtype} input"
    assert ours.shape == expected.shape
    tolerance = TOLERANCE[array.dtype.type]
    np.testing.assert_allclose(ours, expected, rtol=tolerance, atol=0, err_msg=name)


@given(array=arrays(2))
def test_sum_leading_matches_reference(array):
    _check("sum_leading", array)


@given(array=arrays(3))
def test_sum_channels_matches_reference(array):
    _check("sum_channels", array)


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 7), (300, 1), (5, 256), (5, 257), (3, 1000), (0, 4), (4, 0)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_leading_edge_shapes(shape, dtype):
    _check("sum_leading", np.random.default_rng(1).standard_normal(shape).astype(dtype))


@pytest.mark.parametrize(
    "shape", [(1, 1, 1), (1, 3, 1), (7, 1, 9), (2, 0, 3), (0, 2, 3), (2, 2, 0)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_channels_edge_shapes(shape, dtype):
    _check("sum_channels", np.random.default_rng(2).standard_normal(shape).astype(dtype))


def test_float32_sums_accumulate_in_double():
    # 2**24 + 1 is not a float32: a float32 accumulator would stall at 2**24.
    array = np.ones((2**24 + 2, 1), dtype=np.float32)
    assert _ops.sum_leading(array)[0] == np.float32(2**24 + 2)
    assert _ops.sum_channels(array.reshape(1, 1, -1))[0] == np.float32(2**24 + 2)


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.int64, bool, np.complex64])
def test_refuses_other_dtypes_with_a_message(name, dtype):
    array = np.ones((2,) * KERNELS[name], dtype=dtype)
    with pytest.raises(TypeError, match=rf"{name}: expected a float32 or float64 array"):
        getattr(_ops, name)(array)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_refuses_the_wrong_rank_with_a_message(name):
    with pytest.raises(ValueError, match=rf"{name}: expected a {KERNELS[name]}-d array"):
        getattr(_ops, name)(np.ones((2,) * (KERNELS[name] + 1)))


@pytest.mark.parametrize(
    ("name", "shape"), [("sum_leading", (999, 3001)), ("sum_channels", (33, 17, 999))]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_bits_with_one_and_two_threads(name, shape, dtype):
    array = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    before = _ops.get_num_threads()
    try:
        _ops.set_num_threads(1)
        single = getattr(_ops, name)(array)
        _ops.set_num_threads(2)
        double = getattr(_ops, name)(array)
    finally:
        _ops.set_num_threads(before)
    assert single.tobytes() == double.tobytes()


def test_thread_count_must_be_positive():
    with pytest.raises(ValueError, match="positive thread count"):
        _ops.set_num_threads(0)


def test_read_only_input_is_accepted():
    array = np.ones((4, 3))
    array.setflags(write=False)
    np.testing.assert_array_equal(_ops.sum_leading(array), [4.0, 4.0, 4.0])
