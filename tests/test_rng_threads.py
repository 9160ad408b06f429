"""The RNG and the DataLoader under threads: a generator per thread, prefetching that gives
the batches of a loop without it, and no thread left behind by a loop that exits early."""

import gc
import os
import threading

import numpy as np
import pytest

import minidl
from minidl import nn, optim
from minidl.data import ArrayDataset, DataLoader
from minidl.train import Callback, Trainer


def _dataset(n=60):
    generator = np.random.default_rng(3)
    x = generator.normal(size=(n, 5)).astype(np.float32)
    return ArrayDataset(x, (x[:, 0] > 0).astype(np.int64))


def _jitter(batch, rng):
    return batch + rng.normal(0.0, 0.1, batch.shape).astype(batch.dtype)


def _epochs(loader, count=3):
    return [[(x.numpy(), y.numpy()) for x, y in loader] for _ in range(count)]


@pytest.mark.parametrize("seed", [None, 4])
def test_prefetch_on_and_off_give_identical_batches(seed):
    runs = []
    for prefetch in (False, True):
        minidl.manual_seed(8)
        loader = DataLoader(
            _dataset(), batch_size=7, shuffle=True, seed=seed, transform=_jitter, prefetch=prefetch
        )
        batches = []
        for epoch in _epochs(loader):
            for x, y in epoch:
                batches.append((x, y))
                minidl.rand(3)  # the consumer draws too (dropout does) while the thread prepares
        runs.append(batches)
    assert len(runs[0]) == len(runs[1]) == 27
    for number, ((x0, y0), (x1, y1)) in enumerate(zip(*runs)):
        assert x0.tobytes() == x1.tobytes() and y0.tobytes() == y1.tobytes(), f"batch {number}"


def test_a_loader_state_dict_replays_the_next_epochs():
    loader = DataLoader(_dataset(), batch_size=7, shuffle=True, seed=2, transform=_jitter)
    _epochs(loader, 1)
    state = loader.state_dict()
    expected = [batch for epoch in _epochs(loader, 2) for batch in epoch]
    other = DataLoader(_dataset(), batch_size=7, shuffle=True, seed=99, transform=_jitter)
    other.load_state_dict(state)
    replayed = [batch for epoch in _epochs(other, 2) for batch in epoch]
    assert len(replayed) == len(expected) == 18
    for a, b in zip(replayed, expected):
        assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    with pytest.raises(ValueError, match=r"DataLoader\.load_state_dict: expected the state"):
        other.load_state_dict({"generator": {"bit_generator": "PCG64", "state": "x"}})
    with pytest.raises(ValueError, match="this loader has none"):
        DataLoader(_dataset()).load_state_dict(state)


class _StopAfterOneStep(Callback):
    def on_batch_end(self, step, logs=None):
        self.trainer.stop_training = True


