"""Each example runs to the end in its quick mode."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("script", ["train_tiny.py"])
def test_example_runs_in_quick_mode(script):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout


def test_tiny_example_learns_the_spirals():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import train_tiny
    finally:
        sys.path.pop(0)
    assert train_tiny.main(["--steps", "2000"]) >= 0.95
