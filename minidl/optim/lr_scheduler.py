"""Learning-rate schedules with PyTorch's semantics.

A scheduler sets ``group["lr"]`` of each parameter group of its optimizer. It
is created after the optimizer (which records ``initial_lr`` in each group) and
stepped after ``optimizer.step()``: once per epoch for the epoch-based ones
(StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, LambdaLR,
MultiplicativeLR, CosineAnnealingWarmRestarts, SequentialLR), once per batch for
OneCycleLR (or CosineAnnealingWarmRestarts with ``step(fractional_epoch)``), and
with the monitored value for ReduceLROnPlateau.
Creating a scheduler applies its value for step 0, as PyTorch does.

>>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=0.1)
>>> schedule = minidl.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(5):
...     lrs.append(schedule.get_last_lr()[0])
...     opt.step()
...     schedule.step()
>>> lrs
[0.1, 0.1, 0.05, 0.05, 0.025]
"""

from __future__ import annotations

import math
import numbers
import types
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .. import _checks

if TYPE_CHECKING:
    from .optimizer import Optimizer

_NOT_STATE = ("optimizer",)


class _ScheduleState:
    """What every schedule shares: the last learning rates, and its state as plain values.

    A schedule that holds a list of things with their own state (functions,
    schedules) names that attribute in ``_listed``: ``state_dict()`` saves each
    entry with ``_save_entry`` and ``load_state_dict()`` restores it with
    ``_load_entry``, after checking that the lists have the same length.
    """

    _listed: ClassVar[str | None] = None
    _last_lr: list[float]
    # a schedule that sets _listed gives these: one entry's state, and restoring it
    _save_entry: Callable[[Any], Any]
    _load_entry: Callable[[Any, Any], None]

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step`` set, one per parameter group."""
        return list(self._last_lr)

    def _plain_state(self, state):
        return {k: v for k, v in state.items() if k not in (*_NOT_STATE, self._listed)}

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state (plain values), without the optimizer."""
        state = self._plain_state(self.__dict__)
        if self._listed:
            state[self._listed] = [self._save_entry(entry) for entry in getattr(self, self._listed)]
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        if self._listed:
            saved, entries = state[self._listed], getattr(self, self._listed)
            what = self._listed.lstrip("_")
            _checks.same_count(len(saved), len(entries), type(self).__name__, what, "schedule")
        self.__dict__.update(self._plain_state(state))
        if self._listed:
            for entry, entry_state in zip(entries, saved):
                self._load_entry(entry, entry_state)


class LRScheduler(_ScheduleState):
    """Base class: ``step()``, ``get_last_lr()``, ``state_dict()``/``load_state_dict()``.

    Subclasses implement ``_lr_at(base_lr, step)`` in closed form, or override
    ``_compute_lrs``.
    """

    # True only during the step a new schedule takes in its constructor (torch's
    # ``_initial_step``), when chained schedules such as MultiplicativeLR leave the lr alone.
    _is_initial = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not _checks.is_int(last_epoch) or last_epoch < -1:
            raise ValueError(
                f"{type(self).__name__}: last_epoch must be an integer >= -1, got {last_epoch!r}"
            )
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when "
                        "resuming an optimizer"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self._is_initial = True
        try:
            self.step()
        finally:
            del self._is_initial  # back to the class's False; kept out of state_dict()

    def _lr_at(self, base_lr, step):
        raise NotImplementedError

    def _compute_lrs(self):
        return [self._lr_at(base, self.last_epoch) for base in self.base_lrs]

    def _set_lrs(self, lrs):
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _restart(self):
        """Go back to step 0, as SequentialLR does at a milestone (torch's ``_update_lr(0)``)."""
        self.last_epoch = 0
        self._set_lrs(self._compute_lrs())

    def step(self) -> None:
        """Advance one step (an epoch, or a batch for per-batch schedules) and set the lrs."""
        self.last_epoch += 1
        self._set_lrs(self._compute_lrs())


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> minidl.optim.lr_scheduler.StepLR(opt, 10).get_last_lr()
    [1.0]
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = _checks.positive_int(step_size, "StepLR", "step_size")
        self.gamma = _checks.real(gamma, "StepLR", "gamma", low=0.0)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, step):
        return base_lr * self.gamma ** (step // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each epoch in ``milestones``.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> minidl.optim.lr_scheduler.MultiStepLR(opt, [2, 4]).get_last_lr()
    [1.0]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self.milestones = sorted(
            _checks.non_negative_int(m, "MultiStepLR", "each milestone") for m in milestones
        )
        self.gamma = _checks.real(gamma, "MultiStepLR", "gamma", low=0.0)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, step):
        return base_lr * self.gamma ** sum(1 for m in self.milestones if m <= step)


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> minidl.optim.lr_scheduler.ExponentialLR(opt, 0.5).get_last_lr()
    [1.0]
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = _checks.real(gamma, "ExponentialLR", "gamma", low=0.0)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, step):
        return base_lr * self.gamma**step


