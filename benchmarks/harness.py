"""Side-by-side timing with each library in its own worker process, as per-round ratios.

torch brings its own OpenMP runtime and allocator state; timed in one process
with minidl's, each disturbs the other. So every measurement runs in a fresh
worker process (the benchmark script itself, run by ``sys.executable`` with
``--worker``), one per library and group of cases, and the libraries take turns:
in each round, for each group of cases, the workers of all libraries run back to
back, in an order that is reversed every other round. A ratio between two
libraries is computed within a round, from workers that ran one right after the
other, and the summary gives the median of those per-round ratios with their
range: on a shared machine whose speed drifts from minute to minute, a ratio of
neighbours holds where absolute times do not. The load average is recorded
before and after.

A benchmark script imports this module first, before numpy, and defines:

- ``CASES``: case name -> description;
- ``LIBRARIES``: the worker kinds; a name may carry a variant after a ``+``
  (``torch+keep``), :func:`available` checks the part before (or ``REQUIRES[name]``);
- ``make(library, case, threads)``: sets the library's thread count and returns a
  zero-argument callable to time, or a dict ``{label: callable}`` of several
  things measured one after the other in the same worker (things of one library
  that do not disturb each other: minidl's kernels and its layer, say); a
  callable wrapped by :func:`bound` is a numpy copy standing for the bandwidth bound;
- optionally ``GROUPS`` (lists of cases one worker measures in turn, smallest
  first, to save process start-ups: torch takes seconds to import), ``QUICK_CASES``
  (a few cases for a smoke test), ``ENVIRONMENTS`` (library -> extra environment
  variables, set before the process starts: ``GLIBC_TUNABLES``, for one, is read
  only then), ``REQUIRES``, ``SUMMARY`` (:class:`Ratio` lines) and ``report(cases,
  rounds)`` (prints the times; :func:`print_times` by default);

and ends with ``harness.main(sys.modules[__name__])``. ``python -m benchmarks``
runs every script's cases through :func:`run_suite` and prints one summary.

In a minidl worker, importing this module imports minidl, so that minidl is loaded
before the script's numpy, as minidl's examples load it (minidl's OpenBLAS settings
apply only to an OpenBLAS loaded after it). Other workers never import minidl.
"""

import argparse
import dataclasses
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Optional


def _worker_library(argv):
    """The library named after ``--worker`` in ``argv``, or None in the coordinating process."""
    if "--worker" in argv[:-1]:
        return argv[argv.index("--worker") + 1]
    return None


if _worker_library(sys.argv) == "minidl":
    import minidl  # noqa: F401  (before the benchmark script imports numpy)


class bound:
    """A numpy copy of a tensor, timed, standing for ``passes`` tensor passes at copy speed.

    The worker reports the copy's time times ``passes / 2`` (a copy reads and writes
    the tensor once each): the time a computation that must move ``passes`` tensors
    of that size would take at the speed of memory.
    """

    def __init__(self, copy, passes):
        self.copy = copy
        self.factor = passes / 2


def _time_callable(fn, repeats, min_seconds=0.2):
    """Best time of one call over ``repeats`` batches, after a warm-up call."""
    fn()
    start = time.perf_counter()
    calls = 0
    while True:
        fn()
        calls += 1
        if time.perf_counter() - start >= min_seconds / repeats or calls >= 1000:
            break
    per_batch = calls
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(per_batch):
            fn()
        best = min(best, (time.perf_counter() - start) / per_batch)
    return best


def _worker(suite, library, cases, threads, repeats):
    """Time ``cases`` one after the other; print ``{case: {label: seconds}}`` as JSON."""
    times = {}
    for case in cases:
        made = suite.make(library, case, threads)
        callables = made if isinstance(made, dict) else {library: made}
        times[case] = {}
        for label, fn in callables.items():
            if isinstance(fn, bound):
                times[case][label] = _time_callable(fn.copy, repeats) * fn.factor
            else:
                times[case][label] = _time_callable(fn, repeats)
        del made, callables, fn
        gc.collect()  # the next case starts without this one's arrays
    print(json.dumps(times))


