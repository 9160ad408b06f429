"""minidl's kernels in plain, readable numpy.

Each function has the signature and the result of its compiled twin in
``minidl/_ops.pyx``. The tests use these as the oracle; the benchmarks use them
as the baseline. Accumulation is done in float64, as the compiled kernels do.
"""

import numpy as np


def sum_leading(x):
    """``x.sum(axis=0)`` for a (A, B) float array, accumulated in float64; shape (B,)."""
    x = np.asarray(x)
    return x.sum(axis=0, dtype=np.float64).astype(x.dtype)


def sum_channels(x):
    """``x.sum(axis=(0, 2))`` for a (A, C, B) float array, accumulated in float64; shape (C,)."""
    x = np.asarray(x)
    return x.sum(axis=(0, 2), dtype=np.float64).astype(x.dtype)
