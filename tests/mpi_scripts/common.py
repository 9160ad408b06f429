"""What the MPI test scripts (run under mpiexec by tests/test_distributed.py) and the tests
that check their results share: the model, its initial weights and the data."""

import numpy as np

STEPS = 5
GLOBAL_BATCH = 128
CLASSES = 3


def initial_state(seed=0):
    """The initial weights (float64) of :func:`build`'s model, as a torch-layout state dict."""
    rng = np.random.default_rng(seed)
    state = {
        "0.weight": rng.normal(0, 0.5, (4, 1, 3, 3)),
        "0.bias": rng.normal(0, 0.1, 4),
        "1.weight": rng.uniform(0.5, 1.5, 4),
        "1.bias": rng.normal(0, 0.1, 4),
        "1.running_mean": np.zeros(4),
        "1.running_var": np.ones(4),
        "1.num_batches_tracked": np.array(0, dtype=np.int64),
        "5.weight": rng.normal(0, 0.2, (16, 64)),
        "5.bias": rng.normal(0, 0.1, 16),
        "6.weight": rng.uniform(0.5, 1.5, 16),
        "6.bias": rng.normal(0, 0.1, 16),
        "6.running_mean": np.zeros(16),
        "6.running_var": np.ones(16),
        "6.num_batches_tracked": np.array(0, dtype=np.int64),
        "8.weight": rng.normal(0, 0.3, (CLASSES, 16)),
        "8.bias": rng.normal(0, 0.1, CLASSES),
    }
    return state


def build(lib):
    """The CNN-BN of the tests in ``lib`` (minidl.nn or torch.nn), float64, initial weights."""
    model = lib.Sequential(
        lib.Conv2d(1, 4, 3, padding=1),
        lib.BatchNorm2d(4),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Flatten(),
        lib.Linear(64, 16),
        lib.BatchNorm1d(16),
        lib.ReLU(),
        lib.Linear(16, CLASSES),
    )
    return model


def batches(steps=STEPS, size=GLOBAL_BATCH, seed=1):
    """``steps`` global batches ``(x (size, 1, 8, 8) float64, y (size,) int64)``; the data is
    offset from zero so that the statistics' precision matters."""
    rng = np.random.default_rng(seed)
    return [
        (3.0 + 2.0 * rng.standard_normal((size, 1, 8, 8)), rng.integers(0, CLASSES, size))
        for _ in range(steps)
    ]


def shard(array, rank, world):
    """Rank ``rank``'s contiguous part of ``array`` (np.array_split: uneven for 3 ranks)."""
    return np.array_split(array, world)[rank]


def minidl_model(state=None):
    import minidl

    model = build(minidl.nn).double()
    model.load_state_dict(initial_state() if state is None else state)
    return model


def train_single_process(steps=STEPS):
    """The reference: one process, the whole batch, BatchNorm. Returns (losses, state)."""
    import minidl

    model = minidl_model()
    optimizer = minidl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = minidl.nn.CrossEntropyLoss()
    losses = []
    for x, y in batches(steps):
        loss = loss_fn(model(minidl.tensor(x)), minidl.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), {k: v.copy() for k, v in model.state_dict().items()}


def trainer_data():
    """(train x, train y, validation x, validation y) of the Trainer tests."""
    (x, y), (val_x, val_y) = batches(1, 256, seed=3)[0], batches(1, 100, seed=4)[0]
    return x, y, val_x, val_y


def make_trainer(model, workdir=None, callbacks=()):
    """The Trainer of the Trainer tests (SGD, cross-entropy, accuracy), writing a checkpoint
    and a CSV log into ``workdir`` each epoch when it is given."""
    import minidl

    callbacks = list(callbacks)
    if workdir is not None:
        callbacks += [
            minidl.train.ModelCheckpoint(f"{workdir}/ckpt-{{epoch}}.npz"),
            minidl.train.CSVLogger(f"{workdir}/log.csv"),
        ]
    optimizer = minidl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return minidl.Trainer(
        model,
        optimizer,
        minidl.nn.CrossEntropyLoss(),
        metrics=["accuracy"],
        callbacks=callbacks,
        verbose=2,
    )
