"""Training in three lines: :class:`Trainer`, :class:`History` and the callbacks.

>>> model = minidl.nn.Sequential(minidl.nn.Dense(2, 8), minidl.nn.ReLU(), minidl.nn.Dense(8, 2))
>>> trainer = minidl.Trainer(model, minidl.optim.SGD(model.parameters(), lr=0.1),
...                          loss=minidl.nn.CrossEntropyLoss(), metrics=["accuracy"], verbose=0)
>>> batches = [(np.ones((4, 2), np.float32), np.array([0, 1, 0, 1]))] * 3
>>> history = trainer.fit(batches, epochs=2)
>>> len(history.epochs), sorted(history.epochs[-1])[:3]
(2, ['accuracy', 'epoch', 'loss'])

A data source is anything that can be iterated once per epoch and yields
``(inputs, targets)`` batches of numpy arrays or Tensors (a
``minidl.data.DataLoader``, a list of pairs, a generator function's result
wrapped in a list, ...); ``len()`` on it, when available, sizes the progress bar.

Distributed training: give the Trainer a
:class:`~minidl.nn.parallel.DistributedDataParallel` model in a world of more
than one rank (``mpiexec -n 4 python train.py``) and each rank's shard of the
training data (``DataLoader(..., sampler=DistributedSampler(dataset))``, whose
``set_epoch`` the Trainer calls before each epoch). Then only rank 0 draws
progress bars, prints, and writes checkpoints and CSV logs; the epoch's loss and
metrics are over every rank's samples; validation data is split over the ranks
(batch i to rank i mod world size) and its figures are those of one process
evaluating all of it; a non-finite loss on any rank, or a callback's stop on any
rank, stops every rank at the same step.
"""

import copy
import math
import sys
import time

import numpy as np

from . import _checks
from . import distributed as _distributed
from . import random as _random
from .callbacks import (
    ActivationStats,
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    NonFiniteLossError,
    PeriodicEvaluation,
    TerminateOnNaN,
)
from .data.loader import DataLoader, Dataset
from .io import load, save
from .nn.module import evaluating
from .nn.parallel import DistributedDataParallel
from .nn.utils import clip_grad_norm_
from .optim.lr_scheduler import ReduceLROnPlateau
from .tensor import Tensor

CHECKPOINT_FORMAT = "minidl-checkpoint"


