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

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
import warnings
from typing import Any, Callable, Iterable, Sequence, Union

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
from .io import atomic_write, load, save
from .nn.losses import CrossEntropyLoss, MSELoss
from .nn.module import evaluating
from .nn.parallel import DistributedDataParallel
from .nn.utils import clip_grad_norm_
from .optim.lr_scheduler import ReduceLROnPlateau
from .tensor import Tensor

CHECKPOINT_FORMAT = "minidl-checkpoint"


def accuracy(outputs: Any, targets: Any) -> float:
    """Fraction of rows whose largest output is at the target class: (N, K) and (N,) arrays.

    Targets (N, K), one-hot or class probabilities, count their largest entry as the
    class (Keras' ``categorical_accuracy``).

    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    outputs, targets = _class_scores(outputs, targets, "accuracy")
    return float(np.mean(np.argmax(outputs, axis=1) == targets))


def top_k_accuracy(outputs: Any, targets: Any, k: int = 5) -> float:
    """Fraction of rows whose target class is among the ``k`` largest outputs: (N, K), (N,).

    Keras' ``sparse_top_k_categorical_accuracy`` (k=5 by default, as there): a
    target tied with the k-th largest output counts as found, and with ``k >= K``
    every row does. One-hot targets (N, K) count their largest entry as the class.

    >>> top_k_accuracy(np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]), np.array([1, 0]), k=2)
    0.5
    """
    k = _checks.positive_int(k, "top_k_accuracy", "k")
    outputs, targets = _class_scores(outputs, targets, "top_k_accuracy")
    if len(targets) == 0:
        return math.nan
    if targets.dtype.kind not in "iu" or np.any(targets < 0) or np.any(targets >= outputs.shape[1]):
        raise ValueError(
            f"top_k_accuracy: expected targets as class indices in [0, {outputs.shape[1]}), "
            f"got {targets[:8]!r}"
        )
    target_scores = outputs[np.arange(len(targets)), targets]
    above = np.sum(outputs > target_scores[:, None], axis=1)
    return float(np.mean(above < k))


def _class_scores(outputs, targets, where):
    outputs, targets = np.asarray(outputs), np.asarray(targets)
    if outputs.ndim == 2 and targets.shape == outputs.shape:
        # one-hot or class-probability targets (Keras' categorical accuracy)
        targets = np.argmax(targets, axis=1)
    if outputs.ndim != 2 or targets.shape != outputs.shape[:1]:
        raise ValueError(
            f"{where}: expected outputs (N, K) and targets (N,), got shapes {outputs.shape} "
            f"and {targets.shape}"
        )
    return outputs, targets


# name -> (the name in the logs, the function); Keras' names are accepted too
_METRICS = {
    "accuracy": ("accuracy", accuracy),
    "acc": ("accuracy", accuracy),
    "sparse_categorical_accuracy": ("accuracy", accuracy),
    "top_k_accuracy": ("top_k_accuracy", top_k_accuracy),
    "sparse_top_k_categorical_accuracy": ("top_k_accuracy", top_k_accuracy),
}

# name -> the loss module it builds; the classification losses take logits (see docs)
_LOSSES = {
    "cross_entropy": CrossEntropyLoss,
    "sparse_categorical_crossentropy": CrossEntropyLoss,
    "mse": MSELoss,
    "mean_squared_error": MSELoss,
}


def _metric(spec):
    if callable(spec):
        return getattr(spec, "__name__", "metric"), spec
    if isinstance(spec, str) and spec in _METRICS:
        return _METRICS[spec]
    raise ValueError(
        f"Trainer: unknown metric {spec!r}; known names: {', '.join(sorted(_METRICS))}, "
        "or pass a function (outputs, targets) -> float"
    )


def _loss(spec):
    if isinstance(spec, str):
        if spec not in _LOSSES:
            raise ValueError(
                f"Trainer: unknown loss {spec!r}; known names: {', '.join(sorted(_LOSSES))}, "
                "or pass a loss module or function (outputs, targets) -> scalar Tensor"
            )
        return _LOSSES[spec]()
    if not callable(spec):
        raise TypeError(f"Trainer: expected a loss function, got {type(spec).__name__}")
    return spec


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

    ``epochs[i]`` holds ``epoch`` (counted from 1), ``loss``, the metrics, ``val_*``
    values, ``lr``, ``time`` and ``samples_per_second``; ``history[name]`` is the
    list of one value across epochs (Keras' ``History.history``); ``epoch`` is the
    list of the epochs' Keras indices (counted from 0, as Keras' ``History.epoch``);
    ``steps`` holds ``{"epoch", "step", "loss"}`` per batch when the Trainer
    records steps.

    Each ``fit`` call returns a new History that holds that call's epochs only
    (Keras 3's rule), so a History kept from an earlier call does not change;
    ``Trainer.history`` holds every epoch the trainer trained (what checkpoints
    save).

    >>> h = History()
    >>> h.epochs.append({"epoch": 1, "loss": 0.5})
    >>> h.history["loss"], h.epoch
    ([0.5], [0])
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

    @property
    def epoch(self) -> list[int]:
        """Keras' ``History.epoch``: the epochs' indices counted from 0 (epoch 1 is 0)."""
        return [record["epoch"] - 1 for record in self.epochs]

    def to_dict(self):
        """``{"epochs": [...], "steps": [...]}``, plain values only."""
        return {"epochs": [dict(r) for r in self.epochs], "steps": [dict(r) for r in self.steps]}

    @classmethod
    def from_dict(cls, data):
        """The inverse of :meth:`to_dict`."""
        return cls(data.get("epochs"), data.get("steps"))

    def plot(self, path: Any = None, metrics: Sequence[str] | None = None) -> Any:
        """Draw the learning curves: one panel per metric (loss first), train and validation.

        Without ``path`` it returns the matplotlib ``Figure`` (a notebook shows a
        returned figure inline); with ``path`` it writes the figure there
        atomically (PNG, or the format the suffix names: ``.pdf``, ``.svg``) and
        returns ``path``. ``metrics`` picks the panels (default: every recorded
        value but ``epoch``, ``lr``, timings and ``val_*``). Epochs are on integer
        ticks. Needs matplotlib (``pip install "minidl[examples]"``); the figure is
        drawn on its own canvas, without pyplot, so matplotlib's backend (an
        interactive session's included) is left as it is.

        >>> history = History([{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5}])
        >>> figure = history.plot()  # doctest: +SKIP
        >>> history.plot("curves.png")  # doctest: +SKIP
        'curves.png'
        """
        try:
            from matplotlib.figure import Figure
            from matplotlib.ticker import MaxNLocator
        except ImportError:
            raise ImportError(
                "History.plot needs matplotlib, which is not installed; install it with "
                "python -m pip install matplotlib (or the 'examples' extra of minidl)"
            ) from None
        history = self.history
        if metrics is None:
            skip = {"epoch", "lr", "time", "samples_per_second"}
            metrics = [k for k in history if k not in skip and not k.startswith("val_")]
        if not metrics:
            raise ValueError("History.plot: there is nothing to plot (no epoch was recorded)")
        unknown = [name for name in metrics if name not in history]
        if unknown:
            raise ValueError(
                f"History.plot: {unknown} not recorded; the history has {sorted(history)}"
            )
        figure = Figure(figsize=(5 * len(metrics), 3.5))
        axes = figure.subplots(1, len(metrics), squeeze=False)
        for axis, name in zip(axes[0], metrics):
            axis.plot(history["epoch"], history[name], marker="o", label=f"train {name}")
            if f"val_{name}" in history:
                axis.plot(
                    history["epoch"], history[f"val_{name}"], marker="o", label=f"validation {name}"
                )
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.set_xlabel("epoch")
            axis.set_title(name)
            axis.legend()
        figure.tight_layout()
        if path is None:
            return figure
        suffix = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else "png"
        with atomic_write(path, "wb") as handle:
            figure.savefig(handle, format=suffix, dpi=100)
        return path


class _ArrayBatches:
    """``(inputs, targets)`` batches of ``batch_size`` rows cut from arrays, for ``fit(x, y)``.

    With ``shuffle`` each pass draws a new order from minidl's generator when it
    starts (in the calling thread), so runs repeat under ``manual_seed`` and the
    generator state a checkpoint saves at an epoch's end makes a resumed run draw
    the same orders.
    """

    def __init__(self, x, y, batch_size, shuffle):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        count = len(self.x)
        order = _random.generator().permutation(count) if self.shuffle else None
        for start in range(0, count, self.batch_size):
            if order is None:
                rows = slice(start, start + self.batch_size)
            else:
                rows = order[start : start + self.batch_size]
            yield self.x[rows], self.y[rows]


def _is_array(value):
    return isinstance(value, (np.ndarray, Tensor))


def _arrayish(value, where, name):
    """``value`` if it is an array or Tensor; a (nested) list of numbers as a numpy array
    of the dtype ``torch.tensor`` gives it (floats float32, ints int64, bools bool); else
    None (batches, a loader, ...)."""
    if _is_array(value):
        return value
    if not isinstance(value, list) or not value:
        return None
    first = value[0]
    while isinstance(first, list) and first:
        first = first[0]
    if not isinstance(first, (int, float, np.number, np.bool_)):
        return None  # a list of batches, or of arrays
    try:
        array = np.asarray(value)
    except ValueError:
        raise ValueError(
            f"{where}: {name} is a list of lists of different lengths; expected the same "
            "number of values in every sample"
        ) from None
    if array.dtype.kind not in "biuf":
        return None
    # torch.tensor's dtypes: Python floats become float32 (its default dtype)
    return array.astype(np.float32) if array.dtype == np.float64 else array


def _paired_arrays(x, y, where, x_name, y_name):
    """``x`` and ``y`` as numpy arrays with one target per sample, or a clear error."""
    if y is None:
        raise ValueError(
            f"{where}: {x_name} is an array, so {y_name} (the targets, one per sample) is "
            f"needed; got {y_name}=None"
        )
    given = y
    y = _arrayish(y, where, y_name)
    if y is None:
        raise TypeError(
            f"{where}: expected {y_name} as a numpy array, a Tensor or a list of numbers like "
            f"{x_name}, got {type(given).__name__}"
        )
    x, y = _array(x), _array(y)
    for name, array in ((x_name, x), (y_name, y)):
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"{where}: expected {name} of numbers (bool, integer or float), got an array "
                f"of dtype {array.dtype}"
            )
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"{where}: expected {x_name} and {y_name} with a first axis of samples, got shapes "
            f"{x.shape} and {y.shape}"
        )
    if len(x) != len(y):
        raise ValueError(
            f"{where}: {x_name} and {y_name} must hold the same number of samples, got "
            f"{len(x)} inputs (shape {x.shape}) and {len(y)} targets (shape {y.shape})"
        )
    return x, y


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


def _warn_if_probabilities(outputs):
    """Warn when (N, K) outputs look like softmax probabilities given to a loss on logits."""
    if outputs.ndim != 2 or outputs.shape[1] < 2 or len(outputs) == 0:
        return
    sums = outputs.sum(axis=1, dtype=np.float64)
    if np.all(outputs >= 0) and np.allclose(sums, 1.0, atol=1e-4):
        warnings.warn(
            "Trainer: loss 'sparse_categorical_crossentropy' takes logits (Keras' "
            "from_logits=True), but the model's outputs are probabilities (each row sums to "
            "1): remove the model's final Softmax, and apply softmax to predict()'s output",
            UserWarning,
            stacklevel=4,
        )


def _check_verbose(verbose: Any, where: str) -> int:
    """0, 1 or 2; Keras' "auto" is 1 (what Keras picks outside a parameter-server strategy)."""
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if isinstance(verbose, (bool, str)) or verbose not in (0, 1, 2):
        raise ValueError(f"{where}: verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _rates(lr):
    """A learning rate (or one per group) as the epoch lines show it: 1.0e-02."""
    if isinstance(lr, (list, tuple)):
        return "[" + ", ".join(f"{value:.1e}" for value in lr) + "]"
    return f"{lr:.1e}"


def _interactive():
    """Whether a progress bar is readable here: a notebook, or stdout and stderr both
    terminals (a file or a pipe would collect every redraw of the bar)."""
    shell = sys.modules.get("IPython")
    if shell is not None and "ipykernel" in sys.modules:
        ipython = shell.get_ipython()
        if ipython is not None and type(ipython).__name__ == "ZMQInteractiveShell":
            return True
    return all(
        getattr(stream, "isatty", None) is not None and stream.isatty()
        for stream in (sys.stdout, sys.stderr)
    )


def _batches_of(x, y, batch_size, shuffle, where, x_name):
    """Arrays ``x`` and ``y`` as batches, or the iterable of batches ``x`` checked: the
    two forms of data ``fit`` and ``evaluate`` take."""
    arrays = _arrayish(x, where, x_name)
    if arrays is not None:
        x, y = _paired_arrays(arrays, y, where, x_name, "y")
        size = 32 if batch_size is None else _checks.positive_int(batch_size, where, "batch_size")
        return _ArrayBatches(x, y, size, shuffle)
    _check_batches(x, where, x_name)
    if y is not None:
        hint = f" (epochs is a keyword: {where}(data, epochs={y}))" if _checks.is_int(y) else ""
        raise ValueError(
            f"{where}: y is given, but {x_name} is {type(x).__name__}, batches of "
            f"(inputs, targets) that hold the targets already; give arrays x and y, or the "
            f"batches alone{hint}"
        )
    if batch_size is not None:
        raise ValueError(
            f"{where}: batch_size is for arrays x and y; {x_name} is {type(x).__name__}, "
            "which makes its own batches"
        )
    return x


def _the_one(first, second, where, names):
    """The one of two alternative arguments that is given (or None); both is an error."""
    if first is not None and second is not None:
        raise ValueError(f"{where}: give {names[0]} or {names[1]}, not both (they are the same)")
    return first if first is not None else second


def _fit_data(x, y, train_data, batch_size, validation_split, validation_data, val_data, shuffle):
    """The training and validation batches of a ``fit`` call, every argument checked."""
    where = "Trainer.fit"
    data = _the_one(x, train_data, where, ("x", "train_data"))
    validation = _the_one(validation_data, val_data, where, ("validation_data", "val_data"))
    if data is None:
        raise TypeError(
            f"{where}: expected training data: arrays x and y, or a DataLoader or iterable of "
            "(inputs, targets) batches; got none"
        )
    if not isinstance(shuffle, (bool, np.bool_)):
        hint = " (Keras' 'batch', for HDF5 files, is not supported)" if shuffle == "batch" else ""
        raise TypeError(f"{where}: shuffle must be True or False, got {shuffle!r}{hint}")
    split = _checks.real(validation_split, where, "validation_split", 0.0, 1.0, high_open=True)
    if split > 0 and _arrayish(data, where, "x") is None:
        raise ValueError(
            f"{where}: validation_split needs arrays x and y (it keeps their last samples for "
            f"validation); the data is {type(data).__name__}: give validation_data instead"
        )
    if split > 0 and validation is not None:
        raise ValueError(
            f"{where}: give validation_split or validation_data, not both "
            "(Keras would silently ignore validation_split)"
        )
    train = _batches_of(data, y, batch_size, bool(shuffle), where, "x")
    if isinstance(train, _ArrayBatches) and len(train.x) == 0:
        raise ValueError(f"{where}: x holds no samples (shape {train.x.shape}); nothing to train")
    if split > 0:
        count = len(train.x)
        cut = math.floor(count * (1.0 - split))
        if cut in (0, count):
            raise ValueError(
                f"{where}: validation_split={validation_split} of {count} samples leaves "
                f"{count - cut} for validation and {cut} for training; both need at least one"
            )
        full = train
        train = _ArrayBatches(full.x[:cut], full.y[:cut], full.batch_size, full.shuffle)
        return train, _ArrayBatches(full.x[cut:], full.y[cut:], full.batch_size, False)
    if validation is None:
        return train, None
    if isinstance(validation, list) and validation and all(map(_is_array, validation)):
        # never batches (each batch is a pair): Keras' (x_val, y_val) written as a list
        if len(validation) != 2:
            raise ValueError(
                f"{where}: expected validation_data as (x_val, y_val) or batches of (inputs, "
                f"targets), got a list of {len(validation)} arrays"
            )
        validation = tuple(validation)
    x_val = None
    if isinstance(validation, tuple) and validation:
        x_val = _arrayish(validation[0], where, "x_val")
    if x_val is not None:
        if len(validation) != 2:
            raise ValueError(
                f"{where}: expected validation_data as (x_val, y_val), got a tuple of "
                f"{len(validation)} (sample weights are not supported)"
            )
        x_val, y_val = _paired_arrays(x_val, validation[1], where, "validation_data x_val", "y_val")
        if isinstance(train, _ArrayBatches):
            for name, val, fit in (("x_val", x_val, train.x), ("y_val", y_val, train.y)):
                if val.shape[1:] != fit.shape[1:]:
                    raise ValueError(
                        f"{where}: validation_data's {name} has samples of shape {val.shape[1:]} "
                        f"(array {val.shape}), but the training data's are {fit.shape[1:]} "
                        f"(array {fit.shape})"
                    )
        if len(x_val) == 0:
            raise ValueError(
                f"{where}: validation_data's x_val holds no samples (shape {x_val.shape}); "
                "give validation samples, or no validation_data"
            )
        size = train.batch_size if isinstance(train, _ArrayBatches) else 32
        return train, _ArrayBatches(x_val, y_val, size, False)
    _check_batches(validation, where, "validation_data")
    return train, validation


class Trainer:
    """Fit, evaluate and predict with a model, an optimizer and a loss.

    - ``loss``: a loss module or function ``(outputs, targets) -> scalar Tensor``, or
      a name: "cross_entropy" or "sparse_categorical_crossentropy" (CrossEntropyLoss:
      logits and class indices), "mse" or "mean_squared_error" (MSELoss).
    - ``metrics``: names ("accuracy", "top_k_accuracy" with k=5; Keras' names
      "sparse_categorical_accuracy" and "sparse_top_k_categorical_accuracy" too,
      logged as "accuracy" and "top_k_accuracy") or functions
      ``f(outputs, targets) -> float`` on numpy arrays.
    - ``scheduler``: a learning-rate schedule stepped each epoch
      (``scheduler_interval="epoch"``) or each batch (``"step"``, for OneCycleLR);
      ReduceLROnPlateau is stepped with ``scheduler_monitor`` from the epoch's logs.
    - ``callbacks``: :class:`Callback` instances; :class:`TerminateOnNaN` is added
      unless ``terminate_on_nan=False``.
    - ``grad_clip_norm``: clip the total gradient norm before each update.
    - ``verbose``: 0 silent, 1 a progress bar per epoch and a line per epoch
      (the bar only on a terminal or in a notebook: with output to a file or a
      pipe it is one line per epoch), 2 one line per epoch (for logs and CI).
      ``fit``, ``evaluate`` and ``predict`` take ``verbose`` too, which overrides
      this one for that call.
    - ``record_steps``: also record each batch's loss in ``history.steps``.

    >>> model = minidl.nn.Dense(3, 2)
    >>> trainer = minidl.Trainer(model, minidl.optim.Adam(model.parameters()),
    ...                          loss=minidl.nn.CrossEntropyLoss(), verbose=0)
    >>> trainer.predict(np.zeros((5, 3), np.float32)).shape
    (5, 2)
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        loss: Union[str, Callable[..., Any]],
        metrics: Sequence[Union[str, Callable[..., float]]] | None = None,
        scheduler: Any = None,
        scheduler_interval: str = "epoch",
        scheduler_monitor: str = "val_loss",
        callbacks: Sequence[Callback] | None = None,
        grad_clip_norm: float | None = None,
        verbose: int | str = 1,
        record_steps: bool = False,
        terminate_on_nan: bool = True,
    ) -> None:
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(
                f"Trainer: scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}"
            )
        level = _check_verbose(verbose, "Trainer")
        if not callable(model):
            raise TypeError(f"Trainer: expected a model (a Module), got {type(model).__name__}")
        if not all(hasattr(optimizer, name) for name in ("step", "zero_grad", "param_groups")):
            raise TypeError(
                "Trainer: expected an optimizer (e.g. minidl.optim.SGD(model.parameters(), "
                f"lr=0.1)), got {type(optimizer).__name__}"
            )
        self.model = model
        self.optimizer = optimizer
        self.loss = _loss(loss)
        # Keras' name for cross entropy: its models often end in Softmax, which minidl's
        # loss (on logits) would silently train through; the first batch is looked at
        self._expect_logits = loss == "sparse_categorical_crossentropy"
        # with Keras' name, Keras' labels too: (N, 1) and integral floats are class indices
        self._keras_labels = loss == "sparse_categorical_crossentropy"
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
        self.verbose = level
        self.record_steps = record_steps
        self.history = History()
        self.epoch = 0  # epochs completed
        self.global_step = 0  # batches trained, over all epochs
        self.current_epoch = 0
        self.step_in_epoch = 0
        self.stop_training = False
        # the loaders of the current fit, whose generators checkpoints save
        self._data: dict[str, Any] = {}
        self._resumed = None  # what resume read that fit applies: callbacks' and loaders' state
        self._deferred = None  # checkpoints asked for during on_epoch_end, written after it
        self._verbosity = None  # the verbose of the running fit/evaluate/predict call
        self._call_history = History()  # what the running (or last) fit call returns
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
        inputs, targets = _tensor(inputs), self._targets(targets)
        outputs = self.model(inputs)
        if self._expect_logits:
            self._expect_logits = False
            _warn_if_probabilities(outputs.numpy())
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

    def _model_float_dtype(self):
        """The dtype of the model's floating parameters when they share one, else None."""
        dtypes = {p.dtype for p in self.model.parameters() if p.dtype.kind == "f"}
        return dtypes.pop() if len(dtypes) == 1 else None

    def _as_model_dtype(self, x):
        """Keras' habit for arrays: a floating numpy array given to ``fit``, ``evaluate`` or
        ``predict`` is cast to the dtype of the model's floating parameters (a float64
        ``np.random.rand`` batch to a float32 model). Tensors, integer arrays (embedding
        indices) and loaders' batches are passed as they are, as in PyTorch, whose layers
        refuse mixed dtypes with a RuntimeError (so do minidl's)."""
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            dtype = self._model_float_dtype()
            if dtype is not None and x.dtype != dtype:
                return x.astype(dtype)
        return x

    def _cast_array_batches(self, *batches):
        for data in batches:
            if isinstance(data, _ArrayBatches):
                data.x = self._as_model_dtype(data.x)

    def _targets(self, targets):
        """A batch's targets as a Tensor; with loss "sparse_categorical_crossentropy" Keras'
        labels are taken as Keras takes them: (N, 1) is squeezed to (N,), and float labels
        that are whole numbers become int64 class indices."""
        if not self._keras_labels:
            return _tensor(targets)
        labels = _array(targets)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.dtype.kind == "f":
            if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                raise ValueError(
                    "Trainer: loss 'sparse_categorical_crossentropy' takes class indices, but "
                    f"the targets are floats that are not whole numbers ({labels[:4]!r}); for "
                    "one-hot or probability targets use loss='cross_entropy'"
                )
            labels = labels.astype(np.int64)
        return _tensor(labels)

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        initial_epoch: int | None = None,
        val_data: Any = None,
        train_data: Any = None,
    ) -> History:
        """Train for ``epochs`` more epochs (Keras' ``fit``); returns this call's :class:`History`.

        The data is either arrays or batches:

        - ``x`` (N, *) and ``y`` (N, ...) numpy arrays or Tensors, cut into
          batches of ``batch_size`` (default 32) rows, in a new order every epoch
          when ``shuffle`` (drawn from minidl's generator: ``manual_seed`` repeats
          it, and a resumed checkpoint continues it). ``validation_split`` in
          [0, 1) keeps the LAST fraction of the samples (before any shuffling) for
          validation, as Keras does.
        - ``x`` (or ``train_data``) a DataLoader or any iterable of ``(inputs,
          targets)`` batches, as before; then ``y``, ``batch_size`` and
          ``validation_split`` must be left out, and ``shuffle`` does nothing (a
          DataLoader shuffles as it was built).

        ``validation_data`` is ``(x_val, y_val)`` arrays (a list of the two as well) or
        batches (``val_data`` is its older name; give one of them). Each call trains
        ``epochs`` epochs more, numbered on from the trainer's ``epoch``; with
        ``initial_epoch`` it trains epochs ``initial_epoch + 1`` to ``epochs``, so
        ``epochs`` is then the number of the last epoch (Keras' meaning). The first
        ``fit`` after :meth:`resume` finishes the interrupted call: ``epochs`` is
        the last epoch's number, as with ``initial_epoch`` set to the checkpoint's
        epoch. ``verbose`` (0, 1, 2, or Keras' "auto", which is 1) overrides the
        Trainer's for this call. The returned History holds this call's epochs only
        (Keras 3: a new History per call); ``trainer.history`` holds every epoch
        the trainer trained, over all calls (what checkpoints save).

        >>> model = minidl.nn.Dense(2, 2)
        >>> trainer = minidl.Trainer(model, minidl.optim.SGD(model.parameters(), lr=0.1),
        ...                          loss="cross_entropy", metrics=["accuracy"], verbose=0)
        >>> x, y = np.random.rand(100, 2).astype(np.float32), np.arange(100) % 2
        >>> len(trainer.fit(x, y, batch_size=10, epochs=2, validation_split=0.2).epochs)
        2
        >>> [r["epoch"] for r in trainer.fit(x, y, epochs=1).epochs]
        [3]
        >>> [r["epoch"] for r in trainer.history.epochs]
        [1, 2, 3]
        """
        where = "Trainer.fit"
        train, validation = _fit_data(
            x, y, train_data, batch_size, validation_split, validation_data, val_data, shuffle
        )
        _checks.non_negative_int(epochs, where, "epochs")
        self._cast_array_batches(train, validation)
        if initial_epoch is not None:
            first_epoch = _checks.non_negative_int(initial_epoch, where, "initial_epoch")
            last_epoch = epochs
        elif self._resumed is not None:
            first_epoch, last_epoch = self.epoch, epochs
        else:
            first_epoch, last_epoch = self.epoch, self.epoch + epochs
        with self._verbose_for(verbose, where):
            self.stop_training = False
            self._data = {"train": train, "val": validation}
            for callback in self.callbacks:
                callback.set_trainer(self)
            self._call("on_train_begin", {})
            if self._resumed is not None:
                self._apply_resumed_state()
            first = last_epoch + 1 if self.stop_training else first_epoch + 1
            self._call_history = History()
            for epoch in range(first, last_epoch + 1):
                self._fit_epoch(train, validation, epoch, last_epoch)
                if self.stop_training:
                    break
            self._call("on_train_end", {})
        return self._call_history

    def _fit_epoch(self, train, validation, epoch, last_epoch):
        self.current_epoch = epoch
        self._call("on_epoch_begin", epoch, {})
        logs = self._train_epoch(train, epoch, last_epoch)
        if validation is not None:
            logs.update({f"val_{k}": v for k, v in self.evaluate(validation, verbose=0).items()})
        notes = self._step_epoch_scheduler(logs, epoch)
        self.epoch = epoch
        self.history.epochs.append(logs)
        self._call_history.epochs.append(logs)
        self._deferred = []
        try:
            self._call("on_epoch_end", epoch, logs)
            self.say(self._summary_line(logs, last_epoch))
            for note in notes:
                self.say(note)
            if self.distributed:
                self.stop_training = self._any_rank(self.stop_training, "stop at the epoch's end")
        finally:
            deferred, self._deferred = self._deferred, None
        for path in deferred:  # now every callback's state is that after the epoch
            self._write_checkpoint(path)

    # ------------------------------------------------------------------ output
    @property
    def verbosity(self) -> int:
        """The verbose level in force: that of the running call, else the Trainer's."""
        return self.verbose if self._verbosity is None else self._verbosity

    @contextlib.contextmanager
    def _verbose_for(self, verbose, where):
        level = self.verbosity if verbose is None else _check_verbose(verbose, where)
        saved, self._verbosity = self._verbosity, level
        try:
            yield level
        finally:
            self._verbosity = saved

    def say(self, line: str) -> None:
        """Print ``line`` (one line, to stdout) unless silent (verbose 0) or not rank 0.

        Callbacks report what they did through it (EarlyStopping's stop, for one).
        """
        if self.verbosity and self.is_main_process:
            print(line, flush=True)

    def _progress_bar(self, total, description):
        """A tqdm bar on stderr at verbose 1 on a terminal or in a notebook, else None."""
        if self.verbosity != 1 or not self.is_main_process or not _interactive():
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:  # a declared dependency, but the lines say it all anyway
            return None
        return tqdm(
            total=total,
            desc=description,
            unit="batch",
            leave=False,
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def _train_epoch(self, train_data, epoch, epochs):
        self.model.train()
        sampler = getattr(train_data, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch - 1)  # torch's habit: epochs counted from 0
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        totals, samples = {}, 0
        total = len(train_data) if hasattr(train_data, "__len__") else None
        bar = self._progress_bar(total, f"epoch {epoch}/{epochs}")
        start = time.perf_counter()
        for step, batch in enumerate(train_data):
            inputs, targets = _split(batch)
            self.step_in_epoch = step
            # the rate this batch's update uses: the epoch's line shows the last one
            lrs = [group["lr"] for group in self.optimizer.param_groups]
            self._call("on_batch_begin", step, {})
            logs = self.train_step(inputs, targets)
            count = len(inputs)
            samples += count
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value * count
            self.global_step += 1
            if self.record_steps:
                record = {"epoch": epoch, "step": self.global_step, **logs}
                self.history.steps.append(record)
                self._call_history.steps.append(record)
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

    def _step_epoch_scheduler(self, logs, epoch):
        """Step an epoch schedule; returns the lines that say what ReduceLROnPlateau did."""
        if self.scheduler is None or self.scheduler_interval != "epoch":
            return []
        if not isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step()
            return []
        if self.scheduler_monitor not in logs:
            raise KeyError(
                f"Trainer: ReduceLROnPlateau monitors {self.scheduler_monitor!r}, which is not "
                f"in the epoch's logs {sorted(logs)}"
            )
        before = [group["lr"] for group in self.optimizer.param_groups]
        self.scheduler.step(logs[self.scheduler_monitor])
        after = [group["lr"] for group in self.optimizer.param_groups]
        if after == before:
            return []
        rates = after[0] if len(after) == 1 else after
        return [f"Epoch {epoch}: ReduceLROnPlateau reducing learning rate to {_rates(rates)}."]

    @staticmethod
    def _summary_line(logs, epochs):
        parts = [f"epoch {logs['epoch']}/{epochs}"]
        for key, value in logs.items():
            if key in ("epoch", "lr", "time", "samples_per_second"):
                continue
            parts.append(f"{key} {value:.4f}")
        parts.append(f"lr {_rates(logs['lr'])}")
        parts.append(f"{logs['time']:.1f}s")
        parts.append(f"{logs['samples_per_second']:,.0f} samples/s")
        return " - ".join(parts)

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int | str | None = None,
        data: Any = None,
    ) -> dict:
        """The mean loss and metrics over the data, in eval mode under no_grad.

        The data is ``x`` (N, *) and ``y`` arrays or Tensors (in batches of
        ``batch_size``, default 32), or ``x`` (or ``data``) a DataLoader or an
        iterable of ``(inputs, targets)`` batches. The model's mode is restored
        afterwards. Returns ``{"loss": ..., metric: ...}``; at ``verbose`` 1 or 2
        (default: the Trainer's) it also prints them on one line. In distributed
        training every rank must call it with the same data: batch i is evaluated
        by rank i mod world size (a DataLoader loads only its rank's batches),
        rank 0's buffers are used (broadcast first, when the DDP model broadcasts
        buffers), and the result, equal on every rank, is that of one process
        evaluating every batch.

        >>> model = minidl.nn.Dense(2, 2)
        >>> trainer = minidl.Trainer(model, minidl.optim.SGD(model.parameters(), lr=0.1),
        ...                          loss="cross_entropy", verbose=0)
        >>> sorted(trainer.evaluate(np.zeros((8, 2), np.float32), np.zeros(8, np.int64)))
        ['loss']
        """
        where = "Trainer.evaluate"
        given = _the_one(x, data, where, ("x", "data"))
        if given is None:
            raise TypeError(f"{where}: expected arrays x and y, or batches of (inputs, targets)")
        batches = _batches_of(given, y, batch_size, False, where, "x")
        self._cast_array_batches(batches)
        totals: dict[str, float] = {}
        samples = 0
        network = self._network()
        if self.distributed and self.model.broadcast_buffers:
            self.model._sync_buffers()
        with self._verbose_for(verbose, where):
            total = len(batches) if hasattr(batches, "__len__") else None
            bar = self._progress_bar(total, "evaluate")
            start = time.perf_counter()
            with evaluating(network):
                for batch in self._shard(batches):
                    inputs, targets = _split(batch)
                    inputs, targets = _tensor(inputs), self._targets(targets)
                    outputs = network(inputs)
                    count = len(inputs)
                    samples += count
                    values = {"loss": float(self.loss(outputs, targets).item())}
                    for name, fn in self.metrics:
                        values[name] = fn(outputs.numpy(), targets.numpy())
                    for key, value in values.items():
                        totals[key] = totals.get(key, 0.0) + value * count
                    if bar is not None:
                        bar.update(1)
            if bar is not None:
                bar.close()
            samples, totals = self._reduce_totals(samples, totals, "evaluation")
            if samples == 0:
                raise ValueError(f"{where}: the data gave no batches")
            results = {key: total / samples for key, total in totals.items()}
            parts = [f"{key} {value:.4f}" for key, value in results.items()]
            elapsed = time.perf_counter() - start
            self.say(" - ".join(["evaluate", *parts, f"{samples:,} samples", f"{elapsed:.1f}s"]))
        return results

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

    def predict(
        self, inputs: Any, batch_size: int | None = None, verbose: int | str | None = None
    ) -> np.ndarray:
        """The model's outputs for ``inputs`` (an array or Tensor, or an iterable of batches).

        Runs in eval mode under no_grad in batches of ``batch_size`` (default 32,
        as Keras), restores the model's mode, and returns one numpy array, also
        for a Tensor input (the outputs' dtype is the model's: float32 inputs give
        float32). Batches may be ``(inputs,
        targets)`` pairs, whose targets are ignored. An empty array (0, *) runs the
        model on the empty batch, so the result has the model's output shape (0, *).
        At ``verbose`` 1 (a progress bar on a terminal) or 2 it prints one line
        when done; default: the Trainer's verbose.

        >>> model = minidl.nn.Dense(3, 2)
        >>> trainer = minidl.Trainer(model, minidl.optim.SGD(model.parameters(), lr=0.1),
        ...                          loss="mse", verbose=0)
        >>> trainer.predict(np.zeros((5, 3), np.float32)).shape
        (5, 2)
        """
        where = "Trainer.predict"
        batch_size = 32 if batch_size is None else batch_size
        batch_size = _checks.positive_int(batch_size, where, "batch_size")
        batches: Iterable[Any]
        arrays = _arrayish(inputs, where, "inputs")
        if arrays is not None:
            array = _array(arrays)
            if not isinstance(arrays, Tensor):
                array = self._as_model_dtype(array)
            if array.ndim == 0:
                raise ValueError(f"{where}: expected a batch of inputs (N, *), got a scalar")
            starts = range(0, len(array), batch_size) if len(array) else [0]
            batches = [array[i : i + batch_size] for i in starts]
        else:
            _check_batches(inputs, where, "inputs")
            batches = (b[0] if isinstance(b, (tuple, list)) else b for b in inputs)
        network = self._network()
        with self._verbose_for(verbose, where):
            total = len(batches) if isinstance(batches, list) else None
            bar = self._progress_bar(total, "predict")
            start = time.perf_counter()
            outputs = []
            with evaluating(network):
                for batch in batches:
                    outputs.append(network(_tensor(batch)).numpy())
                    if bar is not None:
                        bar.update(1)
            if bar is not None:
                bar.close()
            result = np.concatenate(outputs) if outputs else np.empty((0,))
            elapsed = time.perf_counter() - start
            self.say(f"predict - {len(result):,} samples - {elapsed:.1f}s")
        return result

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
    "top_k_accuracy",
]
