"""Batch-norm training forward + backward: minidl's kernels, the numpy reference, torch.

    python benchmarks/bench_batchnorm.py [--threads 2] [--rounds 5]

Each library is timed in its own worker process, alternating, and the table
shows the median of the per-round best times of one forward and one backward
on float32 data, with the same thread count for every library:

- minidl: ``_ops.batchnorm_forward_train`` (running statistics updated) and
  ``_ops.batchnorm_backward``. Importing minidl keeps freed large blocks in the
  heap (glibc's mmap threshold 32 MiB, trim threshold 512 MiB), so its fresh
  outputs do not page-fault.
- numpy: the same two functions of ``minidl._reference`` (plain numpy, computing
  in float64 as the kernels do: the baseline the issue names).
- numpy-f32: a fast plain-numpy version in float32 (mean, var, normalize; the
  fused backward formula), the speed a careful numpy user gets.
- torch: ``torch.nn.functional.batch_norm`` in training mode and its backward
  through autograd, as a torch user runs it, with glibc's default heap settings.
- torch+keep: the same, with minidl's heap settings given to its process through
  ``GLIBC_TUNABLES`` (without importing minidl), to show what the allocator alone
  is worth to torch.
- bound: the time to move the bytes the computation must move, at the speed of
  a numpy copy of the same tensor measured in the same run: forward reads x and
  writes y, backward reads dy and x and writes dx, 5 tensor passes; a copy is 2.
"""

# isort: off
import harness  # first: a minidl worker loads minidl before numpy (see harness)

import numpy as np

# isort: on

CASES = {
    "(128, 64, 28, 28)": (128, 64, 28, 28),
    "(60, 100)": (60, 100),
}
LIBRARIES = ["minidl", "numpy", "numpy-f32", "torch", "torch+keep", "bound"]
# minidl's heap settings (mmap threshold 32 MiB, trim threshold 512 MiB) for torch+keep,
# as glibc reads them at process start: the worker never imports minidl.
KEEP_FREED_MEMORY = {
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=536870912"
}


def _data(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    channels = shape[1]
    weight = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
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


def make(library, case, threads):
    shape = CASES[case]
    x, dy, weight, bias = _data(shape)
    channels = shape[1]
    if library in ("minidl", "numpy"):
        import minidl
        from minidl import _ops, _reference

        minidl.set_num_threads(threads)
        kernels = _ops if library == "minidl" else _reference
        running_mean = np.zeros(channels, np.float32)
        running_var = np.ones(channels, np.float32)

        def step():
            _, mean, invstd = kernels.batchnorm_forward_train(
                x, weight, bias, running_mean, running_var, 0.1, 1e-5
            )
            return kernels.batchnorm_backward(dy, x, mean, invstd, weight)

        return step
    if library == "numpy-f32":
        return lambda: _numpy_float32_step(x, dy, weight, bias)
    if library == "bound":
        target = np.empty_like(x)
        return lambda: np.copyto(target, x)
    import torch  # torch and torch+keep differ only in their environment (KEEP_FREED_MEMORY)

    torch.set_num_threads(threads)
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


def report(cases, libraries, results):
    shown = [lib for lib in libraries if lib != "bound"]
    print(f"{'shape (float32)':20s}" + "".join(f"{lib:>12s}" for lib in shown) + f"{'bound':>12s}")
    for case in cases:
        row = dict(results[case])
        row["bound"] = row["bound"] * 5 / 2
        print(f"{case:20s}" + "".join(f"{row[lib] * 1e3:10.3f}ms" for lib in [*shown, "bound"]))
    print()
    for case in cases:
        row = results[case]
        parts = [f"{row['numpy'] / row['minidl']:.1f}x faster than numpy"]
        parts.append(f"{row['numpy-f32'] / row['minidl']:.1f}x faster than numpy-f32")
        parts.append(f"{row['minidl'] / (row['bound'] * 5 / 2):.2f}x the bandwidth bound")
        for lib in ("torch", "torch+keep"):
            if lib in row:
                parts.append(f"{row[lib] / row['minidl']:.2f}x faster than {lib}")
        print(f"{case}: minidl is " + ", ".join(parts))


if __name__ == "__main__":
    harness.main(
        CASES,
        LIBRARIES,
        make,
        report,
        requires={"bound": "numpy", "numpy-f32": "numpy"},
        environments={"torch+keep": KEEP_FREED_MEMORY},
    )
