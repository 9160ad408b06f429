"""The fused optimizer kernels (``_ops.sgd_update``, ``_ops.adam_update``) against their numpy
twins in ``minidl._reference`` and against torch.optim's single-tensor steps."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kernel_checks import as_layout, assert_close, with_one_and_two_threads

from minidl import _ops, _reference

DTYPES = [np.float32, np.float64]
# float32: the kernel rounds like torch (every scalar in the parameter's dtype) but the
# compiler may fuse a multiply and an add, which numpy never does: a few ulps apart
TOLERANCE = {np.float32: 2e-6, np.float64: 1e-12}
SLAB = 32768  # VALUES_PER_THREAD in _ops.pyx: one slab of a parameter per task


def _close(ours, expected, dtype, what):
    assert_close(ours, expected, TOLERANCE[np.dtype(dtype).type], what)


shapes = st.lists(
    st.sampled_from([(), (0,), (1,), (7,), (3, 5), (2, 3, 4), (17, 31), (SLAB + 5,)]),
    min_size=0,
    max_size=4,
)


@st.composite
def groups(draw, states):
    """Parameters of several shapes (one dtype or mixed), their gradients (some non-finite)
    and ``states`` state arrays per parameter, each array in a drawn memory layout."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    mixed = draw(st.booleans())
    dtype = draw(st.sampled_from(DTYPES))
    nonfinite = draw(st.booleans())
    params, grads, state = [], [], [[] for _ in range(states)]
    for shape in draw(shapes):
        kind = draw(st.sampled_from(DTYPES)) if mixed else dtype

        def array(scale=1.0, positive=False, shape=shape, kind=kind):
            values = np.asarray(rng.standard_normal(shape) * scale)
            values = np.asarray(np.abs(values)) if positive else values
            return as_layout(values.astype(kind), draw(st.sampled_from(LAYOUTS)))

        params.append(array())
        grad = array(2.0)
        if nonfinite and grad.size:
            grad.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        grads.append(grad)
        for index in range(states):
            state[index].append(array(0.1, positive=index > 0))  # second moments >= 0
    return params, grads, state


LAYOUTS = ["c", "c", "fortran", "strided", "reversed"]


def _copies(arrays):
    return [None if a is None else a.copy() for a in arrays]


def _check_same(ours, theirs, what):
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what}[{i}]"
        _close(a, b, a.dtype, f"{what}[{i}]")


# ---------------------------------------------------------------- against the numpy twins


@given(
    group=groups(states=1),
    momentum=st.sampled_from([0.0, 0.9]),
    dampening=st.sampled_from([0.0, 0.3]),
    nesterov=st.booleans(),
    weight_decay=st.sampled_from([0.0, 0.05]),
    maximize=st.booleans(),
    first_step=st.booleans(),
)
def test_sgd_update_matches_reference(
    group, momentum, dampening, nesterov, weight_decay, maximize, first_step
):
    params, grads, (buffers,) = group
    nesterov = nesterov and momentum > 0 and dampening == 0
    if first_step:
        buffers = [None] * len(params)
    options = dict(
        lr=0.1, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
        nesterov=nesterov, maximize=maximize,
    )  # fmt: skip
    theirs_params, theirs_buffers = _copies(params), _copies(buffers)
    ours_params = params  # updated in place, whatever their layout
    for step in range(3):  # a created buffer is then carried on
        ours_buffers = _ops.sgd_update(ours_params, grads, buffers, **options)
        with np.errstate(all="ignore"):  # the non-finite gradients
            theirs_buffers = _reference.sgd_update(theirs_params, grads, theirs_buffers, **options)
        _check_same(ours_params, theirs_params, f"params after step {step}")
        if momentum:
            _check_same(ours_buffers, theirs_buffers, f"buffers after step {step}")
            for buffer, grad in zip(ours_buffers, grads):
                assert not np.shares_memory(buffer, grad), "a momentum buffer aliases a gradient"
        buffers = ours_buffers