def accuracy(outputs, targets):
    """Fraction of rows whose largest output is at the target class: (N, K) and (N,) arrays.

    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    outputs, targets = np.asarray(outputs), np.asarray(targets)
    if outputs.ndim != 2 or targets.shape != outputs.shape[:1]:
        raise ValueError(
            f"accuracy: expected outputs (N, K) and targets (N,), got shapes {outputs.shape} "
            f"and {targets.shape}"
        )
    return float(np.mean(np.argmax(outputs, axis=1) == targets))


_METRICS = {"accuracy": accuracy, "acc": accuracy}


def _metric(spec):
    if callable(spec):
        return getattr(spec, "__name__", "metric"), spec
    if spec in _METRICS:
        return "accuracy" if spec == "acc" else spec, _METRICS[spec]
    raise ValueError(
        f"Trainer: unknown metric {spec!r}; use 'accuracy' or a function (outputs, targets)"
    )


def _tensor(value):
    if isinstance(value, Tensor):
        return value
    return Tensor._of(np.asarray(value))


def _array(value):
    return value.numpy() if isinstance(value, Tensor) else np.asarray(value)


def _split(batch):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(
            f"Trainer: each batch must be an (inputs, targets) pair, got {type(batch).__name__}"
        )
    return batch


class History:
    """What :meth:`Trainer.fit` recorded: one dict per epoch (and per step, if asked).

    ``epochs[i]`` holds ``epoch``, ``loss``, the metrics, ``val_*`` values, ``lr``,
    ``time`` and ``samples_per_second``; ``history[name]`` is the list of one value
    across epochs (Keras' ``History.history``); ``steps`` holds ``{"epoch",
    "step", "loss"}`` per batch when the Trainer records steps.

    >>> h = History()
    >>> h.epochs.append({"epoch": 1, "loss": 0.5})
    >>> h.history["loss"]
    [0.5]
    """

    def __init__(self, epochs=None, steps=None):
        self.epochs = list(epochs or [])
        self.steps = list(steps or [])

    @property
    def history(self):
        names = []
        for record in self.epochs:
            names.extend(key for key in record if key not in names)
        return {name: [record.get(name) for record in self.epochs] for name in names}

    def to_dict(self):
        """``{"epochs": [...], "steps": [...]}``, plain values only."""
        return {"epochs": [dict(r) for r in self.epochs], "steps": [dict(r) for r in self.steps]}

    @classmethod
    def from_dict(cls, data):
        """The inverse of :meth:`to_dict`."""
        return cls(data.get("epochs"), data.get("steps"))

    def plot(self, path, metrics=None):
        """Draw the learning curves (loss and metrics, train and validation) into ``path`` (PNG).

        Needs matplotlib (``pip install "minidl[examples]"``). The figure is drawn
        on its own canvas, without pyplot, so matplotlib's backend (an interactive
        session's included) is left as it is.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError(
                "History.plot needs matplotlib, which is not installed; install it with "
                "python -m pip install matplotlib (or the 'examples' extra of minidl)"
            ) from None
        history = self.history
        if metrics is None:
            skip = {"epoch", "lr", "time", "samples_per_second"}
            metrics = [k for k in history if k not in skip and not k.startswith("val_")]
        figure = Figure(figsize=(5 * len(metrics), 3.5))
        axes = figure.subplots(1, len(metrics), squeeze=False)
        for axis, name in zip(axes[0], metrics):
            axis.plot(history["epoch"], history[name], marker="o", label=f"train {name}")
            if f"val_{name}" in history:
                axis.plot(
                    history["epoch"], history[f"val_{name}"], marker="o", label=f"validation {name}"
                )
            axis.set_xlabel("epoch")
            axis.set_title(name)
            axis.legend()
        figure.tight_layout()
        figure.savefig(path, dpi=100)
        return path


def _check_batches(data, where, name):
    """Refuse ``data`` that is not an iterable of batches, saying what to pass instead."""
    if isinstance(data, Dataset):
        raise TypeError(
            f"{where}: {name} is a dataset of single samples; wrap it in a DataLoader "
            f"(minidl.data.DataLoader({name}, batch_size=...)) to get batches"
        )
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(
            f"{where}: expected {name} as a DataLoader or an iterable of (inputs, targets) "
            f"batches, got {type(data).__name__}"
        )


