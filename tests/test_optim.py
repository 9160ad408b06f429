"""Optimizers and schedules against torch.optim over 50 steps, and their state dicts."""

import math

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.optim import lr_scheduler

torch = pytest.importorskip("torch")

SHAPES = [(4, 3), (3,), (2, 2, 2)]


@pytest.fixture(autouse=True)
def torch_float64():
    """torch keeps scalar optimizer state (``step``, NAdam's ``mu_product``) in its default
    dtype; the comparisons are in float64 on both sides."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _gradient(arrays, step, sign=1.0):
    """A gradient that depends on the parameters (so both sides must track them exactly).

    It pulls the parameters towards a bounded region when descended (``sign=-1`` for
    optimizers that maximize), so 50 steps stay finite.
    """
    return [sign * (2 * a + 0.1 * a**3 + math.sin(step + i)) for i, a in enumerate(arrays)]


def _pair(rng):
    values = [rng.standard_normal(s) for s in SHAPES]
    ours = [nn.Parameter(minidl.tensor(v)) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    return ours, theirs


OPTIMIZERS = {
    "sgd": (optim.SGD, torch.optim.SGD, {"lr": 0.01}),
    "sgd_momentum": (optim.SGD, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "dampening": 0.1}),
    "sgd_nesterov_wd": (
        optim.SGD,
        torch.optim.SGD,
        {"lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05},
    ),
    "sgd_maximize": (optim.SGD, torch.optim.SGD, {"lr": 0.01, "maximize": True}),
    "adam": (optim.Adam, torch.optim.Adam, {"lr": 0.01}),
    "adam_wd_amsgrad": (
        optim.Adam,
        torch.optim.Adam,
        {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "betas": (0.8, 0.99)},
    ),
    "adamw": (optim.AdamW, torch.optim.AdamW, {"lr": 0.01}),
    "adamw_amsgrad": (
        optim.AdamW,
        torch.optim.AdamW,
        {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True},
    ),
    "rmsprop": (optim.RMSprop, torch.optim.RMSprop, {"lr": 0.01}),
    "rmsprop_centered_momentum": (
        optim.RMSprop,
        torch.optim.RMSprop,
        {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.01, "alpha": 0.9},
    ),
    # maximize=True ascends: the negated gradient goes through weight decay and momentum
    "sgd_maximize_momentum_wd": (
        optim.SGD,
        torch.optim.SGD,
        {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.05, "maximize": True},
    ),
    "adam_maximize": (
        optim.Adam,
        torch.optim.Adam,
        {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "maximize": True},
    ),
    "adamw_maximize": (optim.AdamW, torch.optim.AdamW, {"lr": 0.01, "maximize": True}),
    "adadelta": (optim.Adadelta, torch.optim.Adadelta, {}),
    "adadelta_options": (
        optim.Adadelta,
        torch.optim.Adadelta,
        {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.1},
    ),
    "adadelta_maximize": (
        optim.Adadelta,
        torch.optim.Adadelta,
        {"lr": 0.5, "weight_decay": 0.1, "maximize": True},
    ),
    "adagrad": (optim.Adagrad, torch.optim.Adagrad, {"lr": 0.1}),
    "adagrad_options": (
        optim.Adagrad,
        torch.optim.Adagrad,
        {
            "lr": 0.1,
            "lr_decay": 0.02,
            "weight_decay": 0.1,
            "initial_accumulator_value": 0.5,
            "eps": 1e-6,
        },
    ),
    "adagrad_maximize": (
        optim.Adagrad,
        torch.optim.Adagrad,
        {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.05, "maximize": True},
    ),
    "nadam": (optim.NAdam, torch.optim.NAdam, {"lr": 0.01}),
    "nadam_options": (
        optim.NAdam,
        torch.optim.NAdam,
        {
            "lr": 0.01,
            "betas": (0.8, 0.99),
            "eps": 1e-6,
            "weight_decay": 0.1,
            "momentum_decay": 0.01,
        },
    ),
    "nadamw": (
        optim.NAdam,
        torch.optim.NAdam,
        {"lr": 0.02, "weight_decay": 0.3, "decoupled_weight_decay": True},
    ),
    "nadam_maximize": (
        optim.NAdam,
        torch.optim.NAdam,
        {"lr": 0.01, "weight_decay": 0.1, "maximize": True},
    ),
    # betas (0.5, 0.9): rho_t passes 5 at step 7, so both of RAdam's branches run
    "radam": (optim.RAdam, torch.optim.RAdam, {"lr": 0.01}),
    "radam_options": (
        optim.RAdam,
        torch.optim.RAdam,
        {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.1},
    ),
    "radamw": (
        optim.RAdam,
        torch.optim.RAdam,
        {"lr": 0.02, "betas": (0.5, 0.9), "weight_decay": 0.3, "decoupled_weight_decay": True},
    ),
    "radam_maximize": (
        optim.RAdam,
        torch.optim.RAdam,
        {"lr": 0.01, "weight_decay": 0.1, "maximize": True},
    ),
    "rmsprop_maximize": (
        optim.RMSprop,
        torch.optim.RMSprop,
        {"lr": 0.01, "momentum": 0.5, "centered": True, "maximize": True},
    ),
}


def _run(ours_opt, theirs_opt, ours, theirs, steps, start=0, schedules=None):
    sign = -1.0 if ours_opt.param_groups[0].get("maximize") else 1.0
    for step in range(start, start + steps):
        grads = _gradient([p.data for p in ours], step, sign)
        for p, g in zip(ours, grads):
            p.grad = minidl.tensor(g)
        for p, g in zip(theirs, _gradient([p.detach().numpy() for p in theirs], step, sign)):
            p.grad = torch.tensor(g)
        ours_opt.step()
        theirs_opt.step()
        if schedules:
            schedules[0].step()
            schedules[1].step()
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert np.all(np.isfinite(a.data)), f"parameter {i} diverged at step {step}"
            np.testing.assert_allclose(
                a.data,
                b.detach().numpy(),
                rtol=1e-6,
                atol=1e-6,
                err_msg=f"parameter {i}, step {step}",
            )


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_follows_torch_for_50_steps(name):
    ours_class, theirs_class, options = OPTIMIZERS[name]
    ours, theirs = _pair(np.random.default_rng(0))
    _run(ours_class(ours, **options), theirs_class(theirs, **options), ours, theirs, 50)


def test_parameter_groups_follow_torch():
    ours, theirs = _pair(np.random.default_rng(1))
    ours_opt = optim.SGD(
        [{"params": ours[:2]}, {"params": ours[2:], "lr": 0.1, "momentum": 0.5}], lr=0.01
    )
    theirs_opt = torch.optim.SGD(
        [{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.1, "momentum": 0.5}], lr=0.01
    )
    _run(ours_opt, theirs_opt, ours, theirs, 50)


NEW_OPTIMIZERS = ["adadelta_options", "adagrad_options", "nadam_options", "radam_options"]


@pytest.mark.parametrize("name", NEW_OPTIMIZERS)
def test_parameter_groups_of_new_optimizers_follow_torch(name):
    ours_class, theirs_class, options = OPTIMIZERS[name]
    ours, theirs = _pair(np.random.default_rng(1))
    group_options = {"lr": options["lr"] / 2, "weight_decay": 0.0, "maximize": True}
    if "betas" in options:
        group_options["betas"] = (0.7, 0.95)
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], **group_options}]  # noqa: E731
    ours_opt = ours_class(groups(ours), **options)
    theirs_opt = theirs_class(groups(theirs), **options)
    # _run flips the gradient's sign for the maximizing group through its own parameters
    for step in range(50):
        grads = _gradient([p.data for p in ours], step)
        grads[2] = -grads[2]
        for p, g in zip(ours, grads):
            p.grad = minidl.tensor(g)
        theirs_grads = _gradient([p.detach().numpy() for p in theirs], step)
        theirs_grads[2] = -theirs_grads[2]
        for p, g in zip(theirs, theirs_grads):
            p.grad = torch.tensor(g)
        ours_opt.step()
        theirs_opt.step()
        for i, (a, b) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(
                a.data, b.detach().numpy(), rtol=1e-6, atol=1e-6, err_msg=f"param {i}, step {step}"
            )


@pytest.mark.parametrize(
    "name", ["sgd_momentum", "adam_wd_amsgrad", "rmsprop_centered_momentum", *NEW_OPTIMIZERS]
)
def test_state_dict_round_trip_through_a_file_continues_identically(name, tmp_path):
    ours_class, theirs_class, options = OPTIMIZERS[name]
    ours, theirs = _pair(np.random.default_rng(2))
    ours_opt, theirs_opt = ours_class(ours, **options), theirs_class(theirs, **options)
    _run(ours_opt, theirs_opt, ours, theirs, 20)
    minidl.save(ours_opt.state_dict(), tmp_path / "opt.npz")
    restored = ours_class(ours, **options)
    restored.load_state_dict(minidl.load(tmp_path / "opt.npz"))
    _run(restored, theirs_opt, ours, theirs, 30, start=20)


def _fill_gradients(params, step):
    for p, g in zip(params, _gradient([p.data for p in params], step)):
        p.grad = minidl.tensor(g)


@pytest.mark.parametrize("name", NEW_OPTIMIZERS)
def test_restored_optimizer_is_bitwise_the_uninterrupted_one(name, tmp_path):
    ours_class, _, options = OPTIMIZERS[name]
    rng = np.random.default_rng(5)
    values = [rng.standard_normal(s) for s in SHAPES]
    straight = [nn.Parameter(minidl.tensor(v)) for v in values]
    resumed = [nn.Parameter(minidl.tensor(v)) for v in values]
    straight_opt, first_opt = ours_class(straight, **options), ours_class(resumed, **options)
    for step in range(20):
        for params, opt in ((straight, straight_opt), (resumed, first_opt)):
            _fill_gradients(params, step)
            opt.step()
    minidl.save(first_opt.state_dict(), tmp_path / "opt.npz")
    second_opt = ours_class(resumed, **options)
    second_opt.load_state_dict(minidl.load(tmp_path / "opt.npz"))
    for step in range(20, 50):
        for params, opt in ((straight, straight_opt), (resumed, second_opt)):
            _fill_gradients(params, step)
            opt.step()
    for i, (a, b) in enumerate(zip(straight, resumed)):
        assert a.numpy().tobytes() == b.numpy().tobytes(), f"parameter {i} differs after resuming"


def _state_to_torch(state_dict):
    return {
        "state": {
            index: {
                k: torch.tensor(v) if isinstance(v, np.ndarray) else torch.tensor(float(v))
                for k, v in values.items()
            }
            for index, values in state_dict["state"].items()
        },
        "param_groups": [dict(group) for group in state_dict["param_groups"]],
    }


def _state_from_torch(state_dict):
    return {
        "state": {
            index: {k: v.numpy() if torch.is_tensor(v) else v for k, v in values.items()}
            for index, values in state_dict["state"].items()
        },
        "param_groups": state_dict["param_groups"],
    }


@pytest.mark.parametrize("direction", ["minidl_to_torch", "torch_to_minidl"])
@pytest.mark.parametrize("name", NEW_OPTIMIZERS)
def test_optimizer_state_dicts_load_across_to_and_from_torch(name, direction):
    ours_class, theirs_class, options = OPTIMIZERS[name]
    ours, theirs = _pair(np.random.default_rng(6))
    ours_opt, theirs_opt = ours_class(ours, **options), theirs_class(theirs, **options)
    _run(ours_opt, theirs_opt, ours, theirs, 20)
    if direction == "minidl_to_torch":
        assert sorted(ours_opt.state_dict()["state"][0]) == sorted(
            theirs_opt.state_dict()["state"][0]
        ), "state keys differ from torch's"
        theirs_opt = theirs_class(theirs, **options)
        theirs_opt.load_state_dict(_state_to_torch(ours_opt.state_dict()))
    else:
        ours_opt = ours_class(ours, **options)
        ours_opt.load_state_dict(_state_from_torch(theirs_opt.state_dict()))
    _run(ours_opt, theirs_opt, ours, theirs, 30, start=20)


def test_adagrad_state_exists_from_the_start_and_group_accumulators_are_refused():
    w, v = nn.Parameter(minidl.ones(2)), nn.Parameter(minidl.ones(3))
    opt = optim.Adagrad([w, v], initial_accumulator_value=0.25)
    theirs = torch.optim.Adagrad(
        [torch.ones(2, requires_grad=True)], initial_accumulator_value=0.25
    )
    assert sorted(opt.state_dict()["state"]) == [0, 1]
    assert sorted(opt.state_dict()["state"][0]) == sorted(theirs.state_dict()["state"][0])
    np.testing.assert_array_equal(opt.state[w]["sum"], [0.25, 0.25])
    # torch would silently use 0.1 for both groups
    with pytest.raises(ValueError, match="per-group initial_accumulator_value"):
        optim.Adagrad(
            [{"params": [w]}, {"params": [v], "initial_accumulator_value": 0.5}],
            initial_accumulator_value=0.1,
        )
    late = nn.Parameter(minidl.ones(2))
    opt.add_param_group({"params": [late], "initial_accumulator_value": 1.0})
    late.grad = minidl.ones(2)
    opt.step()
    np.testing.assert_allclose(opt.state[late]["sum"], [2.0, 2.0])


def test_float32_parameters_stay_float32():
    w = nn.Parameter(minidl.ones(3))
    for opt in (
        optim.SGD([w], lr=0.1, momentum=0.9),
        optim.Adam([w]),
        optim.RMSprop([w]),
        optim.Adadelta([w], weight_decay=0.1),
        optim.Adagrad([w], weight_decay=0.1),
        optim.NAdam([w], weight_decay=0.1),
        optim.RAdam([w], weight_decay=0.1, decoupled_weight_decay=True),
    ):
        w.grad = minidl.ones(3)
        opt.step()
        assert w.dtype == np.float32
        assert all(
            v.dtype == np.float32 for v in opt.state[w].values() if isinstance(v, np.ndarray)
        )


def test_zero_grad_and_bad_arguments():
    w = nn.Parameter(minidl.ones(2))
    opt = optim.SGD([w], lr=0.1)
    w.grad = minidl.ones(2)
    opt.zero_grad(set_to_none=False)
    assert not w.grad.data.any()
    opt.zero_grad()
    assert w.grad is None
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match="SGD: Invalid learning rate: -1"):
        optim.SGD([w], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="not a single Tensor"):
        optim.SGD(w, lr=0.1)


BAD_HYPERPARAMETERS = [
    ("SGD", {"lr": 0.1, "momentum": -0.5}),
    ("SGD", {"lr": 0.1, "weight_decay": -1e-3}),
    ("Adam", {"eps": -1.0}),
    ("Adam", {"betas": (1.0, 0.999)}),
    ("Adam", {"betas": (0.9, -0.1)}),
    ("AdamW", {"lr": -1e-3}),
    ("AdamW", {"betas": (0.9, 1.0)}),
    ("RMSprop", {"alpha": -0.5}),
    ("RMSprop", {"momentum": -0.1}),
    ("RMSprop", {"eps": -1e-8}),
    ("Adadelta", {"lr": -1.0}),
    ("Adadelta", {"rho": 1.5}),
    ("Adadelta", {"rho": -0.1}),
    ("Adadelta", {"eps": -1e-6}),
    ("Adadelta", {"weight_decay": -0.1}),
    ("Adagrad", {"lr": -0.01}),
    ("Adagrad", {"lr_decay": -0.1}),
    ("Adagrad", {"weight_decay": -0.1}),
    ("Adagrad", {"initial_accumulator_value": -0.5}),
    ("Adagrad", {"eps": -1e-10}),
    ("NAdam", {"lr": -2e-3}),
    ("NAdam", {"eps": -1e-8}),
    ("NAdam", {"betas": (1.0, 0.999)}),
    ("NAdam", {"betas": (0.9, 1.0)}),
    ("NAdam", {"weight_decay": -0.1}),
    ("NAdam", {"momentum_decay": -4e-3}),
    ("RAdam", {"lr": -1e-3}),
    ("RAdam", {"eps": -1e-8}),
    ("RAdam", {"betas": (-0.1, 0.999)}),
    ("RAdam", {"betas": (0.9, 1.5)}),
    ("RAdam", {"weight_decay": -0.1}),
]


def _torch_error(name, options):
    with pytest.raises(ValueError) as caught:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **options)
    return str(caught.value)


@pytest.mark.parametrize(("name", "options"), BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_are_refused_with_torchs_message(name, options):
    message = _torch_error(name, options)
    with pytest.raises(ValueError) as caught:
        getattr(optim, name)([nn.Parameter(minidl.zeros(2))], **options)
    assert str(caught.value) == f"{name}: {message}"


def test_bad_hyperparameters_in_a_group_are_refused():
    # torch checks only the constructor's arguments; a group's own value is checked here too
    w, v = nn.Parameter(minidl.zeros(2)), nn.Parameter(minidl.zeros(2))
    with pytest.raises(ValueError, match=r"Adam: Invalid beta parameter at index 1: 1\.5"):
        optim.Adam([{"params": [w]}, {"params": [v], "betas": (0.9, 1.5)}])
    with pytest.raises(ValueError, match=r"SGD: Invalid learning rate: -0\.1"):
        optim.SGD([{"params": [w]}, {"params": [v], "lr": -0.1}], lr=0.1)


def test_closure_is_evaluated_with_grad():
    w = nn.Parameter(minidl.ones(2))
    opt = optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with minidl.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 2.0
    np.testing.assert_allclose(w.data, [0.8, 0.8])


# ---------------------------------------------------------------- schedules

SCHEDULES = {
    "step": (
        lambda o: lr_scheduler.StepLR(o, 7, 0.5),
        lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5),
    ),
    "multistep": (
        lambda o: lr_scheduler.MultiStepLR(o, [5, 12, 30], 0.3),
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [5, 12, 30], 0.3),
    ),
    "exponential": (
        lambda o: lr_scheduler.ExponentialLR(o, 0.95),
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.95),
    ),
    "cosine": (
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.001),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.001),
    ),
    "linear_warmup": (
        lambda o: lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10),
        lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10),
    ),
    "linear_decay": (
        lambda o: lr_scheduler.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=30),
        lambda o: torch.optim.lr_scheduler.LinearLR(
            o, start_factor=1.0, end_factor=0.2, total_iters=30
        ),
    ),
    "onecycle": (
        lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=60),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=60),
    ),
    "onecycle_three_phase_linear": (
        lambda o: lr_scheduler.OneCycleLR(
            o,
            max_lr=[0.5, 0.2],
            epochs=6,
            steps_per_epoch=10,
            three_phase=True,
            anneal_strategy="linear",
            pct_start=0.25,
        ),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o,
            max_lr=[0.5, 0.2],
            epochs=6,
            steps_per_epoch=10,
            three_phase=True,
            anneal_strategy="linear",
            pct_start=0.25,
        ),
    ),
}


def _on_both(build):
    """The same schedule built on minidl's optimizer and on torch's: ``build(module, opt)``."""
    return (lambda o: build(lr_scheduler, o), lambda o: build(torch.optim.lr_scheduler, o))


SCHEDULES.update(
    {
        "lambda": _on_both(lambda L, o: L.LambdaLR(o, lambda epoch: 1.0 / (1.0 + 0.3 * epoch))),
        "lambda_per_group": _on_both(
            lambda L, o: L.LambdaLR(
                o, [lambda epoch: 0.9**epoch, lambda epoch: 1.0 + 0.5 * math.sin(epoch)]
            )
        ),
        "multiplicative": _on_both(lambda L, o: L.MultiplicativeLR(o, lambda epoch: 0.95)),
        "multiplicative_per_group": _on_both(
            lambda L, o: L.MultiplicativeLR(
                o, [lambda epoch: 0.97, lambda epoch: 1.02 if epoch % 3 else 0.9]
            )
        ),
        "warm_restarts": _on_both(
            lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=7, eta_min=0.001)
        ),
        "warm_restarts_doubling": _on_both(
            lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.002)
        ),
        "sequential_warmup_cosine": _on_both(
            lambda L, o: L.SequentialLR(
                o,
                [L.LinearLR(o, start_factor=0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=30)],
                milestones=[5],
            )
        ),
        # a chained MultiplicativeLR goes on from the lr the previous schedule left
        "sequential_three": _on_both(
            lambda L, o: L.SequentialLR(
                o,
                [
                    L.LinearLR(o, start_factor=0.5, total_iters=3),
                    L.ExponentialLR(o, 0.9),
                    L.MultiplicativeLR(o, lambda epoch: 0.8 + 0.01 * epoch),
                ],
                milestones=[4, 15],
            )
        ),
        "sequential_mixed": _on_both(
            lambda L, o: L.SequentialLR(
                o,
                [
                    L.MultiplicativeLR(o, lambda epoch: 0.9),
                    L.LambdaLR(o, lambda epoch: 0.5 + epoch / 10),
                    L.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2),
                    L.StepLR(o, 3, 0.5),
                ],
                milestones=[6, 12, 30],
            )
        ),
        "sequential_milestone_zero": _on_both(
            lambda L, o: L.SequentialLR(o, [L.ExponentialLR(o, 0.9), L.StepLR(o, 3)], [0])
        ),
        "linear_zero_iterations": _on_both(
            lambda L, o: L.LinearLR(o, start_factor=0.5, total_iters=0)
        ),
    }
)


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam"])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_follows_torch_for_50_steps(name, optimizer):
    ours_class, theirs_class, options = OPTIMIZERS[optimizer]
    ours, theirs = _pair(np.random.default_rng(3))
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.05}]  # noqa: E731
    ours_opt, theirs_opt = (
        ours_class(groups(ours), **options),
        theirs_class(groups(theirs), **options),
    )
    ours_schedule, theirs_schedule = SCHEDULES[name][0](ours_opt), SCHEDULES[name][1](theirs_opt)
    for step in range(50):
        np.testing.assert_allclose(
            ours_schedule.get_last_lr(),
            theirs_schedule.get_last_lr(),
            rtol=1e-6,
            atol=1e-12,
            err_msg=f"lr at step {step}",
        )
        for a, b in zip(ours_opt.param_groups, theirs_opt.param_groups):
            key = "betas" if "betas" in a else "momentum"
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6, err_msg=f"{key} at step {step}")
        _run(
            ours_opt,
            theirs_opt,
            ours,
            theirs,
            1,
            start=step,
            schedules=(ours_schedule, theirs_schedule),
        )


def test_onecycle_refuses_to_step_past_the_end():
    opt = optim.SGD(nn.Dense(2, 2).parameters(), lr=0.1)
    schedule = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(3):
        schedule.step()
    with pytest.raises(ValueError, match="total_steps is 3"):
        schedule.step()


def test_reduce_on_plateau_follows_torch():
    ours, theirs = _pair(np.random.default_rng(4))
    ours_opt, theirs_opt = optim.SGD(ours, lr=1.0), torch.optim.SGD(theirs, lr=1.0)
    options = dict(mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.05)
    ours_schedule = lr_scheduler.ReduceLROnPlateau(ours_opt, **options)
    theirs_schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs_opt, **options)
    values = [1.0, 0.9, 0.95, 0.95, 0.95, 0.89, 0.899, 0.9, 0.9, 0.9, 0.9, 0.5] + [0.5] * 20
    for epoch, value in enumerate(values):
        ours_schedule.step(value)
        theirs_schedule.step(value)
        assert ours_schedule.get_last_lr() == pytest.approx(theirs_schedule.get_last_lr()), epoch
    fresh = optim.SGD(nn.Dense(2, 2).parameters(), lr=1.0)
    max_mode = lr_scheduler.ReduceLROnPlateau(
        fresh, mode="max", threshold=0.1, threshold_mode="abs", patience=0
    )
    max_mode.step(1.0)
    assert max_mode.get_last_lr() == [1.0]
    max_mode.step(1.05)  # not better than 1.0 + 0.1
    assert max_mode.get_last_lr() == [pytest.approx(0.1)]


def test_scheduler_state_dict_round_trip(tmp_path):
    opt = optim.SGD(nn.Dense(2, 2).parameters(), lr=0.1, momentum=0.9)
    schedule = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    for _ in range(7):
        schedule.step()
    minidl.save(schedule.state_dict(), tmp_path / "schedule.npz")
    other_opt = optim.SGD(nn.Dense(2, 2).parameters(), lr=0.1, momentum=0.9)
    other = lr_scheduler.OneCycleLR(other_opt, max_lr=1.0, total_steps=20)
    other.load_state_dict(minidl.load(tmp_path / "schedule.npz"))
    for _ in range(5):
        schedule.step()
        other.step()
    assert other.get_last_lr() == schedule.get_last_lr()


@pytest.mark.parametrize(("T_0", "T_mult"), [(5, 1), (3, 2), (2, 3), (1, 2)])
def test_warm_restarts_with_fractional_epochs_follow_torch(T_0, T_mult):
    ours_opt = optim.SGD(nn.Dense(2, 2).parameters(), lr=0.1)
    theirs_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    ours = lr_scheduler.CosineAnnealingWarmRestarts(ours_opt, T_0, T_mult, eta_min=0.01)
    theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(theirs_opt, T_0, T_mult, 0.01)
    batches = 7
    for epoch in range(12):
        for batch in range(batches):
            point = epoch + batch / batches
            ours.step(point)
            theirs.step(point)
            assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12), point
            assert (ours.last_epoch, ours.T_i) == (theirs.last_epoch, theirs.T_i), point
    ours.step(2.5)  # back in time: the first period again
    theirs.step(2.5)
    for _ in range(10):  # and on, one epoch a step
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)


class _Decay:
    """A callable object: its attributes are saved in the schedule's state dict."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, epoch):
        return self.rate**epoch


