"""minidl.nn.normalization (LayerNorm, GroupNorm, InstanceNorm1d/2d, BatchNorm3d) and the
functional forms against PyTorch in float64, gradchecks, state dicts and bad inputs."""

import copy

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

TOLERANCE = 1e-8

# name -> (minidl layer factory, torch layer factory, input shape)
LAYERS = {
    "layernorm_last": (lambda: nn.LayerNorm(6), lambda: tnn.LayerNorm(6), (4, 5, 6)),
    "layernorm_two_dims": (
        lambda: nn.LayerNorm((3, 4), eps=1e-3),
        lambda: tnn.LayerNorm((3, 4), eps=1e-3),
        (2, 5, 3, 4),
    ),
    "layernorm_no_bias": (
        lambda: nn.LayerNorm([7], bias=False),
        lambda: tnn.LayerNorm([7], bias=False),
        (3, 7),
    ),
    "layernorm_no_affine": (
        lambda: nn.LayerNorm(5, elementwise_affine=False),
        lambda: tnn.LayerNorm(5, elementwise_affine=False),
        (5,),
    ),
    "groupnorm": (lambda: nn.GroupNorm(3, 6), lambda: tnn.GroupNorm(3, 6), (4, 6, 5, 3)),
    "groupnorm_2d_input": (lambda: nn.GroupNorm(2, 8), lambda: tnn.GroupNorm(2, 8), (5, 8)),
    "groupnorm_5d_one_group": (
        lambda: nn.GroupNorm(1, 4, eps=1e-3),
        lambda: tnn.GroupNorm(1, 4, eps=1e-3),
        (2, 4, 3, 2, 3),
    ),
    "groupnorm_no_affine": (
        lambda: nn.GroupNorm(4, 4, affine=False),
        lambda: tnn.GroupNorm(4, 4, affine=False),
        (3, 4, 7),
    ),
    "groupnorm_no_bias": (
        lambda: nn.GroupNorm(2, 4, bias=False),
        lambda: tnn.GroupNorm(2, 4, bias=False),
        (3, 4, 7),
    ),
    "instancenorm1d": (lambda: nn.InstanceNorm1d(4), lambda: tnn.InstanceNorm1d(4), (3, 4, 9)),
    "instancenorm1d_unbatched": (
        lambda: nn.InstanceNorm1d(4, affine=True),
        lambda: tnn.InstanceNorm1d(4, affine=True),
        (4, 9),
    ),
    "instancenorm1d_tracked": (
        lambda: nn.InstanceNorm1d(4, affine=True, track_running_stats=True),
        lambda: tnn.InstanceNorm1d(4, affine=True, track_running_stats=True),
        (3, 4, 9),
    ),
    "instancenorm2d": (lambda: nn.InstanceNorm2d(3), lambda: tnn.InstanceNorm2d(3), (2, 3, 5, 6)),
    "instancenorm2d_tracked": (
        lambda: nn.InstanceNorm2d(3, momentum=0.3, affine=True, track_running_stats=True),
        lambda: tnn.InstanceNorm2d(3, momentum=0.3, affine=True, track_running_stats=True),
        (2, 3, 5, 6),
    ),
    "instancenorm2d_tracked_momentum_none": (
        lambda: nn.InstanceNorm2d(3, momentum=None, track_running_stats=True),
        lambda: tnn.InstanceNorm2d(3, momentum=None, track_running_stats=True),
        (2, 3, 4, 4),
    ),
    "instancenorm2d_unbatched_tracked": (
        lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
        lambda: tnn.InstanceNorm2d(3, affine=True, track_running_stats=True),
        (3, 4, 5),
    ),
    "batchnorm3d": (lambda: nn.BatchNorm3d(4), lambda: tnn.BatchNorm3d(4), (3, 4, 2, 3, 5)),
    "batchnorm3d_momentum_none": (
        lambda: nn.BatchNorm3D(3, momentum=None, eps=1e-3),
        lambda: tnn.BatchNorm3d(3, momentum=None, eps=1e-3),
        (2, 3, 2, 2, 3),
    ),
    "batchnorm3d_untracked": (
        lambda: nn.BatchNorm3D(3, track_running_stats=False),
        lambda: tnn.BatchNorm3d(3, track_running_stats=False),
        (2, 3, 2, 2, 3),
    ),
}


