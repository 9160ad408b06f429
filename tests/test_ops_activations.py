"""The compiled activation kernels (ReLU, sigmoid, tanh) against their numpy twins and
PyTorch, the Tensor operations and layers built on them, and the ReLU -> MaxPool2d
fusion of nn.Sequential against the unfused path and torch."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kernel_checks import as_layout

import minidl
from minidl import _ops, _reference, nn

DTYPES = [np.float32, np.float64]
NAMES = ["relu", "sigmoid", "tanh"]
# sigmoid and tanh: kernel and twin take exp/tanh from different libraries (numpy's
# SIMD versions and libm), and the compiler may fuse the backward's multiply and
# subtract: a few units in the last place apart
RTOL = {np.float32: 4e-7, np.float64: 1e-14}


def _values(shape, dtype, seed, specials=True):
    """Normal values times 10 with NaN, +-inf, +-0.0 and huge values sprinkled in."""
    rng = np.random.default_rng(seed)
    x = 10 * rng.standard_normal(shape)
    if specials and x.size:
        flat = x.reshape(-1)
        picks = rng.integers(0, flat.size, size=max(1, flat.size // 4))
        flat[picks] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e4, -1e4], picks.size)
    return x.astype(dtype)


def _assert_same(ours, expected, dtype, exact, what, dy=None, rtol=None):
    """Bit for bit (``exact``), else to RTOL; a backward may also differ by a few EPSILON
    * |dy|: ``1 - y * y`` cancels near |y| = 1, where a fused multiply-add rounds once."""
    assert ours.shape == expected.shape and ours.dtype == expected.dtype, what
    if exact:
        np.testing.assert_array_equal(ours, expected, err_msg=what)
        same_sign = np.signbit(ours) == np.signbit(expected)
        assert same_sign.all(), f"{what}: the sign of a zero differs"
        return
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected), err_msg=what)
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(ours[~finite], expected[~finite], err_msg=what)
    slack = (RTOL[dtype] if rtol is None else rtol) * np.abs(expected)
    if dy is not None:
        slack = slack + 4 * np.finfo(dtype).eps * np.abs(np.asarray(dy, dtype=np.float64))
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf: masked out below
        error = np.abs(ours.astype(np.float64) - expected)
    assert np.all(error[finite] <= slack[finite]), f"{what}: {error[finite].max()} off"


@given(
    name=st.sampled_from(NAMES),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=7),
    dtype=st.sampled_from(DTYPES),
    layout=st.sampled_from(["c", "fortran", "strided", "reversed"]),
    seed=st.integers(0, 2**16),
)
def test_kernels_match_their_twins(name, shape, dtype, layout, seed):
    x = as_layout(_values(shape, dtype, seed), layout)
    exact = name == "relu"
    y = getattr(_ops, f"{name}_forward")(x)
    _assert_same(y, getattr(_reference, f"{name}_forward")(x), dtype, exact, f"{name} forward")
    dy = as_layout(_values(shape, dtype, seed + 1), layout)
    y_layout = as_layout(y, layout)
    dx = getattr(_ops, f"{name}_backward")(dy, y_layout)
    with np.errstate(invalid="ignore"):  # inf * 0 in the twin: NaN, as in the kernel
        expected = getattr(_reference, f"{name}_backward")(dy, y)
        _assert_same(dx, expected, dtype, exact, f"{name} backward", dy)


def test_relu_follows_torch_rules():
    x = np.array([np.nan, -0.0, 0.0, -1.0, 2.0, np.inf, -np.inf])
    y = _ops.relu_forward(x)
    np.testing.assert_array_equal(y, [np.nan, 0.0, 0.0, 0.0, 2.0, np.inf, 0.0])
    assert np.signbit(y[1]) and not np.signbit(y[2]), "relu keeps -0.0 and +0.0"
    # a select: 0 where y <= 0 even for an inf or NaN gradient; a NaN output lets it through
    dy = np.array([5.0, np.inf, np.nan, np.nan, np.nan, np.inf, np.inf])
    np.testing.assert_array_equal(
        _ops.relu_backward(dy, y), [5.0, 0.0, 0.0, 0.0, np.nan, np.inf, 0.0]
    )


def test_sigmoid_is_stable_for_large_inputs():
    x = np.array([-1e4, -800.0, -100.0, 0.0, 100.0, 800.0, 1e4, np.nan])
    for dtype in DTYPES:
        with np.errstate(all="raise"):
            y = _ops.sigmoid_forward(x.astype(dtype))
        assert np.all((y[:-1] >= 0) & (y[:-1] <= 1)) and np.isnan(y[-1])
        assert y[3] == 0.5 and y[-2] == 1.0 and y[0] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bits_with_one_and_two_threads(dtype):
    # 300000 values: ten chunks of VALUES_PER_THREAD, split between the threads
    x = _values((3, 100000), dtype, 11)
    dy = _values((3, 100000), dtype, 12)
    before = _ops.get_num_threads()
    results = {}
    try:
        for threads in (1, 2):
            _ops.set_num_threads(threads)
            run = []
            for name in NAMES:
                y = getattr(_ops, f"{name}_forward")(x)
                run += [y, getattr(_ops, f"{name}_backward")(dy, y)]
            results[threads] = run
    finally:
        _ops.set_num_threads(before)
    for i, (a, b) in enumerate(zip(results[1], results[2])):
        assert a.tobytes() == b.tobytes(), f"result {i} differs between 1 and 2 threads"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_kernels_match_torch(torch, name, dtype):
    x = _values((5, 7, 9), dtype, 3)
    dy = _values((5, 7, 9), dtype, 4)
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch, name)(tx)
    ty.backward(torch.tensor(dy))
    exact = name == "relu"
    # torch's float32 sigmoid and tanh are within a few units in the last place
    rtol = {np.float32: 2e-6, np.float64: 1e-14}[dtype]
    y = getattr(_ops, f"{name}_forward")(x)
    torch_y = ty.detach().numpy()
    if exact or dtype == np.float64:
        _assert_same(y, torch_y, dtype, exact, f"{name} forward", rtol=rtol)
    else:
        # sigmoid(-100) in float32: torch rounds 1 / (1 + exp(100)) to 0, the kernel
        # keeps the denormal e / (1 + e)
        np.testing.assert_allclose(y, torch_y, rtol=rtol, atol=np.finfo(dtype).tiny)
    # the backward from torch's own output: 1 - y cancels near 1, where one unit of y
    # is a large relative change of the gradient
    dx = getattr(_ops, f"{name}_backward")(dy, torch_y)
    _assert_same(dx, tx.grad.numpy(), dtype, exact, f"{name} dx", dy, rtol)


# ---------------------------------------------------------------- Tensor ops and layers


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_tensor_activations_match_torch(torch, name, dtype):
    x = _values((4, 6), dtype, 5)
    dy = _values((4, 6), dtype, 6)
    ours = minidl.tensor(x, requires_grad=True)
    out = getattr(ours, name)()
    out.backward(minidl.tensor(dy))
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch, name)(tx)
    ty.backward(torch.tensor(dy))
    exact = name == "relu"
    rtol = {np.float32: 2e-6, np.float64: 1e-14}[dtype]
    atol = np.finfo(dtype).tiny
    np.testing.assert_allclose(out.numpy(), ty.detach().numpy(), rtol=rtol, atol=atol)
    # our y and torch's may differ by a unit in the last place, which 1 - y amplifies
    # near |y| = 1 to a few EPSILON * |dy| in the gradient
    _assert_same(ours.grad.numpy(), tx.grad.numpy(), dtype, exact, "dx", 4 * dy, rtol)


def test_integer_relu_keeps_its_dtype():
    out = minidl.tensor([-2, 3]).relu()
    assert out.dtype == np.int64 and out.numpy().tolist() == [0, 3]


@pytest.mark.parametrize("name", NAMES)
def test_in_place_activations_bump_the_version(name):
    x = minidl.tensor([-1.0, 0.5, 2.0])
    before = x._version
    result = getattr(x, f"{name}_")()
    assert result is x and x._version == before + 1
    expected = getattr(minidl.tensor([-1.0, 0.5, 2.0]), name)().numpy()
    np.testing.assert_array_equal(x.numpy(), expected)


def test_in_place_relu_of_a_saved_tensor_fails_backward():
    x = minidl.tensor([-1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = y.sigmoid() * y  # Mul saved y
    nn.functional.relu(y, inplace=True)
    with pytest.raises(RuntimeError):
        z.sum().backward()


def test_functional_and_layer_relu_in_place(torch):
    data = np.array([-1.0, -0.0, 3.0, np.nan])
    x = minidl.tensor(data.copy())
    assert nn.functional.relu(x, inplace=True) is x
    np.testing.assert_array_equal(x.numpy(), torch.relu(torch.tensor(data)).numpy())
    layer = nn.ReLU(inplace=True)
    assert repr(layer) == "ReLU(inplace=True)" and repr(nn.ReLU()) == "ReLU()"
    y = minidl.tensor(data.copy())
    assert layer(y) is y
    np.testing.assert_array_equal(y.numpy(), x.numpy())


# ---------------------------------------------------------------- ReLU -> MaxPool2d fusion


def _with_specials(shape, dtype, seed):
    """Small integers (many ties) with NaN, -0.0 and +-inf."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(dtype)
    draw = rng.random(shape)
    x[draw < 0.05] = np.nan
    x[(draw >= 0.05) & (draw < 0.15)] = -0.0
    x[(draw >= 0.15) & (draw < 0.18)] = np.inf
    x[(draw >= 0.18) & (draw < 0.2)] = -np.inf
    return x


