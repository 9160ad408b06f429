"""Sums over the batch axis and per channel: minidl's kernels, the numpy reference, torch.

    python benchmarks/bench_reductions.py [--threads 2] [--rounds 5]

Prints one row per case with each library's median time (each timed in its own
worker process) and minidl's speed-up over numpy and over torch.
"""

# isort: off
import harness  # first: a minidl worker loads minidl before numpy (see harness)

import numpy as np

# isort: on

CASES = {
    "bias grad (128, 4096) axis 0": ((128, 4096), (0,)),
    "bias grad (60000, 10) axis 0": ((60000, 10), (0,)),
    "channel sum (128, 64, 28, 28) axes (0, 2, 3)": ((128, 64, 28, 28), (0, 2, 3)),
    "full sum (1000, 1000)": ((1000, 1000), (0, 1)),
}
LIBRARIES = ["minidl", "numpy", "torch"]


def make(library, case, threads):
    shape, axes = CASES[case]
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if library == "minidl":
        import minidl
        from minidl._reduce import sum_axes

        minidl.set_num_threads(threads)
        return lambda: sum_axes(data, axes)
    if library == "numpy":
        return lambda: data.sum(axis=axes)
    import torch

    torch.set_num_threads(threads)
    tensor = torch.from_numpy(data)
    return lambda: tensor.sum(dim=axes)


def report(cases, libraries, results):
    header = f"{'case':46s}" + "".join(f"{lib:>12s}" for lib in libraries)
    print(header + "   minidl vs numpy" + ("   vs torch" if "torch" in libraries else ""))
    for case in cases:
        row = results[case]
        line = f"{case:46s}" + "".join(f"{row[lib] * 1e3:10.3f}ms" for lib in libraries)
        line += f"   {row['numpy'] / row['minidl']:12.2f}x"
        if "torch" in libraries:
            line += f"   {row['torch'] / row['minidl']:7.2f}x"
        print(line)


if __name__ == "__main__":
    harness.main(CASES, LIBRARIES, make, report)
