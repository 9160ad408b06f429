"""Batch norm, training forward + backward: minidl's kernels and layer, numpy, torch.

    python benchmarks/bench_batchnorm.py [--threads 2] [--rounds 5]

Each library is timed in its own worker process, alternating, on float32 data
with the same thread count for every library; each round gives each column its
best time of one forward and one backward, and the table shows the median over
the rounds:

- minidl: the kernels, ``_ops.batchnorm_forward_train`` (running statistics
  updated) and ``_ops.batchnorm_backward``.
- minidl layer: ``nn.BatchNorm2d`` (``nn.BatchNorm`` for 2-d input) on a leaf
  input that requires grad, forward and ``backward`` with an upstream gradient,
  every gradient set to None before each step, as a user runs it; in the same
  worker as the kernels.
- numpy: the same two functions of ``minidl._reference`` (plain numpy, computing
  in float64 as the kernels do: the baseline the kernel issue named).
- numpy-f32: a fast plain-numpy version in float32 (mean, var, normalize; the
  fused backward formula), the speed a careful numpy user gets.
- torch: ``torch.nn.functional.batch_norm`` in training mode and its backward
  through autograd, with glibc's default heap settings; torch layer:
  ``torch.nn.BatchNorm2d`` (``BatchNorm1d``) as minidl layer, in the same worker.
- torch+keep: ``F.batch_norm`` again, with minidl's heap settings given to its
  process through ``GLIBC_TUNABLES`` (without importing minidl), to show what the
  allocator alone is worth to torch. Importing minidl keeps freed large blocks in
  the heap (glibc's mmap threshold 32 MiB, trim threshold 512 MiB).
- bound: the time to move the bytes the computation must move, at the speed of
  a numpy copy of the same tensor measured in the minidl worker: forward reads x
  and writes y, backward reads dy and x and writes dx, 5 tensor passes; a copy is 2.
"""

import sys

# isort: off
import harness  # first: a minidl worker loads minidl before numpy (see harness)

import numpy as np

# isort: on

CASES = {
    "(128, 64, 28, 28)": (128, 64, 28, 28),
    "(60, 100)": (60, 100),
}
GROUPS = [["(60, 100)", "(128, 64, 28, 28)"]]  # one worker each, the small case first
LIBRARIES = ["minidl", "numpy", "numpy-f32", "torch", "torch+keep"]
REQUIRES = {"numpy-f32": "numpy"}
QUICK_CASES = ["(60, 100)"]
PASSES = 5  # tensor passes of forward + backward (x, y; dy, x, dx)
# minidl's heap settings (mmap threshold 32 MiB, trim threshold 512 MiB) for torch+keep,
# as glibc reads them at process start: the worker never imports minidl.
KEEP_FREED_MEMORY = {
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=536870912"
}
ENVIRONMENTS = {"torch+keep": KEEP_FREED_MEMORY}
LARGE, SMALL = "(128, 64, 28, 28)", "(60, 100)"
# The targets of issue 13 ("speed where users feel it") on these two shapes.
SUMMARY = [
    harness.Ratio(
        f"BN layer {LARGE}: minidl / torch", LARGE, "minidl layer", "torch layer", limit=0.5
    ),
    harness.Ratio(
        f"BN layer {LARGE}: layer / kernels", LARGE, "minidl layer", "minidl", limit=1.15
    ),
    harness.Ratio(
        f"BN layer {SMALL}: minidl / torch", SMALL, "minidl layer", "torch layer", limit=0.7
    ),
    harness.Ratio(f"BN kernels {LARGE}: minidl / torch F.batch_norm", LARGE, "minidl", "torch"),
    harness.Ratio(f"BN kernels {SMALL}: minidl / torch F.batch_norm", SMALL, "minidl", "torch"),
    harness.Ratio(f"BN kernels {LARGE}: minidl / bound", LARGE, "minidl", "bound"),
]


