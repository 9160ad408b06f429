"""The Trainer with the habits Keras users bring (issue 16): arrays in, validation_split,
fit called again, initial_epoch, verbose per call, losses and metrics by name, the
learning rate on the epoch line, callbacks that say what they did, lines instead of bars
off a terminal, and History.plot returning the figure."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.data import ArrayDataset, DataLoader
from minidl.train import EarlyStopping, ModelCheckpoint, Trainer, top_k_accuracy


def _separable(n=400, seed=0):
    """Two classes split by a line: easy, so accuracy must climb."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return x, y


def _trainer(seed=0, lr=0.05, **options):
    minidl.manual_seed(seed)
    model = nn.Sequential(nn.Dense(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Dense(16, 2))
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    options = {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"], **options}
    return Trainer(model, opt, **options)


def _lines(text):
    assert "\r" not in text, f"carriage returns in the output: {text!r}"
    return text.strip().splitlines()


def test_a_keras_session(capsys):
    x, y = _separable()
    x_test, y_test = _separable(100, seed=1)
    trainer = _trainer(lr=0.02, verbose=1)  # verbose 1, but capsys is no terminal: lines
    first = trainer.fit(x, y, batch_size=32, epochs=2, validation_split=0.25)
    history = trainer.fit(x, y, batch_size=32, epochs=3, validation_split=0.25)
    results = trainer.evaluate(x_test, y_test)
    probabilities = trainer.predict(x_test)
    out = capsys.readouterr()
    assert out.err == ""
    lines = _lines(out.out)
    # one line per epoch, numbered on across the two calls (each call's last epoch after /)
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(" - ")[0] for line in epoch_lines] == [
        "epoch 1/2",
        "epoch 2/2",
        "epoch 3/5",
        "epoch 4/5",
        "epoch 5/5",
    ]
    for line in epoch_lines:
        for part in ("loss ", "accuracy ", "val_loss ", "val_accuracy ", "lr 2.0e-02", "samples/s"):
            assert part in line, (part, line)
    assert lines[5].startswith("evaluate - loss ") and "100 samples" in lines[5]
    assert lines[6].startswith("predict - 100 samples")
    assert len(lines) == 7
    # Keras 3: each call returns a new History of its own epochs (the first is left as
    # it was); the trainer's history holds all five, numbered 1..5, with every figure
    assert first.epoch == [0, 1] and history.epoch == [2, 3, 4]
    assert [record["epoch"] for record in history.epochs] == [3, 4, 5]
    assert [record["epoch"] for record in trainer.history.epochs] == [1, 2, 3, 4, 5]
    assert all(len(values) == 3 for values in history.history.values())
    assert all(len(values) == 5 for values in trainer.history.history.values())
    assert trainer.history.epochs == first.epochs + history.epochs
    assert trainer.epoch == 5 and trainer.global_step == 5 * 10  # 300 samples in 32s
    accuracy = trainer.history.history["val_accuracy"]
    assert accuracy[-1] > accuracy[0] and accuracy[-1] > 0.9
    assert results["accuracy"] > 0.9 and set(results) == {"loss", "accuracy"}
    assert probabilities.shape == (100, 2) and probabilities.dtype == np.float32
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    figure = trainer.history.plot()
    assert isinstance(figure, Figure) and len(figure.axes) == 2
    assert [axis.get_title() for axis in figure.axes] == ["loss", "accuracy"]


# ---------------------------------------------------------------- 1. arrays and loaders
def test_validation_split_keeps_the_last_samples_before_shuffling():
    x, y = _separable(100)
    trainer = _trainer(verbose=0)
    history = trainer.fit(x, y, batch_size=16, epochs=1, validation_split=0.2)
    # Keras: the split is cut at floor(100 * 0.8): samples 80..99 validate
    expected = trainer.evaluate(x[80:], y[80:], batch_size=16, verbose=0)
    assert history.epochs[0]["val_loss"] == pytest.approx(expected["loss"], rel=1e-12)
    assert history.epochs[0]["val_accuracy"] == expected["accuracy"]
    assert trainer.global_step == 5  # 80 training samples in batches of 16


def _orders(shuffle, seed=0, epochs=2):
    """The sample order each epoch of fit(x, y, shuffle=...) trained on."""
    seen = []

    class Record(nn.Module):
        def forward(self, x):
            if self.training:
                seen.extend(x.numpy()[:, 0].astype(int).tolist())
            return x

    x = np.arange(10, dtype=np.float32).reshape(10, 1).repeat(2, axis=1)
    minidl.manual_seed(seed)
    model = nn.Sequential(Record(), nn.Dense(2, 2))
    opt = optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, opt, loss="cross_entropy", verbose=0)
    trainer.fit(x, np.zeros(10, np.int64), batch_size=4, epochs=epochs, shuffle=shuffle)
    return [seen[i * 10 : (i + 1) * 10] for i in range(epochs)]


