"""Each example runs to the end in its quick mode (with data where the data is here)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared" / "datasets"
HAVE_DATA = (SHARED / "mnist").is_dir() or Path("/usr/share/datasets/fashion-mnist").is_dir()


def _run(script, *args, cwd=None, timeout=600):
    env = dict(os.environ)
    if (SHARED / "mnist").is_dir():
        env["MINIDL_DATA"] = str(SHARED)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_train_tiny_quick():
    assert "test accuracy" in _run("train_tiny.py", "--quick")


def test_tiny_example_learns_the_spirals():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import train_tiny
    finally:
        sys.path.pop(0)
    assert train_tiny.main(["--steps", "2000"]) >= 0.95


needs_data = pytest.mark.skipif(not HAVE_DATA, reason="no MNIST-style data on this machine")


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