class CosineAnnealingLR(LRScheduler):
    """``eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` (SGDR without restarts).

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> minidl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10).get_last_lr()
    [1.0]
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.T_max = _checks.positive_int(T_max, "CosineAnnealingLR", "T_max")
        self.eta_min = _checks.real(eta_min, "CosineAnnealingLR", "eta_min")
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, step):
        cosine = (1 + math.cos(math.pi * step / self.T_max)) / 2
        return self.eta_min + (base_lr - self.eta_min) * cosine


class LinearLR(LRScheduler):
    """Scale the lr linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps.

    The usual warm-up: ``LinearLR(opt, start_factor=0.1, total_iters=5)``.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> minidl.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=4).get_last_lr()
    [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        _checks.real(start_factor, "LinearLR", "start_factor")
        _checks.real(end_factor, "LinearLR", "end_factor")
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "LinearLR: Starting multiplicative factor expected to be greater than 0 and "
                f"less or equal to 1, got start_factor={start_factor}"
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError(
                "LinearLR: Ending multiplicative factor expected to be between 0 and 1, got "
                f"end_factor={end_factor}"
            )
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = _checks.non_negative_int(total_iters, "LinearLR", "total_iters")
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, step):
        # torch's total_iters=0 keeps start_factor for good (its chained rule never moves)
        progress = min(self.total_iters, step) / self.total_iters if self.total_iters > 0 else 0
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class ConstantLR(LRScheduler):
    """Scale the lr by ``factor`` for the first ``total_iters`` steps, then restore it.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> minidl.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2).get_last_lr()
    [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        _checks.real(factor, "ConstantLR", "factor")
        if factor > 1.0 or factor <= 0:
            # torch accepts 0 and then divides by it when the lr is restored
            raise ValueError(
                f"ConstantLR: Constant multiplicative factor expected to be in (0, 1], got {factor}"
            )
        self.factor = float(factor)
        self.total_iters = _checks.non_negative_int(total_iters, "ConstantLR", "total_iters")
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr, step):
        lr = base_lr * self.factor
        # torch's chained rule: scaled back (not reset) at total_iters; with total_iters=0
        # that moment is the first step itself, so the factor stays
        if step >= self.total_iters > 0:
            lr = lr * (1.0 / self.factor)
        return lr


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), stepped once per batch, as ``torch``'s OneCycleLR.

    The lr goes from ``max_lr / div_factor`` up to ``max_lr`` over the first
    ``pct_start`` of ``total_steps`` (or ``epochs * steps_per_epoch``), then down
    to ``initial_lr / final_div_factor``; with ``cycle_momentum`` the momentum (or
    Adam's beta1) moves the opposite way between ``max_momentum`` and
    ``base_momentum``. Stepping past ``total_steps`` raises.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=0.1, momentum=0.9)
    >>> schedule = minidl.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    >>> [round(lr, 6) for lr in schedule.get_last_lr()]
    [0.04]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.85,
        max_momentum: float | Sequence[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            epochs = _checks.positive_int(epochs, "OneCycleLR", "epochs")
            total_steps = epochs * _checks.positive_int(
                steps_per_epoch, "OneCycleLR", "steps_per_epoch"
            )
        if not _checks.is_int(total_steps) or total_steps <= 0:
            raise ValueError(f"OneCycleLR: total_steps must be positive, got {total_steps!r}")
        if (
            isinstance(pct_start, bool)
            or not isinstance(pct_start, numbers.Real)
            or not (0.0 <= pct_start <= 1.0)
        ):
            raise ValueError(
                f"OneCycleLR: Expected float between 0 and 1 pct_start, but got {pct_start!r}"
            )
        for name, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            _checks.real(value, "OneCycleLR", name, low=0.0, low_open=True)
        for name, value in (("base_momentum", base_momentum), ("max_momentum", max_momentum)):
            _checks.real(value, "OneCycleLR", name, low=0.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        self.total_steps = int(total_steps)
        self.anneal_strategy = anneal_strategy
        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        _checks.same_length(max_lrs, groups, "OneCycleLR", "max_lr", "param groups")
        for peak in max_lrs:
            _checks.real(peak, "OneCycleLR", "max_lr", low=0.0)
        if last_epoch == -1:
            for group, peak in zip(groups, max_lrs):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        if three_phase:
            ends = [pct_start * total_steps - 1, 2 * pct_start * total_steps - 2, total_steps - 1]
            self._phases = [
                (ends[0], "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (ends[1], "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (ends[2], "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            ends = [pct_start * total_steps - 1, total_steps - 1]
            self._phases = [
                (ends[0], "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (ends[1], "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        self._phases = [list(phase) for phase in self._phases]
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    "OneCycleLR: optimizer must support momentum or beta1 with `cycle_momentum` "
                    "option enabled"
                )
            self._use_beta1 = "betas" in optimizer.defaults
            if last_epoch == -1:
                for group in groups:
                    if self._use_beta1:
                        group["betas"] = (max_momentum, *group["betas"][1:])
                    else:
                        group["momentum"] = max_momentum
                    group["max_momentum"] = max_momentum
                    group["base_momentum"] = base_momentum
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, fraction):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def _compute_lrs(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(
                f"OneCycleLR: tried to step {step} times; total_steps is {self.total_steps}"
            )
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr_from, lr_to, momentum_from, momentum_to) in enumerate(
                self._phases
            ):
                if step <= end_step or i == len(self._phases) - 1:
                    fraction = (step - start_step) / (end_step - start_step)
                    lr = self._anneal(group[lr_from], group[lr_to], fraction)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[momentum_from], group[momentum_to], fraction)
                    break
                start_step = end_step
            lrs.append(lr)
            if self.cycle_momentum:
                if self._use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs


class ReduceLROnPlateau(_ScheduleState):
    """Divide the lr by ``1 / factor`` when a monitored value stops improving.

    Call ``step(value)`` once per epoch with the monitored value (e.g. the
    validation loss). ``mode`` 'min' or 'max'; an improvement must beat the best
    by ``threshold`` (relative in 'rel' mode, absolute in 'abs'); after
    ``patience`` epochs without one the lr drops (not below ``min_lr``), then
    ``cooldown`` epochs pass before counting again. PyTorch's semantics.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> plateau = minidl.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    >>> for loss in [1.0, 1.0, 1.0, 1.0]:
    ...     plateau.step(loss)
    >>> plateau.get_last_lr()
    [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        _checks.real(factor, "ReduceLROnPlateau", "factor", low=0.0)
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau: factor should be < 1.0")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: mode must be 'min' or 'max' and threshold_mode 'rel' or "
                f"'abs', got {mode!r} and {threshold_mode!r}"
            )
        self.optimizer = optimizer
        where = "ReduceLROnPlateau"
        self.mode, self.factor = mode, float(factor)
        self.patience = _checks.non_negative_int(patience, where, "patience")
        self.threshold = _checks.real(threshold, where, "threshold", low=0.0)
        self.threshold_mode = threshold_mode
        self.cooldown = _checks.non_negative_int(cooldown, where, "cooldown")
        self.eps = _checks.real(eps, where, "eps", low=0.0)
        groups = optimizer.param_groups
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        _checks.same_length(min_lrs, groups, where, "min_lr", "param groups")
        self.min_lrs = [_checks.real(lr, where, "min_lr", low=0.0) for lr in min_lrs]
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self, metrics: float) -> None:
        """Record this epoch's monitored value and reduce the lr after a plateau."""
        value = float(metrics)
        self.last_epoch += 1
        relative = self.threshold_mode == "rel"
        if _checks.improved(value, self.best, self.mode, self.threshold, relative):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                old = group["lr"]
                new = max(old * self.factor, min_lr)
                if old - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def _lr_lambdas(owner, optimizer, lr_lambda):
    """One function per parameter group: a single function is shared by all of them."""
    groups = len(optimizer.param_groups)
    if isinstance(lr_lambda, (list, tuple)):
        if len(lr_lambda) != groups:
            raise ValueError(f"{owner}: Expected {groups} lr_lambdas, but got {len(lr_lambda)}")
        lambdas = list(lr_lambda)
    else:
        lambdas = [lr_lambda] * groups
    for function in lambdas:
        if not callable(function):
            raise TypeError(
                f"{owner}: lr_lambda should be a function, but got {type(function).__name__}"
            )
    return lambdas