def _run(model, x, dy):
    xt = minidl.tensor(x, requires_grad=True)
    y = model(xt)
    y.backward(minidl.tensor(dy))
    return y, xt.grad.numpy()


def _same_bits(a, b, what):
    np.testing.assert_array_equal(a, b, err_msg=what)
    assert np.array_equal(np.signbit(a), np.signbit(b)), f"{what}: the sign of a zero differs"


POOLS = [(2, None, 0, 1, False), (3, 2, 1, 1, False), (2, 3, 0, 1, False), (3, 1, 1, 1, False)]
POOLS += [(2, 2, 0, 2, False), (3, 2, 0, 1, True)]  # dilation, ceil mode: the im2col path


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "ceil_mode"), POOLS)
def test_fused_relu_pool_is_the_unfused_path_and_torch(
    torch, dtype, kernel, stride, padding, dilation, ceil_mode
):
    x = _with_specials((3, 4, 9, 10), dtype, 1)

    def pool():
        return nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)

    fused = nn.Sequential(nn.ReLU(), pool())
    unfused = nn.Sequential(nn.ReLU(), pool())
    unfused[0].register_forward_hook(lambda *args: None)  # a hook: runs unfused
    shape = fused(minidl.tensor(x)).shape
    dy = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    dy[:, ::2] = -0.0
    y, dx = _run(fused, x, dy)
    assert y._ctx.function.__name__ == "_ReLUMaxPool2dFn", "the pair was not fused"
    y_ref, dx_ref = _run(unfused, x, dy)
    assert y_ref._ctx.function.__name__ == "_MaxPool2dFn"
    _same_bits(y.numpy(), y_ref.numpy(), "fused vs unfused values")
    _same_bits(dx, dx_ref, "fused vs unfused gradients")
    tx = torch.tensor(x, requires_grad=True)
    t_pool = torch.nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    ty = torch.nn.Sequential(torch.nn.ReLU(), t_pool)(tx)
    ty.backward(torch.tensor(dy))
    _same_bits(y.numpy(), ty.detach().numpy(), "fused vs torch values")
    _same_bits(dx, tx.grad.numpy(), "fused vs torch gradients")


