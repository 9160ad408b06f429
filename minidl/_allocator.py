"""Keep freed large blocks in the heap, so fresh activations do not page-fault.

A training step allocates outputs of the same large sizes again and again. By
default glibc serves blocks over its mmap threshold with a fresh ``mmap`` and
returns them to the system on ``free``: every step then faults every page of
every large output in again, which costs as much as the computation of a
batch-norm layer (measured in ``../shared/PERFORMANCE.md`` terms: 9 of 18 ms).
minidl raises the mmap threshold to glibc's maximum (32 MiB on 64-bit systems)
and the trim threshold to 512 MiB when it is imported, so such blocks are reused
from the heap. The cost is that up to that much freed memory stays with the
process instead of going back to the system.

Set ``MINIDL_KEEP_FREED_MEMORY=0`` before importing minidl to leave glibc's
defaults alone. Elsewhere than glibc (macOS, musl) this does nothing.
"""

import ctypes
import os
import sys

# From glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 512 * 1024 * 1024


def keep_freed_memory():
    """Apply the heap settings above; returns whether they took effect (glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - present in glibc only
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


ENABLED = os.environ.get("MINIDL_KEEP_FREED_MEMORY", "1") != "0" and keep_freed_memory()
