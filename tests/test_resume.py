"""Resume is exact in every set-up: seeded loaders, callbacks' state, schedules, the RNG;
and a resume that fails leaves the trainer as it was."""

import shutil

import numpy as np
import pytest
import resume_setup as setup

import minidl
from minidl import nn, optim
from minidl.data import ArrayDataset, DataLoader
from minidl.train import CSVLogger, EarlyStopping, LearningRateMonitor, ModelCheckpoint, Trainer


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    trainer = setup.run(str(folder))
    stop = trainer.callbacks[1]
    # the set-up must exercise what it claims: an early stop, and epochs after the best one
    assert stop.stopped_epoch == trainer.epoch < setup.EPOCHS
    assert stop.best_epoch < trainer.epoch
    return folder, setup.result(trainer)


def _interrupted_at(epoch, folder):
    """Train in ``folder`` to the end of ``epoch`` (last.npz is written then), as a run
    killed just after would have left it; then scramble the process's generator."""
    trainer, train, val = setup.make(str(folder))
    trainer.fit(train, epochs=epoch, val_data=val)
    minidl.manual_seed(12345)  # a new process starts from anywhere


@pytest.mark.parametrize("epoch", [1, 3, 5, 6])
def test_resume_after_any_epoch_is_bitwise_the_uninterrupted_run(uninterrupted, tmp_path, epoch):
    folder, expected = uninterrupted
    _interrupted_at(epoch, tmp_path)
    trainer = setup.run(str(tmp_path), resume=True)
    setup.assert_same(setup.result(trainer), expected)
    # best.npz holds the best epoch's model, not a worse one written after the resume
    setup.assert_same(setup.best_file(tmp_path), setup.best_file(folder), "best.npz")
    assert minidl.load(tmp_path / "best.npz")["epoch"] == trainer.callbacks[1].best_epoch


def test_resume_of_an_early_stopped_run_trains_no_further_epoch(uninterrupted, tmp_path):
    folder, expected = uninterrupted
    shutil.copy(folder / "last.npz", tmp_path / "last.npz")
    trainer = setup.run(str(tmp_path), resume=True)
    assert len(trainer.history.epochs) == len(expected["epochs"])
    setup.assert_same(setup.result(trainer), expected)


def test_prefetch_on_and_off_train_the_same_bits(uninterrupted, tmp_path):
    _, expected = uninterrupted
    trainer, train, val = setup.make(str(tmp_path), prefetch=False)
    trainer.fit(train, epochs=setup.EPOCHS, val_data=val)
    setup.assert_same(setup.result(trainer), expected)


def _small(callbacks=(), groups=1):
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Dense(4, 8), nn.ReLU(), nn.Dense(8, 2))
    params = list(model.parameters())
    if groups == 1:
        optimizer = optim.Adam(params, lr=0.01)
    else:
        optimizer = optim.Adam([{"params": params[:2]}, {"params": params[2:]}], lr=0.01)
    return Trainer(model, optimizer, nn.CrossEntropyLoss(), callbacks=list(callbacks), verbose=0)


def _batches():
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    return [(x, (x[:, 0] > 0).astype(np.int64))]


def _snapshot(trainer):
    return {
        "model": {k: v.copy() for k, v in trainer.model.state_dict().items()},
        "optimizer": trainer.optimizer.state_dict(),
        "epoch": trainer.epoch,
        "rng": minidl.random.get_rng_state(),
        "callbacks": [c.state_dict() for c in trainer.callbacks],
    }


def test_a_resume_that_fails_partway_leaves_the_trainer_as_it_was(tmp_path):
    source = _small()
    source.fit(_batches(), epochs=2)
    source.save_checkpoint(tmp_path / "c.npz")
    # the model loads, then the optimizer (two groups here, one saved) refuses
    target = _small(groups=2)
    target.fit(_batches(), epochs=1)
    before = _snapshot(target)
    with pytest.raises(ValueError, match="parameter groups"):
        target.resume(tmp_path / "c.npz")
    setup.assert_same(_snapshot(target), before, "the trainer after a failed resume")


def test_callbacks_are_matched_by_class_and_position(tmp_path):
    first, second = EarlyStopping(monitor="loss", patience=7), EarlyStopping(monitor="loss")
    source = _small([first, LearningRateMonitor(), second])
    source.fit(_batches(), epochs=2)
    first.wait, second.wait = 5, 6  # tell them apart
    source.save_checkpoint(tmp_path / "c.npz")
    added = CSVLogger(tmp_path / "log.csv")
    a, b = EarlyStopping(monitor="loss", patience=7), EarlyStopping(monitor="loss")
    target = _small([added, a, b]).resume(tmp_path / "c.npz")
    assert (a.wait, b.wait) == (5, 6)
    assert added.rows == []  # the writing run had none: it starts fresh
    # saved states without a callback are left out: resuming to evaluate works
    assert _small().resume(tmp_path / "c.npz").epoch == 2
    target.fit(_batches(), epochs=3)
    assert len(added.rows) == 1 and a.wait in (0, 6)
    # a malformed state refuses the resume and leaves the trainer as it was
    state = minidl.load(tmp_path / "c.npz")
    state["callbacks"][0]["state"] = {"wait": 1}
    minidl.save(state, tmp_path / "bad.npz")
    fresh = _small([EarlyStopping(monitor="loss", patience=7)])
    before = _snapshot(fresh)
    with pytest.raises(ValueError, match="expected the keys"):
        fresh.resume(tmp_path / "bad.npz")
    setup.assert_same(_snapshot(fresh), before, "the trainer after a refused resume")


def test_a_seeded_loader_state_needs_a_seeded_loader(tmp_path):
    data = ArrayDataset(*_batches()[0])
    seeded = DataLoader(data, batch_size=4, shuffle=True, seed=1)
    source = _small()
    source.fit(seeded, epochs=1)
    source.save_checkpoint(tmp_path / "c.npz")
    target = _small().resume(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="seeded train DataLoader"):
        target.fit(_batches(), epochs=2)
    target = _small().resume(tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"the train data of the resumed run: .* with a seed"):
        target.fit(DataLoader(data, batch_size=4, shuffle=True), epochs=2)


def test_callback_states_survive_a_checkpoint_file(tmp_path):
    stop = EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    best = ModelCheckpoint(tmp_path / "b.npz", monitor="loss", save_best_only=True)
    log = CSVLogger(tmp_path / "log.csv")
    rates = LearningRateMonitor(interval="step")
    trainer = _small([stop, best, log, rates])
    trainer.fit(_batches(), epochs=3)
    minidl.save([c.state_dict() for c in trainer.callbacks], tmp_path / "states.npz")
    fresh = [
        EarlyStopping(monitor="loss", patience=5, restore_best_weights=True),
        ModelCheckpoint(tmp_path / "b.npz", monitor="loss", save_best_only=True),
        CSVLogger(tmp_path / "log.csv"),
        LearningRateMonitor(interval="step"),
    ]
    for callback, state in zip(fresh, minidl.load(tmp_path / "states.npz")):
        callback.load_state_dict(state)
    for callback, original in zip(fresh, trainer.callbacks):
        setup.assert_same(callback.state_dict(), original.state_dict(), type(callback).__name__)
    assert stop.best_epoch is not None and best.saved and len(log.rows) == 3
    with pytest.raises(ValueError, match=r"EarlyStopping\.load_state_dict: expected the keys"):
        fresh[0].load_state_dict({"wait": 1})