def data(shape):
    """x, upstream gradient dy, weight and bias for batch norm over ``shape[1]`` channels."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    channels = shape[1]
    weight = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    bias = rng.standard_normal(channels, dtype=np.float32)
    return x, dy, weight, bias


def _numpy_float32_step(x, dy, weight, bias):
    """Batch norm forward and backward in float32 numpy, per channel over the other axes."""
    axes = (0, *range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    invstd = 1 / np.sqrt(var + 1e-5)
    x_hat = (x - mean) * invstd
    y = x_hat * weight.reshape(shape) + bias.reshape(shape)
    dbias = dy.sum(axis=axes)
    dweight = (dy * x_hat).sum(axis=axes)
    count = x.size // x.shape[1]
    dx = (weight.reshape(shape) * invstd / count) * (
        count * dy - dbias.reshape(shape) - x_hat * dweight.reshape(shape)
    )
    return y, dx, dweight, dbias


def kernels_step(kernels, x, dy, weight, bias):
    """One training forward and backward through ``kernels`` (``_ops`` or ``_reference``)."""
    channels = x.shape[1]
    running_mean = np.zeros(channels, np.float32)
    running_var = np.ones(channels, np.float32)

    def step():
        _, mean, invstd = kernels.batchnorm_forward_train(
            x, weight, bias, running_mean, running_var, 0.1, 1e-5
        )
        return kernels.batchnorm_backward(dy, x, mean, invstd, weight)

    return step


def layer_step(library, x, dy):
    """Forward + backward of the library's BatchNorm layer on a leaf input, as a user runs it.

    ``library`` is the ``minidl`` or ``torch`` module; its 2-d or 4-d layer is used,
    with default affine parameters, and every gradient is set to None before a step.
    """
    nn = library.nn
    layer = (nn.BatchNorm2d if x.ndim == 4 else nn.BatchNorm1d)(x.shape[1])
    as_tensor = library.from_numpy if library.__name__ == "torch" else library.tensor
    leaf, upstream = as_tensor(x).requires_grad_(), as_tensor(dy)
    leaves = [leaf, *layer.parameters()]

    def step():
        for tensor in leaves:
            tensor.grad = None
        layer(leaf).backward(upstream)

    return step


def torch_functional_step(torch, x, dy, weight, bias):
    """``torch.nn.functional.batch_norm`` in training mode, forward + backward."""
    channels = x.shape[1]
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(weight).requires_grad_()
    tb = torch.from_numpy(bias).requires_grad_()
    tdy = torch.from_numpy(dy)
    running_mean = torch.zeros(channels)
    running_var = torch.ones(channels)

    def step():
        tx.grad = tw.grad = tb.grad = None
        y = torch.nn.functional.batch_norm(
            tx, running_mean, running_var, tw, tb, training=True, momentum=0.1, eps=1e-5
        )
        y.backward(tdy)

    return step


def make(library, case, threads):
    x, dy, weight, bias = data(CASES[case])
    if library in ("minidl", "numpy"):
        import minidl
        from minidl import _ops, _reference

        minidl.set_num_threads(threads)
        if library == "numpy":
            return kernels_step(_reference, x, dy, weight, bias)
        target = np.empty_like(x)
        return {
            "minidl": kernels_step(_ops, x, dy, weight, bias),
            "minidl layer": layer_step(minidl, x, dy),
            "bound": harness.bound(lambda: np.copyto(target, x), PASSES),
        }
    if library == "numpy-f32":
        return lambda: _numpy_float32_step(x, dy, weight, bias)
    import torch  # torch and torch+keep differ only in their environment (KEEP_FREED_MEMORY)

    torch.set_num_threads(threads)
    if library == "torch+keep":
        return torch_functional_step(torch, x, dy, weight, bias)
    return {
        "torch": torch_functional_step(torch, x, dy, weight, bias),
        "torch layer": layer_step(torch, x, dy),
    }


if __name__ == "__main__":
    harness.main(sys.modules[__name__])
