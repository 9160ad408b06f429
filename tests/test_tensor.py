"""Tensor's attributes, conversions and factories, and what tensor() refuses."""

import numpy as np
import pytest

import minidl


def test_python_floats_become_float32_and_arrays_keep_their_dtype():
    assert minidl.tensor([1.0, 2.0]).dtype == np.float32
    assert minidl.tensor(np.zeros(2)).dtype == np.float64
    assert minidl.tensor([1, 2]).dtype == np.int64
    assert minidl.tensor([True, False]).dtype == bool
    assert minidl.tensor([1, 2], dtype="float64").dtype == np.float64


def test_tensor_copies_and_from_numpy_shares():
    array = np.zeros(3, dtype=np.float32)
    copied = minidl.tensor(array)
    shared = minidl.from_numpy(array)
    array[0] = 7.0
    assert copied.data[0] == 0.0
    assert shared.data[0] == 7.0
    assert np.shares_memory(shared.numpy(), array)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.array(["a", "b"]), "dtype <U1"),
        (np.array([object(), 1], dtype=object), "dtype object"),
        (["a", "b"], "dtype <U1"),
        (np.zeros(2, dtype=np.float16), "float32 or float64, got float16"),
        (np.zeros(2, dtype=np.complex64), "complex64"),
        ([[1.0, 2.0], [3.0]], "cannot make a numeric array"),
    ],
)
def test_tensor_refuses_non_numeric_data(data, message):
    with pytest.raises(TypeError, match=message):
        minidl.tensor(data)


def test_from_numpy_needs_an_array():
    with pytest.raises(TypeError, match=r"expected a numpy\.ndarray, got list"):
        minidl.from_numpy([1.0])


def test_attributes_and_conversions():
    x = minidl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.shape == (2, 3)
    assert x.ndim == 2
    assert x.size() == (2, 3) and x.size(-1) == 3 and x.numel() == 6
    assert len(x) == 2
    assert x.dtype == np.float64
    assert x.grad is None
    assert x.requires_grad
    assert np.asarray(x) is x.numpy() and isinstance(x.data, minidl.Tensor)
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    assert minidl.tensor([[2.5]]).item() == 2.5
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert [row.shape for row in x] == [(3,), (3,)]
    with pytest.raises(ValueError, match=r"one-element tensors .* shape \(2, 3\)"):
        x.item()
    with pytest.raises(TypeError, match="len"):
        len(minidl.tensor(1.0))


def test_detach_shares_data_without_grad():
    x = minidl.ones(2, requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf


def test_repr_looks_like_torch():
    assert repr(minidl.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(minidl.tensor([1.0], dtype="float64")) == "tensor([1.], dtype=float64)"
    assert repr(minidl.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(minidl.tensor([1, 2])) == "tensor([1, 2])"
    assert "grad_fn=<Mul>" in repr(minidl.tensor([1.0], requires_grad=True) * 2)


def test_factories():
    assert minidl.zeros(2, 3).shape == (2, 3)
    assert minidl.zeros((2, 3)).dtype == np.float32
    assert minidl.ones(4, dtype="float64").dtype == np.float64
    like = minidl.zeros_like(minidl.ones(2, 2, dtype="float64"))
    assert like.shape == (2, 2) and like.dtype == np.float64 and not like.data.any()
    assert minidl.ones_like(minidl.zeros(3)).data.sum() == 3
    assert minidl.randn(3, 4).dtype == np.float32
    assert minidl.rand(100).data.min() >= 0 and minidl.rand(100).data.max() < 1
    assert minidl.randn(2, dtype="float64", requires_grad=True).requires_grad
    np.testing.assert_array_equal(minidl.arange(4).data, [0, 1, 2, 3])
    assert minidl.arange(4).dtype == np.int64
    assert minidl.arange(0, 1, 0.5).dtype == np.float32
    with pytest.raises(TypeError, match="randn: expected dtype float32 or float64"):
        minidl.randn(2, dtype="int32")


def test_manual_seed_makes_draws_reproducible():
    minidl.manual_seed(7)
    first = (minidl.randn(5).data, minidl.rand(3).data)
    minidl.manual_seed(7)
    second = (minidl.randn(5).data, minidl.rand(3).data)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="non-negative integer"):
        minidl.manual_seed(-1)


def test_rng_state_round_trip():
    state = minidl.random.get_rng_state()
    first = minidl.randn(4).data
    minidl.random.set_rng_state(state)
    np.testing.assert_array_equal(minidl.randn(4).data, first)
    with pytest.raises(ValueError, match="set_rng_state"):
        minidl.random.set_rng_state({"bit_generator": "MT19937"})


def test_bool_of_a_multi_element_tensor_is_ambiguous():
    assert bool(minidl.tensor([1.0]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(minidl.ones(2))


def test_tensors_stay_hashable():
    x = minidl.ones(2)
    assert {x: 1}[x] == 1
