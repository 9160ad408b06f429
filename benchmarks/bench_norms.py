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
  Tensors and ``backward``, as a minidl user runs them.
- torch: ``torch.nn.functional.layer_norm``/``group_norm``/``instance_norm`` and
  their backward through autograd, as a torch user runs them.
- bound: the time to move the bytes the computation must move, at the speed of a
  numpy copy of the same tensor measured in the same run: the forward reads x
  and writes y, the backward reads dy and x and writes dx, 5 tensor passes; a
  copy is 2.
"""

import statistics

import harness
import numpy as np

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
LIBRARIES = ["minidl", "minidl+autograd", "torch", "bound"]
PASSES = 5  # tensor passes of forward + backward; a copy makes 2


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
    if library == "bound":
        target = np.empty_like(x)
        return lambda: np.copyto(target, x)
    if library.startswith("minidl"):
        import minidl

        minidl.set_num_threads(threads)
        if library == "minidl":
            return _minidl_kernels(kind, x, dy, weight, bias, groups)
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

    return step


def _median_and_range(values):
    return statistics.median(values), min(values), max(values)


def report(cases, libraries, rounds):
    """``rounds``: one ``{case: {library: seconds}}`` per round."""
    shown = [lib for lib in libraries if lib != "bound"]
    medians = {
        case: {lib: statistics.median(r[case][lib] for r in rounds) for lib in libraries}
        for case in cases
    }
    print(f"{'case (float32)':34s}" + "".join(f"{lib:>17s}" for lib in [*shown, "bound"]))
    for case in cases:
        row = dict(medians[case])
        row["bound"] *= PASSES / 2
        print(f"{case:34s}" + "".join(f"{row[lib] * 1e3:15.3f}ms" for lib in [*shown, "bound"]))
    print()
    print("per-round ratios, median [min, max]:")
    for case in cases:
        parts = []
        if "torch" in libraries:
            ratios = [r[case]["torch"] / r[case]["minidl"] for r in rounds]
            parts.append(
                "{:.2f}x [{:.2f}, {:.2f}] faster than torch".format(*_median_and_range(ratios))
            )
        if "minidl+autograd" in libraries and "torch" in libraries:
            ratios = [r[case]["torch"] / r[case]["minidl+autograd"] for r in rounds]
            parts.append(
                "through autograd {:.2f}x [{:.2f}, {:.2f}] faster than torch".format(
                    *_median_and_range(ratios)
                )
            )
        ratios = [r[case]["minidl"] / (r[case]["bound"] * PASSES / 2) for r in rounds]
        parts.append(
            "{:.2f}x [{:.2f}, {:.2f}] the bandwidth bound".format(*_median_and_range(ratios))
        )
        print(f"{case}: minidl is " + ", ".join(parts))


def _run(cases, libraries, make, report):
    """harness.main, one harness round at a time so that each round's ratios are kept."""
    import argparse
    import os
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=2)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args, _ = parser.parse_known_args()
    if args.worker:
        harness.main(cases, libraries, make, report)
        return
    present = [lib for lib in libraries if harness.available({"bound": "numpy"}.get(lib, lib))]
    print(f"threads: {args.threads}, rounds: {args.rounds} (per-round best of {args.repeats})")
    missing = sorted(set(libraries) - set(present))
    if missing:
        print(f"not installed, left out: {', '.join(missing)}")
    script = os.path.abspath(sys.argv[0])
    rounds = []
    for index in range(args.rounds):
        order = present if index % 2 == 0 else list(reversed(present))
        rounds.append(harness.compare(script, list(cases), order, args.threads, 1, args.repeats))
    report(list(cases), present, rounds)


if __name__ == "__main__":
    _run(CASES, LIBRARIES, make, report)
