"""The Trainer, History, every callback, gradient clipping, and checkpoints."""

import csv
import subprocess
import sys

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.train import (
    CSVLogger,
    EarlyStopping,
    History,
    LearningRateMonitor,
    ModelCheckpoint,
    NonFiniteLossError,
    TerminateOnNaN,
    Trainer,
)


class ShuffledBatches:
    """A small loader: reshuffles each epoch from minidl's generator, as DataLoader does."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = minidl.random.generator().permutation(len(self.x))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.x[index], self.y[index]


def _data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    return x, y


def _setup(seed=0, dropout=0.0, lr=0.3, **trainer_options):
    minidl.manual_seed(seed)
    model = nn.Sequential(
        nn.Dense(2, 32), nn.BatchNorm(32), nn.ReLU(), nn.Dropout(dropout), nn.Dense(32, 2)
    )
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    options = {"metrics": ["accuracy"], "verbose": 0, **trainer_options}
    return Trainer(model, opt, loss=nn.CrossEntropyLoss(), **options)


def test_fit_learns_and_records_history():
    x, y = _data()
    trainer = _setup()
    history = trainer.fit(ShuffledBatches(x, y, 32), epochs=8, val_data=[(x, y)])
    assert [r["epoch"] for r in history.epochs] == list(range(1, 9))
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.epochs[-1]["val_accuracy"] > 0.85
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time", "samples_per_second"):
        assert key in history.epochs[-1]
    assert trainer.epoch == 8 and trainer.global_step == 8 * 8
    restored = History.from_dict(history.to_dict())
    assert restored.history == history.history


def test_evaluate_and_predict_use_eval_mode_no_grad_and_restore_the_mode():
    x, y = _data(64)
    trainer = _setup(dropout=0.5)
    model = trainer.model
    model.train()
    tracked = model[1].num_batches_tracked.item()
    first = trainer.predict(x, batch_size=16)
    second = trainer.predict(minidl.tensor(x))
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)  # no dropout: eval mode
    assert first.shape == (64, 2)
    assert model.training and all(m.training for m in model.modules())
    assert model[1].num_batches_tracked.item() == tracked  # BN statistics untouched
    results = trainer.evaluate([(x[:32], y[:32]), (x[32:], y[32:])])
    assert set(results) == {"loss", "accuracy"}
    assert model.training
    model.eval()
    trainer.evaluate([(x, y)])
    assert not model.training  # restores eval mode too
    assert all(p.grad is None for p in model.parameters())
    # other batch sizes may take other BLAS kernels: equal to rounding
    np.testing.assert_allclose(
        trainer.predict([(x[:10], y[:10]), (x[10:], y[10:])]), first, rtol=1e-5, atol=1e-6
    )


def test_resume_after_epoch_2_gives_bitwise_the_same_weights(tmp_path):
    x, y = _data()
    loader = ShuffledBatches(x, y, 32)

    def make():
        trainer = _setup(seed=5, dropout=0.2)
        trainer.scheduler = optim.lr_scheduler.StepLR(trainer.optimizer, 1, 0.8)
        return trainer

    uninterrupted = make()
    uninterrupted.fit(loader, epochs=5, val_data=[(x, y)])

    first = make()
    first.fit(loader, epochs=2, val_data=[(x, y)])
    first.save_checkpoint(tmp_path / "checkpoint.npz")
    minidl.manual_seed(999)  # a new process would start from anywhere
    resumed = make()
    resumed.resume(tmp_path / "checkpoint.npz")
    assert resumed.epoch == 2 and len(resumed.history.epochs) == 2
    resumed.fit(loader, epochs=5, val_data=[(x, y)])

    expected = uninterrupted.model.state_dict()
    for key, value in resumed.model.state_dict().items():
        assert value.tobytes() == expected[key].tobytes(), f"{key} differs after resuming"
    assert resumed.history.history["loss"] == uninterrupted.history.history["loss"]
    assert resumed.optimizer.param_groups[0]["lr"] == uninterrupted.optimizer.param_groups[0]["lr"]


def test_a_tampered_or_truncated_checkpoint_is_refused(tmp_path):
    trainer = _setup()
    path = tmp_path / "checkpoint.npz"
    trainer.save_checkpoint(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        trainer.resume(tmp_path / "cut.npz")
    minidl.save({"format": "something else"}, tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not a minidl training checkpoint"):
        trainer.resume(tmp_path / "other.npz")


def test_verbose_levels(capsys, monkeypatch):
    x, y = _data(64)
    _setup(verbose=2).fit([(x, y)], epochs=2)
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2 - loss ")
    assert "samples/s" in lines[0] and "accuracy" in lines[0] and " lr " in lines[0]
    assert out.err == ""
    _setup(verbose=0).fit([(x, y)], epochs=2)
    assert capsys.readouterr().out == ""
    # verbose=1 draws a bar only on a terminal: capsys is not one, so lines only
    _setup(verbose=1).fit([(x, y)], epochs=1)
    out = capsys.readouterr()
    assert "epoch 1/1 - loss" in out.out and out.err == ""
    pytest.importorskip("tqdm")
    monkeypatch.setattr(minidl.train, "_interactive", lambda: True)
    _setup(verbose=1).fit([(x, y)], epochs=1)
    out = capsys.readouterr()
    assert "epoch 1/1 - loss" in out.out
    assert "epoch 1/1" in out.err  # the progress bar


def test_per_step_records_and_step_schedules():
    x, y = _data(128)
    trainer = _setup(record_steps=True)
    trainer.scheduler = optim.lr_scheduler.OneCycleLR(trainer.optimizer, max_lr=0.5, total_steps=8)
    trainer.scheduler_interval = "step"
    monitor = LearningRateMonitor(interval="step")
    trainer.callbacks.append(monitor)
    trainer.fit(ShuffledBatches(x, y, 32), epochs=2)
    assert len(trainer.history.steps) == 8
    lrs = [r["lr"][0] for r in monitor.records]
    assert len(lrs) == 8 and max(lrs) == pytest.approx(0.5, rel=0.05) and lrs[0] < 0.1


def test_reduce_on_plateau_is_stepped_with_the_monitored_value():
    x, y = _data(64)
    trainer = _setup(lr=1e-3)
    # a threshold no small improvement passes: every epoch after the first is a plateau
    trainer.scheduler = optim.lr_scheduler.ReduceLROnPlateau(
        trainer.optimizer, patience=0, factor=0.5, threshold=0.5
    )
    trainer.fit([(x, y)], epochs=3, val_data=[(x, y)])
    assert trainer.history.history["lr"] == [1e-3, 1e-3, 5e-4]
    trainer.scheduler_monitor = "val_f1"
    with pytest.raises(KeyError, match="monitors 'val_f1'"):
        trainer.fit([(x, y)], epochs=4, val_data=[(x, y)])


def test_early_stopping_restores_the_best_weights():
    x, y = _data(64)
    trainer = _setup(lr=0.5)
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    trainer.callbacks.append(stopper)
    # validation on flipped labels: it gets worse as training improves, so it stops early
    trainer.fit([(x, y)], epochs=30, val_data=[(x, 1 - y)])
    assert stopper.stopped_epoch is not None and trainer.epoch < 30
    best = stopper.best_epoch
    assert trainer.epoch == best + 2
    assert trainer.evaluate([(x, 1 - y)])["loss"] == pytest.approx(stopper.best, rel=1e-6)


def test_early_stopping_needs_its_monitored_value():
    x, y = _data(32)
    trainer = _setup()
    trainer.callbacks.append(EarlyStopping(monitor="val_loss"))
    with pytest.raises(KeyError, match="'val_loss' is not in the epoch's logs"):
        trainer.fit([(x, y)], epochs=1)


def test_model_checkpoint_saves_best_only(tmp_path):
    x, y = _data(64)
    trainer = _setup(lr=0.5)
    checkpoint = ModelCheckpoint(
        tmp_path / "best-{epoch}.npz", monitor="val_loss", save_best_only=True
    )
    every = ModelCheckpoint(tmp_path / "every.npz", save_best_only=False)
    trainer.callbacks += [checkpoint, every]
    trainer.fit([(x, y)], epochs=6, val_data=[(x, 1 - y)])
    assert checkpoint.saved and len(checkpoint.saved) < 6
    assert len(every.saved) == 6
    fresh = _setup(seed=3)
    fresh.resume(checkpoint.saved[-1])
    assert fresh.epoch == int(checkpoint.saved[-1].split("-")[-1].split(".")[0])


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y = _data(64)
    path = tmp_path / "log.csv"
    trainer = _setup()
    trainer.callbacks.append(CSVLogger(path))
    trainer.fit([(x, y)], epochs=3, val_data=[(x, y)])
    rows = list(csv.DictReader(path.open()))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert float(rows[-1]["val_accuracy"]) >= 0
    appended = _setup()
    appended.callbacks.append(CSVLogger(path, append=True))
    appended.fit([(x, y)], epochs=1)
    assert len(list(csv.DictReader(path.open()))) == 4


class _Explode(nn.Module):
    """Passes its input through until a given number of calls, then multiplies it by inf."""

    def __init__(self, at_step):
        super().__init__()
        self.at_step = at_step
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * (np.inf if self.calls > self.at_step else 1.0)


class _Weights(minidl.train.Callback):
    """Copies of the model's state after every update."""

    def __init__(self):
        self.after_update = []

    def on_batch_end(self, step, logs=None):
        self.after_update.append({k: v.copy() for k, v in self.trainer.model.state_dict().items()})


