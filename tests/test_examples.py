"""Each example runs to the end in its quick mode, each as a script in its own process.

Examples that train on MNIST-style data run where ``$MINIDL_DATA`` holds ``mnist/`` or
``fashion-mnist/``, or where Debian's ``dataset-fashion-mnist`` is installed (the
examples fall back to Fashion-MNIST), and skip with the reason otherwise.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def _data_missing():
    """Why the data-set examples cannot run here, or None when they can."""
    root = os.environ.get("MINIDL_DATA")
    if root and any((Path(root) / name).is_dir() for name in ("mnist", "fashion-mnist")):
        return None
    if DEBIAN_FASHION.is_dir():
        return None
    if root:
        where = f"MINIDL_DATA={root} holds neither mnist/ nor fashion-mnist/"
    else:
        where = "MINIDL_DATA is not set (point it at a folder holding mnist/)"
    return f"{where}, and there is no {DEBIAN_FASHION} (apt-get install dataset-fashion-mnist)"


def _run(script, *args, cwd=None, timeout=600):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_train_tiny_quick():
    assert "test accuracy" in _run("train_tiny.py", "--quick")


def test_tiny_example_learns_the_spirals():
    out = _run("train_tiny.py", "--steps", "2000")
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert accuracy >= 0.95, f"test accuracy {accuracy} after 2000 steps, expected >= 0.95"


needs_data = pytest.mark.skipif(_data_missing() is not None, reason=_data_missing() or "")


@needs_data
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_train_mnist_quick_compares_with_and_without_bn(tmp_path, model):
    out = _run(
        "train_mnist.py",
        "--quick",
        "--model",
        model,
        "--verbose",
        "2",
        "--save",
        str(tmp_path / "weights.npz"),
        "--plot",
        str(tmp_path / "curves.png"),
    )
    assert f"{model.upper()} without BatchNorm" in out and f"{model.upper()} with BatchNorm" in out
    assert "steps to target" in out and "Layer (type)" in out
    assert (tmp_path / "weights-bn.npz").exists() and (tmp_path / "weights-plain.npz").exists()


@needs_data
def test_custom_layer_quick():
    out = _run("custom_layer.py", "--quick")
    assert "gradcheck: Swish's gradients match" in out
    assert "identical outputs: True" in out


@needs_data
def test_bn_study_quick_writes_its_report(tmp_path):
    out = _run("bn_study.py", "--quick", "--out", str(tmp_path))
    report = (tmp_path / "bn_study.md").read_text()
    for number in range(1, 6):
        assert f"| {number}. " in report
    assert "claim 5" in out


@needs_data
@pytest.mark.slow
def test_train_mnist_distributed_on_two_ranks(tmp_path):
    # mpiexec -n 2 ... --distributed: each rank reads its shard; rank 0 alone prints and saves
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists() or subprocess.run([sys.executable, "-c", "import mpi4py"]).returncode:
        pytest.skip('needs mpi4py and mpiexec: python -m pip install "minidl[distributed]"')
    root = str(EXAMPLES.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    command = [str(mpiexec), "-n", "2", sys.executable, str(EXAMPLES / "train_mnist.py")]
    command += ["--distributed", "--quick", "--model", "cnn", "--bn", "--verbose", "2"]
    command += ["--save", str(tmp_path / "weights.npz"), "--plot", str(tmp_path / "curves.png")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    out = result.stdout
    assert "2 ranks x batch 64 (global 128)" in out and out.count("epoch 1/1 - loss") == 1, out
    assert out.count("CNN with BatchNorm") == 2  # the heading and the table row, once each
    import minidl

    saved = minidl.load(str(tmp_path / "weights.npz"))
    assert not any(key.startswith("module.") for key in saved), sorted(saved)
