"""Optimizers with PyTorch's update rules, parameter groups and state dicts.

Updates are in place on ``param.numpy()`` (no graph is recorded), in the
parameter's own dtype: float32 parameters stay float32, and so does their
optimizer state. SGD and Adam/AdamW update a whole parameter group in one call of
a compiled kernel (``_ops.sgd_update``, ``_ops.adam_update``: one pass per element,
no temporaries, threads over all the group's parameters); the other optimizers
run numpy operations parameter by parameter.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from .. import _checks, _ops
from ..autograd import enable_grad
from ..tensor import Tensor

_REQUIRED = object()

# Hyper-parameters that must not be negative, with the words torch's error messages use.
_NON_NEGATIVE = {
    "lr": "learning rate",
    "eps": "epsilon value",
    "weight_decay": "weight_decay value",
    "momentum": "momentum value",
    "alpha": "alpha value",
    "lr_decay": "lr_decay value",
    "initial_accumulator_value": "initial_accumulator_value value",
    "momentum_decay": "momentum_decay value",
}


def _finite_hyper_parameter(owner, name, value):
    """Refuse a numeric hyper-parameter that is NaN or infinite, or a non-number where a
    number belongs (torch compares such values and fails with a TypeError)."""
    if name == "params" or value is None or isinstance(value, bool):
        return
    if not isinstance(value, numbers.Real):
        raise TypeError(
            f"{owner}: Invalid {_NON_NEGATIVE.get(name, name)}: expected a real number, "
            f"got {type(value).__name__}"
        )
    if not math.isfinite(value):
        raise ValueError(f"{owner}: Invalid {_NON_NEGATIVE.get(name, name)}: {value}")


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step`` and state dicts.

    ``params`` is an iterable of Parameters, or of dicts each holding ``"params"``
    and any hyper-parameters that differ from the defaults for that group:

    >>> model = minidl.nn.Sequential(minidl.nn.Dense(4, 4), minidl.nn.Dense(4, 2))
    >>> opt = minidl.optim.SGD([
    ...     {"params": model[0].parameters()},
    ...     {"params": model[1].parameters(), "lr": 0.01},
    ... ], lr=0.1, momentum=0.9)
    >>> [group["lr"] for group in opt.param_groups]
    [0.1, 0.01]

    Subclasses implement ``_update(group, param, grad, state)`` for one parameter,
    or ``_update_group(group, params)`` for all of a group's parameters at once.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Parameters or dicts, "
                "not a single Tensor"
            )
        self.defaults = dict(defaults)
        self.state: dict[Any, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a dict with ``"params"`` and optional per-group hyper-parameters."""
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for param in params:
            if not isinstance(param, Tensor) or not param.requires_grad:
                raise ValueError(
                    f"{type(self).__name__}: can only optimize tensors that require grad, "
                    f"got {type(param).__name__}"
                )
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is _REQUIRED and name not in group:
                raise ValueError(f"{type(self).__name__}: parameter group didn't specify {name}")
            group.setdefault(name, default)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        """Refuse out-of-range hyper-parameters, in every group, with torch's messages."""
        owner = type(self).__name__
        for name, value in group.items():
            values = value if name == "betas" else (value,)
            for item in values if isinstance(values, (tuple, list)) else (values,):
                _finite_hyper_parameter(owner, name, item)
        for name, words in _NON_NEGATIVE.items():
            if name in group and not 0.0 <= group[name]:
                raise ValueError(f"{owner}: Invalid {words}: {group[name]}")
        if "rho" in group and not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"{owner}: Invalid rho value: {group['rho']}")
        if "betas" in group:
            for index, beta in enumerate(group["betas"]):
                if not 0.0 <= beta < 1.0:
                    raise ValueError(f"{owner}: Invalid beta parameter at index {index}: {beta}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter: to None (default) or to zeros."""
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none or param.grad is None:
                    param.grad = None
                else:
                    param.grad.numpy()[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if given.

        ``closure`` re-evaluates the model and returns the loss (computed with
        grad enabled, as in PyTorch).
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [param for param in group["params"] if param.grad is not None]
            if params:
                self._update_group(group, params)
        return loss

    def _update_group(self, group, params):
        """Update ``params`` (those of ``group`` that have a gradient): one at a time."""
        maximize = group.get("maximize", False)
        for param in params:
            grad = param.grad.numpy()
            if maximize:
                grad = -grad
            self._update(group, param, grad, self.state.setdefault(param, {}))

    def _update(self, group, param, grad, state):
        raise NotImplementedError

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [...]}`` with parameters as indices.

        Indices number the parameters across groups in order, as PyTorch does;
        values are numpy arrays and plain numbers (``minidl.save`` stores it).
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            entry = {k: v for k, v in group.items() if k != "params"}
            entry["params"] = []
            for param in group["params"]:
                index.setdefault(id(param), len(index))
                entry["params"].append(index[id(param)])
            groups.append(entry)
        state = {}
        for group in self.param_groups:
            for param in group["params"]:
                if param in self.state:
                    state[index[id(param)]] = {
                        k: (v.copy() if isinstance(v, np.ndarray) else v)
                        for k, v in self.state[param].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (group structure must match)."""
        owner = type(self).__name__
        groups = state_dict["param_groups"]
        _checks.same_count(
            len(groups), len(self.param_groups), owner, "parameter groups", "optimizer"
        )
        params = {}
        for number, (saved, group) in enumerate(zip(groups, self.param_groups)):
            what = f"parameters in group {number}"
            _checks.same_count(len(saved["params"]), len(group["params"]), owner, what, "optimizer")
            for index, param in zip(saved["params"], group["params"]):
                params[int(index)] = param
        self.state = {}
        for index, values in state_dict["state"].items():
            param = params[int(index)]
            restored = {}
            for key, value in values.items():
                scalar = isinstance(value, np.ndarray) and value.ndim == 0
                if scalar and (param.ndim > 0 or value.dtype.kind != "f"):
                    # a count or a product: torch keeps `step` (and NAdam's `mu_product`)
                    # as 0-d tensors, minidl as numbers
                    value = value.item()
                elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    if value.shape != param.shape:
                        raise ValueError(
                            f"{owner}.load_state_dict: state '{key}' of parameter "
                            f"{index} has shape {value.shape}, the parameter {param.shape}"
                        )
                    value = value.astype(param.dtype)
                restored[key] = value
            self.state[param] = restored
        for saved, group in zip(groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = tuple(value) if isinstance(value, list) else value

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

    PyTorch's rule: ``g = grad + weight_decay * p``; with momentum, ``buf = g`` on
    the first step, then ``buf = momentum * buf + (1 - dampening) * g``, and
    ``g = g + momentum * buf`` (Nesterov) or ``g = buf``; ``p -= lr * g``.

    >>> w = minidl.nn.Parameter(minidl.ones(2))
    >>> opt = minidl.optim.SGD([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    Parameter containing:
    tensor([0.8, 0.8], requires_grad=True)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        maximize: bool = False,
    ) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        states = [self.state.setdefault(param, {}) for param in params]
        momentum = group["momentum"]
        buffers = _ops.sgd_update(
            [param.numpy() for param in params],
            [param.grad.numpy() for param in params],
            [state.get("momentum_buffer") for state in states] if momentum else None,
            group["lr"],
            momentum,
            group["dampening"],
            group["weight_decay"],
            group["nesterov"],
            group.get("maximize", False),
        )
        if momentum:
            for state, buffer in zip(states, buffers):
                state["momentum_buffer"] = buffer


class _AdamFamily(Optimizer):
    """What Adam, AdamW, NAdam and RAdam share: weight decay, the moments and their corrections."""

    def _moments(self, group, param, grad, state, decoupled, *zeros, **values):
        """Decay (L2, or ``decoupled``), count the step and update ``m`` and ``v`` in place.

        On a parameter's first step its state is created: ``step``, ``values``, then
        ``exp_avg``, ``exp_avg_sq`` and the names in ``zeros`` as zero arrays (torch's order).
        Returns the decayed gradient, the step, ``m``, ``v`` and the bias corrections
        ``1 - beta1^t`` and ``1 - beta2^t``.
        """
        beta1, beta2 = group["betas"]
        grad = _apply_weight_decay(group, param, grad, decoupled)
        step = _next_step(state, param, "exp_avg", "exp_avg_sq", *zeros, **values)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        return grad, step, exp_avg, exp_avg_sq, 1 - beta1**step, 1 - beta2**step


class Adam(_AdamFamily):
    """Adam (Kingma & Ba) with L2 weight decay and optional AMSGrad, PyTorch's rule.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, and
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`` (with AMSGrad,
    the running maximum of v). ``weight_decay`` adds ``weight_decay * p`` to the
    gradient; for decoupled decay use :class:`AdamW`.

    >>> w = minidl.nn.Parameter(minidl.ones(2))
    >>> opt = minidl.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w.numpy().round(4)
    array([0.9, 0.9], dtype=float32)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    _decoupled = False

    def _update_group(self, group, params):
        amsgrad = group["amsgrad"]
        zeros = (
            ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if amsgrad else ("exp_avg", "exp_avg_sq")
        )
        states = [self.state.setdefault(param, {}) for param in params]
        steps = [_next_step(state, param, *zeros) for state, param in zip(states, params)]
        beta1, beta2 = group["betas"]
        _ops.adam_update(
            [param.numpy() for param in params],
            [param.grad.numpy() for param in params],
            [state["exp_avg"] for state in states],
            [state["exp_avg_sq"] for state in states],
            [state["max_exp_avg_sq"] for state in states] if amsgrad else None,
            steps,
            group["lr"],
            beta1,
            beta2,
            group["eps"],
            group["weight_decay"],
            self._decoupled,
            amsgrad,
            group.get("maximize", False),
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay``
    before the Adam step. PyTorch's default ``weight_decay=1e-2``.

    >>> opt = minidl.optim.AdamW(minidl.nn.Dense(3, 2).parameters())
    >>> opt.param_groups[0]["weight_decay"]
    0.01
    """

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


class RMSprop(Optimizer):
    """RMSprop with PyTorch's rule (optional momentum and centering).

    ``s = alpha s + (1 - alpha) g^2``; ``avg = sqrt(s - mean_g^2) + eps`` when
    centered (``mean_g`` the running mean of g), else ``sqrt(s) + eps``; with
    momentum ``buf = momentum buf + g / avg`` and ``p -= lr buf``, else
    ``p -= lr g / avg``.

    >>> opt = minidl.optim.RMSprop(minidl.nn.Dense(3, 2).parameters(), lr=0.01)
    >>> opt.param_groups[0]["alpha"]
    0.99
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update(self, group, param, grad, state):
        alpha = group["alpha"]
        grad = _apply_weight_decay(group, param, grad)
        buffers = ("momentum_buffer",) if group["momentum"] > 0 else ()
        buffers += ("grad_avg",) if group["centered"] else ()
        _next_step(state, param, "square_avg", *buffers)
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (grad - grad_avg)
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + group["eps"]
        else:
            avg = np.sqrt(square_avg) + group["eps"]
        if group["momentum"] > 0:
            buffer = state["momentum_buffer"]
            buffer *= group["momentum"]
            buffer += grad / avg
            param.numpy()[...] -= group["lr"] * buffer
        else:
            param.numpy()[...] -= group["lr"] * grad / avg


class Adadelta(Optimizer):
    """Adadelta (Zeiler) with PyTorch's rule and defaults.

    With ``g`` the gradient (plus ``weight_decay * p``): ``v = rho v + (1 - rho) g^2``,
    ``delta = sqrt(u + eps) / sqrt(v + eps) * g``, ``u = rho u + (1 - rho) delta^2``
    and ``p -= lr * delta``. State per parameter: ``step``, ``square_avg`` (v) and
    ``acc_delta`` (u), as in torch.

    >>> w = minidl.nn.Parameter(minidl.ones(2))
    >>> opt = minidl.optim.Adadelta([w])
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w.numpy().round(5)
    array([0.99684, 0.99684], dtype=float32)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, group, param, grad, state):
        rho, eps = group["rho"], group["eps"]
        _next_step(state, param, "square_avg", "acc_delta")
        grad = _apply_weight_decay(group, param, grad)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * grad * grad
        delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * grad
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        param.numpy()[...] -= group["lr"] * delta


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.) with PyTorch's rule, ``lr_decay`` and defaults.

    ``s += g^2`` (``s`` starts at ``initial_accumulator_value``) and
    ``p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)`` at step ``t``, with
    ``g`` the gradient plus ``weight_decay * p``. As in torch the state (``step``,
    ``sum``) is created for every parameter when the optimizer is built, so
    ``state_dict()`` lists every parameter from the start.

    torch fills every accumulator with the constructor's ``initial_accumulator_value``
    and silently ignores a per-group value; minidl refuses a group value that
    differs rather than diverge.

    >>> w = minidl.nn.Parameter(minidl.ones(2))
    >>> opt = minidl.optim.Adagrad([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w.numpy().round(5)
    array([0.9, 0.9], dtype=float32)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["initial_accumulator_value"] != initial_accumulator_value:
                raise ValueError(
                    "Adagrad: torch ignores a per-group initial_accumulator_value "
                    f"({group['initial_accumulator_value']}) and uses the constructor's "
                    f"({initial_accumulator_value}); pass it to the constructor instead"
                )
            for param in group["params"]:
                self._start(group, param, self.state.setdefault(param, {}))

    @staticmethod
    def _start(group, param, state):
        _new_state(
            state, param, sum=np.full_like(param.numpy(), group["initial_accumulator_value"])
        )

    def _update(self, group, param, grad, state):
        if not state:  # a parameter from add_param_group after construction
            self._start(group, param, state)
        state["step"] += 1
        grad = _apply_weight_decay(group, param, grad)
        decayed_lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        param.numpy()[...] -= decayed_lr * grad / (np.sqrt(state["sum"]) + group["eps"])


class NAdam(_AdamFamily):
    """Adam with Nesterov momentum (Dozat), PyTorch's rule with its momentum schedule.

    ``mu_t = beta1 (1 - 0.5 * 0.96^(t * momentum_decay))``; ``m`` and ``v`` as in
    Adam; ``p -= lr (1 - mu_t) / (1 - prod(mu_1..mu_t)) * g / d`` and
    ``p -= lr mu_{t+1} / (1 - prod(mu_1..mu_{t+1})) * m / d`` with
    ``d = sqrt(v / (1 - beta2^t)) + eps``. ``weight_decay`` adds ``weight_decay * p``
    to the gradient, or with ``decoupled_weight_decay=True`` multiplies ``p`` by
    ``1 - lr * weight_decay`` first (NAdamW). State: ``step``, ``mu_product``
    (a float), ``exp_avg`` and ``exp_avg_sq``. minidl keeps ``mu_product`` in
    double precision; torch keeps it in its default dtype, so under torch's
    float32 default the two drift apart by about 1e-6 (relative) over 50 steps,
    and agree to 1e-13 with ``torch.set_default_dtype(torch.float64)``.

    >>> w = minidl.nn.Parameter(minidl.ones(2))
    >>> opt = minidl.optim.NAdam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w.numpy().round(5)  # torch.optim.NAdam gives the same
    array([0.89435, 0.89435], dtype=float32)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update(self, group, param, grad, state):
        beta1, lr = group["betas"][0], group["lr"]
        grad, step, exp_avg, exp_avg_sq, _, bias_correction2 = self._moments(
            group, param, grad, state, group["decoupled_weight_decay"], mu_product=1.0
        )
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * group["momentum_decay"]))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * group["momentum_decay"]))
        state["mu_product"] *= mu
        mu_product = state["mu_product"]
        denom = np.sqrt(exp_avg_sq / bias_correction2) + group["eps"]
        param.numpy()[...] -= (lr * (1.0 - mu) / (1.0 - mu_product)) * grad / denom
        param.numpy()[...] -= (lr * mu_next / (1.0 - mu_product * mu_next)) * exp_avg / denom