def test_terminate_on_nan_names_epoch_and_step_and_keeps_finite_weights():
    x, y = _data(64)
    weights = _Weights()
    trainer = _setup(callbacks=[weights])
    trainer.model.append(_Explode(at_step=5))
    with pytest.raises(
        NonFiniteLossError,
        match=r"at epoch 2, step 1 \(global step 5\).* keeps the weights of the last finite step",
    ):
        trainer.fit(ShuffledBatches(x, y, 16), epochs=3)
    # the failing step made no update: the model is exactly as after the fifth update
    assert len(weights.after_update) == 5
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value, weights.after_update[-1][name], err_msg=name)
    assert sum(isinstance(c, TerminateOnNaN) for c in trainer.callbacks) == 1


def test_terminate_on_nan_stops_after_an_update_made_the_weights_non_finite():
    # Changed deliberately (issue 16): TerminateOnNaN no longer copies the weights every
    # step to put them back; it stops and says the weights are left non-finite.
    x, y = _data(64)
    trainer = _setup(lr=1e39)  # beyond float32: the first update makes the weights inf
    trainer.callbacks.insert(0, ModelCheckpoint("unused-{epoch}.npz"))
    with pytest.raises(
        NonFiniteLossError,
        match=r"the last update made parameter .* non-finite at the end of epoch 1 "
        r"\(global step 1\); training stopped and the model's weights are left non-finite",
    ):
        with np.errstate(over="ignore", invalid="ignore"):
            trainer.fit([(x, y)], epochs=2)
    assert not all(np.all(np.isfinite(v)) for v in trainer.model.state_dict().values())
    assert trainer.last_checkpoint is None  # the epoch's checkpoint was not written