@functools.cache
def _importable(module):
    code = f"import {module}"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def available(library, requires=None):
    """Whether ``library`` can be imported (checked in a subprocess, keeping this one clean)."""
    requires = requires or {}
    return _importable(requires.get(library, library.split("+")[0]))


def load_average():
    """The 1, 5 and 15 minute load averages (``os.getloadavg``)."""
    return tuple(round(value, 2) for value in os.getloadavg())


def measure_rounds(
    script, groups, libraries, threads, rounds, repeats, environments=None, progress=None
):
    """One ``{case: {label: seconds}}`` per round, each worker a fresh process.

    ``groups``: lists of cases, each measured by one worker per library and round;
    the workers of a group run back to back, libraries in reversed order every
    other round. ``environments`` maps a library name to extra environment variables
    for its workers; ``progress``, if given, is called with a line after each round.
    """
    environments = environments or {}
    base = dict(os.environ, OMP_NUM_THREADS=str(threads))
    results = []
    for round_index in range(rounds):
        order = libraries if round_index % 2 == 0 else list(reversed(libraries))
        times = {case: {} for group in groups for case in group}
        for group in groups:
            for library in order:
                command = [sys.executable, script, "--worker", library, *group]
                command += ["--threads", str(threads), "--repeats", str(repeats)]
                env = dict(base, **environments.get(library, {}))
                done = subprocess.run(command, capture_output=True, text=True, env=env)
                if done.returncode != 0:
                    raise RuntimeError(f"worker {library} {group} failed:\n{done.stderr}")
                for case, labels in json.loads(done.stdout.splitlines()[-1]).items():
                    times[case].update(labels)
        results.append(times)
        if progress:
            progress(f"round {round_index + 1}/{rounds} done, load average {load_average()}")
    return results


def spread(values):
    """``(median, min, max)`` of ``values``."""
    return statistics.median(values), min(values), max(values)


def medians(rounds):
    """``{case: {label: median seconds over rounds}}``; a label missing in a round is skipped."""
    out = {}
    for case in rounds[0]:
        labels = dict.fromkeys(label for r in rounds for label in r[case])
        out[case] = {
            label: statistics.median(r[case][label] for r in rounds if label in r[case])
            for label in labels
        }
    return out


@dataclasses.dataclass(frozen=True)
class Ratio:
    """One summary line: the per-round ratio of two measured times, with an optional target.

    ``numerator`` and ``denominator`` are labels measured for ``case`` (the
    denominator for ``denominator_case`` when given: the same library at two
    sizes); ``limit``, when given, is a target the median ratio must not exceed.
    """

    label: str
    case: str
    numerator: str
    denominator: str
    denominator_case: Optional[str] = None
    limit: Optional[float] = None

    def values(self, rounds):
        """The per-round ratios, or None when a round lacks one of the two times."""
        other = self.denominator_case or self.case
        values = []
        for times in rounds:
            try:
                values.append(times[self.case][self.numerator] / times[other][self.denominator])
            except KeyError:
                return None
        return values


def evaluate(ratios, rounds):
    """``[(ratio, (median, min, max) or None)]`` for the ``ratios`` whose cases were run."""
    rows = []
    for ratio in ratios:
        if ratio.case not in rounds[0] or (ratio.denominator_case or ratio.case) not in rounds[0]:
            continue  # a case left out (--quick): no line
        values = ratio.values(rounds)
        rows.append((ratio, None if values is None else spread(values)))
    return rows


def status(ratio, stats):
    """``"met"``, ``"NOT met"``, ``""`` (no target) or ``"not measured"``."""
    if stats is None:
        return "not measured"
    if ratio.limit is None:
        return ""
    return "met" if stats[0] <= ratio.limit else "NOT met"


def _ratio(value):
    """Six characters: two decimals, more below 0.1 (a tiny ratio is not zero)."""
    if value >= 999.5:
        return f"{value:6.0f}"
    if value >= 0.095:
        return f"{value:6.2f}"
    return f"{value:6.3f}" if value >= 0.001 else f"{value:6.0e}"


