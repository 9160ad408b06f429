"""Every benchmark with the harness, then one summary table of per-round ratios.

    python -m benchmarks [--rounds 5] [--threads 2] [--quick] [--only NAME] [--write-docs]

(or ``python benchmarks/run.py`` with the same options). Each ``bench_*.py``
script's cases run through ``harness.run_suite``: each library in its own worker
process, libraries back to back and alternating from round to round, ratios taken
within a round. The summary lists every ratio the scripts define (minidl against
torch, against its own kernels, against the bandwidth bound), the median over
rounds with its range, and for the targets of issue 13 whether the median meets
them. The exit status is 0 whether or not a target is met: this is a report.

``--write-docs`` regenerates ``docs/benchmarks.md`` and its figures under
``docs/img/`` from the results (``--docs-dir`` writes them elsewhere; a quick or
partial run may only write elsewhere).
"""

import argparse
import contextlib
import datetime
import importlib
import importlib.metadata
import importlib.util
import io
import os
import platform
import subprocess
import sys
import time

# isort: off
import harness  # the scripts import it by this name; so does the coordinator

# isort: on

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# name -> module, in the order of the run and of the page
SUITES = {
    "train_step": "bench_train_step",
    "batchnorm": "bench_batchnorm",
    "bn_sizes": "bench_bn_sizes",
    "norms": "bench_norms",
    "reductions": "bench_reductions",
    "data": "bench_data",
}
DATA_ROUNDS = 3  # loading a data set is slow and steady: a few rounds are enough


def _suite_names(only):
    if not only:
        return list(SUITES)
    names = []
    for item in only:
        for name in item.split(","):
            name = name.strip().removeprefix("bench_").removesuffix(".py")
            if name not in SUITES:
                raise SystemExit(f"--only {name}: not one of {', '.join(SUITES)}")
            names.append(name)
    return [name for name in SUITES if name in names]


