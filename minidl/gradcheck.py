"""Numerical gradient checking: analytic gradients against central differences."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd import no_grad
from .tensor import Tensor


def _outputs(result):
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    for out in outputs:
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return Tensors, got {type(out).__name__}")
    return outputs


def gradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-06,
    atol: float = 1e-05,
    rtol: float = 0.001,
    seed: int = 0,
) -> bool:
    """Check ``fn``'s analytic gradients against central differences, in float64.

    ``fn`` takes ``inputs`` (a Tensor or a tuple of them and other values) and
    returns a Tensor or a tuple of Tensors. The outputs are projected onto random
    directions ``v`` (seeded by ``seed``); backward gives ``v . d fn / d input`` for
    every input that requires grad, and each of its elements is compared with
    ``(v . fn(input + eps) - v . fn(input - eps)) / (2 eps)``. An element passes when
    ``|analytic - numeric| <= atol + rtol * |numeric|``.

    Float32 inputs are too coarse for central differences: they are checked as
    float64 copies, with a warning. Inputs are perturbed in place and restored.

    Returns True, or raises AssertionError naming the input, the element index,
    the analytic and the numeric value.

    >>> x = minidl.randn(3, 4, dtype="float64", requires_grad=True)
    >>> minidl.gradcheck(lambda t: (t * t).sum(axis=1), (x,))
    True
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = []
    for position, value in enumerate(inputs):
        if isinstance(value, Tensor) and value.dtype == np.float32:
            warnings.warn(
                f"gradcheck: input {position} is float32; checking a float64 copy, since "
                "central differences need float64 precision",
                stacklevel=2,
            )
            value = Tensor._of(value.numpy().astype(np.float64), value.requires_grad)
        checked.append(value)
    inputs = tuple(checked)
    wanted = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not wanted:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")

    rng = np.random.default_rng(seed)
    outputs = _outputs(fn(*inputs))
    directions = [rng.standard_normal(out.shape) for out in outputs]

    def projected():
        with no_grad():
            values = _outputs(fn(*inputs))
        return float(np.sum([np.sum(out.numpy() * v) for out, v in zip(values, directions)]))

    saved_grads = {i: inputs[i].grad for i in wanted}
    for i in wanted:
        inputs[i].grad = None
    differentiable = [(out, v) for out, v in zip(outputs, directions) if out.requires_grad]
    for out, v in differentiable:
        out.backward(v.astype(out.dtype), retain_graph=True)
    analytic = {
        i: np.zeros(inputs[i].shape) if inputs[i].grad is None else inputs[i].grad.numpy().copy()
        for i in wanted
    }
    for i in wanted:
        inputs[i].grad = saved_grads[i]

    for i in wanted:
        data = inputs[i].numpy()
        for flat in range(data.size):
            index = np.unravel_index(flat, data.shape) if data.ndim else ()
            original = data[index]
            data[index] = original + eps
            plus = projected()
            data[index] = original - eps
            minus = projected()
            data[index] = original
            numeric = (plus - minus) / (2 * eps)
            value = float(analytic[i][index])
            if not abs(value - numeric) <= atol + rtol * abs(numeric):
                raise AssertionError(
                    f"gradcheck: input {i}, element {tuple(int(k) for k in index)}: "
                    f"analytic gradient {value!r} != numeric {numeric!r} "
                    f"(atol={atol}, rtol={rtol})"
                )
    return True


__all__ = [
    "gradcheck",
]
