"""``minidl.optim``: optimizers (PyTorch's update rules) and learning-rate schedules.

>>> model = minidl.nn.Dense(3, 1)
>>> opt = minidl.optim.Adam(model.parameters(), lr=1e-3)
>>> loss = (model(minidl.ones(4, 3)) ** 2).mean()
>>> opt.zero_grad()
>>> loss.backward()
>>> opt.step()
"""

from __future__ import annotations

from . import lr_scheduler
from .optimizer import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, Optimizer, RAdam, RMSprop

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "lr_scheduler",
]
