"""``python -m minidl``: the version and :func:`minidl.show_config` (build, threads, heap).

    python -m minidl

The first line is ``minidl <version>``; the rest says how the kernels were built
(OpenMP, compiler flags), how many threads they use and where that count came
from (``MINIDL_NUM_THREADS``, ``OMP_NUM_THREADS`` or the physical cores), numpy's
BLAS, the allocator settings and the environment variables that steer threads and memory
(the data sets' ``MINIDL_DATA`` and ``MINIDL_OFFLINE`` are in ``minidl.data.datasets``' help).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import show_config


def main(argv: Sequence[str] | None = None) -> int:
    """Print the configuration; returns the exit status (0).

    >>> main([])  # doctest: +ELLIPSIS
    minidl ...
    0
    """
    argparse.ArgumentParser(
        prog="python -m minidl",
        description="Print minidl's version, build and run-time configuration.",
    ).parse_args(argv)
    show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
