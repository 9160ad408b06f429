"""Loss layers: ``loss(prediction, target)`` -> a scalar (or per-element with reduction='none')."""

from .. import _checks
from . import functional as F
from .module import Module


class _Loss(Module):
    """A loss with a ``reduction``: 'mean' (default), 'sum' or 'none' (per element)."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = _checks.reduction(reduction, type(self).__name__)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of (N, K) logits against (N,) integer labels.

    ``label_smoothing`` e makes the target (1 - e) * one_hot + e / K; ``reduction``
    is 'mean' (default), 'sum' or 'none'. One fused compiled kernel each way.

    >>> loss = minidl.nn.CrossEntropyLoss()
    >>> loss(minidl.zeros(2, 4), minidl.tensor([0, 3]))
    tensor(1.3862944)
    """

    def __init__(self, label_smoothing=0.0, reduction="mean"):
        super().__init__(reduction)
        self.label_smoothing = _checks.label_smoothing(label_smoothing, "CrossEntropyLoss")

    def forward(self, logits, labels):
        return F.cross_entropy(logits, labels, self.label_smoothing, self.reduction)

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"


class NLLLoss(_Loss):
    """Negative log-likelihood of (N,) integer labels under (N, K) log-probabilities.

    >>> minidl.nn.NLLLoss()(minidl.tensor([[-1.0, -2.0]]), minidl.tensor([0]))
    tensor(1.)
    """

    def forward(self, log_probs, labels):
        return F.nll_loss(log_probs, labels, self.reduction)


class MSELoss(_Loss):
    """Mean squared error between a prediction and a target of the same shape.

    >>> minidl.nn.MSELoss()(minidl.tensor([1.0, 3.0]), minidl.tensor([1.0, 1.0]))
    tensor(2.)
    """

    def forward(self, prediction, target):
        return F.mse_loss(prediction, target, self.reduction)
