"""Optimizers and schedules against torch.optim over 50 steps, and their state dicts."""

import math

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.optim import lr_scheduler

torch = pytest.importorskip("torch")

SHAPES = [(4, 3), (3,), (2, 2, 2)]


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


@pytest.mark.parametrize("name", ["sgd_momentum", "adam_wd_amsgrad", "rmsprop_centered_momentum"])
def test_state_dict_round_trip_through_a_file_continues_identically(name, tmp_path):
    ours_class, theirs_class, options = OPTIMIZERS[name]
    ours, theirs = _pair(np.random.default_rng(2))
    ours_opt, theirs_opt = ours_class(ours, **options), theirs_class(theirs, **options)
    _run(ours_opt, theirs_opt, ours, theirs, 20)
    minidl.save(ours_opt.state_dict(), tmp_path / "opt.npz")
    restored = ours_class(ours, **options)
    restored.load_state_dict(minidl.load(tmp_path / "opt.npz"))
    _run(restored, theirs_opt, ours, theirs, 30, start=20)


def test_float32_parameters_stay_float32():
    w = nn.Parameter(minidl.ones(3))
    for opt in (optim.SGD([w], lr=0.1, momentum=0.9), optim.Adam([w]), optim.RMSprop([w])):
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