NEW_SCHEDULES = {
    "lambda_object": _on_both(lambda L, o: L.LambdaLR(o, [_Decay(0.9), lambda e: 1 / (1 + e)])),
    "multiplicative": SCHEDULES["multiplicative_per_group"],
    "warm_restarts_doubling": SCHEDULES["warm_restarts_doubling"],
    "sequential_mixed": SCHEDULES["sequential_mixed"],
}


def _two_groups(params, library=optim):
    return library.SGD([{"params": params[:2]}, {"params": params[2:], "lr": 0.05}], lr=0.1)


@pytest.mark.parametrize("name", sorted(NEW_SCHEDULES))
def test_new_schedule_state_dicts_resume_identically(name, tmp_path):
    build = NEW_SCHEDULES[name][0]
    rng = np.random.default_rng(7)
    params = [nn.Parameter(minidl.tensor(rng.standard_normal(s))) for s in SHAPES]
    straight_opt = _two_groups(params)
    straight = build(straight_opt)
    first_opt = _two_groups(params)
    first = build(first_opt)
    for _ in range(20):
        straight.step()
        first.step()
    minidl.save(
        {"optimizer": first_opt.state_dict(), "schedule": first.state_dict()},
        tmp_path / "state.npz",
    )
    saved = minidl.load(tmp_path / "state.npz")
    second_opt = _two_groups(params)
    second = build(second_opt)
    second_opt.load_state_dict(saved["optimizer"])
    second.load_state_dict(saved["schedule"])
    for step in range(20, 50):
        assert second.get_last_lr() == straight.get_last_lr(), f"lr at step {step}"
        straight.step()
        second.step()