def _pair_up(name):
    """The two layers with the same random parameters and running statistics."""
    ours_factory, theirs_factory, shape = LAYERS[name]
    torch.manual_seed(0)
    theirs = theirs_factory().double()
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.uniform_(0.5, 1.5)
        for key, buffer in theirs.named_buffers():
            if key.startswith("running"):
                buffer.uniform_(0.5, 1.5)
    ours = ours_factory().double()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs, shape


def _assert_close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE, atol=TOLERANCE, err_msg=what)


def _compare(name, ours, theirs, x, upstream):
    mine = minidl.tensor(x, requires_grad=True)
    their_x = torch.tensor(x, requires_grad=True)
    out = ours(mine)
    expected = theirs(their_x)
    _assert_close(out.numpy(), expected.detach().numpy(), f"{name}: output")
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    _assert_close(mine.grad.numpy(), their_x.grad.numpy(), f"{name}: input gradient")
    their_params = dict(theirs.named_parameters())
    assert sorted(their_params) == sorted(dict(ours.named_parameters()))
    for key, parameter in ours.named_parameters():
        _assert_close(
            parameter.grad.numpy(), their_params[key].grad.numpy(), f"{name}: grad of {key}"
        )
    their_state = theirs.state_dict()
    assert list(ours.state_dict()) == list(their_state), f"{name}: state-dict keys"
    for key, value in ours.state_dict().items():
        _assert_close(value, their_state[key].numpy(), f"{name}: {key}")


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_torch_in_train_and_eval(name):
    ours, theirs, shape = _pair_up(name)
    rng = np.random.default_rng(0)
    for mode in ("train", "train", "eval"):
        ours.train(mode == "train")
        theirs.train(mode == "train")
        for module in (ours, theirs):
            module.zero_grad()
        x = rng.standard_normal(shape) * 2 + 0.5
        _compare(f"{name} ({mode})", ours, theirs, x, rng.standard_normal(shape))


@pytest.mark.parametrize("name", sorted(n for n in LAYERS if not n.startswith("batchnorm3d")))
def test_layer_repr_matches_torch(name):
    # (BatchNorm3D prints as minidl's BatchNorm does, without torch's bias=)
    ours, theirs, _ = _pair_up(name)
    assert ours.extra_repr() == theirs.extra_repr()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_state_dicts_load_both_ways_strictly(name):
    ours, _, shape = _pair_up(name)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    ours.train()
    ours(minidl.tensor(x))  # moves running statistics
    fresh = LAYERS[name][1]().double()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    back = LAYERS[name][0]().double()
    back.load_state_dict(fresh.state_dict(), strict=True)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key], value, err_msg=key)
    ours.eval(), back.eval(), fresh.eval()
    with torch.no_grad():
        expected = fresh(torch.tensor(x)).numpy()
    _assert_close(back(minidl.tensor(x)).numpy(), expected, f"{name}: after the round trip")


def test_instance_norm_keeps_num_batches_tracked_at_zero_as_torch():
    norm = nn.InstanceNorm1d(2, track_running_stats=True)
    norm(minidl.randn(3, 2, 5))
    assert int(norm.num_batches_tracked.item()) == 0


# ---------------------------------------------------------------- functional forms