def test_terminate_on_nan_can_restore_the_last_checkpoint(tmp_path):
    x, y = _data(64)
    guard = TerminateOnNaN(restore_checkpoint=True)
    trainer = _setup(callbacks=[ModelCheckpoint(tmp_path / "last.npz"), guard])
    with pytest.raises(NonFiniteLossError, match="no checkpoint had been written to restore"):
        with np.errstate(over="ignore", invalid="ignore"):
            _setup(lr=1e39, callbacks=[TerminateOnNaN(restore_checkpoint=True)]).fit([(x, y)])
    trainer.fit([(x, y)], epochs=2)
    saved = {k: v.copy() for k, v in trainer.model.state_dict().items()}
    trainer.optimizer.param_groups[0]["lr"] = 1e39
    with pytest.raises(
        NonFiniteLossError, match=r"restored from .*last\.npz \(the end of epoch 2\)"
    ):
        with np.errstate(over="ignore", invalid="ignore"):
            trainer.fit([(x, y)], epochs=1)
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(value, saved[name], err_msg=name)
    assert trainer.epoch == 2 and len(trainer.history.epochs) == 2
    assert trainer.optimizer.param_groups[0]["lr"] == 0.3  # the checkpoint's
    # the next fit finishes the interrupted call, as after any resume: up to epoch 3
    trainer.fit([(x, y)], epochs=3)
    assert [r["epoch"] for r in trainer.history.epochs] == [1, 2, 3]
    assert all(np.all(np.isfinite(v)) for v in trainer.model.state_dict().values())


