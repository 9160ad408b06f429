"""``minidl.cuda``: what ``torch.cuda`` answers where there is no GPU.

minidl computes on the CPU only. These functions let torch code that chooses its device
run unchanged, choosing the CPU:

>>> device = minidl.device("cuda" if minidl.cuda.is_available() else "cpu")
>>> device
device(type='cpu')
"""

from __future__ import annotations


def is_available() -> bool:
    """False: minidl has no CUDA (``torch.cuda.is_available()`` on a CPU-only build).

    >>> minidl.cuda.is_available()
    False
    """
    return False


def device_count() -> int:
    """0: no CUDA devices (``torch.cuda.device_count()`` on a CPU-only build).

    >>> minidl.cuda.device_count()
    0
    """
    return 0


__all__ = ["device_count", "is_available"]
