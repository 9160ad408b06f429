"""Loss layers: ``loss(input, target)`` -> a scalar (or per-element with reduction='none').

Names, arguments, defaults and state dicts are torch's: a class ``weight`` (and
BCEWithLogitsLoss's ``pos_weight``) is a buffer, so it is in the state dict when given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from .. import _checks
from . import functional as F
from .module import Module

if TYPE_CHECKING:
    from ..tensor import Tensor


class _Loss(Module):
    """A loss with a ``reduction``: 'mean' (default), 'sum' or 'none' (per element).

    ``size_average`` and ``reduce`` are torch's deprecated spellings of ``reduction``.
    """

    _reductions: ClassVar[tuple[str, ...]] = _checks.REDUCTIONS

    def __init__(
        self, size_average: Any = None, reduce: Any = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        reduction = F._legacy_reduction(size_average, reduce, reduction)
        if reduction not in self._reductions:
            choices = ", ".join(repr(r) for r in self._reductions)
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {choices}, got {reduction!r}"
            )
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    """A loss with an optional ``weight`` buffer (in the state dict when given, as torch's)."""

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: Any = None,
        reduce: Any = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy of logits against class indices or class probabilities.

    Input (N, C), (C,) or (N, C, d1, ...); target (N,), () or (N, d1, ...) integer
    class indices, or float probabilities of the input's shape. ``weight`` (C,) weighs
    the classes, ``ignore_index`` targets count for nothing, ``label_smoothing`` e
    makes the target (1 - e) * target + e / C; see :func:`minidl.nn.functional.cross_entropy`.

    >>> loss = minidl.nn.CrossEntropyLoss()
    >>> loss(minidl.zeros(2, 4), minidl.tensor([0, 3]))
    tensor(1.3862944)
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: Any = None,
        ignore_index: int = -100,
        reduce: Any = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = int(ignore_index)
        self.label_smoothing = _checks.label_smoothing(label_smoothing, "CrossEntropyLoss")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices under log-probabilities.

    Input (N, C), (C,) or (N, C, d1, ...); target (N,), () or (N, d1, ...); ``weight``
    and ``ignore_index`` as :class:`CrossEntropyLoss`'s.

    >>> minidl.nn.NLLLoss()(minidl.tensor([[-1.0, -2.0]]), minidl.tensor([0]))
    tensor(1.)
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: Any = None,
        ignore_index: int = -100,
        reduce: Any = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(
            input,
            target,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


class MSELoss(_Loss):
    """Mean squared error between an input and a target of the same shape.

    >>> minidl.nn.MSELoss()(minidl.tensor([1.0, 3.0]), minidl.tensor([1.0, 1.0]))
    tensor(2.)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error between an input and a target of the same shape.

    >>> minidl.nn.L1Loss()(minidl.tensor([1.0, 3.0]), minidl.tensor([1.0, 1.0]))
    tensor(1.)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Squared below ``beta``, absolute above: see :func:`minidl.nn.functional.smooth_l1_loss`.

    >>> minidl.nn.SmoothL1Loss()(minidl.tensor([0.5, 3.0]), minidl.zeros(2))
    tensor(1.3125)
    """

    def __init__(
        self,
        size_average: Any = None,
        reduce: Any = None,
        reduction: str = "mean",
        beta: float = 1.0,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = F._real_number(beta, "SmoothL1Loss", "beta")
        if self.beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be non-negative, got {self.beta}")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Squared below ``delta``, linear above: see :func:`minidl.nn.functional.huber_loss`.

    >>> minidl.nn.HuberLoss()(minidl.tensor([0.5, 3.0]), minidl.zeros(2))
    tensor(1.3125)
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = F._real_number(delta, "HuberLoss", "delta")
        if self.delta <= 0:
            raise ValueError(f"HuberLoss: delta must be positive, got {self.delta}")

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in [0, 1]; logs clamped at -100, as torch's.

    Input and target of the same shape; ``weight`` broadcastable to it.

    >>> minidl.nn.BCELoss()(minidl.tensor([0.5, 0.5]), minidl.tensor([1.0, 0.0]))
    tensor(0.6931472)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of ``sigmoid(input)``, computed stably from the logits.

    ``weight`` broadcastable to the input, ``pos_weight`` to its last dim (one per
    class); both buffers, as torch's.

    >>> minidl.nn.BCEWithLogitsLoss()(minidl.zeros(2), minidl.tensor([1.0, 0.0]))
    tensor(0.6931472)
    """

    def __init__(
        self,
        weight: Tensor | None = None,
        size_average: Any = None,
        reduce: Any = None,
        reduction: str = "mean",
        pos_weight: Tensor | None = None,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence of log-probability inputs; reduction may be 'batchmean'.

    >>> loss = minidl.nn.KLDivLoss(reduction="batchmean")
    >>> loss(minidl.tensor([[-1.0, -1.0]]), minidl.tensor([[0.5, 0.5]]))
    tensor(0.30685282)
    """

    _reductions = ("mean", "batchmean", "sum", "none")

    def __init__(
        self,
        size_average: Any = None,
        reduce: Any = None,
        reduction: str = "mean",
        log_target: bool = False,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = bool(log_target)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
