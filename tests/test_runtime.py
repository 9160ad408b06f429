"""minidl.runtime: thread counts, the process-wide settings and their opt-outs, fork safety."""

import json
import multiprocessing
import os
import subprocess
import sys

import numpy as np
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


def _default_in_subprocess(env_threads, name="OMP_NUM_THREADS"):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("MINIDL_NUM_THREADS", None)
    if env_threads is not None:
        env[name] = env_threads
    code = "import minidl; print(minidl.get_num_threads())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return int(result.stdout.strip())


def test_default_respects_omp_num_threads():
    assert _default_in_subprocess("1") == 1
    assert _default_in_subprocess("3,2") == 3


def test_default_is_the_physical_cores_available():
    assert _default_in_subprocess(None) == minidl.runtime.physical_cores()
    assert 1 <= minidl.runtime.physical_cores() <= len(os.sched_getaffinity(0))


def _fake_sys(root, topology):
    """A /sys/devices/system/cpu tree: {cpu: (package, core)}; None leaves topology out."""
    for cpu, place in topology.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        if place is not None:
            (folder / "physical_package_id").write_text(f"{place[0]}\n")
            (folder / "core_id").write_text(f"{place[1]}\n")
    return root


# 2 packages x 2 cores x 2 SMT siblings, numbered as Linux does: siblings 4 apart.
_TWO_SOCKETS = {cpu: (cpu // 2 % 2, cpu % 2) for cpu in range(8)}


def test_physical_cores_counts_smt_siblings_once(tmp_path):
    root = _fake_sys(tmp_path, _TWO_SOCKETS)
    assert minidl.runtime.physical_cores(range(8), root) == 4
    assert minidl.runtime.physical_cores({0, 4}, root) == 1  # one core's two siblings
    assert minidl.runtime.physical_cores({0, 1}, root) == 2  # two cores of package 0
    assert minidl.runtime.physical_cores({0, 1, 2, 5}, root) == 3


def test_physical_cores_falls_back_to_the_logical_count(tmp_path):
    assert minidl.runtime.physical_cores({0, 1, 2}, tmp_path / "missing") == 3
    root = _fake_sys(tmp_path / "partial", {0: (0, 0), 1: None})
    assert minidl.runtime.physical_cores({0, 1}, root) == 2
    (root / "cpu0" / "topology" / "core_id").write_text("not a number\n")
    assert minidl.runtime.physical_cores({0}, root) == 1


def test_default_counts_physical_cores_of_the_affinity_mask(tmp_path, monkeypatch):
    monkeypatch.setattr(minidl.runtime, "SYS_CPU_ROOT", str(_fake_sys(tmp_path, _TWO_SOCKETS)))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 4, 1}, raising=False)
    monkeypatch.delenv("MINIDL_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert minidl.runtime.default_num_threads() == 2
    threads = minidl.runtime.config()["threads"]
    assert threads["default"] == 2
    assert threads["default from"] == "physical cores available (2 of 3 logical CPUs allowed)"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert minidl.runtime.default_num_threads() == 3
    assert minidl.runtime.config()["threads"]["default from"] == "OMP_NUM_THREADS"
    monkeypatch.setenv("MINIDL_NUM_THREADS", "1")
    assert minidl.runtime.config()["threads"]["default from"] == "MINIDL_NUM_THREADS"


def test_minidl_num_threads_comes_before_omp_num_threads():
    assert _default_in_subprocess("1", name="MINIDL_NUM_THREADS") == 1


# ---------------------------------------------------------------- no surprises at import

# Run in a fresh interpreter: records the environment, every mallopt call minidl
# makes through ctypes, numpy's memory handler and matplotlib's backend, around importing
# every module and public name of minidl and drawing a History plot. Prints a JSON report.
_IMPORT_EVERYTHING = r"""
import ctypes, importlib, json, os, pkgutil, sys, tempfile

calls = []
real_cdll = ctypes.CDLL


class Recording:
    def __init__(self, lib):
        self._lib = lib

    def __getattr__(self, name):
        function = getattr(self._lib, name)
        if name != "mallopt":
            return function

        class Mallopt:
            argtypes = None

            def __call__(self, *args):
                calls.append(list(args))
                return function(*args)

        return Mallopt()


ctypes.CDLL = lambda *a, **k: Recording(real_cdll(*a, **k))
have_matplotlib = importlib.util.find_spec("matplotlib") is not None
if have_matplotlib:
    import matplotlib

    matplotlib.use("svg")  # stands for a user's interactive choice
before = dict(os.environ)
import minidl

for info in pkgutil.walk_packages(minidl.__path__, "minidl."):
    module = importlib.import_module(info.name)
    for name in getattr(module, "__all__", []):
        getattr(module, name)
after_import = dict(os.environ)
if have_matplotlib:
    history = minidl.train.History([{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}])
    history.plot(os.path.join(tempfile.mkdtemp(), "curves.png"))
changed = sorted(k for k in set(before) | set(after_import) if before.get(k) != after_import.get(k))
try:
    from numpy._core.multiarray import get_handler_name
except ImportError:
    from numpy.core.multiarray import get_handler_name
print(json.dumps({
    "changed": {k: after_import.get(k) for k in changed},
    "handler": get_handler_name(),
    "mallopt": calls,
    "backend": matplotlib.get_backend() if have_matplotlib else "svg",
    "final_environ_equal": dict(os.environ) == after_import,
}))
"""


def _import_everything(**settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIDL_")}
    for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT"):
        env.pop(name, None)
    env.update(settings)
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc heap settings")
def test_importing_everything_changes_only_what_runtime_documents():
    report = _import_everything()
    assert report["changed"] == {"GOMP_SPINCOUNT": "10000", "OPENBLAS_THREAD_TIMEOUT": "16"}
    assert report["mallopt"] == [[-3, 32 * 1024 * 1024], [-1, 512 * 1024 * 1024]]
    assert report["handler"] == "minidl_block_cache"
    assert report["backend"] == "svg", "History.plot switched matplotlib's backend"
    assert report["final_environ_equal"], "plotting changed the environment"


def test_each_setting_has_its_opt_out():
    report = _import_everything(
        MINIDL_SHORT_SPIN="0",
        MINIDL_KEEP_FREED_MEMORY="0",
        MINIDL_CACHE_LARGE_BLOCKS="0",
        MINIDL_FORK_SINGLE_THREAD="0",
    )
    assert report["changed"] == {}
    assert report["mallopt"] == []
    assert report["handler"] == "default_allocator"
    assert report["backend"] == "svg"


def test_values_the_user_set_are_kept():
    report = _import_everything(GOMP_SPINCOUNT="5", OPENBLAS_THREAD_TIMEOUT="3")
    assert report["changed"] == {}
    # an explicit wait policy is a choice about spinning too: no spin count is added to it
    assert "GOMP_SPINCOUNT" not in _import_everything(OMP_WAIT_POLICY="active")["changed"]


def test_tensor_methods_are_defined_in_the_class_body():
    import inspect

    module = sys.modules["minidl.tensor"]  # minidl.tensor is the factory function
    source = inspect.getsource(module)
    outside = []
    for name, value in vars(minidl.Tensor).items():
        function = value.fget if isinstance(value, property) else value
        code = getattr(function, "__code__", None)
        if code is None:
            continue
        if code.co_filename != module.__file__ or f"def {function.__name__}(" not in source:
            outside.append(name)
    assert not outside, f"Tensor methods defined outside minidl/tensor.py: {outside}"
    assert len([n for n, v in vars(minidl.Tensor).items() if callable(v)]) > 40


def test_show_config_reports_the_build_threads_and_settings(capsys):
    minidl.show_config()
    printed = capsys.readouterr().out
    config = minidl.runtime.config()
    assert printed.startswith(f"minidl {minidl.__version__}")
    for needle in (
        "openmp:",
        "compiler flags:",
        "kernels:",
        "default from:",
        "after fork:",
        "GOMP_SPINCOUNT",
    ):
        assert needle in printed, f"show_config does not print {needle!r}"
    assert config["build"]["openmp"] == minidl._ops.openmp_enabled()
    assert "-O" in config["build"]["compiler flags"]
    assert config["threads"]["kernels"] == minidl.get_num_threads()


# ---------------------------------------------------------------- fork safety


def _batch_norm_sum(seed):
    x = np.random.default_rng(seed).standard_normal((32, 16, 28, 28), dtype=np.float32)
    y, _, _ = minidl._ops.batchnorm_forward_train(x, None, None, None, None)
    return float(np.abs(y).sum(dtype=np.float64))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_pool_runs_kernels_after_the_parent_ran_threaded_ones():
    before = minidl.get_num_threads()
    try:
        minidl.set_num_threads(2)
        expected = [_batch_norm_sum(seed) for seed in range(4)]  # threaded, in the parent
        context = multiprocessing.get_context("fork")
        with context.Pool(2) as pool:
            result = pool.map_async(_batch_norm_sum, range(4))
            got = result.get(timeout=60)  # a hang in libgomp fails here instead of blocking
    finally:
        minidl.set_num_threads(before)
    assert got == pytest.approx(expected, rel=1e-12)
