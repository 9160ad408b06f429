"""Activations of minidl.nn against torch in float64: values, input (and PReLU weight)
gradients to 1e-8, float64 gradchecks, in-place forms, integer inputs and refusals."""

import warnings

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import nn

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

TOLERANCE = dict(rtol=1e-8, atol=1e-10)


def _inputs(shape=(3, 4, 5), seed=0):
    """Random float64 values with the kinks of every activation in them (0, +-1, 6, ...)."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * 4
    flat = values.reshape(-1)
    kinks = [0.0, -1.0, 1.0, 6.0, -30.0, 30.0, 21.0, -0.5, 0.5, 1e-3]
    flat[: len(kinks)] = kinks[: flat.size]
    return values


# name -> (minidl callable, torch callable); the modules build a fresh layer on each call
FUNCTIONS = {
    "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: TF.gelu(x, approximate="tanh"),
    ),
    "silu": (F.silu, TF.silu),
    "elu": (F.elu, TF.elu),
    "elu_alpha": (lambda x: F.elu(x, alpha=0.3), lambda x: TF.elu(x, alpha=0.3)),
    "softplus": (F.softplus, TF.softplus),
    "softplus_beta": (
        lambda x: F.softplus(x, beta=2.5, threshold=3.0),
        lambda x: TF.softplus(x, beta=2.5, threshold=3.0),
    ),
    "hardtanh": (F.hardtanh, TF.hardtanh),
    "hardtanh_range": (lambda x: F.hardtanh(x, -0.5, 6.0), lambda x: TF.hardtanh(x, -0.5, 6.0)),
    "relu6": (F.relu6, TF.relu6),
    "mish": (F.mish, TF.mish),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "GELU": (lambda x: nn.GELU()(x), lambda x: tnn.GELU()(x)),
    "GELU_tanh": (lambda x: nn.GELU("tanh")(x), lambda x: tnn.GELU("tanh")(x)),
    "SiLU": (lambda x: nn.SiLU()(x), lambda x: tnn.SiLU()(x)),
    "ELU": (lambda x: nn.ELU(0.7)(x), lambda x: tnn.ELU(0.7)(x)),
    "Softplus": (lambda x: nn.Softplus(0.5, 4.0)(x), lambda x: tnn.Softplus(0.5, 4.0)(x)),
    "Hardtanh": (lambda x: nn.Hardtanh(-2.0, 2.0)(x), lambda x: tnn.Hardtanh(-2.0, 2.0)(x)),
    "ReLU6": (lambda x: nn.ReLU6()(x), lambda x: tnn.ReLU6()(x)),
    "Mish": (lambda x: nn.Mish()(x), lambda x: tnn.Mish()(x)),
    "LeakyReLU": (lambda x: nn.LeakyReLU()(x), lambda x: tnn.LeakyReLU()(x)),
    "Softmax": (lambda x: nn.Softmax(dim=1)(x), lambda x: tnn.Softmax(dim=1)(x)),
    "LogSoftmax": (lambda x: nn.LogSoftmax(dim=-1)(x), lambda x: tnn.LogSoftmax(dim=-1)(x)),
}


def _compare(ours, theirs, values, seed=1):
    x = minidl.tensor(values, requires_grad=True)
    their_x = torch.tensor(values, requires_grad=True)
    out, expected = ours(x), theirs(their_x)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), **TOLERANCE)
    upstream = np.random.default_rng(seed).standard_normal(expected.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), their_x.grad.numpy(), **TOLERANCE)
    return x, their_x


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_activation_matches_torch(name):
    ours, theirs = FUNCTIONS[name]
    _compare(ours, theirs, _inputs())


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "elu", "softplus", "mish"])
def test_activation_matches_torch_at_extremes(name):
    ours, theirs = FUNCTIONS[name]
    _compare(ours, theirs, np.array([-800.0, -40.0, -1e-8, 0.0, 1e-8, 40.0, 800.0]))


@pytest.mark.parametrize(
    "name", ["gelu", "gelu_tanh", "silu", "elu_alpha", "softplus_beta", "mish", "leaky_relu"]
)
def test_activation_gradcheck(name):
    ours, _ = FUNCTIONS[name]
    # away from the kinks, where central differences are meaningful
    values = np.random.default_rng(2).uniform(0.1, 2.0, (3, 4)) * np.array([1, -1, 1, -1])
    assert minidl.gradcheck(ours, (minidl.tensor(values, requires_grad=True),))


def test_hardtanh_gradcheck_inside_and_outside():
    values = np.array([[-3.0, -0.5, 0.2, 0.7, 2.5], [5.5, 6.5, -0.3, 3.0, 0.9]])
    x = minidl.tensor(values, requires_grad=True)
    assert minidl.gradcheck(lambda t: F.hardtanh(t, -1.0, 1.0), (x,))
    assert minidl.gradcheck(F.relu6, (x,))


@pytest.mark.parametrize(
    ("num_parameters", "shape"), [(1, (4,)), (1, (2, 3, 4)), (3, (2, 3)), (3, (2, 3, 4, 2))]
)
def test_prelu_matches_torch_with_weight_gradient(num_parameters, shape):
    ours, theirs = (
        nn.PReLU(num_parameters, init=0.1, dtype="float64"),
        tnn.PReLU(num_parameters, 0.1),
    )
    theirs.double()
    with torch.no_grad():
        theirs.weight.copy_(torch.linspace(-0.5, 0.7, num_parameters, dtype=torch.float64))
    ours.load_state_dict(theirs.state_dict(), strict=True)
    _compare(ours, theirs, _inputs(shape))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), **TOLERANCE)
    assert minidl.gradcheck(
        lambda x, w: F.prelu(x, w),
        (
            minidl.tensor(_inputs(shape) + 0.05, requires_grad=True),
            minidl.tensor(np.linspace(-0.5, 0.7, num_parameters), requires_grad=True),
        ),
    )


def test_prelu_state_dict_both_ways_and_defaults():
    ours = nn.PReLU(3)
    theirs = tnn.PReLU(3)
    assert ours.weight.dtype == np.float32 and ours.weight.shape == (3,)
    np.testing.assert_array_equal(ours.weight.numpy(), theirs.weight.detach().numpy())
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    ours.load_state_dict(theirs.state_dict(), strict=True)
    np.testing.assert_array_equal(ours.weight.numpy(), np.float32([0.1, 0.2, 0.3]))
    with minidl.no_grad():
        ours.weight.copy_(minidl.tensor([0.5, 0.6, 0.7]))
    state = {k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)
    np.testing.assert_array_equal(theirs.weight.detach().numpy(), np.float32([0.5, 0.6, 0.7]))
    ours.reset_parameters()
    np.testing.assert_array_equal(ours.weight.numpy(), np.float32([0.25] * 3))
    assert repr(ours) == repr(tnn.PReLU(3)) == "PReLU(num_parameters=3)"


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (nn.GELU(), tnn.GELU()),
        (nn.GELU("tanh"), tnn.GELU("tanh")),
        (nn.ELU(), tnn.ELU()),
        (nn.ELU(0.5, inplace=True), tnn.ELU(0.5, inplace=True)),
        (nn.Softplus(), tnn.Softplus()),
        (nn.Hardtanh(), tnn.Hardtanh()),
        (nn.Hardtanh(0.0, 6.0, inplace=True), tnn.Hardtanh(0.0, 6.0, inplace=True)),
        (nn.ReLU6(), tnn.ReLU6()),
        (nn.ReLU6(inplace=True), tnn.ReLU6(inplace=True)),
        (nn.SiLU(), tnn.SiLU()),
        (nn.Mish(inplace=True), tnn.Mish(inplace=True)),
        (nn.LeakyReLU(), tnn.LeakyReLU()),
        (nn.LeakyReLU(0.2, True), tnn.LeakyReLU(0.2, True)),
        (nn.Softmax(), tnn.Softmax()),
        (nn.LogSoftmax(dim=1), tnn.LogSoftmax(dim=1)),
    ],
)
def test_module_repr_matches_torch(ours, theirs):
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda x: F.elu(x, 0.5, inplace=True), lambda x: TF.elu(x, 0.5, inplace=True)),
        (lambda x: F.silu(x, inplace=True), lambda x: TF.silu(x, inplace=True)),
        (lambda x: F.mish(x, inplace=True), lambda x: TF.mish(x, inplace=True)),
        (lambda x: F.hardtanh(x, inplace=True), lambda x: TF.hardtanh(x, inplace=True)),
        (lambda x: F.relu6(x, inplace=True), lambda x: TF.relu6(x, inplace=True)),
        (lambda x: F.leaky_relu(x, 0.3, True), lambda x: TF.leaky_relu(x, 0.3, True)),
        (lambda x: nn.ELU(inplace=True)(x), lambda x: tnn.ELU(inplace=True)(x)),
    ],
)
def test_inplace_writes_the_input_and_keeps_the_gradient(ours, theirs):
    values = _inputs((4, 5))
    x = minidl.tensor(values, requires_grad=True)
    their_x = torch.tensor(values, requires_grad=True)
    hidden, their_hidden = x * 2, their_x * 2
    out, expected = ours(hidden), theirs(their_hidden)
    assert out is hidden
    np.testing.assert_allclose(hidden.numpy(), their_hidden.detach().numpy(), **TOLERANCE)
    upstream = np.random.default_rng(3).standard_normal(values.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), their_x.grad.numpy(), **TOLERANCE)


def test_inplace_refused_on_a_leaf_that_requires_grad_and_on_integers():
    with pytest.raises(RuntimeError, match="leaf Variable"):
        F.elu(minidl.ones(3, requires_grad=True), inplace=True)
    with pytest.raises(RuntimeError, match="silu: in place needs a floating-point tensor"):
        F.silu(minidl.tensor([1, 2]), inplace=True)


@pytest.mark.parametrize(
    "function", [F.gelu, F.silu, F.elu, F.softplus, F.mish, F.leaky_relu, nn.GELU(), nn.Mish()]
)
def test_integer_input_computes_in_the_default_float_dtype(function):
    ints = minidl.tensor([-2, 0, 3])
    out = function(ints)
    assert out.dtype == minidl.get_default_dtype()
    np.testing.assert_allclose(out.numpy(), function(minidl.tensor([-2.0, 0.0, 3.0])).numpy())


def test_integer_input_of_hardtanh_and_relu6_keeps_its_dtype_as_torch():
    for ours, theirs in ((F.hardtanh, TF.hardtanh), (F.relu6, TF.relu6)):
        out = ours(minidl.tensor([-2, 0, 3, 9]))
        expected = theirs(torch.tensor([-2, 0, 3, 9]))
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out.numpy(), expected.numpy())


def test_leaky_relu_of_integers_is_no_longer_truncated():
    # the slope used to be cast to the integer dtype, giving 0 for every negative input
    np.testing.assert_allclose(F.leaky_relu(minidl.tensor([-100, 5])).numpy(), [-1.0, 5.0])


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 3, 4), (2, 3, 4, 5)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_without_dim_takes_torch_implicit_dim_and_warns(shape, name):
    values = _inputs(shape) if shape else np.array(0.3)
    ours, theirs = getattr(F, name), getattr(TF, name)
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name}"):
        out = ours(minidl.tensor(values))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = theirs(torch.tensor(values))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), **TOLERANCE)
    module = nn.Softmax() if name == "softmax" else nn.LogSoftmax()
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        np.testing.assert_allclose(
            module(minidl.tensor(values)).numpy(), expected.numpy(), **TOLERANCE
        )


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: F.gelu(minidl.ones(2), approximate="fast"), RuntimeError, "gelu: approximate"),
        (lambda: nn.GELU("fast"), ValueError, "GELU: approximate"),
        (lambda: F.hardtanh(minidl.ones(2), 1.0, -1.0), ValueError, "hardtanh: min_val"),
        (lambda: nn.Hardtanh(1.0, 1.0), ValueError, "Hardtanh: max_val"),
        (lambda: F.elu(minidl.ones(2), alpha="1"), TypeError, "elu: alpha"),
        (lambda: F.softplus(minidl.ones(2), beta=None), TypeError, "softplus: beta"),
        (lambda: nn.ELU(alpha=True), TypeError, "ELU: alpha"),
        (lambda: F.silu(np.ones(2)), TypeError, "silu: expected a minidl Tensor"),
        (lambda: F.gelu([1.0]), TypeError, "gelu: expected a minidl Tensor"),
        (lambda: nn.PReLU(0), ValueError, "PReLU: num_parameters"),
        (lambda: nn.PReLU(3)(minidl.ones(2, 4)), ValueError, "prelu: 3 slopes"),
        (lambda: nn.PReLU(3)(minidl.ones(3)), ValueError, "prelu: 3 slopes"),
        (lambda: F.prelu(minidl.ones(2, 3), minidl.ones(3, 1)), ValueError, "prelu: expected"),
        (lambda: F.prelu(minidl.ones(2), np.ones(1)), TypeError, "prelu: expected minidl"),
        (lambda: F.softmax(np.ones(3)), TypeError, "softmax: expected a minidl Tensor"),
    ],
)
def test_bad_arguments_are_refused_naming_the_callee(call, error, message):
    with pytest.raises(error, match=message):
        call()