def test_schedules_with_functions_save_what_torch_saves():
    ours_opt = _two_groups([nn.Parameter(minidl.zeros(s)) for s in SHAPES])
    theirs_opt = _two_groups([torch.zeros(s, requires_grad=True) for s in SHAPES], torch.optim)
    ours, theirs = (
        build(opt) for build, opt in zip(NEW_SCHEDULES["lambda_object"], (ours_opt, theirs_opt))
    )
    for _ in range(3):
        theirs_opt.step()  # torch warns about a schedule stepped before its optimizer
        ours.step()
        theirs.step()
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert ours_state["lr_lambdas"] == theirs_state["lr_lambdas"] == [{"rate": 0.9}, None]
    for key in ("base_lrs", "last_epoch", "_last_lr"):
        assert ours_state[key] == pytest.approx(theirs_state[key]), key
    other = lr_scheduler.LambdaLR(ours_opt, [_Decay(0.5), lambda e: 1.0])
    other.load_state_dict(ours_state)
    assert other.lr_lambdas[0].rate == 0.9  # a callable object's attributes come back
    assert callable(other.lr_lambdas[1])  # a function stays the one it was built with
    with pytest.raises(ValueError, match=r"LambdaLR\.load_state_dict: the state has 2 lr_lambdas"):
        lr_scheduler.LambdaLR(
            optim.SGD(nn.Dense(2, 2).parameters(), lr=0.1), lambda e: 1.0
        ).load_state_dict(ours_state)
    sequential_opt = _two_groups([nn.Parameter(minidl.zeros(s)) for s in SHAPES])
    sequential = NEW_SCHEDULES["sequential_mixed"][0](sequential_opt)
    nested = sequential.state_dict()["_schedulers"]
    assert [state["last_epoch"] for state in nested] == [0, -1, -1, -1]
    assert nested[0]["lr_lambdas"] == [None, None]