def test_nan_checking_can_be_turned_off():
    trainer = _setup(terminate_on_nan=False)
    assert not any(isinstance(c, TerminateOnNaN) for c in trainer.callbacks)


def test_gradient_clipping_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)) * 10, rng.standard_normal(5)]
    for norm_type in (2.0, 1.0, float("inf")):
        ours = [nn.Parameter(minidl.zeros(g.shape, dtype="float64")) for g in grads]
        theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for p, t, g in zip(ours, theirs, grads):
            p.grad = minidl.tensor(g.copy())
            t.grad = torch.tensor(g.copy())
        total = nn.utils.clip_grad_norm_(ours, 1.5, norm_type)
        expected = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type)
        assert total.item() == pytest.approx(expected.item(), rel=1e-12)
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12)


def test_trainer_clips_gradients():
    x, y = _data(64)
    trainer = _setup(grad_clip_norm=1e-3, lr=1.0)
    seen = []

    class Watch(minidl.train.Callback):
        def on_batch_end(self, step, logs=None):
            grads = [p.grad.data for p in self.trainer.model.parameters()]
            seen.append(np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads)))

    trainer.callbacks.append(Watch())
    trainer.fit([(x, y)], epochs=2)
    assert max(seen) <= 1e-3 * (1 + 1e-5)


def test_callback_hooks_run_in_order():
    calls = []

    class Record(minidl.train.Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"epoch_begin {epoch}")

        def on_batch_begin(self, step, logs=None):
            calls.append(f"batch_begin {step}")

        def on_batch_loss(self, step, loss):
            calls.append(f"batch_loss {step}")

        def on_batch_end(self, step, logs=None):
            calls.append(f"batch_end {step}")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"epoch_end {epoch}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

    x, y = _data(32)
    trainer = _setup(callbacks=[Record()])
    trainer.fit([(x[:16], y[:16]), (x[16:], y[16:])], epochs=1)
    assert calls == [
        "train_begin",
        "epoch_begin 1",
        "batch_begin 0",
        "batch_loss 0",
        "batch_end 0",
        "batch_begin 1",
        "batch_loss 1",
        "batch_end 1",
        "epoch_end 1",
        "train_end",
    ]


def test_bad_batches_and_arguments_are_explained():
    trainer = _setup()
    with pytest.raises(TypeError, match=r"each batch must be an \(inputs, targets\) pair"):
        trainer.fit([np.zeros((2, 2))], epochs=1)
    with pytest.raises(ValueError, match="gave no batches"):
        trainer.fit([], epochs=1)
    with pytest.raises(ValueError, match="unknown metric"):
        _setup(metrics=["f1"])
    with pytest.raises(TypeError, match=r"is not a minidl\.train\.Callback"):
        _setup(callbacks=[print])