def _functional_pair(ours, theirs, x, *parameters):
    """Run both functional calls on copies of x and parameters; compare values and grads."""
    rng = np.random.default_rng(4)
    mine = [minidl.tensor(a, requires_grad=True) for a in (x, *parameters)]
    their = [torch.tensor(a, requires_grad=True) for a in (x, *parameters)]
    out = ours(*mine)
    expected = theirs(*their)
    _assert_close(out.numpy(), expected.detach().numpy(), "output")
    upstream = rng.standard_normal(expected.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for index, (a, b) in enumerate(zip(mine, their)):
        _assert_close(a.grad.numpy(), b.grad.numpy(), f"gradient of input {index}")


def test_functional_layer_norm_matches_torch():
    rng = np.random.default_rng(0)
    x, weight, bias = rng.standard_normal((3, 4, 5)), rng.random((4, 5)), rng.random((4, 5))
    _functional_pair(
        lambda x, w, b: F.layer_norm(x, (4, 5), w, b, eps=1e-4),
        lambda x, w, b: torch.nn.functional.layer_norm(x, (4, 5), w, b, eps=1e-4),
        x,
        weight,
        bias,
    )


def test_functional_group_norm_matches_torch():
    rng = np.random.default_rng(1)
    x, weight, bias = rng.standard_normal((3, 6, 5)), rng.random(6), rng.random(6)
    _functional_pair(
        lambda x, w, b: F.group_norm(x, 2, w, b),
        lambda x, w, b: torch.nn.functional.group_norm(x, 2, w, b),
        x,
        weight,
        bias,
    )


@pytest.mark.parametrize("use_input_stats", [True, False])
def test_functional_instance_norm_matches_torch(use_input_stats):
    rng = np.random.default_rng(2)
    x, weight, bias = rng.standard_normal((3, 4, 5, 2)), rng.random(4), rng.random(4)
    running = [rng.random(4), rng.random(4) + 0.5]
    theirs_running = [torch.tensor(r) for r in running]
    ours_running = [r.copy() for r in running]
    _functional_pair(
        lambda x, w, b: F.instance_norm(x, *ours_running, w, b, use_input_stats, 0.2),
        lambda x, w, b: torch.nn.functional.instance_norm(
            x, *theirs_running, w, b, use_input_stats, 0.2
        ),
        x,
        weight,
        bias,
    )
    for a, b in zip(ours_running, theirs_running):
        _assert_close(a, b.numpy(), "running statistics")


def test_functional_batch_norm_takes_five_dims():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 2, 3, 4))
    _functional_pair(
        lambda x: F.batch_norm(x, training=True),
        lambda x: torch.nn.functional.batch_norm(x, None, None, training=True),
        x,
    )


# ---------------------------------------------------------------- gradchecks


