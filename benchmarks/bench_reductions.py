"""Sums over the batch axis and per channel: minidl's kernels, the numpy reference, torch.

    python benchmarks/bench_reductions.py [--threads 2] [--rounds 5]

float32 data through ``minidl._reduce.sum_axes`` (the compiled kernels,
accumulating in float64), ``numpy.sum`` and ``torch.sum`` (both accumulating in
float32). Each library runs in its own worker process (one worker measures all
cases, in turn), alternating; the table shows each library's median time and the
summary minidl's per-round ratio to torch.
"""

import sys

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
GROUPS = [list(CASES)]  # small arrays: one worker measures them all
QUICK_CASES = ["bias grad (128, 4096) axis 0"]
LIBRARIES = ["minidl", "numpy", "torch"]
# issue 13: reductions at least as fast as torch
SUMMARY = [
    harness.Ratio(f"sum {case}: minidl / torch", case, "minidl", "torch", limit=1.0)
    for case in CASES
]


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


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
