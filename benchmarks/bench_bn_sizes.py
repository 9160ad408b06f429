"""Batch norm, training forward + backward, against tensor size (1 to 98 MiB float32).

    python benchmarks/bench_bn_sizes.py [--threads 2] [--rounds 5]

Where ``bench_batchnorm.py`` compares many implementations on two shapes, this
sweep follows minidl's kernels and layer, torch's layer and the bandwidth bound
from 1 MiB to 98 MiB, across glibc's 32 MiB mmap threshold, above which every
fresh output is mapped anew and page-faults. Shapes (N, 64, 32, 32) for 1, 4 and
16 MiB, (N, 64, 28, 28) for 24.5, 49 and 98 MiB. Columns (the functions of
``bench_batchnorm.py``; each library in its own worker process, alternating):

- minidl: the kernels, ``_ops.batchnorm_forward_train`` and ``_ops.batchnorm_backward``;
- minidl layer: ``nn.BatchNorm2d`` on a leaf input that requires grad, forward
  and ``backward`` with an upstream gradient, in the same worker;
- bound: 5 tensor passes at the speed of a numpy copy of the same tensor into a
  preallocated array, in the same worker;
- torch layer: ``torch.nn.BatchNorm2d``, the same step.
"""

import sys

# isort: off
import harness  # first: a minidl worker loads minidl before numpy (see harness)

import bench_batchnorm
import numpy as np

# isort: on

SHAPES = {
    1: (4, 64, 32, 32),
    4: (16, 64, 32, 32),
    16: (64, 64, 32, 32),
    24.5: (128, 64, 28, 28),
    49: (256, 64, 28, 28),
    98: (512, 64, 28, 28),
}
CASES = {f"{mib:g} MiB {shape}": shape for mib, shape in SHAPES.items()}
MEBIBYTES = dict(zip(CASES, SHAPES))  # case -> size in MiB, for the figure
_names = list(CASES)
GROUPS = [_names[:3], *([name] for name in _names[3:])]  # the small sizes share a worker
QUICK_CASES = _names[:2]
LIBRARIES = ["minidl", "torch"]
# the targets of issue 13, at every size: the kernels within 2x of the bound, the layer
# within 1.15x of its kernels
SUMMARY = [
    *(
        harness.Ratio(f"BN kernels {mib:g} MiB: minidl / bound", case, "minidl", "bound", limit=2.0)
        for case, mib in MEBIBYTES.items()
    ),
    *(
        harness.Ratio(
            f"BN layer {mib:g} MiB: layer / kernels", case, "minidl layer", "minidl", limit=1.15
        )
        for case, mib in MEBIBYTES.items()
    ),
    *(
        harness.Ratio(f"BN layer {mib:g} MiB: minidl / torch", case, "minidl layer", "torch layer")
        for case, mib in MEBIBYTES.items()
    ),
]


def make(library, case, threads):
    x, dy, weight, bias = bench_batchnorm.data(CASES[case])
    if library == "minidl":
        import minidl
        from minidl import _ops

        minidl.set_num_threads(threads)
        target = np.empty_like(x)
        return {
            "minidl": bench_batchnorm.kernels_step(_ops, x, dy, weight, bias),
            "minidl layer": bench_batchnorm.layer_step(minidl, x, dy),
            "bound": harness.bound(lambda: np.copyto(target, x), bench_batchnorm.PASSES),
        }
    import torch

    torch.set_num_threads(threads)
    return {"torch layer": bench_batchnorm.layer_step(torch, x, dy)}


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