@pytest.mark.parametrize(
    "layer, shape",
    [
        (lambda: nn.LayerNorm((3, 4)), (2, 3, 4)),
        (lambda: nn.GroupNorm(2, 4), (3, 4, 5)),
        (lambda: nn.InstanceNorm1d(3, affine=True), (2, 3, 6)),
        (lambda: nn.InstanceNorm2d(2, affine=True, track_running_stats=True), (2, 2, 3, 3)),
        (lambda: nn.BatchNorm3D(2), (3, 2, 2, 2, 2)),
    ],
)
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck(layer, shape, training):
    module = layer().double().train(training)
    rng = np.random.default_rng(5)
    for parameter in module.parameters():
        parameter.numpy()[...] = rng.uniform(0.5, 1.5, parameter.shape)
    x = minidl.tensor(rng.standard_normal(shape), requires_grad=True)
    params = list(module.parameters())
    # statistics may move in training: gradcheck evaluates the same module many times,
    # which is still differentiable in x and parameters at each step
    assert minidl.gradcheck(lambda x, *p: module(x), (x, *params))


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "make, x, message",
    [
        (lambda: nn.LayerNorm(4), (2, 3), r"LayerNorm\(\(4,\).*expected input of shape \(\*, 4\)"),
        (lambda: nn.LayerNorm((3, 4)), (4,), r"LayerNorm.*expected input of shape \(\*, 3, 4\)"),
        (lambda: nn.GroupNorm(2, 4), (2, 6, 3), r"GroupNorm\(2, 4.*\(N, 4, \*\)"),
        (lambda: nn.GroupNorm(2, 4), (4,), r"GroupNorm\(2, 4.*\(N, 4, \*\)"),
        (lambda: nn.InstanceNorm1d(3), (2, 3, 4, 4), r"InstanceNorm1d\(3.*\(N, 3, L\)"),
        (lambda: nn.InstanceNorm1d(3), (2, 4, 5), r"InstanceNorm1d\(3.*\(N, 3, L\)"),
        (lambda: nn.InstanceNorm2d(3), (2, 3, 5), r"InstanceNorm2d\(3.*\(N, 3, H, W\)"),
        (lambda: nn.InstanceNorm2d(3), (2, 3, 1, 1), r"InstanceNorm2d: Expected more than 1 spat"),
        (lambda: nn.BatchNorm3d(3), (2, 3, 4, 4), r"BatchNorm3D\(3.*\(N, 3, D, H, W\)"),
        (lambda: nn.BatchNorm3d(3), (2, 4, 2, 2, 2), r"BatchNorm3D\(3.*\(N, 3, D, H, W\)"),
    ],
)
def test_bad_inputs_are_refused_naming_the_layer(make, x, message):
    with pytest.raises(ValueError, match=message):
        make()(minidl.zeros(*x))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nn.GroupNorm(3, 4), r"GroupNorm: num_channels \(4\) must be divisible by"),
        (lambda: nn.GroupNorm(0, 4), "GroupNorm: num_groups must be a positive integer"),
        (lambda: nn.GroupNorm(2, 4.0), "GroupNorm: num_channels must be a positive integer"),
        (lambda: nn.LayerNorm(0), "LayerNorm: normalized_shape must be a positive int"),
        (lambda: nn.LayerNorm(()), "LayerNorm: normalized_shape must be a positive int"),
        (lambda: nn.LayerNorm("4"), "LayerNorm: normalized_shape must be a positive int"),
        (lambda: nn.InstanceNorm2d(-1), "InstanceNorm2d: num_features must be a positive"),
        (lambda: nn.BatchNorm3D(0), "BatchNorm3D: num_features must be a positive"),
    ],
)
def test_bad_arguments_are_refused_naming_the_layer(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_torch_refuses_the_same_group_count():
    with pytest.raises(ValueError, match="must be divisible by num_groups"):
        tnn.GroupNorm(3, 4)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x: F.layer_norm(x, (5,)), r"layer_norm: expected input of shape \(\*, 5\)"),
        (lambda x: F.layer_norm(x, 4, weight=minidl.ones(5)), "layer_norm: expected weight of"),
        (lambda x: F.layer_norm(x, [0]), "layer_norm: normalized_shape must be"),
        (lambda x: F.group_norm(x, 3), r"group_norm: num_channels \(4\) must be divisible"),
        (lambda x: F.group_norm(x, 2, bias=minidl.ones(2)), "group_norm: expected bias of"),
        (lambda x: F.group_norm(x[0, 0, 0], 1), r"group_norm: expected a \(N, C, \*\) input"),
        (lambda x: F.instance_norm(x[:, :, 0, 0]), "instance_norm: expected a .* trailing dim"),
        (lambda x: F.instance_norm(x[..., :1]), "instance_norm: Expected more than 1 spatial"),
        (lambda x: F.instance_norm(x, use_input_stats=False), "instance_norm: use_input_stats"),
        (lambda x: F.instance_norm(x, weight=minidl.ones(3)), "instance_norm: expected weight"),
        (lambda x: F.batch_norm(x[None, None], training=True), "batch_norm: expected a 2-d to 5"),
    ],
)
def test_functional_refuses_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(minidl.randn(2, 4, 1, 4))


def test_layers_copy_and_run_in_float32():
    layer = copy.deepcopy(nn.GroupNorm(2, 4))
    out = layer(minidl.randn(2, 4, 3))
    assert out.dtype == minidl.float32 and layer.weight.grad is None
