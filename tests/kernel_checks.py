"""Checks the kernel tests share: agreement with a reference, memory layouts, and results under
1 and 2 threads."""

import numpy as np

from minidl import _ops


def as_layout(array, kind):
    """The same values as ``array`` in another memory layout (a 0-d array as it is)."""
    if array.ndim == 0:
        return array
    if kind == "fortran":
        return np.asfortranarray(array)
    if kind == "strided":
        padded = np.zeros(tuple(2 * n for n in array.shape), dtype=array.dtype)
        view = padded[tuple(slice(None, None, 2) for _ in array.shape)]
        view[...] = array
        return view
    if kind == "reversed":
        return np.ascontiguousarray(array[..., ::-1])[..., ::-1]
    return array


def with_one_and_two_threads(run):
    """``(run() with 1 kernel thread, run() with 2)``, restoring the thread count after."""
    before = _ops.get_num_threads()
    try:
        _ops.set_num_threads(1)
        single = run()
        _ops.set_num_threads(2)
        double = run()
    finally:
        _ops.set_num_threads(before)
    return single, double


def assert_close(ours, expected, tolerance, what):
    """``ours`` equals ``expected`` to ``tolerance``, relative, and absolute at that tolerance
    times the largest finite magnitude expected (at least 1); NaN and inf where expected."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0)))
    np.testing.assert_allclose(
        np.asarray(ours, dtype=np.float64),
        expected,
        rtol=tolerance,
        atol=tolerance * scale,
        err_msg=what,
    )