def test_shuffle_draws_a_new_order_every_epoch_from_minidls_generator():
    first, second = _orders(True)
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second
    assert _orders(True) == [first, second]  # the same under the same manual_seed
    assert _orders(True, seed=1) != [first, second]
    assert _orders(False) == [list(range(10))] * 2


def test_arrays_and_tensors_and_loaders_train_the_same():
    x, y = _separable(64)
    results = []
    for data in (
        {"x": x, "y": y, "batch_size": 16, "shuffle": False},
        {"x": minidl.tensor(x), "y": minidl.tensor(y), "batch_size": 16, "shuffle": False},
        {"x": DataLoader(ArrayDataset(x, y), batch_size=16)},
        {"train_data": [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]},
    ):
        trainer = _trainer(verbose=0)
        trainer.fit(epochs=2, validation_data=[(x, y)], **data)
        results.append(trainer.history.history["val_loss"])
    assert all(result == results[0] for result in results[1:]), results


def test_a_fit_on_arrays_resumes_bit_for_bit(tmp_path):
    x, y = _separable(96)

    def make():
        return _trainer(verbose=0, callbacks=[ModelCheckpoint(tmp_path / "last.npz")])

    straight = make()
    straight.fit(x, y, batch_size=16, epochs=4, validation_split=0.25)
    interrupted = make()
    interrupted.fit(x, y, batch_size=16, epochs=2, validation_split=0.25)
    minidl.manual_seed(999)  # a new process starts from anywhere
    resumed = make().resume(tmp_path / "last.npz")
    resumed.fit(x, y, batch_size=16, epochs=4, validation_split=0.25)
    for name, value in straight.model.state_dict().items():
        assert value.tobytes() == resumed.model.state_dict()[name].tobytes(), name
    assert resumed.history.history["val_loss"] == straight.history.history["val_loss"]


# ---------------------------------------------------------------- 2. fit again, initial_epoch
def test_fit_again_trains_epochs_more_and_initial_epoch_follows_keras():
    x, y = _separable(64)
    trainer = _trainer(verbose=0)
    trainer.fit(x, y, epochs=2)
    trainer.fit(x, y, epochs=2)
    assert [r["epoch"] for r in trainer.history.epochs] == [1, 2, 3, 4]
    assert trainer.epoch == 4 and trainer.global_step == 8
    # Keras: with initial_epoch, epochs is the index of the last epoch
    trainer.fit(x, y, epochs=6, initial_epoch=4)
    assert [r["epoch"] for r in trainer.history.epochs] == [1, 2, 3, 4, 5, 6]
    trainer.fit(x, y, epochs=6, initial_epoch=6)  # nothing left to train, as in Keras
    assert trainer.epoch == 6 and len(trainer.history.epochs) == 6
    fresh = _trainer(verbose=0)
    fresh.fit(x, y, epochs=3, initial_epoch=1)
    assert [r["epoch"] for r in fresh.history.epochs] == [2, 3] and fresh.global_step == 4


# ---------------------------------------------------------------- 3. verbose per call
def test_verbose_of_each_call_overrides_the_trainers(capsys):
    x, y = _separable(64)
    trainer = _trainer(verbose=0)
    trainer.fit(x, y, epochs=1)
    trainer.evaluate(x, y)
    trainer.predict(x)
    assert capsys.readouterr().out == ""
    trainer.fit(x, y, epochs=2, verbose=2)
    assert [line[:9] for line in _lines(capsys.readouterr().out)] == ["epoch 2/3", "epoch 3/3"]
    trainer.evaluate(x, y, verbose=1)
    trainer.predict(x, verbose=2)
    lines = _lines(capsys.readouterr().out)
    assert lines[0].startswith("evaluate - loss") and lines[1].startswith("predict - 64")
    assert len(lines) == 2
    loud = _trainer(verbose=2)
    loud.fit(x, y, epochs=1, verbose=0)
    loud.evaluate(x, y, verbose=0)
    loud.predict(x, verbose=0)
    assert capsys.readouterr().out == ""
    assert loud.verbose == 2  # the call's value holds for that call only
    loud.evaluate(x, y)
    assert capsys.readouterr().out.startswith("evaluate - ")