@given(
    group=groups(states=3),
    betas=st.sampled_from([(0.9, 0.999), (0.3, 0.9), (0.5, 0.5)]),
    weight_decay=st.sampled_from([0.0, 0.1]),
    decoupled=st.booleans(),
    amsgrad=st.booleans(),
    maximize=st.booleans(),
    first_step=st.integers(1, 40),
)
def test_adam_update_matches_reference(
    group, betas, weight_decay, decoupled, amsgrad, maximize, first_step
):
    # beta1 = 0.3 and 0.5 take torch's other lerp formula (weight 1 - beta1 >= 0.5)
    params, grads, (exp_avgs, exp_avg_sqs, maxima) = group
    options = dict(
        lr=0.01, beta1=betas[0], beta2=betas[1], eps=1e-8, weight_decay=weight_decay,
        decoupled_weight_decay=decoupled, amsgrad=amsgrad, maximize=maximize,
    )  # fmt: skip
    theirs = [_copies(a) for a in (params, exp_avgs, exp_avg_sqs, maxima)]
    for step in range(first_step, first_step + 3):
        steps = [step + i for i in range(len(params))]  # parameters may be at other steps
        _ops.adam_update(params, grads, exp_avgs, exp_avg_sqs, maxima, steps, **options)
        with np.errstate(all="ignore"):  # the non-finite gradients
            _reference.adam_update(*theirs[:1], grads, *theirs[1:], steps, **options)
        for what, ours, expected in zip(
            ["params", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"],
            [params, exp_avgs, exp_avg_sqs, maxima],
            theirs,
        ):
            _check_same(ours, expected, f"{what} after step {step}")


def test_adam_without_amsgrad_leaves_maxima_alone_and_takes_none():
    maxima = [np.full(3, 7.0)]
    p = np.ones(3)
    _ops.adam_update(
        [p], [np.ones(3)], [np.zeros(3)], [np.zeros(3)], maxima, [1], 0.1, 0.9, 0.9, 1e-8
    )
    _ops.adam_update(
        [p], [np.ones(3)], [np.zeros(3)], [np.zeros(3)], None, [1], 0.1, 0.9, 0.9, 1e-8
    )
    assert (maxima[0] == 7.0).all()


def test_amsgrad_maximum_propagates_nan_as_torch_maximum():
    p, m, v = np.ones(3), np.zeros(3), np.array([1.0, np.nan, 1.0])
    maxima = [np.array([np.nan, 0.0, 0.0])]
    _ops.adam_update([p], [np.ones(3)], [m], [v], maxima, [1], 0.1, 0.9, 0.9, 1e-8, amsgrad=True)
    assert np.isnan(maxima[0][:2]).all() and maxima[0][2] > 0
    assert np.isnan(p[:2]).all() and np.isfinite(p[2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_bits_with_one_and_two_threads(dtype):
    rng = np.random.default_rng(3)
    shapes = [(3 * SLAB + 11,), (200, 300), (5,)]

    def run():
        params = [base.astype(dtype) for base in bases]
        grads = [g.astype(dtype) for g in gradients]
        buffers = _ops.sgd_update(params, grads, [None] * 3, 0.1, momentum=0.9)
        buffers = _ops.sgd_update(params, grads, buffers, 0.1, 0.9, 0.1, 0.01)
        states = [[np.zeros_like(p) for p in params] for _ in range(3)]
        _ops.adam_update(params, grads, *states, [1, 2, 3], 0.01, 0.9, 0.99, 1e-8, 0.1, True, True)
        return [a.tobytes() for a in [*params, *buffers, *states[0], *states[1], *states[2]]]

    bases = [rng.standard_normal(s) for s in shapes]
    gradients = [rng.standard_normal(s) for s in shapes]
    single, double = with_one_and_two_threads(run)
    assert single == double


# ---------------------------------------------------------------- memory shared between arrays


def test_parameters_sharing_memory_update_one_after_the_other():
    # two parameters over one array (nn.Parameter(t) twice): as a loop over them does
    shared = np.linspace(-1, 1, 6)
    grads = [np.full(6, 0.5), np.arange(6.0)]
    theirs = shared.copy()
    _reference.sgd_update([theirs, theirs], grads, None, lr=0.1)
    _ops.sgd_update([shared, shared], grads, None, lr=0.1)
    _close(shared, theirs, np.float64, "a parameter updated twice")


def test_gradient_sharing_memory_with_a_parameter_is_read_before_it_changes():
    # the first gradient is the second parameter reversed, the second its own parameter:
    # each is read as it is when its parameter's update starts, as a numpy loop reads it
    ours, theirs = np.arange(8.0), np.arange(8.0)
    for arrays, update in [(ours, _ops.sgd_update), (theirs, _reference.sgd_update)]:
        update([arrays[:4], arrays[4:]], [arrays[::-1][:4], arrays[4:]], None, lr=0.5)
    _close(ours, theirs, np.float64, "parameters read through their gradients")


def test_a_parameter_sharing_memory_with_its_own_state_is_refused():
    p = np.ones(4)
    with pytest.raises(ValueError, match="share memory"):
        _ops.adam_update([p], [np.ones(4)], [p], [np.zeros(4)], None, [1], 0.1, 0.9, 0.9, 1e-8)


def test_parameters_and_buffers_keep_their_layout_and_identity():
    p = np.asfortranarray(np.ones((3, 4)))
    buffer = np.zeros((4, 3)).T
    buffers = _ops.sgd_update([p], [np.ones((3, 4))], [buffer], lr=0.5, momentum=0.5)
    assert buffers[0] is buffer and p.flags.f_contiguous
    np.testing.assert_array_equal(buffer, np.ones((3, 4)))
    np.testing.assert_array_equal(p, np.full((3, 4), 0.5))


# ---------------------------------------------------------------- against torch


def _torch_run(torch, optimizer, params, grads_per_step, options):
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    opt = optimizer(tensors, foreach=False, **options)
    for grads in grads_per_step:
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        opt.step()
    return [t.detach().numpy() for t in tensors]


TORCH_CASES = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "maximize": True}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.99), "weight_decay": 0.1, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "maximize": True}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, options", TORCH_CASES)
def test_kernels_follow_torch_single_tensor_steps(torch, name, options, dtype):
    rng = np.random.default_rng(5)
    params = [rng.standard_normal(s).astype(dtype) for s in [(40, 30), (SLAB + 3,), (7,)]]
    steps = [[rng.standard_normal(p.shape).astype(dtype) for p in params] for _ in range(20)]
    expected = _torch_run(torch, getattr(torch.optim, name), params, steps, options)
    ours = [p.copy() for p in params]
    if name == "SGD":
        buffers = [None] * len(ours)
        for grads in steps:
            buffers = _ops.sgd_update(ours, grads, buffers, **options)
    else:
        states = [[np.zeros_like(p) for p in ours] for _ in range(3)]
        beta1, beta2 = options.get("betas", (0.9, 0.999))
        for step, grads in enumerate(steps, start=1):
            _ops.adam_update(
                ours, grads, *states, [step] * len(ours), options["lr"], beta1, beta2, 1e-8,
                options.get("weight_decay", 0.01 if name == "AdamW" else 0.0),
                decoupled_weight_decay=name == "AdamW", amsgrad=options.get("amsgrad", False),
                maximize=options.get("maximize", False),
            )  # fmt: skip
    # float64: the same operations, in the same order, rounded alike; float32: both
    # sides may fuse a multiply and an add in some places, over 20 steps
    tolerance = 1e-10 if dtype == np.float64 else 1e-5
    for i, (a, b) in enumerate(zip(ours, expected)):
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance, err_msg=f"param {i}")


