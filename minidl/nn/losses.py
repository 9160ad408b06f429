"""Loss layers: ``loss(prediction, target)`` -> a scalar (or per-element with reduction='none')."""

from .. import functional as F
from .module import Module


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of (N, K) logits against (N,) integer labels.

    ``label_smoothing`` e makes the target (1 - e) * one_hot + e / K; ``reduction``
    is 'mean' (default), 'sum' or 'none'. One fused compiled kernel each way.

    >>> loss = minidl.nn.CrossEntropyLoss()
    >>> loss(minidl.zeros(2, 4), minidl.tensor([0, 3]))
    tensor(1.3862944)
    """

    def __init__(self, label_smoothing=0.0, reduction="mean"):
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        self.reduction = reduction

    def forward(self, logits, labels):
        return F.cross_entropy(logits, labels, self.label_smoothing, self.reduction)

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"


class NLLLoss(Module):
    """Negative log-likelihood of (N,) integer labels under (N, K) log-probabilities.

    >>> minidl.nn.NLLLoss()(minidl.tensor([[-1.0, -2.0]]), minidl.tensor([0]))
    tensor(1.)
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, log_probs, labels):
        return F.nll_loss(log_probs, labels, self.reduction)


class MSELoss(Module):
    """Mean squared error between a prediction and a target of the same shape.

    >>> minidl.nn.MSELoss()(minidl.tensor([1.0, 3.0]), minidl.tensor([1.0, 1.0]))
    tensor(2.)
    """

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, prediction, target):
        return F.mse_loss(prediction, target, self.reduction)
