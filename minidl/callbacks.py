"""Callbacks: code the :class:`~minidl.train.Trainer` runs at fixed points of training.

Subclass :class:`Callback` and override any of its hooks. Each callback sees
the trainer as ``self.trainer`` (its model, optimizer, history, ``epoch`` and
``global_step``) and may stop training by setting
``self.trainer.stop_training = True``. The hooks, in the order they run::

    on_train_begin(logs)
      on_epoch_begin(epoch, logs)            # epochs count from 1
        on_batch_begin(step, logs)           # steps count from 0 within an epoch
        on_batch_loss(step, loss)            # after the forward pass, before backward
        on_batch_end(step, logs)             # after the optimizer step
      on_epoch_end(epoch, logs)              # logs: loss, metrics, val_*, lr, time, ...
    on_train_end(logs)
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np

from . import _checks
from .io import atomic_write
from .nn.module import Module


class Callback:
    """Base class of callbacks; every hook does nothing unless overridden.

    >>> class PrintLoss(minidl.train.Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(f"epoch {epoch}: {logs['loss']:.3f}")
    """

    trainer: Any = None
    # the attributes state_dict saves: what steers the rest of training
    _state_attributes: tuple[str, ...] = ()

    def state_dict(self):
        """The callback's state as plain values and arrays (what ``Trainer.save_checkpoint`` saves).

        A subclass lists its stateful attributes in ``_state_attributes``, or overrides this
        and :meth:`load_state_dict`; the base class has no state.

        >>> stop = minidl.train.EarlyStopping(patience=2)
        >>> stop.state_dict()["wait"]
        0
        """
        return {name: _copied(getattr(self, name)) for name in self._state_attributes}

    def load_state_dict(self, state):
        """Restore a state from :meth:`state_dict` (raises ValueError if its keys differ)."""
        owner, expected = type(self).__name__, sorted(self._state_attributes)
        if not isinstance(state, dict) or sorted(state) != expected:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{owner}.load_state_dict: expected the keys {expected}, got {keys}")
        for name in self._state_attributes:
            setattr(self, name, _copied(state[name]))

    def set_trainer(self, trainer):
        """Called by the Trainer before training starts."""
        self.trainer = trainer

    def on_train_begin(self, logs=None):
        """Before the first epoch."""

    def on_train_end(self, logs=None):
        """After the last epoch (also after an early stop)."""

    def on_epoch_begin(self, epoch, logs=None):
        """Before the first batch of ``epoch`` (counted from 1)."""

    def on_epoch_end(self, epoch, logs=None):
        """After ``epoch`` and its validation; ``logs`` holds its figures."""

    def on_batch_begin(self, step, logs=None):
        """Before the forward pass of batch ``step`` (counted from 0 in each epoch)."""

    def on_batch_loss(self, step, loss):
        """After the forward pass, with the loss as a float, before backward and the update."""

    def on_batch_end(self, step, logs=None):
        """After the optimizer step of batch ``step``; ``logs`` has its loss and metrics."""


def _copied(value):
    """A copy of a state value whose containers and arrays a later step cannot change."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copied(item) for item in value]
    return value


def _resolve_mode(mode, monitor, where):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{where}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
    return mode


def _monitored(logs, monitor, where):
    if monitor not in logs:
        raise KeyError(
            f"{where}: the monitored value {monitor!r} is not in the epoch's logs, which have "
            f"{sorted(logs)} (monitor 'val_...' values need val_data)"
        )
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the model gets back the weights (and buffers) of
    its best epoch when training ends. ``mode`` 'auto' minimizes losses and
    maximizes accuracies.

    >>> stop = minidl.train.EarlyStopping(monitor="val_loss", patience=3)
    """

    def __init__(
        self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False
    ):
        if not isinstance(monitor, str):
            raise TypeError(f"EarlyStopping: monitor must be a metric name, got {monitor!r}")
        self.monitor = monitor
        self.patience = _checks.non_negative_int(patience, "EarlyStopping", "patience")
        self.min_delta = abs(_checks.real(min_delta, "EarlyStopping", "min_delta"))
        self.mode = _resolve_mode(mode, monitor, "EarlyStopping")
        self.restore_best_weights = bool(restore_best_weights)
        self.on_train_begin()

    _state_attributes = ("best", "best_epoch", "best_state", "wait", "stopped_epoch")

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_state = None
        self.wait = 0
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if _checks.improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = {k: v.copy() for k, v in self.trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def on_train_end(self, logs=None):
        restore = self.restore_best_weights and self.best_state is not None
        if self.stopped_epoch is not None:
            said = f"Epoch {self.stopped_epoch}: early stopping"
            if restore:
                said += f"; restoring the weights of epoch {self.best_epoch}"
            else:
                said += (
                    f" ({self.monitor} has not improved for {self.wait} "
                    f"epoch{'' if self.wait == 1 else 's'}; best "
                    f"{self.best:.4g} at epoch {self.best_epoch})"
                )
            say = getattr(self.trainer, "say", None)
            if say is not None:
                say(said)
        if restore:
            self.trainer.model.load_state_dict(self.best_state)


class ModelCheckpoint(Callback):
    """Save a full training checkpoint (``Trainer.save_checkpoint``) after epochs.

    ``path`` may hold format fields filled from the epoch and its logs, e.g.
    ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``. With ``save_best_only`` a file is
    written only when ``monitor`` improves. Writes are atomic, and happen once
    every callback has seen the epoch's end, so the file holds every callback's
    state after the epoch (its own best value included: a resumed run does not
    overwrite the best file with a worse model).

    >>> checkpoint = minidl.train.ModelCheckpoint("best.npz", save_best_only=True)
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        self.path = str(path)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.mode = _resolve_mode(mode, monitor, "ModelCheckpoint")
        self.best = math.inf if self.mode == "min" else -math.inf
        self.saved = []

    _state_attributes = ("best", "saved")

    def on_epoch_end(self, epoch, logs=None):
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            better = _checks.improved(value, self.best, self.mode)
            if not better:
                return
            self.best = value
        path = self.path.format(**{**logs, "epoch": epoch})
        self.trainer.save_checkpoint(path)
        self.saved.append(path)


class CSVLogger(Callback):
    """Write one CSV row per epoch (its logs) to ``path``, rewriting the file atomically.

    With ``append`` the rows of an earlier run are kept.

    >>> logger = minidl.train.CSVLogger("training.csv")
    """

    def __init__(self, path, separator=",", append=False):
        path = _checks.file_path(path, "CSVLogger")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character, got {separator!r}")
        self.path = path
        self.separator = separator
        self.append = bool(append)
        self.rows = []

    _state_attributes = ("rows",)

    def on_train_begin(self, logs=None):
        self.rows = []
        if self.append:
            try:
                with open(self.path, newline="") as handle:
                    self.rows = list(csv.DictReader(handle, delimiter=self.separator))
            except FileNotFoundError:
                pass

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({key: logs[key] for key in logs})
        if not getattr(self.trainer, "is_main_process", True):
            return  # distributed training: rank 0 writes
        fields = []
        for row in self.rows:
            fields.extend(key for key in row if key not in fields)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields, delimiter=self.separator, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        with atomic_write(self.path, "w") as handle:
            handle.write(text.getvalue())


class LearningRateMonitor(Callback):
    """Record the learning rate of every parameter group, each epoch or each step.

    ``records`` is a list of ``{"epoch", "step", "lr"}`` dicts (``lr`` a list, one
    per group); with ``interval="step"`` there is one per batch, which shows
    per-batch schedules such as OneCycleLR.

    >>> monitor = minidl.train.LearningRateMonitor(interval="step")
    """

    def __init__(self, interval="epoch"):
        if interval not in ("epoch", "step"):
            raise ValueError(
                f"LearningRateMonitor: interval must be 'epoch' or 'step', got {interval!r}"
            )
        self.interval = interval
        self.records = []

    _state_attributes = ("records",)

    def _record(self, epoch, step):
        lrs = [group["lr"] for group in self.trainer.optimizer.param_groups]
        self.records.append({"epoch": epoch, "step": step, "lr": lrs})

    def on_batch_begin(self, step, logs=None):
        if self.interval == "step":
            self._record(self.trainer.current_epoch, self.trainer.global_step)

    def on_epoch_begin(self, epoch, logs=None):
        if self.interval == "epoch":
            self._record(epoch, self.trainer.global_step)


class NonFiniteLossError(RuntimeError):
    """Raised by :class:`TerminateOnNaN` when the loss is NaN or infinite."""


class TerminateOnNaN(Callback):
    """Stop training with :class:`NonFiniteLossError` when the loss is NaN or infinite.

    The loss of every batch is checked after the forward pass, before backward
    and the update (a float comparison: nothing is copied), and the weights once
    at the end of each epoch. The error names the epoch and the step, and the
    state the model is left in:

    - a non-finite loss stops training before that step's backward and update,
      so the parameters are those that step's forward pass used: those after the
      previous step. The forward pass may have moved buffers (BatchNorm's running
      statistics): those are put back, from a copy of the buffers taken before
      each step (buffers are small: per-channel statistics and counters; the
      parameters are never copied). So no step is ever half-applied. If an
      earlier update had already made a weight non-finite (while its own loss
      was finite), the weights are non-finite and the message says so.
    - an update that makes a weight non-finite is caught by the next batch's
      loss, or, after the epoch's last batch, by the check at the epoch's end
      (before the epoch's checkpoints are written, so no checkpoint holds it).

    With ``restore_checkpoint=True`` the trainer is then restored
    (:meth:`Trainer.resume <minidl.train.Trainer.resume>`) from the last
    checkpoint it wrote (``ModelCheckpoint`` or ``save_checkpoint``): the
    model, optimizer, schedule, callbacks, RNG, epoch and history of that
    epoch's end, so a following ``fit`` (with a lower learning rate, say)
    continues from there. Without a checkpoint yet, the weights stay as
    described above and the message says so. Keras' TerminateOnNaN stops the
    same way, without raising; PyTorch has no equivalent. The Trainer adds one
    (stopping) unless ``terminate_on_nan=False`` or one is given.

    >>> guard = minidl.train.TerminateOnNaN(restore_checkpoint=True)
    """

    def __init__(self, restore_checkpoint: bool = False) -> None:
        if not isinstance(restore_checkpoint, (bool, np.bool_)):
            raise TypeError(
                f"TerminateOnNaN: restore_checkpoint must be True or False, got "
                f"{restore_checkpoint!r}"
            )
        self.restore_checkpoint = bool(restore_checkpoint)

    def on_train_begin(self, logs=None):
        self._buffers = None  # copies of the buffers before the running step
        if self.restore_checkpoint and getattr(self.trainer, "distributed", False):
            raise ValueError(
                "TerminateOnNaN: restore_checkpoint is not supported in distributed training "
                "(only rank 0 writes checkpoints); use restore_checkpoint=False and resume"
            )

    def on_batch_begin(self, step, logs=None):
        if self._buffers is None:  # the model's buffers, found once per fit
            self._buffers = [(b, b.numpy().copy()) for b in self.trainer.model.buffers()]
            return
        for buffer, saved in self._buffers:
            np.copyto(saved, buffer.numpy())

    def _put_back_buffers(self):
        for buffer, saved in self._buffers or ():
            np.copyto(buffer.numpy(), saved)

    def _non_finite_parameter(self):
        for name, parameter in self.trainer.model.named_parameters():
            if not np.all(np.isfinite(parameter.numpy())):
                return name
        return None

    def _stop(self, what, where):
        trainer = self.trainer
        broken = self._non_finite_parameter()
        if self.restore_checkpoint and trainer.last_checkpoint is not None:
            path = trainer.last_checkpoint
            trainer.resume(path)
            state = (
                f"the trainer was restored from {path} (the end of epoch {trainer.epoch}); "
                "fit again to continue from there"
            )
        else:
            if broken is not None:
                state = f"the model's weights are left non-finite ({broken}, at least)"
            else:
                state = "the model keeps the weights of the last finite step"
            if self.restore_checkpoint:
                state += " (no checkpoint had been written to restore)"
        raise NonFiniteLossError(
            f"{what} {where} (global step {trainer.global_step}); training stopped and {state}. "
            "Lower the learning rate, clip gradients (Trainer(grad_clip_norm=...)) or check "
            "the inputs."
        )

    def on_batch_loss(self, step, loss):
        if not math.isfinite(loss):
            self._put_back_buffers()  # the failing forward pass may have moved them
            trainer = self.trainer
            self._stop(f"the loss is {loss}", f"at epoch {trainer.current_epoch}, step {step}")

    def on_epoch_end(self, epoch, logs=None):
        name = self._non_finite_parameter()
        if name is not None:
            self._stop(
                f"the last update made parameter {name} non-finite",
                f"at the end of epoch {epoch}",
            )


class ActivationStats(Callback):
    """Record percentiles of the input to one layer over training (Ioffe & Szegedy, Figure 1(b, c)).

    A forward hook on ``module`` (a layer of the trained model, e.g. a Sigmoid)
    sees its input in training-mode forward passes; every ``every`` steps the
    ``percentiles`` (default 15th, 50th and 85th) of that input over the batch are
    recorded, for one ``unit`` (a feature or channel index on axis 1) or, with
    ``unit=None``, over all of its values. ``records`` is a list of ``{"step",
    "epoch", "percentiles"}``; :meth:`as_arrays` gives ``(steps, values)``.

    >>> sigmoid = minidl.nn.Sigmoid()
    >>> stats = minidl.train.ActivationStats(sigmoid, every=1)
    """

    def __init__(self, module, percentiles=(15, 50, 85), every=50, unit=0):
        if not isinstance(module, Module):
            raise TypeError(f"ActivationStats: expected the module to watch, got {module!r}")
        try:
            self.percentiles = tuple(
                _checks.real(p, "ActivationStats", "a percentile", 0.0, 100.0) for p in percentiles
            )
        except TypeError:
            raise TypeError(
                f"ActivationStats: percentiles must be numbers in [0, 100], got {percentiles!r}"
            ) from None
        self.module = module
        self.every = _checks.positive_int(every, "ActivationStats", "every")
        if unit is not None:
            unit = _checks.non_negative_int(unit, "ActivationStats", "unit")
        self.unit = unit
        self.records = []
        self._handle = None
        self._pending = False

    _state_attributes = ("records",)

    def _hook(self, module, inputs, output):
        if not self._pending or not module.training:
            return None
        values = inputs[0].numpy()
        if self.unit is not None:
            values = values[:, self.unit]
        self.records.append(
            {
                "step": self.trainer.global_step,
                "epoch": self.trainer.current_epoch,
                "percentiles": np.percentile(values, self.percentiles).tolist(),
            }
        )
        self._pending = False
        return None

    def on_train_begin(self, logs=None):
        if self._handle is None:
            self._handle = self.module.register_forward_hook(self._hook)

    def on_batch_begin(self, step, logs=None):
        self._pending = self.trainer.global_step % self.every == 0

    def on_train_end(self, logs=None):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def as_arrays(self):
        """``(steps, values)``: (R,) steps and (R, P) percentiles, one row per record."""
        steps = np.array([r["step"] for r in self.records], dtype=np.int64)
        values = np.array([r["percentiles"] for r in self.records], dtype=np.float64)
        return steps, values.reshape(len(self.records), len(self.percentiles))


class PeriodicEvaluation(Callback):
    """Evaluate on ``data`` every ``every`` training steps (and after the last one).

    ``records`` is a list of ``{"step", "epoch", "loss", <metrics>}`` dicts from
    ``Trainer.evaluate`` (evaluation mode, no_grad, the mode restored), so test
    accuracy can be followed against training steps; :meth:`steps_to` finds the
    first step at which a metric reached a threshold.

    >>> tracker = minidl.train.PeriodicEvaluation([(np.zeros((2, 3)), np.zeros(2, int))], every=100)
    >>> tracker.steps_to("accuracy", 0.97) is None
    True
    """

    def __init__(self, data, every=100):
        if not hasattr(data, "__iter__"):
            raise TypeError(
                f"PeriodicEvaluation: data must be batches to evaluate (a DataLoader or a "
                f"list of (inputs, targets)), got {type(data).__name__}"
            )
        self.data = data
        self.every = _checks.positive_int(every, "PeriodicEvaluation", "every")
        self.records = []

    _state_attributes = ("records",)

    def _evaluate(self):
        trainer = self.trainer
        if self.records and self.records[-1]["step"] == trainer.global_step:
            return
        results = trainer.evaluate(self.data, verbose=0)
        self.records.append(
            {"step": trainer.global_step, "epoch": trainer.current_epoch, **results}
        )

    def on_batch_end(self, step, logs=None):
        if self.trainer.global_step % self.every == 0:
            self._evaluate()

    def on_train_end(self, logs=None):
        self._evaluate()

    def steps_to(self, metric, threshold, mode="max"):
        """The first recorded step at which ``metric`` reached ``threshold``, or None."""
        for record in self.records:
            value = record[metric]
            if (value >= threshold) if mode == "max" else (value <= threshold):
                return record["step"]
        return None


__all__ = [
    "ActivationStats",
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "NonFiniteLossError",
    "PeriodicEvaluation",
    "TerminateOnNaN",
]
