"""minidl.distributed, DistributedDataParallel, SyncBatchNorm, DistributedSampler and the
Trainer under MPI.

The multi-process tests launch ``mpiexec -n 2`` (or 3) on the scripts in
tests/mpi_scripts, with a timeout (a hung run fails instead of hanging), and skip
where mpi4py or mpiexec is missing (``pip install "minidl[distributed]"``)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minidl
import minidl.distributed as dist
from minidl import nn

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "mpi_scripts"
sys.path.insert(0, str(SCRIPTS))
import common  # noqa: E402  (the scripts' shared model and data)


def _mpiexec():
    # the venv's own (pip install mpich puts it beside python), else one on PATH
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _needs_mpi():
    if not dist.is_available():
        pytest.skip('mpi4py is not installed (python -m pip install "minidl[distributed]")')
    if _mpiexec() is None:
        pytest.skip('mpiexec is not installed (python -m pip install "minidl[distributed]")')


def run_mpi(ranks, script, *args, timeout=120):
    """Run ``mpiexec -n ranks python script args`` with this checkout's minidl on one kernel
    thread per rank; returns (exit code, stdout, stderr, seconds). A run past ``timeout``
    is killed, with every process it started, and fails the test."""
    _needs_mpi()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    command = [_mpiexec(), "-n", str(ranks), sys.executable, str(SCRIPTS / script), *args]
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=SCRIPTS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"{' '.join(command)} hung for {timeout} s:\n{out}\n{err}")
    return process.returncode, out, err, time.monotonic() - start


def run_mpi_ok(ranks, script, *args, timeout=120):
    code, out, err, _ = run_mpi(ranks, script, *args, timeout=timeout)
    assert code == 0, f"{script} {args} exited with {code}:\n{out}\n{err}"
    return out


def _assert_states_close(ours, expected, tolerance, what):
    assert list(ours) == list(expected) or set(ours) >= set(expected), what
    for key, value in expected.items():
        difference = float(np.max(np.abs(np.asarray(ours[key], np.float64) - value), initial=0))
        assert difference <= tolerance, f"{what}: {key} differs by {difference:.3g}"


# ---------------------------------------------------------------- without MPI


def test_minidl_works_without_mpi4py_and_names_the_extra():
    code = (
        "import sys; sys.modules['mpi4py'] = None\n"
        "import minidl, minidl.distributed as dist\n"
        "from minidl import nn\n"
        "assert not dist.is_available() and not dist.is_initialized()\n"
        "bn = nn.SyncBatchNorm(2); bn(minidl.randn(4, 2))\n"
        "try:\n"
        "    dist.init()\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert 'pip install "minidl[distributed]"' in result.stdout, result.stdout


def test_outside_init_the_process_is_the_main_one_and_queries_say_what_is_missing():
    assert dist.is_main_process() and not dist.is_initialized()
    for query in (dist.get_rank, dist.get_world_size, dist.barrier):
        with pytest.raises(RuntimeError, match=r"call minidl.distributed.init\(\) first"):
            query()
    with pytest.raises(RuntimeError, match=r"init\(\) first"):
        nn.parallel.DistributedDataParallel(nn.Dense(2, 2))
    assert dist.DistributedDataParallel is nn.parallel.DistributedDataParallel


@pytest.mark.parametrize("size", [1, 5, 10, 11, 12, 13])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_indices_are_torchs(torch, size, replicas, drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for rank in range(replicas):
        ours = minidl.data.DistributedSampler(
            range(size), replicas, rank, shuffle=False, drop_last=drop_last
        )
        theirs = TorchSampler(range(size), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs), (size, replicas, rank, drop_last)
        assert len(ours) == len(theirs)


def test_distributed_sampler_shuffles_one_permutation_per_epoch_across_ranks():
    def shares(epoch, seed=7):
        samplers = [minidl.data.DistributedSampler(range(10), 3, r, seed=seed) for r in range(3)]
        for sampler in samplers:
            sampler.set_epoch(epoch)
        return [list(s) for s in samplers]

    first = shares(0)
    assert set().union(*first) == set(range(10))  # every sample, padded with 2 repeats
    assert sum(len(s) for s in first) == 12 and {len(s) for s in first} == {4}
    assert shares(0) == first and shares(1) != first and shares(0, seed=8) != first
    with pytest.raises(
        ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"
    ):
        minidl.data.DistributedSampler(range(4), 3, 3)


def test_dataloader_takes_a_sampler():
    data = minidl.data.ArrayDataset(np.arange(10.0), np.arange(10))
    sampler = minidl.data.DistributedSampler(data, 2, 1, shuffle=False)
    loader = minidl.data.DataLoader(data, batch_size=2, sampler=sampler)
    assert [y.tolist() for _, y in loader] == [[1, 3], [5, 7], [9]] and len(loader) == 3
    assert [y.tolist() for _, y in minidl.data.DataLoader(data, 4, sampler=[9, 0, 4])] == [
        [9, 0, 4]
    ]
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        minidl.data.DataLoader(data, sampler=sampler, shuffle=True)


def _twin_layers(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = 5.0 + 3.0 * rng.standard_normal(shape)
    layers = [cls(shape[1]).double() for cls in (nn.BatchNorm, nn.SyncBatchNorm)]
    for layer in layers:
        layer.weight.numpy()[...] = np.linspace(0.5, 1.5, shape[1])
        layer.bias.numpy()[...] = np.linspace(-1, 1, shape[1])
    return x, layers


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 4, 4)])
def test_sync_batchnorm_in_one_process_is_batchnorm_exactly(shape):
    x, layers = _twin_layers(shape)
    results = []
    for layer in layers:
        for mode in (True, True, False):
            layer.train(mode)
            inputs = minidl.tensor(x, requires_grad=True)
            y = layer(inputs)
            (y * y).sum().backward()
        state = layer.state_dict().values()
        results.append([y.numpy(), inputs.grad.numpy(), layer.weight.grad.numpy(), *state])
    for ours, expected in zip(*results):
        np.testing.assert_array_equal(ours, expected)


def test_convert_sync_batchnorm_keeps_parameters_buffers_and_mode():
    model = nn.Sequential(nn.Conv2D(1, 3, 3), nn.BatchNorm2D(3, momentum=0.3), nn.ReLU())
    model(minidl.randn(4, 1, 5, 5))
    model.eval()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    weight = model[1].weight
    optimizer = minidl.optim.SGD(model.parameters(), lr=0.1)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model and type(model[1]) is nn.SyncBatchNorm
    layer = model[1]
    assert layer.weight is weight and layer.momentum == 0.3 and not layer.training
    assert optimizer.param_groups[0]["params"][2] is layer.weight
    _assert_states_close(model.state_dict(), before, 0.0, "converted state")
    alone = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1D(4, affine=False))
    assert type(alone) is nn.SyncBatchNorm and alone.weight is None


def test_sync_batch_norm_gradcheck_in_a_one_process_world(monkeypatch):
    # the synchronized path itself (gather, merge, all-reduce) in a world of one process;
    # the process group is put back as it was afterwards
    _needs_mpi()
    monkeypatch.setattr(dist, "_group", None)
    dist.init()
    rng = np.random.default_rng(3)
    x = minidl.tensor(2.0 + rng.standard_normal((4, 3, 5)), requires_grad=True)
    weight = minidl.tensor(rng.uniform(0.5, 1.5, 3), requires_grad=True)
    bias = minidl.tensor(rng.standard_normal(3), requires_grad=True)

    def sync(x, weight, bias):
        return nn.functional._batch_norm(
            x, None, None, weight, bias, True, 0.1, 1e-5, None, synchronized_as="gradcheck"
        )

    assert minidl.gradcheck(sync, (x, weight, bias))
    expected = nn.functional.batch_norm(x, None, None, weight, bias, training=True)
    np.testing.assert_allclose(sync(x, weight, bias).numpy(), expected.numpy(), rtol=1e-14)


# ---------------------------------------------------------------- under mpiexec


def test_collectives_on_three_ranks():
    out = run_mpi_ok(3, "mpi_collectives.py")
    # the ranks share one pipe: their lines may interleave, so count the messages
    for r in range(3):
        assert out.count(f"rank {r}: collectives ok") == 1, out


def test_ddp_averages_in_buckets_during_backward_and_keeps_state_dicts_plain():
    out = run_mpi_ok(2, "mpi_ddp.py")
    assert "rank 0: ddp ok" in out and "rank 1: ddp ok" in out


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [2, 3])
def test_ddp_with_sync_batchnorm_equals_one_process_on_the_whole_batch(tmp_path, ranks):
    # 2 ranks x 64 (and 43/43/42 on 3 ranks) against one process on 128, float64, 5 SGD steps
    run_mpi_ok(ranks, "mpi_sync_bn.py", str(tmp_path / "sync.npz"))
    result = dict(np.load(tmp_path / "sync.npz"))
    assert result["buckets"] > 1 and result["spread"] < 1e-12
    losses, state = common.train_single_process()
    np.testing.assert_allclose(result["losses"], losses, rtol=0, atol=1e-10)
    _assert_states_close(result, state, 1e-10, f"{ranks} ranks with SyncBatchNorm")
    # the control: plain BatchNorm normalizes each shard by itself and drifts away
    run_mpi_ok(ranks, "mpi_sync_bn.py", str(tmp_path / "plain.npz"), "plain")
    plain = np.load(tmp_path / "plain.npz")
    assert np.abs(plain["1.running_var"] - state["1.running_var"]).max() > 1e-6


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_ddp_matches_torch_ddp_over_gloo(tmp_path, torch):
    run_mpi_ok(2, "mpi_ddp_parity.py", "minidl", str(tmp_path / "minidl"))
    run_mpi_ok(2, "mpi_ddp_parity.py", "torch", str(tmp_path / "torch"), str(_free_port()))
    for rank in range(2):
        ours = dict(np.load(tmp_path / f"minidl-{rank}.npz"))
        theirs = dict(np.load(tmp_path / f"torch-{rank}.npz"))
        np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=0, atol=1e-6)
        _assert_states_close(ours, theirs, 1e-6, f"rank {rank} against torch DDP")


def test_an_exception_on_rank_1_ends_every_rank_with_the_message_once():
    code, out, err, seconds = run_mpi(2, "mpi_fault.py", "raise", timeout=60)
    assert code != 0, (out, err)
    assert seconds < 20, f"the ranks took {seconds:.1f} s to end"
    assert err.count("RuntimeError: rank 1 failed on purpose") == 1, err
    assert "rank 1 of 2 failed; aborting every rank" in err


def test_a_rank_missing_a_collective_gives_a_clear_error_within_the_timeout():
    code, out, err, seconds = run_mpi(2, "mpi_fault.py", "timeout", "2", timeout=60)
    assert code != 0, (out, err)
    assert seconds < 20, f"the ranks took {seconds:.1f} s to end (timeout 2 s)"
    assert "DistributedTimeoutError: all_reduce: rank 0 of 2 waited" in err, err
    assert "for the other ranks to join" in err


def _single_process_trainer(epochs, resume=None, save=None):
    from minidl.data import ArrayDataset, DataLoader

    x, y, val_x, val_y = common.trainer_data()
    trainer = common.make_trainer(common.minidl_model())
    trainer.verbose = 0
    if resume is not None:
        trainer.resume(resume)
    val = DataLoader(ArrayDataset(val_x, val_y), batch_size=32)
    trainer.fit(DataLoader(ArrayDataset(x, y), batch_size=128), epochs=epochs, val_data=val)
    if save is not None:
        trainer.save_checkpoint(save)
    return trainer, trainer.evaluate(val)


def _compare_histories(ours, expected):
    assert len(ours) == len(expected)
    for got, want in zip(ours, expected):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert abs(got[key] - want[key]) < 1e-10, (key, got[key], want[key])


@pytest.mark.slow
def test_trainer_under_mpi_checkpoints_resume_both_ways(tmp_path):
    # distributed (2 ranks x 64, SyncBatchNorm) against one process on 128
    out = run_mpi_ok(2, "mpi_trainer.py", "fit", str(tmp_path), "2")
    assert out.count("epoch 1/2 - loss") == 1 and out.count("epoch 2/2 - loss") == 1, out
    report = json.loads((tmp_path / "dist.json").read_text())
    single, evaluation = _single_process_trainer(2)
    _compare_histories(report["history"]["epochs"], single.history.epochs)
    for key, value in evaluation.items():  # sharded validation == one process's
        assert abs(report["evaluate"][key] - value) < 1e-12, key
    _assert_states_close(
        dict(np.load(tmp_path / "dist.npz")), single.model.state_dict(), 1e-10, "fit"
    )
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 3  # header + 2 epochs
    # rank 0's checkpoint of epoch 1 resumes in one process
    resumed, _ = _single_process_trainer(2, resume=tmp_path / "ckpt-1.npz")
    _assert_states_close(resumed.model.state_dict(), single.model.state_dict(), 1e-10, "resumed")
    assert resumed.global_step == single.global_step == 4
    # and a single process's checkpoint resumes under mpiexec
    _single_process_trainer(1, save=tmp_path / "single.npz")
    for stale in ("dist.npz", "dist.json"):
        (tmp_path / stale).unlink()
    run_mpi_ok(2, "mpi_trainer.py", "resume", str(tmp_path), "2")
    report = json.loads((tmp_path / "dist.json").read_text())
    _compare_histories(report["history"]["epochs"], single.history.epochs)
    _assert_states_close(
        dict(np.load(tmp_path / "dist.npz")), single.model.state_dict(), 1e-10, "resume"
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode, step", [("nan", 1), ("stop", 3)])
def test_every_rank_stops_at_the_same_step(tmp_path, mode, step):
    # a NaN in rank 1's batch, or a callback that stops rank 1 alone, stops both ranks
    run_mpi_ok(2, "mpi_trainer.py", mode, str(tmp_path))
    report = json.loads((tmp_path / "dist.json").read_text())
    assert report["steps"] == [step, step], report["steps"]
    if mode == "nan":
        assert report["error"].startswith("the loss is nan at epoch 1, step 1"), report["error"]
