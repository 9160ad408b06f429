"""``python -m minidl.bench``: the quick benchmark suite, from a source checkout.

    python -m minidl.bench [options of python -m benchmarks]

The benchmarks (``benchmarks/`` in the repository) compare minidl with PyTorch and
are not part of the installed package. When minidl is imported from a source
checkout (the folder holding the ``minidl`` package also holds
``benchmarks/run.py``), this runs ``python -m benchmarks --quick`` there, passing
any further options on (``--only train_step``, ``--rounds 3``, ``--help``).
Otherwise it prints one line saying where the benchmarks live and exits with
status 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any


def source_checkout() -> Any:
    """The source tree minidl was imported from, or None for an installed copy.

    >>> source_checkout() is None or os.path.isdir(source_checkout())
    True
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(root, "benchmarks", "run.py")):
        return root
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the quick suite in the checkout; returns its exit status (2 outside a checkout).

    >>> main(["--only", "train_step"])  # doctest: +SKIP
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    root = source_checkout()
    if root is None:
        print(
            "python -m minidl.bench: the benchmarks live in minidl's source repository, "
            "not in the installed package; in a clone run: python -m benchmarks --quick",
            file=sys.stderr,
        )
        return 2
    command = [sys.executable, "-m", "benchmarks", "--quick", *argv]
    return subprocess.call(command, cwd=root)


if __name__ == "__main__":
    sys.exit(main())