def format_summary(rows):
    """The summary lines as a fixed-width table (a list of strings)."""
    width = max([len(r.label) for r, _ in rows] + [34])
    lines = [
        f"{'ratio (per round, lower is better)':{width}s}  median  [   min,    max]"
        "   target  status"
    ]
    for ratio, stats in rows:
        target = "" if ratio.limit is None else f"<= {ratio.limit:.2f}"
        if stats is None:
            lines.append(f"{ratio.label:{width}s}  {'-':>6s}  {'':16s}  {target:>7s}  not measured")
            continue
        median, low, high = stats
        lines.append(
            f"{ratio.label:{width}s}  {_ratio(median):>6s}  [{_ratio(low)}, {_ratio(high)}]"
            f"  {target:>7s}  {status(ratio, stats)}".rstrip()
        )
    return lines


def print_times(cases, rounds):
    """One row per case, one column per measured label: the median of the per-round times."""
    table = medians(rounds)
    labels = list(dict.fromkeys(label for case in cases for label in table[case]))
    width = max(len(case) for case in cases) + 2
    widths = [max(12, len(label) + 2) for label in labels]
    print(
        f"{'case (median ms)':{width}s}"
        + "".join(f"{label:>{w}s}" for label, w in zip(labels, widths))
    )
    for case in cases:
        cells = [
            f"{table[case][label] * 1e3:{w}.3f}" if label in table[case] else f"{'-':>{w}s}"
            for label, w in zip(labels, widths)
        ]
        print(f"{case:{width}s}" + "".join(cells))


def present_libraries(suite):
    """The suite's libraries whose modules import here, and those that do not."""
    requires = getattr(suite, "REQUIRES", {})
    present = [lib for lib in suite.LIBRARIES if available(lib, requires)]
    return present, [lib for lib in suite.LIBRARIES if lib not in present]


def run_suite(suite, threads, rounds, repeats, quick=False, progress=None):
    """Measure a benchmark module's cases; a dict of what was run and its per-round times."""
    if quick:  # a smoke test: a few cases, one worker per library measures them all
        cases = list(getattr(suite, "QUICK_CASES", suite.CASES))
        groups = [cases]
    else:
        cases = list(suite.CASES)
        groups = getattr(suite, "GROUPS", [[case] for case in cases])
    present, missing = present_libraries(suite)
    before, start = load_average(), time.perf_counter()
    times = measure_rounds(
        os.path.abspath(suite.__file__),
        groups,
        present,
        threads,
        rounds,
        repeats,
        getattr(suite, "ENVIRONMENTS", None),
        progress,
    )
    return {
        "cases": cases,
        "libraries": present,
        "missing": missing,
        "rounds": times,
        "threads": threads,
        "repeats": repeats,
        "seconds": time.perf_counter() - start,
        "load_before": before,
        "load_after": load_average(),
    }


def report(suite, result, ratios=True):
    """Print a suite's times table, then (if ``ratios``) its summary ratios."""
    print(
        f"threads: {result['threads']}, rounds: {len(result['rounds'])} (per-round best of "
        f"{result['repeats']}); load average {result['load_before']} before, "
        f"{result['load_after']} after"
    )
    if result["missing"]:
        print(f"not installed, left out: {', '.join(result['missing'])}")
    getattr(suite, "report", print_times)(result["cases"], result["rounds"])
    rows = evaluate(getattr(suite, "SUMMARY", []), result["rounds"])
    if rows and ratios:
        print()
        print("\n".join(format_summary(rows)))


def main(suite, argv=None):
    """Command line of a benchmark script: run the workers, or, with ``--worker``, be one."""
    parser = argparse.ArgumentParser(description=(suite.__doc__ or "").splitlines()[0])
    parser.add_argument("--worker", nargs="+", metavar=("LIBRARY", "CASE"))
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a few cases, for a smoke test")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(suite, args.worker[0], args.worker[1:], args.threads, args.repeats)
        return
    report(suite, run_suite(suite, args.threads, args.rounds, args.repeats, args.quick))