def test_trainer_checkpoints_carry_the_new_schedules(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]

    def make():
        minidl.manual_seed(0)
        model = nn.Sequential(nn.Dense(2, 8), nn.ReLU(), nn.Dense(8, 2))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        schedule = lr_scheduler.SequentialLR(
            opt,
            [
                lr_scheduler.LambdaLR(opt, lambda epoch: (epoch + 1) / 3),
                lr_scheduler.MultiplicativeLR(opt, _Decay(0.9)),
                lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2),
            ],
            milestones=[2, 4],
        )
        return minidl.Trainer(model, opt, loss=nn.CrossEntropyLoss(), scheduler=schedule, verbose=0)

    straight = make()
    straight.fit(batches, epochs=7)
    first = make()
    first.fit(batches, epochs=3)
    first.save_checkpoint(tmp_path / "checkpoint.npz")
    resumed = make().resume(tmp_path / "checkpoint.npz")
    resumed.fit(batches, epochs=7)
    assert resumed.scheduler.get_last_lr() == straight.scheduler.get_last_lr()
    assert resumed.history.history["lr"] == straight.history.history["lr"]
    for key, value in resumed.model.state_dict().items():
        assert value.tobytes() == straight.model.state_dict()[key].tobytes(), key


def _refusals(build):
    """The errors torch's and minidl's schedules raise for ``build(module, optimizer)``."""
    errors = []
    for module, opt in (
        (torch.optim.lr_scheduler, torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)),
        (lr_scheduler, optim.SGD([nn.Parameter(minidl.zeros(2))], lr=0.1)),
    ):
        with pytest.raises((ValueError, TypeError)) as caught:
            build(module, opt)
        errors.append(caught.value)
    return errors


