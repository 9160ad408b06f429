"""The benchmark entry point (``python -m benchmarks``) and its harness.

The harness's arithmetic is tested in this process; the entry point runs in a
subprocess, on a tiny case set, writing its page and figures into a temporary
folder (never into the repository's docs/).
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="module")
def harness():
    # loaded under its own name: the scripts import it as plain ``harness`` from benchmarks/
    spec = importlib.util.spec_from_file_location(
        "_benchmarks_harness", ROOT / "benchmarks" / "harness.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env():
    return dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )


def test_ratios_are_taken_within_each_round(harness):
    rounds = [
        {"a": {"minidl": 1.0, "torch": 2.0}, "b": {"minidl": 3.0}},
        {"a": {"minidl": 2.0, "torch": 2.5}, "b": {"minidl": 5.0}},
        {"a": {"minidl": 4.0, "torch": 4.0}, "b": {"minidl": 6.0}},
    ]
    within = harness.Ratio("a", "a", "minidl", "torch", limit=0.8)
    assert within.values(rounds) == [0.5, 0.8, 1.0]
    assert harness.spread(within.values(rounds)) == (0.8, 0.5, 1.0)
    across = harness.Ratio("b over a", "b", "minidl", "minidl", denominator_case="a", limit=2.0)
    assert across.values(rounds) == [3.0, 2.5, 1.5]
    rows = harness.evaluate([within, across, harness.Ratio("c", "c", "minidl", "torch")], rounds)
    assert [ratio.label for ratio, _ in rows] == ["a", "b over a"], "a case not run has no line"
    assert harness.status(*rows[0]) == "met"  # median 0.8 <= 0.8
    missing = harness.evaluate([harness.Ratio("b", "b", "minidl", "torch", limit=1.0)], rounds)
    assert harness.status(*missing[0]) == "not measured"
    text = "\n".join(harness.format_summary(rows))
    assert re.search(r"^a\s+0\.80\s+\[\s+0\.50,\s+1\.00\]\s+<= 0\.80\s+met$", text, re.M), text
    late = harness.evaluate([harness.Ratio("late", "a", "minidl", "torch", limit=0.6)], rounds)
    assert harness.status(*late[0]) == "NOT met"


def test_medians_per_label(harness):
    rounds = [{"a": {"x": 1.0, "y": 4.0}}, {"a": {"x": 3.0}}, {"a": {"x": 2.0, "y": 6.0}}]
    assert harness.medians(rounds) == {"a": {"x": 2.0, "y": 5.0}}


def test_worker_times_every_label_and_scales_the_bound(harness, capsys):
    calls = []

    def make(library, case, threads):
        return {
            "thing": lambda: calls.append((library, case, threads)),
            "bound": harness.bound(lambda: None, 5),
        }

    harness._worker(types.SimpleNamespace(make=make), "lib", ["c1", "c2"], 2, repeats=1)
    times = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert list(times) == ["c1", "c2"]
    assert set(times["c1"]) == {"thing", "bound"}
    assert {call[1] for call in calls} == {"c1", "c2"} and calls[0][2] == 2
    assert all(value >= 0 for per_case in times.values() for value in per_case.values())


def test_a_quick_run_does_not_write_into_the_repository_docs():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--write-docs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(),
    )
    assert done.returncode != 0
    assert "--docs-dir" in done.stderr


@pytest.mark.slow
def test_entry_point_prints_the_summary_and_writes_the_page(tmp_path):
    pytest.importorskip("matplotlib", reason="--write-docs draws its figures with matplotlib")
    docs = tmp_path / "docs"
    command = [sys.executable, "-m", "benchmarks", "--quick", "--only", "train_step,bn_sizes"]
    command += ["--rounds", "1", "--repeats", "1", "--write-docs", "--docs-dir", str(docs)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr
    out = done.stdout
    summary = out[out.index("== summary") :]
    number = r"\s+\d+\.\d+\s+\[\s*[\d.e+-]+,\s*[\d.e+-]+\]"
    for label in ("BN kernels 1 MiB: minidl / bound", "BN layer 4 MiB: layer / kernels"):
        assert re.search(re.escape(label) + number + r"\s+<= \d\.\d\d\s+(met|NOT met)", summary), (
            summary
        )
    torch_line = re.escape("CNN-BN step, batch 32: minidl / torch") + number
    assert bool(re.search(torch_line, summary)) == HAS_TORCH, summary
    assert re.search(r"targets met: \d+ of \d+", summary)

    page = (docs / "benchmarks.md").read_text()
    assert "## Summary" in page and "BN kernels 1 MiB: minidl / bound" in page
    assert "python -m benchmarks --quick" in page  # the command of the run
    for figure in ("img/bench_step_time.png", "img/bench_bn_sizes.png"):
        assert f"]({figure})" in page
        assert (docs / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the other pages it links to, and their sections, exist in the repository's docs
    for target, anchor in re.findall(r"\]\(([\w.]+\.md)#([\w-]+)\)", page):
        headings = re.findall(r"^#+ (.+)$", (ROOT / "docs" / target).read_text(), re.M)
        slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
        assert anchor in slugs, f"{target}#{anchor}: no such section"


def _bench_distributed(*args):
    return subprocess.run(
        [sys.executable, "benchmarks/bench_distributed.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )


def test_distributed_benchmark_cost_model_is_the_ring_formula():
    done = _bench_distributed("--cost-model")
    assert done.returncode == 0, done.stderr
    # the small CNN's 421,866 float32 gradients over 2 ranks at 10 Gbit/s:
    # (2 - 1) / 2 * 2 * 1,687,464 B / 1.25e9 B/s + 2 * 20 us = 1.39 ms
    row = re.search(r"\| small CNN-BN \| 1,687,464 \| 10 \| ([\d.]+) ms", done.stdout)
    assert row and row.group(1) == "1.39", done.stdout
    assert "A model, not a measurement" in done.stdout


@pytest.mark.slow
def test_distributed_benchmark_quick_run_prints_its_tables():
    pytest.importorskip("mpi4py", reason='needs pip install "minidl[distributed]"')
    done = _bench_distributed("--quick")
    assert done.returncode == 0, done.stdout + done.stderr
    two = r"\| 2 processes x 1 thread, batch 8 each .* \| [\d.]+ \| [\d,]+ \|"
    assert re.search(two, done.stdout), done.stdout
    assert re.search(r"\| 421,866 \| 1,687,464 \| [\d.]+ \| [\d.]+ \|", done.stdout), done.stdout
