"""Every differentiable operation: float64 gradcheck, and values and gradients against torch."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidl

# name -> (minidl function, torch function, input shapes, domain of the inputs)
# "positive" inputs are drawn in [0.5, 2]; "any" from a standard normal.
CASES = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)], "any"),
    "add_scalar": (lambda a: 2.5 + a, lambda a: 2.5 + a, [(3,)], "any"),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [(3, 1), (1, 4)], "any"),
    "rsub": (lambda a: 1.0 - a, lambda a: 1.0 - a, [(2, 3)], "any"),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [(2, 3, 4), (3, 1)], "any"),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [(3, 4), (4,)], "positive"),
    "rdiv": (lambda a: 2.0 / a, lambda a: 2.0 / a, [(3, 4)], "positive"),
    "pow_scalar": (lambda a: a**3, lambda a: a**3, [(3, 4)], "any"),
    "pow_fraction": (lambda a: a**0.5, lambda a: a**0.5, [(5,)], "positive"),
    "pow_tensor": (lambda a, b: a**b, lambda a, b: a**b, [(2, 3), (3,)], "positive"),
    "rpow": (lambda a: 2.0**a, lambda a: 2.0**a, [(4,)], "any"),
    "neg": (lambda a: -a, lambda a: -a, [(2, 2)], "any"),
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4, 5)], "any"),
    "matmul_batched": (lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (4, 5)], "any"),
    "matmul_broadcast": (lambda a, b: a @ b, lambda a, b: a @ b, [(2, 1, 3, 4), (5, 4, 2)], "any"),
    "matvec": (lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4,)], "any"),
    "vecmat": (lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (4, 5)], "any"),
    "vecvec": (lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (4,)], "any"),
    "vec_batched": (lambda a, b: a @ b, lambda a, b: a @ b, [(4,), (2, 4, 3)], "any"),
    "sum_all": (lambda a: a.sum(), lambda a: a.sum(), [(3, 4)], "any"),
    "sum_batch": (lambda a: a.sum(axis=0), lambda a: a.sum(dim=0), [(6, 5)], "any"),
    "sum_channels": (
        lambda a: a.sum(axis=(0, 2, 3), keepdims=True),
        lambda a: a.sum(dim=(0, 2, 3), keepdim=True),
        [(2, 3, 4, 5)],
        "any",
    ),
    "sum_middle": (lambda a: a.sum(axis=1), lambda a: a.sum(dim=1), [(2, 3, 4)], "any"),
    "sum_last": (lambda a: a.sum(axis=-1), lambda a: a.sum(dim=-1), [(3, 4)], "any"),
    "mean_all": (lambda a: a.mean(), lambda a: a.mean(), [(3, 4)], "any"),
    "mean_axes": (
        lambda a: a.mean(axis=(0, 2), keepdims=True),
        lambda a: a.mean(dim=(0, 2), keepdim=True),
        [(2, 3, 4)],
        "any",
    ),
    "max_all": (lambda a: a.max(), lambda a: a.amax(), [(3, 4)], "any"),
    "max_axis": (lambda a: a.amax(dim=1), lambda a: a.amax(dim=1), [(3, 4)], "any"),
    "min_axis": (
        lambda a: a.amin(0, keepdim=True),
        lambda a: a.amin(dim=0, keepdim=True),
        [(3, 4)],
        "any",
    ),
    "var_all": (lambda a: a.var(), lambda a: a.var(), [(3, 4)], "any"),
    "var_axis": (lambda a: a.var(axis=1), lambda a: a.var(dim=1), [(3, 4)], "any"),
    "var_biased": (
        lambda a: a.var(axis=(0, 2), keepdims=True, correction=0),
        lambda a: a.var(dim=(0, 2), keepdim=True, correction=0),
        [(2, 3, 4)],
        "any",
    ),
    "reshape": (lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), [(2, 3, 2)], "any"),
    "transpose": (lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [(2, 3, 4)], "any"),
    "permute": (lambda a: a.permute(1, 2, 0), lambda a: a.permute(1, 2, 0), [(2, 3, 4)], "any"),
    "T": (lambda a: a.T, lambda a: a.T, [(3, 4)], "any"),
    "flatten": (lambda a: a.flatten(1), lambda a: a.flatten(1), [(2, 3, 4)], "any"),
    "getitem_slice": (lambda a: a[1:, ::2], lambda a: a[1:, ::2], [(4, 5)], "any"),
    "getitem_int": (lambda a: a[2], lambda a: a[2], [(4, 5)], "any"),
    "getitem_repeated": (
        lambda a: a[[0, 2, 0, 0]],
        lambda a: a[[0, 2, 0, 0]],
        [(4, 5)],
        "any",
    ),
    "getitem_pairs": (
        lambda a: a[[0, 1, 1], [2, 2, 2]],
        lambda a: a[[0, 1, 1], [2, 2, 2]],
        [(3, 4)],
        "any",
    ),
    "getitem_mask": (lambda a: a[a > 0], lambda a: a[a > 0], [(3, 4)], "any"),
    "concatenate": (
        lambda a, b: minidl.concatenate([a, b], axis=1),
        lambda a, b: __import__("torch").cat([a, b], dim=1),
        [(2, 3), (2, 5)],
        "any",
    ),
    "stack": (
        lambda a, b: minidl.stack([a, b], axis=-1),
        lambda a, b: __import__("torch").stack([a, b], dim=-1),
        [(2, 3), (2, 3)],
        "any",
    ),
    "exp": (lambda a: a.exp(), lambda a: a.exp(), [(3, 4)], "any"),
    "log": (lambda a: a.log(), lambda a: a.log(), [(3, 4)], "positive"),
    "sqrt": (lambda a: a.sqrt(), lambda a: a.sqrt(), [(3, 4)], "positive"),
    "tanh": (lambda a: a.tanh(), lambda a: a.tanh(), [(3, 4)], "any"),
    "sigmoid": (lambda a: a.sigmoid(), lambda a: a.sigmoid(), [(3, 4)], "any"),
    "relu": (lambda a: a.relu(), lambda a: a.relu(), [(3, 4)], "any"),
    "clip": (lambda a: a.clip(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7), [(4, 5)], "any"),
    "clip_min": (lambda a: a.clip(min=0.1), lambda a: a.clamp(min=0.1), [(4, 5)], "any"),
    "abs": (lambda a: a.abs(), lambda a: a.abs(), [(3, 4)], "any"),
    "where": (
        lambda a, b: minidl.where(a > 0, a, b),
        lambda a, b: __import__("torch").where(a > 0, a, b),
        [(3, 4), (4,)],
        "any",
    ),
    "astype": (lambda a: a.astype("float32").sum(), lambda a: a.float().sum(), [(3,)], "any"),
}


def _inputs(shapes, domain, rng):
    arrays = []
    for shape in shapes:
        if domain == "positive":
            arrays.append(rng.uniform(0.5, 2.0, size=shape))
        else:
            arrays.append(rng.standard_normal(shape))
    return arrays


# A cast to float32 rounds away the float64 perturbations of a gradcheck: it is
# compared with torch only (and its float32 <-> float64 chain rule tested below).
@pytest.mark.parametrize("name", sorted(set(CASES) - {"astype"}))
def test_gradcheck(name, rng):
    fn, _, shapes, domain = CASES[name]
    tensors = [minidl.tensor(a, requires_grad=True) for a in _inputs(shapes, domain, rng)]
    assert minidl.gradcheck(fn, tensors)


def _compare_with_torch(torch, fn, torch_fn, arrays, rng, tolerance=1e-10):
    ours = [minidl.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ours)
    expected = torch_fn(*theirs)
    assert out.shape == tuple(expected.shape), f"shape {out.shape} != torch {expected.shape}"
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=tolerance, atol=tolerance)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream, dtype=expected.dtype))
    for i, (mine, theirs_input) in enumerate(zip(ours, theirs)):
        if theirs_input.grad is None:
            assert mine.grad is None or not mine.grad.data.any()
            continue
        np.testing.assert_allclose(
            mine.grad.data,
            theirs_input.grad.numpy(),
            rtol=tolerance,
            atol=tolerance,
            err_msg=f"gradient of input {i} differs from torch",
        )


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name, torch, rng):
    fn, torch_fn, shapes, domain = CASES[name]
    _compare_with_torch(torch, fn, torch_fn, _inputs(shapes, domain, rng), rng)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "pow": (lambda a, b: a**b, lambda a, b: a**b),
    "where": (
        lambda a, b: minidl.where(a > 1.0, a, b),
        lambda a, b: __import__("torch").where(a > 1.0, a, b),
    ),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4))
def test_binary_broadcasting_matches_torch(name, shapes, torch):
    rng = np.random.default_rng(len(shapes.result_shape))
    a, b = (rng.uniform(0.5, 2.0, size=s) for s in shapes.input_shapes)
    fn, torch_fn = BINARY[name]
    _compare_with_torch(torch, fn, torch_fn, [a, b], rng)


UNARY = {
    "exp": (lambda a: a.exp(), lambda a: a.exp()),
    "log": (lambda a: a.log(), lambda a: a.log()),
    "sqrt": (lambda a: a.sqrt(), lambda a: a.sqrt()),
    "tanh": (lambda a: a.tanh(), lambda a: a.tanh()),
    "sigmoid": (lambda a: (a - 1.2).sigmoid(), lambda a: (a - 1.2).sigmoid()),
    "relu": (lambda a: (a - 1.2).relu(), lambda a: (a - 1.2).relu()),
    "abs": (lambda a: (a - 1.2).abs(), lambda a: (a - 1.2).abs()),
    "clip": (lambda a: a.clip(0.8, 1.5), lambda a: a.clamp(0.8, 1.5)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=5))
def test_unary_matches_torch(name, shape, torch):
    rng = np.random.default_rng(len(shape))
    fn, torch_fn = UNARY[name]
    _compare_with_torch(torch, fn, torch_fn, [rng.uniform(0.5, 2.0, size=shape)], rng)


REDUCTIONS = {
    "sum": (lambda a, ax, k: a.sum(axis=ax, keepdims=k), lambda a, ax, k: a.sum(dim=ax, keepdim=k)),
    "mean": (
        lambda a, ax, k: a.mean(axis=ax, keepdims=k),
        lambda a, ax, k: a.mean(dim=ax, keepdim=k),
    ),
    "amax": (
        lambda a, ax, k: a.amax(ax, keepdim=k),
        lambda a, ax, k: a.amax(dim=ax, keepdim=k),
    ),
    "amin": (
        lambda a, ax, k: a.amin(ax, keepdim=k),
        lambda a, ax, k: a.amin(dim=ax, keepdim=k),
    ),
    "var": (lambda a, ax, k: a.var(axis=ax, keepdims=k), lambda a, ax, k: a.var(dim=ax, keepdim=k)),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
def test_reductions_match_torch(name, data, torch):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=2, max_side=5))
    axes = data.draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True))
    keepdims = data.draw(st.booleans())
    rng = np.random.default_rng(sum(shape))
    fn, torch_fn = REDUCTIONS[name]
    _compare_with_torch(
        torch,
        lambda a: fn(a, tuple(axes), keepdims),
        lambda a: torch_fn(a, tuple(axes), keepdims),
        [rng.standard_normal(shape)],
        rng,
    )


def test_max_ties_share_the_gradient_like_torch_amax(torch):
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x = minidl.tensor(data, requires_grad=True)
    x.amax(dim=1).sum().backward()
    expected = torch.tensor(data, requires_grad=True)
    expected.amax(dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, expected.grad.numpy())
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


def test_repeated_integer_indices_accumulate():
    x = minidl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 1.0])


def test_index_with_a_tensor_of_indices():
    x = minidl.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    labels = minidl.tensor([1, 1])
    x[minidl.arange(2), labels].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0.0, 1.0], [0.0, 1.0]])


def test_pow_zero_base_and_zero_exponent_like_torch(torch):
    base = np.array([0.0, 0.0, 2.0])
    exponent = np.array([0.0, 2.0, 0.0])
    _compare_with_torch(
        torch, lambda a, b: a**b, lambda a, b: a**b, [base, exponent], np.random.default_rng(0)
    )


def test_sigmoid_is_stable_for_large_inputs():
    x = minidl.tensor([-1000.0, 0.0, 1000.0], dtype="float64")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(x.sigmoid().data, [0.0, 0.5, 1.0])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: minidl.ones(2, 3) @ minidl.ones(4, 5), r"matmul: shapes \(2, 3\) and \(4, 5\)"),
        (lambda: minidl.ones(2, 3) + minidl.ones(4), r"add: shapes \(2, 3\) and \(4,\)"),
        (lambda: minidl.ones(2, 3) * minidl.ones(2), r"mul: shapes \(2, 3\) and \(2,\)"),
        (lambda: minidl.ones(6).reshape(4, 2), r"reshape: .* shape \(6,\) .* \(4, 2\)"),
        (lambda: minidl.ones(2).sum(axis=3), "dim 3 is out of range"),
        (lambda: minidl.ones(2, 3).transpose(0, 1, 2), "permute"),
        (
            lambda: minidl.concatenate([minidl.ones(2, 3), minidl.ones(2, 4)]),
            r"concatenate: .*\(2, 3\), \(2, 4\)",
        ),
        (lambda: minidl.stack([minidl.ones(2), minidl.ones(3)]), r"stack: .*\(2,\), \(3,\)"),
        (lambda: minidl.where(minidl.ones(2), minidl.ones(2), 0.0), "condition must be boolean"),
    ],
)
def test_shape_errors_name_the_operation_and_shapes(build, message):
    with pytest.raises(ValueError if "boolean" not in message else TypeError, match=message):
        build()


def test_comparisons_do_not_require_grad():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    for result in (x < 1.5, x <= 1.5, x > 1.5, x >= 1.5, x == 1.0, x != 1.0):
        assert result.dtype == bool
        assert not result.requires_grad
    np.testing.assert_array_equal((x > 1.5).data, [False, True])


def test_cast_between_float_dtypes_is_differentiable():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    y = x.double() * minidl.tensor(np.array([3.0, 4.0]))
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])
    assert x.float() is x


def test_float32_stays_float32_with_python_scalars():
    x = minidl.ones(3, requires_grad=True)
    y = (2.0 * x + 1.0) / 3.0 - 0.5
    y = y**2
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_mixed_precision_promotes_and_grads_keep_their_dtype():
    a = minidl.ones(3, requires_grad=True)
    b = minidl.ones(3, dtype="float64", requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32
    assert b.grad.dtype == np.float64