def _versions():
    found = {}
    for package in ("numpy", "torch"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit():
    try:
        done = subprocess.run(
            ["git", "-C", ROOT, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def _minidl_location():
    """Where the workers' ``import minidl`` finds minidl (they inherit this environment)."""
    code = "import minidl, os; print(os.path.dirname(os.path.dirname(minidl.__file__)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _data_setting():
    """``MINIDL_DATA=...`` for the recorded command, if it is set (bench_data reads it).

    The folder is written as a placeholder: the page speaks of the project, not of the
    folders of the machine that ran it.
    """
    return ["MINIDL_DATA=/path/to/datasets"] if "MINIDL_DATA" in os.environ else []


def machine_facts(threads):
    """The facts a reader needs to weigh the figures: machine, versions, threads, minidl's path."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        **_versions(),
        "threads": threads,
        "minidl": _minidl_location(),
        "commit": _git_commit(),
    }


def _captured(function, *args):
    """Run ``function``, echoing what it prints, and return that text."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        function(*args)
    print(out.getvalue(), end="")
    return out.getvalue()


def run(names, threads, rounds, repeats, quick):
    """Run the suites ``names``; ``{name: result}`` with each result's printed tables."""
    results = {}
    for name in names:
        module = importlib.import_module(SUITES[name])
        print(f"\n== {SUITES[name]}.py ==", flush=True)
        start = time.perf_counter()
        if name == "data":
            measured = module.measure(1 if quick else min(rounds, DATA_ROUNDS))
            if module.available(measured):
                text = _captured(module.report, measured)
            else:
                text = ""
                print("no data set found (MINIDL_DATA names the folder holding mnist/): skipped")
            results[name] = {"module": module, "data": measured, "text": text}
        else:
            try:
                result = harness.run_suite(
                    module,
                    threads,
                    rounds,
                    repeats,
                    quick,
                    progress=lambda line: print(line, flush=True),
                )
            except RuntimeError as error:  # a worker failed: report it, run the other scripts
                print(error, flush=True)
                rows = [(ratio, None) for ratio in getattr(module, "SUMMARY", [])]
                results[name] = {"module": module, "error": str(error), "rows": rows}
            else:
                result["text"] = _captured(harness.report, module, result, False)
                result["module"] = module
                result["rows"] = harness.evaluate(getattr(module, "SUMMARY", []), result["rounds"])
                results[name] = result
        results[name]["elapsed"] = time.perf_counter() - start
        print(f"({results[name]['elapsed']:.0f} s)", flush=True)
    return results


def summary_rows(results):
    return [row for result in results.values() for row in result.get("rows", [])]


def summary_text(rows):
    """The summary table and a line counting the targets met."""
    lines = harness.format_summary(rows) if rows else ["(no ratios measured)"]
    targets = [harness.status(ratio, stats) for ratio, stats in rows if ratio.limit is not None]
    met = targets.count("met")
    lines.append("")
    unmeasured = targets.count("not measured")
    lines.append(
        f"targets met: {met} of {len(targets)}"
        + (f" ({unmeasured} not measured)" if unmeasured else "")
    )
    missed = [ratio.label for ratio, stats in rows if harness.status(ratio, stats) in ("NOT met",)]
    if missed:
        lines.append("NOT met: " + "; ".join(missed))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, help="rounds per benchmark (default 5, quick 2)")
    parser.add_argument("--repeats", type=int, help="timed batches per worker (default 5, quick 2)")
    parser.add_argument("--quick", action="store_true", help="a few cases and rounds: a smoke test")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help=f"run only these: {', '.join(SUITES)}"
    )
    parser.add_argument("--write-docs", action="store_true", help="regenerate the page and figures")
    parser.add_argument("--docs-dir", help="where --write-docs writes (default: docs/)")
    args = parser.parse_args(argv)
    names = _suite_names(args.only)
    docs_dir = args.docs_dir or os.path.join(ROOT, "docs")
    if args.write_docs and not args.docs_dir and (args.quick or args.only):
        parser.error("a quick or partial run writes its page elsewhere: add --docs-dir")
    if args.write_docs and importlib.util.find_spec("matplotlib") is None:
        parser.error("--write-docs draws its figures with matplotlib: pip install matplotlib")
    rounds = args.rounds or (2 if args.quick else 5)
    repeats = args.repeats or (2 if args.quick else 5)

    facts = machine_facts(args.threads)
    if facts["minidl"] and os.path.realpath(facts["minidl"]) != os.path.realpath(ROOT):
        print(f"note: the workers import minidl from {facts['minidl']}, not from {ROOT}")
    print(
        f"{facts['cpu']}, {facts['usable cores']} cores; numpy {facts['numpy']}, torch "
        f"{facts['torch']}; {args.threads} threads, {rounds} rounds, minidl from {facts['minidl']}"
    )
    load_before, start = harness.load_average(), time.perf_counter()
    results = run(names, args.threads, rounds, repeats, args.quick)
    facts.update(
        rounds=rounds,
        repeats=repeats,
        load_before=load_before,
        load_after=harness.load_average(),
        seconds=time.perf_counter() - start,
        command=" ".join([*_data_setting(), "python -m benchmarks", *(argv or sys.argv[1:])]),
    )
    rows = summary_rows(results)
    print(
        f"\n== summary ({facts['seconds'] / 60:.1f} min, load average {load_before} before, "
        f"{facts['load_after']} after) =="
    )
    print(summary_text(rows))
    failed = [SUITES[name] for name, result in results.items() if "error" in result]
    if failed:
        print(f"\nFAILED (a worker stopped with an error, see above): {', '.join(failed)}")
    if args.write_docs:
        import write_docs

        written = write_docs.write(docs_dir, results, rows, facts, summary_text(rows))
        print("\nwrote " + ", ".join(written))
    return 1 if failed else 0  # a missed target is a result; a failed worker is an error


if __name__ == "__main__":
    sys.exit(main())
