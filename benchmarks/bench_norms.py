"""Layer, group and instance norm forward + backward: minidl against torch and the bandwidth bound.

    python benchmarks/bench_norms.py [--threads 2] [--rounds 3]

Each library is timed in its own worker process (``harness.py``), the order of
the libraries alternating from round to round; each round gives each library its
best time of one forward and one backward on float32 data, and the table shows
the median over rounds of those times and of the per-round ratios (with their
range, to show the spread):

- minidl: the kernels, ``_ops.layernorm_forward``/``_backward``,
  ``_ops.groupnorm_forward``/``_backward`` and ``_ops.instancenorm_forward``
  with ``_ops.groupnorm_backward``.
- minidl+autograd: ``F.layer_norm``, ``F.group_norm``, ``F.instance_norm`` on
  Tensors and ``backward``, as a minidl user runs them (in the same worker).
- torch: ``torch.nn.functional.layer_norm``/``group_norm``/``instance_norm`` and
  their backward through autograd, as a torch user runs them.
- bound: the time to move the bytes the computation must move, at the speed of a
  numpy copy of the same tensor measured in the minidl worker: the forward reads x
  and writes y, the backward reads dy and x and writes dx, 5 tensor passes; a
  copy is 2.
"""

import sys

# isort: off
import harness  # first: a minidl worker loads minidl before numpy (see harness)

import numpy as np

# isort: on

# name -> (kind, shape, groups): LayerNorm over the last dim; GroupNorm with
# ``groups`` groups (affine); InstanceNorm2d with PyTorch's defaults (no affine,
# no running statistics)
CASES = {
    "LayerNorm (4096, 1024)": ("layer", (4096, 1024), None),
    "GroupNorm(32) (128, 64, 28, 28)": ("group", (128, 64, 28, 28), 32),
    "InstanceNorm2d (128, 64, 28, 28)": ("instance", (128, 64, 28, 28), None),
    "LayerNorm (60, 100)": ("layer", (60, 100), None),
    "GroupNorm(4) (8, 16, 8, 8)": ("group", (8, 16, 8, 8), 4),
    "InstanceNorm2d (8, 16, 8, 8)": ("instance", (8, 16, 8, 8), None),
}
LARGE = list(CASES)[:3]
SMALL = list(CASES)[3:]
GROUPS = [SMALL, *([case] for case in LARGE)]  # the small cases share a worker
QUICK_CASES = SMALL
LIBRARIES = ["minidl", "torch"]
PASSES = 5  # tensor passes of forward + backward; a copy makes 2
SUMMARY = [
    ratio
    for case in CASES
    for ratio in (
        harness.Ratio(f"{case}: kernels / torch", case, "minidl", "torch"),
        harness.Ratio(f"{case}: autograd / torch", case, "minidl+autograd", "torch"),
    )
] + [harness.Ratio(f"{case}: kernels / bound", case, "minidl", "bound") for case in LARGE]


def _data(kind, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    width = shape[-1] if kind == "layer" else shape[1]
    weight = rng.uniform(0.5, 1.5, width).astype(np.float32)
    bias = rng.standard_normal(width).astype(np.float32)
    if kind == "instance":
        weight = bias = None
    return x, dy, weight, bias


def _minidl_kernels(kind, x, dy, weight, bias, groups):
    from minidl import _ops

    if kind == "layer":
        return lambda: _ops.layernorm_backward(
            dy, x, *_ops.layernorm_forward(x, weight, bias)[1:], weight
        )
    if kind == "group":
        return lambda: _ops.groupnorm_backward(
            dy, x, *_ops.groupnorm_forward(x, groups, weight, bias)[1:], weight
        )
    return lambda: _ops.groupnorm_backward(
        dy, x, *_ops.instancenorm_forward(x, None, None, None, None)[1:], None
    )


def _functional(module, kind, x, weight, bias, groups):
    """The library's own functional call for ``kind``."""
    functional = module.nn.functional
    if kind == "layer":
        return lambda: functional.layer_norm(x, (x.shape[-1],), weight, bias, 1e-5)
    if kind == "group":
        return lambda: functional.group_norm(x, groups, weight, bias, 1e-5)
    return lambda: functional.instance_norm(x)


def make(library, case, threads):
    kind, shape, groups = CASES[case]
    x, dy, weight, bias = _data(kind, shape)
    if library.startswith("minidl"):
        import minidl

        minidl.set_num_threads(threads)
        module, as_tensor = minidl, minidl.tensor
    else:
        import torch

        torch.set_num_threads(threads)
        module, as_tensor = torch, torch.from_numpy
    tx = as_tensor(x).requires_grad_()
    tw = None if weight is None else as_tensor(weight).requires_grad_()
    tb = None if bias is None else as_tensor(bias).requires_grad_()
    tdy = as_tensor(dy)
    forward = _functional(module, kind, tx, tw, tb, groups)
    leaves = [t for t in (tx, tw, tb) if t is not None]

    def step():
        for leaf in leaves:
            leaf.grad = None
        forward().backward(tdy)

    if library == "torch":
        return step
    target = np.empty_like(x)
    return {
        "minidl": _minidl_kernels(kind, x, dy, weight, bias, groups),
        "minidl+autograd": step,
        "bound": harness.bound(lambda: np.copyto(target, x), PASSES),
    }


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