class Trainer:
    """Fit, evaluate and predict with a model, an optimizer and a loss.

    - ``metrics``: names ("accuracy") or functions ``f(outputs, targets) -> float``
      on numpy arrays.
    - ``scheduler``: a learning-rate schedule stepped each epoch
      (``scheduler_interval="epoch"``) or each batch (``"step"``, for OneCycleLR);
      ReduceLROnPlateau is stepped with ``scheduler_monitor`` from the epoch's logs.
    - ``callbacks``: :class:`Callback` instances; :class:`TerminateOnNaN` is added
      unless ``terminate_on_nan=False``.
    - ``grad_clip_norm``: clip the total gradient norm before each update.
    - ``verbose``: 0 silent, 1 a progress bar per epoch and a line per epoch,
      2 one line per epoch (for logs and CI).
    - ``record_steps``: also record each batch's loss in ``history.steps``.

    >>> model = minidl.nn.Dense(3, 2)
    >>> trainer = minidl.Trainer(model, minidl.optim.Adam(model.parameters()),
    ...                          loss=minidl.nn.CrossEntropyLoss(), verbose=0)
    >>> trainer.predict(np.zeros((5, 3), np.float32)).shape
    (5, 2)
    """

    def __init__(
        self,
        model,
        optimizer,
        loss,
        metrics=None,
        scheduler=None,
        scheduler_interval="epoch",
        scheduler_monitor="val_loss",
        callbacks=None,
        grad_clip_norm=None,
        verbose=1,
        record_steps=False,
        terminate_on_nan=True,
    ):
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(
                f"Trainer: scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}"
            )
        if verbose not in (0, 1, 2):
            raise ValueError(f"Trainer: verbose must be 0, 1 or 2, got {verbose!r}")
        if not callable(model):
            raise TypeError(f"Trainer: expected a model (a Module), got {type(model).__name__}")
        if not all(hasattr(optimizer, name) for name in ("step", "zero_grad", "param_groups")):
            raise TypeError(
                "Trainer: expected an optimizer (e.g. minidl.optim.SGD(model.parameters(), "
                f"lr=0.1)), got {type(optimizer).__name__}"
            )
        if not callable(loss):
            raise TypeError(f"Trainer: expected a loss function, got {type(loss).__name__}")
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = [_metric(m) for m in (metrics or [])]
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.scheduler_monitor = scheduler_monitor
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"Trainer: {callback!r} is not a minidl.train.Callback")
        if terminate_on_nan and not any(isinstance(c, TerminateOnNaN) for c in self.callbacks):
            self.callbacks.append(TerminateOnNaN())
        self.grad_clip_norm = grad_clip_norm
        self.verbose = verbose
        self.record_steps = record_steps
        self.history = History()
        self.epoch = 0  # epochs completed
        self.global_step = 0  # batches trained, over all epochs
        self.current_epoch = 0
        self.step_in_epoch = 0
        self.stop_training = False
        self._data = {}  # the loaders of the current fit, whose generators checkpoints save
        self._resumed = None  # what resume read that fit applies: callbacks' and loaders' state
        self._deferred = None  # checkpoints asked for during on_epoch_end, written after it
        self.last_checkpoint = None  # the path of the last checkpoint this trainer wrote

    # ------------------------------------------------------------------ callbacks
    def _call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    # ------------------------------------------------------------------ distributed
    @property
    def distributed(self):
        """Whether this is data-parallel training: a DDP model in a world of several ranks."""
        return isinstance(self.model, DistributedDataParallel) and self.model._world > 1

    @property
    def is_main_process(self):
        """False on every rank but 0 of distributed training: those neither print nor write."""
        return not self.distributed or _distributed.get_rank() == 0

    def _network(self):
        """The model to run without gradients: the wrapped module of a DDP model (its
        forward would take part in collectives that only some ranks reach)."""
        return self.model.module if isinstance(self.model, DistributedDataParallel) else self.model

    def _sum_over_ranks(self, values, what):
        """The element-wise sum of every rank's ``values`` (a list of floats), added in rank
        order, so every rank gets the same bits."""
        row = np.asarray(values, dtype=np.float64)
        if not self.distributed:
            return row
        return _distributed._allgather_rows(row, f"Trainer: {what}").sum(axis=0)

    def _any_rank(self, flag, what):
        return bool(self._sum_over_ranks([float(flag)], what)[0] > 0)

    # ------------------------------------------------------------------ training
    def train_step(self, inputs, targets):
        """One forward, backward and update on a batch; returns its loss and metrics."""
        inputs, targets = _tensor(inputs), _tensor(targets)
        outputs = self.model(inputs)
        loss = self.loss(outputs, targets)
        value = float(loss.item())
        if self.distributed:
            # callbacks see the mean over the ranks: a non-finite loss on one rank is
            # non-finite everywhere, so TerminateOnNaN stops every rank at this step
            shared = self._sum_over_ranks([value], "the step's loss")[0] / self.model._world
            self._call("on_batch_loss", self.step_in_epoch, float(shared))
        else:
            self._call("on_batch_loss", self.step_in_epoch, value)
        self.optimizer.zero_grad()
        loss.backward()
        if self.grad_clip_norm is not None:
            clip_grad_norm_(self.model.parameters(), self.grad_clip_norm)
        self.optimizer.step()
        logs = {"loss": value}
        for name, fn in self.metrics:
            logs[name] = fn(outputs.numpy(), targets.numpy())
        return logs

    def fit(self, train_data, epochs=1, val_data=None):
        """Train until ``epochs`` epochs are complete in all (a resumed run continues).

        Returns the :class:`History`, which also stays on ``trainer.history``.
        ``train_data`` (and ``val_data``) is a DataLoader or any iterable of
        ``(inputs, targets)`` batches; ``epochs`` a non-negative int.
        """
        _check_batches(train_data, "Trainer.fit", "train_data")
        if val_data is not None:
            _check_batches(val_data, "Trainer.fit", "val_data")
        _checks.non_negative_int(epochs, "Trainer.fit", "epochs")
        self.stop_training = False
        self._data = {"train": train_data, "val": val_data}
        for callback in self.callbacks:
            callback.set_trainer(self)
        self._call("on_train_begin", {})
        if self._resumed is not None:
            self._apply_resumed_state()
        first = epochs + 1 if self.stop_training else self.epoch + 1
        for epoch in range(first, epochs + 1):
            self.current_epoch = epoch
            self._call("on_epoch_begin", epoch, {})
            logs = self._train_epoch(train_data, epoch, epochs)
            if val_data is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(val_data).items()})
            self._step_epoch_scheduler(logs)
            self.epoch = epoch
            self.history.epochs.append(logs)
            self._deferred = []
            try:
                self._call("on_epoch_end", epoch, logs)
                if self.verbose:
                    self._print(self._summary_line(logs, epochs))
                if self.distributed:
                    self.stop_training = self._any_rank(
                        self.stop_training, "stop at the epoch's end"
                    )
            finally:
                deferred, self._deferred = self._deferred, None
            for path in deferred:  # now every callback's state is that after the epoch
                self._write_checkpoint(path)
            if self.stop_training:
                break
        self._call("on_train_end", {})
        return self.history

    def _train_epoch(self, train_data, epoch, epochs):
        self.model.train()
        sampler = getattr(train_data, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch - 1)  # torch's habit: epochs counted from 0
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        totals, samples = {}, 0
        bar = self._progress_bar(train_data, epoch, epochs)
        start = time.perf_counter()
        for step, batch in enumerate(train_data):
            inputs, targets = _split(batch)
            self.step_in_epoch = step
            self._call("on_batch_begin", step, {})
            logs = self.train_step(inputs, targets)
            count = len(inputs)
            samples += count
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value * count
            self.global_step += 1
            if self.record_steps:
                self.history.steps.append({"epoch": epoch, "step": self.global_step, **logs})
            if self.scheduler is not None and self.scheduler_interval == "step":
                self.scheduler.step()
            self._call("on_batch_end", step, logs)
            if bar is not None:
                # no forced redraw: tqdm redraws at most every 0.1 s on its own
                bar.set_postfix({k: f"{v / samples:.4f}" for k, v in totals.items()}, refresh=False)
                bar.update(1)
            if self.distributed:
                self.stop_training = self._any_rank(self.stop_training, "stop after a step")
            if self.stop_training:
                break
        elapsed = time.perf_counter() - start
        if bar is not None:
            bar.close()
        samples, totals = self._reduce_totals(samples, totals, "the epoch's figures")
        if samples == 0:
            raise ValueError(f"Trainer.fit: the training data gave no batches in epoch {epoch}")
        logs = {"epoch": epoch}
        logs.update({key: total / samples for key, total in totals.items()})
        logs["lr"] = lrs[0] if len(lrs) == 1 else lrs
        logs["time"] = elapsed
        logs["samples_per_second"] = samples / elapsed if elapsed > 0 else math.inf
        return logs

    def _reduce_totals(self, samples, totals, what):
        """``(samples, totals)`` summed over the ranks (as they are in one process)."""
        if not self.distributed:
            return samples, totals
        # the same keys in the same order on every rank, even one that had no batch
        keys = ["loss"] + [name for name, _ in self.metrics]
        every = self._sum_over_ranks([samples] + [totals.get(k, 0.0) for k in keys], what)
        return int(every[0]), dict(zip(keys, every[1:].tolist()))

    def _step_epoch_scheduler(self, logs):
        if self.scheduler is None or self.scheduler_interval != "epoch":
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            if self.scheduler_monitor not in logs:
                raise KeyError(
                    f"Trainer: ReduceLROnPlateau monitors {self.scheduler_monitor!r}, which is not "
                    f"in the epoch's logs {sorted(logs)}"
                )
            self.scheduler.step(logs[self.scheduler_monitor])
        else:
            self.scheduler.step()

    def _progress_bar(self, data, epoch, epochs):
        if self.verbose != 1 or not self.is_main_process:
            return None
        from tqdm.auto import tqdm

        total = len(data) if hasattr(data, "__len__") else None
        return tqdm(
            total=total,
            desc=f"epoch {epoch}/{epochs}",
            unit="batch",
            leave=False,
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def _print(self, line):
        if not self.is_main_process:
            return
        if self.verbose == 1:
            from tqdm.auto import tqdm

            tqdm.write(line)
        else:
            print(line, flush=True)

    @staticmethod
    def _summary_line(logs, epochs):
        parts = [f"epoch {logs['epoch']}/{epochs}"]
        for key, value in logs.items():
            if key in ("epoch", "lr", "time", "samples_per_second"):
                continue
            parts.append(f"{key} {value:.4f}")
        lr = logs["lr"]
        parts.append("lr " + (f"{lr:.4g}" if not isinstance(lr, list) else str(lr)))
        parts.append(f"{logs['time']:.1f}s")
        parts.append(f"{logs['samples_per_second']:,.0f} samples/s")
        return " - ".join(parts)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, data):
        """The mean loss and metrics over ``data``, in eval mode under no_grad.

        The model's mode is restored afterwards. Returns ``{"loss": ..., metric: ...}``.
        In distributed training every rank must call it with the same ``data``:
        batch i is evaluated by rank i mod world size (a DataLoader loads only its
        rank's batches), rank 0's buffers are used (broadcast first, when the DDP
        model broadcasts buffers), and the result, equal on every rank, is that of
        one process evaluating every batch.
        """
        _check_batches(data, "Trainer.evaluate", "data")
        totals, samples = {}, 0
        network = self._network()
        if self.distributed and self.model.broadcast_buffers:
            self.model._sync_buffers()
        with evaluating(network):
            for batch in self._shard(data):
                inputs, targets = _split(batch)
                inputs, targets = _tensor(inputs), _tensor(targets)
                outputs = network(inputs)
                count = len(inputs)
                samples += count
                values = {"loss": float(self.loss(outputs, targets).item())}
                for name, fn in self.metrics:
                    values[name] = fn(outputs.numpy(), targets.numpy())
                for key, value in values.items():
                    totals[key] = totals.get(key, 0.0) + value * count
        samples, totals = self._reduce_totals(samples, totals, "evaluation")
        if samples == 0:
            raise ValueError("Trainer.evaluate: the data gave no batches")
        return {key: total / samples for key, total in totals.items()}

    def _shard(self, data):
        """This rank's batches of ``data``: batch i for rank i mod world size."""
        if not self.distributed:
            return data
        rank, world = _distributed.get_rank(), self.model._world
        if isinstance(data, DataLoader) and data.sampler is None and not data.shuffle:
            # the same batches, but only this rank's are loaded
            size = data.batch_size
            indices = [
                index
                for batch in range(rank, len(data), world)
                for index in range(batch * size, min((batch + 1) * size, len(data.dataset)))
            ]
            return DataLoader(
                data.dataset,
                batch_size=size,
                transform=data.transform,
                seed=data.seed,
                sampler=indices,
            )
        return (batch for i, batch in enumerate(data) if i % world == rank)

    def predict(self, inputs, batch_size=256):
        """The model's outputs for ``inputs`` (an array or Tensor, or an iterable of batches).

        Runs in eval mode under no_grad in batches of ``batch_size``, restores the
        model's mode, and returns one numpy array. Batches may be ``(inputs,
        targets)`` pairs, whose targets are ignored. An empty array (0, *) runs the
        model on the empty batch, so the result has the model's output shape (0, *).
        """
        batch_size = _checks.positive_int(batch_size, "Trainer.predict", "batch_size")
        if isinstance(inputs, (np.ndarray, Tensor)):
            array = _array(inputs)
            if array.ndim == 0:
                raise ValueError("Trainer.predict: expected a batch of inputs (N, *), got a scalar")
            starts = range(0, len(array), batch_size) if len(array) else [0]
            batches = (array[i : i + batch_size] for i in starts)
        else:
            _check_batches(inputs, "Trainer.predict", "inputs")
            batches = (b[0] if isinstance(b, (tuple, list)) else b for b in inputs)
        network = self._network()
        with evaluating(network):
            outputs = [network(_tensor(batch)).numpy() for batch in batches]
        return np.concatenate(outputs) if outputs else np.empty((0,))

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path):
        """Write everything that steers the rest of training to ``path``; returns ``path``.

        That is the model, optimizer, scheduler, epoch, step, the calling thread's
        RNG state, the history, every callback's ``state_dict()``, the generator
        state of the current ``fit``'s seeded DataLoaders (training and
        validation), and whether a callback stopped training. Called from a
        callback's ``on_epoch_end`` (as :class:`ModelCheckpoint` does), the file
        is written once every callback has seen the epoch's end, so it holds
        their state after the epoch. The write is atomic (``minidl.save``): a
        crash leaves the previous file intact. In distributed training only rank
        0 writes (the model's state dict has no ``module.`` prefix, so the file
        resumes in one process too).
        """
        if not self.is_main_process:
            return path
        if self._deferred is not None:
            self._deferred.append(path)
            return path
        self._write_checkpoint(path)
        return path

    def _write_checkpoint(self, path):
        state = {
            "format": CHECKPOINT_FORMAT,
            "model": dict(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "rng": _random.get_rng_state(),
            "history": self.history.to_dict(),
            "callbacks": [
                {"type": type(c).__name__, "state": c.state_dict()} for c in self.callbacks
            ],
            "data": {role: _loader_state(data) for role, data in self._data.items()},
            "stop_training": bool(self.stop_training),
        }
        save(state, path)
        self.last_checkpoint = path

    def resume(self, path):
        """Restore everything :meth:`save_checkpoint` wrote; ``fit`` then continues from there.

        Returns self. Each callback gets the saved state of the callback of its
        class at the same position among those of its class (one the writing run
        did not have starts fresh; saved states without a callback are left out);
        the next ``fit`` restores their state after their ``on_train_begin``,
        restores its seeded DataLoaders' generators, and trains no further epoch
        if a callback had stopped training. A file that is not a minidl
        checkpoint, is truncated or altered, or does not fit this trainer raises
        ValueError and leaves the model, optimizer, scheduler, callbacks and RNG as
        they were.
        """
        state = load(path)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"Trainer.resume: {path} is not a minidl training checkpoint")
        _check_checkpoint(state, self, path)
        callback_states = _callback_states(self, state["callbacks"], f"Trainer.resume: {path}")
        undo = self._state_for_undo()
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            for callback, saved in zip(self.callbacks, callback_states):
                if saved is not None:
                    callback.load_state_dict(saved)
            _random.set_rng_state(state["rng"])
            self.epoch = int(state["epoch"])
            self.global_step = int(state["global_step"])
            self.history = History.from_dict(state["history"])
        except Exception as error:
            self._restore_from_undo(undo)
            if isinstance(error, (KeyError, TypeError, AttributeError)):
                raise ValueError(
                    f"Trainer.resume: {path} does not fit this trainer ({error!r})"
                ) from error
            raise
        self._resumed = {
            "callbacks": callback_states,
            "data": state["data"],
            "stop_training": bool(state["stop_training"]),
        }
        return self

    def _state_for_undo(self):
        """Copies of everything resume assigns, for putting back when it fails partway."""
        return {
            "model": {k: v.copy() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "callbacks": [c.state_dict() for c in self.callbacks],
            "rng": _random.get_rng_state(),
            "counters": (self.epoch, self.global_step, self.history),
        }

    def _restore_from_undo(self, undo):
        self.model.load_state_dict(undo["model"])
        self.optimizer.load_state_dict(undo["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(undo["scheduler"])
        for callback, saved in zip(self.callbacks, undo["callbacks"]):
            callback.load_state_dict(saved)
        _random.set_rng_state(undo["rng"])
        self.epoch, self.global_step, self.history = undo["counters"]

    def _apply_resumed_state(self):
        """In ``fit``, after ``on_train_begin``: the callbacks' and loaders' saved state."""
        resumed = self._resumed
        for callback, saved in zip(self.callbacks, resumed["callbacks"]):
            if saved is not None:
                callback.load_state_dict(saved)
        for role, saved in resumed["data"].items():
            data = self._data.get(role)
            if saved is None:
                if isinstance(data, DataLoader) and data.seed is not None:
                    raise ValueError(
                        f"Trainer.fit: the {role} DataLoader has a seed, but the resumed "
                        "checkpoint's had none; give it the seed of the run that wrote it"
                    )
                continue
            if not hasattr(data, "load_state_dict"):
                raise ValueError(
                    f"Trainer.fit: the resumed checkpoint holds the generator of a seeded {role} "
                    f"DataLoader, but the {role} data is {type(data).__name__}; pass the same "
                    "seeded DataLoader"
                )
            try:
                data.load_state_dict(saved)
            except ValueError as error:
                raise ValueError(
                    f"Trainer.fit: the {role} data of the resumed run: {error}"
                ) from None
        self.stop_training = resumed["stop_training"]
        self._resumed = None


def _loader_state(data):
    """A data source's saved state: a DataLoader's ``state_dict()``, else None."""
    return data.state_dict() if isinstance(data, DataLoader) else None


def _callback_states(trainer, saved, where):
    """The saved state of each of the trainer's callbacks, matched by class and order: the
    k-th EarlyStopping gets the state of the k-th EarlyStopping that was saved. A callback
    the writing run did not have gets None (it starts fresh); saved states without a
    callback of theirs are left out (a trainer resumed to evaluate need not have them)."""
    if not isinstance(saved, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("state"), dict) for entry in saved
    ):
        raise ValueError(f"{where}: malformed callback states {saved!r:.80}")
    by_class = {}
    for entry in saved:
        by_class.setdefault(entry.get("type"), []).append(entry["state"])
    states, seen = [], {}
    for callback in trainer.callbacks:
        name = type(callback).__name__
        index = seen[name] = seen.get(name, -1) + 1
        candidates = by_class.get(name, [])
        states.append(candidates[index] if index < len(candidates) else None)
    return states


def _check_checkpoint(state, trainer, path):
    """Refuse (ValueError) a checkpoint whose parts this trainer could not take, before any
    assignment: missing keys, other callbacks, a scheduler state missing or unwanted,
    malformed generator states."""
    where = f"Trainer.resume: {path}"
    keys = ("model", "optimizer", "scheduler", "epoch", "global_step", "rng", "history")
    keys += ("callbacks", "data", "stop_training")
    missing = [key for key in keys if key not in state]
    if missing:
        raise ValueError(f"{where} lacks {missing} (written by an older minidl, or altered)")
    if trainer.scheduler is not None and state["scheduler"] is None:
        raise ValueError(f"{where} holds no scheduler state")
    _callback_states(trainer, state["callbacks"], where)
    _random._check_state(state["rng"], where)
    data = state["data"]
    if not isinstance(data, dict) or set(data) - {"train", "val"}:
        raise ValueError(f"{where}: malformed loader states {data!r:.80}")
    for saved_loader in data.values():
        if saved_loader is not None:
            generator = saved_loader.get("generator") if isinstance(saved_loader, dict) else 0
            if generator is not None:
                _random._check_state(generator, where)


__all__ = [
    "ActivationStats",
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "History",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "NonFiniteLossError",
    "PeriodicEvaluation",
    "TerminateOnNaN",
    "Trainer",
    "accuracy",
]