def test_fusion_only_where_nothing_can_tell(torch):
    x = _with_specials((2, 3, 6, 6), np.float32, 3)
    data = x.copy()
    # an in-place ReLU changes the caller's tensor: not fused, and it does change it
    xt = minidl.tensor(data)
    y = nn.Sequential(nn.ReLU(inplace=True), nn.MaxPool2d(2))(xt)
    assert y._ctx is None or y._ctx.function.__name__ != "_ReLUMaxPool2dFn"
    _same_bits(xt.numpy(), torch.relu(torch.tensor(x)).numpy(), "in-place ReLU")
    # return_indices: the pool's own output
    _, indices = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))(minidl.tensor(x))
    _, torch_indices = torch.nn.functional.max_pool2d(
        torch.relu(torch.tensor(x)), 2, return_indices=True
    )
    np.testing.assert_array_equal(indices.numpy(), torch_indices.numpy())

    # a subclass, a pre-hook on the pool, a patched forward: each runs unfused
    class MyReLU(nn.ReLU):
        pass

    hooked = nn.MaxPool2d(2)
    calls = []
    hooked.register_forward_pre_hook(lambda module, args: calls.append(1))
    patched = nn.ReLU()
    patched.forward = lambda t: t.relu() * 2.0
    for model in [
        nn.Sequential(MyReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.ReLU(), hooked),
        nn.Sequential(patched, nn.MaxPool2d(2)),
    ]:
        y = model(minidl.tensor(x, requires_grad=True))
        assert y._ctx.function.__name__ != "_ReLUMaxPool2dFn"
    assert calls == [1]
    # integers are not the kernels' dtype: unfused, as before
    ints = minidl.tensor(np.arange(16).reshape(1, 1, 4, 4) - 8)
    with pytest.raises(TypeError):
        nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))(ints)