class _LambdaState:
    """State dicts of the schedules that hold functions, as torch writes them.

    A function or lambda cannot be saved: its entry in ``"lr_lambdas"`` is None and
    the schedule you load into must be built with the same functions. A callable
    object saves its attributes (``__dict__``), which loading restores.
    """

    _listed: ClassVar[str | None] = "lr_lambdas"

    @staticmethod
    def _save_entry(function):
        return None if isinstance(function, types.FunctionType) else dict(vars(function))

    @staticmethod
    def _load_entry(function, attributes):
        if attributes is not None:
            vars(function).update(attributes)


class LambdaLR(_LambdaState, LRScheduler):
    """Set the lr to ``initial_lr * lr_lambda(epoch)``; one function, or one per group.

    ``state_dict()`` cannot hold a plain function: it saves None in its place (as
    torch does), so build the schedule with the same ``lr_lambda`` before loading;
    a callable object's attributes are saved and restored.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> schedule = minidl.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5**epoch)
    >>> schedule.step()
    >>> schedule.get_last_lr()
    [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.lr_lambdas = _lr_lambdas("LambdaLR", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def _compute_lrs(self):
        return [
            base * function(self.last_epoch)
            for function, base in zip(self.lr_lambdas, self.base_lrs)
        ]


class MultiplicativeLR(_LambdaState, LRScheduler):
    """Multiply the current lr by ``lr_lambda(epoch)`` at every step (not at creation).

    A chained schedule: it scales whatever lr the group has, as torch's does.
    ``state_dict()`` saves functions as None, like :class:`LambdaLR`.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> schedule = minidl.optim.lr_scheduler.MultiplicativeLR(opt, lambda epoch: 0.9)
    >>> for _ in range(2):
    ...     schedule.step()
    >>> [round(lr, 6) for lr in schedule.get_last_lr()]
    [0.81]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.lr_lambdas = _lr_lambdas("MultiplicativeLR", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def _compute_lrs(self):
        groups = self.optimizer.param_groups
        if self._is_initial:
            return [group["lr"] for group in groups]
        return [
            group["lr"] * function(self.last_epoch)
            for function, group in zip(self.lr_lambdas, groups)
        ]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing with warm restarts (SGDR): periods ``T_0``, ``T_0 * T_mult``, ...

    ``lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``, where
    ``T_cur`` counts epochs since the last restart and ``T_i`` is the current period.
    ``step()`` advances one epoch; ``step(epoch)`` jumps to ``epoch``, which may be
    fractional, so a loop can call ``step(epoch + batch / batches)`` every batch,
    as with torch's.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> schedule = minidl.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=4)
    >>> schedule.step(2.0)
    >>> schedule.get_last_lr()
    [0.5]
    >>> schedule.step(4)  # a restart
    >>> schedule.get_last_lr()
    [1.0]
    """

    T_0: int
    T_i: int
    T_mult: int
    T_cur: float

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        integer = (numbers.Integral,)
        if isinstance(T_0, bool) or not isinstance(T_0, integer) or T_0 <= 0:
            raise ValueError(
                f"CosineAnnealingWarmRestarts: Expected positive integer T_0, but got {T_0}"
            )
        if isinstance(T_mult, bool) or not isinstance(T_mult, integer) or T_mult < 1:
            raise ValueError(
                f"CosineAnnealingWarmRestarts: Expected integer T_mult >= 1, but got {T_mult}"
            )
        if isinstance(eta_min, bool) or not isinstance(eta_min, numbers.Real):
            raise ValueError(
                "CosineAnnealingWarmRestarts: Expected float or int eta_min, but got "
                f"{eta_min} of type {type(eta_min)}"
            )
        self.T_0, self.T_i, self.T_mult = int(T_0), int(T_0), int(T_mult)
        self.eta_min = _checks.real(eta_min, "CosineAnnealingWarmRestarts", "eta_min")
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def _compute_lrs(self):
        cosine = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one epoch, or go to ``epoch`` (a float is allowed: a point within an epoch)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur -= self.T_i
                self.T_i *= self.T_mult
        else:
            if epoch < 0:
                raise ValueError(
                    "CosineAnnealingWarmRestarts.step: Expected non-negative epoch, but got "
                    f"{epoch}"
                )
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    # the restart count n solves T_0 (T_mult^n - 1) / (T_mult - 1) <= epoch;
                    # torch's floating-point logarithm, so the boundaries agree with it
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult**n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._set_lrs(self._compute_lrs())


class SequentialLR(_ScheduleState):
    """Run ``schedulers`` one after the other, switching at the epochs in ``milestones``.

    At each milestone the next schedule starts from its own step 0 (from its
    ``initial_lr``, except a chained MultiplicativeLR, which goes on from the
    current lr), as with torch's. ``len(milestones)`` must be ``len(schedulers) - 1``;
    all schedules must drive ``optimizer``. ``state_dict()`` nests the schedules'
    own state dicts under ``"_schedulers"``.

    >>> opt = minidl.optim.SGD(minidl.nn.Dense(2, 2).parameters(), lr=1.0)
    >>> warmup = minidl.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3)
    >>> decay = minidl.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> schedule = minidl.optim.lr_scheduler.SequentialLR(opt, [warmup, decay], milestones=[3])
    >>> lrs = []
    >>> for epoch in range(6):
    ...     lrs.append(schedule.get_last_lr()[0])
    ...     schedule.step()
    >>> lrs
    [0.25, 0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: Sequence[Any],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ) -> None:
        schedulers, milestones = list(schedulers), [int(m) for m in milestones]
        if not schedulers:
            raise ValueError("SequentialLR expects at least one scheduler, but got no scheduler.")
        for index, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(
                    "SequentialLR does not support `ReduceLROnPlateau` scheduler as it requires "
                    "additional kwargs to be specified when calling `step`, but got one at "
                    f"index {index} in the given schedulers sequence."
                )
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(
                    f"SequentialLR: the scheduler at index {index} is a "
                    f"{type(scheduler).__name__}, not a minidl learning-rate schedule "
                    "(SequentialLR cannot be nested)"
                )
            if scheduler.optimizer is not optimizer:
                raise ValueError(
                    "SequentialLR expects all schedulers to belong to the same optimizer, but got "
                    f"scheduler {type(scheduler).__name__} at index {index} with another one"
                )
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "SequentialLR: Sequential Schedulers expects number of schedulers provided to be "
                "one more than the number of milestone points, but got number of schedulers "
                f"{len(schedulers)} and the number of milestones to be equal to {len(milestones)}"
            )
        if milestones != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must be increasing, got {milestones}")
        self.optimizer = optimizer
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        # Each schedule stepped once when it was built: undo that, and start the first.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            scheduler.last_epoch -= 1
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        """Advance one epoch with the schedule whose turn it is (restarting it at its milestone)."""
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._restart()
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    # state_dict() nests each schedule's own state dict under "_schedulers"
    _listed = "_schedulers"

    @staticmethod
    def _save_entry(scheduler):
        return scheduler.state_dict()

    @staticmethod
    def _load_entry(scheduler, state):
        scheduler.load_state_dict(state)


__all__ = [
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
]
