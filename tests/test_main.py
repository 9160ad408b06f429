"""``python -m minidl`` and ``python -m minidl.bench``."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import minidl
import minidl.bench

PACKAGE = Path(minidl.__file__).parent


def _run(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_python_m_minidl_prints_the_version_and_the_thread_count():
    env = dict(os.environ, MINIDL_NUM_THREADS="1")
    result = _run("-m", "minidl", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"minidl {minidl.__version__}"
    assert "  kernels: 1" in lines
    assert "  default from: MINIDL_NUM_THREADS" in lines
    for needle in ("openmp:", "compiler flags:", "keep freed memory:", "cache large blocks:"):
        assert needle in result.stdout


def test_python_m_minidl_names_the_physical_cores_when_no_variable_is_set():
    env = {
        k: v for k, v in os.environ.items() if k not in ("MINIDL_NUM_THREADS", "OMP_NUM_THREADS")
    }
    result = _run("-m", "minidl", env=env)
    assert result.returncode == 0, result.stderr
    cores = minidl.runtime.physical_cores()
    assert f"  kernels: {cores}" in result.stdout.splitlines()
    assert "  default from: physical cores available (" in result.stdout


def test_bench_in_the_source_checkout_runs_python_m_benchmarks_quick():
    assert minidl.bench.source_checkout() == str(PACKAGE.parent)
    result = _run("-m", "minidl.bench", "--help")  # --help reaches benchmarks' own parser
    assert result.returncode == 0, result.stderr
    assert "--only NAME" in result.stdout and "--write-docs" in result.stdout


def test_bench_outside_a_checkout_says_where_the_benchmarks_are(tmp_path):
    # A copy of the package alone, as pip installs it: no benchmarks/ beside it.
    shutil.copytree(PACKAGE, tmp_path / "minidl", ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = _run("-m", "minidl.bench", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "\n" not in message
    assert "source repository" in message and "python -m benchmarks --quick" in message
