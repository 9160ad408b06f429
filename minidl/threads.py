"""How many threads minidl computes with: its compiled kernels and numpy's BLAS.

The default is the number of cores this process may run on, or
``OMP_NUM_THREADS`` when that is set. The kernels' count is minidl's own; the
BLAS behind numpy's matrix products is limited through threadpoolctl when it is
installed (``pip install threadpoolctl``, part of the ``test`` and ``bench``
extras); without it only the kernels follow :func:`set_num_threads`.
"""

import os

from . import _ops

_blas_limits = None


def _default_num_threads():
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def set_num_threads(n):
    """Use ``n`` threads in the compiled kernels and, with threadpoolctl, in numpy's BLAS.

    >>> minidl.set_num_threads(1)
    >>> minidl.get_num_threads()
    1
    """
    global _blas_limits
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    _ops.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    _blas_limits = threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """The number of threads the compiled kernels use.

    >>> minidl.get_num_threads() >= 1
    True
    """
    return _ops.get_num_threads()


_ops.set_num_threads(_default_num_threads())