def test_early_exits_from_a_prefetching_loop_leave_no_thread():
    loader = DataLoader(_dataset(200), batch_size=4, shuffle=True, seed=0, prefetch=True)
    gc.collect()
    before = threading.active_count()
    for _ in range(100):
        for _ in loader:
            break
    for _ in range(100):
        with pytest.raises(KeyError):
            for _ in loader:
                raise KeyError("the loop body failed")
    model = nn.Dense(5, 2)
    trainer = Trainer(
        model,
        optim.SGD(model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        callbacks=[_StopAfterOneStep()],
        verbose=0,
    )
    for _ in range(100):
        trainer.epoch = 0
        trainer.fit(loader, epochs=1)
    assert trainer.global_step == 100
    iterator = iter(loader)
    next(iterator)
    iterator.close()  # closed explicitly: the thread is joined at once
    assert threading.active_count() == before, (
        f"{threading.active_count() - before} prefetch threads were left running"
    )
    # an exhausted iterator has stopped its thread too
    assert sum(len(y) for _, y in loader) == 200
    assert threading.active_count() == before


def _train_with_dropout(seed, out, key):
    minidl.manual_seed(seed)
    model = nn.Sequential(nn.Dense(5, 32), nn.ReLU(), nn.Dropout(0.5), nn.Dense(32, 2))
    optimizer = optim.SGD(model.parameters(), lr=0.05)
    x, y = _dataset().arrays
    for _ in range(40):
        loss = nn.CrossEntropyLoss()(model(minidl.tensor(x)), minidl.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        minidl.rand(1)  # and other draws, interleaved with the other thread's
    out[key] = {k: v.copy() for k, v in model.state_dict().items()}


def test_two_threads_training_seeded_models_with_dropout_are_each_reproducible():
    alone = {}
    _train_with_dropout(1, alone, "a")
    _train_with_dropout(2, alone, "b")
    for attempt in range(3):
        together = {}
        threads = [
            threading.Thread(target=_train_with_dropout, args=(seed, together, key))
            for seed, key in ((1, "a"), (2, "b"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for key in "ab":
            for name, value in alone[key].items():
                assert value.tobytes() == together[key][name].tobytes(), (
                    f"model {key}, {name}, attempt {attempt}: a thread's training depended on "
                    "the other's draws"
                )


def test_each_thread_has_its_own_generator_state():
    minidl.manual_seed(5)
    state = minidl.random.get_rng_state()
    seen = {}

    def other():
        minidl.manual_seed(6)
        seen["state"] = minidl.random.get_rng_state()
        minidl.rand(100)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert minidl.random.get_rng_state() == state  # untouched by the other thread
    assert seen["state"] != state
    with pytest.raises(ValueError, match="set_rng_state: expected the state"):
        minidl.random.set_rng_state({"bit_generator": "MT19937"})


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_prefetching_pass_refuses_to_continue_in_a_forked_child():
    loader = DataLoader(_dataset(), batch_size=7, prefetch=True)
    iterator = iter(loader)
    next(iterator)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what the old pass and a new pass do, then leave
        try:
            try:
                next(iterator)
                outcome = "continued"
            except RuntimeError as error:
                outcome = "refused" if "os.fork" in str(error) else f"other: {error}"
            outcome += f" {sum(len(y) for _, y in loader)}"
        finally:
            os.write(write, outcome.encode())
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as handle:
        assert handle.read() == "refused 60"
    iterator.close()


def test_a_pass_that_draws_nothing_leaves_the_generator_alone():
    minidl.manual_seed(3)
    state = minidl.random.get_rng_state()
    _epochs(DataLoader(_dataset(), batch_size=7), 2)
    _epochs(DataLoader(_dataset(), batch_size=7, prefetch=True), 2)
    assert minidl.random.get_rng_state() == state
    _epochs(DataLoader(_dataset(), batch_size=7, shuffle=True), 1)
    assert minidl.random.get_rng_state() != state  # an unseeded shuffle draws its pass's seed


@pytest.mark.parametrize("prefetch", [False, True])
def test_a_pass_left_early_advances_a_seeded_loader_as_a_whole_pass(prefetch):
    whole = DataLoader(_dataset(), batch_size=7, shuffle=True, seed=1, transform=_jitter)
    _epochs(whole, 1)
    left = DataLoader(
        _dataset(), batch_size=7, shuffle=True, seed=1, transform=_jitter, prefetch=prefetch
    )
    for _ in left:
        break
    assert left.state_dict() == whole.state_dict()
    for a, b in zip(_epochs(left, 1)[0], _epochs(whole, 1)[0]):
        assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()


def test_seeding_in_the_main_thread_then_training_in_a_worker_thread_is_reproducible():
    # a PyTorch habit: seed at the top of the script, train in a thread (a GUI, a server);
    # the worker's generator derives from that seed, so two such runs draw the same
    def run():
        minidl.manual_seed(11)
        drawn = {}
        worker = threading.Thread(target=lambda: drawn.update(x=minidl.rand(5).numpy()))
        worker.start()
        worker.join()
        return drawn["x"]

    first, second = run(), run()
    assert first.tobytes() == second.tobytes()
    minidl.manual_seed(11)
    assert first.tobytes() != minidl.rand(5).numpy().tobytes()  # not the main thread's stream