def test_history_plot(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = _data(64)
    trainer = _setup()
    trainer.fit([(x, y)], epochs=2, val_data=[(x, y)])
    path = trainer.history.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert str(path).endswith("curves.png")


def test_history_plot_without_matplotlib_says_how_to_install_it(tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import minidl\n"
        "h = minidl.train.History([{'epoch': 1, 'loss': 1.0}])\n"
        "try:\n    h.plot('x.png')\nexcept ImportError as e:\n    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert "needs matplotlib" in result.stdout and "pip install matplotlib" in result.stdout


def test_periodic_evaluation_follows_test_accuracy_against_steps():
    x, y = _data(128)
    trainer = _setup()
    tracker = minidl.train.PeriodicEvaluation([(x, y)], every=3)
    trainer.callbacks.append(tracker)
    trainer.fit(ShuffledBatches(x, y, 32), epochs=2)  # 8 steps
    assert [r["step"] for r in tracker.records] == [3, 6, 8]
    assert set(tracker.records[0]) == {"step", "epoch", "loss", "accuracy"}
    assert tracker.records[-1]["accuracy"] == pytest.approx(trainer.evaluate([(x, y)])["accuracy"])
    assert tracker.steps_to("accuracy", 0.0) == 3
    assert tracker.steps_to("accuracy", 1.01) is None
    assert tracker.steps_to("loss", 1e9, mode="min") == 3
    assert trainer.model.training  # evaluation put the training mode back


def test_activation_stats_records_percentiles_of_a_layer_input():
    x, y = _data(128)
    trainer = _setup()
    relu = trainer.model[2]
    seen = []
    relu.register_forward_hook(lambda m, inputs, o: seen.append(inputs[0].numpy()[:, 1].copy()))
    stats = minidl.train.ActivationStats(relu, every=2, unit=1)
    trainer.callbacks.append(stats)
    trainer.fit(ShuffledBatches(x, y, 32), epochs=1)  # steps 0..3 begin at global steps 0..3
    steps, values = stats.as_arrays()
    assert steps.tolist() == [0, 2] and values.shape == (2, 3)
    np.testing.assert_allclose(values[0], np.percentile(seen[0], [15, 50, 85]))
    np.testing.assert_allclose(values[1], np.percentile(seen[2], [15, 50, 85]))
    assert stats._handle is None  # the hook is removed after training
    trainer.evaluate([(x, y)])
    assert len(stats.records) == 2  # evaluation passes are not recorded
    pooled = minidl.train.ActivationStats(relu, every=1, unit=None, percentiles=(50,))
    trainer.callbacks.append(pooled)
    trainer.fit(ShuffledBatches(x, y, 64), epochs=1)  # one epoch more: two steps
    assert pooled.as_arrays()[1].shape == (2, 1)


def _flat(value, prefix=""):
    """A nested state (dicts, lists, arrays, numbers) as {path: bytes or value}."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        array = np.asarray(value)
        return {prefix: (array.dtype.str, array.shape, array.tobytes())}
    flat = {}
    for key, item in items:
        flat.update(_flat(item, f"{prefix}/{key}"))
    return flat


class _States(minidl.train.Callback):
    """The model's and the optimizer's state after every update."""

    def __init__(self):
        self.after_update = []

    def on_batch_end(self, step, logs=None):
        trainer = self.trainer
        self.after_update.append(
            (_flat(dict(trainer.model.state_dict())), _flat(trainer.optimizer.state_dict()))
        )


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_nan_loss_mid_epoch_leaves_model_buffers_and_optimizer_as_after_the_last_step(optimizer):
    x, y = _data(64)
    states = _States()
    trainer = _setup(callbacks=[states])
    if optimizer == "adam":
        trainer.optimizer = optim.Adam(trainer.model.parameters(), lr=0.01)
    trainer.model.append(_Explode(at_step=6))  # after BatchNorm: its statistics move first
    with pytest.raises(NonFiniteLossError, match=r"at epoch 2, step 2 \(global step 6\)"):
        trainer.fit(ShuffledBatches(x, y, 16), epochs=3)
    model, optimizer_state = states.after_update[-1]
    assert len(states.after_update) == 6
    assert _flat(dict(trainer.model.state_dict())) == model  # parameters and buffers
    assert _flat(trainer.optimizer.state_dict()) == optimizer_state  # momentum, Adam's moments
    assert any("running_mean" in name for name in model)
    assert any(len(value[2]) > 8 for name, value in optimizer_state.items())  # real state
