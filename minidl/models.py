"""Ready-made models: the networks the examples and benchmarks train, built in one place.

Each builder returns an ``nn.Sequential`` whose layers are created in a fixed order, so
the same ``minidl.manual_seed`` gives the same initial weights wherever it is called.

>>> import minidl.models
>>> minidl.manual_seed(0)
>>> model = minidl.models.bn_paper_mlp()
>>> model(minidl.randn(60, 784)).shape
(60, 10)
"""

from __future__ import annotations

from . import nn

__all__ = ["bn_paper_mlp", "small_cnn"]


def bn_paper_mlp(batch_norm: bool = True) -> nn.Sequential:
    """The MLP of Ioffe & Szegedy's Figure 1: 784-100-100-100-10 with sigmoids.

    Three hidden ``Dense`` layers of 100 units, each followed by a sigmoid, then a
    ``Dense`` layer of 10 logits. With ``batch_norm``, a ``BatchNorm`` comes before each
    sigmoid and the hidden ``Dense`` layers have no bias (BatchNorm's shift replaces it).
    Weights are the layers' default (PyTorch's) initialization.

    Input (N, 784), or (N, 1, 28, 28) images (flattened first); output (N, 10) logits.

    >>> import minidl.models
    >>> model = minidl.models.bn_paper_mlp(batch_norm=False)
    >>> model(minidl.randn(5, 1, 28, 28)).shape
    (5, 10)
    >>> sum(p.numel() for p in model.parameters())
    99710
    """
    layers: list[nn.Module] = [nn.Flatten()]
    width = 784
    for _ in range(3):
        layers.append(nn.Dense(width, 100, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm(100))
        layers.append(nn.Sigmoid())
        width = 100
    layers.append(nn.Dense(100, 10))
    return nn.Sequential(*layers)


def small_cnn(batch_norm: bool = True, in_channels: int = 1, classes: int = 10) -> nn.Sequential:
    """A small CNN for 28x28 images: two convolution blocks, then two dense layers.

    Each block is ``Conv2D`` 3x3 (padding 1; 32, then 64 channels) -> [``BatchNorm2D``] ->
    ``ReLU`` -> ``MaxPool2D(2)``; then ``Flatten`` -> ``Dense`` 64*7*7 -> 128 ->
    [``BatchNorm``] -> ``ReLU`` -> ``Dense`` 128 -> ``classes``. With ``batch_norm`` the
    layers before a BatchNorm have no bias. Weights are the layers' default initialization.

    Input (N, in_channels, 28, 28); output (N, classes) logits.

    >>> import minidl.models
    >>> model = minidl.models.small_cnn(batch_norm=True, in_channels=1, classes=10)
    >>> model(minidl.randn(2, 1, 28, 28)).shape
    (2, 10)
    """

    def block(channels_in, channels_out):
        layers = [nn.Conv2D(channels_in, channels_out, 3, padding=1, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2D(channels_out))
        return [*layers, nn.ReLU(), nn.MaxPool2D(2)]

    head = [nn.Flatten(), nn.Dense(64 * 7 * 7, 128, bias=not batch_norm)]
    if batch_norm:
        head.append(nn.BatchNorm(128))
    head += [nn.ReLU(), nn.Dense(128, classes)]
    return nn.Sequential(*block(in_channels, 32), *block(32, 64), *head)
