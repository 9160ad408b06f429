"""One training set-up that uses everything a resume must restore, for test_resume and
test_faults: a seeded, shuffling, prefetching DataLoader with a random transform, dropout,
EarlyStopping, ModelCheckpoint (every epoch and save_best_only), a per-step OneCycle
schedule and minidl's generator.

Run as a script (``python tests/resume_setup.py FOLDER [--resume]``) it trains in FOLDER,
resuming from FOLDER/last.npz when asked and the file exists, and writes FOLDER/result.npz.
"""

import os
import sys
import time

import numpy as np

import minidl
from minidl import nn, optim
from minidl.data import ArrayDataset, DataLoader
from minidl.train import Callback, EarlyStopping, ModelCheckpoint, Trainer

EPOCHS = 30
TIMING = ("time", "samples_per_second")  # the only figures that differ between runs


def _data():
    generator = np.random.default_rng(7)
    x = generator.normal(size=(320, 12)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.int64) + (x[:, 3] > 1).astype(np.int64)
    val_x = generator.normal(size=(96, 12)).astype(np.float32)
    val_y = (val_x[:, :3].sum(axis=1) > 0).astype(np.int64) + (val_x[:, 3] > 1).astype(np.int64)
    val_y[::4] = generator.integers(0, 3, 24)  # noise: val_loss soon rises, EarlyStopping stops
    return x, y, val_x, val_y


def _jitter(batch, rng):
    return batch + rng.normal(0.0, 0.05, batch.shape).astype(batch.dtype)


class Pace(Callback):
    """Sleeps after each step (no state, no effect on results) so a kill lands mid-run."""

    def __init__(self, seconds):
        self.seconds = seconds

    def on_batch_end(self, step, logs=None):
        time.sleep(self.seconds)


def make(folder, pace=0.0, prefetch=True):
    """A Trainer and its training and validation DataLoaders; checkpoints go to ``folder``."""
    minidl.manual_seed(11)
    x, y, val_x, val_y = _data()
    train = DataLoader(
        ArrayDataset(x, y),
        batch_size=32,
        shuffle=True,
        seed=5,
        transform=_jitter,
        prefetch=prefetch,
    )
    val = DataLoader(ArrayDataset(val_x, val_y), batch_size=48)
    model = nn.Sequential(nn.Dense(12, 48), nn.ReLU(), nn.Dropout(0.3), nn.Dense(48, 3))
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    schedule = optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.03, epochs=EPOCHS, steps_per_epoch=len(train)
    )
    callbacks = [
        ModelCheckpoint(os.path.join(folder, "best.npz"), monitor="val_loss", save_best_only=True),
        EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
        ModelCheckpoint(os.path.join(folder, "last.npz")),
        Pace(pace),
    ]
    trainer = Trainer(
        model,
        optimizer,
        loss=nn.CrossEntropyLoss(),
        metrics=["accuracy"],
        scheduler=schedule,
        scheduler_interval="step",
        callbacks=callbacks,
        verbose=0,
    )
    return trainer, train, val


def without_timing(history):
    """The history's epochs without their wall-clock figures."""
    return [{k: v for k, v in record.items() if k not in TIMING} for record in history.epochs]


def result(trainer):
    """What a finished run must reproduce bit for bit."""
    return {
        "model": dict(trainer.model.state_dict()),
        "optimizer": trainer.optimizer.state_dict(),
        "epochs": without_timing(trainer.history),
        "steps": trainer.global_step,
        "rng": minidl.random.get_rng_state(),
    }


def run(folder, resume=False, pace=0.0):
    trainer, train, val = make(folder, pace)
    last = os.path.join(folder, "last.npz")
    if resume and os.path.exists(last):
        trainer.resume(last)
    trainer.fit(train, epochs=EPOCHS, val_data=val)
    minidl.save(result(trainer), os.path.join(folder, "result.npz"))
    return trainer


if __name__ == "__main__":
    run(sys.argv[1], resume="--resume" in sys.argv, pace=float(os.environ.get("PACE", "0")))


def assert_same(actual, expected, where="result"):
    """Assert two nested results (dicts, lists, arrays, numbers) are equal bit for bit."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual, key=str) == sorted(expected, key=str), (
            f"{where}: keys {sorted(actual, key=str)} != {sorted(expected, key=str)}"
        )
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{where}: length {len(actual)} != {len(expected)}"
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}[{index}]")
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, where
        assert actual.tobytes() == expected.tobytes(), f"{where}: the bits differ"
    else:
        assert actual == expected or (actual != actual and expected != expected), (
            f"{where}: {actual!r} != {expected!r}"
        )


def best_file(folder):
    """The parts of FOLDER/best.npz a resume must not change: model, epoch, history."""
    state = minidl.load(os.path.join(folder, "best.npz"))
    history = minidl.train.History.from_dict(state["history"])
    return {"model": state["model"], "epoch": state["epoch"], "epochs": without_timing(history)}
