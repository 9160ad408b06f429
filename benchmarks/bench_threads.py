"""When fewer threads are faster: minidl's CNN-BN training step, alone and beside a busy process.

    python benchmarks/bench_threads.py [--threads 1,2] [--batch 64] [--steps 20] [--rounds 3]
                                       [--library minidl[,torch]]

The step is ``bench_train_step``'s (``small_cnn(batch_norm=True)``, SGD, one
batch of MNIST-sized images). For every thread count it runs in its own worker
process, twice per round: on an idle machine, and while a CPU-bound process this
script starts (``while True: pass``) holds one core, as another job on a shared
machine would. The table shows, per thread count, the median over rounds of each
worker's median step time, and how much slower the step is beside the busy
process. An OpenMP parallel region waits for its slowest thread: when one of the
threads shares its core with another job, every region waits for that core's
time slice, so on a 2-core machine one thread can beat two. Not part of
``python -m benchmarks``: it measures the machine as much as minidl.
"""

import argparse
import functools
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # bench_train_step and harness, as when run from here

BUSY = "while True: pass"


def _worker(library, threads, batch, steps):
    """Time ``steps`` training steps after three warm-up steps; prints the median in ms."""
    import bench_train_step  # imports the harness, which loads minidl before numpy

    step = bench_train_step.make(library, f"CNN-BN, batch {batch}, SGD", threads)
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(f"{statistics.median(times) * 1e3:.3f}")


def _measure(library, threads, batch, steps):
    """One worker process's median step time in ms."""
    env = dict(os.environ, MINIDL_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    command = [sys.executable, os.path.abspath(__file__), "--worker", library]
    command += ["--threads", str(threads), "--batch", str(batch), "--steps", str(steps)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"worker {library}, {threads} threads failed:\n{result.stderr}")
    return float(result.stdout.split()[-1])


def _with_busy_process(function):
    """``function()`` while a CPU-bound process runs; the process is stopped after."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.5)  # let it start spinning
        return function()
    finally:
        busy.kill()
        busy.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="thread counts (default: 1,2)")
    parser.add_argument("--batch", type=int, default=64, choices=(32, 64, 128, 256))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per worker")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default: 3)")
    parser.add_argument("--library", default="minidl", help="minidl, torch or both")
    parser.add_argument("--worker", metavar="LIBRARY", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.threads.split(",")]
    if args.worker:
        _worker(args.worker, counts[0], args.batch, args.steps)
        return 0
    libraries = args.library.split(",")
    load_before = os.getloadavg()[0]
    times = {(lib, n, busy): [] for lib in libraries for n in counts for busy in (False, True)}
    for round_ in range(args.rounds):
        for library in libraries:
            order = counts if round_ % 2 == 0 else counts[::-1]
            for n in order:
                measure = functools.partial(_measure, library, n, args.batch, args.steps)
                times[library, n, False].append(measure())
                times[library, n, True].append(_with_busy_process(measure))
    print(
        f"CNN-BN training step, batch {args.batch}, SGD: median ms per step over "
        f"{args.rounds} rounds of {args.steps} steps; {os.cpu_count()} logical CPUs; "
        f"1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    print(f"{'library':8} {'threads':>7} {'alone':>9} {'busy':>9} {'busy/alone':>10}")
    for library in libraries:
        for n in counts:
            alone = statistics.median(times[library, n, False])
            busy = statistics.median(times[library, n, True])
            print(f"{library:8} {n:>7} {alone:>9.1f} {busy:>9.1f} {busy / alone:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
