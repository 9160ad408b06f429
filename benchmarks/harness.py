"""Side-by-side timing with each library in its own worker process.

torch brings its own OpenMP runtime and allocator state; timed in one process
with minidl's, each disturbs the other. So a benchmark script calls
:func:`compare`, which starts a fresh worker process (the same script, run by
``sys.executable`` with ``--worker``) for every (library, case) pair, alternating
libraries round after round, and reports the median of the per-round best times.

A benchmark script imports this module first, before numpy; defines ``CASES``
(name -> description), a ``make(library, case, threads)`` that sets the library's
thread count and returns a zero-argument callable to time, and a ``report``; and
ends with ``harness.main(CASES, LIBRARIES, make, report)``. A library name may
carry a variant after a ``+`` (``torch+keep``): :func:`available` checks the part
before. ``environments`` gives a library's workers extra environment variables,
set before the process starts (``GLIBC_TUNABLES``, for one, is read only then).

In a minidl worker, importing this module imports minidl, so that minidl is loaded
before the script's numpy, as minidl's examples load it (minidl's OpenBLAS settings
apply only to an OpenBLAS loaded after it). Other workers never import minidl.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _worker_library(argv):
    """The library named after ``--worker`` in ``argv``, or None in the coordinating process."""
    if "--worker" in argv[:-1]:
        return argv[argv.index("--worker") + 1]
    return None


if _worker_library(sys.argv) == "minidl":
    import minidl  # noqa: F401  (before the benchmark script imports numpy)


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


def _worker(make, library, case, threads, repeats):
    fn = make(library, case, threads)
    print(json.dumps({"seconds": _time_callable(fn, repeats)}))


def available(library):
    """Whether ``library`` can be imported (checked in a subprocess, keeping this one clean)."""
    code = f"import {library.split('+')[0]}"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def compare(script, cases, libraries, threads, rounds, repeats, environments=None):
    """``{case: {library: median seconds}}``, each measurement in a fresh worker process.

    ``environments`` maps a library name to extra environment variables for its workers.
    """
    environments = environments or {}
    results = {case: {lib: [] for lib in libraries} for case in cases}
    base = dict(os.environ, OMP_NUM_THREADS=str(threads))
    for round_index in range(rounds):
        order = libraries if round_index % 2 == 0 else list(reversed(libraries))
        for case in cases:
            for library in order:
                command = [
                    sys.executable,
                    script,
                    "--worker",
                    library,
                    case,
                    "--threads",
                    str(threads),
                    "--repeats",
                    str(repeats),
                ]
                env = dict(base, **environments.get(library, {}))
                done = subprocess.run(command, capture_output=True, text=True, env=env)
                if done.returncode != 0:
                    raise RuntimeError(f"worker {library}/{case} failed:\n{done.stderr}")
                results[case][library].append(json.loads(done.stdout.splitlines()[-1])["seconds"])
    return {
        case: {lib: statistics.median(times) for lib, times in per_lib.items()}
        for case, per_lib in results.items()
    }


def main(cases, libraries, make, report, requires=None, environments=None, argv=None):
    """Command line: run the workers, or, with ``--worker``, be one.

    ``requires`` maps a library name that is not a module to the module it needs;
    ``environments`` maps a library name to extra environment variables for its workers.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "CASE"))
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(make, *args.worker, args.threads, args.repeats)
        return
    requires = requires or {}
    present = [lib for lib in libraries if available(requires.get(lib, lib))]
    missing = sorted(set(libraries) - set(present))
    print(f"threads: {args.threads}, rounds: {args.rounds} (median of per-round best)")
    if missing:
        print(f"not installed, left out: {', '.join(missing)}")
    script = os.path.abspath(sys.argv[0])
    results = compare(
        script, list(cases), present, args.threads, args.rounds, args.repeats, environments
    )
    report(cases, present, results)
