"""Fault suite: a training process killed with SIGKILL at random moments, then resumed in a
fresh process, ends bit for bit where an uninterrupted run ends (weights, optimizer state,
history, RNG, and the save_best_only file), with a seeded prefetching DataLoader, dropout,
EarlyStopping, ModelCheckpoint(save_best_only=True) and a per-step OneCycle schedule.

(Kills during the write of a file itself are tested with minidl.io.)
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import resume_setup as setup

import minidl

SCRIPT = Path(setup.__file__)
ROOT = Path(minidl.__file__).resolve().parent.parent
KILLS = 6
PACE = 0.01  # seconds slept after each step: a run takes about a second, so kills land mid-run


def _environment():
    env = dict(os.environ, PACE=str(PACE), PYTHONPATH=str(ROOT))
    env.pop("MINIDL_NUM_THREADS", None)
    return env


def _run(folder, *flags):
    subprocess.run(
        [sys.executable, str(SCRIPT), str(folder), *flags],
        env=_environment(),
        check=True,
        timeout=120,
    )
    return minidl.load(folder / "result.npz")


@pytest.mark.slow
def test_sigkill_during_fit_then_resume_is_bitwise_the_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    expected = _run(reference)
    expected_best = setup.best_file(reference)
    moments = np.random.default_rng().uniform(0.0, 0.7, KILLS)
    killed_mid_run = 0
    for number, moment in enumerate(moments):
        folder = tmp_path / f"killed-{number}"
        folder.mkdir()
        child = subprocess.Popen([sys.executable, str(SCRIPT), str(folder)], env=_environment())
        try:
            deadline = time.monotonic() + 60
            while not (folder / "last.npz").exists() and child.poll() is None:
                assert time.monotonic() < deadline, "the child wrote no checkpoint in 60 s"
                time.sleep(0.005)
            time.sleep(moment)
            if child.poll() is None:
                killed_mid_run += 1
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait(timeout=60)
        if (folder / "result.npz").exists():
            # it finished first (the kill may still land while it exits, after the atomic
            # rename): its resume trains nothing
            (folder / "result.npz").unlink()
        resumed = _run(folder, "--resume")
        where = f"kill {number} at {moment:.3f} s after the first checkpoint"
        setup.assert_same(resumed, expected, where)
        setup.assert_same(setup.best_file(folder), expected_best, f"best.npz after {where}")
    assert killed_mid_run >= KILLS // 2, f"only {killed_mid_run} of {KILLS} kills hit a live run"
