"""gradcheck finds wrong gradients and says where."""

import warnings

import numpy as np
import pytest

import minidl
from minidl.autograd import Function


class WrongSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        wrong = 2 * x * grad
        wrong.flat[1] *= 1.5  # one element off
        return wrong


def test_passes_for_correct_gradients():
    x = minidl.randn(3, 4, dtype="float64", requires_grad=True)
    w = minidl.randn(4, 2, dtype="float64", requires_grad=True)
    assert minidl.gradcheck(lambda a, b: (a @ b).tanh(), (x, w)) is True


def test_reports_the_input_element_and_both_values():
    x = minidl.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(AssertionError, match=r"input 0, element \(1,\): analytic .* != numeric"):
        minidl.gradcheck(WrongSquare.apply, (x,))


def test_checks_only_inputs_that_require_grad_and_names_the_right_one():
    fixed = minidl.tensor(np.array([1.0, 2.0, 3.0]))
    x = minidl.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(AssertionError, match="input 1,"):
        minidl.gradcheck(lambda a, b: a * WrongSquare.apply(b), (fixed, x))


def test_float32_inputs_warn_and_are_checked_in_float64():
    x = minidl.randn(3, requires_grad=True)
    with pytest.warns(UserWarning, match="input 0 is float32"):
        assert minidl.gradcheck(lambda t: t.exp(), (x,))


def test_float64_inputs_do_not_warn_and_are_restored():
    data = np.array([0.3, -0.2])
    x = minidl.tensor(data, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        minidl.gradcheck(lambda t: t.sigmoid(), x)
    np.testing.assert_array_equal(x.data, data)
    assert x.grad is None


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input requires grad"):
        minidl.gradcheck(lambda t: t * 2, (minidl.ones(2, dtype="float64"),))


def test_multiple_outputs():
    x = minidl.randn(3, dtype="float64", requires_grad=True)
    assert minidl.gradcheck(lambda t: (t.exp(), (t * t).sum()), (x,))
