"""``minidl.nn.functional``: the stateless operations behind the layers (see ``minidl.functional``).

>>> import minidl.nn.functional as F
>>> F.relu(minidl.tensor([-1.0, 1.0]))
tensor([0., 1.])
"""

from ..functional import (  # noqa: F401
    avg_pool2d,
    batch_norm,
    conv2d,
    cross_entropy,
    dropout,
    leaky_relu,
    linear,
    log_softmax,
    max_pool2d,
    mse_loss,
    nll_loss,
    relu,
    sigmoid,
    softmax,
    tanh,
)