# ---------------------------------------------------------------- 4. names
def test_losses_by_name_are_the_loss_modules():
    x, _ = _separable(32)
    assert isinstance(_trainer(loss="cross_entropy").loss, nn.CrossEntropyLoss)
    assert isinstance(_trainer(loss="sparse_categorical_crossentropy").loss, nn.CrossEntropyLoss)
    for name in ("mse", "mean_squared_error"):
        trainer = _trainer(loss=name, metrics=[])
        assert isinstance(trainer.loss, nn.MSELoss)
        targets = np.ones((32, 2), np.float32)
        outputs = trainer.predict(x, verbose=0)
        result = trainer.evaluate(x, targets, verbose=0)["loss"]
        assert result == pytest.approx(float(np.mean((outputs - 1.0) ** 2)), rel=1e-5)


def test_keras_cross_entropy_warns_about_a_model_that_ends_in_softmax():
    x, y = _separable(64)
    trainer = _trainer(verbose=0)
    trainer.model.append(nn.Softmax(dim=1))
    with pytest.warns(UserWarning, match="takes logits .* remove the model's final Softmax"):
        trainer.fit(x, y, epochs=2)
    logits = _trainer(verbose=0)  # a model that outputs logits gets no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logits.fit(x, y, epochs=1)


def test_top_k_accuracy_counts_the_target_among_the_k_largest():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    outputs = rng.standard_normal((200, 10)).astype(np.float32)
    targets = rng.integers(0, 10, 200)
    for k in (1, 3, 5):
        top = torch.topk(torch.from_numpy(outputs), k, dim=1).indices.numpy()
        expected = float(np.mean((top == targets[:, None]).any(axis=1)))
        assert top_k_accuracy(outputs, targets, k=k) == expected
    assert top_k_accuracy(outputs, targets) == top_k_accuracy(outputs, targets, k=5)
    assert top_k_accuracy(outputs[:, :3], targets % 3) == 1.0  # k >= classes
    tied = np.array([[1.0, 1.0, 0.0]])
    assert top_k_accuracy(tied, np.array([1]), k=1) == 1.0  # a tie counts, as in Keras


def test_metrics_by_name_are_logged_under_minidls_names():
    x, y = _separable(64)
    metrics = ["acc", "sparse_top_k_categorical_accuracy", "top_k_accuracy"]
    trainer = _trainer(metrics=metrics, verbose=0)
    history = trainer.fit(x, y, epochs=1, validation_data=(x, y))
    assert {"accuracy", "top_k_accuracy", "val_top_k_accuracy"} <= set(history.epochs[0])
    assert history.epochs[0]["val_top_k_accuracy"] == 1.0  # two classes, k=5


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown loss 'crossentropy'; known names: .*mse"):
        _trainer(loss="crossentropy")
    with pytest.raises(ValueError, match=r"unknown metric 'f1'; known names: .*top_k_accuracy"):
        _trainer(metrics=["f1"])
    with pytest.raises(TypeError, match="expected a loss function"):
        _trainer(loss=3)


# ---------------------------------------------------------------- 5. the learning rate
def test_the_epoch_line_and_history_show_the_rate_of_the_last_batch(capsys):
    x, y = _separable(64)
    trainer = _trainer(verbose=2)
    trainer.scheduler = optim.lr_scheduler.OneCycleLR(trainer.optimizer, max_lr=0.1, total_steps=8)
    trainer.scheduler_interval = "step"
    rates = []

    class Rate(minidl.train.Callback):
        def on_batch_begin(self, step, logs=None):
            rates.append(self.trainer.optimizer.param_groups[0]["lr"])

    trainer.callbacks.append(Rate())
    trainer.fit(x, y, batch_size=16, epochs=2)
    assert trainer.history.history["lr"] == [rates[3], rates[7]]
    lines = _lines(capsys.readouterr().out)
    assert f" - lr {rates[3]:.1e} - " in lines[0] and f" - lr {rates[7]:.1e} - " in lines[1]