BAD_SCHEDULES = {
    "lambda_count": lambda L, o: L.LambdaLR(o, [lambda e: 1.0, lambda e: 1.0]),
    "multiplicative_count": lambda L, o: L.MultiplicativeLR(o, [lambda e: 1.0] * 3),
    "multiplicative_not_callable": lambda L, o: L.MultiplicativeLR(o, 0.9),
    "restarts_T_0": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=0),
    "restarts_T_0_float": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=2.5),
    "restarts_T_mult": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0),
    "restarts_eta_min": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=2, eta_min="0"),
    "restarts_negative_epoch": lambda L, o: L.CosineAnnealingWarmRestarts(o, 2).step(-1),
    "sequential_empty": lambda L, o: L.SequentialLR(o, [], []),
    "sequential_milestones": lambda L, o: L.SequentialLR(
        o, [L.StepLR(o, 2), L.StepLR(o, 3)], milestones=[2, 4]
    ),
    "sequential_plateau": lambda L, o: L.SequentialLR(
        o, [L.StepLR(o, 2), L.ReduceLROnPlateau(o)], milestones=[2]
    ),
    "linear_start": lambda L, o: L.LinearLR(o, start_factor=0.0),
    "linear_end": lambda L, o: L.LinearLR(o, end_factor=1.5),
}


