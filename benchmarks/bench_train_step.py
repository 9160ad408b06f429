"""One training step of the example CNN and MLP with BatchNorm: minidl against torch.

    python benchmarks/bench_train_step.py [--threads 2] [--rounds 5]

The models are those ``examples/train_mnist.py`` trains, with BatchNorm, from
``minidl.models`` (``small_cnn(batch_norm=True)`` on batches of 32 to 256
MNIST-sized images, ``bn_paper_mlp()`` on a batch of 60), and the same layers
built in torch. A step is the same five calls in both libraries: forward, the
cross-entropy loss, ``zero_grad``, ``backward`` and the optimizer's ``step``,
with SGD (learning rate 0.01, momentum 0.9) as the speed issue measures, and
with Adam at one batch size. Each library runs in its own worker process,
alternating; the table shows the median of the per-round best step times, and
the summary the per-round ratios.
"""

import sys

# isort: off
import harness  # first: a minidl worker loads minidl before numpy (see harness)

import numpy as np

# isort: on

BATCHES = (32, 64, 128, 256)
CASES = {
    **{f"CNN-BN, batch {size}, SGD": ("cnn", size, "sgd") for size in BATCHES},
    "MLP-BN, batch 60, SGD": ("mlp", 60, "sgd"),
    "CNN-BN, batch 128, Adam": ("cnn", 128, "adam"),
    "MLP-BN, batch 60, Adam": ("mlp", 60, "adam"),
}
# one worker per group, the smaller batches first
GROUPS = [
    ["MLP-BN, batch 60, SGD", "MLP-BN, batch 60, Adam"],
    ["CNN-BN, batch 32, SGD", "CNN-BN, batch 64, SGD"],
    ["CNN-BN, batch 128, SGD", "CNN-BN, batch 128, Adam"],
    ["CNN-BN, batch 256, SGD"],
]
QUICK_CASES = ["MLP-BN, batch 60, SGD", "CNN-BN, batch 32, SGD"]
LIBRARIES = ["minidl", "torch"]
# the targets of issue 13: CNN steps at most torch's time, the MLP step at most 0.8 of it,
# and time growing linearly with the batch (no page-fault cliff above 32 MiB)
SUMMARY = [
    *(
        harness.Ratio(
            f"CNN-BN step, batch {size}: minidl / torch",
            f"CNN-BN, batch {size}, SGD",
            "minidl",
            "torch",
            limit=1.0,
        )
        for size in BATCHES
    ),
    harness.Ratio(
        "MLP-BN step, batch 60: minidl / torch",
        "MLP-BN, batch 60, SGD",
        "minidl",
        "torch",
        limit=0.8,
    ),
    harness.Ratio(
        "CNN-BN step, batch 256 / batch 128: minidl",
        "CNN-BN, batch 256, SGD",
        "minidl",
        "minidl",
        "CNN-BN, batch 128, SGD",
        limit=2.1,
    ),
    harness.Ratio(
        "CNN-BN step, batch 256 / batch 128: torch",
        "CNN-BN, batch 256, SGD",
        "torch",
        "torch",
        "CNN-BN, batch 128, SGD",
    ),
    harness.Ratio(
        "CNN-BN step with Adam, batch 128: minidl / torch",
        "CNN-BN, batch 128, Adam",
        "minidl",
        "torch",
    ),
    harness.Ratio(
        "MLP-BN step with Adam, batch 60: minidl / torch",
        "MLP-BN, batch 60, Adam",
        "minidl",
        "torch",
    ),
]


def _batch(size, kind):
    rng = np.random.default_rng(0)
    shape = (size, 1, 28, 28) if kind == "cnn" else (size, 784)
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, size)


def _minidl_model(kind):
    from minidl import models

    return models.small_cnn(batch_norm=True) if kind == "cnn" else models.bn_paper_mlp()


def _torch_model(kind):
    """The twins of ``minidl.models.bn_paper_mlp()`` and ``small_cnn()`` in torch."""
    import torch.nn as tnn

    if kind == "mlp":
        layers = [tnn.Flatten()]
        width = 784
        for _ in range(3):
            layers += [tnn.Linear(width, 100, bias=False), tnn.BatchNorm1d(100), tnn.Sigmoid()]
            width = 100
        return tnn.Sequential(*layers, tnn.Linear(100, 10))
    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3, padding=1, bias=False),
        tnn.BatchNorm2d(32),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1, bias=False),
        tnn.BatchNorm2d(64),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(64 * 7 * 7, 128, bias=False),
        tnn.BatchNorm1d(128),
        tnn.ReLU(),
        tnn.Linear(128, 10),
    )


def _optimizer(library, name, parameters):
    if name == "sgd":
        return library.optim.SGD(parameters, lr=0.01, momentum=0.9)
    return library.optim.Adam(parameters, lr=1e-3)


def make(library, case, threads):
    kind, size, optimizer_name = CASES[case]
    x, y = _batch(size, kind)
    if library == "minidl":
        import minidl

        minidl.set_num_threads(threads)
        model = _minidl_model(kind)
        optimizer = _optimizer(minidl, optimizer_name, model.parameters())
        loss_fn = minidl.nn.CrossEntropyLoss()
        inputs, targets = minidl.tensor(x), minidl.tensor(y)
    else:
        import torch

        torch.set_num_threads(threads)
        model = _torch_model(kind)
        optimizer = _optimizer(torch, optimizer_name, model.parameters())
        loss_fn = torch.nn.CrossEntropyLoss()
        inputs, targets = torch.from_numpy(x), torch.from_numpy(y)

    def step():  # the same calls in both libraries
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