# ---------------------------------------------------------------- 6. callbacks say what they did
def test_reduce_on_plateau_and_early_stopping_say_what_they_did(capsys):
    x, y = _separable(64)
    stop = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    trainer = _trainer(lr=0.5, verbose=2, callbacks=[stop])
    trainer.scheduler = optim.lr_scheduler.ReduceLROnPlateau(
        trainer.optimizer, patience=0, factor=0.1
    )
    # validation on flipped labels gets worse as training improves: a plateau, then a stop
    trainer.fit(x, y, epochs=30, validation_data=(x, 1 - y))
    lines = _lines(capsys.readouterr().out)
    reductions = [line for line in lines if "ReduceLROnPlateau" in line]
    assert reductions and reductions[0].endswith("reducing learning rate to 5.0e-02.")
    assert reductions[0].startswith("Epoch ")
    assert lines[-1] == (
        f"Epoch {stop.stopped_epoch}: early stopping; restoring the weights of epoch "
        f"{stop.best_epoch}"
    )
    quiet = _trainer(verbose=0, callbacks=[EarlyStopping(monitor="loss", patience=0)])
    quiet.fit(x, y, epochs=5, validation_data=(x, 1 - y), verbose=0)
    assert capsys.readouterr().out == ""


def test_early_stopping_without_restoring_says_why_it_stopped(capsys):
    x, y = _separable(64)
    stop = EarlyStopping(monitor="val_loss", patience=1)
    _trainer(lr=0.5, verbose=2, callbacks=[stop]).fit(x, y, epochs=30, validation_data=(x, 1 - y))
    last = _lines(capsys.readouterr().out)[-1]
    assert last.startswith(f"Epoch {stop.stopped_epoch}: early stopping (val_loss has not improved")
    assert f"at epoch {stop.best_epoch})" in last


# ---------------------------------------------------------------- 7. no bars off a terminal
def test_off_a_terminal_verbose_1_prints_one_line_per_epoch(capsys):
    x, y = _separable(64)
    _trainer(verbose=1).fit(x, y, batch_size=8, epochs=3)
    out = capsys.readouterr()
    assert out.err == ""  # no bar at all
    lines = _lines(out.out)
    assert len(lines) == 3 and all(
        line.startswith(f"epoch {i + 1}/3 - ") for i, line in enumerate(lines)
    )