@pytest.mark.parametrize("name", sorted(BAD_SCHEDULES))
def test_bad_schedule_arguments_are_refused_as_torch_does(name):
    theirs, ours = _refusals(BAD_SCHEDULES[name])
    assert type(ours) is type(theirs), f"torch raised {theirs!r}, minidl {ours!r}"
    assert str(theirs).rstrip(".") in str(ours), f"torch said {theirs}, minidl {ours}"
    callee = {
        "lambda": "LambdaLR",
        "multiplicative": "MultiplicativeLR",
        "restarts": "CosineAnnealingWarmRestarts",
        "sequential": "SequentialLR",
        "linear": "LinearLR",
    }[name.split("_")[0]]
    assert str(ours).startswith(callee), f"the error does not name {callee}: {ours}"


def test_sequential_refuses_what_torch_would_mishandle():
    opt = optim.SGD(nn.Dense(2, 2).parameters(), lr=0.1)
    other = optim.SGD(nn.Dense(2, 2).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="SequentialLR expects all schedulers to belong"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.StepLR(other, 2)], [])
    with pytest.raises(
        ValueError, match=r"SequentialLR: milestones must be increasing, got \[5, 2\]"
    ):
        steps = [lr_scheduler.StepLR(opt, 2) for _ in range(3)]
        lr_scheduler.SequentialLR(opt, steps, [5, 2])
    inner = lr_scheduler.SequentialLR(opt, [lr_scheduler.StepLR(opt, 2)], [])
    with pytest.raises(TypeError, match="SequentialLR cannot be nested"):
        lr_scheduler.SequentialLR(opt, [inner, lr_scheduler.StepLR(opt, 2)], [3])
