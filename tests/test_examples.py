"""Each example runs to the end in its quick mode, each as a script in its own process.

The examples that train on MNIST run anywhere: on MNIST where it is found (``$MINIDL_DATA``,
the cache, ``/usr/share/datasets``) or downloaded, else on the sample bundled with minidl.
The README's first command is run offline in quick mode, from another working folder.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:  # the examples draw their figures only where matplotlib is installed (an optional extra)
    import matplotlib  # noqa: F401

    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DOCS = EXAMPLES.parent / "docs"
SCRIPTS = sorted(path.name for path in EXAMPLES.glob("*.py"))


def _run(script, *args, cwd=None, timeout=600, env=None, status=0):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )
    assert result.returncode == status, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout if status == 0 else result


def _offline_env(home):
    """A fresh machine with no network: no MINIDL_DATA, an empty home (no cache), offline."""
    env = {k: v for k, v in os.environ.items() if k != "MINIDL_DATA"}
    root = str(EXAMPLES.parent)  # minidl importable from any working folder
    env["PYTHONPATH"] = os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])
    home.mkdir(exist_ok=True)
    return dict(env, HOME=str(home), MINIDL_OFFLINE="1")


no_system_mnist = pytest.mark.skipif(
    Path("/usr/share/datasets/mnist").is_dir(),
    reason="/usr/share/datasets/mnist holds MNIST: it is found offline too",
)


def test_train_tiny_quick():
    assert "test accuracy" in _run("train_tiny.py", "--quick")


def test_tiny_example_learns_the_spirals():
    out = _run("train_tiny.py", "--steps", "2000")
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out).group(1))
    assert accuracy >= 0.95, f"test accuracy {accuracy} after 2000 steps, expected >= 0.95"


@no_system_mnist
@pytest.mark.slow
def test_readme_first_command_offline_trains_on_the_bundled_sample(tmp_path):
    # python examples/train_mnist.py, quick, on a machine with no network and no data sets,
    # from another working folder: the sample, said in one line, and the with/without table
    out = _run(
        "train_mnist.py",
        "--quick",
        "--verbose",
        "2",
        cwd=tmp_path,
        env=_offline_env(tmp_path / "home"),
    )
    fallback = [line for line in out.splitlines() if "bundled" in line]
    assert len(fallback) == 1 and "--data-dir DIR" in fallback[0], out[:2000]
    assert "MINIDL_DATA" in fallback[0] and "downloading is off" in fallback[0]
    assert "mnist-sample: 6,000 training and 1,000 test images" in out
    table = out[out.index("mnist-sample test set (MLP)") :].splitlines()
    assert "steps to target" in table[1]
    assert table[3].startswith("MLP without BatchNorm") and table[4].startswith(
        "MLP with BatchNorm"
    )
    figure = tmp_path / "mlp_mnist-sample_curves.png"  # in the working folder
    assert figure.exists() if HAVE_MATPLOTLIB else "matplotlib is not installed" in out


@no_system_mnist
def test_a_missing_data_set_lists_places_and_fixes_without_a_traceback(tmp_path):
    env = _offline_env(tmp_path / "home")
    given = tmp_path / "empty"
    for script, args in (
        ("train_mnist.py", ["--dataset", "kmnist", "--quick"]),
        ("train_mnist.py", ["--data-dir", str(given), "--quick"]),
        ("bn_study.py", ["--dataset", "mnist", "--quick"]),
        ("custom_layer.py", ["--data-dir", str(given), "--quick"]),
    ):
        result = _run(script, *args, cwd=tmp_path, env=env, status=1)
        assert "Traceback" not in result.stderr, result.stderr
        assert "was not found. Looked for" in result.stderr, result.stderr
        assert "pass --data-dir DIR" in result.stderr and "MINIDL_DATA" in result.stderr
        assert "data_dir=" not in result.stderr, result.stderr


@no_system_mnist
def test_a_damaged_sample_is_named_without_a_traceback(tmp_path):
    # a copy of the package whose sample has one changed byte, run offline
    copy = tmp_path / "tree"
    shutil.copytree(
        EXAMPLES.parent / "minidl", copy / "minidl", ignore=shutil.ignore_patterns("__pycache__")
    )
    damaged = copy / "minidl" / "data" / "sample" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    env = dict(_offline_env(tmp_path / "home"), PYTHONPATH=str(copy))
    result = _run("train_mnist.py", "--quick", cwd=tmp_path, env=env, status=1)
    assert "Traceback" not in result.stderr, result.stderr
    assert "t10k-labels-idx1-ubyte.gz is damaged" in result.stderr, result.stderr
    assert "reinstall minidl" in result.stderr


@pytest.mark.parametrize("model", ["cnn"])
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


def test_custom_layer_quick():
    out = _run("custom_layer.py", "--quick")
    assert "gradcheck: Swish's gradients match" in out
    assert "identical outputs: True" in out


@pytest.mark.slow
def test_bn_study_quick_writes_to_a_scratch_folder_never_the_docs(tmp_path):
    committed = (DOCS / "bn_study.md").read_bytes()
    out = _run("bn_study.py", "--quick", cwd=tmp_path)  # the default --out
    report = (tmp_path / "bn_study_out" / "bn_study.md").read_text()
    for number in range(1, 6):
        assert f"| {number}. " in report
    assert report.count("(a quick run: not conclusive)") == 5
    claims = [line for line in out.splitlines() if line.startswith("  claim ")]
    assert len(claims) == 5 and all("not conclusive" in line for line in claims), claims
    if HAVE_MATPLOTLIB:
        assert (tmp_path / "bn_study_out" / "img" / "bn_study_convergence.png").exists()
    assert (DOCS / "bn_study.md").read_bytes() == committed


def test_bn_study_quick_refuses_to_write_the_docs(tmp_path):
    result = _run("bn_study.py", "--quick", "--out", str(DOCS), cwd=tmp_path, status=2)
    assert "not conclusive" in result.stderr and "Traceback" not in result.stderr


def _option_entries(help_text):
    """{option: its help text}, from the options section of an argparse --help."""
    section = help_text[help_text.index("options:") :].splitlines()[1:]
    entries, current = {}, None
    for line in section:
        match = re.match(r"  (-[-\w]+)", line)
        if match:
            current = match.group(1)
            entries[current] = line
        elif current is not None:
            entries[current] += " " + line.strip()
    return entries


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_every_option_with_its_default(script):
    entries = _option_entries(_run(script, "--help"))
    assert len(entries) > 2, entries
    missing = [
        option
        for option, text in entries.items()
        if option != "-h" and not re.search(r"\(default: [^)]+\)", " ".join(text.split()))
    ]
    assert not missing, f"{script} --help: options without their default: {missing}"


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