def test_on_a_terminal_verbose_1_draws_a_bar(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setattr(minidl.train, "_interactive", lambda: True)
    x, y = _separable(64)
    _trainer(verbose=1).fit(x, y, batch_size=8, epochs=1)
    out = capsys.readouterr()
    assert "epoch 1/1" in out.err and "\r" in out.err  # the bar redraws on stderr
    assert _lines(out.out)[0].startswith("epoch 1/1 - loss")


# ---------------------------------------------------------------- 8. History.plot
def test_history_plot_returns_the_figure_or_saves_it_atomically(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    x, y = _separable(64)
    trainer = _trainer(verbose=0)
    history = trainer.fit(x, y, epochs=3, validation_split=0.25)
    figure = history.plot()
    assert isinstance(figure, Figure)
    loss_axis = figure.axes[0]
    assert [line.get_label() for line in loss_axis.get_lines()] == ["train loss", "validation loss"]
    ticks = [tick for tick in loss_axis.get_xticks() if 1 <= tick <= 3]
    assert ticks and all(float(tick).is_integer() for tick in ticks)  # integer epochs
    path = history.plot(tmp_path / "curves.png", metrics=["accuracy"])
    assert path == tmp_path / "curves.png"
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == ["curves.png"]  # no temporary left behind
    history.plot(tmp_path / "curves.svg")
    assert b"<svg" in (tmp_path / "curves.svg").read_bytes()[:500]
    with pytest.raises(ValueError, match=r"History\.plot: \['f1'\] not recorded"):
        history.plot(metrics=["f1"])


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "arguments, error, match",
    [
        ({"validation_split": 1.0}, ValueError, r"validation_split must be .* < 1\.0, got 1\.0"),
        ({"validation_split": -0.1}, ValueError, r"validation_split must be .* >= 0\.0"),
        ({"validation_split": "0.2"}, TypeError, "validation_split must be a real number"),
        ({"validation_split": 0.999}, ValueError, "leaves 64 for validation and 0 for training"),
        ({"validation_split": 1e-17}, ValueError, "leaves 0 for validation and 64 for training"),
        ({"y": np.zeros(63, np.int64)}, ValueError, r"64 inputs \(shape \(64, 2\)\) and 63"),
        ({"y": None}, ValueError, r"x is an array, so y .* is needed; got y=None"),
        ({"y": "01"}, TypeError, "expected y as a numpy array, a Tensor or a list of numbers"),
        ({"y": [0, 1]}, ValueError, r"64 inputs \(shape \(64, 2\)\) and 2 targets"),
        ({"y": np.array(["a"] * 64)}, TypeError, "expected y of numbers .* dtype <U1"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
        ({"shuffle": "yes"}, TypeError, "shuffle must be True or False"),
        ({"verbose": 3}, ValueError, "verbose must be 0, 1, 2 or 'auto', got 3"),
        ({"initial_epoch": -1}, ValueError, "initial_epoch must be a non-negative integer"),
        (
            {"validation_data": (np.zeros((4, 3), np.float32), np.zeros(4, np.int64))},
            ValueError,
            r"validation_data's x_val has samples of shape \(3,\) .* training data's are \(2,\)",
        ),
        (
            {"validation_data": (np.zeros((4, 2), np.float32), np.zeros(5, np.int64))},
            ValueError,
            r"validation_data x_val and y_val must hold the same number of samples",
        ),
        (
            {"validation_data": (np.zeros((4, 2), np.float32), np.zeros((4, 1), np.int64))},
            ValueError,
            r"validation_data's y_val has samples of shape \(1,\)",
        ),
        (
            {"validation_data": (np.zeros((4, 2)), np.zeros(4), np.ones(4))},
            ValueError,
            r"expected validation_data as \(x_val, y_val\), got a tuple of 3",
        ),
        (
            {"validation_split": 0.2, "validation_data": (np.zeros((4, 2)), np.zeros(4))},
            ValueError,
            "give validation_split or validation_data, not both",
        ),
        ({"validation_data": 5}, TypeError, "expected validation_data as a DataLoader"),
        ({"val_data": [(1, 2)], "validation_data": [(1, 2)]}, ValueError, "not both"),
        ({"train_data": [(1, 2)]}, ValueError, "give x or train_data, not both"),
    ],
)
def test_fit_on_arrays_refuses_bad_input_naming_the_call(arguments, error, match):
    x, y = _separable(64)
    trainer = _trainer(verbose=0)
    arguments = {"x": x, "y": y, **arguments}
    with pytest.raises(error, match=match) as caught:
        trainer.fit(**arguments)
    assert str(caught.value).startswith("Trainer.fit: ")
    assert trainer.epoch == 0 and trainer.history.epochs == []


def test_fit_on_batches_refuses_what_only_arrays_take():
    x, y = _separable(64)
    batches = [(x, y)]
    trainer = _trainer(verbose=0)
    with pytest.raises(ValueError, match=r"Trainer\.fit: y is given, but x is list.*epochs=3"):
        trainer.fit(batches, 3)  # the old positional epochs
    with pytest.raises(ValueError, match=r"Trainer\.fit: batch_size is for arrays x and y"):
        trainer.fit(batches, batch_size=16)
    with pytest.raises(ValueError, match=r"Trainer\.fit: validation_split needs arrays"):
        trainer.fit(batches, validation_split=0.2)
    with pytest.raises(TypeError, match=r"Trainer\.fit: expected training data"):
        trainer.fit(epochs=1)
    with pytest.raises(ValueError, match=r"Trainer\.evaluate: x and y must hold the same"):
        trainer.evaluate(x, y[:10])
    with pytest.raises(ValueError, match=r"Trainer\.evaluate: x is an array, so y"):
        trainer.evaluate(x)
    with pytest.raises(ValueError, match=r"Trainer\.evaluate: give x or data, not both"):
        trainer.evaluate(batches, data=batches)
    with pytest.raises(ValueError, match=r"Trainer\.predict: verbose must be 0, 1, 2 or 'auto'"):
        trainer.predict(x, verbose=True)


# ---------------------------------------------------------------- 8. a hostile Keras user
def _losses(trainer):
    return [record["loss"] for record in trainer.history.epochs]


def test_each_fit_returns_a_new_history_holding_that_calls_epochs():
    x, y = _separable(64)
    trainer = _trainer(verbose=0, record_steps=True)
    first = trainer.fit(x, y, batch_size=16, epochs=2)
    kept = [dict(record) for record in first.epochs]
    second = trainer.fit(x, y, batch_size=16, epochs=1)
    assert second is not first and first.epochs == kept  # an earlier History does not change
    assert first.epoch == [0, 1] and second.epoch == [2]  # Keras' indices, from 0
    assert [r["epoch"] for r in second.epochs] == [3] and len(second.steps) == 4
    assert len(trainer.history.epochs) == 3 and len(trainer.history.steps) == 12
    assert trainer.fit(x, y, epochs=5, initial_epoch=3).epoch == [3, 4]
    empty = trainer.fit(x, y, epochs=0)  # Keras: trains nothing, an empty History
    assert empty.epochs == [] and empty.history == {} and trainer.epoch == 5


def test_verbose_auto_and_the_keras_batch_size_defaults(capsys):
    x, y = _separable(70)
    sizes = []

    class Sizes(nn.Module):
        def forward(self, inputs):
            sizes.append(len(inputs))
            return inputs

    trainer = _trainer(verbose="auto")  # Keras' default: 1
    trainer.model = nn.Sequential(Sizes(), trainer.model)
    assert trainer.verbose == 1
    trainer.fit(x, y, shuffle=False)  # Keras' defaults: batch_size 32, one epoch
    assert sizes == [32, 32, 6] and trainer.epoch == 1
    sizes.clear()
    trainer.evaluate(x, y, verbose="auto")
    assert sizes == [32, 32, 6]
    sizes.clear()
    outputs = trainer.predict(minidl.tensor(x), batch_size=None)  # Keras' None: 32
    assert sizes == [32, 32, 6] and type(outputs) is np.ndarray and outputs.dtype == np.float32
    lines = _lines(capsys.readouterr().out)
    assert [line.split(" - ")[0] for line in lines] == ["epoch 1/1", "evaluate", "predict"]
    with pytest.raises(ValueError, match=r"Trainer: verbose must be 0, 1, 2 or 'auto', got 'Auto'"):
        _trainer(verbose="Auto")


def test_lists_of_numbers_are_arrays_as_torch_tensor_takes_them():
    torch = pytest.importorskip("torch")
    x, y = _separable(64)
    assert torch.tensor(x.tolist()).dtype == torch.float32  # Python floats: float32
    as_arrays = _trainer(verbose=0)
    as_arrays.fit(x, y, batch_size=16, epochs=2, validation_data=(x, y))
    as_lists = _trainer(verbose=0)
    as_lists.fit(x.tolist(), y.tolist(), batch_size=16, epochs=2, validation_data=(x.tolist(), y))
    assert _losses(as_lists) == _losses(as_arrays)
    assert as_lists.history.history["val_loss"] == as_arrays.history.history["val_loss"]
    np.testing.assert_array_equal(as_lists.predict(x.tolist()), as_arrays.predict(x))
    assert as_lists.evaluate(x.tolist(), y.tolist()) == as_arrays.evaluate(x, y)
    with pytest.raises(ValueError, match=r"Trainer\.fit: x is a list of lists of different"):
        as_lists.fit([[0.0, 1.0], [2.0]], [0, 1])
    with pytest.raises(TypeError, match=r"Trainer\.fit: expected x of numbers .* dtype <U1"):
        as_lists.fit(np.array([["a", "b"]] * 64), y)


def test_float_arrays_are_cast_to_the_model_dtype_as_keras_does_tensors_are_not():
    x, y = _separable(64)
    trainer = _trainer(verbose=0)
    x64 = x.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = trainer.fit(x64, y, epochs=1, validation_data=(x64, y))
    assert len(history.epochs) == 1 and np.isfinite(history.epochs[0]["val_loss"])
    assert all(p.dtype == np.float32 for p in trainer.model.parameters())
    assert trainer.predict(x64).dtype == np.float32  # cast, as Keras casts
    np.testing.assert_array_equal(trainer.predict(x64), trainer.predict(x))
    assert trainer.evaluate(x64, y) == trainer.evaluate(x, y)
    # a float64 model takes float32 arrays as float64
    double = _trainer(verbose=0)
    double.model.double()
    assert double.predict(x).dtype == np.float64
    # Tensors are passed as they are, as in PyTorch, whose layers refuse mixed dtypes
    with pytest.raises(RuntimeError, match=r"Dense: expected the input and weight to have the "):
        trainer.predict(minidl.from_numpy(x64))


def test_keras_labels_with_the_keras_loss_name_and_torchs_rule_with_cross_entropy():
    torch = pytest.importorskip("torch")
    x, y = _separable(64)
    reference = _trainer(verbose=0)
    reference.fit(x, y, batch_size=16, epochs=2)
    for labels in (y[:, None], y.astype(np.float32), y.astype(np.float64)[:, None]):
        keras = _trainer(verbose=0)
        keras.fit(x, labels, batch_size=16, epochs=2, validation_data=(x, labels))
        assert _losses(keras) == _losses(reference)
        assert keras.evaluate(x, labels) == reference.evaluate(x, y)
    with pytest.raises(ValueError, match=r"not whole numbers .* use loss='cross_entropy'"):
        _trainer(verbose=0).fit(x, y + 0.5)
    # "cross_entropy" is torch's: (N, 1) targets raise, as torch's cross_entropy does
    with pytest.raises(RuntimeError):
        torch.nn.functional.cross_entropy(torch.zeros(4, 2), torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(RuntimeError, match=r"expected a target of shape \(16,\)"):
        _trainer(loss="cross_entropy", verbose=0).fit(x, y[:, None], batch_size=16)
    # one-hot targets are class probabilities (torch), and accuracy reads their largest entry
    one_hot = np.eye(2, dtype=np.float32)[y]
    soft = _trainer(loss="cross_entropy", metrics=["accuracy", "top_k_accuracy"], verbose=0)
    soft.fit(x, one_hot, batch_size=16, epochs=2, shuffle=False)
    outputs = soft.predict(x)
    results = soft.evaluate(x, one_hot)
    expected = torch.nn.functional.cross_entropy(
        torch.from_numpy(outputs), torch.from_numpy(one_hot)
    )
    assert results["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert results["accuracy"] == float(np.mean(outputs.argmax(1) == y))
    assert results["top_k_accuracy"] == 1.0


def test_degenerate_data_is_refused_before_training():
    x, y = _separable(64)
    trainer = _trainer(verbose=0)
    with pytest.raises(ValueError, match=r"Trainer\.fit: x holds no samples \(shape \(0, 2\)\)"):
        trainer.fit(x[:0], y[:0])
    with pytest.raises(ValueError, match=r"validation_data's x_val holds no samples"):
        trainer.fit(x, y, validation_data=(x[:0], y[:0]))
    with pytest.raises(ValueError, match=r"leaves 1 for validation and 0 for training"):
        trainer.fit(x[:1], y[:1], validation_split=0.5)
    for size in (0, -1, 2.0, True, "32"):
        with pytest.raises(ValueError, match=r"Trainer\.fit: batch_size must be a positive"):
            trainer.fit(x, y, batch_size=size)
    with pytest.raises(TypeError, match=r"shuffle must be True or False, got 'batch' \(Keras'"):
        trainer.fit(x, y, shuffle="batch")
    with pytest.raises(ValueError, match=r"a tuple of 3 \(sample weights are not supported\)"):
        trainer.fit(x, y, validation_data=(x, y, np.ones(64)))
    with pytest.raises(ValueError, match=r"validation_data as \(x_val, y_val\) .* a list of 3"):
        trainer.fit(x, y, validation_data=[x, y, y])
    assert trainer.epoch == 0 and trainer.global_step == 0
    trainer.fit(x, y, batch_size=10**6)  # one batch of all 64 samples
    assert trainer.global_step == 1
    listed = _trainer(verbose=0)  # [x_val, y_val], a list, is Keras' pair, not batches
    listed.fit(x, y, epochs=1, validation_data=[x[:16], y[:16]])
    assert listed.history.epochs[0]["val_loss"] == listed.evaluate(x[:16], y[:16])["loss"]
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(minidl.train.NonFiniteLossError, match=r"loss is nan .* check the inputs"):
        trainer.fit(bad, y, shuffle=False)


def test_several_parameter_groups_and_epoch_schedules_on_the_epoch_line(capsys):
    x, y = _separable(64)
    minidl.manual_seed(0)
    first, second = nn.Dense(2, 16), nn.Dense(16, 2)
    model = nn.Sequential(first, nn.ReLU(), second)
    groups = [{"params": first.parameters(), "lr": 0.1}, {"params": second.parameters()}]
    opt = optim.SGD(groups, lr=0.003)
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    trainer = Trainer(model, opt, loss="cross_entropy", scheduler=scheduler, verbose=2)
    trainer.fit(x, y, epochs=2)
    lines = _lines(capsys.readouterr().out)
    # each epoch shows the rates its batches used; StepLR halves them after the epoch
    assert " - lr [1.0e-01, 3.0e-03] - " in lines[0]
    assert " - lr [5.0e-02, 1.5e-03] - " in lines[1]
    assert trainer.history.history["lr"] == [[0.1, 0.003], [0.05, 0.0015]]
    assert [g["lr"] for g in opt.param_groups] == [0.025, 0.00075]


def test_callbacks_are_silent_at_verbose_0_and_say_why_at_2(capsys):
    x, y = _separable(64)
    for verbose in (0, 2):
        stop = EarlyStopping(monitor="val_loss", patience=0)
        trainer = _trainer(lr=0.5, verbose=verbose, callbacks=[stop])
        trainer.scheduler = optim.lr_scheduler.ReduceLROnPlateau(trainer.optimizer, patience=0)
        trainer.fit(x, y, epochs=20, validation_data=(x, 1 - y))
        assert stop.stopped_epoch is not None
        out = capsys.readouterr().out
        if verbose == 0:
            assert out == ""
            continue
        said = [line for line in _lines(out) if not line.startswith("epoch ")]
        assert said[-1] == (
            f"Epoch {stop.stopped_epoch}: early stopping (val_loss has not improved for 1 "
            f"epoch; best {stop.best:.4g} at epoch {stop.best_epoch})"
        )


_RESUME_SCRIPT = """
import sys
import numpy as np
import minidl
from minidl import nn, optim
from minidl.train import ModelCheckpoint, Trainer

folder, resume = sys.argv[1], sys.argv[2] == "resume"
rng = np.random.default_rng(0)
x = rng.standard_normal((96, 2)).astype(np.float32)
y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
minidl.manual_seed(123 if resume else 0)  # a fresh process: the checkpoint's RNG must win
model = nn.Sequential(nn.Dense(2, 16), nn.BatchNorm(16), nn.ReLU(), nn.Dropout(0.2),
                      nn.Dense(16, 2))
opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
trainer = Trainer(model, opt, loss="cross_entropy", metrics=["accuracy"], verbose=0,
                  callbacks=[ModelCheckpoint(folder + "/ckpt-{epoch}.npz")])
if resume:
    trainer.resume(folder + "/ckpt-2.npz")
trainer.fit(x, y, batch_size=16, epochs=4, validation_split=0.25, shuffle=True)
minidl.save({"model": dict(trainer.model.state_dict()),
             "val_loss": np.array(trainer.history.history["val_loss"])},
            folder + ("/resumed.npz" if resume else "/straight.npz"))
"""


def test_a_checkpoint_from_the_middle_of_a_shuffled_fit_resumes_in_a_new_process(tmp_path):
    """fit(x, y, shuffle=True) checkpointed after epoch 2 of 4, resumed by another Python
    process: the same bits as the run that went on."""
    script = tmp_path / "run.py"
    script.write_text(_RESUME_SCRIPT)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for mode in ("straight", "resume"):
        subprocess.run(
            [sys.executable, str(script), str(tmp_path), mode], check=True, env=environment
        )
    straight = minidl.load(tmp_path / "straight.npz")
    resumed = minidl.load(tmp_path / "resumed.npz")
    assert straight["val_loss"].tobytes() == resumed["val_loss"].tobytes()
    assert len(straight["val_loss"]) == 4
    for name, value in straight["model"].items():
        assert value.tobytes() == resumed["model"][name].tobytes(), name
