"""One training step (forward, backward, Adam update) of the example CNN and MLP: minidl vs torch.

    python benchmarks/bench_train_step.py [--threads 2] [--rounds 3]

The models are those ``examples/train_mnist.py`` trains, with BatchNorm, from
``minidl.models`` (``small_cnn`` on a batch of 128 MNIST-sized images,
``bn_paper_mlp`` on a batch of 60), and the same layers built in torch. Each library
runs in its own worker process, alternating; the table shows the median of the
per-round best step times.
"""

# isort: off
import harness  # first: a minidl worker loads minidl before numpy (see harness)

import numpy as np

# isort: on

CASES = {
    "CNN with BN, batch 128": ("cnn", 128),
    "MLP with BN, batch 60": ("mlp", 60),
}
LIBRARIES = ["minidl", "torch"]


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


def make(library, case, threads):
    kind, size = CASES[case]
    x, y = _batch(size, kind)
    if library == "minidl":
        import minidl

        minidl.set_num_threads(threads)
        model = _minidl_model(kind)
        optimizer = minidl.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = minidl.nn.CrossEntropyLoss()
        inputs, targets = minidl.tensor(x), minidl.tensor(y)
    else:
        import torch

        torch.set_num_threads(threads)
        model = _torch_model(kind)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        inputs, targets = torch.from_numpy(x), torch.from_numpy(y)

    def step():  # the same four calls in both libraries
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def report(cases, libraries, results):
    print(f"{'case':26s}" + "".join(f"{lib:>12s}" for lib in libraries) + "   torch / minidl")
    for case in cases:
        row = results[case]
        line = f"{case:26s}" + "".join(f"{row[lib] * 1e3:10.1f}ms" for lib in libraries)
        if "torch" in row:
            line += f"   {row['torch'] / row['minidl']:10.2f}"
        print(line)


if __name__ == "__main__":
    harness.main(CASES, LIBRARIES, make, report)