# ---------------------------------------------------------------- argument checks


def test_arguments_are_checked_with_clear_messages():
    p = np.ones(3)
    with pytest.raises(TypeError, match="params as a list"):
        _ops.sgd_update(p, [p], None, 0.1)
    with pytest.raises(ValueError, match="expected 1 grads"):
        _ops.sgd_update([p], [], None, 0.1)
    with pytest.raises(TypeError, match=r"grads\[0\] has dtype float32"):
        _ops.sgd_update([p], [np.ones(3, np.float32)], None, 0.1)
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(2,\)"):
        _ops.sgd_update([p], [np.ones(2)], None, 0.1)
    with pytest.raises(TypeError, match="momentum_buffers as a list"):
        _ops.sgd_update([p], [p.copy()], None, 0.1, momentum=0.9)
    read_only = np.ones(3)
    read_only.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        _ops.sgd_update([read_only], [p], None, 0.1)
    with pytest.raises(ValueError, match=r"steps\[0\] must be a number >= 1"):
        _ops.adam_update([p], [p.copy()], [p * 0], [p * 0], None, [0], 0.1, 0.9, 0.9, 1e-8)
    with pytest.raises(TypeError, match=r"max_exp_avg_sqs as a list"):
        _ops.adam_update(
            [p], [p.copy()], [p * 0], [p * 0], None, [1], 0.1, 0.9, 0.9, 1e-8, amsgrad=True
        )
    assert _ops.sgd_update([], [], None, 0.1) == []
