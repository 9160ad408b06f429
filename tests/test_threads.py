"""minidl.set_num_threads / get_num_threads."""

import os
import subprocess
import sys

import pytest

import minidl


def test_set_and_get():
    before = minidl.get_num_threads()
    try:
        minidl.set_num_threads(1)
        assert minidl.get_num_threads() == 1
        minidl.set_num_threads(2)
        assert minidl.get_num_threads() == 2
    finally:
        minidl.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_rejects_non_positive_or_non_integer(bad):
    with pytest.raises(ValueError, match="set_num_threads: expected a positive integer"):
        minidl.set_num_threads(bad)


def test_limits_numpy_blas_through_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = minidl.get_num_threads()
    try:
        minidl.set_num_threads(1)
        blas = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
        assert blas, "numpy's BLAS was not found by threadpoolctl"
        assert all(info["num_threads"] == 1 for info in blas)
    finally:
        minidl.set_num_threads(before)


def _default_in_subprocess(env_threads):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if env_threads is not None:
        env["OMP_NUM_THREADS"] = env_threads
    code = "import minidl; print(minidl.get_num_threads())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return int(result.stdout.strip())


def test_default_respects_omp_num_threads():
    assert _default_in_subprocess("1") == 1
    assert _default_in_subprocess("3,2") == 3


def test_default_is_the_cores_available():
    assert _default_in_subprocess(None) == len(os.sched_getaffinity(0))