class RAdam(_AdamFamily):
    """Rectified Adam (Liu et al.), PyTorch's rule.

    ``m`` and ``v`` as in Adam; with ``rho_inf = 2 / (1 - beta2) - 1`` and
    ``rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)``: when ``rho_t > 5``,
    ``p -= lr * m_hat * r_t * sqrt(1 - beta2^t) / (sqrt(v) + eps)`` with the rectification
    ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``,
    otherwise ``p -= lr * m_hat`` (``m_hat = m / (1 - beta1^t)``). ``weight_decay``
    adds ``weight_decay * p`` to the gradient, or with ``decoupled_weight_decay=True``
    multiplies ``p`` by ``1 - lr * weight_decay`` first (RAdamW). State: ``step``,
    ``exp_avg``, ``exp_avg_sq``.

    >>> w = minidl.nn.Parameter(minidl.ones(2))
    >>> opt = minidl.optim.RAdam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()  # the first steps are un-adapted: p -= lr * m_hat
    >>> w.numpy().round(4)
    array([0.8, 0.8], dtype=float32)
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update(self, group, param, grad, state):
        beta2 = group["betas"][1]
        _, step, exp_avg, exp_avg_sq, bias_correction1, bias_correction2 = self._moments(
            group, param, grad, state, group["decoupled_weight_decay"]
        )
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * beta2**step / bias_correction2
        scale = group["lr"] / bias_correction1
        if rho_t > 5.0:
            rect = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            scale *= rect * math.sqrt(bias_correction2)
            param.numpy()[...] -= scale * exp_avg / (np.sqrt(exp_avg_sq) + group["eps"])
        else:
            param.numpy()[...] -= scale * exp_avg


def _apply_weight_decay(group, param, grad, decoupled=False):
    """L2 decay into the gradient, or with ``decoupled`` decay of the parameter (*W variants)."""
    weight_decay = group["weight_decay"]
    if not weight_decay:
        return grad
    if decoupled:
        param.numpy()[...] *= 1 - group["lr"] * weight_decay
        return grad
    return grad + weight_decay * param.numpy()


def _new_state(state, param, *zeros, **values):
    """A parameter's state before its first step: ``step`` 0, ``values``, then zero arrays
    named ``zeros`` (in torch's order); a state that already exists is left alone."""
    if not state:
        state["step"] = 0
        state.update(values)
        for name in zeros:
            state[name] = np.zeros_like(param.numpy())


def _next_step(state, param, *zeros, **values):
    """Count a step (creating the state first, as :func:`_new_state`); returns the step."""
    _new_state(state, param, *zeros, **values)
    state["step"] += 1
    return state["step"]
