# cython: language_level=3
"""minidl's compiled kernels.

Each public function here is a thin ``def`` that checks its inputs (dtype, rank,
shape), makes them C-contiguous once and allocates the outputs with numpy; a typed
private kernel then fills the outputs under ``with nogil``, splitting the work
across threads with ``prange`` where OpenMP was available at build time.

Float32 data is accumulated in double. Every kernel gives the same bits whatever
the number of threads: each output element is reduced by one thread, always in
the same order.

This module knows nothing of Tensor: it maps numpy arrays to numpy arrays.
``minidl/_reference.py`` holds the same kernels in plain numpy, with the same
signatures; the tests compare the two.
"""

import numpy as np

from cython cimport floating
from cython.parallel cimport prange

cdef extern from *:
    """
    #ifdef _OPENMP
    #define MINIDL_HAVE_OPENMP 1
    #else
    #define MINIDL_HAVE_OPENMP 0
    #endif
    """
    const int MINIDL_HAVE_OPENMP

# Columns summed together by one thread in ``sum_leading``: the accumulators
# stay in registers and L1, and the loop over them vectorizes.
cdef enum:
    COLUMN_BLOCK = 256

cdef int _num_threads = 1


def openmp_enabled():
    """Whether the kernels were built with OpenMP (and so can use several threads)."""
    return bool(MINIDL_HAVE_OPENMP)


def set_num_threads(int n):
    """Set how many threads the kernels use (``minidl.set_num_threads`` calls this)."""
    global _num_threads
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive thread count, got {n}")
    _num_threads = n


def get_num_threads():
    """How many threads the kernels use."""
    return _num_threads


def _checked(x, str name, int ndim):
    """``x`` as a C-contiguous float32 or float64 array of rank ``ndim``, or a clear error."""
    arr = np.asarray(x)
    if arr.dtype != np.float32 and arr.dtype != np.float64:
        raise TypeError(
            f"{name}: expected a float32 or float64 array, got dtype {arr.dtype}; "
            "convert it first, e.g. with .astype(np.float32)"
        )
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


# ---------------------------------------------------------------- sum over the leading axis

def sum_leading(x):
    """Sum a (A, B) array over its leading axis: ``x.sum(axis=0)``, shape (B,).

    The reduction behind bias gradients and ``Tensor.sum`` over the batch axis.
    Accumulates in double; the result has the input's dtype.

    >>> sum_leading(np.ones((4, 3), np.float32))
    array([4., 4., 4.], dtype=float32)
    """
    arr = _checked(x, "sum_leading", 2)
    out = np.empty(arr.shape[1], dtype=arr.dtype)
    if arr.shape[1] == 0:
        return out
    if arr.shape[0] == 0:
        out[:] = 0
        return out
    _sum_leading(arr, out)
    return out


def _sum_leading(const floating[:, ::1] x, floating[::1] out):
    cdef Py_ssize_t cols = x.shape[1]
    cdef Py_ssize_t blocks = (cols + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    cdef Py_ssize_t block
    cdef int threads = _num_threads if blocks > 1 else 1
    with nogil:
        for block in prange(blocks, num_threads=threads, schedule="static"):
            _sum_leading_block(x, out, block * COLUMN_BLOCK,
                               min((block + 1) * COLUMN_BLOCK, cols))


cdef void _sum_leading_block(const floating[:, ::1] x, floating[::1] out,
                             Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    # out[start:stop] = x[:, start:stop].sum(axis=0), one double per column
    cdef double acc[COLUMN_BLOCK]
    cdef Py_ssize_t width = stop - start
    cdef Py_ssize_t i, j
    cdef const floating* row
    for j in range(width):
        acc[j] = 0.0
    for i in range(x.shape[0]):
        row = &x[i, start]
        for j in range(width):
            acc[j] += row[j]
    for j in range(width):
        out[start + j] = <floating>acc[j]


# ---------------------------------------------------------------- per-channel sums

def sum_channels(x):
    """Sum a (A, C, B) array over its first and last axes: ``x.sum(axis=(0, 2))``, shape (C,).

    With A = N and B = H * W this is the per-channel sum of an (N, C, H, W) tensor
    (a convolution's bias gradient); any reduction over a prefix and a suffix of
    axes folds to this shape. Accumulates in double, one thread per channel.

    >>> sum_channels(np.ones((2, 3, 5)))
    array([10., 10., 10.])
    """
    arr = _checked(x, "sum_channels", 3)
    out = np.empty(arr.shape[1], dtype=arr.dtype)
    if arr.shape[1] == 0:
        return out
    if arr.shape[0] == 0 or arr.shape[2] == 0:
        out[:] = 0
        return out
    _sum_channels(arr, out)
    return out


def _sum_channels(const floating[:, :, ::1] x, floating[::1] out):
    cdef Py_ssize_t channels = x.shape[1]
    cdef Py_ssize_t c
    cdef int threads = _num_threads if channels > 1 else 1
    with nogil:
        for c in prange(channels, num_threads=threads, schedule="static"):
            out[c] = <floating>_channel_sum(x, c)


cdef double _channel_sum(const floating[:, :, ::1] x, Py_ssize_t c) noexcept nogil:
    # x[:, c, :].sum() in double; the inner loop vectorizes under -fassociative-math
    cdef double acc = 0.0
    cdef Py_ssize_t a, b
    cdef Py_ssize_t inner = x.shape[2]
    cdef const floating* row
    for a in range(x.shape[0]):
        row = &x[a, c, 0]
        for b in range(inner):
            acc += row[b]
    return acc
