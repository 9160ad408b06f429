"""How long loading a full MNIST-style training set takes, and a DataLoader epoch.

    MINIDL_DATA=/path/to/datasets python benchmarks/bench_data.py [--rounds 5]

``MINIDL_DATA`` names a folder holding ``mnist/`` (and, optionally, ``fashion-mnist/``;
Debian's ``dataset-fashion-mnist`` package is found without it).

Each load runs in a fresh worker process (nothing cached in memory), alternating
data sets; the table shows the median and the best of the rounds. The epoch row
times one shuffled pass of batches of 60 (float32, normalized) over the set.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

WORKER = """
import json, sys, time
t0 = time.perf_counter()
import minidl
t1 = time.perf_counter()
name = sys.argv[1]
loader = {"mnist": minidl.data.load_mnist, "fashion-mnist": minidl.data.load_fashion_mnist}[name]
images, labels = loader("train")
t2 = time.perf_counter()
classes = {"mnist": minidl.data.MNIST, "fashion-mnist": minidl.data.FashionMNIST}
dataset = classes[name]("train", normalize=True)
batches = minidl.data.DataLoader(dataset, batch_size=60, shuffle=True, seed=0)
t3 = time.perf_counter()
count = sum(len(y) for _, y in batches)
t4 = time.perf_counter()
print(json.dumps({"load": t2 - t1, "samples": len(images), "epoch": t4 - t3, "batched": count}))
"""


DATA_SETS = ("mnist", "fashion-mnist")


def measure(rounds):
    """``{data set: [one dict per round], or why it is not available}``.

    Each round loads every available data set in a fresh process, alternating.
    """
    results = {}
    for _ in range(rounds):
        for name in DATA_SETS:
            if isinstance(results.get(name), str):
                continue  # not available: no point asking again
            done = subprocess.run(
                [sys.executable, "-c", WORKER, name], capture_output=True, text=True, env=os.environ
            )
            if done.returncode != 0:
                results[name] = done.stderr.strip().splitlines()[-1]
                continue
            results.setdefault(name, []).append(json.loads(done.stdout.splitlines()[-1]))
    return results


def available(results):
    """Whether ``measure`` found any data set."""
    return any(isinstance(runs, list) for runs in results.values())


def report(results):
    """The table: samples, median and best load time, median epoch time per data set."""
    measured = {name: runs for name, runs in results.items() if isinstance(runs, list)}
    rounds = max((len(runs) for runs in measured.values()), default=0)
    print(f"rounds: {rounds}; each load in a fresh process")
    header = ["samples", "load median", "load best", "epoch (batch 60)"]
    print(f"{'data set':16s}" + "".join(f"{h:>{len(h) + 3}s}" for h in header))
    for name, runs in measured.items():
        loads = [r["load"] for r in runs]
        epochs = [r["epoch"] for r in runs]
        print(
            f"{name:16s}{runs[0]['samples']:>10d}{statistics.median(loads):>12.3f} s"
            f"{min(loads):>10.3f} s{statistics.median(epochs):>17.3f} s"
        )
    for name, reason in results.items():
        if name not in measured:
            print(f"{name}: not available ({reason})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    report(measure(args.rounds))


if __name__ == "__main__":
    main()
