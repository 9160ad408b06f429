"""Model utilities: BatchNorm folding, gradient clipping, parameters as one vector.

``clip_grad_norm_``, ``clip_grad_value_``, ``parameters_to_vector`` and
``vector_to_parameters`` are torch's ``nn.utils`` functions.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np

from .. import _checks
from ..tensor import Tensor, cat
from .layers import BatchNorm, Conv2D, Dense, Identity, Sequential
from .module import Module, Parameter


def _fold_pair(layer, norm):
    """Fold ``norm``'s inference transform into ``layer``'s weight and bias, in place."""
    scale = norm.running_var.numpy().astype(np.float64) + norm.eps
    scale = 1.0 / np.sqrt(scale)
    if norm.affine:
        scale = scale * norm.weight.numpy()
    shift = -norm.running_mean.numpy().astype(np.float64) * scale
    if norm.affine:
        shift = shift + norm.bias.numpy()
    dtype = layer.weight.dtype
    expand = (slice(None),) + (None,) * (layer.weight.ndim - 1)
    layer.weight.data = (layer.weight.numpy() * scale[expand]).astype(dtype)
    bias = np.zeros(scale.shape) if layer.bias is None else layer.bias.numpy().astype(np.float64)
    layer.bias = Parameter((bias * scale + shift).astype(dtype))


def _foldable(layer, norm):
    if not isinstance(norm, BatchNorm) or not norm.track_running_stats:
        return False
    if isinstance(layer, Dense):
        return layer.out_features == norm.num_features
    return isinstance(layer, Conv2D) and layer.out_channels == norm.num_features


def _tensors(parameters, where):
    """``parameters`` (one Tensor or an iterable of them) as a list, refusing anything else."""
    if isinstance(parameters, Tensor):
        return [parameters]
    if not hasattr(parameters, "__iter__"):
        raise TypeError(
            f"{where}: expected a Tensor or an iterable of Tensors, got {type(parameters).__name__}"
        )
    parameters = list(parameters)
    for parameter in parameters:
        if not isinstance(parameter, Tensor):
            raise TypeError(
                f"{where}: expected an iterable of Tensors, got an item of type "
                f"{type(parameter).__name__}"
            )
    return parameters


def fold_batchnorm(model: Module) -> Module:
    """A copy of ``model`` for inference, each BatchNorm after a Conv2D or Dense folded into it.

    In evaluation mode a BatchNorm is an affine map per channel, ``y = (x - mean)
    * s + beta`` with ``s = gamma / sqrt(var + eps)``; applied right after a
    Conv2D or Dense it folds into that layer (weight * s per output channel,
    bias (b - mean) * s + beta), as in Ioffe & Szegedy (2015), Algorithm 2. The
    BatchNorm becomes an Identity. Pairs are looked for inside every Sequential
    (at any depth). The copy is in evaluation mode; ``model`` is not changed.

    >>> model = minidl.nn.Sequential(minidl.nn.Dense(4, 3), minidl.nn.BatchNorm(3))
    >>> fold_batchnorm(model)
    Sequential(
      (0): Dense(in_features=4, out_features=3, bias=True)
      (1): Identity()
    )
    """
    if not isinstance(model, Module):
        raise TypeError(f"fold_batchnorm: expected a minidl Module, got {type(model).__name__}")
    folded = copy.deepcopy(model)
    for module in list(folded.modules()):
        if not isinstance(module, Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:]):
            layer, norm = module._modules[first], module._modules[second]
            if _foldable(layer, norm):
                _fold_pair(layer, norm)
                module._modules[second] = Identity()
    return folded.eval()


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale gradients in place so that their total norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated (``norm_type``
    2 by default, ``inf`` for the largest absolute value). Gradients are multiplied
    by ``min(1, max_norm / (total_norm + 1e-6))``, as PyTorch does. Returns the
    total norm before clipping (a 0-d Tensor).

    >>> w = minidl.nn.Parameter(minidl.zeros(2))
    >>> w.grad = minidl.tensor([3.0, 4.0])
    >>> clip_grad_norm_([w], max_norm=1.0).item()
    5.0
    >>> w.grad.numpy().round(4)
    array([0.6, 0.8], dtype=float32)
    """
    parameters = _tensors(parameters, "clip_grad_norm_")
    for name, value in (("max_norm", max_norm), ("norm_type", norm_type)):
        # inf is a valid norm order and a valid (never clipping) bound, as in torch
        if value != np.inf:
            _checks.real(value, "clip_grad_norm_", name, low=0.0, low_open=name == "norm_type")
    grads = [p.grad.numpy() for p in parameters if p.grad is not None]
    if not grads:
        return Tensor._of(np.array(0.0))
    norm_type = float(norm_type)
    if norm_type == np.inf:
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    else:
        total = sum(float(np.sum(np.abs(g.astype(np.float64)) ** norm_type)) for g in grads)
        total = total ** (1.0 / norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"non-finite ({total}), so it cannot be clipped"
        )
    coefficient = min(1.0, max_norm / (total + 1e-6))
    for g in grads:
        g *= coefficient
    return Tensor._of(np.array(total))


def clip_grad_value_(
    parameters: Tensor | Iterable[Tensor], clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp every gradient in place to [-clip_value, clip_value]; returns None, as torch's.

    >>> w = minidl.nn.Parameter(minidl.zeros(3))
    >>> w.grad = minidl.tensor([-2.0, 0.5, 3.0])
    >>> clip_grad_value_([w], 1.0)
    >>> w.grad
    tensor([-1. ,  0.5,  1. ])
    """
    parameters = _tensors(parameters, "clip_grad_value_")
    clip_value = _checks.real(clip_value, "clip_grad_value_", "clip_value", low=0.0)
    for parameter in parameters:
        if parameter.grad is not None:
            grad = parameter.grad.numpy()
            np.clip(grad, -clip_value, clip_value, out=grad)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """The parameters flattened and concatenated into one 1-d Tensor (differentiable).

    >>> layer = minidl.nn.Dense(3, 2)
    >>> parameters_to_vector(layer.parameters()).shape
    (8,)
    """
    parameters = _tensors(parameters, "parameters_to_vector")
    return cat([parameter.reshape(-1) for parameter in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-d Tensor ``vec`` into ``parameters`` (their data).

    >>> layer = minidl.nn.Dense(3, 2)
    >>> vector_to_parameters(minidl.zeros(8), layer.parameters())
    >>> layer.bias.tolist()
    [0.0, 0.0]
    """
    if not isinstance(vec, Tensor):
        raise TypeError(
            # torch's words (a minidl Tensor is what it means here)
            f"vector_to_parameters: expected torch.Tensor, but got: {type(vec).__name__}"
        )
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: expected a 1-d vec, got shape {vec.shape}")
    parameters = _tensors(parameters, "vector_to_parameters")
    total = sum(parameter.numel() for parameter in parameters)
    if total != vec.numel():
        raise ValueError(
            f"vector_to_parameters: vec has {vec.numel()} elements, the parameters {total}"
        )
    array = vec.numpy()
    offset = 0
    for parameter in parameters:
        count = parameter.numel()
        parameter.data = (
            array[offset : offset + count].reshape(parameter.shape).astype(parameter.dtype)
        )
        offset += count


__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "fold_batchnorm",
    "parameters_to_vector",
    "vector_to_parameters",
]
